/*
 * pieces-gateway: "gw.json_c", the host library's JSON decoder (see lua_json.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_luaopen_json. Uses: the Lua C API, the JSON scanner of src/backend/json.h
 * (its grammar, string scan and escape decoding, strict about lone surrogates), strtod.
 * How: a recursive descent over the scanner that leaves each container's members on the
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

#include "backend/json.h"

#define DECLINE (-1)
#define NUM_MAX 64 /* longer number tokens are left to lua-cjson */
#define SLOTS 24   /* free stack slots before each value */
#define SMALL 256  /* escaped strings up to this long are decoded on the C stack */

_Static_assert(GW_LUA_JSON_DEPTH == GW_JSON_MAX_DEPTH, "the scanner bounds the nesting");

typedef struct {
    lua_State *L;
    gw_json_t j;
} dec_t;

static int value(dec_t *d);

/* A raw string (key or value) pushed decoded, or DECLINE (a lone surrogate escape). */
static int push_string(lua_State *L, const gw_json_str_t *s)
{
    if (!s->escaped) {
        lua_pushlstring(L, s->p, s->len);
        return 0;
    }
    char small[SMALL];
    char *out = s->len <= sizeof(small) ? small : lua_newuserdata(L, s->len);
    long n = gw_json_unescape_into(s, out, 1);
    if (n >= 0)
        lua_pushlstring(L, out, (size_t)n);
    if (out != small)
        lua_remove(L, n >= 0 ? -2 : -1);
    return n >= 0 ? 0 : DECLINE;
}

/* The scanner's number token, read by strtod, which must end where the token does. */
static int number(dec_t *d)
{
    const char *s = d->j.p; /* gw_json_peek skipped the whitespace */
    if (gw_json_skip(&d->j) != 0)
        return DECLINE;
    char buf[NUM_MAX];
    size_t n = (size_t)(d->j.p - s);
    if (n >= sizeof(buf))
        return DECLINE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    double v = strtod(buf, &e);
    if (e != buf + n)
        return DECLINE;
    lua_pushnumber(d->L, v);
    return 0;
}

/* The n values above base (pairs when `pairs`) moved into a table made for them at base + 1. */
static void collect(lua_State *L, int base, int n, int pairs)
{
    lua_createtable(L, pairs ? 0 : n, pairs ? n : 0);
    for (int i = 0; i < n; i++) {
        if (pairs) {
            lua_pushvalue(L, base + 2 * i + 1);
            lua_pushvalue(L, base + 2 * i + 2);
            lua_rawset(L, -3);
        } else {
            lua_pushvalue(L, base + i + 1);
            lua_rawseti(L, -2, i + 1);
        }
    }
    if (n > 0) {
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
    }
}

static int object(dec_t *d)
{
    lua_State *L = d->L;
    int base = lua_gettop(L), n = 0, rc;
    gw_json_str_t key;
    if (gw_json_object_begin(&d->j) != 0)
        return DECLINE;
    while ((rc = gw_json_object_next(&d->j, &key)) > 0) {
        if (!lua_checkstack(L, SLOTS) || push_string(L, &key) != 0 || value(d) != 0)
            return DECLINE;
        n++;
    }
    if (rc < 0)
        return DECLINE;
    collect(L, base, n, 1);
    return 0;
}

static int array(dec_t *d)
{
    lua_State *L = d->L;
    int base = lua_gettop(L), n = 0, rc;
    if (gw_json_array_begin(&d->j) != 0)
        return DECLINE;
    while ((rc = gw_json_array_next(&d->j)) > 0) {
        if (!lua_checkstack(L, SLOTS) || value(d) != 0)
            return DECLINE;
        n++;
    }
    if (rc < 0)
        return DECLINE;
    collect(L, base, n, 0);
    return 0;
}

/* One value pushed on the stack, or DECLINE. */
static int value(dec_t *d)
{
    gw_json_str_t s;
    int b;
    switch (gw_json_peek(&d->j)) {
    case GW_JSON_OBJECT: return object(d);
    case GW_JSON_ARRAY: return array(d);
    case GW_JSON_STRING:
        return gw_json_string_raw(&d->j, &s) == 0 ? push_string(d->L, &s) : DECLINE;
    case GW_JSON_NUMBER: return number(d);
    case GW_JSON_TRUE:
    case GW_JSON_FALSE:
        if (gw_json_bool(&d->j, &b) != 0)
            return DECLINE;
        lua_pushboolean(d->L, b);
        return 0;
    case GW_JSON_NULL:
        if (gw_json_null(&d->j) != 1) /* 1: a null was read */
            return DECLINE;
        lua_pushlightuserdata(d->L, NULL); /* cjson.null */
        return 0;
    default: return DECLINE;
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
    dec_t d = {.L = L};
    gw_json_init(&d.j, s, len);
    int base = lua_gettop(L);
    lua_pushboolean(L, 1);
    if (lua_checkstack(L, SLOTS) && value(&d) == 0 && gw_json_end(&d.j) == 0)
        return 2;
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
