-- pieces-gateway: spec of lua/gw/host.lua, the real host library, driven through the fake FFI
-- (spec/support/fake_ffi.lua): policies are small files written to a temp directory.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local fake_ffi = require "fake_ffi"

local LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR = 0, 1, 2, 3
local INTERNAL = '{"error":{"message":"Internal server error","type":"error",'
    .. '"code":"internal_error"}}'

-- A policy module: `body` defines phases on _M; new() keeps conf and host and a `seen` list.
local function policy(body)
    return "local _M = {}\n"
        .. "function _M.new(conf, host)\n"
        .. "    return setmetatable({ conf = conf, host = host, seen = {} }, { __index = _M })\n"
        .. "end\n"
        .. (body or "")
        .. "\nreturn _M\n"
end
local BODY_LINE = 5 -- the first line of `body` in the file

-- Sets a response header per phase, so the order of calls is visible through the C seam.
local TRACER = policy([[
for _, ph in ipairs({ "rewrite", "access", "content", "log" }) do
    _M[ph] = function(self, r)
        if ph ~= "log" then
            r.resp:set_header("x-trace", ph .. ":" .. self.conf.tag)
        end
        self.seen[#self.seen + 1] = ph
    end
end]])

describe("gw.ffi over the fake C functions", function()
    local f, g

    before_each(function()
        f = fake_ffi.new({ env = { SET = "v", EMPTY = "" } })
        g = f.module
    end)

    it("req_str and req_header return nil for unknown selectors and headers", function()
        local req = f.request({ headers = { { "Host", "x" } } })
        assert.is_nil(g.req_str(req, 99))
        assert.equal("x", g.req_header(req, "HOST"))
        assert.is_nil(g.req_header(req, "none"))
    end)

    it("env treats empty as unset", function()
        assert.equal("v", g.env("SET"))
        assert.is_nil(g.env("EMPTY"))
        assert.is_nil(g.env("MISSING"))
    end)

    it("parse_int covers the long long range exactly", function()
        assert.equal(9007199254740992, g.parse_int("9007199254740992"))
        assert.is_not_nil(g.parse_int("9223372036854775807"))
        assert.is_nil(g.parse_int("9223372036854775808"))
        assert.is_not_nil(g.parse_int("-9223372036854775808"))
        assert.is_nil(g.parse_int("-9223372036854775809"))
    end)

    it("random_bytes reports a failing source", function()
        f.state.random = function() return nil end
        assert.same({ nil, "random source failed" }, { g.random_bytes(4) })
    end)

    it("log rejects unknown levels like C", function()
        assert.equal(f.C.GW_FFI_EINVAL, f.C.gw_ffi_log(9, "x", 1))
        assert.same({}, f.state.logs)
    end)
end)

describe("gw.host", function()
    local dir, f, host, n

    setup(function()
        dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir -p " .. dir) == 0)
    end)

    teardown(function()
        os.execute("rm -rf " .. dir)
    end)

    local function write(name, text)
        local path = dir .. "/" .. name
        local fh = assert(io.open(path, "w"))
        fh:write(text)
        fh:close()
        return path
    end

    -- Writes the policies ({ name = source }) and a gateway.lua enabling `enabled` (array of
    -- names, or of { name, conf-text }), then runs init. Returns ok, info-or-error.
    local function boot(sources, enabled, extra, opts)
        n = n + 1
        for name, text in pairs(sources or {}) do
            write(name .. ".lua", text)
        end
        local list = {}
        for _, e in ipairs(enabled or {}) do
            if type(e) == "table" then
                list[#list + 1] = ("{ name = %q, conf = %s }"):format(e[1], e[2])
            else
                list[#list + 1] = ("{ name = %q }"):format(e)
            end
        end
        local cfg = write("gateway" .. n .. ".lua",
            ("return { policies_dir = %q, %s policies = { %s } }")
                :format(dir, extra or "", table.concat(list, ", ")))
        opts = opts or {}
        opts.config_path = cfg
        return pcall(host.init, opts)
    end

    local function boot_ok(...)
        local ok, info = boot(...)
        assert(ok, info)
        return info
    end

    local function inst(name)
        return host.host().policy(name)
    end

    local function errors()
        return f.lines(LOG_ERROR)
    end

    local function trace(req)
        local out = {}
        for _, h in ipairs(req.resp_headers) do
            if h[1] == "x-trace" then
                out[#out + 1] = h[2]
            end
        end
        return out
    end

    local function request(spec)
        return f.request(spec)
    end

    before_each(function()
        n = n or 0
        f = fake_ffi.new({ now = 1700000000.5 })
        f.install()
        host = require "gw.host"
    end)

    describe("init", function()
        it("reports the phase bitmask of the phases some policy defines", function()
            local info = boot_ok({
                a = policy("function _M.access() end"),
                b = policy("function _M.rewrite() end\nfunction _M.log() end"),
            }, { "a", "b" })
            assert.equal(1 + 2 + 16, info.phases)
            info = boot_ok({ c = policy("function _M.content() end\nfunction _M.route() end") },
                { "c" })
            assert.equal(4 + 8, info.phases)
            assert.equal(0, boot_ok({ d = policy() }, { "d" }).phases)
            assert.equal(0, boot_ok({}, {}).phases)
        end)

        it("does not count a field named like a phase that is not a function", function()
            local info = boot_ok({ e = [[
local _M = {}
function _M.new() return { content = true, log = "yes", access = function() end } end
return _M]] }, { "e" })
            assert.equal(2, info.phases)
        end)

        it("counts phases inherited through the metatable", function()
            local info = boot_ok({ g = policy("function _M:rewrite() end") }, { "g" })
            assert.equal(1, info.phases)
        end)

        it("returns the policy names in order", function()
            local info = boot_ok({ a = policy(), b = policy(), c = policy() }, { "c", "a", "b" })
            assert.equal("c,a,b", info.policy_names)
            assert.equal("", boot_ok({}, {}).policy_names)
        end)

        it("returns models_json from the models policy", function()
            local info = boot_ok({
                models = policy('function _M:list_json() return \'{"object":"list"}\' end'),
            }, { "models" })
            assert.equal('{"object":"list"}', info.models_json)
            assert.is_nil(boot_ok({ a = policy() }, { "a" }).models_json)
        end)

        it("serves the real catalog when policies/models.lua is enabled", function()
            local cwd = io.popen("pwd"):read("*l")
            local ok, info = pcall(host.init, { config_path = write("gw-models.lua",
                'return { policies_dir = "' .. cwd .. '/policies", '
                .. 'policies = { { name = "models" } } }') })
            assert.is_true(ok, info)
            local doc = cjson.decode(info.models_json)
            assert.equal(14, #doc.data)
            assert.equal("chat-bison", doc.data[1].id)
        end)

        it("gives policies conf and the host", function()
            boot_ok({ a = policy() }, { { "a", "{ x = 1 }" } }, nil, { worker_id = 3 })
            local a = inst("a")
            assert.same({ x = 1 }, a.conf)
            assert.equal(host.host(), a.host)
            assert.equal(3, a.host.worker_id)
            assert.is_nil(host.host().policy("missing"))
        end)

        it("fails on a config error", function()
            local ok, err = boot({}, {}, "prot = 1,")
            assert.is_false(ok)
            assert.matches("prot is not a known setting", err, 1, true)
        end)

        it("mutes non-error logs while loading with quiet = 2", function()
            local src = policy([[
local new = _M.new
function _M.new(conf, host)
    host.log.info("loading")
    host.log.err("loud")
    return new(conf, host)
end]])
            boot_ok({ q = src }, { "q" }, nil, { quiet = 2 })
            assert.same({ "loud" }, f.lines())
            host.host().log.info("after")
            assert.same({ "loud", "after" }, f.lines())
        end)
    end)

    describe("load errors", function()
        local function load_error(src, name)
            name = name or "bad"
            local ok, err = boot({ [name] = src }, { name })
            assert.is_false(ok, "expected a load error")
            return err, dir .. "/" .. name .. ".lua"
        end

        it("reports a syntax error with file and line", function()
            local err, file = load_error("local _M = {}\nfunction _M.new(\nreturn _M\n")
            assert.equal(file .. ":3:", err:sub(1, #file + 3))
        end)

        it("reports an error raised by the module chunk", function()
            local err, file = load_error("local x = 1\nerror('top level')\n")
            assert.equal(file .. ":2: top level", err)
        end)

        it("requires a table with new()", function()
            local err, file = load_error("return { access = function() end }")
            assert.equal(file .. ": must return a table with a new(conf, host) function", err)
            err = load_error("return 42")
            assert.equal(file .. ": must return a table with a new(conf, host) function", err)
        end)

        it("reports new() raising with file and line", function()
            local err, file = load_error("local _M = {}\nfunction _M.new()\n"
                .. "    error('bad conf')\nend\nreturn _M\n")
            assert.equal(file .. ":3: bad conf", err)
        end)

        it("reports new() returning nil, err", function()
            local err, file = load_error(
                "return { new = function() return nil, 'limit must be a number' end }")
            assert.equal(file .. ": new() failed: limit must be a number", err)
        end)

        it("reports an unknown policy file", function()
            local ok, err = boot({}, { "nope" })
            assert.is_false(ok)
            assert.matches("cannot open " .. dir .. "/nope.lua", err, 1, true)
        end)
    end)

    describe("handle", function()
        it("runs rewrite, then access, then content, each in gateway.lua order", function()
            boot_ok({ t = TRACER }, { { "t", "{ tag = 'a' }" } })
            local req = request()
            host.handle(req, 1)
            assert.same({ "rewrite:a", "access:a", "content:a" }, trace(req))
            assert.is_nil(req.answered)
        end)

        it("runs each phase across all policies before the next phase", function()
            write("t2.lua", TRACER)
            boot_ok({ t = TRACER }, { { "t", "{ tag = 'a' }" }, { "t2", "{ tag = 'b' }" } })
            local req = request()
            host.handle(req, 1)
            assert.same({ "rewrite:a", "rewrite:b", "access:a", "access:b", "content:a",
                "content:b" }, trace(req))
        end)

        it("stops at the first answer and keeps the headers set before it", function()
            write("t2.lua", TRACER)
            boot_ok({
                t = TRACER,
                stop = policy([[
function _M:access(r)
    r.resp:set_header("X-Stop", "1")
    r.resp:exit(403, "forbidden")
end]]),
            }, { { "t", "{ tag = 'a' }" }, "stop", { "t2", "{ tag = 'b' }" } })
            local req = request()
            host.handle(req, 1)
            assert.same({ "rewrite:a", "rewrite:b", "access:a" }, trace(req))
            assert.same({ "X-Stop", "1" }, req.resp_headers[4])
            assert.is_true(req.answered)
            assert.equal(403, req.answer_status)
            assert.equal("forbidden", req.answer_body)
            assert.equal("text/plain; charset=utf-8", req.answer_ctype)
            assert.same({ "rewrite", "access" }, inst("t").seen)
            assert.same({ "rewrite" }, inst("t2").seen)
        end)

        it("an answer in rewrite skips access and content", function()
            boot_ok({ early = policy("function _M:rewrite(r) r.resp:exit(204) end\n"
                .. "function _M:access() self.seen[1] = 'access' end") }, { "early" })
            local req = request()
            host.handle(req, 1)
            assert.equal(204, req.answer_status)
            assert.equal("", req.answer_body)
            assert.same({}, inst("early").seen)
        end)

        it("encodes table bodies as JSON", function()
            boot_ok({ j = policy([[
function _M:access(r)
    r.resp:exit(200, { ok = true, n = 2 })
end]]) }, { "j" })
            local req = request()
            host.handle(req, 1)
            assert.equal(200, req.answer_status)
            assert.equal("application/json", req.answer_ctype)
            assert.same({ ok = true, n = 2 }, cjson.decode(req.answer_body))
        end)

        it("keeps an explicit content type", function()
            boot_ok({ j = policy([[
function _M:access(r)
    r.resp:exit(200, { a = 1 }, "application/vnd.x+json")
end
function _M:content(r)
    r.resp:exit(200, "x", "text/html")
end]]) }, { "j" })
            local req = request()
            host.handle(req, 1)
            assert.equal("application/vnd.x+json", req.answer_ctype)
        end)

        it("answers errors in the OpenAI shape", function()
            boot_ok({ e = policy([[
function _M:access(r)
    if r.req.path == "/typed" then
        return r.resp:error(429, "rate_limit_exceeded", "Rate limit exceeded", "requests")
    end
    r.resp:error(401, "invalid_api_key", "Invalid \"key\"")
end]]) }, { "e" })
            local req = request()
            host.handle(req, 1)
            assert.equal(401, req.answer_status)
            assert.equal("application/json", req.answer_ctype)
            assert.equal('{"error":{"message":"Invalid \\"key\\"","type":"error",'
                .. '"code":"invalid_api_key"}}', req.answer_body)
            req = request({ path = "/typed" })
            host.handle(req, 2)
            assert.same({ error = { message = "Rate limit exceeded", type = "requests",
                code = "rate_limit_exceeded" } }, cjson.decode(req.answer_body))
        end)

        it("exposes the request through r.req", function()
            boot_ok({ echo = policy([[
function _M:access(r)
    local q = r.req
    r.resp:exit(200, { method = q.method, path = q.path, uri = q.uri, query = q.query,
        peer_ip = q.peer_ip, client_ip = q.client_ip, api = q.api, body = q:body(),
        auth = q:header("authorization"), missing = q:header("x-missing") })
end]]) }, { "echo" })
            local req = request({ method = "POST", path = "/v1/chat/completions",
                query = "a=1&b", body = "{}", peer_ip = "127.0.0.1", client_ip = "1.2.3.4",
                headers = { { "Authorization", "Bearer k" }, { "authorization", "second" } } })
            host.handle(req, 1)
            assert.same({ method = "POST", path = "/v1/chat/completions",
                uri = "/v1/chat/completions?a=1&b", query = "a=1&b", peer_ip = "127.0.0.1",
                client_ip = "1.2.3.4", api = true, body = "{}", auth = "Bearer k" },
                cjson.decode(req.answer_body))
        end)

        it("gives an empty body and query when there are none", function()
            boot_ok({ echo = policy([[
function _M:access(r)
    r.resp:exit(200, { body = r.req:body(), query = r.req.query })
end]]) }, { "echo" })
            local req = request()
            host.handle(req, 1)
            assert.same({ body = "", query = "" }, cjson.decode(req.answer_body))
        end)

        it("set_path changes r.req.path, r.req.api and the C request", function()
            boot_ok({ fool = policy([[
function _M:rewrite(r)
    self.seen[#self.seen + 1] = tostring(r.req.api)
    r.req:set_path("/v1/chat/completions")
end
function _M:access(r)
    self.seen[#self.seen + 1] = r.req.path
    self.seen[#self.seen + 1] = tostring(r.req.api)
end]]) }, { "fool" })
            local req = request({ path = "/chat/completions" })
            host.handle(req, 1)
            assert.equal("/v1/chat/completions", req.path)
            assert.same({ "false", "/v1/chat/completions", "true" }, inst("fool").seen)
        end)

        it("set_path rejects a path without a leading slash", function()
            boot_ok({ fool = policy("function _M:rewrite(r) r.req:set_path('v1') end") },
                { "fool" })
            local req = request({ path = "/x" })
            host.handle(req, 1)
            assert.equal("/x", req.path)
            assert.equal(500, req.answer_status)
            assert.matches("set_path: the path must be a string starting with '/'",
                errors()[1], 1, true)
        end)

        local function api_of(paths)
            local out = {}
            for i, p in ipairs(paths) do
                local req = request({ path = p })
                host.handle(req, i)
                out[p] = req.answer_body == "true"
            end
            return out
        end
        local API_POLICY = policy("function _M:access(r) r.resp:exit(200, tostring(r.req.api)) end")

        it("r.req.api: {P} or under {P}/ with a prefix", function()
            boot_ok({ api = API_POLICY }, { "api" })
            assert.same({ ["/v1"] = true, ["/v1/"] = true, ["/v1/models"] = true,
                ["/v1x"] = false, ["/v2/models"] = false, ["/"] = false, ["/ping"] = false,
                ["/admin/blacklist"] = false, ["/models"] = false },
                api_of({ "/v1", "/v1/", "/v1/models", "/v1x", "/v2/models", "/", "/ping",
                    "/admin/blacklist", "/models" }))
        end)

        it("r.req.api: everything but /, /ping and /admin... with an empty prefix", function()
            boot_ok({ api = API_POLICY }, { "api" }, 'api_prefix = "/",')
            assert.equal("", host.host().config.api_prefix)
            assert.same({ ["/models"] = true, ["/chat/completions"] = true, ["/v1/x"] = true,
                ["/administrator"] = true, ["/"] = false, ["/ping"] = false, ["/admin"] = false,
                ["/admin/reload"] = false },
                api_of({ "/models", "/chat/completions", "/v1/x", "/administrator", "/",
                    "/ping", "/admin", "/admin/reload" }))
        end)

        it("an invalid status raises inside the policy and gives a 500", function()
            boot_ok({ s = policy("function _M:access(r) r.resp:exit(42, 'x') end") }, { "s" })
            local req = request()
            host.handle(req, 1)
            assert.equal(500, req.answer_status)
            assert.equal(INTERNAL, req.answer_body)
            assert.matches("resp:exit: a response was already sent, or the status is invalid",
                errors()[1], 1, true)
        end)

        it("a second answer raises and the first one stands", function()
            boot_ok({ s = policy([[
function _M:access(r)
    r.resp:exit(201, "first")
    r.resp:exit(202, "second")
end]]) }, { "s" })
            local req = request()
            host.handle(req, 1)
            assert.equal(201, req.answer_status)
            assert.equal("first", req.answer_body)
            assert.equal(1, #errors())
        end)
    end)

    -- with the local store (plain calls under xpcall) and the Redis store (the policies run
    -- in coroutines, not under xpcall: the host finds the failed policy by its cursor)
    for _, store in ipairs({ "local", "redis" }) do
        local STORE = store == "redis" and 'shared_store = { url = "redis://127.0.0.1:6379/0" },'
            or nil
        describe("policy errors (" .. store .. " store)", function()
            local BOOM = policy([[
    function _M:rewrite(r)
        if r.req.path == "/rewrite" then error("boom in rewrite") end
    end
    function _M:access(r)
        if r.req.path == "/access" then error("boom in access") end
    end
    function _M:content(r)
        if r.req.path == "/content" then error("boom in content") end
    end
    function _M:log(r)
        if r.req.path == "/log" then error("boom in log") end
    end]])
            local LINES = { rewrite = { 0, 1 }, access = { 3, 4 }, content = { 6, 7 },
                log = { 9, 10 } }

            local function expected(phase)
                local file = dir .. "/boom.lua"
                return ("policy 'boom' failed in phase %s (%s:%d): %s:%d: boom in %s"):format(phase,
                    file, BODY_LINE + LINES[phase][1], file, BODY_LINE + LINES[phase][2], phase)
            end

            for _, phase in ipairs({ "rewrite", "access", "content" }) do
                it("a raise in " .. phase .. " gives 500 internal_error and a log line", function()
                    write("after.lua", TRACER)
                    boot_ok({ boom = BOOM }, { "boom", { "after", "{ tag = 'z' }" } }, STORE)
                    local req = request({ path = "/" .. phase })
                    host.handle(req, 1)
                    assert.equal(500, req.answer_status)
                    assert.equal("application/json", req.answer_ctype)
                    assert.equal(INTERNAL, req.answer_body)
                    assert.same({ expected(phase) }, errors())
                    -- nothing runs after the failing policy, in this phase or later ones
                    local want = {}
                    for _, ph in ipairs({ "rewrite", "access", "content" }) do
                        if ph == phase then
                            break
                        end
                        want[#want + 1] = ph
                    end
                    assert.same(want, inst("after").seen)
                    -- the log phase still runs
                    host.log(req, 1)
                    assert.equal("log", inst("after").seen[#inst("after").seen])
                end)
            end

            it("a raise in log only logs", function()
                write("after.lua", TRACER)
                boot_ok({ boom = BOOM }, { "boom", { "after", "{ tag = 'z' }" } }, STORE)
                local req = request({ path = "/log" })
                host.handle(req, 1)
                assert.is_nil(req.answered)
                host.log(req, 1)
                assert.is_nil(req.answered)
                assert.same({ expected("log") }, errors())
                assert.same({ "rewrite", "access", "content", "log" }, inst("after").seen)
            end)

            it("a raise after an answer keeps the answer", function()
                boot_ok({ late = policy([[
    function _M:access(r)
        r.resp:exit(403, "no")
        error("after the answer")
    end]]) }, { "late" }, STORE)
                local req = request()
                host.handle(req, 1)
                assert.equal(403, req.answer_status)
                assert.equal("no", req.answer_body)
                assert.matches("after the answer", errors()[1], 1, true)
            end)

            it("appends a traceback when debug is on", function()
                f.state.debug = true
                boot_ok({ boom = BOOM }, { "boom" }, STORE)
                local req = request({ path = "/access" })
                host.handle(req, 1)
                assert.matches("stack traceback", errors()[1], 1, true)
            end)

            it("keeps serving after an error", function()
                boot_ok({ boom = BOOM }, { "boom" }, STORE)
                host.handle(request({ path = "/access" }), 1)
                local req = request({ path = "/fine" })
                host.handle(req, 2)
                assert.is_nil(req.answered)
            end)
        end)
    end

    describe("context and log", function()
        local CTX = policy([[
function _M:access(r)
    r.ctx.user = r.req:header("x-user")
    r.ctx.model = r.req:header("x-model")
    if r.req:header("x-number-model") then r.ctx.model = 42 end
end
function _M:log(r)
    self.seen[#self.seen + 1] = { user = r.ctx.user, status = r.resp.status }
end]])

        it("keeps r.ctx from handle to log for the same id", function()
            boot_ok({ c = CTX }, { "c" })
            local r1 = request({ headers = { { "X-User", "one" } } })
            local r2 = request({ headers = { { "X-User", "two" } } })
            host.handle(r1, 1)
            host.handle(r2, 2)
            r2.status = 429
            host.log(r2, 2)
            r1.status = 200
            host.log(r1, 1)
            assert.same({ { user = "two", status = 429 }, { user = "one", status = 200 } },
                inst("c").seen)
        end)

        it("clears the request after log", function()
            boot_ok({ c = CTX }, { "c" })
            local req = request({ headers = { { "X-User", "one" } } })
            host.handle(req, 7)
            host.log(req, 7)
            host.log(req, 7)
            assert.same({ { user = "one" }, {} }, inst("c").seen)
        end)

        it("runs log for a request that never reached handle", function()
            boot_ok({ c = CTX }, { "c" })
            local req = request()
            req.answer_status = 404
            host.log(req, 9)
            assert.same({ { status = 404 } }, inst("c").seen)
        end)

        it("publishes a string r.ctx.model for the access log", function()
            boot_ok({ c = CTX }, { "c" })
            local req = request({ headers = { { "X-Model", "gpt-4o" } } })
            host.handle(req, 1)
            assert.equal("gpt-4o", req.log_model)
            req = request({ headers = { { "X-Number-Model", "1" } } })
            host.handle(req, 2)
            assert.is_nil(req.log_model)
            req = request()
            host.handle(req, 3)
            assert.is_nil(req.log_model)
        end)

        it("r.shared, r.log and r.now are the host's", function()
            boot_ok({ s = policy([[
function _M:access(r)
    assert(r.shared == self.host.shared and r.log == self.host.log and r.now == self.host.now)
    r.log.warn("hits=%d", r.shared:incr("hits", 1, 0))
    r.resp:exit(200, tostring(r.now()))
end]]) }, { "s" })
            local req = request()
            host.handle(req, 1)
            host.handle(request(), 2)
            assert.equal("1700000000.5", req.answer_body)
            assert.same({ "hits=1", "hits=2" }, f.lines(LOG_WARN))
            assert.equal(2, f.state.dict.hits.v)
        end)
    end)

    describe("phases that wait (the Redis store)", function()
        local REDIS = 'shared_store = { url = "redis://127.0.0.1:6379/0", on_error = %q },'
        local CO = policy([[
function _M:access(r)
    self.seen[#self.seen + 1] = coroutine.running()
    if r.req.path == "/yield" then coroutine.yield() end
end]])
        -- reads "k" (and with /two also increments "n"), answers with what it got
        local WAITER = policy([[
function _M:access(r)
    local v, err = r.shared:get("k")
    r.ctx.got = v
    self.seen[#self.seen + 1] = { v = v, err = err }
    if r.req.path == "/two" then
        self.seen[#self.seen + 1] = { v = r.shared:incr("n", 1, 0, 10) }
    end
    r.resp:exit(200, tostring(v))
end
function _M:log(r)
    self.logged = r.ctx.got
end]])
        local sent, store

        local function boot_redis(sources, enabled, mode)
            local info = boot_ok(sources, enabled, REDIS:format(mode or "local"))
            store = f.state.store
            sent = store.sent
            return info
        end

        it("runs the phases as plain calls with the local store: nothing can wait", function()
            boot_ok({ co = CO }, { "co" })
            host.handle(request(), 1)
            assert.is_nil(inst("co").seen[1])
            local req = request({ path = "/yield" })
            assert.is_false(host.handle(req, 2))
            assert.equal(500, req.answer_status)
            assert.matches("policy 'co' failed in phase access .*yield", errors()[1])
        end)

        it("reuses coroutines across requests", function()
            boot_redis({ co = CO }, { "co" })
            host.handle(request(), 1)
            host.handle(request(), 2)
            local seen = inst("co").seen
            assert.is_not_nil(seen[1])
            assert.equal(seen[1], seen[2])
        end)

        it("answers 500 to a policy that yields and drops its coroutine", function()
            boot_redis({ co = CO }, { "co" })
            host.handle(request(), 1)
            local req = request({ path = "/yield" })
            assert.is_false(host.handle(req, 2))
            assert.equal(500, req.answer_status)
            assert.equal(INTERNAL, req.answer_body)
            assert.same({ "policy phase did not complete: a policy yielded (not supported)" },
                errors())
            local ok = request()
            host.handle(ok, 3)
            assert.is_nil(ok.answered)
            local seen = inst("co").seen
            assert.equal(seen[1], seen[2])
            assert.are_not.equal(seen[2], seen[3])
            host.handle(request(), 4)
            assert.equal(seen[3], seen[4])
        end)

        it("parks a request on a store call and resumes it with the answer", function()
            boot_redis({ w = WAITER }, { "w" })
            local req = request()
            assert.is_true(host.handle(req, 7))
            assert.is_nil(req.answered)
            assert.same({ "GET", "gw:k" }, sent[1].argv)
            assert.equal(-1, sent[1].script)
            -- another request runs meanwhile
            local other = request()
            assert.is_true(host.handle(other, 8))
            store.reply = { type = 2, value = "=hello" }
            assert.is_false(host.resume(other, 8))
            assert.equal("hello", other.answer_body)
            store.reply = { type = 2, value = "42" }
            assert.is_false(host.resume(req, 7))
            assert.equal("42", req.answer_body)
            assert.same({ v = 42 }, inst("w").seen[2])
            assert.is_false(host.log(req, 7))
            assert.equal(42, inst("w").logged, "the log phase sees r.ctx of the parked request")
        end)

        it("waits several times in one phase (an incr through the script)", function()
            boot_redis({ w = WAITER }, { "w" })
            local req = request({ path = "/two" })
            assert.is_true(host.handle(req, 1))
            store.reply = { type = 0 }
            assert.is_true(host.resume(req, 1))
            assert.equal(1, sent[2].script) -- GW_SCRIPT_INCR
            assert.same({ "1", "gw:n", "1", "1", "0", "10000" }, sent[2].argv)
            store.reply = { type = 3, elements = { { type = 1, value = 1 },
                { type = 2, value = "1" } } }
            assert.is_false(host.resume(req, 1))
            assert.same({ v = 1 }, inst("w").seen[2])
            assert.equal("nil", req.answer_body)
        end)

        it("re-sends a script with EVAL after NOSCRIPT", function()
            boot_redis({ w = WAITER }, { "w" })
            local req = request({ path = "/two" })
            host.handle(req, 1)
            store.reply = { type = 0 }
            host.resume(req, 1)
            store.reply = { type = 4, value = "NOSCRIPT No matching script" }
            assert.is_true(host.resume(req, 1))
            assert.equal(1 + 256, sent[3].script)
            assert.same(sent[2].argv, sent[3].argv)
            store.reply = { type = 3, elements = { { type = 1, value = 1 },
                { type = 2, value = "3" } } }
            assert.is_false(host.resume(req, 1))
            assert.same({ v = 3 }, inst("w").seen[2])
        end)

        it("falls back to the local dictionary on a timeout (on_error local)", function()
            boot_redis({ w = WAITER }, { "w" })
            f.state.dict.k = { v = "local value" }
            local req = request()
            host.handle(req, 1)
            store.reply = -1 -- timed out
            assert.is_false(host.resume(req, 1))
            assert.equal("local value", req.answer_body)
        end)

        it("does not wait when the store is down", function()
            boot_redis({ w = WAITER }, { "w" })
            store.down = true
            f.state.dict.k = { v = 5 }
            local req = request()
            assert.is_false(host.handle(req, 1))
            assert.equal("5", req.answer_body)
        end)

        it("answers 503 store_unavailable with on_error closed", function()
            boot_redis({ w = WAITER }, { "w" }, "closed")
            local req = request()
            host.handle(req, 1)
            store.reply = -2
            assert.is_false(host.resume(req, 1))
            assert.equal(503, req.answer_status)
            assert.equal('{"error":{"message":"The shared store is unavailable","type":"error",'
                .. '"code":"store_unavailable"}}', req.answer_body)
            assert.same({}, errors(), "not a policy error")
        end)

        it("drops the coroutine of an aborted request and never resumes it", function()
            boot_redis({ w = WAITER }, { "w" })
            local req = request()
            assert.is_true(host.handle(req, 1))
            assert.is_false(host.abort(req, 1))
            store.reply = { type = 2, value = "1" }
            assert.is_false(host.resume(req, 1))
            assert.is_nil(req.answered)
            assert.equal(0, #inst("w").seen, "the policy never continued")
            assert.is_false(host.log(req, 1)) -- the log phase still runs
            assert.is_nil(inst("w").logged)
        end)

        it("parks the route and the log phase too", function()
            boot_redis({ rl = policy([[
function _M:route(r)
    r.resp:exit(200, tostring(r.shared:get("m")))
end
function _M:log(r)
    self.n = r.shared:incr("viol", 1, 0)
end]]) }, { "rl" })
            local req = request({ method = "POST", path = "/v1/chat/completions" })
            assert.is_true(host.route(req, 3))
            store.reply = { type = 2, value = "=x" }
            assert.is_false(host.resume(req, 3))
            assert.equal("x", req.answer_body)
            assert.is_true(host.log(req, 3))
            store.reply = { type = 3, elements = { { type = 1, value = 1 },
                { type = 2, value = "2" } } }
            assert.is_false(host.resume(req, 3))
            assert.equal(2, inst("rl").n)
        end)

        it("policies never see the password (host.config)", function()
            boot_ok({ a = policy() }, { "a" },
                'shared_store = { url = "redis://:s3cret@127.0.0.1:6379/0" },')
            local st = host.host().config.shared_store
            assert.is_nil(st.password)
            assert.equal("redis://***@127.0.0.1:6379/0", st.url)
        end)

        it("changes maps locally and queues them for Redis, without waiting", function()
            boot_redis({ m = policy([[
function _M:access(r)
    assert(r.shared:map_add("bans", "192.0.2.1", "{}"))
    r.resp:exit(200, tostring(r.shared:map_version("bans")))
end]]) }, { "m" })
            local req = request()
            assert.is_false(host.handle(req, 1))
            assert.equal("1", req.answer_body)
            assert.same({ { watch = "bans" },
                { add = 1, map = "bans", field = "192.0.2.1", value = "{}" } }, f.state.maps)
            assert.equal(0, #sent)
        end)
    end)

    describe("host services", function()
        local h

        before_each(function()
            boot_ok({ a = policy() }, { "a" }, nil, { worker_id = 2 })
            h = host.host()
        end)

        it("host.config is the normalised config", function()
            assert.equal("/v1", h.config.api_prefix)
            assert.equal(8787, h.config.port)
            assert.equal(dir, h.config.policies_dir)
        end)

        it("host.now and host.worker_id", function()
            assert.equal(1700000000.5, h.now())
            f.state.now = 5
            assert.equal(5, h.now())
            assert.equal(2, h.worker_id)
        end)

        it("host.log writes formatted lines at their levels; debug only with DEBUG", function()
            h.log.info("a %d", 1)
            h.log.warn("b %s", "x")
            h.log.err("c")
            h.log.debug("hidden")
            f.state.debug = true
            h.log.debug("shown %d", 2)
            h.log.info("100%")
            assert.same({ { level = LOG_INFO, msg = "a 1" }, { level = LOG_WARN, msg = "b x" },
                { level = LOG_ERROR, msg = "c" }, { level = LOG_DEBUG, msg = "shown 2" },
                { level = LOG_INFO, msg = "100%" } }, f.state.logs)
        end)

        it("host.json encodes and decodes safely", function()
            assert.equal('{"a":1}', h.json.encode({ a = 1 }))
            assert.same({ 1, 2 }, h.json.decode("[1,2]"))
            local v, err = h.json.decode("{")
            assert.is_nil(v)
            assert.is_string(err)
        end)

        it("host.read_file", function()
            local path = write("data.txt", "line\n\0bin")
            assert.equal("line\n\0bin", h.read_file(path))
            local v, err = h.read_file(dir .. "/none.txt")
            assert.is_nil(v)
            assert.matches("none.txt", err, 1, true)
        end)

        it("host.file_info over gw_ffi_file_info", function()
            f.state.files["/data/ban.txt"] = { size = 12, mtime = 1700000000.25 }
            f.state.files["/data"] = f.C.GW_FFI_EINVAL
            f.state.files["/root/x"] = f.C.GW_FFI_EIO
            assert.same({ size = 12, mtime = 1700000000.25 }, h.file_info("/data/ban.txt"))
            assert.same({ nil, "/none: No such file or directory" }, { h.file_info("/none") })
            assert.same({ nil, "/data: not a regular file" }, { h.file_info("/data") })
            assert.same({ nil, "/root/x: cannot stat" }, { h.file_info("/root/x") })
            assert.same({ nil, "invalid path" }, { h.file_info("") })
            assert.same({ nil, "invalid path" }, { h.file_info("/data/ban.txt\0x") })
            assert.has_error(function() h.file_info(42) end)
        end)

        it("host.random_string draws from the alphabet with the asked length", function()
            local ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            local s = h.random_string(100)
            assert.equal(100, #s)
            assert.is_nil(s:find("[^%w]"))
            -- the fake source yields 0, 1, 2, ...: the first characters follow the alphabet
            assert.equal(ALNUM, s:sub(1, 62))
            assert.equal("", h.random_string(0))
            local hex = h.random_string(64, "0123456789abcdef")
            assert.equal(64, #hex)
            assert.is_nil(hex:find("[^0-9a-f]"))
        end)

        it("host.random_string rejects bytes that would bias the draw", function()
            local calls = {}
            f.state.random = function(k)
                calls[#calls + 1] = k
                if #calls == 1 then
                    return "\255\0\255\255\1\255"
                end
                return "\2\3\4\5\6\7"
            end
            -- 3 letters: bytes >= 255 are dropped
            assert.equal("abc", h.random_string(3, "abc"))
            assert.same({ 6, 6 }, calls)
        end)

        it("host.random_string fails loudly when the random source fails", function()
            f.state.random = function() return nil end
            assert.has_error(function() h.random_string(4) end)
        end)

        it("host.persist queues through gw_ffi_persist", function()
            assert.is_true(h.persist("/data/ban.txt", "1.2.3.4\n"))
            assert.same({ { path = "/data/ban.txt", data = "1.2.3.4\n" } }, f.state.persisted)
            f.state.persist_rc = f.C.GW_FFI_EAGAIN
            assert.same({ nil, "persistence queue not available" },
                { h.persist("/data/x", "y") })
            assert.equal(1, #f.state.persisted)
        end)

        it("host.reload asks C to reload", function()
            assert.is_true(h.reload())
            assert.is_true(h.reload())
            assert.equal(2, f.state.reloads)
        end)

        it("host.status decodes gw_ffi_status", function()
            local st = h.status()
            assert.same({ policies = { "models" }, config_version = 1, workers = 1,
                last_reload = { at = 1700000000, ok = true } }, st)
            assert.is_nil(st.last_reload.error)
            f.state.status_json = '{"policies":[],"config_version":2,"workers":4,'
                .. '"last_reload":{"at":1.5,"ok":false,"error":"x.lua:1: bad"}}'
            st = h.status()
            assert.same({ at = 1.5, ok = false, error = "x.lua:1: bad" }, st.last_reload)
        end)

        it("host.status grows its buffer for a long answer", function()
            local names = {}
            for i = 1, 600 do
                names[i] = ('"policy_%04d"'):format(i)
            end
            f.state.status_json = '{"policies":[' .. table.concat(names, ",")
                .. '],"config_version":1,"workers":1,"last_reload":{"at":0,"ok":true,'
                .. '"error":null}}'
            assert.is_true(#f.state.status_json > 4096)
            local st = h.status()
            assert.equal(600, #st.policies)
            assert.equal("policy_0600", st.policies[600])
        end)

        it("host.shared is the dictionary over gw_ffi_shdict_*", function()
            assert.is_true(h.shared:set("k", "v", 10))
            assert.equal("v", h.shared:get("k"))
            f.state.now = f.state.now + 10
            assert.is_nil(h.shared:get("k"))
        end)

        it("host.shared returns nil, err for conditions and raises on misuse", function()
            assert.same({ nil, "empty key" }, { h.shared:set("", 1) })
            assert.same({ nil, "not a number" }, { (function()
                h.shared:set("s", "text")
                return h.shared:incr("s", 1)
            end)() })
            assert.has_error(function() h.shared:set({}, 1) end,
                "bad argument to 'shared:set' (string key expected, got table)")
            assert.has_error(function() h.shared:set("k", true) end)
            assert.has_error(function() h.shared:set("k", 1, -1) end)
            assert.has_error(function() h.shared:incr("k", "1") end)
            assert.has_error(function() h.shared:keys("", -1) end)
            f.state.no_dict = true
            assert.same({ nil, "no shared dict" }, { h.shared:keys("") })
        end)

        it("host.ip is gw.ip", function()
            assert.equal(require("gw.ip"), h.ip)
        end)
    end)
end)
