/*
 * pieces-gateway: the C <-> Lua seam. Every function Lua calls on the request path is declared
 * here and nowhere else.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Rules (OpenResty style): plain scalar arguments, pointer+length strings, caller-provided
 * buffers; return an int status (0 ok, negative GW_E* on failure) unless noted; never call
 * back into Lua. The text between GW_FFI_BEGIN and GW_FFI_END must be parsable by LuaJIT's
 * ffi.cdef: the ffi.cdef blocks of lua/gw/*.lua are checked against it by a test.
 */
#ifndef GW_FFI_H
#define GW_FFI_H
#include <stddef.h>
#include <stdint.h>

/* GW_FFI_BEGIN */

/* --- request (core) --- */

/* --- shared dictionary --- */

/* --- tokenizer --- */

/* GW_FFI_END */

#endif
