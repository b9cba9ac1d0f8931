-- pieces-gateway policy: model routes, `POST /{model}{P}/chat/completions`.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- For every model id M of the catalog (the `models` policy, `:ids()`), the path
-- `/M{P}/chat/completions` is rewritten to `{P}/chat/completions` with `r.ctx.route_model = M`.
-- Claude ids with `@` also get the dash form (`/claude-3-haiku-20240307/v1/...`), whose preset
-- is the dash spelling (the chat route normalises it). A valid `model` in the body wins: the
-- chat route applies `r.ctx.route_model` only when the body's model is missing or invalid.
-- No trailing-slash variant. Other methods get 405 `method_not_allowed` in the access phase, so
-- the IP rules and rate limits ahead of this policy run first, as in the original service.
-- Sets `r.ctx.route_alias = "model"`.
--
-- Config keys (gateway.lua):
--   enabled   boolean, env ENABLE_MODEL_ROUTE (default false)

local _M = { name = "model_route" }

local CHAT = "/chat/completions"

function _M.new(conf, host)
    conf = conf or {}
    if conf.enabled ~= nil and type(conf.enabled) ~= "boolean" then
        return nil, "model_route: enabled must be a boolean"
    end
    local on = conf.enabled == true
    return setmetatable({
        enabled = on,
        -- off: no phases, so the host does not call them (lua/gw/phases.lua: only a function is)
        rewrite = on and _M.rewrite or false, access = on and _M.access or false,
        host = host,
        prefix = host.config.api_prefix or "",
        routes = nil, -- built on first use: the catalog policy may be created after this one
    }, { __index = _M })
end

-- path -> preset model, from the catalog.
function _M:route_table()
    if self.routes then
        return self.routes
    end
    local models = self.host.policy("models")
    if not models then
        error("model_route: the models policy is not loaded")
    end
    local routes, tail = {}, self.prefix .. CHAT
    for _, id in ipairs(models:ids()) do
        routes["/" .. id .. tail] = id
        if id:find("@", 1, true) then
            local dash = id:gsub("@", "-")
            routes["/" .. dash .. tail] = dash
        end
    end
    self.routes = routes
    return routes
end

function _M:rewrite(r)
    if not self.enabled then
        return
    end
    local model = self:route_table()[r.req.path]
    if not model then
        return
    end
    if r.req.method ~= "POST" then
        -- OPTIONS is left to the host's CORS handling
        r.ctx.model_route_405 = r.req.method ~= "OPTIONS"
        return
    end
    r.req:set_path(self.prefix .. CHAT)
    r.ctx.route_model = model
    r.ctx.route_alias = "model"
end

function _M:access(r)
    if r.ctx.model_route_405 then
        return r.resp:error(405, "method_not_allowed", "Method not allowed")
    end
end

return _M
