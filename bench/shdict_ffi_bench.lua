-- pieces-gateway: ns/op of lua/gw/shared.lua calls through real FFI (not a test).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Run from the repository root: build/test_shdict_lua bench/shdict_ffi_bench.lua
-- (the test host exports the FFI functions). Single-threaded: one Lua VM.

local ffi = require "ffi"
ffi.cdef [[
void gw_test_shdict_reset(size_t capacity, unsigned shards, int fake_time);
]]
ffi.C.gw_test_shdict_reset(64 * 1024 * 1024, 64, 0)

local shared = require "gw.shared"
local N = tonumber(os.getenv("N")) or 5000000

local keys = {}
for i = 1, 4096 do
    keys[i] = ("rl:10.0.%d.%d:60"):format(math.floor(i / 256), i % 256)
end

local function bench(name, fn)
    fn(1000) -- warm up / compile
    local t0 = os.clock()
    fn(N)
    local el = os.clock() - t0
    print(("%-40s %7.1f ns/op"):format(name, el * 1e9 / N))
end

bench("incr(key, 1, 0, 60), one hot key", function(n)
    for _ = 1, n do
        shared:incr("rl:1.2.3.4:60", 1, 0, 60)
    end
end)
bench("incr(key, 1, 0, 60), 4096 keys", function(n)
    for i = 1, n do
        shared:incr(keys[i % 4096 + 1], 1, 0, 60)
    end
end)
bench("get (number), 4096 keys", function(n)
    for i = 1, n do
        shared:get(keys[i % 4096 + 1])
    end
end)
shared:set("str", "blacklisted")
bench("get (11-byte string)", function(n)
    for _ = 1, n do
        shared:get("str")
    end
end)
bench("set (number, ttl)", function(n)
    for i = 1, n do
        shared:set(keys[i % 4096 + 1], i, 60)
    end
end)
bench("rate limit: incr + get of 2 keys", function(n)
    for i = 1, n do
        local k = keys[i % 4096 + 1]
        shared:incr(k, 1, 0, 60)
        shared:get("str")
    end
end)
