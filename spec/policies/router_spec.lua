-- pieces-gateway: spec of policies/router.lua (backend order, overrides, circuit breakers) and
-- of the catalog's backends (policies/models.lua) and the chat policy's targets.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local fake = require "fake_host"

local BACKENDS = {
    { name = "pieces", type = "pieces" },
    { name = "openai", type = "openai", models = {
        { id = "gpt-4o", model = "openai/gpt-4o" }, { id = "deepseek-chat", model = "ds-v3" },
    } },
}

describe("router policy", function()
    local h, router, chain

    local function setup(conf, opts)
        opts = opts or {}
        h = fake.new({ backends = opts.backends or BACKENDS, backend_order = opts.order,
            breaker = opts.breaker or { failures = 3, cooldown = 10 } })
        assert(h.load("models", {}))
        assert(h.load("pieces", {}))
        local auth = opts.keys and assert(h.load("auth", { keys = opts.keys }))
        local chat = assert(h.load("chat", {}))
        router = assert(h.load("router", conf or {}))
        chain = { chat, router }
        if auth then
            table.insert(chain, 1, auth)
        end
    end

    before_each(function()
        setup()
    end)

    local function request(model, headers)
        local body = { model = model, messages = { { role = "user", content = "hi" } } }
        return h.request({ method = "POST", path = "/v1/chat/completions", headers = headers,
            body = cjson.encode(body) })
    end

    -- attempts: { backend, result } pairs the C core reports for the log phase
    local function attempts_of(list)
        local out = {}
        for i, a in ipairs(list) do
            out[i] = { backend = a[1], result = a[2], status = 0, next = "none" }
        end
        return out
    end

    -- A whole request; the handler (the C core's part) reports the given attempts.
    local function send(model, headers, ...)
        local list = { ... }
        return h.run(chain, request(model, headers), function(r)
            r.attempts = attempts_of(list)
        end)
    end

    -- The route phase only (a request still in flight), then its log phase later.
    local function start(model)
        local r = request(model)
        chain[#chain - 1]:route(r)
        router:route(r)
        return r
    end

    local function order(r)
        local out = {}
        for i, t in ipairs(r.upstream and r.upstream.targets or {}) do
            out[i] = t.backend
        end
        return out
    end

    local function finish(r, ...)
        r.attempts = attempts_of({ ... })
        router:log(r)
        return r
    end

    local function fail(model, ...)
        return send(model, nil, ...)
    end

    describe("targets", function()
        it("one per backend serving the model, in backend order", function()
            local r = send("gpt-4o")
            assert.same({ "pieces", "openai" }, order(r))
            local t = r.upstream.targets
            assert.equal("gpt-4o", t[1].model)
            assert.equal(0, t[1].variant)
            assert.equal("openai/gpt-4o", t[2].model)
            assert.equal("o200k_base", t[2].encoding)
            assert.is_nil(t[2].parts)
            assert.same({ "openai" }, order(send("deepseek-chat")))
            assert.same({ "pieces" }, order(send("gemini-pro")))
        end)

        it("follows backend_order, also when the config lists backends the other way", function()
            setup(nil, { order = { "openai", "pieces" } })
            assert.same({ "openai", "pieces" }, order(send("gpt-4o")))
            setup({ order = { "openai" } })
            assert.same({ "openai", "pieces" }, order(send("gpt-4o")))
        end)

        it("counts an OpenAI-only model's prompt with OpenAI's rule", function()
            h.token_counter = function(_, text) return #text end
            local t = send("deepseek-chat").upstream.targets[1]
            assert.equal(3 + 3 + #"hi" + #"user", t.prompt_tokens)
            assert.equal(0, t.completion_offset or 0)
        end)
    end)

    describe("overrides", function()
        it("a header naming a backend puts it first", function()
            setup({ header = "X-Gateway-Backend" })
            assert.same({ "openai", "pieces" },
                order(send("gpt-4o", { ["X-Gateway-Backend"] = "openai" })))
            assert.same({ "pieces", "openai" },
                order(send("gpt-4o", { ["X-Gateway-Backend"] = "nope" })))
        end)

        it("by API key position", function()
            setup({ by_key = { ["2"] = { "openai" } } }, { keys = { "k1", "k2" } })
            assert.same({ "pieces", "openai" },
                order(send("gpt-4o", { Authorization = "Bearer k1" })))
            assert.same({ "openai", "pieces" },
                order(send("gpt-4o", { Authorization = "Bearer k2" })))
        end)

        it("by weight", function()
            setup({ weights = { pieces = 1, openai = 3 } })
            local firsts = {}
            for _, x in ipairs({ 0.1, 0.24, 0.26, 0.9 }) do
                router.random = function() return x end
                firsts[#firsts + 1] = order(send("gpt-4o"))[1]
            end
            assert.same({ "pieces", "pieces", "openai", "openai" }, firsts)
            router.random = function() return 0.99 end
            assert.same({ "pieces" }, order(send("gemini-pro")), "weights only reorder")
        end)

        it("rejects bad config", function()
            for _, conf in ipairs({ { failures = 0 }, { cooldown = -1 }, { order = "x" },
                { header = 5 }, { by_key = { a = "openai" } }, { weights = { pieces = "1" } },
                { always = 1 } }) do
                h = fake.new({ backends = BACKENDS })
                local inst, err = h.load("router", conf)
                assert.is_nil(inst)
                assert.is_string(err)
            end
        end)
    end)

    describe("circuit breaker", function()
        it("opens after `failures` consecutive failures and skips the backend", function()
            for _ = 1, 2 do
                fail("gpt-4o", { "pieces", "unreachable" }, { "openai", "ok" })
            end
            assert.equal("closed", router:breakers().pieces.state)
            fail("gpt-4o", { "pieces", "timeout" }, { "openai", "ok" })
            local b = router:breakers()
            assert.equal("open", b.pieces.state)
            assert.equal(3, b.pieces.failures)
            assert.equal(10, b.pieces.retry_in)
            assert.equal("closed", b.openai.state)
            assert.same({ "openai" }, order(send("gpt-4o")))
            assert.is_true(h.logged("warn", "circuit breaker open", true))
        end)

        it("a success in between resets the count; refused counts as an answer", function()
            fail("gpt-4o", { "pieces", "bad_answer" })
            fail("gpt-4o", { "pieces", "bad_answer" })
            fail("gpt-4o", { "pieces", "refused" })
            fail("gpt-4o", { "pieces", "unreachable" }, { "pieces", "unreachable" })
            assert.equal("closed", router:breakers().pieces.state)
            fail("gpt-4o", { "pieces", "cancelled" })
            assert.equal(2, router:breakers().pieces.failures)
        end)

        it("answers 503 with Retry-After when every backend of the model is open", function()
            for _ = 1, 3 do
                fail("gemini-pro", { "pieces", "unreachable" })
            end
            h.advance(4)
            local r = send("gemini-pro")
            assert.equal(503, r.resp.status)
            assert.equal("6", r.resp.headers["retry-after"])
            assert.equal("service_unavailable", h.body(r).error.code)
        end)

        it("lets one probe through after the cool-down; its success closes it", function()
            for _ = 1, 3 do
                fail("gpt-4o", { "pieces", "unreachable" }, { "openai", "ok" })
            end
            h.advance(10)
            assert.equal("half_open", router:breakers().pieces.state)
            local probe = start("gpt-4o")
            assert.same({ "pieces", "openai" }, order(probe))
            assert.same({ "openai" }, order(start("gpt-4o")), "one probe at a time")
            finish(probe, { "pieces", "ok" })
            assert.equal("closed", router:breakers().pieces.state)
            assert.same({ "pieces", "openai" }, order(send("gpt-4o")))
        end)

        it("a failed probe opens it again for another cool-down", function()
            for _ = 1, 3 do
                fail("gpt-4o", { "pieces", "unreachable" }, { "openai", "ok" })
            end
            h.advance(11)
            local probe = start("gpt-4o")
            finish(probe, { "pieces", "timeout" }, { "openai", "ok" })
            assert.equal("open", router:breakers().pieces.state)
            assert.same({ "openai" }, order(send("gpt-4o")))
            h.advance(10)
            assert.same({ "pieces", "openai" }, order(send("gpt-4o")))
        end)

        it("frees a probe its request never used", function()
            for _ = 1, 3 do
                fail("gpt-4o", { "pieces", "unreachable" }, { "openai", "ok" })
            end
            h.advance(10)
            fail("gpt-4o", { "pieces", "cancelled" })
            assert.same({ "pieces", "openai" }, order(send("gpt-4o")))
        end)

        it("is shared by the workers (the shared dictionary)", function()
            for _ = 1, 3 do
                fail("gpt-4o", { "pieces", "unreachable" }, { "openai", "ok" })
            end
            local other = fake.new({ peer = h, backends = BACKENDS })
            local r2 = assert(other.load("router", {}))
            assert.equal("open", r2:breakers().pieces.state)
        end)

        it("never skips the only configured backend unless `always`", function()
            local one = { { name = "pieces", type = "pieces" } }
            setup(nil, { backends = one })
            for _ = 1, 5 do
                fail("gpt-4o", { "pieces", "unreachable" })
            end
            assert.equal("open", router:breakers().pieces.state)
            assert.same({ "pieces" }, order(send("gpt-4o")))
            setup({ always = true }, { backends = one })
            for _ = 1, 3 do
                fail("gpt-4o", { "pieces", "unreachable" })
            end
            assert.equal(503, send("gpt-4o").resp.status)
        end)
    end)
end)

describe("models policy with backends", function()
    it("lists each backend's models once, in backend order, Pieces entries unchanged", function()
        local h = fake.new({ backends = {
            { name = "pieces", type = "pieces" },
            { name = "or", type = "openai", models = {
                { id = "gpt-4o", model = "openai/gpt-4o" }, { id = "claude-x", model = "a/c" },
                { id = "custom", model = "m", encoding = "cl100k_base" } } },
        } })
        local m = assert(h.load("models", {}))
        local doc = cjson.decode(m:list_json())
        assert.equal(16, #doc.data) -- gpt-4o once
        assert.same({ id = "claude-x", object = "model", created = 0, owned_by = "or" },
            doc.data[15])
        assert.equal("openai", doc.data[4].owned_by)
        assert.equal(2, #m:resolve("gpt-4o").backends)
        assert.equal("claude", m:resolve("claude-x").encoding)
        assert.equal("cl100k_base", m:resolve("custom").encoding)
        assert.equal("o200k_base", m:resolve("gpt-4o").encoding)
    end)

    it("has no Pieces models without a pieces backend", function()
        local h = fake.new({ backends = { { name = "oai", type = "openai",
            models = { { id = "a", model = "a" } } } } })
        local m = assert(h.load("models", {}))
        assert.same({ "a" }, m:ids())
    end)
end)
