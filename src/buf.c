/*
 * pieces-gateway: growable byte buffer.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_buf_*. Uses: libc. Never: frees memory it does not own.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freelist.h"
#include "gw.h"

void gw_buf_init(gw_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gw_buf_dispose(gw_buf_t *b)
{
    free(b->data);
    gw_buf_init(b);
}

void gw_buf_reset(gw_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void gw_buf_reserve(gw_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = gw_realloc(b->data, cap);
    b->cap = cap;
}

void gw_buf_append(gw_buf_t *b, const void *p, size_t n)
{
    gw_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void gw_buf_puts(gw_buf_t *b, const char *s) { gw_buf_append(b, s, strlen(s)); }

void gw_buf_putc(gw_buf_t *b, char c) { gw_buf_append(b, &c, 1); }

void gw_buf_vprintf(gw_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    gw_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void gw_buf_printf(gw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void gw_buf_put_uint(gw_buf_t *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    gw_buf_append(b, tmp + i, sizeof(tmp) - i);
}

size_t gw_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

void gw_buf_json_str(gw_buf_t *b, const char *s, size_t n)
{
    gw_buf_putc(b, '"');
    gw_buf_json_escape(b, s ? s : "", s ? n : 0);
    gw_buf_putc(b, '"');
}

void gw_buf_json_escape(gw_buf_t *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    gw_buf_reserve(b, n + 2);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            gw_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t l = gw_utf8_seq(s + i, n - i);
            if (l == 0) {
                gw_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                gw_buf_append(b, s + i, l);
                i += l;
            }
            continue;
        }
        switch (c) {
        case '"': gw_buf_append(b, "\\\"", 2); break;
        case '\\': gw_buf_append(b, "\\\\", 2); break;
        case '\n': gw_buf_append(b, "\\n", 2); break;
        case '\r': gw_buf_append(b, "\\r", 2); break;
        case '\t': gw_buf_append(b, "\\t", 2); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            gw_buf_append(b, e, 6);
        }
        }
        i++;
    }
}

void gw_buf_consume(gw_buf_t *b, size_t n)
{
    if (n >= b->len) {
        gw_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *gw_buf_steal(gw_buf_t *b, size_t *len)
{
    if (!b->data)
        gw_buf_reserve(b, 0);
    char *p = b->data;
    if (len)
        *len = b->len;
    gw_buf_init(b);
    return p;
}

/* ---- spare storage per thread ---------------------------------------------------------- */

static __thread struct {
    char *data;
    size_t cap;
} spare[GW_BUF_CACHE_N];
static __thread size_t n_spare;

void gw_buf_recycle(gw_buf_t *b)
{
    if (!b->data || b->cap > GW_BUF_CACHE_MAX || n_spare == GW_BUF_CACHE_N) {
        gw_buf_dispose(b);
        return;
    }
    spare[n_spare].data = b->data;
    spare[n_spare].cap = b->cap;
    n_spare++;
    GW_FL_POISON(b->data, b->cap);
    gw_buf_init(b);
}

void gw_buf_prime(gw_buf_t *b)
{
    if (b->data || n_spare == 0)
        return;
    n_spare--;
    b->data = spare[n_spare].data;
    b->cap = spare[n_spare].cap;
    GW_FL_UNPOISON(b->data, b->cap);
    b->len = 0;
    b->data[0] = '\0';
}

void gw_buf_cache_drain(void)
{
    while (n_spare) {
        n_spare--;
        GW_FL_UNPOISON(spare[n_spare].data, spare[n_spare].cap);
        free(spare[n_spare].data);
    }
}
