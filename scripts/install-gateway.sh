#!/bin/sh
# pieces-gateway: install the built gateway into the layout the Docker image runs from.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Usage: scripts/install-gateway.sh BUILD_DIR PREFIX
# Installs (idempotent; the files are overwritten, data/ and logs/ are left as they are):
#   PREFIX/pieces-gateway     the binary (debug info stripped when `strip` exists; the exported
#                             symbols LuaJIT's FFI needs are dynamic and stay)
#   PREFIX/gateway.lua        the configuration (reads the environment)
#   PREFIX/policies/*.lua     the default policies (in the image: replaced by a mount)
#   PREFIX/assets/            the tokenizer vocabularies and SHA256SUMS (checked here)
#   PREFIX/data/              writable: the blacklist file (BLACKLIST_FILE)
#   PREFIX/logs/              writable: the log file (LOG_FILE)
#   PREFIX/LICENSE
# Ownership is left to the caller (the Dockerfile gives data/ and logs/ to the runtime user).
set -eu

[ $# -eq 2 ] || { echo "usage: scripts/install-gateway.sh BUILD_DIR PREFIX" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build="$1"
prefix="$2"
bin="$build/pieces-gateway"
[ -x "$bin" ] || { echo "install-gateway: $bin missing (run scripts/build.sh first)" >&2; exit 1; }

install -d -m 0755 "$prefix" "$prefix/policies" "$prefix/assets" "$prefix/data" "$prefix/logs"
install -m 0755 "$bin" "$prefix/pieces-gateway"
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$prefix/pieces-gateway"
fi
install -m 0644 "$root/gateway.lua" "$root/LICENSE" "$prefix/"
install -m 0644 "$root"/policies/*.lua "$prefix/policies/"
install -m 0644 "$root"/assets/*.tiktoken "$root/assets/SHA256SUMS" "$root/assets/README.md" \
    "$prefix/assets/"
(cd "$prefix/assets" && sha256sum --check --quiet --strict SHA256SUMS)
"$prefix/pieces-gateway" --version
