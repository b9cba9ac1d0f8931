#!/usr/bin/env bash
# pieces-gateway: what a plain relay (nginx) costs per SSE stream on this machine, against the
# gateway relaying the same streams: the floor of bench/stream.sh's CPU per stream.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Three servers, each alone on CPU 0 (SERVER_CPU), one worker, in front of a mock upstream on
# CPU 1 (CLIENT_CPU) with the load client (bench/stream/load.js --mode gw: STREAM_C keep-alive
# connections, closed loop POST /v1/chat/completions {"stream": true}; every stream must be a
# 200 with exactly 20 content deltas "c0 ".."c19 " in order and end with "data: [DONE]", or the
# script stops):
#   nginx       Debian's nginx as a plain reverse proxy (bench/lib/peers.sh nginx_relay_conf:
#               proxy_pass to the Node OpenAI-compatible mock spec/e2e/mock/openai.js,
#               proxy_http_version 1.1, upstream keepalive, proxy_buffering off: each chunk
#               read from the mock is written to the client at once); it relays the mock's SSE
#               bytes (de-chunked and re-chunked) and parses nothing in them
#   gw-openai   the gateway with the OpenAI-compatible backend (OPENAI_BASE_URL) in front of the
#               same mock: parses each event, re-encodes it, counts tokens
#   gw-pieces   the gateway with the Pieces backend (h2c gRPC to the grpc-js mock
#               bench/stream/mock.js, as in bench/stream.sh); the same gateway process
# Two shapes: 20 chunks back to back (model chunks-20-0; Pieces: gpt-4o-mini) and 5 ms apart
# (chunks-20-5; Pieces: gpt-4o), what a real model server does. The OpenAI mock sends a role
# chunk, the 20 content chunks, a finish chunk and [DONE] (23 events, 22 gaps when paced); the
# grpc-js mock sends 20 messages and an end frame (20 gaps): the per-chunk figures divide by 20.
# Parts (PARTS, default "cpu sys instr"):
#   cpu    RUNS (default 3) rounds of DURATION (default 4) s per server and shape, the three
#          servers back to back (order reversed in even rounds): CPU-us per stream of the
#          serving process (utime+stime from /proc/<pid>/stat, and the ns twin from schedstat),
#          its kernel share (stime / (utime+stime)), streams/s, run-queue wait; then per
#          round the ratio gateway / nginx, and their median, min, max and spread
#          (bench/lib/common.sh pair_ratios): a load change between rounds cancels out
#   sys    system calls per chunk of the serving thread over SYS_STREAMS (500) streams at
#          C=STREAM_C, both shapes, and over SYS_PACED_STREAMS (20) paced streams at
#          C=SYS_PACED_C (1: every chunk alone, a count the machine's load does not change; at
#          C=50 a server that runs late finds several chunks per wake-up) (perf stat on the
#          raw_syscalls tracepoints, or strace -c -f: bench/lib/count.sh sys_window), with the
#          calls it made most
#   instr  user-space instructions per chunk of the serving thread (valgrind --tool=callgrind,
#          instrumentation on only for the counted windows; nginx with master_process off),
#          after WARM_STREAMS (1000) back-to-back streams per path: WINDOWS (3) windows each of
#          CG_STREAMS (200) back-to-back streams at C=STREAM_C and CG_PACED_STREAMS (20) paced
#          streams at C=CG_PACED_C (1: every chunk arrives alone, also under valgrind)
# With the utime/stime split (cpu) and the instructions (instr), the kernel's part of each
# server's cost can be stated: what nginx pays per chunk is mostly the loopback TCP work that
# any relay pays on this machine. (The split is sampled at each tick; a loopback send's softirq
# work, the delivery to the receiver, is system time of the sender.)
# Usage: bench/stream_relay.sh   (RUNS=3 DURATION=4 STREAM_C=50 PARTS="cpu sys instr";
#        bench/lib/common.sh). Needs the e2e npm packages (scripts/npm-ci.sh spec/e2e).
set -euo pipefail
DURATION=${DURATION:-4}
RUNS=${RUNS:-3}
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=bench/lib/peers.sh
source "$(dirname "$0")/lib/peers.sh"
# shellcheck source=bench/lib/count.sh
source "$(dirname "$0")/lib/count.sh"

STREAM_C=${STREAM_C:-50}
PARTS=${PARTS:-"cpu sys instr"}
SYS_STREAMS=${SYS_STREAMS:-500}
SYS_PACED_STREAMS=${SYS_PACED_STREAMS:-20}
SYS_PACED_C=${SYS_PACED_C:-1}
WARM_STREAMS=${WARM_STREAMS:-1000}
WINDOWS=${WINDOWS:-3}
CG_STREAMS=${CG_STREAMS:-200}
CG_PACED_STREAMS=${CG_PACED_STREAMS:-20}
CG_PACED_C=${CG_PACED_C:-1}
SHAPES="chunks-20-0 chunks-20-5"
SERVERS="nginx gw-openai gw-pieces"
declare -A SHAPE_NAME=([chunks-20-0]="back to back" [chunks-20-5]="paced 5 ms")
declare -A PIECES_MODEL=([chunks-20-0]=gpt-4o-mini [chunks-20-5]=gpt-4o)

want() { [[ " $PARTS " == *" $1 "* ]]; }
for p in $PARTS; do
    [[ " cpu sys instr " == *" $p "* ]] || die "unknown part '$p' in PARTS (cpu, sys, instr)"
done
need_tools node nginx curl taskset ss awk
want instr && need_tools valgrind callgrind_control
want sys && { [ "$(sys_tool)" = perf ] || need_tools strace; }
need_gateway
[ -d "$BENCH_ROOT/spec/e2e/node_modules/@grpc/grpc-js" ] ||
    die "no spec/e2e/node_modules: run scripts/npm-ci.sh spec/e2e (or: cd spec/e2e && npm ci)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((STREAM_C * 4 + 256)) ] || die "ulimit -n $(ulimit -n) is too low"

# the two mocks, on the client's core
start_oai_mock
start_mock "gpt-4o-mini=chunks-20-0,gpt-4o=chunks-20-5"
GRPC_PORT=$MOCK_PORT
GW_ENV=(OPENAI_BASE_URL="http://127.0.0.1:$OAI_MOCK_PORT/v1" OPENAI_API_KEY=bench-key
    OPENAI_MODELS="chunks-20-0,chunks-20-5" GPT_GRPC_ADDR="http://127.0.0.1:$GRPC_PORT"
    VERTEX_GRPC_ADDR="http://127.0.0.1:$GRPC_PORT" RATE_LIMIT_ENABLED=false STREAM_TIMEOUT=0
    MAX_POOL_SIZE=4 MAX_CONNECTIONS=20000 BREAKER_FAILURES=1000000 UPSTREAM_CONNECT_TIMEOUT=60)
nginx_relay_conf "$BENCH_TMP/relay.conf" "$OAI_MOCK_PORT"

# start_pair TAG: the gateway and nginx (under valgrind when cg_wrap was called). Sets GW_PID,
# GW_PORT, NGX_PID (the process that serves: the worker, or the master_process-off process
# under valgrind), NGX_PORT, NGX_MASTER.
start_pair() {
    local tag=$1
    # shellcheck disable=SC2034 # NGINX_MAIN is read by start_nginx
    NGINX_MAIN=
    [ "${#NGINX_WRAP[@]}" -eq 0 ] || NGINX_MAIN="master_process off;"
    start_gateway "relay-$tag" "${GW_ENV[@]}"
    GW_PID=$STARTED_PID GW_PORT=$STARTED_PORT
    start_nginx "relay-$tag" "$BENCH_TMP/relay.conf"
    NGX_MASTER=$STARTED_PID NGX_PORT=$STARTED_PORT NGX_PID=$STARTED_PID
    if [ -z "$NGINX_MAIN" ]; then
        for _ in $(seq 1 50); do
            NGX_PID=$(children_of "$STARTED_PID" | head -1)
            [ -n "$NGX_PID" ] && break
            sleep 0.1
        done
        [ -n "$NGX_PID" ] || die "no nginx worker under $STARTED_PID"
    fi
}

# target SERVER SHAPE: "<pid> <port> <model>" of one server for one shape
target() {
    case "$1" in
        nginx) echo "$NGX_PID $NGX_PORT $2" ;;
        gw-openai) echo "$GW_PID $GW_PORT $2" ;;
        gw-pieces) echo "$GW_PID $GW_PORT ${PIECES_MODEL[$2]}" ;;
    esac
}

alive() {
    kill -0 "$GW_PID" 2>/dev/null || { tail -20 "$BENCH_TMP/gw-relay-$1/out.log" >&2
        die "the gateway died"; }
    kill -0 "$NGX_PID" 2>/dev/null || { tail -20 "$BENCH_TMP/nginx-relay-$1/logs/error.log" >&2
        die "nginx died"; }
}

# utime stime (clock ticks) of PID, all its threads
ut_st() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }

field() { sed -n "s/.*\"$1\":\\([-0-9.e]*\\).*/\\1/p" <<<"$2"; }

# run_load PID PORT MODEL: one DURATION-s closed-loop run at C=STREAM_C; dies on any bad stream.
# Prints "<CPU-us/stream> <schedstat us/stream> <streams/s> <kernel %> <run-queue wait %>
# <TTFB p99 ms>"
run_load() {
    local pid=$1 port=$2 model=$3 out a b
    a=$(ut_st "$pid")
    out=$(taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/bench/stream/load.js" --mode gw \
        --port "$port" --conc "$STREAM_C" --model "$model" --duration "$DURATION" --chunks 20 \
        --clk-tck "$CLK_TCK" --pid "$pid")
    b=$(ut_st "$pid")
    if [ "$(field failures "$out")" != 0 ] || [ "$(field streams "$out")" = 0 ]; then
        echo "$out" >&2
        die "bad streams from port $port (model $model)"
    fi
    awk -v a="$a" -v b="$b" -v c="$(field cpu_us_per_stream "$out")" \
        -v s="$(field cpu_us_per_stream_schedstat "$out")" -v r="$(field streams_per_s "$out")" \
        -v w="$(field run_queue_wait_pct "$out")" -v p="$(field ttfb_p99_ms "$out")" 'BEGIN {
        split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; k = y[2] - x[2]
        printf "%s %s %s %.0f %s %s\n", c, s, r, (u + k) ? 100 * k / (u + k) : 0, w, p }'
}

# med_range [DECIMALS]: "median (min..max)" of the numbers on stdin (default 1 decimal)
med_range() {
    sort -g | awk -v d="${1:-1}" '{ a[NR] = $1 } END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        f = "%." d "f"
        printf f " (" f ".." f ")", m, a[1], a[NR] }'
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$("$NGINX" -v 2>&1 | sed 's/.*version: //'), node $(node --version)"
echo "# servers on CPU $SERVER_CPU (one worker each), mocks and load.js on CPU $CLIENT_CPU;" \
    "C=$STREAM_C 20-chunk streams; parts: $PARTS"
grep -q . /sys/devices/system/cpu/vulnerabilities/spec_rstack_overflow 2>/dev/null &&
    echo "# SRSO: $(cat /sys/devices/system/cpu/vulnerabilities/spec_rstack_overflow)"

declare -A MED=() SYSC=() INSTR=()
if want cpu || want sys; then
    start_pair native
    # warm-up: connections to the upstreams (nginx keeps them alive), JIT traces, allocator
    for shape in $SHAPES; do
        for srv in $SERVERS; do
            read -r pid port model <<<"$(target "$srv" "$shape")"
            load_streams "$port" "$STREAM_C" "$model" "$((STREAM_C * 10))" >/dev/null
        done
    done
    alive native
fi

if want cpu; then
    echo
    echo "CPU per stream: ${DURATION}s per run, $RUNS rounds; per run: CPU-us/stream" \
        "(utime+stime; schedstat), streams/s, kernel share, run-queue wait, TTFB p99"
    for run in $(seq 1 "$RUNS"); do
        order=$SERVERS
        [ $((run % 2)) -eq 1 ] || order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
        for shape in $SHAPES; do
            for srv in $order; do
                read -r pid port model <<<"$(target "$srv" "$shape")"
                run_load "$pid" "$port" "$model" >"$BENCH_TMP/last"
                cat "$BENCH_TMP/last" >>"$BENCH_TMP/cpu-$shape-$srv"
                alive native
                awk -v r="$run" -v s="${SHAPE_NAME[$shape]}" -v n="$srv" '{ printf \
                    "  run %d %-12s %-9s %6.1f us/stream (sched %6.1f) %5.0f/s kernel %3d %% wait %4.1f %% p99 %6.2f ms\n",
                    r, s, n, $1, $2, $3, $4, $5, $6 }' "$BENCH_TMP/last"
            done
            for gw in gw-openai gw-pieces; do
                paste -d' ' <(tail -1 "$BENCH_TMP/cpu-$shape-$gw") \
                    <(tail -1 "$BENCH_TMP/cpu-$shape-nginx") | awk -v g="$gw" '{ printf \
                    "    %s / nginx: %.2f (schedstat %.2f)\n", g, $1 / $7, $2 / $8 }'
            done
        done
    done
    echo
    echo "CPU-us per stream: median (min..max) of the $RUNS runs; ratios of the run pairs"
    for shape in $SHAPES; do
        for srv in $SERVERS; do
            MED[$shape-$srv]=$(cut -d' ' -f1 "$BENCH_TMP/cpu-$shape-$srv" | median)
            printf '  %-12s %-9s %s us/stream, %s per chunk, kernel %s %%\n' \
                "${SHAPE_NAME[$shape]}" "$srv" \
                "$(cut -d' ' -f1 "$BENCH_TMP/cpu-$shape-$srv" | med_range)" \
                "$(awk -v m="${MED[$shape-$srv]}" 'BEGIN { printf "%.1f", m / 20 }')" \
                "$(cut -d' ' -f4 "$BENCH_TMP/cpu-$shape-$srv" | median)"
        done
        for gw in gw-openai gw-pieces; do
            pair_ratios "${SHAPE_NAME[$shape]} $gw/nginx" "$BENCH_TMP/cpu-$shape-$gw" \
                "$BENCH_TMP/cpu-$shape-nginx" 1
            MED[ratio-$shape-$gw]=$PAIR_MEDIAN
            pair_ratios "${SHAPE_NAME[$shape]} $gw/nginx (schedstat)" \
                "$BENCH_TMP/cpu-$shape-$gw" "$BENCH_TMP/cpu-$shape-nginx" 2
        done
    done
fi

if want sys; then
    echo
    echo "System calls per chunk of the serving thread ($(sys_tool)): total, then the calls" \
        "made most; $SYS_STREAMS streams x 20 chunks at C=$STREAM_C, and $SYS_PACED_STREAMS" \
        "paced at C=$SYS_PACED_C"
    # at C=STREAM_C a server that runs late finds several chunks per wake-up (fewer epoll_wait
    # and reads per chunk on a busy machine); at C=SYS_PACED_C paced, every chunk comes alone
    for run in "chunks-20-0 $STREAM_C $SYS_STREAMS" "chunks-20-5 $STREAM_C $SYS_STREAMS" \
        "chunks-20-5 $SYS_PACED_C $SYS_PACED_STREAMS"; do
        read -r shape c n <<<"$run"
        key=$shape
        [ "$c" = "$STREAM_C" ] || key=$shape-c$c
        for srv in $SERVERS; do
            read -r pid port model <<<"$(target "$srv" "$shape")"
            s=$(sys_window "$pid" "$((n * 20))" load_streams "$port" "$c" "$model" "$n")
            SYSC[$key-$srv]=$(cut -d' ' -f3 <<<"$s")
            printf '  %-12s C=%-3s %-9s %s (%s per stream)\n' "${SHAPE_NAME[$shape]}" "$c" \
                "$srv" "$(cut -d' ' -f3- <<<"$s")" \
                "$(awk -v c="${SYSC[$key-$srv]}" 'BEGIN { printf "%.1f", c * 20 }')"
        done
    done
    alive native
fi
if want cpu || want sys; then
    kill "$GW_PID" "$NGX_MASTER" 2>/dev/null || true
fi

if want instr; then
    echo
    echo "User-space instructions per chunk of the serving thread (callgrind; $WINDOWS windows:" \
        "$CG_STREAMS streams back to back at C=$STREAM_C, $CG_PACED_STREAMS paced at" \
        "C=$CG_PACED_C; after $WARM_STREAMS streams of warm-up per path)"
    cg_wrap relay
    start_pair cg
    cg_unwrap
    # nginx last: its kept-alive upstream connections must not idle out (25 s) before its windows
    for srv in gw-pieces gw-openai nginx; do
        for shape in $SHAPES; do
            read -r pid port model <<<"$(target "$srv" "$shape")"
            n=$WARM_STREAMS
            [ "$shape" = chunks-20-0 ] || n=$((WARM_STREAMS / 10))
            load_streams "$port" "$STREAM_C" "$model" "$n" >/dev/null
        done
    done
    for w in $(seq 1 "$WINDOWS"); do
        for shape in $SHAPES; do
            c=$STREAM_C n=$CG_STREAMS
            [ "$shape" = chunks-20-0 ] || c=$CG_PACED_C n=$CG_PACED_STREAMS
            for srv in $SERVERS; do
                read -r pid port model <<<"$(target "$srv" "$shape")"
                CG_NAME=relay
                cg_window "$pid" "$((n * 20))" load_streams "$port" "$c" "$model" "$n" \
                    >"$BENCH_TMP/last"
                cut -d' ' -f4 "$BENCH_TMP/last" >>"$BENCH_TMP/ir-$shape-$srv"
                awk -v w="$w" -v s="${SHAPE_NAME[$shape]}" -v v="$srv" -v u="$((n * 20))" '{
                    printf "  window %d %-12s %-9s %7.0f instr/chunk (other threads %5.0f/chunk, %.1f s)\n",
                    w, s, v, $4, $2 / u, $3 }' "$BENCH_TMP/last"
            done
        done
    done
    alive cg
    for shape in $SHAPES; do
        for srv in $SERVERS; do
            INSTR[$shape-$srv]=$(median <"$BENCH_TMP/ir-$shape-$srv")
            printf '  %-12s %-9s %s instr/chunk (median, min..max)\n' "${SHAPE_NAME[$shape]}" \
                "$srv" "$(med_range 0 <"$BENCH_TMP/ir-$shape-$srv")"
        done
    done
    kill "$GW_PID" "$NGX_PID" 2>/dev/null || true
fi

echo
echo "# end $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
res="RESULT stream_relay"
for shape in $SHAPES; do
    tag=b2b
    [ "$shape" = chunks-20-0 ] || tag=paced
    for srv in $SERVERS; do
        k=${srv//-/_}
        want cpu && res="$res ${k}_${tag}_us=${MED[$shape-$srv]}"
        want sys && res="$res ${k}_${tag}_syscalls_per_chunk=${SYSC[$shape-$srv]}"
        [ "$tag" = b2b ] || ! want sys ||
            res="$res ${k}_paced_c${SYS_PACED_C}_syscalls_per_chunk=${SYSC[$shape-c$SYS_PACED_C-$srv]}"
        want instr && res="$res ${k}_${tag}_instr_per_chunk=${INSTR[$shape-$srv]}"
    done
    if want cpu; then
        res="$res openai_nginx_${tag}_ratio=${MED[ratio-$shape-gw-openai]}"
        res="$res pieces_nginx_${tag}_ratio=${MED[ratio-$shape-gw-pieces]}"
    fi
done
echo "$res"
