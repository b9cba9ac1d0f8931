-- pieces-gateway: lua/gw/shared.lua through real FFI (run by spec/c/test_shdict_lua.c).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Not a busted spec: ffi.C symbols exist only inside a host executable. Each case gets a fresh
-- 1 MiB dictionary with a fake clock (gw_test_shdict_reset); gw_test_clock_advance moves time.

local ffi = require "ffi"

ffi.cdef [[
void gw_test_shdict_reset(size_t capacity, unsigned shards, int fake_time);
void gw_test_clock_advance(double seconds);
]]

local C = ffi.C
local shared = require "gw.shared"

local failures, checks = 0, 0
local current = "?"

local function check(cond, msg)
    checks = checks + 1
    if not cond then
        failures = failures + 1
        local info = debug.getinfo(2, "l")
        io.stderr:write(("shared_ffi.lua:%d: [%s] %s\n"):format(info.currentline, current,
                                                                 msg or "check failed"))
    end
end

local function eq(a, b, msg)
    check(a == b and type(a) == type(b), (msg or "") .. ": expected " .. tostring(b) .. " ("
          .. type(b) .. "), got " .. tostring(a) .. " (" .. type(a) .. ")")
end

local function raises(fn, pattern)
    local ok, err = pcall(fn)
    check(not ok, "expected an error matching " .. pattern)
    if not ok then
        check(tostring(err):find(pattern, 1, true), "error '" .. tostring(err) .. "' lacks "
              .. pattern)
    end
end

local cases = {}
local order = {}
local function case(name, fn)
    cases[name] = fn
    order[#order + 1] = name
end

case("get_set_types", function()
    eq(shared:get("missing"), nil, "missing")
    eq(shared:set("n", 42), true, "set number")
    eq(shared:get("n"), 42, "number round trip")
    eq(shared:set("f", -0.125), true)
    eq(shared:get("f"), -0.125, "float")
    eq(shared:set("s", "42"), true, "set numeric string")
    eq(shared:get("s"), "42", "a numeric string stays a string")
    eq(shared:set("e", ""), true, "set empty string")
    eq(shared:get("e"), "", "empty string is present")
    local bin = "a\0b\255\0"
    eq(shared:set(bin, bin), true, "binary key and value")
    eq(shared:get(bin), bin, "binary round trip")
    eq(shared:get("a"), nil, "prefix before NUL is another key")
    eq(shared:set("n", "now a string"), true)
    eq(shared:get("n"), "now a string", "type change")
    eq(shared:set(7, "numeric key"), true, "number key")
    eq(shared:get("7"), "numeric key", "number key is its string")
    local huge = 2 ^ 53
    eq(shared:set("big", huge), true)
    eq(shared:get("big"), huge, "2^53")
    shared:set("inf", math.huge)
    eq(shared:get("inf"), math.huge, "inf")
    shared:set("nan", 0 / 0)
    local nan = shared:get("nan")
    check(nan ~= nan, "NaN round trip")
end)

case("big_values", function()
    local v = ("0123456789abcdef"):rep(4096) -- 64 KiB: over the 4 KiB scratch buffer
    eq(shared:set("big", v), true)
    eq(shared:get("big"), v, "64 KiB value")
    eq(shared:get("big"), v, "again (buffer not clobbered)")
    local exact = ("x"):rep(4096)
    shared:set("exact", exact)
    eq(shared:get("exact"), exact, "exactly the scratch size")
    eq(shared:get("big"), v)
    local ok, err = shared:set("toobig", ("y"):rep(300 * 1024)) -- > 1 MiB / 4 shards
    eq(ok, nil, "larger than a shard")
    eq(err, "no memory")
    eq(shared:get("toobig"), nil)
end)

case("add", function()
    eq(shared:add("k", "v1"), true, "add new")
    local ok, err = shared:add("k", "v2")
    eq(ok, false, "add existing")
    eq(err, "exists")
    eq(shared:get("k"), "v1", "add did not overwrite")
    eq(shared:add("t", 1, 1), true)
    C.gw_test_clock_advance(1.5)
    eq(shared:add("t", 2), true, "add over an expired key")
    eq(shared:get("t"), 2)
end)

case("incr", function()
    local v, err = shared:incr("c", 1)
    eq(v, nil, "missing without init")
    eq(err, "not found")
    eq(shared:incr("c", 1, 0), 1, "init + delta")
    eq(shared:incr("c", 2.5), 3.5, "existing")
    eq(shared:incr("c", -3.5, 100), 0, "init ignored when present")
    eq(shared:get("c"), 0, "stored as a number")
    shared:set("s", "10")
    v, err = shared:incr("s", 1, 0)
    eq(v, nil, "string value")
    eq(err, "not a number")
    eq(shared:get("s"), "10")
end)

case("incr_ttl_window", function()
    eq(shared:incr("w", 1, 0, 10), 1)
    C.gw_test_clock_advance(6)
    eq(shared:incr("w", 1, 0, 10), 2, "ttl not extended by incr")
    C.gw_test_clock_advance(5)
    eq(shared:get("w"), nil, "window expired")
    eq(shared:incr("w", 1, 0, 10), 1, "new window")
end)

case("ttl", function()
    shared:set("a", "x", 0.5)
    shared:set("b", "x", 0)
    shared:set("c", "x")
    shared:set("d", 1, 2)
    eq(shared:get("a"), "x")
    C.gw_test_clock_advance(0.499)
    eq(shared:get("a"), "x", "before expiry")
    C.gw_test_clock_advance(0.002)
    eq(shared:get("a"), nil, "after expiry")
    eq(shared:get("d"), 1)
    shared:set("d", 2) -- set replaces the ttl: no expiry now
    C.gw_test_clock_advance(1000)
    eq(shared:get("b"), "x", "ttl 0 = forever")
    eq(shared:get("c"), "x", "nil ttl = forever")
    eq(shared:get("d"), 2, "ttl replaced by set")
end)

case("delete", function()
    shared:set("k", 1)
    eq(shared:delete("k"), true)
    eq(shared:get("k"), nil)
    eq(shared:delete("k"), true, "absent key")
end)

case("keys", function()
    for i = 1, 30 do
        shared:set("rl:" .. i, i, i <= 10 and 1 or 0)
        shared:set("ban:" .. i, "1")
    end
    local ks = shared:keys("rl:")
    eq(#ks, 30, "prefix")
    local seen = {}
    for _, k in ipairs(ks) do
        check(k:sub(1, 3) == "rl:", "prefix match " .. k)
        seen[k] = true
    end
    check(seen["rl:1"] and seen["rl:30"], "all keys present")
    eq(#shared:keys(), 60, "nil prefix = all")
    eq(#shared:keys("rl:", 5), 5, "max")
    eq(#shared:keys("", 0), 60, "max 0 = no limit")
    eq(#shared:keys("nothing"), 0, "no match")
    C.gw_test_clock_advance(2)
    eq(#shared:keys("rl:"), 20, "expired keys are skipped")
    for i = 1, 1500 do
        shared:set("many:" .. i, i)
    end
    eq(#shared:keys("many:"), 1024, "default max 1024")
    eq(#shared:keys("many:", 0), 1500, "grows its buffer")
    local bin = "k\0\1"
    shared:set(bin, 1)
    local b = shared:keys("k\0")
    eq(#b, 1)
    eq(b[1], bin, "binary key in keys")
    local long = ("L"):rep(65535)
    eq(shared:set(long, 1), true, "longest key")
    eq(shared:keys("LLL")[1], long, "longest key in keys")
end)

case("key_errors", function()
    local v, err = shared:get("")
    eq(v, nil)
    eq(err, "empty key")
    v, err = shared:set(("k"):rep(65536), 1)
    eq(v, nil)
    eq(err, "key too long")
    v, err = shared:add("", 1)
    eq(v, nil, "add empty key")
    eq(err, "empty key")
    v, err = shared:incr("", 1, 0)
    eq(v, nil)
    eq(err, "empty key")
    v, err = shared:delete("")
    eq(v, nil)
    eq(err, "empty key")
end)

case("misuse_raises", function()
    raises(function() shared:get(nil) end, "string key expected, got nil")
    raises(function() shared.get("k") end, "string key expected, got nil")
    raises(function() shared:get({}) end, "string key expected, got table")
    raises(function() shared:set("k", nil) end, "string or number value expected, got nil")
    raises(function() shared:set("k", true) end, "got boolean")
    raises(function() shared:set("k", 1, -1) end, "ttl >= 0")
    raises(function() shared:set("k", 1, 0 / 0) end, "ttl >= 0")
    raises(function() shared:set("k", 1, "10") end, "ttl >= 0")
    raises(function() shared:add("k", {}) end, "'shared:add'")
    raises(function() shared:incr("k") end, "number delta expected, got nil")
    raises(function() shared:incr("k", 1, "0") end, "number or nil init")
    raises(function() shared:incr("k", 1, 0, -5) end, "ttl >= 0")
    raises(function() shared:keys({}) end, "prefix")
    raises(function() shared:keys("", -1) end, "integer max")
    raises(function() shared:keys("", 1.5) end, "integer max")
    raises(function() shared:keys("", 0 / 0) end, "integer max")
    -- the error points at the caller, not at gw/shared.lua
    local ok, err = pcall(function() shared:set("k", nil) end)
    check(not ok and err:find("shared_ffi.lua", 1, true), "blames the caller: " .. tostring(err))
end)

case("no_dict", function()
    C.gw_test_shdict_reset(0, 0, 0)
    local v, err = shared:get("k")
    eq(v, nil)
    eq(err, "no shared dict")
    v, err = shared:set("k", 1)
    eq(v, nil)
    eq(err, "no shared dict")
    v, err = shared:add("k", 1)
    eq(v, nil, "add without dict is an error, not false")
    eq(err, "no shared dict")
    v, err = shared:incr("k", 1, 0)
    eq(v, nil)
    eq(err, "no shared dict")
    v, err = shared:delete("k")
    eq(v, nil)
    eq(err, "no shared dict")
    v, err = shared:keys()
    eq(v, nil)
    eq(err, "no shared dict")
end)

case("survives_module_reload", function()
    shared:set("persist", "yes")
    package.loaded["gw.shared"] = nil
    local again = require "gw.shared"
    check(again ~= shared, "a new module table")
    eq(again:get("persist"), "yes", "C data outlives the Lua module")
    package.loaded["gw.shared"] = shared
end)

case("lru_eviction", function()
    C.gw_test_shdict_reset(8192, 1, 1)
    shared:set("hot", "h")
    for i = 1, 1000 do
        eq(shared:set("cold:" .. i, i), true)
        shared:get("hot")
    end
    eq(shared:get("hot"), "h", "recently used survives")
    eq(shared:get("cold:1"), nil, "least recently used evicted")
    eq(shared:get("cold:1000"), 1000)
end)

case("window_incr", function()
    local rules = {
        { key = "w:cur", prev = "w:prev", weight = 0.5, limit = 3, ttl = 10 },
        { key = "v:cur", prev = "v:prev", weight = 0, limit = 100, ttl = 10 },
    }
    shared:set("w:prev", 2)
    eq(shared:window_incr(rules), true, "1 + 0 + 1 <= 3")
    eq(rules[1].count, 0)
    eq(rules[1].prev_count, 2)
    eq(shared:window_incr(rules), true)
    eq(shared:window_incr(rules), false, "1 + 2 + 1 > 3: nothing counted")
    eq(shared:get("w:cur"), 2)
    eq(shared:get("v:cur"), 2, "the passing rule was not counted either")
    eq(rules[2].count, 2)
    C.gw_test_clock_advance(11)
    eq(shared:get("w:cur"), nil, "created with its ttl")
    shared:set("v:prev", "s")
    local ok, err = shared:window_incr(rules)
    eq(ok, nil)
    eq(err, "not a number")
    raises(function() shared:window_incr({}) end, "window_incr")
    raises(function() shared:window_incr({ { key = "a" } }) end, "window_incr")
end)

case("maps", function()
    eq(shared:map_version("bans"), 0)
    eq(shared:map_add("bans", "1.2.3.4", "{}"), true)
    local ok, err = shared:map_add("bans", "1.2.3.4", "{}")
    eq(ok, false)
    eq(err, "exists")
    eq(shared:map_add("bans", "10.0.0.0/8", "x"), true)
    eq(shared:map_version("bans"), 2)
    local items = shared:map_items("bans")
    eq(items["1.2.3.4"], "{}")
    eq(items["10.0.0.0/8"], "x")
    eq(shared:map_delete("bans", "1.2.3.4"), true)
    eq(shared:map_delete("bans", "1.2.3.4"), false)
    eq(shared:map_version("bans"), 3)
    eq(shared:get("map:bans:10.0.0.0/8"), "x", "the layout the mirror (C) shares")
    raises(function() shared:map_add("a:b", "f", "v") end, "map name")
    raises(function() shared:map_add("m", "", "v") end, "field")
    raises(function() shared:map_add("m", "f", 1) end, "string value")
end)

-- The ffi.cdef block of lua/gw/shared.lua must declare exactly what the shared dictionary
-- section of src/gw_ffi.h declares.
local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local function normalize(s)
    s = s:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " "):gsub("%s+", " ")
    return (s:gsub("%s*([%(%)%*,;])%s*", "%1"):gsub("^%s+", ""):gsub("%s+$", ""))
end

case("cdef_matches_header", function()
    local h = read("src/gw_ffi.h")
    local section = h:match("/%* %-%-%- shared dictionary %-%-%- %*/(.-)/%* %-%-%- ")
    check(section, "section found in gw_ffi.h")
    local lua = read("lua/gw/shared.lua")
    local cdef = lua:match("ffi%.cdef%s*%[%[(.-)%]%]")
    check(cdef, "cdef found in shared.lua")
    if section and cdef then
        eq(normalize(cdef), normalize(section), "declarations identical")
        local exact = "/* --- shared dictionary --- */" .. section:gsub("%s+$", "")
        check(cdef:find(exact, 1, true),
              "byte-identical to the header section")
    end
end)

for _, name in ipairs(order) do
    C.gw_test_shdict_reset(1024 * 1024, 4, 1)
    current = name
    local before = failures
    local ok, err = xpcall(cases[name], debug.traceback)
    if not ok then
        failures = failures + 1
        io.stderr:write("[" .. name .. "] raised: " .. tostring(err) .. "\n")
    end
    print((failures == before and "ok   " or "FAIL ") .. name)
end
print(("%d checks, %d failures"):format(checks, failures))
if failures > 0 then
    error("shared_ffi.lua: " .. failures .. " failure(s)", 0)
end
