#!/usr/bin/env bash
# pieces-gateway: the documented operator command (README, "Testing your own policies") works
# for a policies directory outside this repository: the sample policy and its spec are copied to
# a temp directory whose path holds blanks (what busted's own --lua re-exec cannot handle), and
# `make policy-test` and scripts/policy-test.sh run there, from a directory with a hostile
# .busted of its own. A failing spec must fail the command.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/gw operator XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

pol="$tmp/my policies"
specs="$tmp/my specs"
cp -r "$root/spec/operator/policies" "$pol"
cp -r "$root/spec/operator/spec" "$specs"
work="$tmp/work"
mkdir "$work"
# busted would read this from the current directory; the command must not depend on it
printf 'return { _all = { lua = "no-such-lua" }, default = { ROOT = { "nothing" } } }\n' \
    >"$work/.busted"
cd "$work"

out="$(make -s -C "$root" policy-test POLICIES="$pol" SPECS="$specs" 2>&1)" \
    || fail "make policy-test failed: $out"
grep -q "4 successes / 0 failures / 0 errors" <<<"$out" || fail "make policy-test: $out"

out="$("$root/scripts/policy-test.sh" "$pol" "$specs" -- -o TAP 2>&1)" \
    || fail "policy-test.sh failed: $out"
[ "$(grep -c '^ok ' <<<"$out")" = 4 ] || fail "policy-test.sh: $out"

# specs next to the policies (SPECS defaults to POLICIES)
cp "$specs/greet_spec.lua" "$pol/"
out="$("$root/scripts/policy-test.sh" "$pol" 2>&1)" || fail "default SPECS: $out"
grep -q "4 successes / 0 failures" <<<"$out" || fail "default SPECS: $out"

# a failing spec fails the command (so the passes above ran real specs)
cat >"$specs/broken_spec.lua" <<'SPEC'
describe("broken", function()
    it("fails", function()
        assert.equal(1, 2)
    end)
end)
SPEC
if out="$(make -s -C "$root" policy-test POLICIES="$pol" SPECS="$specs" 2>&1)"; then
    fail "a failing spec passed: $out"
fi
grep -q "4 successes / 1 failure" <<<"$out" || fail "failing spec: $out"

# misuse is reported
if out="$(make -s -C "$root" policy-test 2>&1)"; then fail "no POLICIES accepted"; fi
grep -q "POLICIES" <<<"$out" || fail "no POLICIES: $out"
if out="$("$root/scripts/policy-test.sh" "$tmp/missing" 2>&1)"; then fail "missing dir"; fi
grep -q "not a directory" <<<"$out" || fail "missing dir: $out"
echo "policy-test: ok"
