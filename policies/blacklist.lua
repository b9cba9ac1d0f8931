-- pieces-gateway policy: auto-ban (the automatic IP blacklist) and its file.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Violations: each 429 of the rate_limit policy (log phase: status 429 and r.ctx.rate_limited;
-- upstream 429s do not count) adds one to `bl:viol:<client ip>` in host.shared, expiring
-- `violation_ttl` s after the first. At `threshold` (>=) the IP (mode single) or its subnet
-- (mode subnet: ipv4_mask / ipv6_mask) is banned: field <ip or cidr> of host.shared's
-- replicated map `bans` (value: JSON type, added_at, violations), which every instance of a
-- Redis store sees within milliseconds and which is read without waiting. Workers rebuild
-- their matcher when the map's version moves. The worker that bans or unbans writes ALL bans
-- to `file` (host.persist) as JSON Lines {"ip":"1.2.3.4","type":"ip","added_at":"<RFC3339
-- UTC>","violations":N}; worker 0 also for changes made elsewhere. new() adds the file (JSON
-- Lines or the original's one-line array) to the map, or creates it empty. Mode off: nothing
-- is counted, bans still apply. `:is_banned(ip)` answers ip_rules (403 ip_blocked),
-- `:unban(ip or cidr)` DELETE /admin/blacklist/{ip}. IP_BLACKLIST is ip_rules' own.
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
local BANS, VIOL, MODES = "bans", "bl:viol:", { single = true, subnet = true, off = true }
local floor, format, concat, sort, os_date = math.floor, string.format, table.concat,
    table.sort, os.date

local function mask_value(log, value, lo, hi, default)
    if value ~= nil and (type(value) ~= "number" or value % 1 ~= 0 or value < lo or value > hi)
    then
        log.warn("Warning: Invalid mask value %s, should be between %d and %d, "
            .. "using default value %d", tostring(value), lo, hi, default)
        value = nil
    end
    return value or default
end

local function number_conf(conf, key, default)
    local v = conf[key] == nil and default or conf[key]
    return type(v) == "number" and v >= 0 and v or nil
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
    local ttl, file = number_conf(conf, "violation_ttl", 86400), conf.file or "blacklist.txt"
    if not threshold or not ttl or type(file) ~= "string" or file == "" then
        return nil, "blacklist: threshold and violation_ttl must be non-negative numbers, "
            .. "file a non-empty string"
    end
    local self = setmetatable({
        host = host, shared = host.shared, ip = host.ip, logger = host.log,
        active = host.metrics.gauge("gateway_bans_active", "IPs and subnets banned.", nil,
            { aggregate = "last" }),
        added = host.metrics.counter("gateway_bans_added_total", "Automatic bans.", { "mode" }),
        mode = mode, threshold = threshold, violation_ttl = ttl, file = file,
        ipv4_mask = mask_value(host.log, conf.ipv4_mask, 8, 32, 24),
        ipv6_mask = mask_value(host.log, conf.ipv6_mask, 32, 128, 48),
        version = nil, set = nil, written = nil, writer = host.worker_id == 0,
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
    local added_at = e.added_at
    if type(added_at) ~= "string" or not added_at:match("^%d%d%d%d%-%d%d%-%d%dT[%d:%.%-%+Z]+$") then
        added_at = timestamp(self.host.now())
    end
    return self.shared:map_add(BANS, subnet and m.text or self.ip.normalize(e.ip),
        ban_value(subnet and "subnet" or "ip", added_at, floor(tonumber(e.violations) or 0)))
end

function _M:load()
    local content = self.host.read_file(self.file)
    if not content then
        if self.shared:add("bl:file_created", 1) then
            self:persist() -- the bans: none, unless a shared store has some
        end
        self.written = self.shared:map_version(BANS)
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
        self.active:set(nil, #self:bans())
        self.logger.info("blacklist: loaded %d entries from %s", added, self.file)
    end
    if bad > 0 then
        self.logger.warn("blacklist: %d bad entries in %s", bad, self.file)
    end
    self.written = self.shared:map_version(BANS) -- the file holds what the map had
end

-- The current bans as file entries, oldest first.
function _M:bans()
    local json, out = self.host.json, {}
    for target, v in pairs(self.shared:map_items(BANS) or {}) do
        local meta = json.decode(v)
        if type(meta) == "table" then
            out[#out + 1] = { ip = target, type = meta.type, added_at = meta.added_at,
                violations = meta.violations }
        end
    end
    sort(out, function(a, b)
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

function _M:persist() -- (what another worker changes meanwhile it writes itself)
    self.written = self.shared:map_version(BANS)
    local ok, err = self.host.persist(self.file, self:render())
    if not ok then
        self.logger.err("blacklist: cannot save %s: %s", self.file, tostring(err))
    end
    return ok
end

-- When the bans moved, the matcher is rebuilt (and worker 0 writes changes made elsewhere).
function _M:is_banned(ip_text)
    local v = self.shared:map_version(BANS)
    if v ~= self.version then
        local items, err = self.shared:map_items(BANS)
        local list = {}
        for target in pairs(items or {}) do
            list[#list + 1] = target
        end
        local set, serr = self.ip.set(list)
        if items and set then
            self.set, self.version = set, v
            self.active:set(nil, #list)
            if self.writer and self.written ~= v then
                self:persist()
            end
        else
            self.logger.err("blacklist: cannot refresh the bans: %s", tostring(err or serr))
        end
    end
    return self.set ~= nil and self.set:contains(ip_text)
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
    local value = ban_value(typ, timestamp(self.host.now()), violations or 0)
    if not self.shared:map_add(BANS, target, value) then
        return false
    end
    self.added:inc(self.mode)
    self.logger.warn("blacklist: banned %s (%s) after %d violations", target, typ,
        violations or 0)
    self:persist()
    return true
end

-- Lifts the ban of an IP or CIDR, forgets the IP's violations: true, false (none), nil, err.
function _M:unban(text)
    local cidr = text:find("/", 1, true)
    local m = cidr and self.ip.parse_cidr(text)
    local target = (m and m.text) or (not cidr and self.ip.normalize(text))
    if not target then
        return nil, "not an IP address or CIDR"
    end
    local removed, err = self.shared:map_delete(BANS, target)
    if not cidr and removed ~= nil then
        self.shared:delete(VIOL .. target)
    end
    if removed then
        self.logger.warn("blacklist: unbanned %s", target)
        self:persist()
    end
    return removed, err
end

function _M:log(r)
    if self.mode == "off" or r.resp.status ~= 429 or not r.ctx.rate_limited then
        return
    end
    local ip_text = r.req.client_ip
    local n, err = self.shared:incr(VIOL .. ip_text, 1, 0, self.violation_ttl)
    if not n then
        return self.logger.err("blacklist: cannot count a violation: %s", tostring(err))
    end
    if n >= self.threshold and not self:is_banned(ip_text) then
        self:ban(ip_text, n)
    end
end

return _M
