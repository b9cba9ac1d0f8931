#!/usr/bin/env bash
# pieces-gateway: GET /v1/models, the gateway against Debian's nginx serving the same JSON.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Measures requests/s and server CPU-µs per request (utime+stime from /proc/<pid>/stat over the
# wrk run, divided by the requests wrk completed) of:
#   gateway  one worker (WORKERS=1), access log off, rate limiting off, no API_KEY, no IP lists
#            (the default policies still run: ip_rules, auth (no keys), admin, blacklist log)
#   nginx    nginx 1.22, one worker, access_log off, the gateway's body as a static file
# Both pinned to CPU 0 (SERVER_CPU), wrk -t1 -c64 pinned to CPU 1 (CLIENT_CPU). Runs are
# interleaved, RUNS times each; the medians and the ratios gateway/nginx are printed, and the
# ratio of each interleaved run pair with their median and spread.
# Usage: bench/http_models.sh   (DURATION=8 RUNS=3 by default; see bench/lib/common.sh)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=bench/lib/peers.sh
source "$(dirname "$0")/lib/peers.sh"

need_tools wrk nginx curl taskset ss awk
need_gateway

start_gateway plain RATE_LIMIT_ENABLED=false
gw_pid=$STARTED_PID
gw_url="http://127.0.0.1:$STARTED_PORT/v1/models"
mkdir -p "$BENCH_TMP/www/v1"
body_of "$gw_url" >"$BENCH_TMP/www/v1/models"

nginx_static_conf "$BENCH_TMP/nginx-static.conf" "$BENCH_TMP/www"
start_nginx static "$BENCH_TMP/nginx-static.conf"
ngx_pid=$STARTED_PID
ngx_url="http://127.0.0.1:$STARTED_PORT/v1/models"

bench_info
same_body gateway "$gw_url" nginx "$ngx_url"

warm "$gw_pid" "$gw_url"
warm "$ngx_pid" "$ngx_url"
: >"$BENCH_TMP/gw.txt"
: >"$BENCH_TMP/ngx.txt"
for i in $(seq 1 "$RUNS"); do
    measure "$gw_pid" "$gw_url" | tee -a "$BENCH_TMP/gw.txt" | sed "s/^/  run $i gateway: /"
    measure "$ngx_pid" "$ngx_url" | tee -a "$BENCH_TMP/ngx.txt" | sed "s/^/  run $i nginx:   /"
done

gw_rps=$(cut -d' ' -f1 "$BENCH_TMP/gw.txt" | median)
gw_cpu=$(cut -d' ' -f2 "$BENCH_TMP/gw.txt" | median)
ngx_rps=$(cut -d' ' -f1 "$BENCH_TMP/ngx.txt" | median)
ngx_cpu=$(cut -d' ' -f2 "$BENCH_TMP/ngx.txt" | median)
echo
echo "GET /v1/models            req/s    CPU-us/req   (median of $RUNS x ${DURATION}s)"
printf '  gateway             %9.0f    %8.2f\n' "$gw_rps" "$gw_cpu"
printf '  nginx (static)      %9.0f    %8.2f\n' "$ngx_rps" "$ngx_cpu"
awk -v a="$gw_rps" -v b="$ngx_rps" -v c="$gw_cpu" -v d="$ngx_cpu" \
    'BEGIN { printf "  ratio gateway/nginx %9.2f    %8.2f\n", a / b, c / d }'
echo "per interleaved run pair (ratios of the same run i, so load changes between pairs cancel):"
pair_ratios "CPU-us/req gateway/nginx (target <= 1.0)" "$BENCH_TMP/gw.txt" "$BENCH_TMP/ngx.txt"
pair=$PAIR_MEDIAN
pair_ratios "req/s gateway/nginx" "$BENCH_TMP/gw.txt" "$BENCH_TMP/ngx.txt" 1
# for bench/policy_chain.sh and anyone else who wants the numbers
echo "RESULT http_models gateway_rps=$gw_rps gateway_cpu_us=$gw_cpu nginx_rps=$ngx_rps" \
    "nginx_cpu_us=$ngx_cpu pair_ratio_cpu=$pair"
