/*
 * pieces-gateway fuzz driver: the host library's JSON decoder (src/lua_json.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Oracle: lua-cjson 2.1, which the decoder stands in front of. Whatever text gw.json_c takes,
 * lua-cjson must decode to the same value (spec/c/lua_json_diff.h); a text it declines is
 * lua-cjson's to answer. The input is also tried cut at every 7th length (a value cut by the
 * end must be declined or read as lua-cjson reads it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../c/lua_json_diff.h"

static lua_State *L;

static void close_vm(void) { lua_close(L); } /* (lua-cjson frees its buffers in __gc) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        if (!(L = json_diff_new()))
            abort();
        atexit(close_vm);
    }
    for (size_t n = size % 7; n <= size; n += 7) {
        if (json_diff(L, (const char *)data, n) < 0) {
            fprintf(stderr, "lua_json: gw.json_c and lua-cjson differ on %zu bytes\n", n);
            abort();
        }
    }
    if (json_diff(L, (const char *)data, size) < 0)
        abort();
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
