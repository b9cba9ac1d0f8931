#!/usr/bin/env bash
# pieces-gateway: the cost of recording metrics in instructions, counted by valgrind
# (callgrind), which a loaded machine cannot disturb the way it disturbs CPU time.
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Two gateways like bench/policy_chain.sh's chain (auth, ip_rules, rate_limit, blacklist; one
# worker) in front of the grpc-js mock (bench/stream/mock.js: gpt-4o-mini -> 20 chunks back to
# back), one recording metrics and one with METRICS=off, each run under
# `valgrind --tool=callgrind --instr-atstart=no`. After a warm-up, the counters are zeroed and
# exactly N GET /v1/models (Bearer key) and S streamed chat completions are sent
# (bench/lib/drive.js, 8 in flight); the instructions (Ir) of the whole gateway process over
# each batch, divided by the batch size, are its instructions per request / per stream.
# Printed per batch: Ir on, Ir off, their difference (whole process: JIT, GC and timers make it
# move by a few thousand between processes), and, exactly, the Ir inside the C entry points of
# the metrics (gw_metrics_request_done, _llm_start, _upstream_attempt, gw_routes_classify,
# gw_ffi_req_set_stat: callgrind's inclusive cost). Each is also shown as CPU time at the CPU
# per request of a quiet machine (REF_REQ_US, REF_STREAM_US: TARGETS.md's measured 14.8 us per
# policy-chain request and 141 us per 20-chunk stream), i.e. assuming the metrics code runs at
# the average instructions per second of the rest of the request.
# Usage: bench/metrics_cost.sh   (N=2000 S=300 REPS=2; SERVER_CPU/CLIENT_CPU as bench/lib)
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

N=${N:-2000}
S=${S:-300}
REPS=${REPS:-2}
REF_REQ_US=${REF_REQ_US:-14.8}
REF_STREAM_US=${REF_STREAM_US:-141}
KEY=sk-bench-0123456789abcdef0123456789abcdef
BLACK="203.0.113.7,198.51.100.0/24,10.9.0.0/16,2001:db8::/32"
HERE=$BENCH_ROOT/bench

need_tools valgrind callgrind_control node curl taskset ss awk
need_gateway
[ -d "$BENCH_ROOT/spec/e2e/node_modules/@grpc/grpc-js" ] ||
    die "no spec/e2e/node_modules: run scripts/npm-ci.sh (or: cd spec/e2e && npm ci)"

start_mock "gpt-4o-mini=chunks-20-0"
mock_port=$MOCK_PORT

drive() { # PORT MODE COUNT
    taskset -c "$CLIENT_CPU" node "$HERE/lib/drive.js" --port "$1" --mode "$2" --n "$3" \
        --key "$KEY" || die "requests failed"
}

# "<total Ir> <Ir in the metrics entry points>" of the newest callgrind dump of OUT (OUT.N)
last_ir() {
    local f total hooks
    f=$(ls -t "$1".* 2>/dev/null | head -1)
    [ -n "$f" ] || die "no callgrind dump for $1"
    total=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    hooks=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" | awk '!/=>/ &&
        /metrics_hooks\.c:gw_metrics_(request_done|llm_start|upstream_attempt) |routes\.c:gw_routes_classify |ffi_metrics\.c:gw_ffi_req_set_stat / {
            gsub(",", "", $1); s += $1 } END { print s + 0 }')
    echo "$total $hooks"
}

# one gateway under callgrind: prints "<Ir per request> <Ir per stream>"
count() { # NAME [VAR=value...]
    local name=$1 out pid port ir_req ir_stream vgdb
    shift
    out=$BENCH_TMP/cg-$name.out
    vgdb=$BENCH_TMP/vgdb-$name # (callgrind_control must see valgrind's HOST: start_gateway's)
    GW_WRAP=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out"
        --vgdb-prefix="$vgdb")
    WAIT_TRIES=3000 start_gateway "$name" GPT_GRPC_ADDR="http://127.0.0.1:$mock_port" \
        VERTEX_GRPC_ADDR="http://127.0.0.1:$mock_port" API_KEY="$KEY" IP_BLACKLIST="$BLACK" \
        RATE_LIMIT_ENABLED=true RATE_LIMIT=1000000000 RATE_LIMIT_WINDOW=60 \
        BLACKLIST_MODE=single STREAM_TIMEOUT=0 REQUEST_TIMEOUT=0 TIMEOUT=0 "$@"
    GW_WRAP=()
    pid=$STARTED_PID port=$STARTED_PORT
    HOST=127.0.0.1 callgrind_control --vgdb-prefix="$vgdb" -i on "$pid" >/dev/null
    drive "$port" models 300
    drive "$port" stream 50
    HOST=127.0.0.1 callgrind_control --vgdb-prefix="$vgdb" -z "$pid" >/dev/null
    drive "$port" models "$N"
    HOST=127.0.0.1 callgrind_control --vgdb-prefix="$vgdb" -d "$pid" >/dev/null
    ir_req=$(last_ir "$out")
    HOST=127.0.0.1 callgrind_control --vgdb-prefix="$vgdb" -z "$pid" >/dev/null
    drive "$port" stream "$S"
    HOST=127.0.0.1 callgrind_control --vgdb-prefix="$vgdb" -d "$pid" >/dev/null
    ir_stream=$(last_ir "$out")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    awk -v a="$ir_req" -v b="$ir_stream" -v n="$N" -v s="$S" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "%.0f %.0f %.0f %.0f\n", x[1] / n, y[1] / s, x[2] / n, y[2] / s }'
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# callgrind Ir of the gateway process per request (N=$N GET /v1/models + Bearer, chain" \
    "policies) and per stream (S=$S 20-chunk streams), metrics on vs METRICS=off, $REPS reps"
: >"$BENCH_TMP/on.txt"
: >"$BENCH_TMP/off.txt"
for i in $(seq 1 "$REPS"); do # count runs in this shell, so the exit trap knows its gateway
    count "on$i" >"$BENCH_TMP/one.txt"
    tee -a "$BENCH_TMP/on.txt" <"$BENCH_TMP/one.txt" |
        sed "s/^/  rep $i metrics on:  Ir per request, per stream; of them in metrics code: /"
    count "off$i" METRICS=off >"$BENCH_TMP/one.txt"
    tee -a "$BENCH_TMP/off.txt" <"$BENCH_TMP/one.txt" |
        sed "s/^/  rep $i METRICS=off: Ir per request, per stream; of them in metrics code: /"
done
paste -d' ' "$BENCH_TMP/on.txt" "$BENCH_TMP/off.txt" | awk -v rr="$REF_REQ_US" \
    -v rs="$REF_STREAM_US" '
    function span(a, n,   i, lo, hi) {
        lo = hi = a[1]
        for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
        return sprintf("%.0f..%.0f", lo, hi)
    }
    { dr[NR] = $1 - $5; ds[NR] = $2 - $6; hr[NR] = $3; hs[NR] = $4
      on_r += $1; on_s += $2; off_r += $5; off_s += $6; h_r += $3; h_s += $4 }
    END {
        n = NR; on_r /= n; on_s /= n; off_r /= n; off_s /= n; h_r /= n; h_s /= n
        print ""
        print "          Ir on    Ir off   on - off (reps)       in metrics code (reps)   ~CPU at the quiet-machine cost"
        printf "  request %7.0f %9.0f %7.0f (%s) %7.0f (%s)   on-off %.3f us, metrics code %.3f us of %.1f (target <= 0.5)\n",
            on_r, off_r, on_r - off_r, span(dr, n), h_r, span(hr, n),
            rr * (on_r - off_r) / on_r, rr * h_r / on_r, rr
        printf "  stream  %7.0f %9.0f %7.0f (%s) %7.0f (%s)   on-off %.3f us, metrics code %.3f us of %.0f (target <= 3)\n",
            on_s, off_s, on_s - off_s, span(ds, n), h_s, span(hs, n),
            rs * (on_s - off_s) / on_s, rs * h_s / on_s, rs
        printf "RESULT metrics_cost ir_request_on=%.0f ir_request_off=%.0f ir_request_hooks=%.0f", on_r, off_r, h_r
        printf " ir_stream_on=%.0f ir_stream_off=%.0f ir_stream_hooks=%.0f\n", on_s, off_s, h_s
    }'
