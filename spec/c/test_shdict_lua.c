/*
 * pieces-gateway: runs a Lua script against lua/gw/shared.lua through real LuaJIT FFI.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: a LuaJIT host for spec/lua/shared_ffi.lua (default) or a bench script given as
 *           argv[1]. This executable links src/ffi_shdict.c and exports its symbols, so ffi.C
 *           resolves gw_ffi_shdict_* exactly as in pieces-gateway. It also exports two test
 *           hooks the script declares itself: gw_test_shdict_reset (a fresh global dictionary,
 *           or none) and gw_test_clock_advance (the dictionary's injected clock).
 * Must be run from the repository root (package.path is relative).
 */
#include "shdict.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

static uint64_t fake_now = 1000000000000ull;
static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

/* Exported for the script (ffi.C): replace the global dictionary; capacity 0 = none. */
void gw_test_shdict_reset(size_t capacity, unsigned shards, int fake_time)
{
    gw_shdict_t *old = gw_shdict_global();
    gw_shdict_set_global(NULL);
    gw_shdict_free(old);
    if (capacity == 0)
        return;
    gw_shdict_t *d = gw_shdict_new(capacity, shards);
    if (d && fake_time)
        gw_shdict_set_clock(d, fake_clock, NULL);
    gw_shdict_set_global(d);
}

void gw_test_clock_advance(double seconds)
{
    fake_now += (uint64_t)(seconds * 1e9);
}

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

int main(int argc, char **argv)
{
    const char *script = argc > 1 ? argv[1] : "spec/lua/shared_ffi.lua";
    int rc = 1;
    gw_test_shdict_reset(1 << 20, 4, 1);
    lua_State *L = luaL_newstate();
    if (!L)
        goto done;
    luaL_openlibs(L);
    lua_pushcfunction(L, traceback);
    if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path") != 0 ||
        luaL_loadfile(L, script) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        goto done;
    }
    if (lua_pcall(L, 0, 0, 1) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        goto done;
    }
    rc = 0;
done:
    if (L)
        lua_close(L);
    gw_test_shdict_reset(0, 0, 0);
    return rc;
}
