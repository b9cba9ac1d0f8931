-- pieces-gateway: a fake of the Redis shared store (lua/gw/store.lua) for busted specs: the
-- same calls, the same waiting (a call inside a request yields WAIT to the fake host, which
-- answers it later, like C resuming the coroutine), the same SHARED_STORE_ON_ERROR behaviour,
-- and a store that can be slow, down or failing.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- local s = fake_store.new{ server = <a fake Redis (fake_store.server())>, local_dict = <the
--   instance's dictionary>, clock = { t = ... }, ctl = <the host's { co = running request }>,
--   on_error = "local" | "open" | "closed", timeout = seconds (0.05) }
-- Knobs (set them any time):  s.delay (seconds each call takes, 0), s.down (calls fail at once),
--   s.fail (Redis answers with an error). Counters: s.calls (commands sent), s.timeouts,
--   s.errors. s.server is the "Redis" (a dictionary with maps), shared by every instance built
--   on it; map changes are pushed to each instance's local copy at once (pub/sub).
local _M = {}

_M.WAIT = setmetatable({}, { __tostring = function() return "fake store WAIT" end })
_M.UNAVAILABLE = setmetatable({}, { __tostring = function() return "shared store unavailable" end })

local unpack = unpack

-- The fake Redis: a dictionary (set on creation by the fake host) plus the instances to notify.
function _M.server(dict)
    return { dict = dict, instances = {}, maps = {} }
end

local function map_of(server, map)
    server.maps[map] = server.maps[map] or {}
    return server.maps[map]
end

local OPS = { "get", "set", "add", "incr", "delete", "keys", "window_incr" }

function _M.new(opts)
    local s = { server = opts.server, delay = 0, down = false, fail = false, calls = 0,
        timeouts = 0, errors = 0, on_error = opts.on_error or "local",
        timeout = opts.timeout or 0.05 }
    local local_dict, clock, ctl = opts.local_dict, opts.clock, opts.ctl
    local api = {}
    s.api = api
    s.server.instances[#s.server.instances + 1] = local_dict
    for map, fields in pairs(s.server.maps) do -- a new instance reads the maps (a resync)
        for field, value in pairs(fields) do
            local_dict:map_add(map, field, value)
        end
    end

    local function fallback(name, ...)
        if s.on_error == "closed" then
            error(_M.UNAVAILABLE, 0)
        end
        if name == "window_incr" and s.on_error == "open" then
            local rules = ...
            local saved = {}
            for i, w in ipairs(rules) do
                saved[i], w.limit = w.limit, math.huge
            end
            local ok, err = local_dict:window_incr(rules)
            for i, w in ipairs(rules) do
                w.limit = saved[i]
            end
            return ok ~= nil or nil, err
        end
        return local_dict[name](local_dict, ...)
    end

    -- The host resolves a WAIT: the answer of the call after s.delay, or a timeout.
    function s.resolve(call)
        if s.delay > s.timeout then
            clock.t = clock.t + s.timeout
            s.timeouts = s.timeouts + 1
            return { failed = true }
        end
        clock.t = clock.t + s.delay
        if s.fail then
            s.errors = s.errors + 1
            return { failed = true }
        end
        local dict = s.server.dict
        return { results = { dict[call.name](dict, unpack(call.args, 1, call.n)) } }
    end

    for _, name in ipairs(OPS) do
        api[name] = function(_, ...)
            if ctl.co == nil or coroutine.running() ~= ctl.co then
                return local_dict[name](local_dict, ...) -- outside a request: nothing waits
            end
            if s.down then
                return fallback(name, ...)
            end
            s.calls = s.calls + 1
            local answer = coroutine.yield(_M.WAIT, { name = name, args = { ... },
                n = select("#", ...) })
            if answer.failed then
                return fallback(name, ...)
            end
            return unpack(answer.results)
        end
    end

    -- maps: the local copy changes at once; "Redis" gets it and pushes it to every instance
    function api.map_add(_, map, field, value)
        local ok, err = local_dict:map_add(map, field, value)
        if ok and not s.down then
            map_of(s.server, map)[field] = value
            for _, d in ipairs(s.server.instances) do
                d:map_add(map, field, value)
            end
        end
        return ok, err
    end

    function api.map_delete(_, map, field)
        local ok, err = local_dict:map_delete(map, field)
        if ok ~= nil and not s.down then
            map_of(s.server, map)[field] = nil
            for _, d in ipairs(s.server.instances) do
                d:map_delete(map, field)
            end
        end
        return ok, err
    end

    function api.map_version(_, map)
        return local_dict:map_version(map)
    end

    function api.map_items(_, map)
        return local_dict:map_items(map)
    end

    return s
end

return _M
