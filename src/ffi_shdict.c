/*
 * pieces-gateway: the shared dictionary's FFI functions (called by lua/gw/shared.lua).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ffi_shdict_* (declared in gw_ffi.h), thin adapters from flat FFI arguments to
 *           gw_shdict_* on the process-wide dictionary (gw_shdict_global()).
 * Uses:     src/shdict.h only.
 * Never:    includes Lua headers, calls back into Lua, allocates, or keeps a pointer to a
 *           caller's buffer after returning. Every function is safe from any worker thread.
 */
#include "gw.h"
#include "gw_ffi.h"
#include "shdict.h"

#include <string.h>

/* The dictionary's numbers are the seam's (src/gw_ffi.h). */
_Static_assert(GW_SAME(GW_SHDICT_NOT_FOUND, GW_FFI_ENOENT) &&
                   GW_SAME(GW_SHDICT_EXISTS, GW_FFI_EEXIST) &&
                   GW_SAME(GW_SHDICT_NO_MEMORY, GW_FFI_ENOMEM) &&
                   GW_SAME(GW_SHDICT_NOT_NUMBER, GW_FFI_EDOM) &&
                   GW_SAME(GW_SHDICT_TOO_SMALL, GW_FFI_ENOBUFS) &&
                   GW_SAME(GW_SHDICT_BAD_KEY, GW_FFI_EKEYREJECTED) &&
                   GW_SAME(GW_SHDICT_INVALID, GW_FFI_EINVAL) &&
                   GW_SAME(GW_SHDICT_NO_DICT, GW_FFI_ENODEV) &&
                   GW_SAME(GW_SHDICT_TNUMBER, GW_FFI_TNUMBER) &&
                   GW_SAME(GW_SHDICT_TSTRING, GW_FFI_TSTRING),
               "shdict.h statuses and types vs gw_ffi.h");

int gw_ffi_shdict_get(const char *key, size_t key_len, int *type, double *num, char *buf,
                      size_t *len)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d)
        return GW_SHDICT_NO_DICT;
    gw_shdict_val_t v;
    int rc = gw_shdict_get(d, key, key_len, &v, buf, len);
    if (rc == 0) {
        *type = v.type;
        *num = v.num;
    }
    return rc;
}

static int store(const char *key, size_t key_len, int type, double num, const char *str,
                 size_t str_len, double ttl, int add)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d)
        return GW_SHDICT_NO_DICT;
    gw_shdict_val_t v = {type, num, str, str_len};
    return add ? gw_shdict_add(d, key, key_len, &v, ttl) : gw_shdict_set(d, key, key_len, &v, ttl);
}

int gw_ffi_shdict_set(const char *key, size_t key_len, int type, double num, const char *str,
                      size_t str_len, double ttl)
{
    return store(key, key_len, type, num, str, str_len, ttl, 0);
}

int gw_ffi_shdict_add(const char *key, size_t key_len, int type, double num, const char *str,
                      size_t str_len, double ttl)
{
    return store(key, key_len, type, num, str, str_len, ttl, 1);
}

int gw_ffi_shdict_incr(const char *key, size_t key_len, double delta, int has_init,
                       double init, double ttl, double *out)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d)
        return GW_SHDICT_NO_DICT;
    return gw_shdict_incr(d, key, key_len, delta, has_init, init, ttl, out);
}

int gw_ffi_shdict_delete(const char *key, size_t key_len)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d)
        return GW_SHDICT_NO_DICT;
    return gw_shdict_delete(d, key, key_len);
}

/* keys: pack "len16le key" records into the caller's buffer; keep counting past its end so the
 * caller learns how much to allocate for the retry. */
typedef struct {
    unsigned char *buf;
    size_t cap;
    size_t need;
} key_sink;

static void on_key(const char *key, size_t klen, void *ud)
{
    key_sink *k = ud;
    if (k->need + 2 + klen <= k->cap) {
        k->buf[k->need] = (unsigned char)(klen & 0xff);
        k->buf[k->need + 1] = (unsigned char)(klen >> 8);
        memcpy(k->buf + k->need + 2, key, klen);
    }
    k->need += 2 + klen;
}

int gw_ffi_shdict_keys(const char *prefix, size_t prefix_len, int max, unsigned char *buf,
                       size_t *len)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d)
        return GW_SHDICT_NO_DICT;
    key_sink k = {buf, *len, 0};
    size_t n = gw_shdict_keys(d, prefix, prefix_len, max > 0 ? (size_t)max : 0, on_key, &k);
    *len = k.need;
    if (k.need > k.cap)
        return GW_SHDICT_TOO_SMALL;
    return n > (size_t)0x7fffffff ? 0x7fffffff : (int)n;
}

int gw_ffi_shdict_window_incr(int n, const char **keys, const size_t *klens, const double *args,
                              double *counts)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d)
        return GW_SHDICT_NO_DICT;
    if (n <= 0 || n > GW_SHDICT_WINDOW_MAX)
        return GW_SHDICT_INVALID;
    gw_shdict_window_t w[GW_SHDICT_WINDOW_MAX];
    for (int i = 0; i < n; i++)
        w[i] = (gw_shdict_window_t){keys[2 * i], klens[2 * i], keys[2 * i + 1], klens[2 * i + 1],
                                    args[3 * i], args[3 * i + 1], args[3 * i + 2], 0, 0};
    int rc = gw_shdict_window_incr(d, w, (size_t)n);
    for (int i = 0; rc >= 0 && i < n; i++) {
        counts[2 * i] = w[i].cur_count;
        counts[2 * i + 1] = w[i].prev_count;
    }
    return rc;
}
