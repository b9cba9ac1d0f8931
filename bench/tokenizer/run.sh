#!/bin/sh
# pieces-gateway: tokenizer benchmark: the C engine vs npm tiktoken (WASM) and gpt-tokenizer.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Usage: bench/tokenizer/run.sh [BUILD_DIR]   (default: build). Not a test: prints numbers, and
# exits non-zero only if the C count differs from tiktoken's on the corpus.
# Builds the bench_tok driver, makes a deterministic ~10 MB mixed corpus, counts it on one
# thread with each engine for cl100k_base and o200k_base, then prints MB/s, tokens/s, ratios
# and the load time / RSS of the vocabularies.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
cd "$root"

[ -d "$build" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target bench_tok -j 2 >/dev/null
if [ ! -d "$here/node_modules" ]; then
    (cd "$here" && npm ci --silent --no-audit --no-fund)
fi

corpus="$build/bench-tok-corpus.txt"
node "$here/build_corpus.js" "$corpus"
cres="$build/bench-tok-c.txt"
"$build/bench_tok" "$root/assets" "$corpus" cl100k_base o200k_base claude | tee "$cres" | grep -E "load|claude|c-stream"
node "$here/bench.js" "$corpus" "$cres"
