/*
 * pieces-gateway fuzz driver: the text rule of JSON bodies (src/jsontext.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Oracle: a second, plain reading of the rule, whose UTF-8 half is the tokenizer's independent
 * decoder (tok_utf8_valid_prefix, src/tok/utf8.c): the first offending offset must be the same,
 * a clean text must be valid UTF-8 as a whole, and a text without backslashes is clean exactly
 * when it is valid UTF-8. The text is also checked at every length, so a sequence or escape
 * cut by the end is judged on the bytes that are there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "jsontext.h"
#include "tok/tok_internal.h"

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "json_text: %s failed at line %d\n", #c, __LINE__);                    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int hex4(const uint8_t *s, size_t n, unsigned *u)
{
    if (n < 4)
        return 0;
    char tmp[5] = {0};
    for (int k = 0; k < 4; k++) {
        if (!strchr("0123456789abcdefABCDEF", s[k]) || s[k] == 0)
            return 0;
        tmp[k] = (char)s[k];
    }
    *u = (unsigned)strtoul(tmp, NULL, 16);
    return 1;
}

/* The offset of the first offence, or n when the text is clean. */
static size_t reference(const uint8_t *s, size_t n)
{
    size_t bad_utf8 = tok_utf8_valid_prefix(s, n);
    size_t i = 0;
    while (i < n && i < bad_utf8) {
        if (s[i] != '\\') {
            i++;
            continue;
        }
        unsigned u, lo;
        if (i + 1 >= n || s[i + 1] >= 0x80) {
            i++;
        } else if (s[i + 1] != 'u' || !hex4(s + i + 2, n - i - 2, &u)) {
            i += 2;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            return i;
        } else if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                !hex4(s + i + 8, n - i - 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return i;
            i += 12;
        } else {
            i += 6;
        }
    }
    /* an escape may straddle the first invalid byte only if that byte is ASCII: it is not */
    return bad_utf8 < n ? bad_utf8 : n;
}

static void check(const uint8_t *s, size_t n)
{
    size_t at = (size_t)-1;
    int rc = gw_json_text_check((const char *)s, n, &at);
    size_t want = reference(s, n);
    REQUIRE(rc == (want == n ? GW_OK : GW_EINVAL));
    if (rc == GW_OK) {
        REQUIRE(at == (size_t)-1);
        REQUIRE(tok_utf8_valid_prefix(s, n) == n);
    } else {
        if (at != want)
            fprintf(stderr, "json_text: n=%zu at=%zu want=%zu\n", n, at, want);
        REQUIRE(at == want);
        REQUIRE(at < n);
    }
    if (!memchr(s, '\\', n))
        REQUIRE((rc == GW_OK) == (tok_utf8_valid_prefix(s, n) == n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    for (size_t cut = size > 16 ? size - 16 : 0; cut < size; cut++)
        check(data, cut);
    return 0;
}
