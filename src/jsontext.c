/*
 * pieces-gateway: the text rule for JSON bodies (valid UTF-8, no lone surrogate escapes).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_json_text_check (the fast whole-body test of lua/gw/json.lua; the Lua side
 * names the field only when this finds something). Uses: buf (gw_utf8_seq).
 * Never: allocates, reads past n.
 */
#include "jsontext.h"

#include "buf.h"
#include "gw.h"

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The code unit of the \uXXXX at s[0..n), or -1 when there is none. */
static long escaped_unit(const unsigned char *s, size_t n)
{
    if (n < 6 || s[0] != '\\' || s[1] != 'u')
        return -1;
    long u = 0;
    for (int k = 2; k < 6; k++) {
        int d = hex_digit(s[k]);
        if (d < 0)
            return -1;
        u = u * 16 + d;
    }
    return u;
}

/* Bytes covered by the escape at s[0] == '\\': 12 for a surrogate pair, 6 for another \uXXXX, 2
 * for a one-character escape (also a malformed \u: the decoder rejects it), 1 when the next byte
 * is missing or not ASCII (the UTF-8 check then sees it); 0 for a lone surrogate. */
static size_t escape_len(const unsigned char *s, size_t n)
{
    if (n < 2 || s[1] >= 0x80)
        return 1;
    long u = escaped_unit(s, n);
    if (u < 0)
        return 2;
    if (u < 0xD800 || u > 0xDFFF)
        return 6;
    if (u >= 0xDC00)
        return 0;
    long lo = escaped_unit(s + 6, n - 6);
    return lo >= 0xDC00 && lo <= 0xDFFF ? 12 : 0;
}

int gw_json_text_check(const char *text, size_t n, size_t *at)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t step;
        if (c < 0x80 && c != '\\')
            step = 1;
        else if (c == '\\')
            step = escape_len(s + i, n - i);
        else
            step = gw_utf8_seq(s + i, n - i);
        if (step == 0) {
            if (at)
                *at = i;
            return GW_EINVAL;
        }
        i += step;
    }
    return GW_OK;
}
