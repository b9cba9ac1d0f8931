#!/usr/bin/env bash
# pieces-gateway: instructions and system calls per request and per streamed chunk, the gateway
# against the nginx peers in the same script: figures that hold on a busy machine.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# CPU-us per request (bench/policy_chain.sh, http_models.sh, stream.sh) moves by 10-50 % when
# other programs share the machine. Two counts do not:
#   instructions  user-space instructions of the serving thread, from valgrind --tool=callgrind
#                 started with instrumentation off; after a warm-up of at least WARM requests
#                 and WARM_S seconds (see "Warm-up" below), WINDOWS windows of exactly REQS
#                 requests each are counted (callgrind_control
#                 --zero, -i on, the load, -i off, --dump), and Ir / REQS is printed per window
#                 with the median. The other threads of the gateway (main loop timers, the
#                 persistence thread: work per second, not per request) are shown apart.
#   system calls  the same servers started natively (no valgrind) with perf stat counting the
#                 raw_syscalls tracepoints of each thread (SYS_TOOL=strace: strace -c -f) over
#                 SYS_REQS requests after WARM_SYS: calls per request, the busiest thread, with
#                 the calls it made most. (Connections are set up before each counted run; with
#                 CONNS keep-alive connections epoll_wait batches, so its share depends a little
#                 on how fast the client is: compare read/write counts first.)
# Loads of a fixed size: bench/lib/nreq.c (HTTP, CONNS connections, exactly N requests) and
# bench/stream/load.js --streams N (exactly N streams). Paths (COUNT_PATHS, default all):
#   policy  GET /v1/models + Bearer: gateway chain (auth, ip_rules, rate_limit, blacklist;
#           bench/policy_chain.sh's set-up) against nginx + lua doing the same checks
#   plain   GET /v1/models: gateway without policies against nginx serving the file
#   store   GET /v1/models + Bearer: the policy chain with the local store (gateway) against
#           the same chain with SHARED_STORE=redis://... (a redis-server on the load's core;
#           SHARED_STORE_TIMEOUT_MS=10000 so that valgrind's slowness times nothing out, the
#           timeout's value costs nothing per call): what the Redis round trip adds
#   stream  20-chunk streams (bench/stream.sh's mock and set-up, gateway only): back to back at
#           C=STREAM_C (default 50) and paced 5 ms apart at C=PACED_C (default 1: every chunk
#           arrives on its own, also under valgrind), per chunk (streams x 20)
# Warm-up: LuaJIT keeps changing its traces long after start. A trace start that aborts is
# retried with a penalty that doubles (plus random low bits: the PRNG is seeded from the OS)
# up to 60000 hot-counter ticks before it is blacklisted, so a spot hit once per request keeps
# recompiling for ~75k requests; and rate_limit takes another code path once the previous
# window's counter exists, i.e. RATE_LIMIT_WINDOW (60 s) after the first request: a trace set
# formed before that is invalidated and rebuilt. Counting before both happened gave figures
# 10 % apart in one process (41.6k then 45.5k instructions per request) and up to 2x across
# tools and set-ups; so the warm-up runs for WARM requests AND WARM_S seconds, both servers of
# a pair at once.
# Knobs: WARM (100000), WARM_S (65), REQS (2000), WINDOWS (3), WARM_SYS (5000), SYS_REQS (20000),
# CONNS (64), STREAMS (200), PACED_STREAMS (20), WARM_STREAMS (1000), CG_OPTS (extra valgrind
# options), GW_BIN, SERVER_CPU, CLIENT_CPU. A run takes ~20-40 minutes on a busy machine.
# Usage: bench/counts.sh [policy] [plain] [store] [stream]
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=bench/lib/peers.sh
source "$(dirname "$0")/lib/peers.sh"
# shellcheck source=bench/lib/count.sh
source "$(dirname "$0")/lib/count.sh"

WARM=${WARM:-100000}
WARM_S=${WARM_S:-65}
REQS=${REQS:-2000}
WINDOWS=${WINDOWS:-3}
WARM_SYS=${WARM_SYS:-5000}
SYS_REQS=${SYS_REQS:-20000}
STREAMS=${STREAMS:-200}
PACED_STREAMS=${PACED_STREAMS:-20}
WARM_STREAMS=${WARM_STREAMS:-1000}
STREAM_C=${STREAM_C:-50}
PACED_C=${PACED_C:-1}
COUNT_PATHS=${*:-${COUNT_PATHS:-policy plain stream}}

need_tools valgrind callgrind_control cc curl taskset ss awk
need_gateway
[ "$(sys_tool)" = perf ] || need_tools strace
nreq_build

KEY=sk-bench-0123456789abcdef0123456789abcdef
BLACK="203.0.113.7,198.51.100.0/24,10.9.0.0/16,2001:db8::/32"
LIMIT=1000000000
AUTH="Authorization: Bearer $KEY"
CHAIN_ENV=(API_KEY="$KEY" IP_BLACKLIST="$BLACK" RATE_LIMIT_ENABLED=true RATE_LIMIT="$LIMIT"
    RATE_LIMIT_WINDOW=60 BLACKLIST_MODE=single)
WWW=$BENCH_TMP/www

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(valgrind --version), syscalls: $(sys_tool); servers on CPU $SERVER_CPU, load on" \
    "CPU $CLIENT_CPU; paths: $COUNT_PATHS"
echo "# instructions: Ir of the serving thread / unit, $WINDOWS windows after a warm-up" \
    "(per window, then the median); syscalls: natively, per unit"

# start_server KIND NAME: KIND gw-chain | gw-plain | gw-stream | ngx-lua | ngx-static. Sets
# SRV_PID (the process that serves: the gateway, or nginx's worker) and SRV_PORT. Under
# valgrind (NGINX_WRAP set) nginx runs with master_process off: one process that serves, the
# same request path as a worker's, and no fork for valgrind to follow.
start_server() {
    local kind=$1 name=$2 main=""
    # shellcheck disable=SC2034 # NGINX_MAIN is read by start_nginx
    [ "${#NGINX_WRAP[@]}" -eq 0 ] || main="master_process off;"
    case "$kind" in
        gw-chain) start_gateway "$name" "${CHAIN_ENV[@]}" ;;
        gw-plain) start_gateway "$name" RATE_LIMIT_ENABLED=false ;;
        gw-redis) start_redis
            start_gateway "$name" "${CHAIN_ENV[@]}" SHARED_STORE_TIMEOUT_MS=10000 \
                SHARED_STORE="redis://127.0.0.1:$REDIS_PORT/0"
            wait_store "$STARTED_PORT" ;;
        gw-stream) start_gateway "$name" GPT_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" \
            VERTEX_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" RATE_LIMIT_ENABLED=false \
            STREAM_TIMEOUT=0 MAX_POOL_SIZE=4 MAX_CONNECTIONS=20000 ;;
        ngx-lua)
            NGINX_MAIN="$NGINX_LUA_MAIN
$main"
            nginx_lua_conf "$BENCH_TMP/$name.conf" "$KEY" "$BLACK" "$LIMIT" "$WWW"
            start_nginx "$name" "$BENCH_TMP/$name.conf" ;;
        ngx-static)
            # shellcheck disable=SC2034 # read by start_nginx
            NGINX_MAIN=$main
            nginx_static_conf "$BENCH_TMP/$name.conf" "$WWW"
            start_nginx "$name" "$BENCH_TMP/$name.conf" ;;
    esac
    SRV_PID=$STARTED_PID
    SRV_PORT=$STARTED_PORT
    if [[ "$kind" == ngx-* ]] && [ -z "$main" ]; then
        SRV_PID=$(children_of "$STARTED_PID" | head -1)
        [ -n "$SRV_PID" ] || die "no nginx worker under $STARTED_PID"
    fi
}

# start_redis: one redis-server (no persistence) on the load's core, once. Sets REDIS_PORT.
start_redis() {
    [ -n "${REDIS_PORT:-}" ] && return 0
    need_tools redis-server redis-cli
    REDIS_PORT=$(free_port)
    taskset -c "$CLIENT_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
        --appendonly no >"$BENCH_TMP/redis.log" 2>&1 &
    BENCH_PIDS+=("$!")
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "redis-server did not start"
}

# wait_store PORT: until the gateway's store is connected (GET /)
wait_store() {
    for _ in $(seq 1 600); do
        curl -s "http://127.0.0.1:$1/" | grep -q '"connected":true' && return 0
        sleep 0.1
    done
    die "the gateway on $1 did not connect to Redis"
}

# the JSON both nginx peers serve: the gateway's own /v1/models answer
ensure_www() {
    [ -f "$WWW/v1/models" ] && return 0
    mkdir -p "$WWW/v1"
    start_gateway www "${CHAIN_ENV[@]}"
    body_of "http://127.0.0.1:$STARTED_PORT/v1/models" -H "$AUTH" >"$WWW/v1/models"
    kill "$STARTED_PID"
}

# warm_up PORT [nreq -H args]: GET /v1/models until WARM requests were answered and WARM_S
# seconds have passed
warm_up() {
    local port=$1 n=0 t0=$SECONDS
    shift
    while [ "$n" -lt "$WARM" ] || [ $((SECONDS - t0)) -lt "$WARM_S" ]; do
        nreq -n 5000 -c "$CONNS" -p /v1/models "$@" 127.0.0.1 "$port" >/dev/null || return 1
        n=$((n + 5000))
    done
}

# http_pair LABEL GW_KIND NGX_KIND NGX_LABEL [nreq -H args]: both servers, instructions then
# system calls, interleaved window by window.
http_pair() {
    local label=$1 gk=$2 nk=$3 nlabel=$4 w gpid gport npid nport
    shift 4
    ensure_www
    echo
    echo "$label: GET /v1/models, $CONNS connections"
    cg_wrap "$gk"
    start_server "$gk" "cg-$gk"
    gpid=$SRV_PID gport=$SRV_PORT
    cg_wrap "$nk"
    start_server "$nk" "cg-$nk"
    npid=$SRV_PID nport=$SRV_PORT
    cg_unwrap
    warm_up "$gport" "$@" &
    local wg=$!
    warm_up "$nport" "$@" || die "the warm-up of $nlabel failed"
    wait "$wg" || die "the warm-up of the gateway failed"
    : >"$BENCH_TMP/g.ir"
    : >"$BENCH_TMP/n.ir"
    for w in $(seq 1 "$WINDOWS"); do
        CG_NAME=$gk
        cg_window "$gpid" "$REQS" nreq -n "$REQS" -c "$CONNS" -p /v1/models "$@" 127.0.0.1 \
            "$gport" | tee -a "$BENCH_TMP/g.ir" | awk -v w="$w" -v n="$REQS" '{ printf \
            "  window %d gateway: %7.0f instr/req (other threads %5.0f/req, %.1f s)\n", w, $4,
            $2 / n, $3 }'
        CG_NAME=$nk
        cg_window "$npid" "$REQS" nreq -n "$REQS" -c "$CONNS" -p /v1/models "$@" 127.0.0.1 \
            "$nport" | tee -a "$BENCH_TMP/n.ir" | awk -v w="$w" -v l="$nlabel" '{ printf \
            "  window %d %-8s %7.0f instr/req (%.1f s)\n", w, l ":", $4, $3 }'
    done
    kill "$gpid" "$STARTED_PID" 2>/dev/null || true
    G_IR=$(cut -d' ' -f4 "$BENCH_TMP/g.ir" | stats)
    N_IR=$(cut -d' ' -f4 "$BENCH_TMP/n.ir" | stats)
    echo "  instructions/request: gateway $G_IR; $nlabel $N_IR; ratio" \
        "$(awk -v a="${G_IR%% *}" -v b="${N_IR%% *}" 'BEGIN { printf "%.2f", a / b }')"
    # system calls, natively
    start_server "$gk" "sys-$gk"
    gpid=$SRV_PID gport=$SRV_PORT
    start_server "$nk" "sys-$nk"
    npid=$SRV_PID nport=$SRV_PORT
    nreq -n "$WARM_SYS" -c "$CONNS" -p /v1/models "$@" 127.0.0.1 "$gport" >/dev/null
    nreq -n "$WARM_SYS" -c "$CONNS" -p /v1/models "$@" 127.0.0.1 "$nport" >/dev/null
    G_SYS=$(sys_window "$gpid" "$SYS_REQS" nreq -n "$SYS_REQS" -c "$CONNS" -p /v1/models "$@" \
        127.0.0.1 "$gport")
    N_SYS=$(sys_window "$npid" "$SYS_REQS" nreq -n "$SYS_REQS" -c "$CONNS" -p /v1/models "$@" \
        127.0.0.1 "$nport")
    echo "  syscalls/request ($SYS_REQS requests): gateway $(cut -d' ' -f3- <<<"$G_SYS")"
    echo "  syscalls/request ($SYS_REQS requests): $nlabel $(cut -d' ' -f3- <<<"$N_SYS")"
    kill "$gpid" "$STARTED_PID" 2>/dev/null || true
    echo "RESULT counts_$gk instr_per_req=${G_IR%% *} peer_instr_per_req=${N_IR%% *}" \
        "syscalls_per_req=$(cut -d' ' -f3 <<<"$G_SYS")" \
        "peer_syscalls_per_req=$(cut -d' ' -f3 <<<"$N_SYS")"
}

stream_counts() {
    local pid port w shape c model n units
    need_tools node
    [ -d "$BENCH_ROOT/spec/e2e/node_modules/@grpc/grpc-js" ] ||
        die "no spec/e2e/node_modules: run scripts/npm-ci.sh (or: cd spec/e2e && npm ci)"
    start_mock "gpt-4o-mini=chunks-20-0,gpt-4o=chunks-20-5"
    echo
    echo "stream: POST /v1/chat/completions stream=true, 20 chunks; back to back (C=$STREAM_C," \
        "$STREAMS streams/window) and 5 ms apart (C=$PACED_C, $PACED_STREAMS streams/window)"
    cg_wrap gw-stream
    start_server gw-stream cg-stream
    pid=$SRV_PID port=$SRV_PORT
    cg_unwrap
    load_streams "$port" "$STREAM_C" gpt-4o-mini "$WARM_STREAMS" >/dev/null
    load_streams "$port" "$PACED_C" gpt-4o "$((WARM_STREAMS / 10))" >/dev/null
    : >"$BENCH_TMP/s-tput.ir"
    : >"$BENCH_TMP/s-paced.ir"
    for w in $(seq 1 "$WINDOWS"); do
        for shape in tput paced; do
            if [ "$shape" = tput ]; then
                c=$STREAM_C model=gpt-4o-mini n=$STREAMS
            else
                c=$PACED_C model=gpt-4o n=$PACED_STREAMS
            fi
            units=$((n * 20))
            cg_window "$pid" "$units" load_streams "$port" "$c" "$model" "$n" |
                tee -a "$BENCH_TMP/s-$shape.ir" | awk -v w="$w" -v s="$shape" -v u="$units" '{
                printf "  window %d %-5s %7.0f instr/chunk (other threads %4.0f/chunk, %.1f s)\n",
                w, s, $4, $2 / u, $3 }'
        done
    done
    kill "$pid" 2>/dev/null || true
    T_IR=$(cut -d' ' -f4 "$BENCH_TMP/s-tput.ir" | stats)
    P_IR=$(cut -d' ' -f4 "$BENCH_TMP/s-paced.ir" | stats)
    echo "  instructions/chunk: back to back $T_IR; paced $P_IR"
    start_server gw-stream sys-stream
    pid=$SRV_PID port=$SRV_PORT
    load_streams "$port" "$STREAM_C" gpt-4o-mini "$WARM_STREAMS" >/dev/null
    T_SYS=$(sys_window "$pid" "$((STREAMS * 5 * 20))" load_streams "$port" "$STREAM_C" \
        gpt-4o-mini "$((STREAMS * 5))")
    P_SYS=$(sys_window "$pid" "$((PACED_STREAMS * 20))" load_streams "$port" "$PACED_C" gpt-4o \
        "$PACED_STREAMS")
    P50_SYS=$(sys_window "$pid" "$((STREAMS * 20))" load_streams "$port" "$STREAM_C" gpt-4o \
        "$STREAMS")
    echo "  syscalls/chunk back to back, C=$STREAM_C: $(cut -d' ' -f3- <<<"$T_SYS")"
    echo "  syscalls/chunk paced, C=$PACED_C: $(cut -d' ' -f3- <<<"$P_SYS")"
    echo "  syscalls/chunk paced, C=$STREAM_C: $(cut -d' ' -f3- <<<"$P50_SYS")"
    kill "$pid" 2>/dev/null || true
    echo "RESULT counts_stream tput_instr_per_chunk=${T_IR%% *}" \
        "paced_instr_per_chunk=${P_IR%% *} tput_syscalls_per_chunk=$(cut -d' ' -f3 <<<"$T_SYS")" \
        "paced_syscalls_per_chunk=$(cut -d' ' -f3 <<<"$P_SYS")"
}

for p in $COUNT_PATHS; do
    case "$p" in
        policy) http_pair "policy chain" gw-chain ngx-lua "nginx+lua" -H "$AUTH" ;;
        plain) http_pair "no policies" gw-plain ngx-static "nginx" ;;
        store) http_pair "store: local (gateway) vs redis" gw-chain gw-redis "redis" -H "$AUTH" ;;
        stream) stream_counts ;;
        *) die "unknown path '$p' (policy, plain, store, stream)" ;;
    esac
done
