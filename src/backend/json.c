/*
 * pieces-gateway: a small pull scanner for JSON (see json.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_json_*. Uses: gw_buf for decoded strings.
 * Must never: read past p + n, recurse deeper than GW_JSON_MAX_DEPTH, accept what RFC 8259
 *   rejects (raw control characters in strings, leading zeros, trailing commas, bad escapes).
 */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

void gw_json_init(gw_json_t *j, const char *p, size_t n)
{
    j->p = j->start = p;
    j->end = p + n;
    j->depth = 0;
    j->first = 0;
}

static inline void ws(gw_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

size_t gw_json_offset(gw_json_t *j)
{
    ws(j);
    return (size_t)(j->p - j->start);
}

/* gw_json_peek, inlined in this file's own calls (one per value and key of a document). */
static inline gw_json_type_t peek(gw_json_t *j)
{
    ws(j);
    if (j->p >= j->end)
        return GW_JSON_NONE;
    switch (*j->p) {
    case '{': return GW_JSON_OBJECT;
    case '[': return GW_JSON_ARRAY;
    case '"': return GW_JSON_STRING;
    case 't': return GW_JSON_TRUE;
    case 'f': return GW_JSON_FALSE;
    case 'n': return GW_JSON_NULL;
    default:
        return (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) ? GW_JSON_NUMBER : GW_JSON_NONE;
    }
}

gw_json_type_t gw_json_peek(gw_json_t *j)
{
    return peek(j);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Bytes that end the plain run of a string: the quote, the backslash, control characters. */
static const unsigned char STOP[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

/* 8 bytes at a time (SWAR): the high bit of each byte that is a quote, a backslash or a
 * control byte; bytes above the first such byte may be flagged wrongly (borrows), so only the
 * lowest flag is exact, which is the one used. */
static inline uint64_t word_stops(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t w;
    memcpy(&w, s, 8);
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t zero = ((q - ones) & ~q) | ((b - ones) & ~b), ctl = (w - ones * 0x20) & ~w;
    return (zero | ctl) & highs;
}

/* The first stop byte in [s, e), or e. Short strings (keys, most values) end inside the first
 * word: its mask gives the position at once, where a byte loop took ~5 instructions a byte. */
static inline const unsigned char *find_stop(const unsigned char *s, const unsigned char *e)
{
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (e - s >= 8) {
        uint64_t m = word_stops(s);
        if (m)
            return s + (__builtin_ctzll(m) >> 3);
        s += 8;
    }
#else
    while (e - s >= 8 && !word_stops(s))
        s += 8;
#endif
    while (s < e && !STOP[*s])
        s++;
    return s;
}

/* Scans a string starting at the opening quote; the cursor ends after the closing quote. */
int gw_json_string_raw(gw_json_t *j, gw_json_str_t *out)
{
    if (peek(j) != GW_JSON_STRING)
        return -EBADMSG;
    const unsigned char *s = (const unsigned char *)++j->p, *e = (const unsigned char *)j->end;
    int escaped = 0;
    while (s < e) {
        s = find_stop(s, e);
        if (s >= e)
            break;
        unsigned char c = *s;
        if (c == '"') {
            out->p = j->p;
            out->len = (size_t)((const char *)s - j->p);
            out->escaped = escaped;
            j->p = (const char *)s + 1;
            return 0;
        }
        if (c < 0x20)
            return -EBADMSG;
        escaped = 1;
        if (++s >= e)
            return -EBADMSG;
        if (*s == 'u') {
            if (e - s < 5 || hexval((char)s[1]) < 0 || hexval((char)s[2]) < 0 ||
                hexval((char)s[3]) < 0 || hexval((char)s[4]) < 0)
                return -EBADMSG;
            s += 5;
        } else if (*s && strchr("\"\\/bfnrt", *s)) {
            s++;
        } else {
            return -EBADMSG;
        }
    }
    return -EBADMSG;
}

static unsigned hex4(const char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

static size_t put_utf8(char *u, unsigned cp)
{
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The input was validated by gw_json_string_raw: every escape is complete. */
long gw_json_unescape_into(const gw_json_str_t *s, char *out, int strict)
{
    const char *p = s->p, *e = s->p + s->len;
    char *o = out;
    while (p < e) {
        const char *bs = memchr(p, '\\', (size_t)(e - p));
        size_t run = (size_t)((bs ? bs : e) - p);
        memcpy(o, p, run);
        o += run;
        if (!bs)
            break;
        p = bs + 1;
        char c = *p++;
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp = hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = hex4(p + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) {
                if (strict)
                    return -EBADMSG;
                cp = 0xFFFD;
            }
            o += put_utf8(o, cp);
            break;
        }
        default: *o++ = c; break; /* " \ / */
        }
    }
    return (long)(o - out);
}

int gw_json_unescape(const gw_json_str_t *s, gw_buf_t *out)
{
    if (!s->escaped) {
        gw_buf_append(out, s->p, s->len);
        return 0;
    }
    gw_buf_reserve(out, s->len); /* an escaped string is never empty */
    out->len += (size_t)gw_json_unescape_into(s, out->data + out->len, 0);
    out->data[out->len] = '\0'; /* gw_buf_t's terminator */
    return 0;
}

int gw_json_string(gw_json_t *j, gw_buf_t *out)
{
    gw_json_str_t s;
    int rc = gw_json_string_raw(j, &s);
    return rc != 0 ? rc : gw_json_unescape(&s, out);
}

int gw_json_key_is(const gw_json_str_t *key, const char *name)
{
    return gw_json_key_eq(key, name, strlen(name));
}

int gw_json_key_eq_escaped(const gw_json_str_t *key, const char *name, size_t n)
{
    if (key->len > 6 * n)
        return 0;
    gw_buf_t b;
    gw_buf_init(&b);
    gw_json_unescape(key, &b);
    int eq = b.len == n && memcmp(b.data, name, n) == 0;
    gw_buf_dispose(&b);
    return eq;
}

static int digits(gw_json_t *j)
{
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s ? 0 : -EBADMSG;
}

/* Validates a number; *is_int says whether it has neither fraction nor exponent. */
static int number(gw_json_t *j, int *is_int)
{
    *is_int = 1;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (digits(j) != 0)
        return -EBADMSG;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        *is_int = 0;
        if (digits(j) != 0)
            return -EBADMSG;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        *is_int = 0;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (digits(j) != 0)
            return -EBADMSG;
    }
    return 0;
}

int gw_json_int(gw_json_t *j, long long *out)
{
    if (peek(j) != GW_JSON_NUMBER)
        return -EBADMSG;
    const char *s = j->p;
    int is_int;
    if (number(j, &is_int) != 0 || !is_int)
        return -EBADMSG;
    int neg = *s == '-';
    unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    for (const char *p = s + neg; p < j->p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (lim - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

static int literal(gw_json_t *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return -EBADMSG;
    j->p += n;
    return 0;
}

int gw_json_bool(gw_json_t *j, int *out)
{
    gw_json_type_t t = peek(j);
    if (t != GW_JSON_TRUE && t != GW_JSON_FALSE)
        return -EBADMSG;
    *out = t == GW_JSON_TRUE;
    return literal(j, *out ? "true" : "false");
}

int gw_json_null(gw_json_t *j)
{
    if (peek(j) != GW_JSON_NULL)
        return 0;
    return literal(j, "null") == 0 ? 1 : -EBADMSG;
}

int gw_json_object_begin(gw_json_t *j)
{
    if (peek(j) != GW_JSON_OBJECT || j->depth >= GW_JSON_MAX_DEPTH)
        return -EBADMSG;
    j->p++;
    j->depth++;
    j->first = 1;
    return 0;
}

int gw_json_array_begin(gw_json_t *j)
{
    if (peek(j) != GW_JSON_ARRAY || j->depth >= GW_JSON_MAX_DEPTH)
        return -EBADMSG;
    j->p++;
    j->depth++;
    j->first = 1;
    return 0;
}

/* After a member or element: ',' continues (1), the closing byte ends (0). */
static int separator(gw_json_t *j, char close)
{
    ws(j);
    if (j->p >= j->end)
        return -EBADMSG;
    if (*j->p == close) {
        j->p++;
        j->depth--;
        j->first = 0;
        return 0;
    }
    if (j->first) {
        j->first = 0;
        return 1;
    }
    if (*j->p != ',')
        return -EBADMSG;
    j->p++;
    return 1;
}

int gw_json_object_next(gw_json_t *j, gw_json_str_t *key)
{
    int rc = separator(j, '}');
    if (rc <= 0)
        return rc;
    if (gw_json_string_raw(j, key) != 0)
        return -EBADMSG;
    ws(j);
    if (j->p >= j->end || *j->p != ':')
        return -EBADMSG;
    j->p++;
    return 1;
}

int gw_json_array_next(gw_json_t *j)
{
    return separator(j, ']');
}

int gw_json_skip(gw_json_t *j)
{
    gw_json_str_t s;
    int is_int, rc;
    switch (peek(j)) {
    case GW_JSON_STRING: return gw_json_string_raw(j, &s);
    case GW_JSON_NUMBER: return number(j, &is_int);
    case GW_JSON_TRUE: return literal(j, "true");
    case GW_JSON_FALSE: return literal(j, "false");
    case GW_JSON_NULL: return literal(j, "null");
    case GW_JSON_OBJECT:
        if ((rc = gw_json_object_begin(j)) != 0)
            return rc;
        while ((rc = gw_json_object_next(j, &s)) > 0)
            if ((rc = gw_json_skip(j)) != 0)
                return rc;
        return rc;
    case GW_JSON_ARRAY:
        if ((rc = gw_json_array_begin(j)) != 0)
            return rc;
        while ((rc = gw_json_array_next(j)) > 0)
            if ((rc = gw_json_skip(j)) != 0)
                return rc;
        return rc;
    default: return -EBADMSG;
    }
}

int gw_json_end(gw_json_t *j)
{
    ws(j);
    return j->p == j->end ? 0 : -EBADMSG;
}
