#!/usr/bin/env bash
# pieces-gateway: build and run the libFuzzer drivers (make fuzz, make fuzz-merge).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Usage: scripts/fuzz.sh run|merge|build
#   run    builds every driver (cmake/fuzz.cmake) with clang in $FUZZ_BUILD (default build-fuzz)
#          and runs each for $FUZZ_SECONDS (default 60) seconds: new inputs go to
#          $FUZZ_BUILD/corpus/NAME (kept between runs), the committed spec/fuzz/corpus/NAME is
#          only read, spec/fuzz/NAME.dict is used when present and so are the libFuzzer flags
#          of spec/fuzz/NAME.options (one per line, # comments), crashes land in
#          $FUZZ_BUILD/artifacts/NAME/. Fails if any driver crashes, leaks, times out
#          (-timeout=$FUZZ_TIMEOUT s per input, default 25) or prints a sanitizer report; ends
#          with a table of exec/s and total executions per driver.
#   merge  minimises spec/fuzz/corpus/NAME in place (libFuzzer -merge=1), folding in the inputs
#          of $FUZZ_BUILD/corpus/NAME that add coverage (FUZZ_MERGE_NEW=0: only minimise).
#   build  only builds.
# FUZZ_TARGETS="a b" picks drivers (default: all); FUZZ_ARGS passes more libFuzzer flags.
# Needs clang with libFuzzer (clang-14 + libclang-rt-14-dev: scripts/install-deps.sh test).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode="${1:-run}"
bdir="${FUZZ_BUILD:-build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-25}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

clang=$(command -v clang-14 || command -v clang || true)
[ -n "$clang" ] || { echo "fuzz: clang not found (scripts/install-deps.sh test)" >&2; exit 1; }

build() {
    cmake -S . -B "$bdir" -DCMAKE_C_COMPILER="$clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DGW_FUZZ=ON >/dev/null
    cmake --build "$bdir" --target gw_fuzz -j "$jobs"
}

# The selected drivers (sel), checked against the registered ones.
select_targets() {
    local all=() t
    mapfile -t all < <(grep -v '^$' "$bdir/fuzz-targets.txt")
    if [ -z "${FUZZ_TARGETS:-}" ]; then
        sel=("${all[@]}")
        return
    fi
    read -ra sel <<<"$FUZZ_TARGETS"
    for t in "${sel[@]}"; do
        printf '%s\n' "${all[@]}" | grep -qx -- "$t" ||
            { echo "fuzz: unknown driver '$t' (registered: ${all[*]})" >&2; exit 2; }
    done
}

stat_of() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }

run_one() {
    local t=$1 log="$bdir/logs/$1.log" dict=() opts=() rc=0
    mkdir -p "$bdir/corpus/$t" "$bdir/artifacts/$t" "$bdir/logs"
    [ -f "spec/fuzz/$t.dict" ] && dict=("-dict=spec/fuzz/$t.dict")
    [ -f "spec/fuzz/$t.options" ] && mapfile -t opts < <(grep -v '^\s*\(#\|$\)' "spec/fuzz/$t.options")
    echo "fuzz: $t for ${seconds}s (log: $log)"
    # shellcheck disable=SC2086
    "$bdir/$t" -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 \
        -artifact_prefix="$bdir/artifacts/$t/" "${dict[@]}" "${opts[@]}" ${FUZZ_ARGS:-} \
        "$bdir/corpus/$t" "spec/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] && grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$log"
    then
        rc=99
    fi
    local execs eps
    execs=$(stat_of "$log" number_of_executed_units)
    eps=$(stat_of "$log" average_exec_per_sec)
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $t FAILED (exit $rc); last lines of $log:" >&2
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written|==[0-9]+==' "$log" | tail -n 20 >&2
        echo "fuzz: reproduce with $bdir/$t <artifact> (or build/${t}_replay <artifact>)" >&2
    fi
    printf '%-20s %10s %14s %s\n' "$t" "${eps:-?}" "${execs:-?}" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED ($rc)")" >>"$bdir/summary.txt"
    return "$rc"
}

merge_one() {
    local t=$1 out="spec/fuzz/corpus/$1" tmp
    tmp=$(mktemp -d "$bdir/merge-$t.XXXXXX")
    local from=("$out")
    [ "${FUZZ_MERGE_NEW:-1}" = 1 ] && [ -d "$bdir/corpus/$t" ] && from+=("$bdir/corpus/$t")
    "$bdir/$t" -merge=1 "$tmp" "${from[@]}" >"$bdir/logs/$t.merge.log" 2>&1 ||
        { echo "fuzz: merge of $t failed, see $bdir/logs/$t.merge.log" >&2; rm -rf "$tmp"; exit 1; }
    local before after
    before=$(find "$out" -type f | wc -l)
    find "$out" -type f -delete
    cp "$tmp"/* "$out"/
    rm -rf "$tmp"
    after=$(find "$out" -type f | wc -l)
    echo "fuzz: $t corpus $before -> $after files ($(du -sh "$out" | cut -f1))"
}

build
sel=()
select_targets
mkdir -p "$bdir/logs"
case "$mode" in
    build) ;;
    run)
        printf '%-20s %10s %14s %s\n' driver exec/s execs result >"$bdir/summary.txt"
        failed=0
        for t in "${sel[@]}"; do run_one "$t" || failed=1; done
        echo
        cat "$bdir/summary.txt"
        exit "$failed"
        ;;
    merge)
        for t in "${sel[@]}"; do merge_one "$t"; done
        ;;
    *) echo "usage: scripts/fuzz.sh run|merge|build" >&2; exit 2 ;;
esac
