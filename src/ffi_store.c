/*
 * pieces-gateway: the shared store's FFI functions (called by lua/gw/store.lua).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ffi_store_send, gw_ffi_store_window / gw_ffi_store_reply(_ints) (a request's command and, once its phase is
 *           resumed, the answer) and gw_ffi_map_push / gw_ffi_map_watch (replicated maps).
 * Uses:     store.h (this thread's connection, the mirror), lua_host.h (suspend and wake a
 *           request; no Lua headers).
 * Never:    calls back into Lua from inside an FFI call (the wake happens from the loop, after
 *           the FFI call returned), or hands Lua a reply outside the resume it belongs to.
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>

#include "gw.h"
#include "gw_ffi.h"
#include "http.h"
#include "lua_host.h"
#include "store.h"

/* The answer being delivered to the phase gw_vm_wake is resuming (this thread only). */
static __thread const redisReply *cur_reply;
static __thread int cur_status = GW_STORE_DOWN;

static void on_answer(int status, struct redisReply *reply, void *ud)
{
    gw_req_t *req = ud;
    const redisReply *saved = cur_reply;
    int saved_status = cur_status;
    cur_reply = reply;
    cur_status = status;
    gw_vm_wake(req);
    cur_reply = saved;
    cur_status = saved_status;
}

static void cancel(void *op) { gw_store_cancel(op); }

/* After a send for req: GW_EAGAIN (nothing sent), or GW_OK and req waits for op. */
static int sent(void *req, gw_store_op_t *op)
{
    if (!op)
        return GW_EAGAIN;
    if (req)
        gw_vm_wait_on(req, op, cancel);
    return GW_OK;
}

int gw_ffi_store_send(void *req, int script, int argc, const char **argv, const size_t *lens)
{
    gw_store_t *s = gw_store_thread();
    if (!s)
        return GW_EAGAIN;
    if (argc < 1 || argc > 60)
        return GW_EINVAL;
    gw_store_cb cb = req ? on_answer : NULL;
    return sent(req, script < 0 ? gw_store_send(s, argc, argv, lens, cb, req)
                                : gw_store_eval(s, script, argc, argv, lens, cb, req));
}

/* ---- the rate limiter's command, formatted from numbers ---- */

#define WIN_MAX 8
#define KEY_PREFIX "gw:"

/* A number as Lua's %.17g would print it, integers without printf. */
static void put_num(gw_store_t *s, double v)
{
    if (v == floor(v) && fabs(v) < 9e15) {
        gw_store_cmd_int(s, (long long)v);
    } else {
        char t[32];
        int n = snprintf(t, sizeof(t), "%.17g", v);
        gw_store_cmd_arg(s, t, (size_t)n);
    }
}

/* weight = m * 2^e exactly (m has at most 53 bits, in hex: no divisions); not finite: "nan" (the script fails, the
 * caller falls back as for any error) */
static void put_weight(gw_store_t *s, double w)
{
    int e = 0;
    if (!isfinite(w)) {
        gw_store_cmd_arg(s, "nan", 3);
    } else {
        double f = frexp(w, &e);
        gw_store_cmd_hex(s, (long long)ldexp(f, 53));
        e -= 53;
    }
    gw_store_cmd_int(s, e);
}

int gw_ffi_store_window(void *req, int flags, int n, const char **keys, const size_t *klens,
                        const double *nums)
{
    gw_store_t *s = gw_store_thread();
    if (!s)
        return GW_EAGAIN;
    if (n < 1 || n > WIN_MAX)
        return GW_EINVAL;
    if (gw_store_cmd_begin(s, GW_SCRIPT_WINDOW | (flags & GW_SCRIPT_EVAL), 1 + 6 * n) != GW_OK)
        return GW_EAGAIN;
    gw_store_cmd_int(s, 2 * n);
    for (int i = 0; i < 2 * n; i++)
        gw_store_cmd_arg2(s, KEY_PREFIX, sizeof(KEY_PREFIX) - 1, keys[i], klens[i]);
    for (int i = 0; i < n; i++) {
        const double *r = nums + 3 * i;
        put_weight(s, r[0]);
        put_num(s, r[1]);
        gw_store_cmd_int(s, r[2] <= 0 || r[2] >= 1e9 ? 0 : (long long)ceil(r[2] * 1000));
    }
    return sent(req, gw_store_cmd_send(s, req ? on_answer : NULL, req));
}

static int describe(const redisReply *r, const char **p, size_t *len, double *num)
{
    switch (r->type) {
    case REDIS_REPLY_NIL: return GW_FFI_REPLY_NIL;
    case REDIS_REPLY_INTEGER: *num = (double)r->integer; return GW_FFI_REPLY_INTEGER;
    case REDIS_REPLY_STRING: *p = r->str; *len = r->len; return GW_FFI_REPLY_STRING;
    case REDIS_REPLY_ARRAY: *num = (double)r->elements; return GW_FFI_REPLY_ARRAY;
    case REDIS_REPLY_ERROR: *p = r->str; *len = r->len; return GW_FFI_REPLY_ERROR;
    case REDIS_REPLY_STATUS: *p = r->str; *len = r->len; return GW_FFI_REPLY_STATUS;
    default: return GW_FFI_REPLY_NONE;
    }
}

int gw_ffi_store_reply(int i, const char **p, size_t *len, double *num)
{
    const redisReply *r = cur_reply;
    if (!r)
        return cur_status == GW_STORE_TIMEOUT ? GW_FFI_REPLY_TIMEOUT : GW_FFI_REPLY_DOWN;
    if (i > 0) {
        if (r->type != REDIS_REPLY_ARRAY || (size_t)i > r->elements)
            return GW_FFI_REPLY_NONE;
        r = r->element[i - 1];
    }
    return describe(r, p, len, num);
}

int gw_ffi_store_reply_ints(double *out, int max)
{
    const redisReply *r = cur_reply;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return -1;
    int k = 0;
    while (k < max && (size_t)k < r->elements && r->element[k]->type == REDIS_REPLY_INTEGER) {
        out[k] = (double)r->element[k]->integer;
        k++;
    }
    return k;
}

int gw_ffi_map_push(int add, const char *map, size_t mlen, const char *field, size_t flen,
                    const char *value, size_t vlen)
{
    return gw_mirror_push(add, map, mlen, field, flen, add ? value : "", add ? vlen : 0);
}

int gw_ffi_map_watch(const char *map, size_t mlen)
{
    gw_mirror_watch(map, mlen);
    return GW_OK;
}
