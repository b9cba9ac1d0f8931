#!/usr/bin/env bash
# pieces-gateway: the OpenAI-compatible HTTP backend against calling the upstream directly.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# The upstream is the Node OpenAI-compatible mock (spec/e2e/mock/openai.js, plain HTTP/1.1,
# keep-alive) on CPU 1 with the load clients; the gateway (one worker) alone on CPU 0 with
# OPENAI_BASE_URL pointing at it. In one run, each measurement against the gateway and then
# against the mock directly with the same client:
#   1. non-stream CPU: wrk -c $CONNS POST {"model":"m"} -> gateway CPU-us per request
#      (utime+stime / requests); the mock's own req/s as the reference;
#   2. streams of 20 chunks, back to back (model chunks-20-0) and 5 ms apart (chunks-20-5):
#      bench/stream/load.js (C=$STREAM_C closed loop, every stream checked) -> gateway CPU-us
#      per stream, TTFB p50/p99 through the gateway and direct;
#   3. added latency at a fixed rate: bench/openai/rate.js, open loop at $RATE req/s non-stream
#      for $DURATION s -> p50/p99 direct and through the gateway, and their difference;
#   4. memory per open stream: load.js with C = 500 and 5000 streams of 5 chunks 1 s apart
#      (chunks-5-1000) -> (peak RSS - idle RSS) / streams open at the peak.
# The same gateway also serves the same shapes through the Pieces backend (the grpc-js mock of
# bench/stream/mock.js: gpt-4 non-stream, gpt-4o-mini 20 chunks back to back, gpt-4o 5 ms
# apart), so each HTTP-backend figure has the gRPC path's beside it from the same run: on a
# loaded machine the ratio is the stable number. Breakers and connect timeouts are set out of
# the way (BREAKER_FAILURES, UPSTREAM_CONNECT_TIMEOUT): a bench must not trip them.
# Targets (docs TARGETS.md): <= 40 us per non-stream request, <= 150 us per 20-chunk stream,
# <= 10 KB per open stream, added p99 <= 0.3 ms at 2,000 req/s.
# Peer: Portkey's gateway (npm @portkey-ai/gateway) when bench/peers/node_modules has it
# (scripts/npm-ci.sh bench/peers): the same non-stream and stream runs through it.
# Usage: bench/openai_backend.sh   (DURATION=5 RUNS=3 RATE=2000 STREAM_C=50 MEM_C="500 5000";
#        bench/lib/common.sh). Needs the e2e npm packages (scripts/npm-ci.sh spec/e2e).
set -euo pipefail
DURATION=${DURATION:-5}
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

RATE=${RATE:-2000}
PARTS=${PARTS:-"nonstream stream rate memory peer"} # which measurements to run
STREAM_C=${STREAM_C:-50}
MEM_C=${MEM_C:-"500 5000"}
HERE=$BENCH_ROOT/bench
need_tools wrk node curl taskset awk
need_gateway
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# the mock, on the client's core
start_oai_mock
mock_pid=$OAI_MOCK_PID
mock_port=$OAI_MOCK_PORT

start_mock "gpt-4=chunks-1-0,gpt-4o-mini=chunks-20-0,gpt-4o=chunks-20-5"
grpc_port=$MOCK_PORT
start_gateway oai OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" OPENAI_API_KEY=bench-key \
    OPENAI_MODELS="m,chunks-20-0,chunks-20-5,chunks-5-1000" RATE_LIMIT_ENABLED=false \
    GPT_GRPC_ADDR="http://127.0.0.1:$grpc_port" VERTEX_GRPC_ADDR="http://127.0.0.1:$grpc_port" \
    MAX_POOL_SIZE=4 STREAM_TIMEOUT=0 MAX_CONNECTIONS=30000 BREAKER_FAILURES=1000000 \
    UPSTREAM_CONNECT_TIMEOUT=60
gw_pid=$STARTED_PID
gw_port=$STARTED_PORT
gw_url="http://127.0.0.1:$gw_port/v1/chat/completions"
mock_url="http://127.0.0.1:$mock_port/v1/chat/completions"
body='{"model":"m","messages":[{"role":"user","content":"hi"}]}'
curl -sf "$gw_url" -H 'Content-Type: application/json' -d "$body" | grep -q '"finish_reason":"stop"' ||
    die "the gateway did not answer through the OpenAI backend"
cat >"$BENCH_TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
pbody='{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}'
cat >"$BENCH_TMP/pieces.lua" <<LUA
wrk.method = "POST"
wrk.body = '$pbody'
wrk.headers["Content-Type"] = "application/json"
LUA
rss_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
load() {
    taskset -c "$CLIENT_CPU" node "$HERE/stream/load.js" --mode gw --port "$1" --conc "$2" \
        --model "$3" --duration "$4" --chunks "$5" --clk-tck "$CLK_TCK" "${@:6}"
}
field() { sed -n "s/.*\"$1\":\\([-0-9.e]*\\).*/\\1/p" <<<"$2"; }

bench_info
echo "# gateway CPU $SERVER_CPU (WORKERS=1); Node OpenAI mock + clients on CPU $CLIENT_CPU;" \
    "${DURATION}s x $RUNS runs"

want() { [[ " $PARTS " == *" $1 "* ]]; }

# ---- 1. non-stream CPU per request ----
want nonstream && warm "$gw_pid" "$gw_url" -s "$BENCH_TMP/post.lua"
echo 0 >"$BENCH_TMP/ns_cpu"
echo 0 >"$BENCH_TMP/ns_rps"
echo 0 >"$BENCH_TMP/mock_rps"
echo 0 >"$BENCH_TMP/ns_pieces"
want nonstream && : >"$BENCH_TMP/ns_cpu" && : >"$BENCH_TMP/ns_rps" && : >"$BENCH_TMP/mock_rps" &&
    : >"$BENCH_TMP/ns_pieces"
for i in $(seq 1 "$RUNS"); do
    want nonstream || break
    g=$(measure "$gw_pid" "$gw_url" -s "$BENCH_TMP/post.lua")
    q=$(measure "$gw_pid" "$gw_url" -s "$BENCH_TMP/pieces.lua")
    m=$(measure "$mock_pid" "$mock_url" -s "$BENCH_TMP/post.lua")
    echo "  non-stream run $i: gateway->openai $g | gateway->pieces $q | openai mock direct $m"
    awk '{ print $2 }' <<<"$q" >>"$BENCH_TMP/ns_pieces"
    awk '{ print $2 }' <<<"$g" >>"$BENCH_TMP/ns_cpu"
    awk '{ print $1 }' <<<"$g" >>"$BENCH_TMP/ns_rps"
    awk '{ print $1 }' <<<"$m" >>"$BENCH_TMP/mock_rps"
done
ns_cpu=$(median <"$BENCH_TMP/ns_cpu")
ns_pieces=$(median <"$BENCH_TMP/ns_pieces")

# ---- 2. streams ----
want stream && load "$gw_port" "$STREAM_C" chunks-20-0 2 20 --pid "$gw_pid" >/dev/null
declare -A st_cpu st_gw_p50 st_gw_p99 st_d_p50 st_d_p99 st_pieces
declare -A pieces_of=([chunks-20-0]=gpt-4o-mini [chunks-20-5]=gpt-4o)
for model in chunks-20-0 chunks-20-5; do
    st_cpu[$model]=0
    st_pieces[$model]=0
    want stream || continue
    : >"$BENCH_TMP/cpu-$model"
    : >"$BENCH_TMP/pcpu-$model"
    for i in $(seq 1 "$RUNS"); do
        g=$(load "$gw_port" "$STREAM_C" "$model" "$DURATION" 20 --pid "$gw_pid")
        q=$(load "$gw_port" "$STREAM_C" "${pieces_of[$model]}" "$DURATION" 20 --pid "$gw_pid")
        d=$(load "$mock_port" "$STREAM_C" "$model" "$DURATION" 20)
        [ "$(field failures "$g")" = 0 ] || die "failed streams through the gateway: $g"
        field cpu_us_per_stream "$q" >>"$BENCH_TMP/pcpu-$model"
        echo "  $model run $i: gateway $(field streams_per_s "$g")/s $(field cpu_us_per_stream "$g")" \
            "CPU-us/stream TTFB p50 $(field ttfb_p50_ms "$g") p99 $(field ttfb_p99_ms "$g") ms |" \
            "direct $(field streams_per_s "$d")/s TTFB p50 $(field ttfb_p50_ms "$d") p99" \
            "$(field ttfb_p99_ms "$d") ms"
        field cpu_us_per_stream "$g" >>"$BENCH_TMP/cpu-$model"
        echo "    (same shape through the Pieces backend: $(field cpu_us_per_stream "$q") CPU-us/stream)"
        st_gw_p50[$model]=$(field ttfb_p50_ms "$g")
        st_gw_p99[$model]=$(field ttfb_p99_ms "$g")
        st_d_p50[$model]=$(field ttfb_p50_ms "$d")
        st_d_p99[$model]=$(field ttfb_p99_ms "$d")
    done
    st_cpu[$model]=$(median <"$BENCH_TMP/cpu-$model")
    st_pieces[$model]=$(median <"$BENCH_TMP/pcpu-$model")
done

# ---- 3. added latency at a fixed rate ----
rate() { taskset -c "$CLIENT_CPU" node "$HERE/openai/rate.js" --port "$1" --rate "$RATE" \
    --duration "$DURATION"; }
want rate && rate "$gw_port" >/dev/null
echo 0 >"$BENCH_TMP/add50"
echo 0 >"$BENCH_TMP/add99"
want rate && : >"$BENCH_TMP/add50" && : >"$BENCH_TMP/add99"
for i in $(seq 1 "$RUNS"); do
    want rate || break
    d=$(rate "$mock_port")
    g=$(rate "$gw_port")
    [ "$(field failed "$g")" = 0 ] && [ "$(field failed "$d")" = 0 ] ||
        die "failed requests at $RATE req/s: gateway $g direct $d"
    a50=$(awk -v g="$(field p50 "$g")" -v d="$(field p50 "$d")" 'BEGIN { printf "%.3f", g - d }')
    a99=$(awk -v g="$(field p99 "$g")" -v d="$(field p99 "$d")" 'BEGIN { printf "%.3f", g - d }')
    echo "  $RATE req/s run $i: direct p50 $(field p50 "$d") p99 $(field p99 "$d") ms |" \
        "gateway p50 $(field p50 "$g") p99 $(field p99 "$g") ms | added p50 $a50 p99 $a99 ms"
    echo "$a50" >>"$BENCH_TMP/add50"
    echo "$a99" >>"$BENCH_TMP/add99"
    field p99 "$d" >>"$BENCH_TMP/d99"
done
add50=$(median <"$BENCH_TMP/add50")
add99=$(median <"$BENCH_TMP/add99")
d99=$( [ -s "$BENCH_TMP/d99" ] && median <"$BENCH_TMP/d99" || echo 0)

# ---- 4. memory per open stream ----
declare -A kb_per
sleep 1
for c in $MEM_C; do
    kb_per[$c]=0
    want memory || continue
    idle=$(rss_of "$gw_pid" VmRSS)
    g=$(load "$gw_port" "$c" chunks-5-1000 8 5 --pid "$gw_pid" --timeout 60)
    peak=$(field rss_peak_kb "$g")
    openp=$(field open_max "$g")
    # the allocator keeps freed memory, so the peak comes late: divide by the most streams open
    kb_per[$c]=$(awk -v p="$peak" -v i="$idle" -v o="$openp" 'BEGIN { printf "%.1f", (p - i) / o }')
    echo "  C=$c: idle RSS $((idle / 1024)) MB, peak $((peak / 1024)) MB, at most $openp open," \
        "${kb_per[$c]} KB/stream, failures $(field failures "$g")" \
        "$(sed -n 's/.*"fail_reasons":\({[^}]*}\).*/\1/p' <<<"$g")"
    sleep 2
done

# ---- the peer ----
portkey=$BENCH_ROOT/bench/peers/node_modules/@portkey-ai/gateway/build/start-server.js
pk_line="  Portkey: not installed (scripts/npm-ci.sh bench/peers)"
if [ -f "$portkey" ] && want peer; then
    pk_port=$(free_port)
    taskset -c "$SERVER_CPU" node "$portkey" --port="$pk_port" --headless \
        >"$BENCH_TMP/portkey.log" 2>&1 &
    pk_pid=$!
    BENCH_PIDS+=("$pk_pid")
    wait_http "http://127.0.0.1:$pk_port/" || die "portkey did not start"
    cat >"$BENCH_TMP/pk.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-portkey-provider"] = "openai"
wrk.headers["x-portkey-custom-host"] = "http://127.0.0.1:$mock_port/v1"
wrk.headers["Authorization"] = "Bearer bench-key"
LUA
    pk_url="http://127.0.0.1:$pk_port/v1/chat/completions"
    warm "$pk_pid" "$pk_url" -s "$BENCH_TMP/pk.lua"
    if p=$(measure "$pk_pid" "$pk_url" -s "$BENCH_TMP/pk.lua" 2>"$BENCH_TMP/pk.err"); then
        pk_line="  Portkey 1.15.2 (Node), same mock: $(awk '{ printf "%.0f req/s, %.1f CPU-us/req", $1, $2 }' <<<"$p") non-stream"
    else
        pk_line="  Portkey 1.15.2 (Node): the non-stream run had errors ($(grep -m1 -o 'Socket errors.*\|Non-2xx.*' "$BENCH_TMP/pk.err"))"
    fi
    # its stream path: one try (1.15.2 under this Node answers {"status":"failure"} with
    # "TypeError: immutable" in its log whatever the upstream; measured only when it works)
    pk_stream=$(curl -sN "$pk_url" -H 'Content-Type: application/json' \
        -H 'x-portkey-provider: openai' -H "x-portkey-custom-host: http://127.0.0.1:$mock_port/v1" \
        -H 'Authorization: Bearer bench-key' \
        -d '{"model":"chunks-20-0","stream":true,"messages":[{"role":"user","content":"hi"}]}')
    if grep -q 'data: \[DONE\]' <<<"$pk_stream"; then
        pk_line="$pk_line; streams: work (not measured here)"
    else
        why=$(grep -o 'TypeError: [a-z]*' "$BENCH_TMP/portkey.log" | head -1)
        pk_line="$pk_line; streams: fail (${pk_stream:0:60}; log: ${why:-?})"
    fi
fi

echo
echo "OpenAI backend (gateway -> Node mock, HTTP/1.1 keep-alive)         measured   target"
printf '  non-stream, gateway CPU-us/request                          %8.2f   <= 40   (Pieces path, same run: %.2f)\n' "$ns_cpu" "$ns_pieces"
printf '  20-chunk stream back to back, CPU-us/stream                 %8.2f   <= 150  (Pieces path: %.2f)\n' "${st_cpu[chunks-20-0]}" "${st_pieces[chunks-20-0]}"
printf '  20-chunk stream 5 ms apart, CPU-us/stream                   %8.2f   <= 150  (Pieces path: %.2f)\n' "${st_cpu[chunks-20-5]}" "${st_pieces[chunks-20-5]}"
printf '  added latency at %d req/s (non-stream): p50 %.3f ms, p99      %8.3f   <= 0.3 ms\n' \
    "$RATE" "$add50" "$add99"
awk -v d="$d99" 'BEGIN { if (d > 20) printf "    (the mock called directly has p99 %.1f ms: client and mock saturated at this rate on this machine, the difference is noise)\n", d }'
for c in $MEM_C; do
    printf '  memory per open stream at %5d streams, KB                %8.1f   <= 10\n' "$c" "${kb_per[$c]}"
done
printf '  stream TTFB p50/p99 ms: b2b gateway %s/%s direct %s/%s; paced gateway %s/%s direct %s/%s\n' \
    "${st_gw_p50[chunks-20-0]}" "${st_gw_p99[chunks-20-0]}" "${st_d_p50[chunks-20-0]}" \
    "${st_d_p99[chunks-20-0]}" "${st_gw_p50[chunks-20-5]}" "${st_gw_p99[chunks-20-5]}" \
    "${st_d_p50[chunks-20-5]}" "${st_d_p99[chunks-20-5]}"
echo "  mock direct (wrk): $(median <"$BENCH_TMP/mock_rps") req/s; gateway $(median <"$BENCH_TMP/ns_rps") req/s"
echo "$pk_line"
echo "RESULT openai_backend nonstream_cpu_us=$ns_cpu pieces_nonstream_cpu_us=$ns_pieces" \
    "stream_cpu_us=${st_cpu[chunks-20-0]} pieces_stream_cpu_us=${st_pieces[chunks-20-0]}" \
    "paced_cpu_us=${st_cpu[chunks-20-5]} added_p50_ms=$add50 added_p99_ms=$add99" \
    "$(for c in $MEM_C; do printf 'kb_per_stream_%s=%s ' "$c" "${kb_per[$c]}"; done)"
