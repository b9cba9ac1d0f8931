#!/usr/bin/env bash
# pieces-gateway: gateway CPU per 20-chunk stream for each ingress format, same backend, same run.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# One gateway (WORKERS=1, on SERVER_CPU) in front of the grpc-js mock (bench/stream/mock.js,
# 20 text chunks back to back for gpt-4o-mini), loaded with C (CONC, default 50) concurrent
# streams in a closed loop for DURATION s (default 5) in each of the three client APIs:
# chat completions, Anthropic Messages (/v1/messages) and OpenAI Responses (/v1/responses).
# The formats are interleaved RUNS times (default 3), so machine noise hits each alike; every
# stream is checked (20 content deltas in order and the format's end). Prints CPU-us per stream
# (utime+stime of the gateway / streams) per run, the median per format and its overhead over
# chat completions (target: at most +20 %).
# Usage: bench/ingress.sh   (DURATION=5 RUNS=3 CONC=50; bench/lib/common.sh)
set -euo pipefail
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
CONC=${CONC:-50}
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
MODEL=gpt-4o-mini
HERE=$BENCH_ROOT/bench/stream

need_tools node curl taskset awk
need_gateway
[ -d "$BENCH_ROOT/spec/e2e/node_modules/@grpc/grpc-js" ] ||
    die "no spec/e2e/node_modules: run scripts/npm-ci.sh (or: cd spec/e2e && npm ci)"

start_mock "$MODEL=chunks-20-0"
start_gateway ingress GPT_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" \
    VERTEX_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" RATE_LIMIT_ENABLED=false STREAM_TIMEOUT=0 \
    MAX_POOL_SIZE=4
gw_pid=$STARTED_PID
gw_port=$STARTED_PORT

load() {
    taskset -c "$CLIENT_CPU" node "$HERE/load.js" --mode gw --port "$gw_port" --conc "$CONC" \
        --model "$MODEL" --duration "$2" --chunks 20 --clk-tck "$CLK_TCK" --pid "$gw_pid" \
        --ingress "$1"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# gateway on CPU $SERVER_CPU (WORKERS=1), mock + client on CPU $CLIENT_CPU; C=$CONC," \
    "${DURATION}s per run, $RUNS interleaved runs"
for f in chat messages responses; do load "$f" 2 >/dev/null; done # warm-up (JIT, pools)

results=$BENCH_TMP/ingress.jsonl
: >"$results"
for run in $(seq 1 "$RUNS"); do
    for f in chat messages responses; do
        out=$(load "$f" "$DURATION")
        echo "$out" >>"$results"
        echo "$out" | awk -v r="$run" '{
            match($0, /"ingress":"[a-z]+"/); f = substr($0, RSTART + 11, RLENGTH - 12)
            match($0, /"streams":[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10)
            match($0, /"failures":[0-9]+/); e = substr($0, RSTART + 11, RLENGTH - 11)
            match($0, /"cpu_us_per_stream":[0-9.]+/); c = substr($0, RSTART + 20, RLENGTH - 20)
            printf "run %d  %-9s streams %7d  failures %d  CPU %7.1f us/stream\n", r, f, n, e, c
        }'
        grep -q '"failures":0,' <<<"$out" || die "failed streams: $out"
    done
done
awk '{
    match($0, /"ingress":"[a-z]+"/); f = substr($0, RSTART + 11, RLENGTH - 12)
    match($0, /"cpu_us_per_stream":[0-9.]+/); v[f, ++n[f]] = substr($0, RSTART + 20, RLENGTH - 20)
} END {
    for (f in n) { # median and spread per format
        k = n[f]
        for (i = 1; i <= k; i++) a[i] = v[f, i] + 0
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        med[f] = k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        lo[f] = a[1]; hi[f] = a[k]
    }
    split("chat messages responses", order, " ")
    for (i = 1; i <= 3; i++) {
        f = order[i]
        printf "median %-9s %7.1f us/stream (min %.1f, max %.1f)", f, med[f], lo[f], hi[f]
        if (f != "chat") {
            o = 100 * (med[f] - med["chat"]) / med["chat"]
            printf "  %+.1f %% vs chat: %s", o, o <= 20 ? "ok (<= +20 %)" : "OVER the +20 % target"
        }
        printf "\n"
    }
}' "$results"
