-- pieces-gateway: the shared dictionary for policies (host.shared, r.shared), over the C FFI.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Provides: get/set/add/incr/delete/keys, window_incr (the rate limiter's atomic check and
--           increment) and the replicated maps map_add/map_delete/map_version/map_items,
--           called with method syntax (shared:get(key)), as docs/policy-api.md "Shared
--           dictionary" specifies. Values keep their Lua type (number or string); TTLs are
--           seconds as floats, nil or 0 meaning no expiry. A map is stored as the keys
--           "map:<map>:<field>" plus the counter "map:<map>" (its version); the Redis store
--           (gw.store) mirrors its maps into the same keys, so map reads are always local.
-- Uses:     ffi.C.gw_ffi_shdict_* (src/ffi_shdict.c, declared in src/gw_ffi.h) on the
--           process-wide C dictionary, which survives Lua VM reloads.
-- Never:    yields, allocates per call on the hot path (get/set/incr reuse module buffers; only
--           values over 4 KiB and keys() allocate), or raises on runtime conditions: those
--           return nil, err. Only misuse raises (a key, value, delta, init, ttl or max of the
--           wrong type, or a negative ttl/max).
-- Errors:   "empty key", "key too long" (> 65535 bytes), "exists" (add), "not found" (incr
--           without init), "not a number" (incr on a string), "no memory" (larger than a
--           shard, or malloc failed), "no shared dict" (the host did not install one).

local ffi = require "ffi"
require "gw.ffi" -- declares the seam's constants (C.GW_FFI_*)

local C = ffi.C
local ffi_new = ffi.new
local ffi_string = ffi.string
local error = error
local floor = math.floor
local tonumber = tonumber
local tostring = tostring
local type = type

local ok, new_tab = pcall(require, "table.new")
if not ok then
    new_tab = function() return {} end
end

ffi.cdef[[
/* --- shared dictionary --- */
/* The process-wide dictionary (src/shdict.h). Status: 0, or a negative GW_FFI_E* (the
 * GW_SHDICT_* of shdict.h). Value type GW_FFI_TNUMBER (num) or GW_FFI_TSTRING (bytes). get
 * copies a string into buf (capacity *len) and sets *len to its length; GW_FFI_ENOBUFS sets
 * *len to the size needed: retry with a bigger buf. keys writes each key as a 2-byte
 * little-endian length then its bytes, sets *len to the bytes written and returns the number
 * of keys (max 0 = no limit); GW_FFI_ENOBUFS as for get. */
int gw_ffi_shdict_get(const char *key, size_t key_len, int *type, double *num, char *buf,
                      size_t *len);
int gw_ffi_shdict_set(const char *key, size_t key_len, int type, double num, const char *str,
                      size_t str_len, double ttl);
int gw_ffi_shdict_add(const char *key, size_t key_len, int type, double num, const char *str,
                      size_t str_len, double ttl);
int gw_ffi_shdict_incr(const char *key, size_t key_len, double delta, int has_init,
                       double init, double ttl, double *out);
int gw_ffi_shdict_delete(const char *key, size_t key_len);
int gw_ffi_shdict_keys(const char *prefix, size_t prefix_len, int max, unsigned char *buf,
                       size_t *len);
/* Sliding-window check-and-increment of n rules as one atomic step (gw_shdict_window_incr):
 * keys holds 2n strings (each rule's current, then previous counter) with their lengths in
 * klens; args 3n numbers (weight, limit, ttl of each rule); counts gets 2n numbers (each rule's
 * current and previous count before the call). 1 admitted (every current counter + 1),
 * 0 rejected (nothing changed), or a negative GW_SHDICT_* status. */
int gw_ffi_shdict_window_incr(int n, const char **keys, const size_t *klens, const double *args,
                              double *counts);
]]

local T_NUMBER = C.GW_FFI_TNUMBER
local KEY_MAX = 65535
local E_NOT_FOUND = C.GW_FFI_ENOENT
local E_EXISTS = C.GW_FFI_EEXIST
local E_TOO_SMALL = C.GW_FFI_ENOBUFS
local WINDOW_MAX = 8
local ERRORS = {
    [C.GW_FFI_ENOENT] = "not found",
    [C.GW_FFI_EEXIST] = "exists",
    [C.GW_FFI_ENOMEM] = "no memory",
    [C.GW_FFI_EDOM] = "not a number",
    [C.GW_FFI_ENOBUFS] = "buffer too small",
    [C.GW_FFI_EKEYREJECTED] = "bad key",
    [C.GW_FFI_EINVAL] = "invalid argument",
    [C.GW_FFI_ENODEV] = "no shared dict",
}
local DEFAULT_KEYS_MAX = 1024
local BUF_SIZE = 4096
local KEYS_BUF_KEEP = 65536 -- a keys() buffer up to this size is kept for the next call

-- Scratch space reused by every call of this VM (one VM per worker thread; no call yields).
local buf = ffi_new("char[?]", BUF_SIZE)
local keys_buf = ffi_new("unsigned char[?]", BUF_SIZE)
local keys_buf_size = BUF_SIZE
local type_out = ffi_new("int[1]")
local num_out = ffi_new("double[1]")
local len_out = ffi_new("size_t[1]")
local win_keys = ffi_new("const char *[?]", 2 * WINDOW_MAX)
local win_lens = ffi_new("size_t[?]", 2 * WINDOW_MAX)
local win_args = ffi_new("double[?]", 3 * WINDOW_MAX)
local win_counts = ffi_new("double[?]", 2 * WINDOW_MAX)

local _M = {}

local function errstr(rc)
    return ERRORS[rc] or ("error " .. tostring(rc))
end

-- Raise at the policy's call site: level 3 from an API function, 4 from a check_* helper.
local function misuse(fname, what, v, level)
    error("bad argument to 'shared:" .. fname .. "' (" .. what .. " expected, got "
          .. type(v) .. ")", level)
end

-- The key as a string, or nil plus an error for a key the dictionary cannot hold.
local function check_key(key, fname)
    local t = type(key)
    if t == "number" then
        key = tostring(key)
    elseif t ~= "string" then
        misuse(fname, "string key", key, 4)
    end
    local n = #key
    if n == 0 then
        return nil, "empty key"
    end
    if n > KEY_MAX then
        return nil, "key too long"
    end
    return key
end

local function check_ttl(ttl, fname)
    if ttl == nil then
        return 0
    end
    if type(ttl) ~= "number" or ttl ~= ttl or ttl < 0 then -- ttl ~= ttl: NaN
        misuse(fname, "ttl >= 0 (seconds)", ttl, 4)
    end
    return ttl
end

local function check_value(value, fname)
    local t = type(value)
    if t ~= "string" and t ~= "number" then
        misuse(fname, "string or number value", value, 4)
    end
end

-- A string value longer than the scratch buffer: allocate what C asked for and retry (the
-- value may change between the two calls).
local function get_big(key)
    while true do
        local big = ffi_new("char[?]", tonumber(len_out[0]))
        local rc = C.gw_ffi_shdict_get(key, #key, type_out, num_out, big, len_out)
        if rc == 0 then
            if type_out[0] == T_NUMBER then
                return num_out[0]
            end
            return ffi_string(big, len_out[0])
        end
        if rc == E_NOT_FOUND then
            return nil
        end
        if rc ~= E_TOO_SMALL then
            return nil, errstr(rc)
        end
    end
end

-- shared:get(key) -> value (number or string), nil if absent or expired, or nil, err.
function _M.get(_, key)
    local err
    key, err = check_key(key, "get")
    if not key then
        return nil, err
    end
    len_out[0] = BUF_SIZE
    local rc = C.gw_ffi_shdict_get(key, #key, type_out, num_out, buf, len_out)
    if rc == 0 then
        if type_out[0] == T_NUMBER then
            return num_out[0]
        end
        return ffi_string(buf, len_out[0])
    end
    if rc == E_NOT_FOUND then
        return nil
    end
    if rc == E_TOO_SMALL then
        return get_big(key)
    end
    return nil, errstr(rc)
end

local function store(add, key, value, ttl)
    if type(value) == "number" then
        if add then
            return C.gw_ffi_shdict_add(key, #key, 1, value, nil, 0, ttl)
        end
        return C.gw_ffi_shdict_set(key, #key, 1, value, nil, 0, ttl)
    end
    if add then
        return C.gw_ffi_shdict_add(key, #key, 2, 0, value, #value, ttl)
    end
    return C.gw_ffi_shdict_set(key, #key, 2, 0, value, #value, ttl)
end

-- shared:set(key, value, ttl) -> true, or nil, err.
function _M.set(_, key, value, ttl)
    local err
    key, err = check_key(key, "set")
    if not key then
        return nil, err
    end
    check_value(value, "set")
    local rc = store(false, key, value, check_ttl(ttl, "set"))
    if rc == 0 then
        return true
    end
    return nil, errstr(rc)
end

-- shared:add(key, value, ttl) -> true, false, "exists" if present, or nil, err.
function _M.add(_, key, value, ttl)
    local err
    key, err = check_key(key, "add")
    if not key then
        return nil, err
    end
    check_value(value, "add")
    local rc = store(true, key, value, check_ttl(ttl, "add"))
    if rc == 0 then
        return true
    end
    if rc == E_EXISTS then
        return false, "exists"
    end
    return nil, errstr(rc)
end

-- shared:incr(key, delta, init, ttl) -> new value, or nil, err. An existing key keeps its TTL;
-- a missing one is created as init + delta with ttl when init is given, else nil, "not found".
function _M.incr(_, key, delta, init, ttl)
    local err
    key, err = check_key(key, "incr")
    if not key then
        return nil, err
    end
    if type(delta) ~= "number" then
        misuse("incr", "number delta", delta, 3)
    end
    local has_init = 1
    if init == nil then
        has_init, init = 0, 0
    elseif type(init) ~= "number" then
        misuse("incr", "number or nil init", init, 3)
    end
    ttl = check_ttl(ttl, "incr")
    local rc = C.gw_ffi_shdict_incr(key, #key, delta, has_init, init, ttl, num_out)
    if rc == 0 then
        return num_out[0]
    end
    return nil, errstr(rc)
end

-- shared:delete(key) -> true (also when the key was absent), or nil, err.
function _M.delete(_, key)
    local err
    key, err = check_key(key, "delete")
    if not key then
        return nil, err
    end
    local rc = C.gw_ffi_shdict_delete(key, #key)
    if rc == 0 or rc == E_NOT_FOUND then
        return true
    end
    return nil, errstr(rc)
end

local function unpack_keys(b, count)
    local out = new_tab(count, 0)
    local pos = 0
    for i = 1, count do
        local n = b[pos] + b[pos + 1] * 256
        out[i] = ffi_string(b + pos + 2, n)
        pos = pos + 2 + n
    end
    return out
end

local function check_max(max)
    if max == nil then
        return DEFAULT_KEYS_MAX
    end
    if type(max) ~= "number" or max < 0 or max ~= floor(max) then -- NaN fails the last
        misuse("keys", "integer max >= 0", max, 4)
    end
    return max > 0x7fffffff and 0 or max
end

-- shared:keys(prefix, max) -> array of unexpired keys starting with prefix (nil = all), at most
-- max (default 1024, 0 = no limit), in no particular order; or nil, err.
function _M.keys(_, prefix, max)
    if prefix == nil then
        prefix = ""
    elseif type(prefix) == "number" then
        prefix = tostring(prefix)
    elseif type(prefix) ~= "string" then
        misuse("keys", "string or nil prefix", prefix, 3)
    end
    max = check_max(max)
    local b, size = keys_buf, keys_buf_size
    while true do
        len_out[0] = size
        local n = C.gw_ffi_shdict_keys(prefix, #prefix, max, b, len_out)
        if n >= 0 then
            return unpack_keys(b, n)
        end
        if n ~= E_TOO_SMALL then
            return nil, errstr(n)
        end
        size = floor(tonumber(len_out[0]) * 1.25) + 64 -- slack: keys may appear meanwhile
        b = ffi_new("unsigned char[?]", size)
        if size <= KEYS_BUF_KEEP then
            keys_buf, keys_buf_size = b, size
        end
    end
end

-- The argument checks, for gw.store (the Redis store raises exactly as this one does).
_M._check_key, _M._check_ttl, _M._check_value, _M._check_max = check_key, check_ttl,
    check_value, check_max
_M._misuse = misuse

-- shared:window_incr(rules) -> true (admitted: every rule's key counted one more), false
-- (rejected: nothing counted), or nil, err. rules: an array of 1..8 tables { key = the current
-- window's counter, prev = the previous window's counter, weight = the previous count's weight,
-- limit = n, ttl = seconds for a counter created now }; a rule passes when
-- prev_count * weight + count + 1 <= limit, and the call admits only when all pass. Each rule
-- gets .count and .prev_count (the counters before the call). One atomic step for all rules.
function _M.window_incr(_, rules)
    local n = type(rules) == "table" and #rules or 0
    if n < 1 or n > WINDOW_MAX then
        misuse("window_incr", "array of 1.." .. WINDOW_MAX .. " rules", rules, 3)
    end
    for i = 1, n do
        local w = rules[i]
        local key, prev = w.key, w.prev
        if type(key) ~= "string" or type(prev) ~= "string" or type(w.weight) ~= "number"
            or type(w.limit) ~= "number" or type(w.ttl) ~= "number" then
            misuse("window_incr", "rules with string key/prev and number weight/limit/ttl",
                w, 3)
        end
        local j = 2 * (i - 1)
        win_keys[j], win_lens[j] = key, #key
        win_keys[j + 1], win_lens[j + 1] = prev, #prev
        win_args[3 * i - 3], win_args[3 * i - 2], win_args[3 * i - 1] = w.weight, w.limit, w.ttl
    end
    local rc = C.gw_ffi_shdict_window_incr(n, win_keys, win_lens, win_args, win_counts)
    if rc < 0 then
        return nil, errstr(rc)
    end
    for i = 1, n do
        local w = rules[i]
        w.count, w.prev_count = win_counts[2 * i - 2], win_counts[2 * i - 1]
    end
    return rc == 1
end

-- ---------- replicated maps (local half) ----------

local MAP = "map:"

local function check_map(map, fname)
    if type(map) ~= "string" or map == "" or map:find(":", 1, true) then
        misuse(fname, "map name (a non-empty string without ':')", map, 4)
    end
end

local function check_field(field, fname)
    if type(field) ~= "string" or field == "" then
        misuse(fname, "non-empty string field", field, 4)
    end
end

-- shared:map_add(map, field, value) -> true, false, "exists", or nil, err. value: a string.
function _M.map_add(self, map, field, value)
    check_map(map, "map_add")
    check_field(field, "map_add")
    if type(value) ~= "string" then
        misuse("map_add", "string value", value, 3)
    end
    local added, err = _M.add(self, MAP .. map .. ":" .. field, value)
    if added then
        _M.incr(self, MAP .. map, 1, 0)
    end
    return added, err
end

-- shared:map_delete(map, field) -> true (removed), false (it was absent), or nil, err.
function _M.map_delete(self, map, field)
    check_map(map, "map_delete")
    check_field(field, "map_delete")
    local key = MAP .. map .. ":" .. field
    local rc = C.gw_ffi_shdict_delete(key, #key)
    if rc == E_NOT_FOUND then
        return false
    end
    if rc ~= 0 then
        return nil, errstr(rc)
    end
    _M.incr(self, MAP .. map, 1, 0)
    return true
end

-- The version key of each map name seen ("map:<map>"): read on every request (the ban list),
-- so it is not rebuilt each time.
local version_keys = {}

-- shared:map_version(map) -> a number that changes whenever the map changed (0: never).
function _M.map_version(self, map)
    local key = version_keys[map]
    if key == nil then
        check_map(map, "map_version")
        key = MAP .. map
        version_keys[map] = key
    end
    return _M.get(self, key) or 0
end

-- shared:map_items(map) -> { [field] = value, ... } (a copy), or nil, err.
function _M.map_items(self, map)
    check_map(map, "map_items")
    local prefix = MAP .. map .. ":"
    local keys, err = _M.keys(self, prefix, 0)
    if not keys then
        return nil, err
    end
    local out = {}
    for i = 1, #keys do
        local v = _M.get(self, keys[i])
        if type(v) == "string" then
            out[keys[i]:sub(#prefix + 1)] = v
        end
    end
    return out
end

return _M
