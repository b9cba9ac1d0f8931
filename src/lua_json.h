/*
 * pieces-gateway: a JSON decoder for the host library that makes tables at their final size.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The Lua module "gw.json_c" (package.preload, src/lua_host.c) has one function,
 * decode(s) -> true, value | false. It takes only what RFC 8259 calls JSON, nested at most
 * GW_LUA_JSON_DEPTH deep, with no control byte inside a string and no lone surrogate escape, and
 * then gives exactly what lua-cjson 2.1's decode gives for that text (numbers through strtod,
 * null as cjson.null, the last of duplicate keys). Anything else it declines with false, and
 * the caller asks lua-cjson, which then answers or says what is wrong: lua/gw/json.lua does so
 * for host.json.decode. Why: lua-cjson grows each table key by key (a rehash per power of two)
 * and wraps every decode in a protected call; a chat body cost ~7 k instructions there.
 * Raises only on memory exhaustion, as any Lua allocation does.
 */
#ifndef GW_LUA_JSON_H
#define GW_LUA_JSON_H

#include <lua.h>

#define GW_LUA_JSON_DEPTH 64

/* lua_CFunction: pushes the module table { decode = ... }. */
int gw_luaopen_json(lua_State *L);

#endif
