-- pieces-gateway: evaluates gateway.lua, validates and normalises it.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- gateway.lua runs in a sandbox and receives one argument, `env`, whose readers apply the
-- seed's rules (empty = unset, strings trimmed, integers parsed from the raw value, Go's
-- boolean spellings). A value that cannot be parsed falls back to the default with a warning
-- line naming the variable: nothing becomes something else silently.
local gwffi = require "gw.ffi"

local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs
local floor = math.floor
local format = string.format

local _M = {}

local function trim(s)
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- env readers; `warn` receives each warning line
function _M.env_readers(warn, getenv)
    getenv = getenv or gwffi.env
    local env = {}

    function env.str(name, default)
        local v = getenv(name)
        if v == nil then
            return default
        end
        v = trim(v)
        if v == "" then
            return default
        end
        return v
    end

    local function typed(parse, what)
        return function(name, default)
            local v = getenv(name)
            if v == nil or v == "" then
                return default
            end
            local parsed = parse(v)
            if parsed == nil then
                warn(format("Warning: invalid %s value for %s: '%s', using default %s",
                    what, name, v, tostring(default)))
                return default
            end
            return parsed
        end
    end

    env.int = typed(gwffi.parse_int, "integer")
    env.num = typed(gwffi.parse_num, "number")
    env.bool = typed(gwffi.parse_bool, "boolean")

    function env.list(name, default)
        local v = getenv(name)
        if v == nil or trim(v) == "" then
            return default
        end
        local out = {}
        for item in (v .. ","):gmatch("([^,]*),") do
            item = trim(item)
            if item ~= "" then
                out[#out + 1] = item
            end
        end
        return out
    end

    return env
end

-- API_PREFIX: a leading '/' is added, trailing '/'s are removed ("/" becomes "").
function _M.normalize_prefix(p, warn)
    local out = p
    if out ~= "" and out:sub(1, 1) ~= "/" then
        out = "/" .. out
        warn("Warning: APIPrefix should start with /, auto fixed to: " .. out)
    end
    if out:sub(-1) == "/" then
        out = out:gsub("/+$", "")
        warn("Warning: APIPrefix should not end with /, auto fixed to: " .. out)
    end
    return out
end

local function fail(path, key, msg)
    error(format("%s: %s %s", path, key, msg), 0)
end

local function check(path, key, v, kind, min, max)
    if kind == "string" then
        if type(v) ~= "string" then
            fail(path, key, "must be a string (got " .. type(v) .. ")")
        end
    elseif kind == "boolean" then
        if type(v) ~= "boolean" then
            fail(path, key, "must be a boolean (got " .. type(v) .. ")")
        end
    else
        if type(v) ~= "number" or v ~= v or (kind == "integer" and floor(v) ~= v) then
            fail(path, key, format("must be a%s %s (got %s)", kind == "integer" and "n" or "",
                kind, tostring(v)))
        end
        if (min and v < min) or (max and v > max) then
            fail(path, key, format("must be between %s and %s (got %s)", tostring(min),
                tostring(max or "inf"), tostring(v)))
        end
    end
    return v
end

local SCHEMA = {
    { "listen.host", "string" },
    { "listen.port", "integer", 1, 65535 },
    { "workers", "integer", 0, 1024 },
    { "api_prefix", "string" },
    { "policies_dir", "string" },
    { "assets_dir", "string" },
    { "log_file", "string" },
    { "debug", "boolean" },
    { "access_log", "boolean" },
    { "access_log_format", "string" },
    { "metrics.enabled", "boolean" },
    { "limits.max_connections", "integer", 1, 10000000 },
    { "limits.max_header_size", "integer", 256, 1048576 },
    { "limits.max_body_size", "integer", 0, 1073741824 },
    { "limits.header_timeout", "number", 0.001, 3600 },
    { "limits.keepalive_timeout", "number", 0.001, 86400 },
    { "limits.shutdown_grace", "number", 0, 3600 },
    { "limits.request_timeout", "number", 0, 86400 },
    { "limits.stream_timeout", "number", 0, 86400 },
    { "limits.shared_dict_size", "integer", 65536, 17179869184 },
    { "upstream.gpt", "string" },
    { "upstream.vertex", "string" },
    { "upstream.ca_file", "string" },
    { "upstream.insecure", "boolean" },
    { "upstream.min_pool_size", "integer", 1, 1000 },
    { "upstream.max_pool_size", "integer", 1, 1000 },
    { "upstream.scale_interval", "number", 0.01, 86400 },
    { "upstream.max_retries", "integer", -1000, 100 },
    { "upstream.timeout", "number", 0, 86400 },
}

local DEFAULTS = {
    listen = { host = "0.0.0.0", port = 8787 },
    workers = 0, api_prefix = "/v1", policies_dir = "policies", assets_dir = "assets",
    log_file = "", debug = false, access_log = true, access_log_format = "text",
    limits = {
        max_connections = 10000, max_header_size = 16384, max_body_size = 8388608,
        header_timeout = 10, keepalive_timeout = 75, shutdown_grace = 30,
        request_timeout = 30, stream_timeout = 300, shared_dict_size = 67108864,
    },
    upstream = {
        gpt = "runtime-native-io-gpt-inference-grpc-service-lmuw6mcn3q-ul.a.run.app:443",
        vertex = "runtime-native-io-vertex-inference-grpc-service-lmuw6mcn3q-ul.a.run.app:443",
        ca_file = "", insecure = false, min_pool_size = 5, max_pool_size = 20,
        scale_interval = 30, max_retries = 3, timeout = 30,
    },
    trusted_proxies = { "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
        "192.168.0.0/16", "fc00::/7" },
    metrics = { enabled = true, allow = { "127.0.0.0/8", "::1/128", "10.0.0.0/8",
        "172.16.0.0/12", "192.168.0.0/16", "fc00::/7" } },
    policies = {},
}

local KNOWN_TOP = {}
for k in pairs(DEFAULTS) do
    KNOWN_TOP[k] = true
end

local function lookup(t, dotted)
    local a, b = dotted:match("^([^.]+)%.?(.*)$")
    if b == "" then
        return t[a]
    end
    return t[a] and t[a][b]
end

local function fill(t, d)
    for k, v in pairs(d) do
        if t[k] == nil then
            t[k] = v
        elseif type(v) == "table" and type(t[k]) == "table" and #v == 0 then
            fill(t[k], v)
        end
    end
end

local function validate_policies(path, list)
    if type(list) ~= "table" then
        fail(path, "policies", "must be a list")
    end
    local seen = {}
    for i, p in ipairs(list) do
        local key = format("policies[%d]", i)
        if type(p) ~= "table" or type(p.name) ~= "string" or not p.name:match("^[%w_%-]+$") then
            fail(path, key, "must be a table with a name made of letters, digits, _ or -")
        end
        if seen[p.name] then
            fail(path, key, "repeats policy '" .. p.name .. "'")
        end
        seen[p.name] = true
        if p.conf ~= nil and type(p.conf) ~= "table" then
            fail(path, key .. ".conf", "must be a table")
        end
        p.conf = p.conf or {}
    end
end

-- Load and validate; returns the flattened table the C core reads. Raises "file: message".
function _M.load(path, quiet, getenv)
    local warn = function(msg)
        if not quiet then
            gwffi.log(gwffi.LOG_WARN, msg)
        end
    end
    local chunk, err = loadfile(path)
    if not chunk then
        error(err, 0)
    end
    local sandbox = { string = string, table = table, math = math, tostring = tostring,
        tonumber = tonumber, ipairs = ipairs, pairs = pairs, type = type, error = error,
        assert = assert, select = select, unpack = unpack }
    setfenv(chunk, sandbox)
    local ok, cfg = pcall(chunk, _M.env_readers(warn, getenv))
    if not ok then
        error(tostring(cfg), 0)
    end
    if type(cfg) ~= "table" then
        error(path .. ": must return a table", 0)
    end
    for k in pairs(cfg) do
        if not KNOWN_TOP[k] then
            fail(path, tostring(k), "is not a known setting")
        end
    end
    for k, v in pairs(DEFAULTS) do -- a section or list given as a scalar: say so, not crash
        if type(v) == "table" and k ~= "policies" and cfg[k] ~= nil and type(cfg[k]) ~= "table"
        then
            fail(path, k, "must be a table (got " .. type(cfg[k]) .. ")")
        end
    end
    fill(cfg, DEFAULTS)
    local m = cfg.metrics
    if m.enabled == "on" or m.enabled == "off" then -- METRICS=on|off
        m.enabled = m.enabled == "on"
    end
    for _, s in ipairs(SCHEMA) do
        check(path, s[1], lookup(cfg, s[1]), s[2], s[3], s[4])
    end
    if cfg.upstream.min_pool_size > cfg.upstream.max_pool_size then
        fail(path, "upstream.min_pool_size", "must not exceed upstream.max_pool_size")
    end
    if cfg.access_log_format ~= "text" and cfg.access_log_format ~= "json" then
        fail(path, "access_log_format", "must be \"text\" or \"json\" (got \""
            .. cfg.access_log_format .. "\")")
    end
    if type(m.allow) ~= "table" then
        fail(path, "metrics.allow", "must be a list of IPs or CIDRs")
    end
    validate_policies(path, cfg.policies)
    cfg.api_prefix = _M.normalize_prefix(cfg.api_prefix, warn)
    -- relative policy and asset directories are relative to gateway.lua, not to the cwd
    local base = path:match("^(.*)/[^/]*$")
    if base and base ~= "" and base ~= "." then
        for _, k in ipairs({ "policies_dir", "assets_dir" }) do
            if cfg[k]:sub(1, 1) ~= "/" then
                cfg[k] = base .. "/" .. cfg[k]
            end
        end
    end
    cfg.listen_host, cfg.port = cfg.listen.host, cfg.listen.port
    return cfg
end

return _M
