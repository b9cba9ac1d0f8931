/*
 * pieces-gateway: the table of host Lua modules embedded as LuaJIT bytecode.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_LUA_MODULES_H
#define GW_LUA_MODULES_H
#include <stddef.h>

typedef struct {
    const char *name;          /* module name for require(), e.g. "gw.host" */
    const unsigned char *code; /* LuaJIT bytecode */
    size_t len;
} gw_lua_module_t;

/* Generated at build time (cmake/core.cmake); terminated by a {NULL, NULL, 0} entry. */
extern const gw_lua_module_t gw_lua_modules[];

#endif
