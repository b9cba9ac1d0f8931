#!/usr/bin/env bash
# pieces-gateway: instructions and system calls per streamed chunk and per non-stream request
# through the OpenAI-compatible HTTP backend, the Pieces gRPC path of the same gateway beside it.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# bench/openai_backend.sh measures CPU time, which a loaded machine moves by tens of percent;
# these counts do not move. One gateway (one worker) in front of the OpenAI mock
# (spec/e2e/mock/openai.js: chunks-20-5 = 20 chunks 5 ms apart, m = one answer) and the
# grpc-js mock (bench/stream/mock.js: gpt-4o = 20 chunks 5 ms apart), run under
# valgrind --tool=callgrind --instr-atstart=no; after a warm-up, WINDOWS windows of exactly
# PACED streams, PACED_C at a time (1: every chunk arrives on its own) and NONSTREAM requests
# (bench/lib/drive.js, NONSTREAM_C in flight) are counted per path: Ir of the serving thread
# / chunks (or / requests). Then the same gateway natively with the system calls counted per
# request and per chunk (bench/lib/count.sh sys_window: perf or strace -c -f).
# Knobs: WARM (300 streams), PACED (20), PACED_C (1: streams at once), NONSTREAM (500),
# NONSTREAM_C (64 in flight, as wrk -c64 in openai_backend.sh), WINDOWS (2), CG_OPTS, GW_BIN.
# Usage: bench/openai_counts.sh   (COUNT_PARTS="paced nonstream sys")
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=bench/lib/count.sh
source "$(dirname "$0")/lib/count.sh"

WARM=${WARM:-300}
PACED=${PACED:-20}
NONSTREAM=${NONSTREAM:-500}
WINDOWS=${WINDOWS:-2}
PACED_C=${PACED_C:-1}
NONSTREAM_C=${NONSTREAM_C:-64}
PARTS=${COUNT_PARTS:-"paced nonstream sys"}
need_tools valgrind callgrind_control node curl taskset awk
need_gateway
[ "$(sys_tool)" = perf ] || need_tools strace

out=$BENCH_TMP/oai-mock.out
taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/spec/e2e/mock/openai.js" --port 0 >"$out" 2>&1 &
BENCH_PIDS+=("$!")
oport=
for _ in $(seq 1 100); do
    oport=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$out")
    [ -n "$oport" ] && break
    sleep 0.1
done
[ -n "$oport" ] || { cat "$out" >&2; die "the OpenAI mock did not start"; }
start_mock "gpt-4=chunks-1-0,gpt-4o=chunks-20-5"

gw() { # NAME
    start_gateway "$1" OPENAI_BASE_URL="http://127.0.0.1:$oport/v1" OPENAI_API_KEY=bench-key \
        OPENAI_MODELS="m,chunks-20-5" RATE_LIMIT_ENABLED=false \
        GPT_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" VERTEX_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" \
        MAX_POOL_SIZE=4 STREAM_TIMEOUT=0 MAX_CONNECTIONS=20000 BREAKER_FAILURES=1000000 \
        UPSTREAM_CONNECT_TIMEOUT=60
}

streams() { # PORT MODEL N
    local o
    o=$(taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/bench/stream/load.js" --mode gw --port "$1" \
        --conc "$PACED_C" --model "$2" --streams "$3" --chunks 20 --duration 1 --timeout 1800)
    grep -q '"failures":0,' <<<"$o" || die "stream run failed: $o"
}

requests() { # PORT MODEL N
    taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/bench/lib/drive.js" --port "$1" --mode chat \
        --model "$2" --n "$3" --conc "$NONSTREAM_C" || die "requests failed"
}

echo "# $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg), $(valgrind --version)"
cg_wrap oai
gw cg
pid=$STARTED_PID port=$STARTED_PORT
cg_unwrap
for part in $PARTS; do
    case "$part" in
        paced)
            streams "$port" chunks-20-5 "$WARM"
            streams "$port" gpt-4o "$WARM"
            for w in $(seq 1 "$WINDOWS"); do
                for m in chunks-20-5 gpt-4o; do
                    r=$(cg_window "$pid" "$((PACED * 20))" streams "$port" "$m" "$PACED")
                    printf "  window %d %-12s %7s instr/chunk (other threads %s)\n" "$w" "$m" \
                        "$(cut -d' ' -f4 <<<"$r")" "$(cut -d' ' -f2 <<<"$r")"
                done
            done ;;
        nonstream)
            requests "$port" m "$WARM"
            requests "$port" gpt-4 "$WARM"
            for w in $(seq 1 "$WINDOWS"); do
                for m in m gpt-4; do
                    r=$(cg_window "$pid" "$NONSTREAM" requests "$port" "$m" "$NONSTREAM")
                    printf "  window %d %-12s %7s instr/request\n" "$w" "$m" \
                        "$(cut -d' ' -f4 <<<"$r")"
                done
            done ;;
    esac
done
kill "$pid" 2>/dev/null || true
if [[ " $PARTS " == *" sys "* ]]; then
    gw sys
    pid=$STARTED_PID port=$STARTED_PORT
    streams "$port" chunks-20-5 20
    requests "$port" m "$NONSTREAM"
    for m in m gpt-4; do
        echo "  syscalls/request $m: $(sys_window "$pid" "$NONSTREAM" requests "$port" "$m" \
            "$NONSTREAM" | cut -d' ' -f3-)"
    done
    for m in chunks-20-5 gpt-4o; do
        echo "  syscalls/chunk $m: $(sys_window "$pid" "$((PACED * 20))" streams "$port" "$m" \
            "$PACED" | cut -d' ' -f3-)"
    done
    kill "$pid" 2>/dev/null || true
fi
echo "# callgrind dumps: $CG_DIR (kept with KEEP=1)"
[ -z "${KEEP:-}" ] || { cp -r "$CG_DIR" "${KEEP}"; echo "# copied to $KEEP"; }
