-- pieces-gateway: spec/policies/model_route_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"
local models_stub = require "models_stub"

describe("model_route policy", function()
    local h, chain

    local function setup(conf, prefix)
        h = fake.new({ api_prefix = prefix })
        h.register("models", models_stub.new())
        local mr = assert(h.load("model_route", conf))
        chain = { mr }
        return mr
    end

    before_each(function()
        setup({ enabled = true })
    end)

    local function post(path, method)
        return h.run(chain, h.request({ method = method or "POST", path = path }))
    end

    it("rewrites every catalog id to the chat path", function()
        for _, id in ipairs(models_stub.IDS) do
            local r = post("/" .. id .. "/v1/chat/completions")
            assert.equal("/v1/chat/completions", r.req.path)
            assert.equal(id, r.ctx.route_model)
            assert.equal("model", r.ctx.route_alias)
            assert.is_true(r.req.api)
            assert.equal(200, r.resp.status)
        end
    end)

    it("adds the claude dash form, preset to the dash spelling", function()
        local r = post("/claude-3-5-sonnet-20240620/v1/chat/completions")
        assert.equal("/v1/chat/completions", r.req.path)
        assert.equal("claude-3-5-sonnet-20240620", r.ctx.route_model)
        -- and the catalog resolves the preset
        assert.equal("claude-3-5-sonnet@20240620",
            h.host.policy("models"):resolve(r.ctx.route_model).id)
    end)

    it("has no dash form for ids without @", function()
        local r = post("/gpt-4o-/v1/chat/completions")
        assert.equal("/gpt-4o-/v1/chat/completions", r.req.path)
        assert.is_nil(r.ctx.route_model)
    end)

    it("leaves unknown models, trailing slashes and other paths alone", function()
        for _, p in ipairs({ "/gpt-5/v1/chat/completions", "/gpt-4o/v1/chat/completions/",
            "/gpt-4o/v1/completions", "/v1/chat/completions", "/gpt-4o/chat/completions",
            "/GPT-4O/v1/chat/completions" }) do
            local r = post(p)
            assert.equal(p, r.req.path)
            assert.is_nil(r.ctx.route_model)
        end
    end)

    it("answers other methods with 405 in the access phase", function()
        local r = post("/gpt-4o/v1/chat/completions", "GET")
        assert.equal(405, r.resp.status)
        assert.same({ error = { code = "method_not_allowed", message = "Method not allowed",
            type = "error" } }, h.body(r))
        assert.equal("/gpt-4o/v1/chat/completions", r.req.path)
        assert.equal("model_route", r.resp.answered_by)
    end)

    it("lets policies ahead of it in the access phase answer first", function()
        local first = { access = function(_, r) r.resp:error(403, "ip_blocked", "x") end }
        chain = { first, chain[1] }
        local r = post("/gpt-4o/v1/chat/completions", "PUT")
        assert.equal(403, r.resp.status)
    end)

    it("leaves OPTIONS to the host", function()
        local r = post("/gpt-4o/v1/chat/completions", "OPTIONS")
        assert.equal(200, r.resp.status)
    end)

    it("does nothing when disabled", function()
        setup({ enabled = false })
        local r = post("/gpt-4o/v1/chat/completions")
        assert.equal("/gpt-4o/v1/chat/completions", r.req.path)
        assert.is_nil(r.ctx.route_model)
        r = post("/gpt-4o/v1/chat/completions", "GET")
        assert.equal(200, r.resp.status)
        setup({})
        assert.equal("/gpt-4/v1/chat/completions", post("/gpt-4/v1/chat/completions").req.path)
    end)

    it("follows the prefix, empty included", function()
        setup({ enabled = true }, "/api")
        assert.equal("/api/chat/completions", post("/gpt-4/api/chat/completions").req.path)
        setup({ enabled = true }, "")
        local r = post("/gpt-4/chat/completions")
        assert.equal("/chat/completions", r.req.path)
        assert.equal("gpt-4", r.ctx.route_model)
    end)

    it("rejects a non-boolean enabled", function()
        local inst, err = h.load("model_route", { enabled = "yes" })
        assert.is_nil(inst)
        assert.matches("enabled", err)
    end)

    it("fails loudly without the models policy", function()
        h = fake.new()
        local mr = assert(h.load("model_route", { enabled = true }))
        assert.has_error(function()
            h.run({ mr }, h.request({ method = "POST", path = "/gpt-4/v1/chat/completions" }))
        end)
    end)
end)
