#!/usr/bin/env bash
# pieces-gateway: CPU of one GET /metrics scrape through HTTP, after traffic on every model.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# A gateway (2 workers, so the scrape merges shards) in front of the grpc-js mock gets, for every
# model of the catalog (14), 3 streamed and 3 non-stream chat completions and one invalid one
# (400): every built-in family has series. Then RUNS times: 200 scrapes of /metrics and 200
# GET /ping, each over a new connection (curl), and the gateway's CPU (/proc/<pid>/stat) per
# scrape minus per ping (the connection and the request around the scrape) is one scrape's
# cost. bench/metrics_bench.c measures the scrape alone with 20 models (target: <= 2 ms).
# Usage: bench/metrics_scrape.sh   (RUNS=5; bench/lib/common.sh)
set -euo pipefail
RUNS=${RUNS:-5}
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

need_tools node curl taskset ss awk promtool
need_gateway
start_mock "gpt-4o-mini=chunks-20-0"
start_gateway scrape GPT_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" \
    VERTEX_GRPC_ADDR="http://127.0.0.1:$MOCK_PORT" RATE_LIMIT_ENABLED=false WORKERS=2
pid=$STARTED_PID
base="http://127.0.0.1:$STARTED_PORT"

models=$(curl -s "$base/v1/models" | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
[ -n "$models" ] || die "no models in $base/v1/models"
chat() {
    curl -s -o /dev/null -H 'content-type: application/json' -d "$1" "$base/v1/chat/completions"
}
for m in $models; do
    for s in true false true false true false; do
        chat "{\"model\":\"$m\",\"stream\":$s,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
    done
    chat "{\"model\":\"$m\",\"messages\":[]}"
done
text=$BENCH_TMP/metrics.txt
curl -s "$base/metrics" >"$text"
promtool check metrics <"$text" || die "promtool does not accept the exposition"
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# exposition: $(wc -c <"$text") bytes, $(wc -l <"$text") lines," \
    "$(grep -c '^gateway_llm_requests_total{' "$text") LLM request series; promtool: ok"
: >"$BENCH_TMP/cost.txt"
for run in $(seq 1 "$RUNS"); do
    t0=$(cpu_ticks "$pid")
    for _ in $(seq 1 200); do curl -s -o /dev/null "$base/metrics"; done
    t1=$(cpu_ticks "$pid")
    for _ in $(seq 1 200); do curl -s -o /dev/null "$base/ping"; done
    t2=$(cpu_ticks "$pid")
    awk -v d=$((t1 - t0)) -v p=$((t2 - t1)) -v hz="$CLK_TCK" -v r="$run" 'BEGIN {
        printf "  run %d: %.3f ms CPU per scrape, %.3f per ping: one scrape %.3f ms\n", r,
            d * 1000 / hz / 200, p * 1000 / hz / 200, (d - p) * 1000 / hz / 200 }' |
        tee -a "$BENCH_TMP/cost.txt"
done
med=$(awk '{ print $NF == "ms" ? $(NF - 1) : $NF }' "$BENCH_TMP/cost.txt" | median)
echo "RESULT metrics_scrape scrape_ms=$med (target <= 2)"
