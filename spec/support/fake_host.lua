-- pieces-gateway: the fake host for busted specs (docs/policy-api.md, without the C binary).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- local fake = require "fake_host"
-- local h = fake.new{ api_prefix = "/v1", trusted_proxies = {...}, now = 1700000000,
--                     store = { on_error = "local", timeout = 0.05, server = <h0.store.server> } }
--   h.host                      the `host` object given to policies' new()
--   h.store                     with opts.store: the fake Redis store behind host.shared
--                               (spec/support/fake_store.lua: h.store.delay/down/fail knobs,
--                               h.store.server.dict = "Redis"); h.local_shared is then this
--                               instance's own dictionary. Without it host.shared is a local
--                               dictionary (h.shared) and nothing ever waits.
--   h.load(name, conf)          new() of <name>.lua found on the policy path (below);
--                               registers it for host.policy()
--   h.register(name, instance)  registers a stub instance (e.g. a "models" stub)
--   h.request{ method, path, headers, body, peer_ip } -> r (client_ip resolved via gw.ip)
--   h.run(policies, r)          phases in the host's order; `policies`: array of instances.
--                               Each phase call runs in a coroutine, as in the real host: a
--                               store call that waits yields, and the fake host answers it
--   h.run_all(policies, rs)     several requests at once: each runs until it waits, the waits
--                               are answered in order (so all of them are in flight together)
--   h.waits                     how many times a phase waited
--   h.advance(seconds)          moves the fake clock
--   h.files[path]               the in-memory file system (read_file/persist/file_info)
--   h.mtimes[path]              a file's mtime (unix seconds) for file_info; persist sets it to
--                               the fake clock; default h.default_mtime (the clock's start)
--   h.persisted                 array of { path, content } in persist order
--   h.logs                      array of { level, msg }; h.logged(level, pattern, plain)
--   h.reloads                   number of host.reload() calls
--   h.metric(name, labels)      a metric as /metrics would show it, merged over peers
--                               (spec/support/fake_metrics.lua: store.value); h.metrics: the store
--   h.pools                     what host.backend_pools(r) returns
--   fake.new{ backends = { { name, type, models = { { id, model } } } }, backend_order,
--             breaker = { failures, cooldown } } sets host.config's backend settings
-- Test-only fields (policies must not read them): r.resp.headers (lowercase name -> value),
-- r.resp.body, r.resp.content_type, r.resp.answered_by.
-- fake.new{ peer = h } builds a second "worker" sharing h's clock, dictionary and files.
-- The policy path (package.searchpath syntax) is fake.new{ policy_path = ... }, else the
-- environment variable GW_POLICY_PATH (set by scripts/policy-test.sh to the operator's
-- directory, then this repository's policies/), else "policies/?.lua".

local cjson = require "cjson.safe"
local ip = require "gw.ip"
local fake_store = require "fake_store"
local metrics = require "gw.metrics"
local fake_metrics = require "fake_metrics"
local phases = require "gw.phases" -- the real host's phase detection
local errors = require "gw.errors" -- the real host's ingress formats and error envelopes

local _M = {}

local PHASES, phase_fn = phases.PHASES, phases.fn

-- In-memory shared dictionary with the semantics of policy-api.md.
local function new_shared(clock)
    local data = {}
    local d = {}
    local function live(key)
        local e = data[key]
        if e and e.exp and e.exp <= clock.t then
            data[key] = nil
            return nil
        end
        return e
    end
    local function check_value(v)
        local t = type(v)
        return t == "string" or t == "number"
    end
    local function expiry(ttl)
        if ttl and ttl > 0 then
            return clock.t + ttl
        end
        return nil
    end
    function d.get(_, key)
        local e = live(key)
        return e and e.v
    end
    function d.set(_, key, value, ttl)
        if not check_value(value) then
            return nil, "bad value type"
        end
        data[key] = { v = value, exp = expiry(ttl) }
        return true
    end
    function d.add(_, key, value, ttl)
        if live(key) then
            return false, "exists"
        end
        return d.set(_, key, value, ttl)
    end
    function d.incr(_, key, delta, init, ttl)
        local e = live(key)
        if not e then
            if init == nil then
                return nil, "not found"
            end
            data[key] = { v = init + delta, exp = expiry(ttl) }
            return init + delta
        end
        if type(e.v) ~= "number" then
            return nil, "not a number"
        end
        e.v = e.v + delta
        return e.v
    end
    function d.delete(_, key)
        data[key] = nil
        return true
    end
    function d.keys(_, prefix, max)
        max = max or 1024
        prefix = prefix or ""
        local out = {}
        for k in pairs(data) do
            if k:sub(1, #prefix) == prefix and live(k) then
                out[#out + 1] = k
            end
        end
        table.sort(out)
        while max > 0 and #out > max do
            out[#out] = nil
        end
        return out
    end
    -- one atomic step, as the C dictionary's (and the Redis script's) window_incr
    function d.window_incr(_, rules)
        assert(type(rules) == "table" and #rules >= 1 and #rules <= 8, "window_incr(rules)")
        local admit = true
        for _, w in ipairs(rules) do
            local cur, prev = live(w.key), live(w.prev)
            w.count, w.prev_count = cur and cur.v or 0, prev and prev.v or 0
            if type(w.count) ~= "number" or type(w.prev_count) ~= "number" then
                return nil, "not a number"
            end
            if w.prev_count * w.weight + w.count + 1 > w.limit then
                admit = false
            end
        end
        if admit then
            for _, w in ipairs(rules) do
                d.incr(d, w.key, 1, 0, w.ttl)
            end
        end
        return admit
    end
    -- replicated maps: keys "map:<map>:<field>" and the version counter "map:<map>"
    function d.map_add(_, map, field, value)
        assert(type(value) == "string", "map_add: string value")
        local ok, err = d.add(d, "map:" .. map .. ":" .. field, value)
        if ok then
            d.incr(d, "map:" .. map, 1, 0)
        end
        return ok, err
    end
    function d.map_delete(_, map, field)
        local key = "map:" .. map .. ":" .. field
        if not live(key) then
            return false
        end
        data[key] = nil
        d.incr(d, "map:" .. map, 1, 0)
        return true
    end
    function d.map_version(_, map)
        return d.get(d, "map:" .. map) or 0
    end
    function d.map_items(_, map)
        local prefix = "map:" .. map .. ":"
        local keys, err = d.keys(d, prefix, 0)
        if not keys then
            return nil, err
        end
        local out = {}
        for _, k in ipairs(keys) do
            out[k:sub(#prefix + 1)] = d.get(d, k)
        end
        return out
    end
    d._data = data
    return d
end

local function read_only(t)
    return setmetatable({}, {
        __index = t,
        __newindex = function() error("host.config is read-only", 2) end,
    })
end

function _M.new(opts)
    opts = opts or {}
    local h = {}
    local peer = opts.peer
    local clock = peer and peer.clock or { t = opts.now or 1700000000 }
    local prefix = opts.api_prefix
    if prefix == nil then
        prefix = "/v1"
    end
    local trusted = opts.trusted_proxies or { "127.0.0.0/8", "::1/128", "10.0.0.0/8",
        "172.16.0.0/12", "192.168.0.0/16", "fc00::/7" }
    local trusted_set = assert(ip.set(trusted))
    local policy_path = opts.policy_path or os.getenv("GW_POLICY_PATH") or "policies/?.lua"

    h.clock = clock
    h.ctl = { co = nil } -- the request coroutine running now (the store may wait inside it)
    h.waits = 0
    if opts.store then
        -- an instance of its own (own local dictionary) on a shared fake Redis
        local server = opts.store.server or (peer and peer.store and peer.store.server)
            or fake_store.server(new_shared(clock))
        h.local_shared = (peer and not opts.store.server and peer.local_shared)
            or new_shared(clock)
        h.store = fake_store.new({ server = server, local_dict = h.local_shared, clock = clock,
            ctl = h.ctl, on_error = opts.store.on_error, timeout = opts.store.timeout })
        h.shared = h.store.api
    else
        h.shared = peer and peer.shared or new_shared(clock)
    end
    h.files = peer and peer.files or {}
    h.mtimes = peer and peer.mtimes or {}
    h.default_mtime = peer and peer.default_mtime or clock.t
    h.persisted = peer and peer.persisted or {}
    h.metrics = peer and peer.metrics or fake_metrics.new()
    h.metric = h.metrics.value
    h.logs = {}
    h.reloads = 0
    h.instances = {}
    h.order = {}
    h.raise_errors = true
    h.persist_error = nil

    local log = {}
    for _, level in ipairs({ "debug", "info", "warn", "err" }) do
        log[level] = function(fmt, ...)
            if level == "debug" and not opts.debug then
                return
            end
            h.logs[#h.logs + 1] = { level = level, msg = string.format(fmt, ...) }
        end
    end

    -- backends as gateway.lua's validated backend_list (API keys already removed)
    local blist = opts.backends or { { name = "pieces", type = "pieces" } }
    local by_name, border = {}, {}
    for i, b in ipairs(blist) do
        by_name[b.name], border[i] = b, b.name
    end
    local host = {
        config = read_only({ api_prefix = prefix, workers = opts.workers or 1,
            trusted_proxies = trusted, debug = opts.debug or false,
            backend_list = blist, backends = by_name, backend_order = opts.backend_order or border,
            breaker = opts.breaker or { failures = 5, cooldown = 30 } }),
        log = log,
        shared = h.shared,
        ip = ip,
        worker_id = opts.worker_id or 0,
        json = require("gw.json").new(), -- the real host.json, its text check in Lua
        metrics = metrics.new(h.metrics.C(h)),
    }
    function host.now()
        return clock.t
    end
    function host.policy(name)
        return h.instances[name]
    end
    function host.secure_equal(token, secret)
        assert(type(token) == "string" and type(secret) == "string", "secure_equal(token, secret)")
        return token == secret
    end
    -- A stand-in tokenizer: one token per run of letters/digits and per other non-space
    -- character (the real counts are tested in C against tiktoken's golden vectors).
    -- h.token_counter may replace it.
    function host.tokens(encoding, text)
        if encoding ~= "cl100k_base" and encoding ~= "o200k_base" and encoding ~= "claude" then
            return nil, "unknown encoding " .. tostring(encoding)
        end
        if h.token_counter then
            return h.token_counter(encoding, text)
        end
        local n = 0
        for _ in text:gmatch("[%w]+") do
            n = n + 1
        end
        for _ in text:gmatch("[^%w%s]") do
            n = n + 1
        end
        return n
    end
    function host.persist(path, content)
        assert(type(path) == "string" and type(content) == "string", "persist(path, content)")
        if h.persist_error then
            return nil, h.persist_error
        end
        h.files[path] = content
        h.mtimes[path] = clock.t
        h.persisted[#h.persisted + 1] = { path = path, content = content }
        return true
    end
    function host.read_file(path)
        local c = h.files[path]
        if c == nil then
            return nil, path .. ": No such file or directory"
        end
        return c
    end
    function host.file_info(path)
        assert(type(path) == "string", "file_info(path)")
        local c = h.files[path]
        if c == nil then
            return nil, path .. ": No such file or directory"
        end
        return { size = #c, mtime = h.mtimes[path] or h.default_mtime }
    end
    function host.reload()
        h.reloads = h.reloads + 1
        return true
    end
    function host.random_string(n, alphabet)
        local out = {}
        for i = 1, n do
            local k = math.random(#alphabet)
            out[i] = alphabet:sub(k, k)
        end
        return table.concat(out)
    end
    function host.status()
        return { policies = h.order, config_version = 1,
            last_reload = { at = clock.t, ok = true } }
    end
    -- h.pools: what backend_pools answers (this worker's backends and their pools)
    function host.backend_pools(r)
        assert(type(r) == "table" and r.req, "backend_pools(r)")
        return h.pools or {}
    end
    h.host = host

    function h.advance(seconds)
        clock.t = clock.t + seconds
    end

    function h.logged(level, pattern, plain)
        for _, e in ipairs(h.logs) do
            if e.level == level and e.msg:find(pattern, 1, plain) then
                return true
            end
        end
        return false
    end

    function h.register(name, instance)
        h.instances[name] = instance
        h.order[#h.order + 1] = name
        return instance
    end

    function h.load(name, conf)
        local path = assert(package.searchpath(name, policy_path))
        local mod = assert(loadfile(path))()
        local inst, err = mod.new(conf or {}, host)
        if not inst then
            return nil, err
        end
        return h.register(name, inst)
    end

    local function is_api(path)
        if path == "/" or path == "/ping" or path == "/metrics" or path == "/admin"
            or path:sub(1, 7) == "/admin/" then
            return false
        end
        return path == prefix or path:sub(1, #prefix + 1) == prefix .. "/"
    end

    function h.request(spec)
        spec = spec or {}
        local headers = {}
        for k, v in pairs(spec.headers or {}) do
            headers[k:lower()] = v
        end
        local function header_value(name)
            local v = headers[name:lower()]
            if type(v) == "table" then
                return v[1]
            end
            return v
        end
        local raw_path = spec.path or "/"
        local path, query = raw_path:match("^([^?]*)%??(.*)$")
        local peer_ip = ip.normalize(spec.peer_ip or "203.0.113.7") or spec.peer_ip
        local r = { ctx = {}, shared = h.shared, log = log, now = host.now, _phase = nil }
        r.ctx.ingress = errors.paths(prefix)[path]
        local req = {
            method = spec.method or "GET",
            path = path,
            uri = raw_path,
            query = query,
            peer_ip = peer_ip,
            client_ip = ip.client_ip(peer_ip, header_value("x-forwarded-for"),
                header_value("x-real-ip"), trusted_set),
            api = is_api(path),
        }
        function req.header(_, name)
            return header_value(name)
        end
        function req.body()
            return spec.body or ""
        end
        function req.set_path(self, p)
            assert(r._phase == "rewrite", "set_path outside the rewrite phase")
            assert(type(p) == "string" and p:sub(1, 1) == "/", "set_path: bad path")
            self.path = p
            self.api = is_api(p)
        end
        local resp = { headers = {}, status = nil }
        function resp.set_header(_, name, value)
            assert(r._phase ~= "log", "set_header in the log phase")
            resp.headers[name:lower()] = tostring(value)
        end
        function resp.exit(_, status, body, content_type)
            assert(r._phase ~= "log", "exit in the log phase")
            assert(not resp.answered_by, "request already answered")
            if type(body) == "table" then
                body = cjson.encode(body)
                content_type = content_type or "application/json"
            end
            resp.status = status
            resp.body = body or ""
            resp.content_type = content_type or "text/plain; charset=utf-8"
            resp.answered_by = r._policy or "host"
        end
        function resp.error(self, status, code, message, typ)
            return self:exit(status, errors.body(r.ctx.ingress, status, code, message, typ),
                "application/json")
        end
        r.req, r.resp = req, resp
        return r
    end

    -- One policy call in a coroutine of its own (a protected call, as pcall): a store call
    -- that waits yields WAIT, passed up to the driver of the request (h.run_all), whose answer
    -- resumes it; any other yield is the host's "a policy yielded (not supported)".
    local function run_call(fn, inst, r)
        local co = coroutine.create(fn)
        local outer = h.ctl.co
        h.ctl.co = co
        local ok, what, c = coroutine.resume(co, inst, r)
        while ok and coroutine.status(co) == "suspended" do
            if what ~= fake_store.WAIT then
                ok, what = false, "policy phase did not complete: a policy yielded (not supported)"
                break
            end
            h.ctl.co = outer
            local answer = coroutine.yield(fake_store.WAIT, c)
            h.ctl.co = co
            ok, what, c = coroutine.resume(co, answer)
        end
        h.ctl.co = outer
        return ok, what
    end

    local function call(inst, phase, fn, r)
        r._phase = phase
        local ok, err = run_call(fn, inst, r)
        if not ok and err == fake_store.UNAVAILABLE then -- SHARED_STORE_ON_ERROR=closed
            if phase ~= "log" and not r.resp.answered_by then
                r.resp:error(503, "store_unavailable", "The shared store is unavailable")
            end
        elseif not ok then
            if h.raise_errors then
                error(err, 0)
            end
            log.err("policy %s phase %s: %s", tostring(r._policy), phase, tostring(err))
            if phase ~= "log" and not r.resp.answered_by then
                r.resp:error(500, "internal_error", "Internal server error")
            end
        end
    end

    local function name_of(inst)
        for name, i in pairs(h.instances) do
            if i == inst then
                return name
            end
        end
        return "?"
    end

    -- Runs the phases like the host; `handler(r)` stands in for the C handlers (default 200).
    local function run_phases(policies, r, handler)
        for i = 1, 4 do
            local phase = PHASES[i]
            if phase == "access" then -- the host does it after the rewrite phase
                r.ctx.ingress = errors.paths(prefix)[r.req.path]
            end
            local applies = phase ~= "route" or (r.req.method == "POST"
                and errors.paths(prefix)[r.req.path] ~= nil)
            if applies then
                for _, inst in ipairs(policies) do
                    if r.resp.answered_by then
                        break
                    end
                    local fn = phase_fn(inst, phase)
                    if fn then
                        r._policy = name_of(inst)
                        call(inst, phase, fn, r)
                    end
                end
            end
        end
        if not r.resp.answered_by then
            r._phase, r._policy = "handler", nil
            if handler then
                handler(r)
            end
            if not r.resp.answered_by then
                r.resp:exit(200, "ok")
            end
        end
        for _, inst in ipairs(policies) do
            local fn = phase_fn(inst, "log")
            if fn then
                r._policy = name_of(inst)
                call(inst, "log", fn, r)
            end
        end
        r._phase = nil
        return r
    end

    -- Resume a request's coroutine; returns the call it now waits for, or nil when it ended.
    local function step(task, ...)
        h.ctl.co = task.co
        local ok, what, call_ = coroutine.resume(task.co, ...)
        h.ctl.co = nil
        if not ok then
            error(what, 0)
        end
        if coroutine.status(task.co) == "dead" then
            return nil
        end
        assert(what == fake_store.WAIT, "the request coroutine yielded something else")
        h.waits = h.waits + 1
        return call_
    end

    function h.run_all(policies, rs, handler)
        local queue = {}
        for i, r in ipairs(rs) do
            local task = { co = coroutine.create(run_phases) }
            local c = step(task, policies, r, handler)
            if c then
                queue[#queue + 1] = { task = task, call = c }
            end
            rs[i] = r
        end
        local head = 1
        while queue[head] do
            local w = queue[head]
            head = head + 1
            local c = step(w.task, h.store.resolve(w.call))
            if c then
                queue[#queue + 1] = { task = w.task, call = c }
            end
        end
        return rs
    end

    function h.run(policies, r, handler)
        return h.run_all(policies, { r }, handler)[1]
    end

    -- Decoded JSON body of the response (or nil).
    function h.body(r)
        return cjson.decode(r.resp.body or "")
    end

    return h
end

return _M
