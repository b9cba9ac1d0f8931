/*
 * pieces-gateway: NFKC for the Claude encoding, and the points where NFKC may split a text.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: tok_nfkc_append, tok_nfkc_boundary. Uses: libutf8proc (utf8proc_map with
 * STABLE|COMPOSE|COMPAT = NFKC, character properties), pthreads (one-time table).
 * A "safe" character is one nothing before it can compose with or reorder across, so
 * NFKC(x + y) == NFKC(x) + NFKC(y) whenever y starts with one (what lets the stream normalise
 * text before the last safe character and keep only the rest). A safe character that is also
 * its own compatibility decomposition is "inert": alone between safe characters it is already
 * normalised, so runs of such units are copied and only the rest goes through utf8proc.
 * Must never: split a text anywhere but before a safe character.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "tok_internal.h"

enum { SAFE = 1, INERT = 2 };

/* Safe: the first character of c's compatibility decomposition is a starter (ccc 0) that is
 * not a combining mark (every ccc-0 second element of a canonical composition is category M)
 * and not a conjoining Hangul vowel or trailing consonant (algorithmic composition). */
static int classify(utf8proc_int32_t c)
{
    if (c < 0x80)
        return SAFE | INERT;
    if ((c >= 0xD800 && c <= 0xDFFF) || utf8proc_get_property(c)->combining_class != 0)
        return 0;
    utf8proc_int32_t d[32];
    int last = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char(c, d, 32, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT,
                                                 &last);
    if (k < 1 || k > 32)
        return 0;
    utf8proc_int32_t f = d[0];
    if ((f >= 0x1160 && f <= 0x11FF) || (f >= 0xD7B0 && f <= 0xD7FF))
        return 0;
    const utf8proc_property_t *pr = utf8proc_get_property(f);
    if (pr->combining_class != 0 || pr->category == UTF8PROC_CATEGORY_MN ||
        pr->category == UTF8PROC_CATEGORY_MC || pr->category == UTF8PROC_CATEGORY_ME)
        return 0;
    return SAFE | (k == 1 && f == c ? INERT : 0);
}

static uint8_t bmp_class[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void bmp_init(void)
{
    for (utf8proc_int32_t c = 0; c < 0x10000; c++)
        bmp_class[c] = (uint8_t)classify(c);
}

static inline int class_of(utf8proc_int32_t c)
{
    return c < 0x10000 ? bmp_class[c] : classify(c);
}

/* Decodes the valid UTF-8 character at s (n >= 1 bytes left); returns its length. */
static inline size_t decode(const uint8_t *s, utf8proc_int32_t *c)
{
    if (s[0] < 0x80)
        return (void)(*c = s[0]), 1;
    if (s[0] < 0xE0)
        return (void)(*c = (s[0] & 0x1F) << 6 | (s[1] & 0x3F)), 2;
    if (s[0] < 0xF0)
        return (void)(*c = (s[0] & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F)), 3;
    *c = (s[0] & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

static int map_append(tok_buf_t *out, const uint8_t *s, size_t n, int inert)
{
    if (inert || n == 0)
        return tok_buf_append(out, s, n);
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t len = utf8proc_map(s, (utf8proc_ssize_t)n, &dst,
                                        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (len < 0)
        return len == UTF8PROC_ERROR_NOMEM ? -ENOMEM : -EINVAL;
    int rc = tok_buf_append(out, dst, (size_t)len);
    free(dst);
    return rc;
}

/* Length of the unit at s[pos..n): its first character and the unsafe ones after it. *inert
 * tells whether the unit is a single inert character (already normalised). */
static size_t unit_len(const uint8_t *s, size_t n, size_t pos, int *inert)
{
    utf8proc_int32_t c;
    size_t end = pos + decode(s + pos, &c);
    int first = class_of(c), alone = 1;
    while (end < n) {
        size_t l = decode(s + end, &c);
        if (class_of(c) & SAFE)
            break;
        end += l;
        alone = 0;
    }
    *inert = alone && (first & INERT);
    return end - pos;
}

/* The text is cut into units, each a safe character plus the unsafe ones after it (the first
 * unit may start unsafe). Runs of inert units are copied; runs of the others are mapped. */
int tok_nfkc_append(tok_buf_t *out, const uint8_t *s, size_t n)
{
    if (tok_ascii_run(s, n) == n)
        return tok_buf_append(out, s, n); /* ASCII is its own NFKC */
    pthread_once(&bmp_once, bmp_init);
    size_t pos = 0, run = 0;
    int run_inert = 1;
    while (pos < n) {
        int inert;
        size_t len = unit_len(s, n, pos, &inert);
        if (inert != run_inert && pos > run) {
            int rc = map_append(out, s + run, pos - run, run_inert);
            if (rc != 0)
                return rc;
            run = pos;
        }
        run_inert = inert;
        pos += len;
    }
    return map_append(out, s + run, n - run, run_inert);
}

size_t tok_nfkc_boundary(const uint8_t *s, size_t n, size_t from)
{
    pthread_once(&bmp_once, bmp_init);
    size_t i = n;
    while (i > from && i > 0) {
        size_t start = i - 1;
        while (start > 0 && (s[start] & 0xC0) == 0x80)
            start--;
        utf8proc_int32_t c;
        decode(s + start, &c);
        if (start == 0)
            return 0;
        if (start >= from && (class_of(c) & SAFE))
            return start;
        i = start;
    }
    return 0;
}
