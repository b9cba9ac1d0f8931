#!/usr/bin/env bash
# pieces-gateway: install the pinned npm packages of a folder (npm ci with its committed
# lockfile), only when node_modules is missing or older than the lockfile.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
set -eu
dir="$1"
[ -f "$dir/package-lock.json" ] || { echo "npm-ci: $dir/package-lock.json missing" >&2; exit 1; }
stamp="$dir/node_modules/.gw-ci-stamp"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
    exit 0
fi
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
touch "$stamp"
