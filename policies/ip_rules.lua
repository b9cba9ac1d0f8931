-- pieces-gateway policy: IP blacklist and whitelist (first in the access chain).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Access phase, every request, on `r.req.client_ip` (already resolved through the trusted
-- proxies and normalised by the host):
--   1. blacklisted: in `blacklist`, or banned by the auto-ban (`host.policy("blacklist")`,
--      `:is_banned(ip)`, when that policy is loaded) -> 403 `ip_blocked` "IP has been blocked";
--   2. whitelisted: in `whitelist` -> `r.ctx.whitelisted = true` (rate_limit skips the client).
--      The whitelist does not override the blacklist.
-- Entries are IPs or CIDRs, IPv4 or IPv6, normalised (so `::ffff:1.2.3.4` is `1.2.3.4`); an
-- invalid entry makes new() fail with a message naming it. Configured blacklist entries always
-- block, cannot be removed at run time and are never written to the blacklist file.
--
-- The sets of host.ip keep each address's verdict themselves (gw.ip Set:contains: a bounded
-- memo; an empty set answers at once), so repeated clients cost two table lookups here.
--
-- Config keys (gateway.lua):
--   blacklist   array of IPs/CIDRs (or a comma-separated string), env IP_BLACKLIST
--   whitelist   array of IPs/CIDRs (or a comma-separated string), env IP_WHITELIST

local _M = { name = "ip_rules" }

local LISTED_NONE, LISTED_BLACK, LISTED_WHITE = 0, 1, 2

local function build(ip, list, key)
    if type(list) == "string" then
        local t = {}
        for item in (list .. ","):gmatch("([^,]*),") do
            t[#t + 1] = item
        end
        list = t
    end
    if list ~= nil and type(list) ~= "table" then
        return nil, "ip_rules: " .. key .. " must be an array of IPs/CIDRs"
    end
    local set, err = ip.set(list)
    if not set then
        return nil, "ip_rules: " .. key .. ": " .. err
    end
    return set
end

function _M.new(conf, host)
    conf = conf or {}
    local black, err = build(host.ip, conf.blacklist, "blacklist")
    if not black then
        return nil, err
    end
    local white
    white, err = build(host.ip, conf.whitelist, "whitelist")
    if not white then
        return nil, err
    end
    return setmetatable({ black = black, white = white, host = host, auto = nil },
        { __index = _M })
end

-- The auto-ban policy instance, looked up once it exists.
function _M:auto_ban()
    local auto = self.auto
    if auto == nil then
        auto = self.host.policy("blacklist")
        self.auto = auto
    end
    return auto
end

-- LISTED_BLACK, LISTED_WHITE or LISTED_NONE for `ip` (the blacklist wins over the whitelist).
function _M:listed(ip)
    return self.black:contains(ip) and LISTED_BLACK
        or self.white:contains(ip) and LISTED_WHITE or LISTED_NONE
end

function _M:blocked(ip)
    if self:listed(ip) == LISTED_BLACK then
        return true
    end
    local auto = self:auto_ban()
    return auto ~= nil and auto:is_banned(ip)
end

function _M:access(r)
    local ip = r.req.client_ip
    if self:blocked(ip) then
        r.ctx.ip_blocked = true
        return r.resp:error(403, "ip_blocked", "IP has been blocked")
    end
    if self:listed(ip) == LISTED_WHITE then
        r.ctx.whitelisted = true
    end
end

return _M
