/*
 * pieces-gateway: .env loading and value parsing.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_env_*, gw_parse_*. Uses: libc. Never: overrides a non-empty real variable.
 */
#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gw.h"

const char *gw_trim(const char *s, size_t len, size_t *out_len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    *out_len = len;
    return s;
}

const char *gw_env_raw(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

int gw_parse_int(const char *s, long long *out)
{
    if (!s || !*s)
        return GW_EINVAL;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return GW_EINVAL;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return GW_EINVAL;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return GW_EINVAL;
    *out = v;
    return GW_OK;
}

int gw_parse_num(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return GW_EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || !isfinite(v))
        return GW_EINVAL;
    /* strtod accepts hex and "inf"/"nan"; keep to plain decimals. */
    for (const char *p = s; *p; p++)
        if (!(isdigit((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+' || *p == 'e' ||
              *p == 'E'))
            return GW_EINVAL;
    *out = v;
    return GW_OK;
}

int gw_parse_bool(const char *s, int *out)
{
    static const char *t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *f[] = {"0", "f", "F", "FALSE", "false", "False"};
    if (!s)
        return GW_EINVAL;
    for (size_t i = 0; i < GW_ARRAY_SIZE(t); i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = 1;
            return GW_OK;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = 0;
            return GW_OK;
        }
    }
    return GW_EINVAL;
}

/* Parse the value part of a line into out; returns 0 or GW_EINVAL (unterminated quote). */
static int parse_value(const char *v, size_t n, gw_buf_t *out)
{
    v = gw_trim(v, n, &n);
    if (n > 0 && (v[0] == '"' || v[0] == '\'')) {
        char q = v[0];
        size_t i = 1;
        for (; i < n && v[i] != q; i++) {
            if (q == '"' && v[i] == '\\' && i + 1 < n) {
                char c = v[++i];
                gw_buf_putc(out, c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c);
            } else
                gw_buf_putc(out, v[i]);
        }
        return i < n ? GW_OK : GW_EINVAL;
    }
    /* Unquoted: an inline comment starts at " #". */
    for (size_t i = 0; i < n; i++)
        if (v[i] == '#' && i > 0 && isspace((unsigned char)v[i - 1])) {
            n = i;
            break;
        }
    v = gw_trim(v, n, &n);
    gw_buf_append(out, v, n);
    return GW_OK;
}

int gw_env_parse_line(const char *line, size_t n, const char **key, size_t *klen, gw_buf_t *val)
{
    line = gw_trim(line, n, &n);
    if (n == 0 || line[0] == '#')
        return 0;
    if (n > 7 && strncmp(line, "export ", 7) == 0) {
        line += 7;
        n -= 7;
    }
    const char *eq = memchr(line, '=', n);
    if (!eq)
        return GW_EINVAL;
    size_t kl;
    const char *k = gw_trim(line, (size_t)(eq - line), &kl);
    if (kl == 0)
        return GW_EINVAL;
    for (size_t i = 0; i < kl; i++)
        if (!(isalnum((unsigned char)k[i]) || k[i] == '_' || k[i] == '.'))
            return GW_EINVAL;
    if (parse_value(eq + 1, n - (size_t)(eq + 1 - line), val) != 0)
        return GW_EINVAL;
    *key = k;
    *klen = kl;
    return 1;
}

static int apply_line(const char *line, size_t n)
{
    const char *k;
    size_t kl;
    gw_buf_t val;
    gw_buf_init(&val);
    int rc = gw_env_parse_line(line, n, &k, &kl, &val);
    if (rc == 1) {
        char *key = gw_strndup(k, kl);
        if (!gw_env_raw(key))
            setenv(key, val.data ? val.data : "", 1);
        free(key);
    }
    gw_buf_dispose(&val);
    return rc;
}

int gw_env_load_dotenv(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return GW_ENOENT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int count = 0, lineno = 0, bad = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        int rc = apply_line(line, (size_t)n);
        if (rc > 0)
            count++;
        else if (rc < 0 && !bad) {
            bad = lineno;
        }
    }
    free(line);
    fclose(f);
    if (bad) {
        if (err)
            *err = gw_sprintf("%s:%d: malformed line (expected KEY=VALUE)", path, bad);
        return GW_ERROR;
    }
    return count;
}
