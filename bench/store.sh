#!/usr/bin/env bash
# pieces-gateway: the policy path with the Redis store against the local store, and the local
# store's path before and after the resumable request path, in one run.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# GET /v1/models with auth (API_KEY), ip_rules (IP_BLACKLIST), rate_limit (limit 1e9: counted,
# never hit) and blacklist (mode single), one worker, access log off, three gateways:
#   local   this build, SHARED_STORE empty: the process's dictionary (nothing can wait, the
#           phases run as plain calls)
#   redis   this build, SHARED_STORE=redis://127.0.0.1:<port>/0: each request waits for one
#           EVALSHA of the rate-limit script (a redis-server on the client's core)
#   before  the same policy path built from BASE (default: main's first parent of the merge
#           that added src/store.c, i.e. the tree before the resumable path), exported with git
#           archive and built once into build-bench-base/ (BEFORE_BIN=... uses a given binary, GW_TREE_BEFORE its tree)
# Measured per gateway, interleaved, RUNS times: req/s and gateway CPU-us/request at saturation
# (wrk -c64, bench/lib/common.sh measure), and p50/p99 latency at a light load (wrk -c4 for
# LAT_DURATION s, far from saturation, so the added p99 is the store's round trip, not
# queueing). Round trips per request: the script calls Redis counted (INFO commandstats,
# cmdstat_evalsha; the commands a script runs inside are not round trips) and the gateway's own
# count (GET / store.calls) over the measured requests.
# Targets (issue 10): <= 1 round trip/request, redis <= local + 10 CPU-us/request, p99 added
# <= 0.3 ms, local <= before + 0.5 CPU-us/request.
# Usage: bench/store.sh   (DURATION=8 RUNS=3 LAT_DURATION=4; see bench/lib/common.sh)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_tools wrk curl taskset ss awk git redis-server redis-cli cmake
need_gateway
LAT_DURATION=${LAT_DURATION:-4}
KEY=sk-bench-0123456789abcdef0123456789abcdef
BLACK="203.0.113.7,198.51.100.0/24,10.9.0.0/16,2001:db8::/32"
AUTH=(-H "Authorization: Bearer $KEY")
CHAIN=(API_KEY="$KEY" IP_BLACKLIST="$BLACK" RATE_LIMIT_ENABLED=true RATE_LIMIT=1000000000
    RATE_LIMIT_WINDOW=60 BLACKLIST_MODE=single)

# ---- the "before" build ----
build_before() {
    local base dir
    base=${BASE:-}
    if [ -z "$base" ]; then # main before the merge that brought the store (src/store.c)
        base=$(git -C "$BENCH_ROOT" log --first-parent --format=%H -1 --diff-filter=A -- src/store.c)
        [ -n "$base" ] || die "cannot find the commit that added src/store.c; set BASE"
        base=$base^1
    fi
    base=$(git -C "$BENCH_ROOT" rev-parse "$base")
    dir=$BENCH_ROOT/build-bench-base
    if [ ! -x "$dir/build/pieces-gateway" ] || [ "$(cat "$dir/commit" 2>/dev/null)" != "$base" ]; then
        echo "# building the tree before the resumable path ($base) in $dir" >&2
        rm -rf "$dir"
        mkdir -p "$dir/tree"
        git -C "$BENCH_ROOT" archive "$base" | tar -x -C "$dir/tree" || die "cannot export $base"
        cmake -S "$dir/tree" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DGW_SANITIZERS=OFF -DGW_TESTS=OFF >/dev/null || die "cmake failed for $base"
        cmake --build "$dir/build" -j "$(nproc)" --target pieces-gateway >/dev/null ||
            die "build failed for $base"
        echo "$base" >"$dir/commit"
    fi
    BEFORE_BIN=$dir/build/pieces-gateway
    GW_TREE_BEFORE=$dir/tree
    BEFORE_COMMIT=$base
}
if [ -z "${BEFORE_BIN:-}" ]; then
    build_before
fi
GW_TREE_BEFORE=${GW_TREE_BEFORE:-$BENCH_ROOT}

# ---- servers ----
redis_port=$(free_port)
taskset -c "$CLIENT_CPU" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
    --appendonly no >"$BENCH_TMP/redis.log" 2>&1 &
BENCH_PIDS+=("$!")
for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -p "$redis_port" ping >/dev/null || die "redis-server did not start"

declare -A PID URL
start_gateway local "${CHAIN[@]}"
PID[local]=$STARTED_PID URL[local]="http://127.0.0.1:$STARTED_PORT"
start_gateway redis "${CHAIN[@]}" SHARED_STORE="redis://127.0.0.1:$redis_port/0"
PID[redis]=$STARTED_PID URL[redis]="http://127.0.0.1:$STARTED_PORT"
GW_BIN=$BEFORE_BIN GW_TREE=$GW_TREE_BEFORE start_gateway before "${CHAIN[@]}"
PID[before]=$STARTED_PID URL[before]="http://127.0.0.1:$STARTED_PORT"
redis_url=${URL[redis]}

for _ in $(seq 1 100); do
    curl -s "$redis_url/" | grep -q '"connected":true' && break
    sleep 0.05
done
curl -s "$redis_url/" | grep -q '"connected":true' || die "the redis gateway is not connected"
same_json "local" "${URL[local]}/v1/models" "redis" "$redis_url/v1/models" "${AUTH[@]}"
same_json "local" "${URL[local]}/v1/models" "before" "${URL[before]}/v1/models" "${AUTH[@]}"

evalsha_calls() {
    redis-cli -p "$redis_port" info commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | awk '{ print $1 + 0 }'
}
gw_calls() {
    curl -s "$redis_url/" | sed -n 's/.*"calls":\([0-9]*\).*/\1/p'
}

# lat URL: "<p50 ms> <p99 ms>" at a light load (wrk -c4)
lat() {
    local out
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c4 -d"${LAT_DURATION}s" --latency "${AUTH[@]}" "$1")
    grep -qE 'Non-2xx|Socket errors' <<<"$out" && { echo "$out" >&2; die "errors against $1"; }
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                         if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        END { printf "%.3f %.3f\n", p50, p99 }' <<<"$out"
}

bench_info
echo "# before = $(git -C "$BENCH_ROOT" log -1 --format='%h %s' "${BEFORE_COMMIT:-HEAD}" | cut -c1-70)"
for g in local redis before; do
    warm "${PID[$g]}" "${URL[$g]}/v1/models" "${AUTH[@]}"
done
: >"$BENCH_TMP/local.txt"
: >"$BENCH_TMP/redis.txt"
: >"$BENCH_TMP/before.txt"
: >"$BENCH_TMP/trips.txt"
for i in $(seq 1 "$RUNS"); do
    for g in local redis before; do
        [ "$g" = redis ] && e0=$(evalsha_calls) c0=$(gw_calls)
        m=$(measure "${PID[$g]}" "${URL[$g]}/v1/models" "${AUTH[@]}")
        if [ "$g" = redis ]; then
            e1=$(evalsha_calls) c1=$(gw_calls)
            awk -v n="$(cut -d' ' -f3 <<<"$m")" -v e=$((e1 - e0)) -v c=$((c1 - c0 - 1)) \
                'BEGIN { printf "%.3f %.3f\n", e / n, c / n }' >>"$BENCH_TMP/trips.txt"
        fi
        l=$(lat "${URL[$g]}/v1/models")
        echo "$m $l" | tee -a "$BENCH_TMP/$g.txt" | sed "s/^/  run $i $g: /"
    done
done

col() { cut -d' ' -f"$1" "$BENCH_TMP/$2.txt" | median; }
echo
echo "GET /v1/models, auth + ip_rules + rate_limit + blacklist (median of $RUNS runs)"
printf '  %-8s %9s %11s %9s %9s\n' gateway req/s CPU-us/req p50-ms p99-ms
for g in local redis before; do
    printf '  %-8s %9.0f %11.2f %9.3f %9.3f\n' "$g" "$(col 1 "$g")" "$(col 2 "$g")" \
        "$(col 6 "$g")" "$(col 7 "$g")"
done
trips=$(cut -d' ' -f1 "$BENCH_TMP/trips.txt" | median)
gtrips=$(cut -d' ' -f2 "$BENCH_TMP/trips.txt" | median)
awk -v l="$(col 2 local)" -v r="$(col 2 redis)" -v b="$(col 2 before)" \
    -v lp="$(col 7 local)" -v rp="$(col 7 redis)" -v t="$trips" -v g="$gtrips" 'BEGIN {
    printf "  Redis round trips/request: %.3f (EVALSHA), %.3f (gateway calls)  (target <= 1)\n", t, g
    printf "  redis - local: %+.2f CPU-us/request (target <= +10), p99 %+.3f ms (target <= +0.3)\n", r - l, rp - lp
    printf "  local - before: %+.2f CPU-us/request (target <= +0.5)\n", l - b }'
echo "  per-run spread (CPU-us/req min..max): local $(cut -d' ' -f2 "$BENCH_TMP/local.txt" | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../'), redis $(cut -d' ' -f2 "$BENCH_TMP/redis.txt" | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../'), before $(cut -d' ' -f2 "$BENCH_TMP/before.txt" | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../')"
echo "RESULT store local_cpu_us=$(col 2 local) redis_cpu_us=$(col 2 redis)" \
    "before_cpu_us=$(col 2 before) round_trips=$trips local_p99_ms=$(col 7 local)" \
    "redis_p99_ms=$(col 7 redis)"
