-- pieces-gateway policy: foolproof routes, common wrong spellings of the chat endpoint.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- With S = {"/chat/completions", "/completions"} and P the API prefix, the paths are: a and P+a
-- for each a in S; a+b, P+a+b, a+P+b and P+a+P+b for each pair (a, b) of S; minus
-- P+"/chat/completions" itself: 19 paths for P = "/v1". Each one, exactly or with one trailing
-- "/", is rewritten (POST only) to {P}/chat/completions and the response gets
-- `X-Warning: Non-standard path, please use: {P}/chat/completions`. Other methods get 405
-- `method_not_allowed` in the access phase (after the IP rules and rate limits, as in the
-- original service). API-key auth applies afterwards since the path is then an API path.
-- With an empty prefix the policy turns itself off with a warning. Sets
-- `r.ctx.route_alias = "foolproof"`.
--
-- Config keys (gateway.lua):
--   enabled   boolean, env ENABLE_FOOLPROOF_ROUTE (default false)

local _M = { name = "foolproof" }

local S = { "/chat/completions", "/completions" }

-- The foolproof paths for prefix `p`, as a set (without the trailing-slash forms).
function _M.paths(p)
    local set = {}
    for _, a in ipairs(S) do
        set[a] = true
        set[p .. a] = true
        for _, b in ipairs(S) do
            set[a .. b] = true
            set[p .. a .. b] = true
            set[a .. p .. b] = true
            set[p .. a .. p .. b] = true
        end
    end
    set[p .. "/chat/completions"] = nil
    return set
end

function _M.new(conf, host)
    conf = conf or {}
    if conf.enabled ~= nil and type(conf.enabled) ~= "boolean" then
        return nil, "foolproof: enabled must be a boolean"
    end
    local prefix = host.config.api_prefix or ""
    local enabled = conf.enabled == true
    if enabled and prefix == "" then
        host.log.warn("Warning: Foolproof routing is not supported when APIPrefix is empty, "
            .. "automatically disabled. Recommend using /v1 as prefix")
        enabled = false
    end
    local target = prefix .. "/chat/completions"
    return setmetatable({
        enabled = enabled,
        -- off: no phases, so the host does not call them (lua/gw/phases.lua: only a function is)
        rewrite = enabled and _M.rewrite or false, access = enabled and _M.access or false,
        paths = _M.paths(prefix),
        target = target,
        warning = "Non-standard path, please use: " .. target,
    }, { __index = _M })
end

function _M:match(path)
    if self.paths[path] then
        return true
    end
    return path:sub(-1) == "/" and self.paths[path:sub(1, -2)] == true
end

function _M:rewrite(r)
    if not self.enabled or not self:match(r.req.path) then
        return
    end
    if r.req.method ~= "POST" then
        -- OPTIONS is left to the host's CORS handling
        r.ctx.foolproof_405 = r.req.method ~= "OPTIONS"
        return
    end
    r.req:set_path(self.target)
    r.resp:set_header("X-Warning", self.warning)
    r.ctx.route_alias = "foolproof"
end

function _M:access(r)
    if r.ctx.foolproof_405 then
        return r.resp:error(405, "method_not_allowed", "Method not allowed")
    end
end

return _M
