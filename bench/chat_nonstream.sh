#!/usr/bin/env bash
# pieces-gateway: non-stream chat completions: gateway CPU per request.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# wrk (-c $CONNS, CPU 1) POSTs {"model":"gpt-4","messages":[...]} to the gateway (one worker,
# CPU 0), which calls the grpc-js mock upstream (unary Predict, one reply; on CPU 1 with wrk).
# The mock caps the request rate (~5-8k unary calls/s on one core), so compare the gateway's
# CPU-us per request, not requests/s. Prints the median of $RUNS runs and the TARGETS.md check
# (<= 85 us of gateway CPU per non-stream request).
# Usage: bench/chat_nonstream.sh   (DURATION, RUNS, CONNS: see bench/lib/common.sh)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_tools wrk node curl taskset awk
need_gateway
CONNS=${CONNS_NONSTREAM:-50}

start_mock "gpt-4=chunks-1-0"
mock_port=$MOCK_PORT

start_gateway chat GPT_GRPC_ADDR="http://127.0.0.1:$mock_port" RATE_LIMIT_ENABLED=false
gw_pid=$STARTED_PID
url="http://127.0.0.1:$STARTED_PORT/v1/chat/completions"
body='{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}'
curl -sf "$url" -H 'Content-Type: application/json' -d "$body" | grep -q '"finish_reason":"stop"' ||
    die "the gateway did not answer a chat completion"
cat >"$BENCH_TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

bench_info
warm "$gw_pid" "$url" -s "$BENCH_TMP/post.lua"
: >"$BENCH_TMP/cpu"
for i in $(seq 1 "$RUNS"); do
    line=$(measure "$gw_pid" "$url" -s "$BENCH_TMP/post.lua")
    echo "  run $i gateway: $line"
    awk '{ print $2 }' <<<"$line" >>"$BENCH_TMP/cpu"
    awk '{ print $1 }' <<<"$line" >>"$BENCH_TMP/rps"
done
cpu=$(median <"$BENCH_TMP/cpu")
rps=$(median <"$BENCH_TMP/rps")
echo
echo "POST /v1/chat/completions (non-stream, gpt-4)   req/s    gateway CPU-us/req"
printf '  gateway -> grpc-js mock                    %8.0f    %8.2f\n' "$rps" "$cpu"
awk -v c="$cpu" 'BEGIN { printf "  target <= 85 us: %.2fx  %s\n", c / 85, c <= 85 ? "met" : "MISSED" }'
echo "RESULT chat_nonstream gateway_rps=$rps gateway_cpu_us=$cpu"
