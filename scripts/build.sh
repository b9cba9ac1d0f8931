#!/bin/sh
# pieces-gateway: the release build of the binary (what the Docker image ships).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Usage: scripts/build.sh [--configure-only] [BUILD_DIR]      (default BUILD_DIR: build-release)
# Configures with the optimisation level `make test` runs (RelWithDebInfo, override with
# BUILD_TYPE=...), without the sanitizer variants and the tests, the Lua host library embedded,
# then builds only the pieces-gateway target. --configure-only stops after configuring (the
# install test uses it). The build dependencies must be installed: scripts/install-deps.sh build.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
configure_only=0
if [ "${1:-}" = "--configure-only" ]; then
    configure_only=1
    shift
fi
[ $# -le 1 ] || { echo "usage: scripts/build.sh [--configure-only] [BUILD_DIR]" >&2; exit 2; }
dir="${1:-$root/build-release}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

cmake -S "$root" -B "$dir" \
    -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
    -DGW_SANITIZERS=OFF \
    -DGW_TESTS=OFF \
    -DGW_LUA_FROM_DISK=OFF
[ "$configure_only" -eq 1 ] && exit 0
cmake --build "$dir" --target pieces-gateway -j "$jobs"
"$dir/pieces-gateway" --version
