-- pieces-gateway policy: admin endpoints under /admin/.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Content phase for every path under /admin/ (ip_rules and rate_limit run before it, API-key
-- auth does not apply). Admin auth comes first, for every /admin/ path, so the endpoints are not
-- revealed to unauthenticated clients:
--   Authorization not starting with "Bearer "  -> 401 `unauthorized` "Unauthorized"
--   token different from the admin key         -> 403 `forbidden` "Forbidden" (constant time)
-- Endpoints:
--   GET  /admin/blacklist  the raw bytes of the blacklist file, `Content-Type: text/plain`,
--                          `Content-Disposition: attachment; filename=blacklist.txt`;
--                          404 text "404 page not found" when the file is missing
--   POST /admin/reload     host.reload() (every worker reloads its policies), then 200
--                          {"status":"reloading"}
--   GET  /admin/policies   200, the JSON of host.status(): loaded policies, config version and
--                          the last reload's outcome
-- Another path under /admin/ -> 404 `route_not_found`; a known path with another method -> 405
-- `method_not_allowed`.
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
    if key == nil or key == "" then
        key = generate_key(host)
    end
    local file = conf.file
    if file == nil then
        local bl = host.policy("blacklist")
        file = bl and bl.file or "blacklist.txt"
    end
    if type(file) ~= "string" or file == "" then
        return nil, "admin: file must be a non-empty string"
    end
    return setmetatable({ key = key, file = file, host = host }, { __index = _M })
end

local function blacklist(self, r)
    local content = self.host.read_file(self.file)
    if not content then
        return r.resp:exit(404, "404 page not found\n", "text/plain; charset=utf-8")
    end
    r.resp:set_header("Content-Disposition", "attachment; filename=blacklist.txt")
    return r.resp:exit(200, content, "text/plain")
end

local function reload(self, r)
    self.host.reload()
    return r.resp:exit(200, { status = "reloading" })
end

local function policies(self, r)
    if not self.host.status then
        return r.resp:error(500, "internal_error", "Status is not available")
    end
    return r.resp:exit(200, self.host.status())
end

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
    if not route then
        return r.resp:error(404, "route_not_found", "Requested path not found")
    end
    if r.req.method ~= route.method then
        return r.resp:error(405, "method_not_allowed", "Method not allowed")
    end
    return route.handler(self, r)
end

return _M
