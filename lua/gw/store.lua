-- pieces-gateway: the Redis-backed shared store: host.shared / r.shared when SHARED_STORE is
-- redis://... Same calls and results as gw.shared (docs/policy-api.md "Shared dictionary").
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Waiting: inside a request's phase, a call sends its command through this worker's connection
-- (gw_ffi_store_send) and yields WAIT up to the host, which parks the request's coroutine;
-- C resumes it when the answer came, the per-call timeout passed or the connection failed,
-- and the call reads the answer (gw_ffi_store_reply) and returns: straight-line code for the
-- policy. Outside a request (a policy's new()) nothing can wait: the calls use this process's
-- dictionary (gw.shared).
-- Failures (store down, timeout, an error reply) follow SHARED_STORE_ON_ERROR: "local" and
-- "open" run the same call on this process's dictionary (for window_incr, "open" admits and
-- only counts); "closed" raises UNAVAILABLE, which the host answers with
-- 503 store_unavailable.
-- Layout in Redis: key K is "gw:K"; numbers are stored as decimal text, strings with a "="
-- in front (so get returns the type that was set). Rate limits run as one server-side script
-- per request (EVALSHA; the body is sent on NOSCRIPT). Replicated maps (bans) are read from the
-- local copy the main thread keeps in sync (src/store_mirror.c); changes are applied locally
-- at once and queued for Redis, so neither a ban check nor a ban waits for a round trip.
local ffi = require "ffi"
require "gw.ffi" -- the seam's constants (C.GW_FFI_*)
local lshared = require "gw.shared"

local C = ffi.C
local ffi_string = ffi.string
local co_running, co_yield = coroutine.running, coroutine.yield
local format, byte = string.format, string.byte
local tonumber, tostring, type, error, huge = tonumber, tostring, type, error, math.huge
local ceil = math.ceil

ffi.cdef [[
int gw_ffi_store_send(void *req, int script, int argc, const char **argv, const size_t *lens);
int gw_ffi_store_reply(int i, const char **p, size_t *len, double *num);
int gw_ffi_store_reply_ints(double *out, int max);
int gw_ffi_store_window(void *req, int flags, int n, const char **keys, const size_t *klens,
                        const double *nums);
int gw_ffi_map_push(int add, const char *map, size_t mlen, const char *field, size_t flen,
                    const char *value, size_t vlen);
int gw_ffi_map_watch(const char *map, size_t mlen);
]]

local _M = {}

_M.WAIT = {} -- yielded to the host: "park me until C resumes"
_M.UNAVAILABLE = setmetatable({}, {
    __tostring = function() return "shared store unavailable" end,
})

local PREFIX = "gw:"
local R_TIMEOUT, R_DOWN, R_NIL = C.GW_FFI_REPLY_TIMEOUT, C.GW_FFI_REPLY_DOWN, C.GW_FFI_REPLY_NIL
local R_INT, R_STR, R_ARR = C.GW_FFI_REPLY_INTEGER, C.GW_FFI_REPLY_STRING, C.GW_FFI_REPLY_ARRAY
local R_ERR, R_STATUS = C.GW_FFI_REPLY_ERROR, C.GW_FFI_REPLY_STATUS
local S_INCR, S_KEYS = C.GW_FFI_SCRIPT_INCR, C.GW_FFI_SCRIPT_KEYS
local EVAL = C.GW_FFI_SCRIPT_EVAL
local ARGS_MAX = 60
local EQ = byte("=")
local WAIT, UNAVAILABLE = _M.WAIT, _M.UNAVAILABLE

local argv = ffi.new("const char *[?]", ARGS_MAX)
local lens = ffi.new("size_t[?]", ARGS_MAX)
local rp = ffi.new("const char *[1]")
local rl = ffi.new("size_t[1]")
local rn = ffi.new("double[1]")
local ints = ffi.new("double[?]", ARGS_MAX)
local WINDOW_MAX = 8
local win_keys = ffi.new("const char *[?]", 2 * WINDOW_MAX)
local win_klens = ffi.new("size_t[?]", 2 * WINDOW_MAX)
local win_nums = ffi.new("double[?]", 3 * WINDOW_MAX)

local check_key, check_ttl, check_value = lshared._check_key, lshared._check_ttl,
    lshared._check_value
local misuse = lshared._misuse

-- Set by new(): the host's view of the running request, the SHARED_STORE_ON_ERROR mode.
local ctl, mode
local watched = {}

local function arg(i, s)
    argv[i], lens[i] = s, #s
end

-- The answer (top-level type) of argv[0..n-1] sent for the running request, after waiting.
-- No "return C.f(...)" here and in reply_elem: a tail call of an FFI function ends the trace
-- ("NYI: return to lower frame"), and the code after the wait would run interpreted.
local function send_wait(script, n)
    if C.gw_ffi_store_send(ctl.req, script, n, argv, lens) ~= 0 then
        return R_DOWN
    end
    co_yield(WAIT)
    local t = C.gw_ffi_store_reply(0, rp, rl, rn)
    return t
end

local function is_noscript(t)
    return t == R_ERR and rl[0] >= 8 and ffi_string(rp[0], 8) == "NOSCRIPT"
end

local function can_wait()
    local co = ctl.co
    return co ~= nil and co_running() == co
end

-- A failed call: closed raises (the host answers 503), open/local run it locally.
local function fallback(fname, ...)
    if mode == "closed" then
        error(UNAVAILABLE, 0)
    end
    return lshared[fname](lshared, ...)
end

local function encode(v)
    if type(v) == "number" then
        return format("%.17g", v)
    end
    return "=" .. v
end

local function decode(p, n)
    if n > 0 and p[0] == EQ then
        return ffi_string(p + 1, n - 1)
    end
    local s = ffi_string(p, n)
    return tonumber(s) or s
end

local function ttl_ms(ttl)
    if ttl <= 0 or ttl >= 1e9 then
        return "0"
    end
    return format("%d", ceil(ttl * 1000))
end

local function reply_elem(i)
    local t = C.gw_ffi_store_reply(i, rp, rl, rn)
    return t
end

local api = {}

function api.get(_, key)
    local err
    key, err = check_key(key, "get")
    if not key then
        return nil, err
    end
    if not can_wait() then
        return lshared:get(key)
    end
    arg(0, "GET")
    arg(1, PREFIX .. key)
    local t = send_wait(-1, 2)
    if t == R_NIL then
        return nil
    elseif t == R_STR then
        return decode(rp[0], tonumber(rl[0]))
    end
    return fallback("get", key)
end

local function store(fname, key, value, ttl)
    local err
    key, err = check_key(key, fname)
    if not key then
        return nil, err
    end
    check_value(value, fname)
    ttl = check_ttl(ttl, fname)
    if not can_wait() then
        return lshared[fname](lshared, key, value, ttl)
    end
    arg(0, "SET")
    arg(1, PREFIX .. key)
    arg(2, encode(value))
    local n = 3
    if ttl > 0 and ttl < 1e9 then
        arg(3, "PX")
        arg(4, ttl_ms(ttl))
        n = 5
    end
    if fname == "add" then
        arg(n, "NX")
        n = n + 1
    end
    local t = send_wait(-1, n)
    if t == R_STATUS then
        return true
    elseif t == R_NIL and fname == "add" then
        return false, "exists"
    end
    return fallback(fname, key, value, ttl)
end

function api.set(_, key, value, ttl)
    return store("set", key, value, ttl)
end

function api.add(_, key, value, ttl)
    return store("add", key, value, ttl)
end

local function send_incr(key, delta, init, ttl)
    arg(0, "1")
    arg(1, PREFIX .. key)
    arg(2, format("%.17g", delta))
    arg(3, init == nil and "0" or "1")
    arg(4, format("%.17g", init or 0))
    arg(5, ttl_ms(ttl))
end

function api.incr(_, key, delta, init, ttl)
    local err
    key, err = check_key(key, "incr")
    if not key then
        return nil, err
    end
    if type(delta) ~= "number" then
        misuse("incr", "number delta", delta, 3)
    elseif init ~= nil and type(init) ~= "number" then
        misuse("incr", "number or nil init", init, 3)
    end
    ttl = check_ttl(ttl, "incr")
    if not can_wait() then
        return lshared:incr(key, delta, init, ttl)
    end
    send_incr(key, delta, init, ttl)
    local t = send_wait(S_INCR, 6)
    if is_noscript(t) then
        send_incr(key, delta, init, ttl)
        t = send_wait(S_INCR + EVAL, 6)
    end
    if t == R_ARR and reply_elem(1) == R_INT then
        local status = rn[0]
        if status == 1 and reply_elem(2) == R_STR then
            return tonumber(ffi_string(rp[0], rl[0]))
        elseif status == 0 then
            return nil, "not found"
        elseif status == 2 then
            return nil, "not a number"
        end
    end
    return fallback("incr", key, delta, init, ttl)
end

function api.delete(_, key)
    local err
    key, err = check_key(key, "delete")
    if not key then
        return nil, err
    end
    if not can_wait() then
        return lshared:delete(key)
    end
    arg(0, "DEL")
    arg(1, PREFIX .. key)
    if send_wait(-1, 2) == R_INT then
        return true
    end
    return fallback("delete", key)
end

local function glob_escape(s)
    return (s:gsub("[%*%?%[%]\\]", "\\%0"))
end

function api.keys(_, prefix, max)
    if prefix == nil then
        prefix = ""
    elseif type(prefix) == "number" then
        prefix = tostring(prefix)
    elseif type(prefix) ~= "string" then
        misuse("keys", "string or nil prefix", prefix, 3)
    end
    max = lshared._check_max(max)
    if not can_wait() then
        return lshared:keys(prefix, max)
    end
    local pattern = glob_escape(PREFIX .. prefix) .. "*"
    local limit = format("%d", max)
    for attempt = 0, 1 do
        arg(0, "0")
        arg(1, pattern)
        arg(2, limit)
        local t = send_wait(S_KEYS + (attempt == 1 and EVAL or 0), 3)
        if t == R_ARR then
            local out = {}
            for i = 1, rn[0] do
                if reply_elem(i) == R_STR and rl[0] > #PREFIX then
                    out[#out + 1] = ffi_string(rp[0] + #PREFIX, rl[0] - #PREFIX)
                end
            end
            return out
        elseif not is_noscript(t) then
            break
        end
    end
    return fallback("keys", prefix, max)
end

-- The rate limiter's script for the running request, after waiting (as send_wait): C makes
-- the texts (keys with PREFIX, the numbers) from the rules' values, no Lua strings are made.
local function send_window(rules, n, flags)
    for i = 1, n do
        local w = rules[i]
        local cur, prev = w.key, w.prev
        win_keys[2 * i - 2], win_klens[2 * i - 2] = cur, #cur
        win_keys[2 * i - 1], win_klens[2 * i - 1] = prev, #prev
        win_nums[3 * i - 3], win_nums[3 * i - 2], win_nums[3 * i - 1] = w.weight, w.limit, w.ttl
    end
    if C.gw_ffi_store_window(ctl.req, flags, n, win_keys, win_klens, win_nums) ~= 0 then
        return R_DOWN
    end
    co_yield(WAIT)
    local t = C.gw_ffi_store_reply(0, rp, rl, rn)
    return t
end

-- open: count locally and admit, whatever the limits say
local function window_open(rules)
    local saved = {}
    for i = 1, #rules do
        saved[i], rules[i].limit = rules[i].limit, huge
    end
    local ok, err = lshared:window_incr(rules)
    for i = 1, #rules do
        rules[i].limit = saved[i]
    end
    if ok == nil then
        return nil, err
    end
    return true
end

-- { admitted, cur_1, prev_1, ... }: all integers, read in one call
local function window_answer(rules, n)
    if C.gw_ffi_store_reply_ints(ints, 1 + 2 * n) ~= 1 + 2 * n then
        return nil
    end
    for i = 1, n do
        local w = rules[i]
        w.count, w.prev_count = ints[2 * i - 1], ints[2 * i]
    end
    return ints[0] == 1
end

function api.window_incr(_, rules)
    local n = type(rules) == "table" and #rules or 0
    if n < 1 or n > WINDOW_MAX then
        misuse("window_incr", "array of 1..8 rules", rules, 3)
    end
    if not can_wait() then
        return lshared:window_incr(rules)
    end
    for i = 1, n do
        local w = rules[i]
        if type(w.key) ~= "string" or type(w.prev) ~= "string" or type(w.weight) ~= "number"
            or type(w.limit) ~= "number" or type(w.ttl) ~= "number" then
            misuse("window_incr", "rules with string key/prev and number weight/limit/ttl",
                w, 3)
        end
    end
    local t = send_window(rules, n, 0)
    if is_noscript(t) then
        t = send_window(rules, n, EVAL)
    end
    if t == R_ARR and rn[0] == 1 + 2 * n then
        local admitted = window_answer(rules, n)
        if admitted ~= nil then
            return admitted
        end
    end
    if mode == "closed" then
        error(UNAVAILABLE, 0)
    elseif mode == "open" then
        return window_open(rules)
    end
    return lshared:window_incr(rules)
end

-- ---------- replicated maps: local copy (kept in sync by the main thread) ----------

local function watch(map)
    if type(map) == "string" and not watched[map] then
        watched[map] = true
        C.gw_ffi_map_watch(map, #map)
    end
end

function api.map_add(_, map, field, value)
    watch(map)
    local ok, err = lshared:map_add(map, field, value)
    if ok then
        C.gw_ffi_map_push(1, map, #map, field, #field, value, #value)
    end
    return ok, err
end

function api.map_delete(_, map, field)
    watch(map)
    local ok, err = lshared:map_delete(map, field)
    if ok ~= nil then -- also when absent here: another instance's copy may still have it
        C.gw_ffi_map_push(0, map, #map, field, #field, "", 0)
    end
    return ok, err
end

function api.map_version(_, map)
    watch(map)
    return lshared:map_version(map)
end

function api.map_items(_, map)
    watch(map)
    return lshared:map_items(map)
end

-- The store object for a VM. conf: the config's shared_store; host_ctl: a table the host keeps
-- set to { req = <the running request's handle>, co = <its coroutine> } while a phase runs.
function _M.new(conf, host_ctl)
    ctl, mode = host_ctl, conf.on_error or "local"
    watched = {}
    return api
end

-- for specs: the reply types
_M.R = { TIMEOUT = R_TIMEOUT, DOWN = R_DOWN, NIL = R_NIL, INT = R_INT, STR = R_STR,
    ARR = R_ARR, ERR = R_ERR, STATUS = R_STATUS }

return _M
