/*
 * pieces-gateway: unit tests of the text rule of JSON bodies (src/jsontext.c): the vectors
 * shared with the Lua side (spec/fixtures/json_text.txt), the FFI entry point, the input bounds,
 * and the encoding of every code point.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gw.h"
#include "gw_ffi.h"
#include "gw_test.h"
#include "jsontext.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes a fixture body (%XX bytes, ^ the expected offset) into out; *mark = -1 if no ^. */
static size_t decode_body(const char *in, char *out, long *mark)
{
    size_t n = 0;
    *mark = -1;
    for (const char *p = in; *p && *p != '\n'; p++) {
        if (*p == '^') {
            *mark = (long)n;
        } else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            out[n++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    return n;
}

TEST(shared_vectors)
{
    FILE *f = fopen("spec/fixtures/json_text.txt", "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[4096], body[4096];
    int n = 0, dirty = 0;
    while (fgets(line, sizeof(line), f)) {
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab)
            continue;
        long mark;
        size_t len = decode_body(tab + 1, body, &mark);
        size_t at = (size_t)-1;
        int rc = gw_json_text_check(body, len, &at);
        if ((mark < 0) != (rc == 0) || (mark >= 0 && (long)at != mark))
            fprintf(stderr, "vector %s: rc %d at %ld, want %ld\n", line, rc, (long)at, mark);
        CHECK_EQ_INT(rc, mark < 0 ? GW_OK : GW_EINVAL);
        if (mark >= 0) {
            CHECK_EQ_INT(at, mark);
            dirty++;
        }
        size_t at2 = 0;
        CHECK_EQ_INT(gw_ffi_json_text_check(body, len, &at2), rc);
        CHECK(rc == 0 || at2 == at);
        CHECK_EQ_INT(gw_json_text_check(body, len, NULL), rc); /* at is optional */
        n++;
    }
    fclose(f);
    CHECK(n >= 40);
    CHECK(dirty >= 30);
}

TEST(bounds)
{
    size_t at = 99;
    CHECK_EQ_INT(gw_json_text_check("", 0, &at), GW_OK);
    CHECK_EQ_INT(at, 99);
    /* only n bytes are read: a sequence or escape cut by n is judged on what is there */
    CHECK_EQ_INT(gw_json_text_check("\xC3\xA9", 1, &at), GW_EINVAL);
    CHECK_EQ_INT(at, 0);
    CHECK_EQ_INT(gw_json_text_check("\\ud800\\udc00", 11, &at), GW_EINVAL);
    CHECK_EQ_INT(gw_json_text_check("\\ud800\\udc00", 12, &at), GW_OK);
    CHECK_EQ_INT(gw_json_text_check("\\u", 2, &at), GW_OK);
    CHECK_EQ_INT(gw_json_text_check("\\", 1, &at), GW_OK);
    /* NUL bytes are text (an escaped \u0000 decodes to one) */
    CHECK_EQ_INT(gw_json_text_check("a\0b", 3, &at), GW_OK);
}

/* Every code point encodes to a sequence gw_utf8_seq accepts, except the surrogates. */
TEST(every_code_point)
{
    for (unsigned cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char s[4];
        size_t n;
        if (cp < 0x80) {
            s[0] = (unsigned char)cp;
            n = 1;
        } else if (cp < 0x800) {
            s[0] = (unsigned char)(0xC0 | cp >> 6);
            s[1] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            s[0] = (unsigned char)(0xE0 | cp >> 12);
            s[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            s[2] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            s[0] = (unsigned char)(0xF0 | cp >> 18);
            s[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            s[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            s[3] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        int surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        int rc = gw_json_text_check((const char *)s, n, NULL);
        if ((rc == GW_OK) == surrogate) {
            fprintf(stderr, "U+%04X: rc %d\n", cp, rc);
            CHECK(0);
            return;
        }
    }
    CHECK(1);
}

int main(void)
{
    RUN(shared_vectors);
    RUN(bounds);
    RUN(every_code_point);
    return TEST_REPORT();
}
