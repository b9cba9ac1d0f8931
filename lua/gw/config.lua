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
    { "shared_store.url", "string" },
    { "shared_store.timeout_ms", "integer", 1, 60000 },
    { "shared_store.on_error", "string" },
    { "upstream.gpt", "string" },
    { "upstream.vertex", "string" },
    { "upstream.ca_file", "string" },
    { "upstream.insecure", "boolean" },
    { "upstream.min_pool_size", "integer", 1, 1000 },
    { "upstream.max_pool_size", "integer", 1, 1000 },
    { "upstream.scale_interval", "number", 0.01, 86400 },
    { "upstream.max_retries", "integer", -1000, 100 },
    { "upstream.timeout", "number", 0, 86400 },
    { "upstream.connect_timeout", "number", 0.001, 3600 },
    { "breaker.failures", "integer", 1, 1000000 },
    { "breaker.cooldown", "number", 0, 86400 },
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
    shared_store = { url = "", timeout_ms = 50, on_error = "local" },
    upstream = {
        gpt = "runtime-native-io-gpt-inference-grpc-service-lmuw6mcn3q-ul.a.run.app:443",
        vertex = "runtime-native-io-vertex-inference-grpc-service-lmuw6mcn3q-ul.a.run.app:443",
        ca_file = "", insecure = false, min_pool_size = 5, max_pool_size = 20,
        scale_interval = 30, max_retries = 3, timeout = 30, connect_timeout = 5,
    },
    backend_order = { "pieces", "openai" },
    breaker = { failures = 5, cooldown = 30 },
    trusted_proxies = { "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
        "192.168.0.0/16", "fc00::/7" },
    metrics = { enabled = true, allow = { "127.0.0.0/8", "::1/128", "10.0.0.0/8",
        "172.16.0.0/12", "192.168.0.0/16", "fc00::/7" } },
    policies = {},
}

local KNOWN_TOP = { backends = true } -- backends: no default merge (see validate_backends)
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

local STORE_URL = 'must be "", "local" or redis://[[user]:password@]host[:port][/db]'
local ON_ERROR = { open = true, closed = true, ["local"] = true }

local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- SHARED_STORE into { kind = "local" } or { kind = "redis", host, port, user, password, db }.
-- Errors never quote the URL: it may hold the password.
function _M.parse_store_url(url)
    if url == "" or url == "local" then
        return { kind = "local" }
    end
    local rest = url:match("^redis://(.+)$")
    if not rest then
        return nil, STORE_URL
    end
    local auth, hostpart = rest:match("^(.*)@([^@]*)$")
    hostpart = hostpart or rest
    local user, password
    if auth then
        local u, pw = auth:match("^([^:]*):(.*)$")
        user, password = unescape(u or ""), unescape(pw or auth)
    end
    local addr, db = hostpart:match("^([^/]*)/?(.*)$")
    local host, port = addr:match("^%[([%x:.]+)%]:?(%d*)$")
    if not host then
        host, port = addr:match("^([^:]+):?(%d*)$")
    end
    port, db = tonumber(port ~= "" and port or "6379"), tonumber(db ~= "" and db or "0")
    if not host or not port or port < 1 or port > 65535 or not db or db < 0 or db % 1 ~= 0
        or db > 65535 then
        return nil, STORE_URL
    end
    return { kind = "redis", host = host, port = port, db = db,
        user = user ~= "" and user or nil, password = password ~= "" and password or nil }
end

local function check_store(path, st)
    if not ON_ERROR[st.on_error] then
        fail(path, "shared_store.on_error", 'must be "open", "closed" or "local"')
    end
    local parsed, err = _M.parse_store_url(st.url)
    if not parsed then
        fail(path, "shared_store.url", err)
    end
    for k, v in pairs(parsed) do
        st[k] = v
    end
end

-- ---------- backends ----------

local BACKEND_TYPES = { pieces = true, openai = true }
local BACKEND_KEYS = {
    pieces = { type = true, ca_file = true, insecure = true },
    openai = { type = true, base_url = true, api_key = true, models = true, headers = true,
        ca_file = true, insecure = true, max_idle = true },
}

local function trim_all(s)
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- "public" or "public=upstream" strings, or { id = public, model = upstream, encoding = }
local function backend_models(path, key, list)
    if list == nil then
        return {}
    end
    if type(list) ~= "table" then
        fail(path, key, "must be a list")
    end
    local out, seen = {}, {}
    for i, m in ipairs(list) do
        local where = format("%s[%d]", key, i)
        local public, upstream, enc
        if type(m) == "string" then
            public, upstream = m:match("^([^=]*)=(.*)$")
            public, upstream = trim_all(public or m), trim_all(upstream or public or m)
        elseif type(m) == "table" then
            public, upstream, enc = m.id, m.model or m.id, m.encoding
        end
        if type(public) ~= "string" or public == "" or type(upstream) ~= "string"
            or upstream == "" or (enc ~= nil and type(enc) ~= "string") then
            fail(path, where, "must be \"public\", \"public=upstream\" or { id =, model = }")
        end
        if not seen[public] then
            seen[public] = true
            out[#out + 1] = { id = public, model = upstream, encoding = enc }
        end
    end
    return out
end

local function backend_headers(path, key, h)
    local out = {}
    if h == nil then
        return out
    end
    if type(h) ~= "table" then
        fail(path, key, "must be a table of header name -> value")
    end
    for name, value in pairs(h) do
        if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+%-.^_`|~]+$") then
            fail(path, key, "has an invalid header name " .. tostring(name))
        end
        local lname = name:lower()
        if lname == "host" or lname == "content-length" or lname == "authorization"
            or lname == "transfer-encoding" or lname == "connection" then
            fail(path, key, "must not set " .. name .. " (the gateway sets it)")
        end
        if type(value) ~= "string" or value:find("[\r\n%z]") then
            fail(path, key .. "." .. name, "must be a string without CR, LF or NUL")
        end
        out[#out + 1] = { name = name, value = value }
    end
    table.sort(out, function(a, b) return a.name < b.name end)
    return out
end

local function validate_backend(path, cfg, name, b)
    local key = "backends." .. tostring(name)
    if type(name) ~= "string" or not name:match("^[%w_%-]+$") or #name > 31 then
        fail(path, key, "needs a name of at most 31 letters, digits, _ or -")
    end
    if type(b) ~= "table" then
        fail(path, key, "must be a table with a type (\"pieces\" or \"openai\")")
    end
    if not BACKEND_TYPES[b.type] then
        fail(path, key .. ".type", "must be \"pieces\" or \"openai\"")
    end
    for k in pairs(b) do
        if not BACKEND_KEYS[b.type][k] then
            fail(path, key .. "." .. tostring(k), "is not a setting of a " .. b.type .. " backend")
        end
    end
    local out = { name = name, type = b.type, ca_file = b.ca_file or cfg.upstream.ca_file,
        insecure = b.insecure }
    if out.insecure == nil then
        out.insecure = cfg.upstream.insecure
    end
    check(path, key .. ".ca_file", out.ca_file, "string")
    check(path, key .. ".insecure", out.insecure, "boolean")
    if b.type == "openai" then
        out.base_url = b.base_url
        if type(out.base_url) ~= "string" or not out.base_url:match("^https?://[^/]") then
            fail(path, key .. ".base_url", "must be an http:// or https:// URL")
        end
        out.api_key = b.api_key or ""
        check(path, key .. ".api_key", out.api_key, "string")
        out.models = backend_models(path, key .. ".models", b.models)
        out.header_list = backend_headers(path, key .. ".headers", b.headers)
        out.max_idle = b.max_idle or 32
        check(path, key .. ".max_idle", out.max_idle, "integer", 0, 100000)
    end
    return out
end

-- backends (name -> settings) become backend_list, in backend_order first, then by name. An
-- openai backend with an empty base_url is no backend (OPENAI_BASE_URL unset).
local function validate_backends(path, cfg)
    local given = cfg.backends
    if given == nil then
        given = { pieces = { type = "pieces" } }
    end
    if type(given) ~= "table" then
        fail(path, "backends", "must be a table of name -> { type = ... }")
    end
    local by_name, names = {}, {}
    for name, b in pairs(given) do
        if not (type(b) == "table" and b.type == "openai" and (b.base_url or "") == "") then
            by_name[name] = validate_backend(path, cfg, name, b)
            names[#names + 1] = name
        end
    end
    table.sort(names)
    if type(cfg.backend_order) ~= "table" then
        fail(path, "backend_order", "must be a list of backend names")
    end
    local list, placed = {}, {}
    for _, name in ipairs(cfg.backend_order) do
        if by_name[name] and not placed[name] then
            list[#list + 1], placed[name] = by_name[name], true
        end
    end
    for _, name in ipairs(names) do
        if not placed[name] then
            list[#list + 1] = by_name[name]
        end
    end
    cfg.backends = by_name
    cfg.backend_list = list
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
    check_store(path, cfg.shared_store)
    if cfg.access_log_format ~= "text" and cfg.access_log_format ~= "json" then
        fail(path, "access_log_format", "must be \"text\" or \"json\" (got \""
            .. cfg.access_log_format .. "\")")
    end
    if type(m.allow) ~= "table" then
        fail(path, "metrics.allow", "must be a list of IPs or CIDRs")
    end
    validate_policies(path, cfg.policies)
    validate_backends(path, cfg)
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
