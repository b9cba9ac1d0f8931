-- The fake host itself: its dictionary, clock and request objects must follow
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
-- docs/policy-api.md, or every policy spec built on it proves nothing.
local fake = require "fake_host"

describe("fake host", function()
    local h, d

    before_each(function()
        h = fake.new({ now = 1000 })
        d = h.shared
    end)

    describe("shared dictionary", function()
        it("sets, gets and deletes strings and numbers", function()
            assert.is_true(d:set("a", "x"))
            assert.is_true(d:set("b", 1.5))
            assert.equal("x", d:get("a"))
            assert.equal(1.5, d:get("b"))
            assert.is_true(d:delete("a"))
            assert.is_nil(d:get("a"))
            assert.is_true(d:delete("missing"))
            local ok, err = d:set("c", {})
            assert.is_nil(ok)
            assert.is_string(err)
        end)

        it("expires keys on the fake clock; ttl nil or 0 never expires", function()
            d:set("t", 1, 10)
            d:set("n", 1, 0)
            d:set("m", 1)
            h.advance(9.9)
            assert.equal(1, d:get("t"))
            h.advance(0.1)
            assert.is_nil(d:get("t"))
            h.advance(1e6)
            assert.equal(1, d:get("n"))
            assert.equal(1, d:get("m"))
        end)

        it("adds only missing (or expired) keys", function()
            assert.is_true(d:add("k", "v", 5))
            assert.same({ false, "exists" }, { d:add("k", "w") })
            assert.equal("v", d:get("k"))
            h.advance(5)
            assert.is_true(d:add("k", "w"))
        end)

        it("increments with init and ttl, keeping the ttl of existing keys", function()
            assert.same({ nil, "not found" }, { d:incr("c", 1) })
            assert.equal(5, d:incr("c", 2, 3, 10))
            h.advance(5)
            assert.equal(6, d:incr("c", 1, 0, 100))
            h.advance(5)
            assert.is_nil(d:get("c"))
            d:set("s", "text")
            assert.is_nil(d:incr("s", 1, 0))
        end)

        it("lists live keys by prefix, up to max", function()
            d:set("p:1", 1)
            d:set("p:2", 1, 1)
            d:set("p:3", 1)
            d:set("q:1", 1)
            assert.same({ "p:1", "p:2", "p:3" }, d:keys("p:"))
            assert.same({ "p:1" }, d:keys("p:", 1))
            h.advance(1)
            assert.same({ "p:1", "p:3" }, d:keys("p:"))
        end)

        it("is shared with a peer worker, and r.shared is host.shared", function()
            local h2 = fake.new({ peer = h })
            d:set("x", 1)
            assert.equal(1, h2.shared:get("x"))
            h2.advance(5)
            assert.equal(1005, h.host.now())
            assert.equal(h.host.shared, h.request({}).shared)
        end)
    end)

    describe("requests", function()
        it("splits path and query and reads headers case-insensitively", function()
            local r = h.request({ method = "POST", path = "/v1/models?x=1&y",
                headers = { ["Content-Type"] = "application/json", ["X-Multi"] = { "a", "b" } },
                body = "{}" })
            assert.equal("/v1/models", r.req.path)
            assert.equal("x=1&y", r.req.query)
            assert.equal("/v1/models?x=1&y", r.req.uri)
            assert.equal("application/json", r.req:header("content-type"))
            assert.equal("a", r.req:header("x-multi"))
            assert.is_nil(r.req:header("missing"))
            assert.equal("{}", r.req:body())
            assert.equal("", h.request({}).req:body())
            assert.equal("", h.request({ path = "/" }).req.query)
        end)

        it("computes r.req.api from the prefix", function()
            local function api(path, prefix)
                return fake.new({ api_prefix = prefix }).request({ path = path }).req.api
            end
            assert.is_true(api("/v1"))
            assert.is_true(api("/v1/"))
            assert.is_true(api("/v1/anything"))
            assert.is_false(api("/v1x"))
            assert.is_false(api("/"))
            assert.is_false(api("/ping"))
            assert.is_false(api("/admin/blacklist"))
            assert.is_false(api("/gpt-4o/v1/chat/completions"))
            assert.is_true(api("/chat/completions", ""))
            assert.is_false(api("/ping", ""))
            assert.is_false(api("/admin", ""))
            assert.is_false(api("/admin/x", ""))
        end)

        it("resolves the client IP through trusted proxies", function()
            local r = h.request({ peer_ip = "::ffff:127.0.0.1",
                headers = { ["X-Forwarded-For"] = "198.51.100.1, 10.1.1.1" } })
            assert.equal("127.0.0.1", r.req.peer_ip)
            assert.equal("198.51.100.1", r.req.client_ip)
            r = h.request({ peer_ip = "203.0.113.1",
                headers = { ["X-Forwarded-For"] = "198.51.100.1" } })
            assert.equal("203.0.113.1", r.req.client_ip)
        end)

        it("allows set_path in the rewrite phase only", function()
            local r = h.request({ path = "/a" })
            local rw = { rewrite = function(_, rr) rr.req:set_path("/v1/b") end }
            h.run({ rw }, r)
            assert.equal("/v1/b", r.req.path)
            assert.is_true(r.req.api)
            local bad = { access = function(_, rr) rr.req:set_path("/x") end }
            assert.has_error(function() h.run({ bad }, h.request({})) end)
        end)
    end)

    describe("run", function()
        it("stops at the first answer but always runs log", function()
            local seen = {}
            local function p(name, answer)
                local t = {}
                for _, phase in ipairs({ "rewrite", "access", "content", "route", "log" }) do
                    t[phase] = function(_, r)
                        seen[#seen + 1] = name .. "." .. phase
                        if answer == phase then
                            r.resp:error(418, "teapot", "no")
                        end
                    end
                end
                return t
            end
            h.run({ p("a"), p("b", "access"), p("c") },
                h.request({ method = "POST", path = "/v1/chat/completions" }))
            assert.same({ "a.rewrite", "b.rewrite", "c.rewrite", "a.access", "b.access",
                "a.log", "b.log", "c.log" }, seen)
        end)

        it("runs route only for POST {P}/chat/completions and {P}/tokenize", function()
            local n = 0
            local p = { route = function() n = n + 1 end }
            h.run({ p }, h.request({ method = "POST", path = "/v1/chat/completions" }))
            h.run({ p }, h.request({ method = "POST", path = "/v1/tokenize" }))
            h.run({ p }, h.request({ method = "GET", path = "/v1/chat/completions" }))
            h.run({ p }, h.request({ method = "POST", path = "/v1/models" }))
            assert.equal(2, n)
        end)

        it("answers 500 internal_error for a failing phase, like the host", function()
            h.raise_errors = false
            local r = h.run({ { access = function() error("boom") end } }, h.request({}))
            assert.equal(500, r.resp.status)
            assert.equal("internal_error", h.body(r).error.code)
            assert.is_true(h.logged("err", "boom", true))
        end)

        it("encodes table bodies as JSON and records headers", function()
            local r = h.run({ { access = function(_, rr)
                rr.resp:set_header("X-A", 1)
                rr.resp:exit(201, { ok = true })
            end } }, h.request({}))
            assert.equal(201, r.resp.status)
            assert.equal("application/json", r.resp.content_type)
            assert.same({ ok = true }, h.body(r))
            assert.equal("1", r.resp.headers["x-a"])
        end)
    end)

    describe("window_incr and maps", function()
        it("checks every rule before counting any, in one step", function()
            local rules = {
                { key = "a:2", prev = "a:1", weight = 0.5, limit = 3, ttl = 10 },
                { key = "b:2", prev = "b:1", weight = 0, limit = 1, ttl = 10 },
            }
            d:set("a:1", 2)
            assert.is_true(d:window_incr(rules))
            assert.same({ 0, 2 }, { rules[1].count, rules[1].prev_count })
            assert.is_false(d:window_incr(rules)) -- b is full: a not counted either
            assert.equal(1, d:get("a:2"))
            h.advance(10)
            assert.is_nil(d:get("a:2"), "created with its ttl")
            d:set("b:1", "x")
            assert.same({ nil, "not a number" }, { d:window_incr(rules) })
        end)

        it("keeps maps with a version that moves on every change", function()
            assert.equal(0, d:map_version("m"))
            assert.is_true(d:map_add("m", "f", "v"))
            assert.same({ false, "exists" }, { d:map_add("m", "f", "w") })
            assert.equal(1, d:map_version("m"))
            assert.same({ f = "v" }, d:map_items("m"))
            assert.is_true(d:map_delete("m", "f"))
            assert.is_false(d:map_delete("m", "f"))
            assert.equal(2, d:map_version("m"))
            assert.same({}, d:map_items("m"))
        end)
    end)

    describe("with a (fake Redis) store", function()
        local s, calls

        local GETTER = { access = function(_, r)
            calls[#calls + 1] = { r.shared:get("k") }
            r.resp:exit(200, tostring(calls[#calls][1]))
        end }

        before_each(function()
            h = fake.new({ now = 1000, store = { timeout = 0.05 } })
            s, calls = h.store, {}
            s.server.dict:set("k", "redis")
            h.local_shared:set("k", "local")
        end)

        it("a call inside a phase waits for the store, like the real host", function()
            local r = h.run({ GETTER }, h.request({}))
            assert.equal("redis", r.resp.body)
            assert.equal(1, h.waits)
            assert.equal(1, s.calls)
        end)

        it("outside a request nothing waits: the local dictionary answers", function()
            assert.equal("local", h.shared:get("k"))
            assert.equal(0, s.calls)
        end)

        it("slow, down and failing stores follow on_error", function()
            s.delay = 0.01
            assert.equal("redis", h.run({ GETTER }, h.request({})).resp.body)
            assert.equal(1000.01, h.clock.t, "the wait took the store's delay")
            s.delay = 1
            assert.equal("local", h.run({ GETTER }, h.request({})).resp.body)
            assert.equal(1, s.timeouts)
            s.delay, s.down = 0, true
            assert.equal("local", h.run({ GETTER }, h.request({})).resp.body)
            s.down, s.on_error = false, "closed"
            s.fail = true
            local r = h.run({ GETTER }, h.request({}))
            assert.equal(503, r.resp.status)
            assert.equal("store_unavailable", h.body(r).error.code)
        end)

        it("run_all keeps several requests waiting at once", function()
            local order = {}
            local P = { access = function(_, r)
                order[#order + 1] = "start " .. r.req.path
                r.shared:incr("n", 1, 0)
                order[#order + 1] = "end " .. r.req.path
            end }
            h.run_all({ P }, { h.request({ path = "/1" }), h.request({ path = "/2" }) })
            assert.same({ "start /1", "start /2", "end /1", "end /2" }, order)
            assert.equal(2, s.server.dict:get("n"))
        end)

        it("answers 500 to a policy that yields by itself", function()
            h.raise_errors = false
            local r = h.run({ { access = function() coroutine.yield() end } }, h.request({}))
            assert.equal(500, r.resp.status)
            assert.is_true(h.logged("err", "a policy yielded (not supported)", true))
        end)
    end)

    it("keeps host.config read-only", function()
        assert.has_error(function() h.host.config.api_prefix = "/x" end)
        assert.equal("/v1", h.host.config.api_prefix)
    end)
end)
