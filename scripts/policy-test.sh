#!/usr/bin/env bash
# pieces-gateway: run the busted specs of an operator's own policies (a directory outside this
# repository) against the fake host, without the gateway binary.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# Usage: scripts/policy-test.sh POLICIES_DIR [SPECS_DIR] [-- BUSTED_OPTION...]
#        make policy-test POLICIES=/path/to/policies [SPECS=/path/to/specs]
#   POLICIES_DIR  the operator's policy files (<name>.lua)
#   SPECS_DIR     their *_spec.lua files, searched recursively (default: POLICIES_DIR)
#   after --       more busted options (e.g. --filter=NAME, -o TAP) or spec files
# In a spec, `require "fake_host"` gives the fake host; h.load("<name>", conf) loads
# POLICIES_DIR/<name>.lua, else the shipped policies/<name>.lua; `require "<name>"` finds the
# operator's modules, and the host library (gw.ip, gw.phases, ...) is on the path too.
#
# Why a script: busted's `lua` option (this repository's .busted sets luajit) re-runs busted
# through an unquoted shell command, so `--lpath="a;b"` and paths with blanks break. Here busted
# runs under luajit directly (--ignore-lua), the paths travel in LUA_PATH and GW_POLICY_PATH,
# and a generated config file replaces any .busted of the current directory; no shell ever
# re-reads them.
set -euo pipefail

usage() {
    echo "usage: $0 POLICIES_DIR [SPECS_DIR] [-- BUSTED_OPTION...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
policies="$1"
shift
specs="$policies"
if [ $# -ge 1 ] && [ "$1" != "--" ]; then
    specs="$1"
    shift
fi
if [ $# -ge 1 ]; then
    [ "$1" = "--" ] || usage
    shift
fi

for d in "$policies" "$specs"; do
    [ -d "$d" ] || { echo "policy-test: $d: not a directory" >&2; exit 2; }
done
policies="$(cd "$policies" && pwd)"
specs="$(cd "$specs" && pwd)"
for d in "$root" "$policies" "$specs"; do
    case "$d" in
        *\;* | *\?*) echo "policy-test: $d: a Lua search path cannot hold ';' or '?'" >&2
                      exit 2 ;;
    esac
done

luajit="${LUAJIT:-luajit}"
busted="${BUSTED:-$(command -v busted || true)}"
[ -n "$busted" ] || { echo "policy-test: busted not found (scripts/install-deps.sh test)" >&2
                      exit 2; }

cfg="$(mktemp "${TMPDIR:-/tmp}/gw-policy-test.XXXXXX")"
trap 'rm -f "$cfg"' EXIT
# Lua long strings need no escaping; a path cannot hold "]==]" and also be a sane directory,
# but refuse it rather than write a broken file.
case "$specs" in *"]==]"*) echo "policy-test: $specs: unsupported name" >&2; exit 2 ;; esac
printf 'return { default = { ROOT = { [==[%s]==] }, pattern = "_spec" } }\n' "$specs" >"$cfg"

export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/support/?.lua;$policies/?.lua;;"
export GW_POLICY_PATH="$policies/?.lua;$root/policies/?.lua"
set +e
"$luajit" "$busted" --ignore-lua --config-file="$cfg" "$@"
rc=$?
set -e
exit "$rc"
