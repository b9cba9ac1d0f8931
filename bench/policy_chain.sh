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
# RUNS times each; medians and the ratio gateway/nginx+lua are printed (target: CPU <= 0.8x).
# Usage: bench/policy_chain.sh   (DURATION=8 RUNS=3 by default; see bench/lib/common.sh)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

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
NGINX_MAIN="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
cat >"$BENCH_TMP/nginx-lua.conf" <<CONF
    lua_shared_dict rl 16m;
    init_by_lua_block {
        local bit = require "bit"
        local BLACK, KEYS = "$BLACK", { "$KEY" }
        local exact, cidrs = {}, {}
        local function v4(s)
            local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
            return a and ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256
                + tonumber(d)
        end
        for item in BLACK:gmatch("[^,]+") do
            local addr, len = item:match("^(.-)/(%d+)$")
            if not addr then
                exact[item] = true
            elseif v4(addr) then
                local m = bit.lshift(-1, 32 - tonumber(len))
                cidrs[#cidrs + 1] = { bit.band(v4(addr), m), m }
            end -- v6 CIDRs never match a v4 client: skipped, like the gateway's per-family sets
        end
        local function blocked(ip)
            if exact[ip] then
                return true
            end
            local n = v4(ip)
            if n then
                for i = 1, #cidrs do
                    if bit.band(n, cidrs[i][2]) == cidrs[i][1] then
                        return true
                    end
                end
            end
            return ngx.shared.rl:get("bl:ban:" .. ip) ~= nil -- the auto-ban lookup
        end
        local function equal(token, key) -- constant time for a given key, as policies/auth.lua
            local n, m = #key, #token
            local diff = (n == m) and 0 or 1
            if m == 0 then
                token, m = "\0", 1
            end
            for i = 1, n do
                diff = bit.bor(diff, bit.bxor(key:byte(i), token:byte((i - 1) % m + 1)))
            end
            return diff == 0
        end
        local function fail(status, code, msg)
            ngx.status = status
            ngx.header.content_type = "application/json"
            ngx.print('{"error":{"message":"' .. msg .. '","type":"error","code":"' .. code
                .. '"}}')
            return ngx.exit(status)
        end
        local LIMIT, W = $LIMIT, 60
        function bench_access()
            local ip = ngx.var.remote_addr
            if blocked(ip) then
                return fail(403, "ip_blocked", "IP has been blocked")
            end
            local dict, now = ngx.shared.rl, ngx.now()
            local idx = math.floor(now / W)
            local elapsed = now - idx * W
            local base = "rl:default:" .. ip .. ":"
            local cur_key = base .. idx
            local cur = dict:get(cur_key) or 0
            local prev = dict:get(base .. (idx - 1)) or 0
            local estimate = prev * (W - elapsed) / W + cur
            if estimate + 1 > LIMIT then
                return fail(429, "rate_limit_exceeded", "Rate limit exceeded")
            end
            dict:incr(cur_key, 1, 0, 2 * W)
            ngx.header["RateLimit-Limit"] = LIMIT
            ngx.header["RateLimit-Remaining"] = math.floor(LIMIT - estimate - 1)
            ngx.header["RateLimit-Reset"] = math.max(1, math.ceil(W - elapsed))
            local h = ngx.var.http_authorization
            if h == nil or h == "" then
                return fail(401, "unauthorized", "Missing authentication information")
            end
            if h:sub(1, 7) ~= "Bearer " then
                return fail(401, "unauthorized", "Invalid authentication format")
            end
            local token, found = h:sub(8), nil
            for i = 1, #KEYS do
                if equal(token, KEYS[i]) and not found then
                    found = i
                end
            end
            if not found then
                return fail(401, "unauthorized", "Invalid API key")
            end
        end
    }
    server {
        listen 127.0.0.1:@PORT@ reuseport backlog=4096;
        location = /v1/models {
            default_type application/json;
            access_by_lua_block { bench_access() }
            root $BENCH_TMP/www;
        }
    }
CONF
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
echo "RESULT policy_chain gateway_rps=$c_rps gateway_cpu_us=$c_cpu plain_cpu_us=$p_cpu" \
    "nometrics_cpu_us=$o_cpu metrics_cost_us=$m_med nginx_lua_rps=$n_rps nginx_lua_cpu_us=$n_cpu"
