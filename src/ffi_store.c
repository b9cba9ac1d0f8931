/*
 * pieces-gateway: the shared store's FFI functions (called by lua/gw/store.lua).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ffi_store_send / gw_ffi_store_reply (a request's command and, once its phase is
 *           resumed, the answer) and gw_ffi_map_push / gw_ffi_map_watch (replicated maps).
 * Uses:     store.h (this thread's connection, the mirror), lua_host.h (suspend and wake a
 *           request; no Lua headers).
 * Never:    calls back into Lua from inside an FFI call (the wake happens from the loop, after
 *           the FFI call returned), or hands Lua a reply outside the resume it belongs to.
 */
#include <hiredis/hiredis.h>

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

int gw_ffi_store_send(void *req, int script, int argc, const char **argv, const size_t *lens)
{
    gw_store_t *s = gw_store_thread();
    if (!s)
        return GW_EAGAIN;
    if (argc < 1 || argc > 60)
        return GW_EINVAL;
    gw_store_cb cb = req ? on_answer : NULL;
    gw_store_op_t *op = script < 0 ? gw_store_send(s, argc, argv, lens, cb, req)
                                   : gw_store_eval(s, script, argc, argv, lens, cb, req);
    if (!op)
        return GW_EAGAIN;
    if (req)
        gw_vm_wait_on(req, op, cancel);
    return GW_OK;
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
