# shellcheck shell=bash
# pieces-gateway: counting helpers of bench/counts.sh (sourced after common.sh).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Provides deterministic cost figures that do not depend on how busy the machine is:
#   cg_wrap NAME          sets GW_WRAP and NGINX_WRAP: the next start_gateway/start_nginx runs
#                         under valgrind --tool=callgrind with instrumentation off (nothing is
#                         counted until cg_window switches it on)
#   cg_window PID UNITS CMD...   zero the counters, instrumentation on, run CMD (a load of a
#                         fixed size), off, dump; prints "<Ir of the busiest thread>
#                         <Ir of the other threads> <wall s>" and the busiest thread's Ir / UNITS
#   sys_window PID UNITS CMD...  the system calls PID's threads entered during CMD (perf stat on
#                         the raw_syscalls tracepoints, or strace -c -f); prints "<total of the
#                         busiest thread> <others> <top calls of the busiest thread>"
#   load_streams PORT C MODEL N   exactly N 20-chunk streams (bench/stream/load.js), checked
#   nreq ARGS...          the fixed-count HTTP load client (bench/lib/nreq.c, built on first use
#                         or by nreq_build)
# Why the busiest thread: the gateway's main thread (1 s timers, file watching) and its
# persistence thread do work per second of wall time, not per request, and under valgrind the
# wall time of a window depends on the machine's load; they are reported apart. nginx serves
# from one worker process (single-threaded), which is the PID given.
# Knobs: CG_OPTS (extra valgrind options), CG_KEEP (a directory: each window's dumps are copied
# to CG_KEEP/<name>/ for callgrind_annotate), SYS_TOOL (perf | strace; default perf when its
# tracepoints work).

CG_DIR=$BENCH_TMP/callgrind
mkdir -p "$CG_DIR"
cg_unwrap() {
    GW_WRAP=()
    NGINX_WRAP=()
}

cg_wrap() {
    local name=$1
    mkdir -p "$CG_DIR/$name"
    # --smc-check: valgrind's default (all-non-file) already re-checks anonymous mappings, where
    # LuaJIT writes and patches its machine code; file-backed code does not change.
    # shellcheck disable=SC2206 # CG_OPTS: a list of options
    GW_WRAP=(valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes
        --vgdb-prefix="$CG_DIR/vgdb" --callgrind-out-file="$CG_DIR/$name/cg.%p" ${CG_OPTS:-})
    # shellcheck disable=SC2034 # read by start_nginx and wait_up (bench/lib/common.sh)
    NGINX_WRAP=("${GW_WRAP[@]}")
    # shellcheck disable=SC2034
    WAIT_TRIES=3000 # valgrind starts slowly on a busy machine
    CG_NAME=$name
}

# callgrind_control for PID. vgdb names its FIFOs after LOGNAME/USER and HOST/HOSTNAME as the
# target saw them (the gateway runs with HOST=127.0.0.1 and no USER: env -i in start_gateway),
# so callgrind_control gets exactly those four from the target's environment.
cg_ctl() {
    local pid=$1 v val unset=() set=()
    shift
    for v in LOGNAME USER HOST HOSTNAME; do
        if val=$(tr '\0' '\n' <"/proc/$pid/environ" | grep -m1 "^$v="); then
            set+=("$val")
        else
            unset+=(-u "$v")
        fi
    done
    env ${unset[@]+"${unset[@]}"} ${set[@]+"${set[@]}"} \
        callgrind_control --vgdb-prefix="$CG_DIR/vgdb" "$@" "$pid" >>"$CG_DIR/control.log" 2>&1 ||
        { tail -5 "$CG_DIR/control.log" >&2; die "callgrind_control $* $pid failed"; }
}

cg_window() {
    local pid=$1 units=$2 t0 t1 f n=0 dir win
    shift 2
    dir=$CG_DIR/$CG_NAME
    win=$dir/w.$(date +%s%N) # cg_window often runs in a pipeline's subshell: no counter
    mkdir -p "$win"
    cg_ctl "$pid" --zero
    cg_ctl "$pid" --instr=on
    t0=$(date +%s%N)
    "$@" >"$win/load.out"
    t1=$(date +%s%N)
    cg_ctl "$pid" --instr=off
    cg_ctl "$pid" --dump
    # the dump is one file per thread: cg.<pid>.<part>-<thread>
    for _ in $(seq 1 100); do
        n=$(find "$dir" -maxdepth 1 -name "cg.$pid.*-*" | wc -l)
        [ "$n" -gt 0 ] && break
        sleep 0.1
    done
    [ "$n" -gt 0 ] || die "callgrind wrote no dump for $pid"
    sleep 0.2 # all threads' files
    for f in "$dir"/cg."$pid".*-*; do
        awk '/^totals:/ { print $2 }' "$f"
        mv "$f" "$win/"
    done | sort -g | awk -v u="$units" -v w="$(((t1 - t0) / 1000000))" '
        { t[NR] = $1; s += $1 }
        END { printf "%d %d %.1f %.0f\n", t[NR], s - t[NR], w / 1000, t[NR] / u }'
    if [ -n "${CG_KEEP:-}" ]; then
        mkdir -p "$CG_KEEP/$CG_NAME"
        cp -r "$win" "$CG_KEEP/$CG_NAME/"
    fi
}

SYSCALLS="read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait \
epoll_ctl accept4 close openat newfstatat newfstat statx sendfile64 setsockopt getsockname \
getpeername ioctl futex mmap munmap brk getrandom timerfd_settime connect socket"

sys_tool() {
    if [ -n "${SYS_TOOL:-}" ]; then
        echo "$SYS_TOOL"
    elif perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
        echo perf
    else
        echo strace
    fi
}

# sys_window PID UNITS CMD...: "<busiest thread's calls> <other threads' calls> <per unit>
# <top calls per unit: name=n ...>"
sys_window() {
    local pid=$1 units=$2 out=$BENCH_TMP/sys.$RANDOM tool ev s tpid
    shift 2
    tool=$(sys_tool)
    if [ "$tool" = perf ]; then
        ev=raw_syscalls:sys_enter
        for s in $SYSCALLS; do
            [ -d "/sys/kernel/tracing/events/syscalls/sys_enter_$s" ] ||
                [ -d "/sys/kernel/debug/tracing/events/syscalls/sys_enter_$s" ] &&
                ev="$ev,syscalls:sys_enter_$s"
        done
        perf stat -x, --per-thread -e "$ev" -p "$pid" -o "$out" 2>/dev/null &
    else
        strace -f -c -U name,calls -p "$pid" -o "$out" 2>/dev/null &
    fi
    tpid=$!
    sleep 0.5 # attached
    "$@" >/dev/null
    kill -INT "$tpid"
    wait "$tpid" || true
    if [ "$tool" = perf ]; then
        # lines: comm-tid,count,,event,...: the busiest thread by raw_syscalls
        awk -F, -v u="$units" '
            $4 == "raw_syscalls:sys_enter" && $2 ~ /^[0-9]+$/ { tot[$1] = $2; all += $2 }
            $4 ~ /^syscalls:sys_enter_/ && $2 ~ /^[0-9]+$/ {
                n = $4; sub(/.*sys_enter_/, "", n); c[$1, n] = $2; names[n] = 1 }
            END {
                for (t in tot) if (tot[t] > best) { best = tot[t]; bt = t }
                printf "%d %d %.2f", best, all - best, best / u
                for (n in names) if (c[bt, n] / u >= 0.01) printf " %s=%.2f", n, c[bt, n] / u
                print ""
            }' "$out"
    else
        # strace -c merges the threads: the total, then per call
        awk -v u="$units" '
            $2 ~ /^[0-9]+$/ && $1 != "total" { c[$1] = $2; s += $2 }
            END {
                printf "%d 0 %.2f", s, s / u
                for (n in c) if (c[n] / u >= 0.01) printf " %s=%.2f", n, c[n] / u
                print " (strace: all threads)"
            }' "$out"
    fi
}

# load_streams PORT C MODEL N: exactly N 20-chunk streams (bench/stream/load.js --streams),
# failing on any bad one; prints load.js's JSON line
load_streams() {
    local out
    out=$(taskset -c "$CLIENT_CPU" node "$BENCH_ROOT/bench/stream/load.js" --mode gw \
        --port "$1" --conc "$2" --model "$3" --streams "$4" --chunks 20 --duration 1 \
        --timeout 1800)
    grep -q '"failures":0,' <<<"$out" || die "stream run failed: $out"
    echo "$out"
}

NREQ_BIN=$BENCH_TMP/nreq
nreq_build() {
    [ -x "$NREQ_BIN" ] && return 0
    # built aside and renamed: two loads started at once must not exec a half-written file
    cc -O2 -o "$NREQ_BIN.$$" "$BENCH_ROOT/bench/lib/nreq.c" || die "cannot build bench/lib/nreq.c"
    mv -f "$NREQ_BIN.$$" "$NREQ_BIN"
}
nreq() {
    nreq_build
    taskset -c "$CLIENT_CPU" "$NREQ_BIN" "$@"
}

# children_of PID: the direct children (nginx: the worker of a master)
children_of() {
    cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
}

# stats: the median, min and max of numbers on stdin: "median M (min A, max B)"
stats() {
    sort -g | awk '{ a[NR] = $1 } END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%.0f (min %.0f, max %.0f, n %d)\n", m, a[1], a[NR], NR }'
}

# cg_breakdown FILE UNITS: where the instructions of one callgrind dump went, per unit, by
# object ("JIT" = LuaJIT's machine code, which lives in anonymous memory) and, when libluajit
# has symbols (a build with -g), by part of the VM: interpreter, GC, allocator, strings, tables,
# trace compiler, FFI. Prints "name=instr/unit ..." for parts of at least 1 %.
cg_breakdown() {
    local file=$1 units=$2
    callgrind_annotate --inclusive=no --threshold=100 "$file" 2>/dev/null | awk -v u="$units" '
        BEGIN { # parts of libluajit by function name (when it has symbols)
            P["lj:interp"] = "^lj_(BC|vm|ff|fff|cont|vmeta)_"
            P["lj:gc"] = "^(lj_gc|gc_|propagatemark|atomic)"
            P["lj:alloc"] = "^(lj_alloc|lj_mem|alloc_|tmalloc|sys_)"
            P["lj:string"] = "^(lj_str|lj_buf|str_|match|lj_strfmt|lj_strscan|hash_|classend|" \
                "singlematch|max_expand|push_captures|find_aux)"
            P["lj:table"] = "^(lj_tab|rehashtab|newtab|hashkey|countint|resizetab)"
            P["lj:tracecomp"] = "^(lj_record|rec_|lj_asm|asm_|lj_ir|lj_opt|lj_snap|lj_trace|" \
                "trace_|lj_crecord|crec_|lj_ffrecord|recff_|lj_mcode|emit_|ra_|fold_|split_|" \
                "lj_fold|sink_|narrow_|loop_)"
            P["lj:ffi"] = "^(lj_cconv|lj_ccall|lj_cdata|lj_carith|lj_ctype|lj_cparse|ccall_|cconv_)"
        }
        /file:function$/ { on = 1; next }
        on && /^$/ { exit_table = 1 }
        !on || exit_table || !/^ *[0-9,]+ / { next }
        {
            ir = $1; gsub(",", "", ir); ir += 0
            obj = ""; if (match($0, /\[[^]]*\]$/)) obj = substr($0, RSTART + 1, RLENGTH - 2)
            fn = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", fn); sub(/ \[[^]]*\]$/, "", fn)
            if (obj == "" && fn ~ /luajit/) obj = "libluajit" # inlined from a LuaJIT header
            sub(/^.*:/, "", fn)
            if (obj == "???") part = "JIT"
            else if (obj ~ /libluajit/) {
                part = (fn ~ /^0x/) ? "libluajit" : "lj:other"
                for (p in P) if (fn ~ P[p]) part = p
            }
            else if (obj ~ /libc\.so|ld-linux/ || (obj == "" && $0 ~ /\.\//)) part = "libc"
            else if (obj ~ /libuv/) part = "libuv"
            else if (obj ~ /pieces-gateway/) part = "gateway"
            else if (obj ~ /nginx$/) part = "nginx"
            else if (obj ~ /ngx_http_lua|ndk_http/) part = "ngx_lua"
            else { n = obj; sub(/.*\//, "", n); part = (n == "" ? "other" : n) }
            c[part] += ir; tot += ir
        }
        END {
            for (p in c) if (c[p] >= tot / 100) printf "%s=%.0f ", p, c[p] / u
            printf "total=%.0f ", tot / u
            print ""
        }' | tr ' ' '\n' | sort -t= -k2 -gr | grep . | tr '\n' ' '
    echo
}
