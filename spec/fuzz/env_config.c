/*
 * pieces-gateway fuzz driver: .env lines and environment values (src/env.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Every line of the input (split at '\n' as getline does) goes through gw_env_parse_line, and
 * every line (up to its first NUL) through gw_trim and the value parsers behind env.int/num/bool
 * of gateway.lua. Oracles: an independent integer parser (128-bit accumulation), the exact
 * boolean set, a %.17g round trip for numbers, and for .env lines the round trip of the parsed
 * value through a double-quoted, a single-quoted and an unquoted line. Nothing touches the
 * environment (gw_env_load_dotenv is gw_env_parse_line plus setenv).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "env.h"
#include "gw.h"

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "env_config: %s failed at line %d\n", #c, __LINE__);                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* [+-]digits within long long, nothing else */
static int ref_int(const char *s, long long *out)
{
    const char *p = s;
    int neg = *p == '-';
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return -1;
    __int128 v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > (__int128)LLONG_MAX + 1)
            return -1;
    }
    if (neg)
        v = -v;
    if (v > LLONG_MAX || v < LLONG_MIN)
        return -1;
    *out = (long long)v;
    return 0;
}

static void check_values(const char *s)
{
    long long i = 0, ri = 0;
    int rc = gw_parse_int(s, &i);
    int ref = ref_int(s, &ri);
    REQUIRE((rc == 0) == (ref == 0));
    REQUIRE(rc != 0 || i == ri);

    double d = 0;
    if (gw_parse_num(s, &d) == 0) {
        REQUIRE(isfinite(d));
        REQUIRE(strspn(s, "0123456789.+-eE") == strlen(s));
        char back[64];
        snprintf(back, sizeof(back), "%.17g", d);
        double d2 = 0;
        if (strchr(back, 'n') == NULL) /* "inf"/"nan" cannot come out of a finite d */
            REQUIRE(gw_parse_num(back, &d2) == 0 && memcmp(&d, &d2, sizeof(d)) == 0);
    } else if (*s && !isspace((unsigned char)*s) && strspn(s, "0123456789.+-eE") == strlen(s)) {
        /* rejected plain decimals: strtod stopped early, overflowed or underflowed */
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        REQUIRE(*end || errno || !isfinite(v));
    }

    static const char *bools[] = {"1", "t", "T", "TRUE", "true", "True",
                                  "0", "f", "F", "FALSE", "false", "False"};
    int b = -1, want = -1;
    for (size_t k = 0; k < GW_ARRAY_SIZE(bools); k++)
        if (strcmp(s, bools[k]) == 0)
            want = k < 6;
    REQUIRE((gw_parse_bool(s, &b) == 0) == (want >= 0));
    REQUIRE(want < 0 || b == want);
}

static void check_trim(const char *s, size_t n)
{
    size_t tl;
    const char *t = gw_trim(s, n, &tl);
    REQUIRE(t >= s && t + tl <= s + n);
    REQUIRE(tl == 0 || (!isspace((unsigned char)t[0]) && !isspace((unsigned char)t[tl - 1])));
    for (const char *p = s; p < t; p++)
        REQUIRE(isspace((unsigned char)*p));
    for (const char *p = t + tl; p < s + n; p++)
        REQUIRE(isspace((unsigned char)*p));
}

/* Parses line; returns rc and copies key and value. */
static int parse(const char *line, size_t n, gw_buf_t *key, gw_buf_t *val)
{
    const char *k = NULL;
    size_t kl = 0;
    gw_buf_reset(key);
    gw_buf_reset(val);
    int rc = gw_env_parse_line(line, n, &k, &kl, val);
    if (rc == 1)
        gw_buf_append(key, k, kl);
    return rc;
}

static void expect_same(const gw_buf_t *line, const gw_buf_t *key, const gw_buf_t *val)
{
    gw_buf_t k2, v2;
    gw_buf_init(&k2);
    gw_buf_init(&v2);
    REQUIRE(parse(line->data, line->len, &k2, &v2) == 1);
    REQUIRE(k2.len == key->len && (!key->len || memcmp(k2.data, key->data, key->len) == 0));
    REQUIRE(v2.len == val->len && (!val->len || memcmp(v2.data, val->data, val->len) == 0));
    gw_buf_dispose(&k2);
    gw_buf_dispose(&v2);
}

/* The parsed value, written back as KEY="..." (always), KEY='...' and KEY=... (when they can
 * carry it), parses to the same key and value. */
static void round_trip(const gw_buf_t *key, const gw_buf_t *val)
{
    gw_buf_t line;
    gw_buf_init(&line);
    gw_buf_append(&line, key->data, key->len);
    gw_buf_puts(&line, "=\"");
    for (size_t i = 0; i < val->len; i++) {
        char c = val->data[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (esc)
            gw_buf_puts(&line, esc);
        else
            gw_buf_putc(&line, c);
    }
    gw_buf_putc(&line, '"');
    expect_same(&line, key, val);

    if (!val->len || !memchr(val->data, '\'', val->len)) {
        gw_buf_reset(&line);
        gw_buf_append(&line, key->data, key->len);
        gw_buf_puts(&line, "='");
        gw_buf_append(&line, val->data, val->len);
        gw_buf_putc(&line, '\'');
        expect_same(&line, key, val);
    }

    int plain = val->len > 0 && val->data[0] != '"' && val->data[0] != '\'' &&
                !isspace((unsigned char)val->data[0]) &&
                !isspace((unsigned char)val->data[val->len - 1]);
    for (size_t i = 1; plain && i < val->len; i++)
        if (val->data[i] == '#' && isspace((unsigned char)val->data[i - 1]))
            plain = 0;
    if (plain) {
        gw_buf_reset(&line);
        gw_buf_append(&line, key->data, key->len);
        gw_buf_putc(&line, '=');
        gw_buf_append(&line, val->data, val->len);
        expect_same(&line, key, val);
    }
    gw_buf_dispose(&line);
}

static void check_line(const char *line, size_t n)
{
    gw_buf_t key, val;
    gw_buf_init(&key);
    gw_buf_init(&val);
    int rc = parse(line, n, &key, &val);
    REQUIRE(rc == 0 || rc == 1 || rc == GW_EINVAL);
    if (rc == 1) {
        REQUIRE(key.len > 0);
        for (size_t i = 0; i < key.len; i++)
            REQUIRE(isalnum((unsigned char)key.data[i]) || key.data[i] == '_' ||
                    key.data[i] == '.');
        round_trip(&key, &val);
    }
    gw_buf_dispose(&key);
    gw_buf_dispose(&val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t start = 0;
    while (start <= size) {
        const char *nl = memchr(s + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - s) + 1 : size; /* getline keeps the newline */
        size_t n = end - start;
        check_line(s + start, n);
        check_trim(s + start, n);
        char *z = gw_strndup(s + start, nl ? n - 1 : n); /* the value parsers get C strings */
        check_values(z);
        free(z);
        if (!nl)
            break;
        start = end;
    }
    return 0;
}
