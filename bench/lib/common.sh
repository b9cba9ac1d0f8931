# shellcheck shell=bash disable=SC2034  # STARTED_* are read by the scripts
# pieces-gateway: shared helpers of the bench/*.sh scripts (sourced, not run).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Provides: a temp dir and a trap that stops every server started here; free ports; starting the
# gateway (bench config: access log off, absolute dirs, cwd in the temp dir so no .env is read)
# and Debian's nginx (as the current user, -p <tmpdir>); one measured wrk run with the server's
# CPU time from /proc/<pid>/stat; medians.
# Knobs (environment): DURATION (s per run, default 8), RUNS (default 3), CONNS (64),
# SERVER_CPU (0), CLIENT_CPU (1), GW_BIN (default build/pieces-gateway), NGINX (nginx binary),
# WAIT_TRIES (start-up checks 0.1 s apart, default 100); a script may set the arrays GW_WRAP
# and NGINX_WRAP to run the gateway or nginx under a tool (bench/metrics_cost.sh,
# bench/lib/count.sh: valgrind).

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-8}
RUNS=${RUNS:-3}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
GW_BIN=$(realpath -m "${GW_BIN:-$BENCH_ROOT/build/pieces-gateway}") # the gateway runs in a temp dir
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
CLK_TCK=$(getconf CLK_TCK)

BENCH_PIDS=()
GW_WRAP=()
NGINX_WRAP=()
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gw-bench.XXXXXX")

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "bench: $*" >&2
    exit 1
}

need_tools() {
    local t missing=""
    for t in "$@"; do
        if [ "$t" = nginx ]; then
            [ -x "$NGINX" ] || missing="$missing nginx"
        else
            command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
        fi
    done
    [ -z "$missing" ] ||
        die "missing:$missing. Run: scripts/install-deps.sh bench (or: make bench)"
}

need_gateway() {
    [ -x "$GW_BIN" ] || die "no gateway binary at $GW_BIN. Build it first: make build" \
        "(or cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build)"
}

need_lua_module() {
    local m
    for m in /usr/lib/nginx/modules/ndk_http_module.so \
        /usr/lib/nginx/modules/ngx_http_lua_module.so; do
        [ -f "$m" ] || die "missing $m. Run: scripts/install-deps.sh bench"
    done
}

# A TCP port nobody listens on (checked with ss; a tiny race with other programs remains),
# below Linux's ephemeral range (32768-60999), so no outgoing connection takes it meanwhile
# (a server under valgrind binds tens of seconds after the check).
free_port() {
    local port i
    for i in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        if ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# wait_http URL [curl args...]: until the server answers (any status), WAIT_TRIES x 0.1 s at most.
wait_http() {
    local url=$1
    shift
    for _ in $(seq 1 "${WAIT_TRIES:-100}"); do
        if curl -s -o /dev/null --max-time 1 "$@" "$url"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# wait_up PID URL: until the server answers URL (0), its process PID is gone (2) or WAIT_TRIES
# checks 0.1 s apart passed (1)
wait_up() {
    local pid=$1 url=$2
    for _ in $(seq 1 "${WAIT_TRIES:-100}"); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || return 2
        sleep 0.1
    done
    return 1
}

# start_gateway NAME [VAR=value...]: one worker pinned to SERVER_CPU, access log off.
# GW_BIN and GW_TREE (the tree whose gateway.lua, policies/ and assets/ it runs; default this
# one) may be set for one call, e.g. to run an older build. GW_WRAP (an array, e.g. valgrind and
# its options) is put before the binary. Sets STARTED_PID and STARTED_PORT.
start_gateway() {
    local name=$1
    shift
    local dir port attempt rc tree=${GW_TREE:-$BENCH_ROOT}
    dir=$BENCH_TMP/gw-$name
    mkdir -p "$dir"
    # the bench config: gateway.lua with access_log = false and absolute dirs
    sed -e 's/^return {$/return {\n    access_log = false,/' \
        -e "s|env.str(\"POLICIES_DIR\", \"policies\")|\"$tree/policies\"|" \
        -e "s|env.str(\"ASSETS_DIR\", \"assets\")|\"$tree/assets\"|" \
        "$tree/gateway.lua" >"$dir/gateway.lua"
    grep -q 'access_log = false' "$dir/gateway.lua" || die "cannot derive the bench config"
    # free_port checks before the bind: on a busy machine another program can take the port
    # in between, so a start that failed for that reason is tried again on another port
    for attempt in 1 2 3; do
        port=$(free_port)
        start_gateway_on "$dir" "$port" "$@"
        rc=0
        wait_up "$STARTED_PID" "http://127.0.0.1:$port/ping" || rc=$?
        [ "$rc" -eq 0 ] && break
        if [ "$rc" -ne 2 ] || ! grep -q "Address already in use" "$dir/out.log" ||
            [ "$attempt" -eq 3 ]; then
            cat "$dir/out.log" >&2
            die "gateway '$name' did not start"
        fi
    done
    STARTED_PORT=$port
}

# start_gateway_on DIR PORT [VAR=value...]: the process of start_gateway (sets STARTED_PID)
start_gateway_on() {
    local dir=$1 port=$2
    shift 2
    (
        cd "$dir" || exit 1
        exec env -i PATH="$PATH" HOME="$dir" PORT="$port" HOST=127.0.0.1 WORKERS=1 \
            ADMIN_KEY=bench-admin-key BLACKLIST_FILE="$dir/blacklist.txt" ACCESS_LOG=false \
            GPT_GRPC_ADDR=127.0.0.1:9 VERTEX_GRPC_ADDR=127.0.0.1:9 MIN_POOL_SIZE=1 "$@" \
            taskset -c "$SERVER_CPU" ${GW_WRAP[@]+"${GW_WRAP[@]}"} "$GW_BIN" \
                -c "$dir/gateway.lua"
    ) >"$dir/out.log" 2>&1 &
    STARTED_PID=$!
    BENCH_PIDS+=("$STARTED_PID")
}

# ready_port FILE WHAT: the port of the "READY port=N" line a mock prints to FILE, waiting up to
# 10 s; dies (showing FILE) when none comes.
ready_port() {
    local port
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$1")
        [ -n "$port" ] && { echo "$port"; return 0; }
        sleep 0.1
    done
    cat "$1" >&2
    die "$2 did not start"
}

# start_mock MODEL=SCENARIO[,...]: the grpc-js mock upstream (bench/stream/mock.js) on the
# client's core. Sets MOCK_PORT.
start_mock() {
    local out=$BENCH_TMP/mock.out
    taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/bench/stream/mock.js" --port 0 --map "$1" \
        >"$out" 2>&1 &
    BENCH_PIDS+=("$!")
    MOCK_PORT=$(ready_port "$out" "the mock")
}

# start_oai_mock: the Node OpenAI-compatible mock (spec/e2e/mock/openai.js: HTTP/1.1,
# keep-alive, models chunks-N-G stream N chunks G ms apart) on the client's core. Sets
# OAI_MOCK_PID and OAI_MOCK_PORT.
start_oai_mock() {
    local out=$BENCH_TMP/oai-mock.out
    taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/spec/e2e/mock/openai.js" --port 0 >"$out" 2>&1 &
    OAI_MOCK_PID=$!
    BENCH_PIDS+=("$OAI_MOCK_PID")
    OAI_MOCK_PORT=$(ready_port "$out" "the OpenAI mock")
}

# start_nginx NAME CONF_BODY_FILE: CONF_BODY_FILE holds the http{} server parts; @PORT@ and
# @TMP@ are substituted. Extra main-context lines (load_module) come from $NGINX_MAIN.
# NGINX_WRAP as GW_WRAP for start_gateway.
# Sets STARTED_PID (the master; its one worker is found through /proc children), STARTED_PORT.
start_nginx() {
    local name=$1 body=$2 dir port
    dir=$BENCH_TMP/nginx-$name
    mkdir -p "$dir/logs" "$dir/tmp"
    port=$(free_port)
    {
        printf '%s\n' "${NGINX_MAIN:-}"
        # as root, the worker would switch to nobody and not read the 0700 temp dir
        [ "$(id -u)" -ne 0 ] || echo "user root;"
        cat <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
CONF
        sed -e "s|@PORT@|$port|g" -e "s|@TMP@|$dir|g" "$body"
        echo "}"
    } >"$dir/nginx.conf"
    taskset -c "$SERVER_CPU" ${NGINX_WRAP[@]+"${NGINX_WRAP[@]}"} "$NGINX" -p "$dir" \
        -e "$dir/logs/error.log" \
        -c "$dir/nginx.conf" >"$dir/out.log" 2>&1 &
    local pid=$!
    BENCH_PIDS+=("$pid")
    wait_http "http://127.0.0.1:$port/" ||
        { cat "$dir/out.log" "$dir/logs/error.log" >&2; die "nginx '$name' did not start"; }
    STARTED_PID=$pid
    STARTED_PORT=$port
}

# utime+stime (clock ticks) of PID, its threads and its direct children.
cpu_ticks() {
    local pid=$1 total=0 p t
    for p in $pid $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        # fields after the ")" of comm: utime is the 12th, stime the 13th
        t=$(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')
        total=$((total + t))
    done
    echo "$total"
}

# ns the threads of PID and of its direct children spent runnable but waiting for a CPU
run_delay_ns() {
    local pid=$1 p
    for p in $pid $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        cat /proc/"$p"/task/*/schedstat 2>/dev/null || true
    done | awk '{ t += $2 } END { printf "%.0f\n", t }'
}

# measure PID URL [wrk args...]: one wrk run; prints
#   <req/s> <server CPU-us/req> <requests> <server CPU use %> <server run-queue wait %>
# The wait column is the time the server was ready to run but its CPU was busy with something
# else (other programs, softirqs), as % of the run: high values mean a disturbed run.
# Fails when any response is not 2xx or wrk reports socket errors.
measure() {
    local pid=$1 url=$2 out t0 t1 reqs rps w0 w1 n0 n1
    shift 2
    w0=$(run_delay_ns "$pid")
    n0=$(date +%s%N)
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" "$url")
    t1=$(cpu_ticks "$pid")
    n1=$(date +%s%N)
    w1=$(run_delay_ns "$pid")
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "$out" >&2
        die "errors during the run against $url"
    fi
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    if [ -z "$reqs" ] || [ "$reqs" -eq 0 ]; then
        echo "$out" >&2
        die "no requests completed"
    fi
    awk -v r="$rps" -v n="$reqs" -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v w="$((w1 - w0))" \
        -v e="$((n1 - n0))" 'BEGIN { printf "%.0f %.2f %d %.0f %.0f\n", r, d * 1e6 / hz / n, n,
            100 * d / hz * 1e9 / e, 100 * w / e }'
}

# warm PID URL [wrk args...]: a short unmeasured run (JIT traces, caches, connections).
warm() {
    local url=$2
    shift 2
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null
}

# pair_ratios NAME A_FILE B_FILE [COL]: the ratio A/B of column COL (default 2: CPU-us/req) for
# each interleaved run pair (line i of A_FILE and line i of B_FILE were measured back to back,
# so a load change between pairs cancels out), then their median and spread:
#   "  NAME: 0.84 0.91 0.88 | median 0.88, min 0.84, max 0.91, spread 8 %"
# (spread = (max - min) / median). Also sets PAIR_MEDIAN.
pair_ratios() {
    local name=$1 a=$2 b=$3 col=${4:-2} line
    line=$(paste -d' ' <(cut -d' ' -f"$col" "$a") <(cut -d' ' -f"$col" "$b") | awk '
        { r[NR] = $1 / $2; printf "%s%.2f", (NR > 1 ? " " : ""), r[NR] }
        END {
            n = NR
            for (i = 2; i <= n; i++) # insertion sort (mawk has no asort)
                for (j = i; j > 1 && r[j - 1] > r[j]; j--) {
                    t = r[j]; r[j] = r[j - 1]; r[j - 1] = t
                }
            m = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
            printf " | median %.2f, min %.2f, max %.2f, spread %.0f %%\n", m, r[1], r[n],
                100 * (r[n] - r[1]) / m
        }')
    echo "  $name: $line"
    PAIR_MEDIAN=${line#*median }
    PAIR_MEDIAN=${PAIR_MEDIAN%%,*}
}

median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2];
        else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# body_of URL [curl args]: the body, failing unless the status is 200.
body_of() {
    local url=$1 f=$BENCH_TMP/body.$RANDOM code
    shift
    code=$(curl -s -o "$f" -w '%{http_code}' "$@" "$url") || die "curl $url failed"
    [ "$code" = 200 ] || { cat "$f" >&2; die "$url answered $code, not 200"; }
    cat "$f"
}

# same_body NAME_A URL_A NAME_B URL_B [curl args]: both 200, identical bodies.
same_body() {
    local a b
    a=$(body_of "$2" "${@:5}")
    b=$(body_of "$4" "${@:5}")
    [ "$a" = "$b" ] || die "$1 and $3 bodies differ"
    echo "  $1 and $3: 200, identical bodies (${#a} bytes)"
}

bench_info() {
    echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# wrk -t1 -c$CONNS -d${DURATION}s on CPU $CLIENT_CPU; servers on CPU $SERVER_CPU;" \
        "$RUNS runs each, interleaved; medians"
    echo "# per run: req/s, server CPU-us/req, requests, server CPU use %," \
        "server run-queue wait % (high = disturbed run)"
}

# same_json NAME_A URL_A NAME_B URL_B [curl args]: both 200, the same JSON value. For two
# gateway processes: the order of object keys in /v1/models differs from process to process
# (the catalog is encoded from Lua hash tables), so bytes are compared only within a process.
same_json() {
    local a b
    a=$(body_of "$2" "${@:5}")
    b=$(body_of "$4" "${@:5}")
    if command -v jq >/dev/null 2>&1; then
        [ "$(jq -S -c . <<<"$a")" = "$(jq -S -c . <<<"$b")" ] || die "$1 and $3 JSON differs"
    else
        [ "${#a}" = "${#b}" ] || die "$1 and $3 bodies differ in length"
    fi
    echo "  $1 and $3: 200, the same JSON (${#a} bytes; key order may differ)"
}
