#!/bin/sh
# pieces-gateway: run a C integration driver against the standalone OpenAI-compatible mock.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# Usage: spec/c/run-with-openai-mock.sh DRIVER [ARGS...]   (from the repository root)
# Starts spec/e2e/mock/openai.js on free ports (plain HTTP/1.1, TLS with h2 + http/1.1 and a
# CA made here, a TCP peer that never answers), exports GW_OAI_HTTP, GW_OAI_HTTPS,
# GW_OAI_BLACKHOLE, GW_OAI_CA, GW_OAI_OTHER_CA and runs DRIVER; everything goes on exit.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/gw-oai-mock.XXXXXX)
mock_pid=""
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
mkfifo "$tmp/ready"
node "$root/spec/e2e/mock/openai.js" --port 0 --tls-port 0 --tls-dir "$tmp/tls" \
    --blackhole-port 0 >"$tmp/ready" 2>"$tmp/mock.err" &
mock_pid=$!
read -r line <"$tmp/ready" || { cat "$tmp/mock.err" >&2; exit 1; }
case "$line" in READY*) ;; *) echo "mock did not start: $line" >&2; cat "$tmp/mock.err" >&2; exit 1 ;; esac
for kv in ${line#READY }; do
    k=${kv%%=*}; v=${kv#*=}
    case "$k" in
        port) export GW_OAI_HTTP="http://127.0.0.1:$v" ;;
        tls) export GW_OAI_HTTPS="https://localhost:$v" ;;
        blackhole) export GW_OAI_BLACKHOLE="https://127.0.0.1:$v" ;;
    esac
done
export GW_OAI_CA="$tmp/tls/ca.pem" GW_OAI_OTHER_CA="$tmp/tls/other-ca.pem"
set +e
"$@"
rc=$?
[ $rc -ne 0 ] && { echo "--- mock stderr:" >&2; cat "$tmp/mock.err" >&2; }
exit $rc
