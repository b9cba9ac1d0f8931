-- pieces-gateway: spec/policies/rate_limit_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

-- a clock value on a 60 s (and 1 s) window boundary
local T0 = 60 * 28333334

describe("rate_limit policy", function()
    local h, chain

    local function setup(conf, extra)
        h = fake.new({ now = T0 })
        chain = {}
        for _, p in ipairs(extra or {}) do
            chain[#chain + 1] = assert(h.load(p[1], p[2]))
        end
        chain[#chain + 1] = assert(h.load("rate_limit", conf))
    end

    before_each(function()
        setup({})
    end)

    local function send(opts)
        opts = opts or {}
        return h.run(chain, h.request({ method = opts.method or "GET",
            path = opts.path or "/v1/models", peer_ip = opts.peer or "203.0.113.1" }))
    end

    local function send_n(n, opts)
        local r
        for _ = 1, n do
            r = send(opts)
            assert.equal(200, r.resp.status)
        end
        return r
    end

    local function assert_429(r, rule)
        assert.equal(429, r.resp.status)
        assert.same({ error = { code = "rate_limit_exceeded", message = "Rate limit exceeded",
            type = "error" } }, h.body(r))
        assert.equal(rule, r.ctx.rate_limited)
        local retry = tonumber(r.resp.headers["retry-after"])
        assert.is_true(retry >= 1 and retry % 1 == 0)
        assert.equal("0", r.resp.headers["ratelimit-remaining"])
        assert.equal(r.resp.headers["retry-after"], r.resp.headers["ratelimit-reset"])
        return retry
    end

    it("allows the default 60 requests per 60 s, then answers 429", function()
        send_n(60)
        local r = send()
        assert_429(r, "default")
        assert.equal("60", r.resp.headers["ratelimit-limit"])
    end)

    it("counts each rejection in gateway_ratelimit_rejections_total{rule}", function()
        setup({ default = { limit = 2, window = 10 } })
        send_n(2)
        assert_429(send(), "default")
        assert_429(send(), "default")
        assert.equal(2, h.metric("gateway_ratelimit_rejections_total", { rule = "default" }))
        assert.equal(0, h.metric("gateway_ratelimit_rejections_total", { rule = "burst" }))
    end)

    it("sets RateLimit headers on allowed responses", function()
        local r = send()
        assert.equal("60", r.resp.headers["ratelimit-limit"])
        assert.equal("59", r.resp.headers["ratelimit-remaining"])
        assert.equal("60", r.resp.headers["ratelimit-reset"])
        h.advance(15.5)
        r = send()
        assert.equal("58", r.resp.headers["ratelimit-remaining"])
        assert.equal("45", r.resp.headers["ratelimit-reset"])
    end)

    it("does not count rejected requests", function()
        setup({ default = { limit = 2, window = 10 } })
        send_n(2)
        for _ = 1, 5 do
            assert_429(send(), "default")
        end
        assert.same({ 2 }, { h.shared:get("rl:default:203.0.113.1:" .. (T0 / 10)) })
    end)

    it("gives a Retry-After after which the request passes, and not before", function()
        send_n(60)
        local retry = assert_429(send(), "default")
        assert.equal(61, retry) -- the full window, then one more second of decay
        h.advance(retry - 1)
        assert_429(send(), "default")
        h.advance(1)
        assert.equal(200, send().resp.status)
    end)

    it("slides: no double burst at a window edge", function()
        h.advance(59)
        send_n(60)
        h.advance(1) -- new fixed window, the previous one still weighs 100%
        assert_429(send(), "default")
        h.advance(30) -- half of the previous window still counts: 30
        send_n(30)
        assert_429(send(), "default")
    end)

    it("computes Retry-After while the previous window decays", function()
        send_n(60)
        h.advance(75) -- previous 60 weighs 45/60: estimate 45
        send_n(15)
        local retry = assert_429(send(), "default")
        -- estimate + 1 <= 60 again once 60 * (60 - e) / 60 + 15 <= 59, at e = 16
        assert.equal(1, retry)
        h.advance(0.5)
        assert_429(send(), "default")
        h.advance(0.5)
        assert.equal(200, send().resp.status)
    end)

    it("keeps clients apart", function()
        send_n(60, { peer = "203.0.113.1" })
        assert_429(send({ peer = "203.0.113.1" }), "default")
        assert.equal(200, send({ peer = "203.0.113.2" }).resp.status)
        assert.equal(200, send({ peer = "2001:db8::1" }).resp.status)
    end)

    it("keys on the resolved client IP", function()
        setup({ default = { limit = 1 } })
        local function via_proxy(client)
            return h.run(chain, h.request({ path = "/v1/models", peer_ip = "10.0.0.1",
                headers = { ["X-Forwarded-For"] = client } }))
        end
        assert.equal(200, via_proxy("198.51.100.1").resp.status)
        assert_429(via_proxy("198.51.100.1"), "default")
        assert.equal(200, via_proxy("198.51.100.2").resp.status)
    end)

    it("rejects everything with limit 0", function()
        setup({ default = { limit = 0, window = 30 } })
        assert.equal(30, assert_429(send(), "default"))
        h.advance(1000)
        assert_429(send(), "default")
    end)

    it("never limits with window 0 or when disabled", function()
        for _, conf in ipairs({ { default = { limit = 1, window = 0 } },
            { default = { limit = 1, enabled = false } } }) do
            setup(conf)
            local r = send_n(5)
            assert.is_nil(r.resp.headers["ratelimit-limit"])
        end
    end)

    it("gives each rule its own window and checks all before counting", function()
        setup({ default = { limit = 3, window = 60 }, burst = { enabled = true, limit = 1 } })
        send_n(1)
        assert_429(send(), "burst") -- must not consume the default budget
        h.advance(2)
        send_n(1)
        h.advance(2)
        local r = send_n(1)
        assert.equal("0", r.resp.headers["ratelimit-remaining"]) -- default is the tightest
        h.advance(2)
        assert_429(send(), "default")
        -- the 1 s burst windows did not reset the 60 s window (the original's bug)
        h.advance(2)
        assert_429(send(), "default")
    end)

    it("reports the rule with the longest wait when several reject", function()
        setup({ default = { limit = 1, window = 60 }, burst = { enabled = true, limit = 1 } })
        send_n(1)
        local r = send()
        assert_429(r, "default")
        assert.equal("1", r.resp.headers["ratelimit-limit"])
    end)

    describe("strict rule", function()
        local STRICT = { default = { limit = 100 }, strict = { enabled = true, limit = 2 } }

        it("guards chat completions only, counted once per request", function()
            setup(STRICT)
            send_n(2, { method = "POST", path = "/v1/chat/completions" })
            assert_429(send({ method = "POST", path = "/v1/chat/completions" }), "strict")
            send_n(5, { path = "/v1/models" })
            send_n(2, { method = "POST", path = "/v1/other" })
            send_n(1, { path = "/v1/chat/completions" }) -- GET: the router's 405, not strict
        end)

        it("guards the LLM call in every ingress format, not count_tokens", function()
            setup(STRICT)
            send_n(1, { method = "POST", path = "/v1/messages" })
            send_n(3, { method = "POST", path = "/v1/messages/count_tokens" })
            send_n(1, { method = "POST", path = "/v1/responses" })
            assert_429(send({ method = "POST", path = "/v1/chat/completions" }), "strict")
            local m = send({ method = "POST", path = "/v1/messages" }) -- Anthropic's shape
            assert.equal(429, m.resp.status)
            assert.same({ type = "error", error = { type = "rate_limit_error",
                message = "Rate limit exceeded" } }, h.body(m))
            assert.equal("strict", m.ctx.rate_limited)
            assert_429(send({ method = "POST", path = "/v1/responses" }), "strict")
        end)

        it("covers model routes and foolproof aliases after the rewrite", function()
            local stub = require("models_stub")
            h = fake.new({ now = T0 })
            h.register("models", stub.new())
            chain = { assert(h.load("model_route", { enabled = true })),
                assert(h.load("foolproof", { enabled = true })),
                assert(h.load("rate_limit", STRICT)) }
            send_n(1, { method = "POST", path = "/gpt-4o/v1/chat/completions" })
            send_n(1, { method = "POST", path = "/v1/completions" })
            assert_429(send({ method = "POST", path = "/v1/chat/completions" }), "strict")
        end)

        it("applies to every route with scope all", function()
            setup({ default = { limit = 100 }, strict = { enabled = true, limit = 2,
                scope = "all" } })
            send_n(2)
            assert_429(send(), "strict")
        end)

        it("is off by default", function()
            send_n(20, { method = "POST", path = "/v1/chat/completions" })
        end)
    end)

    it("skips whitelisted clients", function()
        setup({ default = { limit = 1 } }, { { "ip_rules", { whitelist = { "203.0.113.0/24" } } } })
        local r = send_n(5)
        assert.is_nil(r.resp.headers["ratelimit-limit"])
        send_n(1, { peer = "198.51.100.1" })
        assert_429(send({ peer = "198.51.100.1" }), "default")
    end)

    it("skips OPTIONS", function()
        setup({ default = { limit = 1 } })
        send_n(5, { method = "OPTIONS" })
        send_n(1)
    end)

    it("shares counters between workers", function()
        setup({ default = { limit = 2 } })
        local h2 = fake.new({ peer = h })
        local chain2 = { assert(h2.load("rate_limit", { default = { limit = 2 } })) }
        send_n(1)
        assert.equal(200, h2.run(chain2, h2.request({ path = "/", peer_ip = "203.0.113.1" }))
            .resp.status)
        assert_429(send(), "default")
    end)

    it("lets its counters expire", function()
        send_n(10)
        assert.equal(1, #h.shared:keys("rl:"))
        h.advance(120)
        assert.equal(0, #h.shared:keys("rl:"))
    end)

    it("names its counters rl:<rule>:<ip>:<window index> as the windows move", function()
        local base = T0 / 60
        local function keys()
            local k = h.shared:keys("rl:")
            table.sort(k)
            return k
        end
        send()
        assert.same({ "rl:default:203.0.113.1:" .. base }, keys())
        h.advance(60)
        -- the previous window (one request) still weighs 100 %
        assert.equal("58", send().resp.headers["ratelimit-remaining"])
        assert.same({ "rl:default:203.0.113.1:" .. base, "rl:default:203.0.113.1:" .. base + 1 },
            keys())
        h.advance(600) -- windows skipped: the previous window is base + 10, which never counted
        local r = send()
        assert.equal("59", r.resp.headers["ratelimit-remaining"])
        assert.same({ "rl:default:203.0.113.1:" .. base + 11 }, keys())
    end)

    it("keeps counting a client after its cached counter names were dropped", function()
        setup({ default = { limit = 2 } })
        assert.equal(200, send().resp.status)
        for i = 1, 4100 do -- more clients than the policy keeps names for
            send({ peer = "10.1." .. math.floor(i / 256) .. "." .. i % 256 })
        end
        assert.equal(200, send().resp.status)
        assert_429(send(), "default")
    end)

    it("supports fractional windows", function()
        setup({ default = { limit = 2, window = 0.5 } })
        send_n(2)
        assert_429(send(), "default")
        h.advance(1)
        send_n(2)
    end)

    it("validates its config", function()
        local bad = {
            { default = { limit = -1 } }, { default = { limit = 1.5 } },
            { strict = { window = -1 } }, { burst = { enabled = "true" } },
            { default = { scope = "chat" } }, { strict = { scope = "some" } },
            { burst = 5 }, { default = { limit = "60" } },
        }
        for _, conf in ipairs(bad) do
            local inst, err = h.load("rate_limit", conf)
            assert.is_nil(inst)
            assert.matches("rate_limit: ", err)
        end
    end)
    describe("with the shared (Redis) store", function()
        local a, b, chain_a, chain_b

        -- two gateway instances on one fake Redis
        local function instances(mode, conf)
            a = fake.new({ now = T0, store = { on_error = mode } })
            b = fake.new({ now = T0, store = { on_error = mode, server = a.store.server } })
            b.clock = a.clock
            chain_a = { assert(a.load("rate_limit", conf or { default = { limit = 10 } })) }
            chain_b = { assert(b.load("rate_limit", conf or { default = { limit = 10 } })) }
        end

        local function on(host, c, ip)
            return host.run(c, host.request({ path = "/v1/models", peer_ip = ip or "203.0.113.1" }))
        end

        local function statuses(rs)
            local out = {}
            for _, r in ipairs(rs) do
                out[r.resp.status] = (out[r.resp.status] or 0) + 1
            end
            return out
        end

        it("waits for the store and shares the limit across instances", function()
            instances("local")
            for i = 1, 10 do
                assert.equal(200, on(i % 2 == 0 and a or b, i % 2 == 0 and chain_a or chain_b)
                    .resp.status)
            end
            assert.equal(429, on(a, chain_a).resp.status)
            assert.equal(429, on(b, chain_b).resp.status)
            assert.equal(12, a.store.calls + b.store.calls) -- one call per request
            assert.equal(12, a.waits + b.waits)
            assert.same({}, a.local_shared:keys("rl:"), "nothing was counted locally")
        end)

        it("admits exactly the limit when many requests wait at once", function()
            instances("local", { default = { limit = 25 } })
            local rs = {}
            for i = 1, 60 do
                rs[i] = a.request({ path = "/v1/models", peer_ip = "203.0.113.1" })
            end
            a.run_all(chain_a, rs)
            assert.same({ [200] = 25, [429] = 35 }, statuses(rs))
        end)

        it("a store slower than its timeout falls back to the own count (local)", function()
            instances("local", { default = { limit = 3 } })
            a.store.delay = 0.2 -- > the 50 ms timeout
            for _ = 1, 3 do
                assert.equal(200, on(a, chain_a).resp.status)
            end
            assert.equal(429, on(a, chain_a).resp.status) -- the same limit, per instance
            assert.equal(4, a.store.timeouts)
            assert.equal(200, on(b, chain_b).resp.status, "B has its own count meanwhile")
            a.store.delay = 0.01 -- fast again: the shared count applies (only B's one so far)
            assert.equal(200, on(a, chain_a).resp.status)
        end)

        it("open admits while the store is down, and counts locally", function()
            instances("open", { default = { limit = 2 } })
            a.store.down = true
            for _ = 1, 5 do
                local r = on(a, chain_a)
                assert.equal(200, r.resp.status)
            end
            assert.equal(1, #a.local_shared:keys("rl:"))
            assert.equal(0, a.store.calls, "a store known to be down is not waited for")
        end)

        it("closed answers 503 store_unavailable while the store fails", function()
            instances("closed")
            a.store.fail = true
            local r = on(a, chain_a)
            assert.equal(503, r.resp.status)
            assert.same({ error = { code = "store_unavailable", type = "error",
                message = "The shared store is unavailable" } }, a.body(r))
            assert.is_nil(r.ctx.rate_limited)
            a.store.fail = false
            assert.equal(200, on(a, chain_a).resp.status)
        end)
    end)
end)
