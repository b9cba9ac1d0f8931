-- pieces-gateway policy: backend order, overrides and circuit breakers (route and log phases).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Runs after the chat policy (which sets r.upstream.targets, one per backend serving the model).
-- Route phase, for each chat request:
--   1. order: targets sorted by `order` (backends not listed keep their place after the rest);
--   2. overrides: `weights` draws the first target by weight among the backends that serve
--      the model; `by_key` (API key position -> list of backend names, set by the auth policy
--      as r.ctx.api_key_index) puts those first, in that order; `header` (a request header
--      naming a backend, e.g. X-Gateway-Backend) puts that one first;
--   3. breakers: a backend whose breaker is open is dropped; once `cooldown` seconds passed one
--      request (the probe) may try it (half-open). No target left: 503 service_unavailable
--      with Retry-After. With a single configured backend nothing is dropped (there is no
--      fallback; the gateway then behaves as before backends existed) unless `always` is set.
-- Log phase: each attempt (r.attempts) updates its backend's breaker. ok or refused (the
-- backend answered) closes it; unreachable, timeout and bad_answer (5xx, garbage, cut streams)
-- are failures; `failures` consecutive ones, or a failed probe, open it (gauge
-- gateway_upstream_breaker_open{backend}). State in r.shared (all workers): breaker:<name>:
-- fails (consecutive failures), :open (when it opened), :probe (the probe in flight). Other
-- policies, GET /: :breakers() -> { name = { state = "closed"|"open"|"half_open", failures,
-- opened_at, retry_in } }.
-- Config (defaults from gateway.lua):
--   failures (breaker.failures, env BREAKER_FAILURES, 5), cooldown (breaker.cooldown, env
--   BREAKER_COOLDOWN, 30 s), order (backend_order, env BACKEND_ORDER), header (off), by_key
--   ({ ["2"] = { "openai" } }), weights ({ pieces = 3, openai = 1 }), always (false).

local _M = { name = "router" }

local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring
local ceil, max, huge, insert, remove = math.ceil, math.max, math.huge, table.insert, table.remove

local function key(name, what) return "breaker:" .. name .. ":" .. what end

local function list_of_strings(v)
    if type(v) ~= "table" then return false end
    for _, s in ipairs(v) do
        if type(s) ~= "string" then return false end
    end
    return true
end

local function check(conf)
    if conf.failures ~= nil and (type(conf.failures) ~= "number" or conf.failures < 1) then
        return "failures must be a number >= 1"
    end
    if conf.cooldown ~= nil and (type(conf.cooldown) ~= "number" or conf.cooldown < 0) then
        return "cooldown must be a number >= 0"
    end
    if conf.order ~= nil and not list_of_strings(conf.order) then
        return "order must be a list of backend names"
    end
    if conf.header ~= nil and type(conf.header) ~= "string" then
        return "header must be a header name"
    end
    if conf.always ~= nil and type(conf.always) ~= "boolean" then
        return "always must be a boolean"
    end
    for k, v in pairs(conf.by_key or {}) do
        if not list_of_strings(v) then
            return "by_key[" .. tostring(k) .. "] must be a list of backend names"
        end
    end
    for k, w in pairs(conf.weights or {}) do
        if type(k) ~= "string" or type(w) ~= "number" or w < 0 then
            return "weights must map backend names to numbers >= 0"
        end
    end
    return nil
end

function _M.new(conf, host)
    conf = conf or {}
    local err = check(conf)
    if err then
        return nil, err
    end
    local b = host.config.breaker or {}
    local self = setmetatable({
        host = host, header = conf.header, by_key = conf.by_key or {}, weights = conf.weights,
        failures = conf.failures or b.failures or 5, cooldown = conf.cooldown or b.cooldown or 30,
        rank = {}, names = {}, random = math.random,
    }, { __index = _M })
    for i, name in ipairs(conf.order or host.config.backend_order or {}) do
        self.rank[name] = self.rank[name] or i
    end
    for i, be in ipairs(host.config.backend_list or {}) do
        self.names[i] = be.name
    end
    self.skip = conf.always or #self.names > 1
    self.open_gauge = host.metrics.gauge("gateway_upstream_breaker_open",
        "1 while the circuit breaker of a backend is open.", { "backend" }, { aggregate = "last" })
    return self
end

local function move_first(targets, name)
    for i, t in ipairs(targets) do
        if t.backend == name then
            insert(targets, 1, remove(targets, i))
            return
        end
    end
end

-- A stable insertion sort by rank (a handful of targets; no closure, so it JIT-compiles).
function _M:order(targets)
    local rank = self.rank
    for i = 2, #targets do
        local t = targets[i]
        local rt, j = rank[t.backend] or huge, i - 1
        while j >= 1 and (rank[targets[j].backend] or huge) > rt do
            targets[j + 1] = targets[j]
            j = j - 1
        end
        targets[j + 1] = t
    end
end

function _M:draw(targets)
    local total = 0
    for _, t in ipairs(targets) do
        total = total + (self.weights[t.backend] or 0)
    end
    if total <= 0 then
        return
    end
    local x = self.random() * total
    for _, t in ipairs(targets) do
        x = x - (self.weights[t.backend] or 0)
        if x < 0 then
            return move_first(targets, t.backend)
        end
    end
end

function _M:overrides(r, targets)
    if self.weights then
        self:draw(targets)
    end
    local list = self.by_key[tostring(r.ctx.api_key_index)]
    for i = #(list or {}), 1, -1 do
        move_first(targets, list[i])
    end
    local wanted = self.header and r.req:header(self.header)
    if wanted then
        move_first(targets, wanted)
    end
end

-- Whether the breaker lets a request try `name` now (claims the probe when half-open).
function _M:allow(r, name, now)
    local opened = r.shared:get(key(name, "open"))
    if not opened then
        return true
    end
    if now < opened + self.cooldown then
        return false, opened + self.cooldown - now
    end
    if r.shared:add(key(name, "probe"), now, max(self.cooldown, 60)) then
        r.ctx.breaker_probes = r.ctx.breaker_probes or {}
        r.ctx.breaker_probes[name] = true
        return true
    end
    return false, 1 -- another request is probing
end

function _M:route(r)
    local u = r.upstream
    if type(u) ~= "table" or type(u.targets) ~= "table" or #u.targets == 0 then
        return
    end
    local targets, kept, wait = u.targets, {}, huge
    self:order(targets)
    self:overrides(r, targets)
    local now = r.now()
    if not self.skip then
        return
    end
    for _, t in ipairs(targets) do
        local ok, left = self:allow(r, t.backend, now)
        if ok then
            kept[#kept + 1] = t
        elseif left < wait then
            wait = left
        end
    end
    if #kept == 0 then
        r.resp:set_header("Retry-After", tostring(max(1, ceil(wait))))
        return r.resp:error(503, "service_unavailable", "Every backend serving model '"
            .. tostring(u.echo_model) .. "' is unavailable (circuit breaker open)")
    end
    u.targets = kept
end

function _M:outcome(shared, name, result, probing, now)
    if result == "ok" or result == "refused" then
        if probing or shared:get(key(name, "fails")) then -- else it is closed already
            shared:delete(key(name, "fails"))
            shared:delete(key(name, "open"))
            shared:delete(key(name, "probe"))
            self.open_gauge:set(name, 0)
        end
    elseif result == "unreachable" or result == "timeout" or result == "bad_answer" then
        local n = shared:incr(key(name, "fails"), 1, 0)
        if probing or (n and n >= self.failures) then
            shared:set(key(name, "open"), now)
            shared:delete(key(name, "probe"))
            self.open_gauge:set(name, 1)
            if n and n >= self.failures then
                self.host.log.warn("backend %s: circuit breaker open after %d failures", name, n)
            end
        end
    end
end

function _M:log(r) -- (every request ends here: nothing is made for one without attempts)
    local probes, attempts = r.ctx.breaker_probes, r.attempts
    if attempts then
        local now = r.now()
        for i = 1, #attempts do -- (numeric: compiled inline for one or two attempts)
            local a = attempts[i]
            self:outcome(r.shared, a.backend, a.result, probes and probes[a.backend], now)
        end
    end
    if probes then
        for name in pairs(probes) do -- a probe that was not needed (or was cancelled) is free
            r.shared:delete(key(name, "probe"))
        end
    end
end

function _M:breakers(now)
    local shared = self.host.shared
    now = now or self.host.now()
    local out = {}
    for _, name in ipairs(self.names) do
        local opened = shared:get(key(name, "open"))
        local left = opened and opened + self.cooldown - now or 0
        out[name] = {
            state = not opened and "closed" or (left > 0 and "open" or "half_open"),
            failures = shared:get(key(name, "fails")) or 0,
            opened_at = opened, retry_in = left > 0 and left or 0,
        }
    end
    return out
end

return _M
