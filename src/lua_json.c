/*
 * pieces-gateway: "gw.json_c", the host library's JSON decoder (see lua_json.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_luaopen_json. Uses: the Lua C API, strtod.
 * How: a recursive descent over strict RFC 8259 that leaves each container's members on the
 * Lua stack until its end, then makes the table with room for exactly them (lua_createtable)
 * and stores them in document order (so the last of duplicate keys wins, as in lua-cjson).
 * Strings without escapes are pushed straight from the input.
 * Never: raises on bad input (it declines: the caller asks lua-cjson), reads past the end of
 * the input, or accepts a text lua-cjson would refuse or read differently: every construct
 * taken here is one lua-cjson 2.1 decodes to the same value (numbers: the RFC token, which
 * strtod reads to its end, as lua-cjson's strtod does; \u escapes: code points as in its
 * json_append_unicode_escape).
 */
#include "lua_json.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define DECLINE (-1)
#define NUM_MAX 64 /* longer number tokens are left to lua-cjson */
#define SLOTS 24   /* free stack slots before each value (luaL_Buffer needs a few) */

typedef struct {
    lua_State *L;
    const char *p, *end;
    int depth;
} dec_t;

static int value(dec_t *d);

static void skip_ws(dec_t *d)
{
    while (d->p < d->end &&
           (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

static int is_digit(const dec_t *d, const char *q) { return q < d->end && *q >= '0' && *q <= '9'; }

static const char *digits(const dec_t *d, const char *q)
{
    while (is_digit(d, q))
        q++;
    return q;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? read by strtod, which must end where it does */
static int number(dec_t *d)
{
    const char *s = d->p, *q = s;
    if (q < d->end && *q == '-')
        q++;
    if (!is_digit(d, q))
        return DECLINE;
    q = *q == '0' ? q + 1 : digits(d, q);
    if (q < d->end && *q == '.') {
        if (!is_digit(d, ++q))
            return DECLINE;
        q = digits(d, q);
    }
    if (q < d->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < d->end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(d, q))
            return DECLINE;
        q = digits(d, q);
    }
    char buf[NUM_MAX];
    size_t n = (size_t)(q - s);
    if (n >= sizeof(buf))
        return DECLINE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    double v = strtod(buf, &e);
    if (e != buf + n)
        return DECLINE;
    lua_pushnumber(d->L, v);
    d->p = q;
    return 0;
}

static int hex4(const dec_t *d, const char *q, unsigned *out)
{
    if (d->end - q < 4)
        return DECLINE;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = q[i];
        int x = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (x < 0)
            return DECLINE;
        v = v << 4 | (unsigned)x;
    }
    *out = v;
    return 0;
}

/* \uXXXX (a surrogate pair: \uD8xx\uDCxx) at q (the backslash) as UTF-8 into b; the escape's
 * length, or DECLINE (a lone surrogate) */
static int unicode(const dec_t *d, const char *q, luaL_Buffer *b)
{
    unsigned cp, lo;
    int len = 6;
    if (hex4(d, q + 2, &cp) != 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return DECLINE;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (d->end - q < 12 || q[6] != '\\' || q[7] != 'u' || hex4(d, q + 8, &lo) != 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return DECLINE;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        len = 12;
    }
    if (cp < 0x80) {
        luaL_addchar(b, (char)cp);
    } else if (cp < 0x800) {
        luaL_addchar(b, (char)(0xC0 | cp >> 6));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        luaL_addchar(b, (char)(0xE0 | cp >> 12));
        luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        luaL_addchar(b, (char)(0xF0 | cp >> 18));
        luaL_addchar(b, (char)(0x80 | (cp >> 12 & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    }
    return len;
}

/* The rest of a string from its first backslash q (s: after the opening quote). */
static int escaped(dec_t *d, const char *s, const char *q)
{
    static const char plain[] = "\"\\/bfnrt", as[] = "\"\\/\b\f\n\r\t";
    luaL_Buffer b;
    luaL_buffinit(d->L, &b);
    luaL_addlstring(&b, s, (size_t)(q - s));
    while (q < d->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            luaL_pushresult(&b);
            d->p = q + 1;
            return 0;
        }
        if (c < 0x20)
            return DECLINE;
        if (c != '\\') {
            luaL_addchar(&b, (char)c);
            q++;
            continue;
        }
        if (d->end - q < 2)
            return DECLINE;
        const char *k = q[1] ? strchr(plain, q[1]) : NULL;
        if (k) {
            luaL_addchar(&b, as[k - plain]);
            q += 2;
        } else if (q[1] == 'u') {
            int n = unicode(d, q, &b);
            if (n < 0)
                return DECLINE;
            q += n;
        } else {
            return DECLINE;
        }
    }
    return DECLINE;
}

static int string(dec_t *d)
{
    const char *s = d->p + 1, *q = s;
    while (q < d->end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            lua_pushlstring(d->L, s, (size_t)(q - s));
            d->p = q + 1;
            return 0;
        }
        if (c == '\\')
            return escaped(d, s, q);
        if (c < 0x20)
            return DECLINE;
        q++;
    }
    return DECLINE;
}

/* After a member: 1 at ',' (another follows), 0 at `close`, DECLINE otherwise. */
static int next_member(dec_t *d, char close)
{
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
        d->p++;
        return 1;
    }
    if (d->p < d->end && *d->p == close) {
        d->p++;
        return 0;
    }
    return DECLINE;
}

/* 1 (and the empty table pushed) when the container opened at d->p is empty. */
static int open_container(dec_t *d, char close)
{
    d->p++;
    skip_ws(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        lua_createtable(d->L, 0, 0);
        return 1;
    }
    return 0;
}

static int object(dec_t *d)
{
    lua_State *L = d->L;
    int base = lua_gettop(L), n = 0, more = 1;
    if (open_container(d, '}'))
        return 0;
    while (more) {
        skip_ws(d);
        if (!lua_checkstack(L, SLOTS) || d->p >= d->end || *d->p != '"' || string(d) != 0)
            return DECLINE;
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
            return DECLINE;
        d->p++;
        if (value(d) != 0 || (more = next_member(d, '}')) < 0)
            return DECLINE;
        n++;
    }
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, base + 2 * i + 1);
        lua_pushvalue(L, base + 2 * i + 2);
        lua_rawset(L, -3);
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 0;
}

static int array(dec_t *d)
{
    lua_State *L = d->L;
    int base = lua_gettop(L), n = 0, more = 1;
    if (open_container(d, ']'))
        return 0;
    while (more) {
        if (!lua_checkstack(L, SLOTS) || value(d) != 0 || (more = next_member(d, ']')) < 0)
            return DECLINE;
        n++;
    }
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, base + i);
        lua_rawseti(L, -2, i);
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 0;
}

static int literal(dec_t *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return DECLINE;
    d->p += n;
    return 0;
}

/* One value (whitespace before it skipped) pushed on the stack, or DECLINE. */
static int value(dec_t *d)
{
    skip_ws(d);
    if (d->p >= d->end)
        return DECLINE;
    int rc;
    switch (*d->p) {
    case '{':
    case '[':
        if (++d->depth > GW_LUA_JSON_DEPTH)
            return DECLINE;
        rc = *d->p == '{' ? object(d) : array(d);
        d->depth--;
        return rc;
    case '"':
        return string(d);
    case 't':
        rc = literal(d, "true", 4);
        if (rc == 0)
            lua_pushboolean(d->L, 1);
        return rc;
    case 'f':
        rc = literal(d, "false", 5);
        if (rc == 0)
            lua_pushboolean(d->L, 0);
        return rc;
    case 'n':
        rc = literal(d, "null", 4);
        if (rc == 0)
            lua_pushlightuserdata(d->L, NULL); /* cjson.null */
        return rc;
    default:
        return number(d);
    }
}

/* decode(s) -> true, value | false */
static int decode(lua_State *L)
{
    size_t len;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushboolean(L, 0);
        return 1;
    }
    const char *s = lua_tolstring(L, 1, &len);
    dec_t d = {L, s, s + len, 0};
    int base = lua_gettop(L);
    lua_pushboolean(L, 1);
    if (lua_checkstack(L, SLOTS) && value(&d) == 0) {
        skip_ws(&d);
        if (d.p == d.end)
            return 2;
    }
    lua_settop(L, base);
    lua_pushboolean(L, 0);
    return 1;
}

int gw_luaopen_json(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, decode);
    lua_setfield(L, -2, "decode");
    return 1;
}
