-- pieces-gateway: the shared dictionary for policies (host.shared, r.shared), over the C FFI.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Provides: get/set/add/incr/delete/keys, called with method syntax (shared:get(key)), as
--           docs/policy-api.md "Shared dictionary" specifies. Values keep their Lua type
--           (number or string); TTLs are seconds as floats, nil or 0 meaning no expiry.
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
]]

local T_NUMBER = C.GW_FFI_TNUMBER
local KEY_MAX = 65535
local E_NOT_FOUND = C.GW_FFI_ENOENT
local E_EXISTS = C.GW_FFI_EEXIST
local E_TOO_SMALL = C.GW_FFI_ENOBUFS
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

return _M
