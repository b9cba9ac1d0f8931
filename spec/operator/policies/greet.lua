-- pieces-gateway: a sample operator policy, kept outside policies/ (spec/operator/policy_test.sh
-- copies it to a directory outside the repository and runs its spec with
-- scripts/policy-test.sh, the documented operator command).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Answers GET {P}/greet with {"greeting": "<greeting> <client ip>", "models": <catalog size>}.
-- It keeps host.log as self.log: a plain field, not a log phase.
--
-- Config:
--   greeting (default "hello"): the first word of the answer.

local _M = { name = "greet" }

function _M.new(conf, host)
    if conf.greeting ~= nil and type(conf.greeting) ~= "string" then
        return nil, "greeting must be a string"
    end
    return setmetatable({
        greeting = conf.greeting or "hello",
        log = host.log,
        path = host.config.api_prefix .. "/greet",
        host = host,
    }, { __index = _M })
end

function _M:content(r)
    if r.req.method ~= "GET" or r.req.path ~= self.path then
        return
    end
    local models = self.host.policy("models")
    self.log.info("greeting %s", r.req.client_ip)
    return r.resp:exit(200, {
        greeting = self.greeting .. " " .. r.req.client_ip,
        models = models and #models:ids() or 0,
    })
end

return _M
