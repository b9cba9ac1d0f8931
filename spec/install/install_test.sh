#!/usr/bin/env bash
# pieces-gateway: the Docker image's build steps, minus Docker (no engine runs in CI).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Usage: spec/install/install_test.sh BUILD_DIR/pieces-gateway      (from the repository root;
#        ctest test `install_layout`, cmake/component-install.cmake)
#
#  1. Lints the Dockerfile: two debian:12-slim stages; every RUN command is a repository script
#     (which must exist, be executable and parse) or one of useradd/chown/chmod/mkdir/rm; COPY
#     sources exist; ENV is one NAME=value per line, each NAME read by gateway.lua (or TZ);
#     USER 1001, WORKDIR /app, EXPOSE 8787, the volumes, HEALTHCHECK on /ping, exec-form CMD.
#     .dockerignore excludes no tracked file; docker-compose.yml has the service, the mounts,
#     the hardening and only known variables.
#  2. scripts/install-deps.sh runtime: succeeds (a no-op when everything is installed), and
#     its package set provides every shared library the binary links (ldd + dpkg -S), curl,
#     ca-certificates and tzdata.
#  3. scripts/build.sh: parses, refuses bad usage, and configures the release build for real
#     (--configure-only, temp dir): no sanitizers, no tests, Lua embedded, target present.
#  4. scripts/install-gateway.sh BUILD_DIR PREFIX (twice: idempotent), then the layout.
#  5. The image's runtime, with /app mapped to PREFIX: the Dockerfile's chown/chmod lines, its
#     ENV lines, its CMD, as uid 1001 gid 0 when running as root (so only data/ and logs/ are
#     writable, like the read-only root of the compose file): -t passes; the server answers
#     the HEALTHCHECK command, /ping, /v1/models; the log file is in logs/ with TZ's local
#     time; an auto-ban lands in data/blacklist.txt; an in-place policy edit shows within 2 s;
#     a broken policy (replaced by rename, as editors do) keeps the old policies serving and
#     is reported by GET /admin/policies, its repair reloads; SIGTERM exits 0; no stray files.
set -euo pipefail

BIN=${1:?usage: spec/install/install_test.sh BUILD_DIR/pieces-gateway}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
BUILD_DIR=$(dirname "$BIN")
cd "$ROOT"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gw-install-XXXXXX")
GW_PID=""
cleanup() {
    if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
        kill -KILL "$GW_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
die() { echo "FAIL - $*"; [ -f "$TMP/gw.out" ] && sed 's/^/  | /' "$TMP/gw.out"; exit 1; }

# ---------------------------------------------------------------- 1. Dockerfile and friends

[ -f Dockerfile ] || die "Dockerfile missing"
# Instructions one per line: continuation lines joined, comments and blank lines dropped.
sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' Dockerfile | grep -v '^[[:space:]]*#' \
    | grep -v '^[[:space:]]*$' >"$TMP/instr"
runtime_from=$(grep -n '^FROM ' "$TMP/instr" | tail -1 | cut -d: -f1)
tail -n +"$runtime_from" "$TMP/instr" >"$TMP/runtime"

froms=$(grep '^FROM ' "$TMP/instr")
check "Dockerfile: build stage FROM debian:12-slim AS build" \
    test "$(echo "$froms" | head -1)" = "FROM debian:12-slim AS build"
check "Dockerfile: runtime stage FROM debian:12-slim" \
    test "$(echo "$froms" | tail -1)" = "FROM debian:12-slim"
check "Dockerfile: two stages" test "$(echo "$froms" | wc -l)" -eq 2
# A syntax directive makes BuildKit fetch a frontend image from Docker Hub (offline builds fail)
check "Dockerfile: no '# syntax=' directive" bash -c "! grep -qiE '^# *syntax *=' Dockerfile"

: >"$TMP/scripts_called"
run_ok=1
while IFS= read -r line; do
    cmd=${line#RUN }
    # shellcheck disable=SC2016 # literal characters, not expansions
    case "$cmd" in
        *';'* | *'|'* | *'$('* | *'`'* | *'>'* | *'<'*)
            bad "Dockerfile RUN: only '&&' chains of simple commands: $cmd"
            run_ok=0
            continue
            ;;
    esac
    echo "$cmd" | sed 's/&&/\n/g' | while read -r word _; do
        case "$word" in
            useradd | chown | chmod | mkdir | rm) ;;
            scripts/*.sh | /*/scripts/*.sh) echo "scripts/${word##*scripts/}" >>"$TMP/scripts_called" ;;
            *) echo "$word" >>"$TMP/bad_run" ;;
        esac
    done
done < <(grep '^RUN ' "$TMP/instr")
if [ -s "$TMP/bad_run" ]; then
    bad "Dockerfile RUN calls something else than scripts/*.sh or useradd/chown/chmod/mkdir/rm: $(sort -u "$TMP/bad_run" | tr '\n' ' ')"
elif [ "$run_ok" -eq 1 ]; then
    ok "Dockerfile RUN: only scripts/*.sh and useradd/chown/chmod/mkdir/rm"
fi
for s in $(sort -u "$TMP/scripts_called"); do
    if [ -f "$s" ] && [ -x "$s" ]; then
        shell=$(head -1 "$s" | sed 's/^#! *//; s/^\/usr\/bin\/env  *//; s/ .*//')
        check "Dockerfile calls $s: exists, executable, parses ($shell -n)" \
            "$(basename "$shell")" -n "$s"
    else
        bad "Dockerfile calls $s: missing or not executable"
    fi
done
for s in scripts/install-deps.sh scripts/build.sh scripts/install-gateway.sh; do
    check "Dockerfile calls $s" grep -qx "$s" "$TMP/scripts_called"
done

while read -r _ args; do
    read -ra words <<<"$args"
    srcs=()
    for a in "${words[@]}"; do
        case "$a" in --from=*) srcs=(); break ;; --*) ;; *) srcs+=("$a") ;; esac
    done
    [ ${#srcs[@]} -gt 1 ] || continue
    unset 'srcs[${#srcs[@]}-1]'
    for s in "${srcs[@]}"; do
        check "Dockerfile COPY source exists: $s" test -e "$s"
    done
done < <(grep '^COPY ' "$TMP/instr")

# ENV: the image's configuration, reused below to run the installed gateway.
: >"$TMP/image_env"
while read -r _ rest; do
    if [[ "$rest" =~ ^([A-Z_][A-Z0-9_]*)=([^[:space:]\"\']*)$ ]]; then
        name=${BASH_REMATCH[1]}
        echo "$name=${BASH_REMATCH[2]}" >>"$TMP/image_env"
        if [ "$name" != TZ ] && ! grep -q "env\.[a-z]*(\"$name\"" gateway.lua; then
            bad "Dockerfile ENV $name: not read by gateway.lua"
        fi
    else
        bad "Dockerfile ENV: one NAME=value (no quotes, no spaces) per line: ENV $rest"
    fi
done < <(grep '^ENV ' "$TMP/runtime")
envval() { grep "^$1=" "$TMP/image_env" | tail -1 | cut -d= -f2-; }
check "Dockerfile ENV PORT=8787" test "$(envval PORT)" = 8787
check "Dockerfile ENV API_PREFIX=/v1" test "$(envval API_PREFIX)" = /v1
check "Dockerfile ENV POLICIES_DIR=/app/policies" test "$(envval POLICIES_DIR)" = /app/policies
check "Dockerfile ENV ASSETS_DIR=/app/assets" test "$(envval ASSETS_DIR)" = /app/assets
check "Dockerfile ENV BLACKLIST_FILE under /app/data" \
    test "$(dirname "$(envval BLACKLIST_FILE)")" = /app/data
check "Dockerfile ENV LOG_FILE under /app/logs" test "$(dirname "$(envval LOG_FILE)")" = /app/logs
check "Dockerfile ENV TZ set" test -n "$(envval TZ)"

check "Dockerfile: non-root user uid 1001, group root" \
    grep -qE '^RUN .*useradd -u 1001 -g 0 ' "$TMP/runtime"
check "Dockerfile: USER 1001" grep -qx 'USER 1001' "$TMP/runtime"
check "Dockerfile: WORKDIR /app" grep -qx 'WORKDIR /app' "$TMP/runtime"
check "Dockerfile: EXPOSE 8787" grep -qx 'EXPOSE 8787' "$TMP/runtime"
check "Dockerfile: VOLUME /app/data and /app/logs" \
    grep -qE '^VOLUME \[?"?/app/data"?,? "?/app/logs"?\]?$' "$TMP/runtime"
check "Dockerfile: COPY --from=build /out /app" grep -qx 'COPY --from=build /out /app' "$TMP/runtime"
hc=$(grep '^HEALTHCHECK ' "$TMP/runtime" | sed 's/.* CMD //')
check "Dockerfile: HEALTHCHECK (shell form) on /ping" \
    grep -qE '^HEALTHCHECK --interval=[0-9]+s .* CMD curl .*/ping' "$TMP/runtime"
cmdline=$(grep '^CMD \[' "$TMP/runtime" | tail -1)
check "Dockerfile: exec-form CMD" test -n "$cmdline"
# CMD ["a", "b"] -> one argument per line (no commas or quotes inside the arguments)
echo "$cmdline" | sed 's/^CMD \[//; s/\][[:space:]]*$//' | tr ',' '\n' \
    | sed 's/^[[:space:]]*"//; s/"[[:space:]]*$//' >"$TMP/image_cmd"

# .dockerignore: the build context keeps every tracked file; build trees and packages go.
check ".dockerignore exists" test -f .dockerignore
for p in 'build*/' '**/node_modules/' '.git'; do
    check ".dockerignore excludes $p" grep -qxF "$p" .dockerignore
done
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files >"$TMP/tracked"
    excluded=""
    while IFS= read -r pat; do
        case "$pat" in '' | '#'* | '!'*) continue ;; esac
        pat=${pat%/}
        pats=("$pat")
        [[ "$pat" == '**/'* ]] && pats+=("${pat#\*\*/}")
        while IFS= read -r f; do
            for q in "${pats[@]}"; do
                # shellcheck disable=SC2053
                if [[ "$f" == $q || "$f" == $q/* ]]; then excluded="$excluded $f"; fi
            done
        done <"$TMP/tracked"
    done <.dockerignore
    check ".dockerignore excludes no tracked file${excluded:+ (excluded:$excluded)}" test -z "$excluded"
else
    echo "skip - .dockerignore against tracked files (no git checkout)"
fi

# docker-compose.yml: no YAML parser is guaranteed here, so structure by grep.
C=docker-compose.yml
if [ -f "$C" ]; then
    check "$C: no tab characters" bash -c "! grep -q \$'\\t' $C"
    check "$C: service pieces-gateway built from ." \
        bash -c "grep -qE '^  pieces-gateway:$' $C && grep -qE '^    build: \\.$' $C"
    check "$C: port mapping to 8787" grep -qE '^ *- "\$\{PORT:-8787\}:8787"$' "$C"
    check "$C: policies mounted read-only" grep -qE '^ *- \./policies:/app/policies:ro$' "$C"
    check "$C: data volume" grep -qE '^ *- [a-z_-]+:/app/data$' "$C"
    check "$C: logs volume" grep -qE '^ *- [a-z_-]+:/app/logs$' "$C"
    check "$C: read_only root" grep -qE '^    read_only: true$' "$C"
    check "$C: tmpfs /tmp" grep -qE '^ *- /tmp' "$C"
    check "$C: cap_drop ALL" grep -qE '^ *- ALL$' "$C"
    check "$C: no-new-privileges" grep -qE '^ *- no-new-privileges:true$' "$C"
    check "$C: healthcheck on /ping" grep -qE 'curl.*/ping' "$C"
    check "$C: restart unless-stopped" grep -qE '^    restart: unless-stopped$' "$C"
    # Following the README in order (docker run --name X, then docker compose up) must not
    # fail on a name conflict.
    cname=$(sed -n 's/^    container_name: *//p' "$C")
    rname=$(sed -n 's/^docker run .*--name \([^ ]*\).*/\1/p' README.md)
    check "$C: container_name ($cname) differs from the README's docker run --name (${rname:-none})" \
        test -n "$rname" -a "$cname" != "$rname"
    check "$C: the container keeps listening on 8787 (PORT is the host side only)" \
        bash -c "! grep -qE '^ +PORT:' $C"
    unknown=""
    for v in $(sed -n '/^    environment:$/,/^    [a-z_]*:/p' "$C" | sed -n 's/^      \([A-Z_][A-Z0-9_]*\):.*/\1/p'); do
        [ "$v" = TZ ] || grep -q "env\.[a-z]*(\"$v\"" gateway.lua || unknown="$unknown $v"
    done
    check "$C: every environment variable is read by gateway.lua${unknown:+ (unknown:$unknown)}" \
        test -z "$unknown"
else
    bad "$C missing"
fi

# ------------------------------------------------------------- 2. runtime packages

check "scripts/install-deps.sh runtime succeeds" scripts/install-deps.sh runtime
runtime_pkgs=" $(sed -n '/^RUNTIME="/,/"/p' scripts/install-deps.sh | tr -d '\\"\n' | sed 's/^RUNTIME=//') "
for p in curl ca-certificates tzdata; do
    check "runtime set has $p" grep -q " $p " <<<"$runtime_pkgs"
done
if command -v dpkg >/dev/null 2>&1; then
    check "ldd: every library of the binary resolves" bash -c "! ldd '$BIN' | grep -q 'not found'"
    for lib in $(ldd "$BIN" | grep -o '/[^ ]*'); do
        real=$(readlink -f "$lib")
        pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true)
        pkg=${pkg%%:*}
        case "$pkg" in
            libc6 | libgcc-s1) ok "$(basename "$lib") from $pkg (in the base image)" ;;
            "") bad "$(basename "$lib"): no Debian package owns $real" ;;
            *) check "$(basename "$lib") from $pkg, in the runtime set" grep -q " $pkg " <<<"$runtime_pkgs" ;;
        esac
    done
else
    echo "skip - runtime libraries against Debian packages (no dpkg)"
fi

# ------------------------------------------------------------- 3. the release build's configure

check "scripts/build.sh refuses bad usage (exit 2)" \
    bash -c "scripts/build.sh a b >/dev/null 2>&1; test \$? -eq 2"
if scripts/build.sh --configure-only "$TMP/release" >"$TMP/configure.log" 2>&1; then
    ok "scripts/build.sh --configure-only configures the release build"
    cache="$TMP/release/CMakeCache.txt"
    for opt in GW_SANITIZERS:BOOL=OFF GW_TESTS:BOOL=OFF GW_LUA_FROM_DISK:BOOL=OFF; do
        check "release build: $opt" grep -qx "$opt" "$cache"
    done
    check "release build: an optimised build type" \
        grep -qE '^CMAKE_BUILD_TYPE:STRING=(Release|RelWithDebInfo)$' "$cache"
    cmake --build "$TMP/release" --target help >"$TMP/targets" 2>&1 || true
    check "release build: target pieces-gateway" grep -qE '(^|[ .])pieces-gateway$' "$TMP/targets"
    check "release build: no sanitizer targets" bash -c "! grep -q asan '$TMP/targets'"
else
    sed 's/^/  | /' "$TMP/configure.log"
    bad "scripts/build.sh --configure-only"
fi

# ------------------------------------------------------------- 4. install layout

P="$TMP/app"
for round in 1 2; do
    if scripts/install-gateway.sh "$BUILD_DIR" "$P" >"$TMP/install.log" 2>&1; then
        ok "scripts/install-gateway.sh BUILD_DIR PREFIX (run $round)"
    else
        sed 's/^/  | /' "$TMP/install.log"
        die "scripts/install-gateway.sh BUILD_DIR PREFIX (run $round)"
    fi
done
check "usage error without arguments" bash -c "scripts/install-gateway.sh >/dev/null 2>&1; test \$? -eq 2"
check "PREFIX/pieces-gateway executable" test -x "$P/pieces-gateway"
check "PREFIX/pieces-gateway --version" bash -c "'$P/pieces-gateway' --version >/dev/null"
check "PREFIX/gateway.lua is the repository's" cmp -s gateway.lua "$P/gateway.lua"
check "PREFIX/LICENSE" cmp -s LICENSE "$P/LICENSE"
check "PREFIX/policies: the repository's policies" \
    diff -q <(cd policies && ls -- *.lua) <(cd "$P/policies" && ls)
check "PREFIX/assets: vocabularies match SHA256SUMS" \
    bash -c "cd '$P/assets' && sha256sum --check --quiet --strict SHA256SUMS"
check "PREFIX/data and PREFIX/logs exist, empty" \
    test -z "$(find "$P/data" "$P/logs" -mindepth 1)"

# ------------------------------------------------------------- 5. run it as the image does

app() { sed "s#^/app\\b#$P#"; } # /app/... -> PREFIX/...
# The Dockerfile's runtime chown/chmod commands, on PREFIX (only root can chown).
RUNAS=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    chmod 0755 "$TMP"
    while read -r word rest; do
        case "$word" in
            chown | chmod | mkdir)
                # shellcheck disable=SC2046
                "$word" $(for a in $rest; do echo "$a" | app; done)
                ;;
        esac
    done < <(grep '^RUN ' "$TMP/runtime" | sed 's/^RUN //; s/&&/\n/g')
    user=$(grep '^USER ' "$TMP/runtime" | tail -1 | cut -d' ' -f2)
    RUNAS=(setpriv --reuid="$user" --regid=0 --clear-groups --)
    ok "running as uid $user gid 0, only data/ and logs/ writable"
    check "data/ owned by uid $user" test "$(stat -c %u "$P/data")" = "$user"
    check "logs/ owned by uid $user" test "$(stat -c %u "$P/logs")" = "$user"
    check "policies/ not writable by uid $user" test "$(stat -c %u "$P/policies")" != "$user"
else
    echo "skip - running as the image's user (needs root and setpriv); running as $(id -un)"
fi

mapfile -t CMD < <(app <"$TMP/image_cmd")
mapfile -t IMAGE_ENV < <(sed "s#=/app\\b#=$P#" "$TMP/image_env")
TZV=$(envval TZ)
check "zoneinfo for TZ=$TZV installed (tzdata)" test -f "/usr/share/zoneinfo/$TZV"
ADMIN="adm-$RANDOM$RANDOM"
base_env() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$P" "${IMAGE_ENV[@]}" "$@"
}

if (cd "$P" && base_env "${RUNAS[@]}" "${CMD[@]}" -t) >"$TMP/t.out" 2>&1; then
    ok "image CMD with -t: the configuration and policies validate"
else
    sed 's/^/  | /' "$TMP/t.out"
    bad "image CMD with -t"
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
# Test-only settings on top of the image's: one more worker than needed to catch state kept in
# one VM; upstreams on a closed local port (no network); the admin key; loopback whitelisted
# (no rate limit for the polling below) and a low limit + threshold for the auto-ban check.
TEST_ENV=(WORKERS=2 ADMIN_KEY="$ADMIN" GPT_GRPC_ADDR=http://127.0.0.1:9
    VERTEX_GRPC_ADDR=http://127.0.0.1:9 IP_WHITELIST=127.0.0.1 RATE_LIMIT=3
    BLACKLIST_THRESHOLD=1)
started=0
for _ in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 10000))
    port_free "$PORT" || continue
    rm -f "$(envval LOG_FILE | app)"
    before=$(TZ="$TZV" date '+%Y/%m/%d %H:%M:%S')
    (cd "$P" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$P" "${IMAGE_ENV[@]}" \
        PORT="$PORT" "${TEST_ENV[@]}" "${RUNAS[@]}" "${CMD[@]}") >"$TMP/gw.out" 2>&1 &
    GW_PID=$!
    for _ in $(seq 100); do
        kill -0 "$GW_PID" 2>/dev/null || break
        # our instance (the admin key is ours), not another process on the same port
        [ "$(code -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/admin/policies")" = 200 ] \
            && { started=1; break; }
        sleep 0.1
    done
    [ "$started" -eq 1 ] && break
    kill -KILL "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
done
after=$(TZ="$TZV" date '+%Y/%m/%d %H:%M:%S')
[ "$started" -eq 1 ] || die "the gateway did not start with the image's CMD and ENV"
ok "image CMD and ENV: listening on $PORT (pid $GW_PID)"
U="http://127.0.0.1:$PORT"

check "HEALTHCHECK command succeeds: $hc" env PORT="$PORT" sh -c "$hc" >/dev/null
check "GET /ping -> pong" test "$(curl -s "$U/ping")" = pong
check "GET $(envval API_PREFIX)/models -> 200" test "$(code "$U$(envval API_PREFIX)/models")" = 200

LOG=$(envval LOG_FILE | app)
check "log file in PREFIX/logs" test -s "$LOG"
first=$(head -1 "$LOG" | cut -c1-19)
check "log time is $TZV local time ($before <= $first <= $after)" \
    bash -c "[[ ! '$first' < '$before' && ! '$first' > '$after' ]]"

# Auto-ban (through a trusted proxy header from loopback) -> the blacklist file in data/.
codes=""
for _ in 1 2 3 4 5; do codes="$codes $(code -H 'X-Forwarded-For: 203.0.113.7' "$U/ping")"; done
check "rate limit then ban: 200 200 200 429 403 (got$codes)" test "$codes" = " 200 200 200 429 403"
BL=$(envval BLACKLIST_FILE | app)
for _ in $(seq 20); do grep -q 203.0.113.7 "$BL" 2>/dev/null && break; sleep 0.1; done
check "the ban is written to PREFIX/data ($(basename "$BL"))" grep -q '"ip":"203.0.113.7"' "$BL"
check "GET /admin/blacklist serves it" \
    bash -c "curl -s -H 'Authorization: Bearer $ADMIN' $U/admin/blacklist | grep -q 203.0.113.7"

# Hot reload: an in-place edit (what a bind-mounted file sees when edited on the host).
models_url="$U$(envval API_PREFIX)/models"
wait_for() { # wait_for SECONDS COMMAND...: poll every 50 ms
    local n=$(($1 * 20))
    shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done
    return 1
}
has() { curl -s "$1" | grep -qF "$2"; }
status() { curl -s -H "Authorization: Bearer $ADMIN" "$U/admin/policies"; }
check "before the edit: GPT-4o Chat Model" has "$models_url" '"name":"GPT-4o Chat Model"'
sed 's/"GPT-4o Chat Model"/"GPT-4o Chat Model (edited)"/' "$P/policies/models.lua" >"$TMP/models.lua"
cat "$TMP/models.lua" >"$P/policies/models.lua"
t0=$(date +%s%N)
if wait_for 2 has "$models_url" '"name":"GPT-4o Chat Model (edited)"'; then
    ok "edited policy serves within 2 s without a restart ($((($(date +%s%N) - t0) / 1000000)) ms)"
else
    bad "edited policy not served within 2 s"
fi

# A broken file, replaced by rename like editors do: old policies keep serving, error shown.
cp "$P/policies/auth.lua" "$TMP/auth.lua"
printf 'return {\n' >"$P/policies/auth.lua.new"
mv "$P/policies/auth.lua.new" "$P/policies/auth.lua"
if wait_for 2 bash -c "curl -s -H 'Authorization: Bearer $ADMIN' $U/admin/policies | grep -q '\"ok\":false'"; then
    ok "broken policy: GET /admin/policies reports the failed reload"
    check "the report names the file" bash -c "curl -s -H 'Authorization: Bearer $ADMIN' $U/admin/policies | grep -q 'auth.lua:'"
else
    bad "broken policy: no failed reload in GET /admin/policies: $(status)"
fi
check "broken policy: the old policies keep serving" \
    has "$models_url" '"name":"GPT-4o Chat Model (edited)"'
cp "$TMP/auth.lua" "$P/policies/auth.lua.new"
mv "$P/policies/auth.lua.new" "$P/policies/auth.lua"
check "repaired policy: reload succeeds" \
    wait_for 2 bash -c "curl -s -H 'Authorization: Bearer $ADMIN' $U/admin/policies | grep -q '\"ok\":true'"
check "log: the reload and the failure" \
    bash -c "grep -q 'policies reloaded' '$LOG' && grep -q 'reload failed' '$LOG'"

# SIGTERM (docker stop) -> exit 0.
kill -TERM "$GW_PID"
rc=0
for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$GW_PID" 2>/dev/null; then
    bad "SIGTERM: still running after 10 s"
else
    wait "$GW_PID" || rc=$?
    check "SIGTERM: exit 0 (got $rc)" test "$rc" -eq 0
fi
GW_PID=""
check "no stray files in PREFIX" test "$(cd "$P" && LC_ALL=C ls -A | tr '\n' ' ')" \
    = "LICENSE assets data gateway.lua logs pieces-gateway policies "
check "PREFIX/data holds only the blacklist file" test "$(ls -A "$P/data")" = "$(basename "$BL")"
check "PREFIX/logs holds only the log file" test "$(ls -A "$P/logs")" = "$(basename "$LOG")"

if [ "$failures" -ne 0 ]; then
    echo "--- gateway output"
    sed 's/^/  | /' "$TMP/gw.out"
    echo "$failures check(s) failed"
    exit 1
fi
echo "all install checks passed"
