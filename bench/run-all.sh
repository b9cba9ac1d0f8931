#!/usr/bin/env bash
# pieces-gateway: runs every benchmark present (make bench calls this).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Runs bench/*.sh (except this file) and bench/*/run.sh, in name order, each one in turn (they
# pin servers to CPU 0 and the load generator to CPU 1, so never two at once). Each script
# prints its own ratios against a reference run made in the same script. Exit status: 0 when
# every benchmark succeeded, 1 otherwise (the others still run). Environment knobs such as
# DURATION and RUNS are passed through (see bench/lib/common.sh).
# Usage: bench/run-all.sh [name-filter]   e.g. bench/run-all.sh policy
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
filter=${1:-}
failed=()
ran=0
for script in "$here"/*.sh "$here"/*/run.sh; do
    [ -f "$script" ] || continue
    [ "$script" = "$here/run-all.sh" ] && continue
    name=${script#"$here"/}
    [ -z "$filter" ] || [[ "$name" == *"$filter"* ]] || continue
    echo "=== bench/$name"
    ran=$((ran + 1))
    if ! bash "$script"; then
        failed+=("$name")
        echo "=== bench/$name FAILED" >&2
    fi
    echo
done
[ "$ran" -gt 0 ] || { echo "run-all: no benchmark matches '$filter'" >&2; exit 1; }
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run-all: failed: ${failed[*]}" >&2
    exit 1
fi
echo "run-all: $ran benchmark(s) done"
