#!/usr/bin/env bash
# pieces-gateway: streaming chat completions under load, against the upstream's own latency.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# For each concurrency C (CONCURRENCY, default "1 50 500 5000"), C concurrent
# POST /v1/chat/completions {"stream": true} in a closed loop for DURATION s (default 5), whose
# upstream (the e2e grpc-js mock, bench/stream/mock.js) sends 20 text chunks then the 204 end
# frame, in two shapes, chosen by the model the client asks for:
#   back to back  gpt-4o-mini -> mock scenario chunks-20-0 (throughput, CPU per stream)
#   paced         gpt-4o      -> mock scenario chunks-20-5 (5 ms before each chunk: streams stay
#                 open ~100 ms, for memory per open stream and TTFB at light upstream load)
# and each time the same load straight against the mock, with a grpc-js client calling
# PredictWithStream and with a lighter raw node:http2 client sending the same gRPC frames
# (TTFB = the first message), so the gateway's added latency is the difference (the clients
# differ in cost and share CPU 1 with the mock: see the notes printed with the tables). Measured at the client (bench/stream/load.js): streams/s, TTFB p50/p99 (request
# written -> first "data:" byte); from /proc/<gateway>: CPU-us per stream (utime+stime over the
# run / streams completed), VmRSS peak (sampled every 50 ms), run-queue wait. Every stream must
# be a 200 with exactly 20 content chunks "c0 ".."c19 " and end with "data: [DONE]"; any failure
# is printed loudly and the script exits 1.
# Placement: the gateway alone on CPU 0 (SERVER_CPU), WORKERS=1, MIN_POOL_SIZE=1,
# MAX_POOL_SIZE=4 (the mock advertises no stream limit, so one h2c connection carries all),
# rate limiting off, STREAM_TIMEOUT=0, MAX_CONNECTIONS=20000, access log off; the mock and the
# load client share CPU 1 (CLIENT_CPU). A grpc-js mock on one core serves ~4-5k 20-chunk
# streams/s, less when it shares the core with the client: above that, compare CPU per stream,
# not streams/s. The verdicts against docs TARGETS.md are printed at the end.
# Metrics: a second gateway with METRICS=off takes the same load right after the first (before
# it in even runs; METRICS_COMPARE=0 skips it); the difference in CPU-us per stream (median of the per-run
# pairs, min..max) is the cost of recording metrics (target <= 3 us per stream).
# Reference: REF_BIN=<another gateway binary> makes that second gateway the reference instead
# (same settings, metrics on, e.g. a build of main): each run pair then prints the ratio of
# CPU-us per stream gateway / reference, and the end their median and spread per C and shape
# (the pair ran back to back, so a load change between pairs cancels out). REF_TREE=<dir>: the
# tree (gateway.lua, policies/, assets/) the reference runs with, e.g. the reference's own
# checkout (policies and the binary's built-in lua/gw must match).
# Usage: bench/stream.sh   (DURATION=5 RUNS=1 CONCURRENCY="1 50 500 5000"; bench/lib/common.sh)
# Profiling: PERF_DIR=/some/dir records `perf record -g` of the gateway during its runs at
# C = PERF_C (default 50), one file per shape: PERF_DIR/perf-C<C>-<model>.data.
# Needs the e2e npm packages: scripts/npm-ci.sh (or npm ci in spec/e2e).
set -euo pipefail
DURATION=${DURATION:-5}
RUNS=${RUNS:-1}
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

CONCURRENCY=${CONCURRENCY:-"1 50 500 5000"}
REF_BIN=${REF_BIN:-}
METRICS_COMPARE=${METRICS_COMPARE:-1}
[ -z "$REF_BIN" ] || METRICS_COMPARE=1
PERF_DIR=${PERF_DIR:-}
PERF_C=${PERF_C:-50}
TPUT_MODEL=gpt-4o-mini
TPUT_SCENARIO=chunks-20-0
PACED_MODEL=gpt-4o
PACED_SCENARIO=chunks-20-5
HERE=$BENCH_ROOT/bench/stream

need_tools node curl taskset ss awk
[ -z "$PERF_DIR" ] || { need_tools perf; mkdir -p "$PERF_DIR"; PERF_DIR=$(cd "$PERF_DIR" && pwd); }
need_gateway
[ -d "$BENCH_ROOT/spec/e2e/node_modules/@grpc/grpc-js" ] ||
    die "no spec/e2e/node_modules: run scripts/npm-ci.sh (or: cd spec/e2e && npm ci)"

max_c=0
for c in $CONCURRENCY; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY must list positive integers, not '$c'"
    [ "$c" -le "$max_c" ] || max_c=$c
done
# one socket per stream at the client and at the gateway, plus the upstream and spare ones
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((max_c + 256)) ] ||
    die "ulimit -n is $(ulimit -n), too low for C=$max_c (run as root or raise the hard limit)"

# the mock upstream, on the client's core
start_mock "$TPUT_MODEL=$TPUT_SCENARIO,$PACED_MODEL=$PACED_SCENARIO"
mock_port=$MOCK_PORT

start_gateway stream GPT_GRPC_ADDR="http://127.0.0.1:$mock_port" \
    VERTEX_GRPC_ADDR="http://127.0.0.1:$mock_port" RATE_LIMIT_ENABLED=false STREAM_TIMEOUT=0 \
    MAX_POOL_SIZE=4 MAX_CONNECTIONS=20000
gw_pid=$STARTED_PID
gw_port=$STARTED_PORT
if [ -n "$REF_BIN" ]; then
    [ -x "$REF_BIN" ] || die "REF_BIN $REF_BIN is not an executable"
    GW_BIN=$(realpath "$REF_BIN") GW_TREE=${REF_TREE:-${GW_TREE:-}} start_gateway stream_off \
        GPT_GRPC_ADDR="http://127.0.0.1:$mock_port" VERTEX_GRPC_ADDR="http://127.0.0.1:$mock_port" \
        RATE_LIMIT_ENABLED=false STREAM_TIMEOUT=0 MAX_POOL_SIZE=4 MAX_CONNECTIONS=20000
    off_pid=$STARTED_PID
    off_port=$STARTED_PORT
elif [ "$METRICS_COMPARE" = 1 ]; then
    start_gateway stream_off GPT_GRPC_ADDR="http://127.0.0.1:$mock_port" \
        VERTEX_GRPC_ADDR="http://127.0.0.1:$mock_port" RATE_LIMIT_ENABLED=false STREAM_TIMEOUT=0 \
        MAX_POOL_SIZE=4 MAX_CONNECTIONS=20000 METRICS=off
    off_pid=$STARTED_PID
    off_port=$STARTED_PORT
fi
rss_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
fresh_rss=$(rss_of "$gw_pid" VmRSS)

# load MODE PORT C MODEL SECONDS [--pid PID]: one load.js run on the client's core
load() {
    taskset -c "$CLIENT_CPU" node "$HERE/load.js" --mode "$1" --port "$2" --conc "$3" \
        --model "$4" --duration "$5" --chunks 20 --clk-tck "$CLK_TCK" "${@:6}"
}
alive() {
    kill -0 "$gw_pid" 2>/dev/null ||
        { tail -20 "$BENCH_TMP/gw-stream/out.log" >&2; die "the gateway died"; }
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# gateway on CPU $SERVER_CPU (WORKERS=1, h2c upstream, pool 1..4); grpc-js mock and the Node" \
    "load client on CPU $CLIENT_CPU"
echo "# C in: $CONCURRENCY; ${DURATION}s per run, $RUNS run(s) each, gateway and mock direct" \
    "interleaved; ulimit -n $(ulimit -n)"

# warm-up: JIT traces, the upstream connection, allocator arenas
load gw "$gw_port" 50 "$TPUT_MODEL" 2 --pid "$gw_pid" >/dev/null
load gw "$gw_port" 50 "$PACED_MODEL" 2 --pid "$gw_pid" >/dev/null
if [ "$METRICS_COMPARE" = 1 ]; then
    load gw "$off_port" 50 "$TPUT_MODEL" 2 --pid "$off_pid" >/dev/null
    load gw "$off_port" 50 "$PACED_MODEL" 2 --pid "$off_pid" >/dev/null
fi
sleep 0.5
idle_rss=$(rss_of "$gw_pid" VmRSS)
idle_anon=$(rss_of "$gw_pid" RssAnon)

results=$BENCH_TMP/results.jsonl
: >"$results"
pairs=$BENCH_TMP/metrics_pairs.txt
: >"$pairs"
for c in $CONCURRENCY; do
    for run in $(seq 1 "$RUNS"); do
        for model in "$TPUT_MODEL" "$PACED_MODEL"; do
            perf_pid=
            # the METRICS=off gateway runs before the other one in even runs, after it in odd
            off_first=$((METRICS_COMPARE == 1 && run % 2 == 0))
            [ "$off_first" = 0 ] ||
                o=$(load gw "$off_port" "$c" "$model" "$DURATION" --pid "$off_pid")
            if [ -n "$PERF_DIR" ] && [ "$c" = "$PERF_C" ]; then
                perf record -g -p "$gw_pid" -o "$PERF_DIR/perf-C$c-$model.data" \
                    >"$BENCH_TMP/perf.log" 2>&1 &
                perf_pid=$!
                sleep 0.3
            fi
            g=$(load gw "$gw_port" "$c" "$model" "$DURATION" --pid "$gw_pid")
            if [ -n "$perf_pid" ]; then
                kill -INT "$perf_pid"
                wait "$perf_pid" || true
            fi
            alive
            if [ "$METRICS_COMPARE" = 1 ]; then
                [ "$off_first" = 1 ] ||
                    o=$(load gw "$off_port" "$c" "$model" "$DURATION" --pid "$off_pid")
                awk -v c="$c" -v m="$model" -v g="$g" -v o="$o" 'BEGIN {
                    n = split(g, a, /[,:{}"]+/); for (i = 1; i < n; i++) G[a[i]] = a[i + 1]
                    n = split(o, b, /[,:{}"]+/); for (i = 1; i < n; i++) O[b[i]] = b[i + 1]
                    printf "%d %s %s %s %d\n", c, m, G["cpu_us_per_stream"],
                        O["cpu_us_per_stream"], O["failures"] }' >>"$pairs"
                if [ -n "$REF_BIN" ]; then
                    awk '{ printf "  C=%s %s reference: %s CPU-us/stream, gateway %s: ratio %.2f\n",
                        $1, $2, $4, $3, $3 / $4 }' <(tail -1 "$pairs")
                else
                    echo "  C=$c $model METRICS=off: $(tail -1 "$pairs" | cut -d' ' -f4)" \
                        "CPU-us/stream (metrics on: $(tail -1 "$pairs" | cut -d' ' -f3))"
                fi
            fi
            d=$(load grpc "$mock_port" "$c" "$model" "$DURATION")
            h=$(load h2 "$mock_port" "$c" "$model" "$DURATION")
            printf '%s\n%s\n%s\n' "$g" "$d" "$h" >>"$results"
            awk -v c="$c" -v r="$run" -v m="$model" -v g="$g" -v d="$d" -v h="$h" 'BEGIN {
                n = split(g, a, /[,:{}"]+/); for (i = 1; i < n; i++) G[a[i]] = a[i + 1]
                n = split(d, b, /[,:{}"]+/); for (i = 1; i < n; i++) D[b[i]] = b[i + 1]
                n = split(h, e, /[,:{}"]+/); for (i = 1; i < n; i++) H[e[i]] = e[i + 1]
                printf "  C=%-5d run %d %-11s gateway %5.0f/s TTFB p99 %7.2f ms %6.1f CPU-us/stream RSS %5.1f MB fail %d | mock direct: grpc-js %5.0f/s p99 %7.2f ms fail %d, raw h2 %5.0f/s p99 %7.2f ms fail %d\n",
                    c, r, m, G["streams_per_s"], G["ttfb_p99_ms"], G["cpu_us_per_stream"],
                    G["rss_peak_kb"] / 1024, G["failures"], D["streams_per_s"], D["ttfb_p99_ms"],
                    D["failures"], H["streams_per_s"], H["ttfb_p99_ms"], H["failures"] }'
        done
    done
done

status=0
if [ -s "$pairs" ] && [ -n "$REF_BIN" ]; then
    echo
    echo "Against the reference ($REF_BIN): CPU-us/stream gateway / reference per run pair," \
        "median (min..max, spread); then both medians"
    awk '{ k = $1 " " $2; r[k] = r[k] " " ($3 / $4); g[k] = g[k] " " $3; o[k] = o[k] " " $4 }
        END { for (k in r) print k "|" r[k] "|" g[k] "|" o[k] }' "$pairs" | sort -n |
        while IFS='|' read -r key rs gs os; do
            med=$(tr ' ' '\n' <<<"$rs" | grep . | median)
            lo=$(tr ' ' '\n' <<<"$rs" | grep . | sort -g | head -1)
            hi=$(tr ' ' '\n' <<<"$rs" | grep . | sort -g | tail -1)
            printf '  C=%-5s %-11s ratio %.3f (%.3f..%.3f, spread %.0f %%) | gateway %s, reference %s CPU-us/stream\n' \
                "${key%% *}" "${key#* }" "$med" "$lo" "$hi" \
                "$(awk -v a="$lo" -v b="$hi" -v m="$med" 'BEGIN { print 100 * (b - a) / m }')" \
                "$(tr ' ' '\n' <<<"$gs" | grep . | median)" "$(tr ' ' '\n' <<<"$os" | grep . | median)"
        done
    off_fail=$(awk '{ f += $5 } END { print f + 0 }' "$pairs")
    [ "$off_fail" -eq 0 ] || { echo "  reference gateway: $off_fail failed streams" >&2; status=1; }
elif [ -s "$pairs" ]; then
    echo
    echo "Metrics cost per stream (CPU-us, metrics on - METRICS=off; median of the runs' pairs," \
        "min..max; target <= 3)"
    awk '{ k = $1 " " $2; d[k] = d[k] " " ($3 - $4) } END { for (k in d) print k d[k] }' \
        "$pairs" | sort -n |
        while read -r c m rest; do
            med=$(tr ' ' '\n' <<<"$rest" | grep . | median)
            lo=$(tr ' ' '\n' <<<"$rest" | grep . | sort -g | head -1)
            hi=$(tr ' ' '\n' <<<"$rest" | grep . | sort -g | tail -1)
            printf '  C=%-5s %-11s %7.1f  (%s..%s)\n' "$c" "$m" "$med" "$lo" "$hi"
        done
    off_fail=$(awk '{ f += $5 } END { print f + 0 }' "$pairs")
    [ "$off_fail" -eq 0 ] || { echo "  METRICS=off gateway: $off_fail failed streams" >&2; status=1; }
fi
node "$HERE/report.js" "$results" --fresh-rss "$fresh_rss" --idle-rss "$idle_rss" \
    --idle-anon "$idle_anon" --tput-model "$TPUT_MODEL" --paced-model "$PACED_MODEL" \
    --tput-scenario "$TPUT_SCENARIO" --paced-scenario "$PACED_SCENARIO" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- gateway log (last 20 lines)" >&2
    tail -20 "$BENCH_TMP/gw-stream/out.log" >&2
fi
exit "$status"
