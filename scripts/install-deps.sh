#!/bin/sh
# pieces-gateway: install every Debian package the project needs (idempotent).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Usage: scripts/install-deps.sh [build|runtime|test|bench]...   (default: build test)
# Runs as root, or through sudo when not root. Installs only what is missing.
set -eu

BUILD="build-essential cmake pkg-config ca-certificates \
libluajit2-5.1-dev luajit2 libuv1-dev node-llhttp libnghttp2-dev \
libprotobuf-c-dev protobuf-c-compiler libssl-dev libpcre2-dev libutf8proc-dev lua-cjson \
libhiredis-dev"
RUNTIME="ca-certificates curl tzdata libluajit2-5.1-2 libuv1 libnghttp2-14 libprotobuf-c1 libssl3 \
libpcre2-8-0 libutf8proc2 lua-cjson libhiredis0.14"
TEST="lua-busted lua-check curl nodejs npm openssl procps clang-14 libclang-rt-14-dev prometheus \
redis-server"
BENCH="wrk nginx libnginx-mod-http-lua procps redis-server"

sets="${*:-build test}"
want=""
for s in $sets; do
    case "$s" in
        build) want="$want $BUILD" ;;
        runtime) want="$want $RUNTIME" ;;
        test) want="$want $TEST" ;;
        bench) want="$want $BENCH" ;;
        *) echo "install-deps: unknown set '$s' (build, runtime, test, bench)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    # nodejs/npm may come from elsewhere (e.g. NodeSource); accept a working binary.
    case "$p" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done

[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
