#!/usr/bin/env bash
# pieces-gateway: the policy path, the gateway against nginx + lua-nginx-module doing the same.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# GET /v1/models with `Authorization: Bearer <key>`, measuring requests/s and server CPU-µs per
# request (/proc/<pid>/stat utime+stime over the wrk run / requests completed) of:
#   gateway chain  one worker, access log off, auth (API_KEY), ip_rules (IP_BLACKLIST of 4
#                  entries incl. CIDRs, none matching 127.0.0.1), rate_limit (rule default on,
#                  limit 1e9 so it never triggers), blacklist (mode single)
#   gateway plain  the same gateway without API_KEY, IP_BLACKLIST and rate limiting
#                  (bench/http_models.sh's gateway): chain cost = chain - plain, per request
#   chain, METRICS=off  the chain gateway recording no metrics: metrics cost = chain - this,
#                  per request (median of the per-run differences, with their min..max)
#   nginx + lua    nginx 1.22, one worker, access_log off, access_by_lua_block doing the same
#                  checks (Bearer check with the same 401 bodies and constant-time compare,
#                  IP blacklist with CIDRs, sliding-window counter in a lua_shared_dict: two
#                  window keys read, one incr; the RateLimit-* headers), the same JSON file
# Servers pinned to CPU 0 (SERVER_CPU), wrk -t1 -c64 to CPU 1 (CLIENT_CPU); runs interleaved,
# RUNS times each; medians and the ratio gateway/nginx+lua are printed (target: CPU <= 0.8x),
# and the ratio of each interleaved run pair with their median and spread (robust against a
# load that changes between pairs). For instruction and system call counts, which hold on a
# busy machine, see bench/counts.sh.
# Usage: bench/policy_chain.sh   (DURATION=8 RUNS=3 by default; see bench/lib/common.sh)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=bench/lib/peers.sh
source "$(dirname "$0")/lib/peers.sh"

need_tools wrk nginx curl taskset ss awk
need_gateway
need_lua_module

KEY=sk-bench-0123456789abcdef0123456789abcdef
BLACK="203.0.113.7,198.51.100.0/24,10.9.0.0/16,2001:db8::/32"
LIMIT=1000000000
AUTH=(-H "Authorization: Bearer $KEY")

start_gateway plain RATE_LIMIT_ENABLED=false
plain_pid=$STARTED_PID plain_port=$STARTED_PORT
start_gateway chain API_KEY="$KEY" IP_BLACKLIST="$BLACK" RATE_LIMIT_ENABLED=true \
    RATE_LIMIT="$LIMIT" RATE_LIMIT_WINDOW=60 BLACKLIST_MODE=single
chain_pid=$STARTED_PID chain_port=$STARTED_PORT
start_gateway nometrics API_KEY="$KEY" IP_BLACKLIST="$BLACK" RATE_LIMIT_ENABLED=true \
    RATE_LIMIT="$LIMIT" RATE_LIMIT_WINDOW=60 BLACKLIST_MODE=single METRICS=off
off_pid=$STARTED_PID
off_url="http://127.0.0.1:$STARTED_PORT/v1/models"
plain_url="http://127.0.0.1:$plain_port/v1/models"
chain_url="http://127.0.0.1:$chain_port/v1/models"
mkdir -p "$BENCH_TMP/www/v1"
body_of "$chain_url" "${AUTH[@]}" >"$BENCH_TMP/www/v1/models"

# shellcheck disable=SC2034 # read by start_nginx
NGINX_MAIN=$NGINX_LUA_MAIN
nginx_lua_conf "$BENCH_TMP/nginx-lua.conf" "$KEY" "$BLACK" "$LIMIT" "$BENCH_TMP/www"
start_nginx lua "$BENCH_TMP/nginx-lua.conf"
ngx_pid=$STARTED_PID
ngx_url="http://127.0.0.1:$STARTED_PORT/v1/models"

bench_info
same_body "gateway chain" "$chain_url" "nginx+lua" "$ngx_url" "${AUTH[@]}"
same_json "gateway plain" "$plain_url" "nginx+lua" "$ngx_url" "${AUTH[@]}"
# the 401s must match too: missing header, wrong scheme, wrong key
for h in "" "Authorization: Basic abc" "Authorization: Bearer nope"; do
    a=$(curl -s -w ' %{http_code}' ${h:+-H "$h"} "$chain_url")
    b=$(curl -s -w ' %{http_code}' ${h:+-H "$h"} "$ngx_url")
    [ "$a" = "$b" ] || die "401 bodies differ for '${h:-no header}': gateway: $a nginx: $b"
done
echo "  gateway chain and nginx+lua: the same three 401 answers"

warm "$chain_pid" "$chain_url" "${AUTH[@]}"
warm "$off_pid" "$off_url" "${AUTH[@]}"
warm "$plain_pid" "$plain_url" "${AUTH[@]}"
warm "$ngx_pid" "$ngx_url" "${AUTH[@]}"
: >"$BENCH_TMP/chain.txt"
: >"$BENCH_TMP/off.txt"
: >"$BENCH_TMP/plain.txt"
: >"$BENCH_TMP/ngx.txt"
for i in $(seq 1 "$RUNS"); do
    # the pair for the metrics cost: METRICS=off first in even runs, second in odd ones
    [ $((i % 2)) = 1 ] || measure "$off_pid" "$off_url" "${AUTH[@]}" |
        tee -a "$BENCH_TMP/off.txt" | sed "s/^/  run $i chain, METRICS=off: /"
    measure "$chain_pid" "$chain_url" "${AUTH[@]}" | tee -a "$BENCH_TMP/chain.txt" |
        sed "s/^/  run $i gateway chain: /"
    [ $((i % 2)) = 0 ] || measure "$off_pid" "$off_url" "${AUTH[@]}" |
        tee -a "$BENCH_TMP/off.txt" | sed "s/^/  run $i chain, METRICS=off: /"
    measure "$plain_pid" "$plain_url" "${AUTH[@]}" | tee -a "$BENCH_TMP/plain.txt" |
        sed "s/^/  run $i gateway plain: /"
    measure "$ngx_pid" "$ngx_url" "${AUTH[@]}" | tee -a "$BENCH_TMP/ngx.txt" |
        sed "s/^/  run $i nginx+lua:     /"
done

col() { cut -d' ' -f"$1" "$BENCH_TMP/$2.txt" | median; }
c_rps=$(col 1 chain) c_cpu=$(col 2 chain)
p_rps=$(col 1 plain) p_cpu=$(col 2 plain)
o_cpu=$(col 2 off)
n_rps=$(col 1 ngx) n_cpu=$(col 2 ngx)
echo
echo "GET /v1/models + Bearer    req/s    CPU-us/req   (median of $RUNS x ${DURATION}s)"
printf '  gateway, policy chain %9.0f    %8.2f\n' "$c_rps" "$c_cpu"
printf '  gateway, no chain     %9.0f    %8.2f\n' "$p_rps" "$p_cpu"
printf '  chain, METRICS=off    %9.0f    %8.2f\n' "$(col 1 off)" "$o_cpu"
printf '  nginx + lua           %9.0f    %8.2f\n' "$n_rps" "$n_cpu"
awk -v a="$c_rps" -v b="$n_rps" -v c="$c_cpu" -v d="$n_cpu" -v p="$p_cpu" 'BEGIN {
    printf "  ratio chain/nginx+lua %9.2f    %8.2f   (target CPU <= 0.80)\n", a / b, c / d
    printf "  policy chain cost: %.2f CPU-us/request (chain - no chain)\n", c - p }'
# metrics: the difference of each run's pair (chain and chain METRICS=off, back to back)
paste -d' ' <(cut -d' ' -f2 "$BENCH_TMP/chain.txt") <(cut -d' ' -f2 "$BENCH_TMP/off.txt") |
    awk '{ print $1 - $2 }' >"$BENCH_TMP/metrics_diff.txt"
m_med=$(median <"$BENCH_TMP/metrics_diff.txt")
m_min=$(sort -g "$BENCH_TMP/metrics_diff.txt" | head -1)
m_max=$(sort -g "$BENCH_TMP/metrics_diff.txt" | tail -1)
printf '  metrics cost: %.2f CPU-us/request (chain - chain METRICS=off; per-run %s..%s;' \
    "$m_med" "$m_min" "$m_max"
echo " target <= 0.5)"
echo "per interleaved run pair (ratios of the same run i, so load changes between pairs cancel):"
pair_ratios "CPU-us/req chain/nginx+lua (target <= 0.80)" "$BENCH_TMP/chain.txt" "$BENCH_TMP/ngx.txt"
chain_ratio=$PAIR_MEDIAN
pair_ratios "CPU-us/req no chain/nginx+lua" "$BENCH_TMP/plain.txt" "$BENCH_TMP/ngx.txt"
pair_ratios "req/s chain/nginx+lua" "$BENCH_TMP/chain.txt" "$BENCH_TMP/ngx.txt" 1
echo "RESULT policy_chain gateway_rps=$c_rps gateway_cpu_us=$c_cpu plain_cpu_us=$p_cpu" \
    "nometrics_cpu_us=$o_cpu metrics_cost_us=$m_med nginx_lua_rps=$n_rps nginx_lua_cpu_us=$n_cpu" \
    "pair_ratio_cpu=$chain_ratio"
