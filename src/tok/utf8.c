/*
 * pieces-gateway: UTF-8 repair (WHATWG) and byte buffers.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: tok_utf8_valid_prefix, tok_utf8_sanitize, tok_ascii_run and the tok_buf_* helpers.
 * Uses: libc only.
 * Invalid input rule: each maximal subpart of an ill-formed sequence becomes one U+FFFD, which
 * is what the WHATWG UTF-8 decoder (JS TextDecoder, Buffer#toString) does, so the engine sees
 * the same text as the JS references. The decoder is a streaming one: a sequence cut at the
 * end of a chunk is held back until the next chunk, giving the same result as one call.
 * Must never: hand invalid UTF-8 to PCRE2 (we match with PCRE2_NO_UTF_CHECK / JIT).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* --- buffers ------------------------------------------------------------------------------ */

int tok_buf_reserve(tok_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_append(tok_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (tok_buf_reserve(b, n) != 0)
        return -ENOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void tok_buf_consume(tok_buf_t *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void tok_buf_dispose(tok_buf_t *b)
{
    free(b->p);
    *b = (tok_buf_t){0};
}

/* --- WHATWG UTF-8 decoding ------------------------------------------------------------------ */

/* At s[0..n), n >= 1: > 0 the length of a valid sequence; < 0 an invalid maximal subpart of
 * -result bytes (one U+FFFD); 0 a valid but incomplete sequence cut by the end of the input. */
static int utf8_step(const uint8_t *s, size_t n)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return -1;
    }
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n)
            return 0;
        if (s[k] < lo || s[k] > hi)
            return -k;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

size_t tok_ascii_run(const uint8_t *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        if (v & 0x8080808080808080ull)
            break;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        i += tok_ascii_run(s + i, n - i);
        if (i >= n)
            break;
        int k = utf8_step(s + i, n - i);
        if (k <= 0)
            break;
        i += (size_t)k;
    }
    return i;
}

size_t tok_utf8_sanitize(tok_buf_t *out, const uint8_t *s, size_t n, int final)
{
    static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0;
    while (i < n) {
        size_t ok = tok_utf8_valid_prefix(s + i, n - i);
        if (tok_buf_append(out, s + i, ok) != 0)
            return (size_t)-1;
        i += ok;
        if (i >= n)
            break;
        int k = utf8_step(s + i, n - i);
        if (k == 0 && !final)
            break; /* wait for the rest of the sequence */
        if (tok_buf_append(out, fffd, 3) != 0)
            return (size_t)-1;
        i += k == 0 ? n - i : (size_t)-k;
    }
    return i;
}
