-- pieces-gateway policy: auto-ban (the automatic IP blacklist) and its file.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Violations: each request answered 429 by the rate_limit policy (log phase: status 429 and
-- `r.ctx.rate_limited` set; upstream 429s do not count) adds one to `bl:viol:<client ip>` in
-- host.shared, a counter that expires `violation_ttl` seconds after the first violation.
-- When it reaches `threshold` (>=), the IP (mode single) or its subnet (mode subnet, built with
-- ipv4_mask / ipv6_mask) is banned: key `bl:ban:<ip or cidr>` (no expiry; value: JSON with type,
-- added_at, violations) and `bl:version` is incremented. Each worker keeps a local matcher of
-- the bans and rebuilds it only when `bl:version` changed (one dictionary read per check).
-- After a ban, ALL bans are written to `file` through host.persist (atomic, asynchronous) as
-- JSON Lines: {"ip":"1.2.3.4","type":"ip","added_at":"<RFC3339 UTC>","violations":N}.
-- At new(), the file is read (JSON Lines, or the original service's one-line JSON array) into
-- host.shared with `add`, so every worker can load it without duplicates; a missing file is
-- created empty (by one worker). Mode off: no violations are counted, loaded bans still apply.
-- IP_BLACKLIST entries belong to the ip_rules policy and are never written here.
-- `:is_banned(ip)` answers ip_rules (403 ip_blocked) and anyone else.
-- Metrics: gateway_bans_active (set when a worker learns the count), gateway_bans_added_total.
--
-- Config keys (gateway.lua):
--   mode           "single" | "subnet" | "off", env BLACKLIST_MODE (default single; an
--                  unknown value warns and counts as single, like the original service)
--   threshold      violations that trigger a ban, env BLACKLIST_THRESHOLD (default 100)
--   file           env BLACKLIST_FILE (default "blacklist.txt")
--   ipv4_mask      8-32, env IPV4_MASK (default 24), ipv6_mask 32-128, env IPV6_MASK (48);
--                  out of range: warning and the default
--   violation_ttl  seconds a violation count lives, env BLACKLIST_VIOLATION_TTL (default 86400)

local _M = { name = "blacklist" }

local BAN, VERSION, VIOL, MAX_BANS = "bl:ban:", "bl:version", "bl:viol:", 1000000
local MODES = { single = true, subnet = true, off = true }

local floor, format, concat, sort = math.floor, string.format, table.concat, table.sort
local os_date = os.date

local function mask_value(log, value, lo, hi, default)
    if value == nil then
        return default
    end
    if type(value) ~= "number" or value % 1 ~= 0 or value < lo or value > hi then
        log.warn("Warning: Invalid mask value %s, should be between %d and %d, "
            .. "using default value %d", tostring(value), lo, hi, default)
        return default
    end
    return value
end

local function number_conf(conf, key, default) -- nil for a bad value
    local v = conf[key]
    return v == nil and default or (type(v) == "number" and v >= 0 and v or nil)
end

local function timestamp(now)
    return os_date("!%Y-%m-%dT%H:%M:%SZ", floor(now))
end

-- The dictionary value of a ban (the file line without its "ip").
local function ban_value(typ, added_at, violations)
    return format('{"type":"%s","added_at":"%s","violations":%d}', typ, added_at, violations)
end

function _M.new(conf, host)
    conf = conf or {}
    local mode = conf.mode or "single"
    if not MODES[mode] then
        host.log.warn("Warning: unknown BLACKLIST_MODE '%s', using single", tostring(mode))
        mode = "single"
    end
    local threshold = number_conf(conf, "threshold", 100)
    local ttl = number_conf(conf, "violation_ttl", 86400)
    if not threshold or not ttl then
        return nil, "blacklist: threshold and violation_ttl must be non-negative numbers"
    end
    local file = conf.file or "blacklist.txt"
    if type(file) ~= "string" or file == "" then
        return nil, "blacklist: file must be a non-empty string"
    end
    local self = setmetatable({
        host = host, shared = host.shared, ip = host.ip, logger = host.log,
        active = host.metrics.gauge("gateway_bans_active", "IPs and subnets banned.", nil,
            { aggregate = "last" }),
        added = host.metrics.counter("gateway_bans_added_total", "Automatic bans.", { "mode" }),
        mode = mode, threshold = threshold, violation_ttl = ttl, file = file,
        ipv4_mask = mask_value(host.log, conf.ipv4_mask, 8, 32, 24),
        ipv6_mask = mask_value(host.log, conf.ipv6_mask, 32, 128, 48),
    }, { __index = _M })
    self:load()
    return self
end

-- Adds one file entry to the dictionary; true when it was new.
function _M:add_entry(e)
    if type(e) ~= "table" or type(e.ip) ~= "string" then
        return nil, type(e) == "string" and "not JSON: " .. e or "not an object with an \"ip\""
    end
    local m = self.ip.parse_cidr(e.ip)
    if not m then
        return nil, "invalid IP or CIDR '" .. e.ip .. "'"
    end
    local subnet = e.type == "subnet" or e.ip:find("/", 1, true) ~= nil
    local key = subnet and m.text or self.ip.normalize(e.ip)
    local added_at = e.added_at
    if type(added_at) ~= "string" or not added_at:match("^%d%d%d%d%-%d%d%-%d%dT[%d:%.%-%+Z]+$") then
        added_at = timestamp(self.host.now())
    end
    local violations = tonumber(e.violations) or 0
    return self.shared:add(BAN .. key,
        ban_value(subnet and "subnet" or "ip", added_at, floor(violations)))
end

function _M:load()
    local content = self.host.read_file(self.file)
    if not content then
        if self.shared:add("bl:file_created", 1) then
            self.host.persist(self.file, "")
        end
        return
    end
    local json, added, bad = self.host.json, 0, 0
    for line in content:gmatch("[^\r\n]+") do
        if line:find("%S") then
            local v, derr = json.decode(line)
            local list = (type(v) == "table" and v[1] ~= nil) and v or { v or derr or "?" }
            for _, e in ipairs(list) do
                local ok, err = self:add_entry(e)
                if ok then
                    added = added + 1
                elseif err and err ~= "exists" then -- "exists": loaded before (a reload)
                    bad = bad + 1
                    self.logger.warn("blacklist: %s: skipped entry: %s", self.file, err)
                end
            end
        end
    end
    if added > 0 then
        self.shared:incr(VERSION, 1, 0)
        self.active:set(nil, #(self.shared:keys(BAN, MAX_BANS) or {}))
        self.logger.info("blacklist: loaded %d entries from %s", added, self.file)
    end
    if bad > 0 then
        self.logger.warn("blacklist: %d bad entries in %s", bad, self.file)
    end
end

-- The current bans as file entries, oldest first.
function _M:bans()
    local json, out = self.host.json, {}
    for _, key in ipairs(self.shared:keys(BAN, MAX_BANS) or {}) do
        local v = self.shared:get(key)
        local meta = v and json.decode(v)
        if type(meta) == "table" then
            out[#out + 1] = { ip = key:sub(#BAN + 1), type = meta.type,
                added_at = meta.added_at, violations = meta.violations }
        end
    end
    sort(out, function(a, b) -- oldest first, then by ip
        return a.added_at < b.added_at or (a.added_at == b.added_at and a.ip < b.ip)
    end)
    return out
end

-- JSON Lines, fields in a fixed order (ip texts and timestamps need no escaping).
function _M:render()
    local lines = {}
    for i, e in ipairs(self:bans()) do
        lines[i] = format('{"ip":"%s","type":"%s","added_at":"%s","violations":%d}\n',
            e.ip, e.type, e.added_at, e.violations)
    end
    return concat(lines)
end

function _M:persist()
    -- re-render if another worker banned meanwhile, so the freshest list is queued last
    for _ = 1, 3 do
        local v = self.shared:get(VERSION)
        local content = self:render()
        if self.shared:get(VERSION) == v then
            local ok, err = self.host.persist(self.file, content)
            if not ok then
                self.logger.err("blacklist: cannot save %s: %s", self.file, tostring(err))
            end
            return ok
        end
    end
    return nil
end

function _M:is_banned(ip_text)
    local v = self.shared:get(VERSION) or 0
    if v ~= self.version then
        local keys, err = self.shared:keys(BAN, MAX_BANS)
        local list = {}
        for i, key in ipairs(keys or {}) do
            list[i] = key:sub(#BAN + 1)
        end
        local set
        if keys then
            set, err = self.ip.set(list)
        end
        if not set then
            self.logger.err("blacklist: cannot refresh the bans: %s", tostring(err))
            return self.set ~= nil and self.set:contains(ip_text)
        end
        self.set, self.version = set, v
        self.active:set(nil, #list)
    end
    return self.set:contains(ip_text)
end

-- Bans `ip_text` (or its subnet); false if it was already banned.
function _M:ban(ip_text, violations)
    local target, typ = self.ip.normalize(ip_text), "ip"
    if not target then
        return false
    end
    if self.mode == "subnet" then
        target, typ = self.ip.subnet(target, self.ipv4_mask, self.ipv6_mask), "subnet"
    end
    if not self.shared:add(BAN .. target, ban_value(typ, timestamp(self.host.now()),
        violations or 0)) then
        return false
    end
    self.shared:incr(VERSION, 1, 0)
    self.added:inc(self.mode)
    self.logger.warn("blacklist: banned %s (%s) after %d violations", target, typ, violations or 0)
    self:persist()
    return true
end

function _M:log(r)
    if self.mode == "off" or r.resp.status ~= 429 or not r.ctx.rate_limited then
        return
    end
    local ip_text = r.req.client_ip
    local n, err = self.shared:incr(VIOL .. ip_text, 1, 0, self.violation_ttl)
    if not n then
        self.logger.err("blacklist: cannot count a violation: %s", tostring(err))
        return
    end
    if n >= self.threshold and not self:is_banned(ip_text) then
        self:ban(ip_text, n)
    end
end

return _M
