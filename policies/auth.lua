-- pieces-gateway policy: API-key auth for API routes.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Access phase, only for `r.req.api` requests ({P} and {P}/..., which after the rewrite phase
-- includes model routes and foolproof routes; never /, /ping or /admin/...). It runs before
-- route matching, so an unauthenticated `GET {P}/unknown` gets 401, not 404. The only accepted
-- form is `Authorization: Bearer <key>` ("Bearer " case-sensitive, exactly one space, the token
-- compared exactly, no trimming; no query keys). On the Anthropic Messages paths (r.ctx.ingress
-- "messages") `x-api-key: <key>` is accepted as well, as Anthropic's SDKs send it (Authorization
-- wins when both are present). Failures, all 401 `unauthorized`:
--   header missing or empty          "Missing authentication information"
--   not starting with "Bearer "      "Invalid authentication format"
--   token is no configured key       "Invalid API key"
-- The token is compared with every key, each comparison in time that depends on the key's
-- length only (no early exit on the first differing byte, none on the first matching key).
-- On success sets `r.ctx.api_key_index` (1-based position of the key in `keys`).
--
-- Config keys (gateway.lua):
--   keys   array of strings, or one comma-separated string; env API_KEY (comma list allowed).
--          Empty (the default): no auth.

local _M = { name = "auth" }
local find = string.find

local function key_list(keys)
    if type(keys) == "string" then -- "k1, k2": split and trim
        local t = {}
        for k in (keys .. ","):gmatch("([^,]*),") do
            t[#t + 1] = k:match("^%s*(.-)%s*$")
        end
        keys = t
    end
    if keys ~= nil and type(keys) ~= "table" then
        return nil, "auth: keys must be a string or an array of strings"
    end
    local out = {}
    for i, k in ipairs(keys or {}) do
        if type(k) ~= "string" then
            return nil, "auth: keys[" .. i .. "] is not a string"
        end
        if k ~= "" then
            out[#out + 1] = k
        end
    end
    return out
end

function _M.new(conf, host)
    local keys, err = key_list((conf or {}).keys)
    if not keys then
        return nil, err
    end
    if #keys == 0 then
        host.log.info("API_KEY is empty: API routes need no authentication")
    end
    -- no keys: no access phase, so the host does not call it (lua/gw/phases.lua)
    return setmetatable({ keys = keys, equal = host.secure_equal,
        access = #keys > 0 and _M.access or false }, { __index = _M })
end

function _M:access(r)
    local keys = self.keys
    if #keys == 0 or not r.req.api then
        return
    end
    local header, token = r.req:header("Authorization"), nil
    if (header == nil or header == "") and r.ctx.ingress == "messages" then
        token = r.req:header("x-api-key")
        header = token
    end
    if header == nil or header == "" then
        return r.resp:error(401, "unauthorized", "Missing authentication information")
    end
    if not token and find(header, "Bearer ", 1, true) ~= 1 then -- (a prefix test, no substring)
        return r.resp:error(401, "unauthorized", "Invalid authentication format")
    end
    local found
    token = token or header:sub(8)
    for i = 1, #keys do
        if self.equal(token, keys[i]) and not found then
            found = i
        end
    end
    if not found then
        return r.resp:error(401, "unauthorized", "Invalid API key")
    end
    r.ctx.api_key_index = found
end

return _M
