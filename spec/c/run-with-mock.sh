#!/bin/sh
# pieces-gateway: run a C integration driver against the standalone grpc-js mock upstream.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# Usage: spec/c/run-with-mock.sh DRIVER [ARGS...]   (from the repository root)
# Starts spec/e2e/mock/server.js on free ports (h2c, TLS with a CA made here, a server limited
# to 2 concurrent streams, a hung TCP peer, an HTTP 503 server), exports their addresses as
# GW_MOCK_* and runs DRIVER. The mock and the temp dir go away on exit.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$root/spec/e2e/node_modules/@grpc/grpc-js" ] || "$root/scripts/npm-ci.sh" "$root/spec/e2e"
tmp=$(mktemp -d /tmp/gw-mock.XXXXXX)
mock_pid=""
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
mkfifo "$tmp/ready"
node "$root/spec/e2e/mock/server.js" --port 0 --tls-port 0 --tls-dir "$tmp/tls" \
    --limited-port 0 --max-streams 2 --blackhole-port 0 --raw-port 0 \
    --events "$tmp/events.jsonl" >"$tmp/ready" 2>"$tmp/mock.err" &
mock_pid=$!
read -r line <"$tmp/ready" || { cat "$tmp/mock.err" >&2; exit 1; }
case "$line" in READY*) ;; *) echo "mock did not start: $line" >&2; cat "$tmp/mock.err" >&2; exit 1 ;; esac
for kv in ${line#READY }; do
    k=${kv%%=*}; v=${kv#*=}
    case "$k" in
        port) export GW_MOCK_H2C="127.0.0.1:$v" ;;
        tls) export GW_MOCK_TLS_PORT="$v" ;;
        limited) export GW_MOCK_LIMITED="127.0.0.1:$v" ;;
        blackhole) export GW_MOCK_BLACKHOLE="127.0.0.1:$v" ;;
        raw) export GW_MOCK_RAW="127.0.0.1:$v" ;;
    esac
done
export GW_MOCK_CA="$tmp/tls/ca.pem" GW_MOCK_OTHER_CA="$tmp/tls/other-ca.pem"
export GW_MOCK_EVENTS="$tmp/events.jsonl"
set +e
"$@"
rc=$?
[ $rc -ne 0 ] && { echo "--- mock stderr:" >&2; cat "$tmp/mock.err" >&2; }
exit $rc
