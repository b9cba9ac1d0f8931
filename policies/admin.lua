-- pieces-gateway policy: admin endpoints under /admin/.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Content phase for every path under /admin/ (ip_rules and rate_limit run before it, API-key
-- auth does not apply). Admin auth first, on every /admin/ path: no "Bearer " -> 401
-- `unauthorized` "Unauthorized"; another token -> 403 `forbidden` "Forbidden" (constant time).
--   GET /admin/blacklist: the file like Go's http.ServeFile: 200 raw bytes, Content-Type
--     text/plain, Accept-Ranges: bytes, Last-Modified (mtime; none for the epoch),
--     Content-Disposition: attachment; filename=blacklist.txt; 404 "404 page not found" when
--     missing. If-Modified-Since >= mtime (whole seconds) -> 304 (ignored when unparsable or
--     with If-None-Match; If-None-Match `*` -> 304). One Range (a-b, a-, -n) -> 206
--     Content-Range; none satisfiable -> 416 `bytes */size` "invalid range: failed to overlap"
--     (200 for an empty file); malformed -> 416 "invalid range"; several -> 200 whole file.
--     If-Range: only a date equal to Last-Modified keeps the Range. IMF-fixdate only. A file
--     that lags the bans (e.g. changed on another instance) gets them, served at once.
--   DELETE /admin/blacklist/{ip-or-cidr} (percent-encoded or not): lifts the ban on every
--     instance, forgets the IP's violations, rewrites the file: 200 {"status":"removed","ip"};
--     404 `ban_not_found`; 400 `invalid_request` when it is not an IP or CIDR.
--   POST /admin/reload: host.reload(), 200 {"status":"reloading"}; GET /admin/policies: 200,
--   host.status(). Another path under /admin/ -> 404 `route_not_found`; another method 405.
--
-- Config keys (gateway.lua):
--   key    the admin key, env ADMIN_KEY. The host generates one (CSPRNG) at start-up when it is
--          unset; should it still be empty here, the policy generates 32-64 characters of
--          a-zA-Z0-9!@#$%^&* shared by all workers through host.shared and logs it once.
--   file   the blacklist file, env BLACKLIST_FILE (default: the blacklist policy's file, else
--          "blacklist.txt")

local _M = { name = "admin" }

local ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*"
local LENGTHS = "0123456789abcdefghijklmnopqrstuvw" -- 33 symbols: a length of 32 + index

local function generate_key(host)
    local k = host.random_string(1, LENGTHS)
    local key = host.random_string(32 + LENGTHS:find(k, 1, true) - 1, ALPHABET)
    if host.shared:add("admin:generated_key", key) then
        host.log.warn("Generated random ADMIN_KEY: %s", key)
        return key
    end
    return host.shared:get("admin:generated_key") -- another worker generated it first
end

function _M.new(conf, host)
    conf = conf or {}
    local key = conf.key
    if key ~= nil and type(key) ~= "string" then
        return nil, "admin: key must be a string"
    end
    key = (key == nil or key == "") and generate_key(host) or key
    local bl = host.policy("blacklist")
    local file = conf.file == nil and (bl and bl.file or "blacklist.txt") or conf.file
    if type(file) ~= "string" or file == "" then
        return nil, "admin: file must be a non-empty string"
    end
    return setmetatable({ key = key, file = file, host = host }, { __index = _M })
end

local floor, min, tonumber = math.floor, math.min, tonumber
local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS, MONTH = {}, {}
for m in ("JanFebMarAprMayJunJulAugSepOctNovDec"):gmatch("...") do
    MONTHS[#MONTHS + 1] = m
    MONTH[m] = #MONTHS
end

local function http_date(t) -- IMF-fixdate, locale independent
    local d = os.date("!*t", t)
    return ("%s, %02d %s %04d %02d:%02d:%02d GMT"):format(DAYS[d.wday], d.day, MONTHS[d.month],
        d.year, d.hour, d.min, d.sec)
end

-- Unix seconds of an IMF-fixdate, or nil.
local function parse_http_date(s)
    local d, mon, y, hh, mm, ss = (s or ""):match(
        "^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    local m = MONTH[mon]
    d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
    if not m or d < 1 or d > 31 or hh > 23 or mm > 59 or ss > 59 then
        return nil
    end
    if m <= 2 then -- days from the civil date (proleptic Gregorian), March-based years
        y = y - 1
    end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
    local days = era * 146097 + yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy - 719468
    return days * 86400 + hh * 3600 + mm * 60 + ss
end

local TRIM = "^[ \t]*(.-)[ \t]*$"
local INVALID, NO_OVERLAP = "invalid range", "invalid range: failed to overlap"

-- Go's parseRange: the satisfiable ranges ({ first, last }), or nil and the 416 text.
local function parse_range(s, size)
    if s:sub(1, 6) ~= "bytes=" then
        return nil, INVALID
    end
    local ranges, no_overlap = {}, false
    for ra in (s:sub(7) .. ","):gmatch("([^,]*),") do
        ra = ra:match(TRIM)
        local a, b = ra:match("^([^-]*)-(.*)$")
        if ra ~= "" then
            if not a then
                return nil, INVALID
            end
            a, b = a:match(TRIM), b:match(TRIM)
            local first, last = tonumber(a:match("^%d+$")), tonumber(b:match("^%d+$"))
            if (a == "" and not last) or (a ~= "" and not first) then
                return nil, INVALID
            elseif a == "" then -- suffix: the last `last` bytes
                first, last = size - min(last, size), size - 1
            elseif first < size and b ~= "" then -- Go checks the end only for a start < size
                if not last or last < first then
                    return nil, INVALID
                end
                last = min(last, size - 1)
            else
                last = size - 1
            end
            if first >= size or last < first then -- bytes=-0 too (Go: an empty range)
                no_overlap = true
            else
                ranges[#ranges + 1] = { first, last }
            end
        end
    end
    if no_overlap and #ranges == 0 then
        return nil, NO_OVERLAP
    end
    return ranges
end

local function not_modified(req, mtime)
    local inm = req:header("If-None-Match")
    if inm and inm ~= "" then
        return inm:find("^[ \t,]*%*") ~= nil
    end
    local ims = parse_http_date(req:header("If-Modified-Since"))
    return mtime ~= nil and ims ~= nil and mtime <= ims
end

local function blacklist(self, r)
    local host, req, resp = self.host, r.req, r.resp
    local bl, info = host.policy("blacklist"), host.file_info(self.file)
    local content = bl and bl:render() -- the current bans: the file may lag (async, elsewhere)
    if content and (not info or host.read_file(self.file) ~= content) then
        bl:persist()
        info = { mtime = host.now() }
    end
    local mtime = info and floor(info.mtime)
    mtime = mtime and mtime > 0 and mtime or nil -- Go: the epoch means "unknown"
    local modified = info and not not_modified(req, mtime)
    content = content or (modified and host.read_file(self.file))
    if not info or (modified and not content) then
        return resp:exit(404, "404 page not found\n", "text/plain; charset=utf-8")
    end
    resp:set_header("Content-Disposition", "attachment; filename=blacklist.txt")
    if mtime then
        resp:set_header("Last-Modified", http_date(mtime))
    end
    if not modified then
        return resp:exit(304)
    end
    local size, range, if_range = #content, req:header("Range"), req:header("If-Range")
    if if_range and if_range ~= "" and (not mtime or parse_http_date(if_range) ~= mtime) then
        range = nil
    end
    if range then
        local ranges, err = parse_range(range, size)
        if not ranges and not (err == NO_OVERLAP and size == 0) then
            if err == NO_OVERLAP then
                resp:set_header("Content-Range", "bytes */" .. size)
            end
            return resp:exit(416, err .. "\n", "text/plain; charset=utf-8")
        end
        if ranges and #ranges == 1 then
            local first, last = ranges[1][1], ranges[1][2]
            resp:set_header("Accept-Ranges", "bytes")
            resp:set_header("Content-Range", ("bytes %d-%d/%d"):format(first, last, size))
            return resp:exit(206, content:sub(first + 1, last + 1), "text/plain")
        end
    end
    resp:set_header("Accept-Ranges", "bytes")
    return resp:exit(200, content, "text/plain")
end

local function reload(self, r)
    return self.host.reload() and r.resp:exit(200, { status = "reloading" })
end

local function policies(self, r)
    local st = self.host.status and self.host.status()
    if not st then
        return r.resp:error(500, "internal_error", "Status is not available")
    end
    return r.resp:exit(200, st)
end

local UNBAN = "/admin/blacklist/"
local function HEX(h) return string.char(tonumber(h, 16)) end
local function unban(self, r) -- (routed only when the blacklist policy is loaded)
    local target = r.req.path:sub(#UNBAN + 1):gsub("%%(%x%x)", HEX)
    local removed, err = self.host.policy("blacklist"):unban(target)
    if removed == nil then
        return r.resp:error(400, "invalid_request", tostring(err))
    elseif not removed then
        return r.resp:error(404, "ban_not_found", "No ban for " .. target)
    end
    return r.resp:exit(200, { status = "removed", ip = target })
end

local UNBAN_ROUTE = { method = "DELETE", handler = unban }
local ROUTES = {
    ["/admin/blacklist"] = { method = "GET", handler = blacklist },
    ["/admin/reload"] = { method = "POST", handler = reload },
    ["/admin/policies"] = { method = "GET", handler = policies },
}

function _M:content(r)
    local path = r.req.path
    if path:sub(1, 7) ~= "/admin/" or r.req.method == "OPTIONS" then
        return -- OPTIONS: left to the host's CORS handling
    end
    local header = r.req:header("Authorization")
    if not header or header:sub(1, 7) ~= "Bearer " then
        return r.resp:error(401, "unauthorized", "Unauthorized")
    end
    if not self.host.secure_equal(header:sub(8), self.key) then
        return r.resp:error(403, "forbidden", "Forbidden")
    end
    local route = ROUTES[path]
    if not route and path:sub(1, #UNBAN) == UNBAN and self.host.policy("blacklist") then
        route = UNBAN_ROUTE
    end
    if not route then
        return r.resp:error(404, "route_not_found", "Requested path not found")
    end
    if r.req.method ~= route.method then
        return r.resp:error(405, "method_not_allowed", "Method not allowed")
    end
    return route.handler(self, r)
end

return _M
