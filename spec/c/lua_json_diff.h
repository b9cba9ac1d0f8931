/*
 * pieces-gateway: gw.json_c (src/lua_json.c) against lua-cjson, for a test and a fuzz driver.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * json_diff_new() makes a VM with both decoders; json_diff(L, s, n) decodes s with each and
 * returns 1 when gw.json_c took it and lua-cjson decodes it to the same value (numbers equal
 * bit for bit, so -0 is not 0), 0 when gw.json_c declined it, -1 when gw.json_c took a text
 * lua-cjson refuses or reads differently (the bug both callers look for).
 */
#ifndef GW_LUA_JSON_DIFF_H
#define GW_LUA_JSON_DIFF_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <string.h>

#include "lua_json.h"

int luaopen_cjson_safe(lua_State *L);

static lua_State *json_diff_new(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_cjson_safe);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "decode");
    lua_replace(L, -2); /* 1: cjson.decode */
    lua_pushcfunction(L, gw_luaopen_json);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "decode");
    lua_replace(L, -2); /* 2: gw.json_c decode */
    return L;
}

static int json_same(lua_State *L, int a, int b)
{
    if (lua_type(L, a) != lua_type(L, b))
        return 0;
    if (lua_type(L, a) == LUA_TNUMBER) {
        lua_Number x = lua_tonumber(L, a), y = lua_tonumber(L, b);
        return memcmp(&x, &y, sizeof(x)) == 0;
    }
    if (lua_type(L, a) == LUA_TLIGHTUSERDATA)
        return lua_touserdata(L, a) == lua_touserdata(L, b);
    if (lua_type(L, a) != LUA_TTABLE)
        return lua_rawequal(L, a, b);
    if (!lua_checkstack(L, 8))
        return 0;
    int na = 0, nb = 0, same = 1;
    lua_pushnil(L);
    while (same && lua_next(L, a) != 0) { /* key -2, value -1 */
        na++;
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        same = json_same(L, lua_gettop(L) - 1, lua_gettop(L));
        lua_pop(L, 2);
    }
    if (!same) {
        lua_pop(L, 1); /* the key lua_next left */
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, b) != 0) {
        nb++;
        lua_pop(L, 1);
    }
    return na == nb;
}

static int json_diff(lua_State *L, const char *s, size_t n)
{
    int top = lua_gettop(L), rc;
    lua_pushvalue(L, 2);
    lua_pushlstring(L, s, n);
    lua_call(L, 1, 2); /* ok, value */
    if (!lua_toboolean(L, top + 1)) {
        lua_settop(L, top);
        return 0;
    }
    lua_pushvalue(L, 1);
    lua_pushlstring(L, s, n);
    lua_call(L, 1, 2); /* value | nil, err */
    if (lua_isnil(L, top + 3) && !lua_isnil(L, top + 4))
        rc = -1; /* cjson refused it */
    else
        rc = json_same(L, top + 2, top + 3) ? 1 : -1;
    lua_settop(L, top);
    return rc;
}

#endif
