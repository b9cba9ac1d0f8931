-- pieces-gateway: spec/policies/foolproof_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

local EXPECTED_V1 = {
    "/chat/completions", "/completions",
    "/chat/completions/chat/completions", "/completions/chat/completions",
    "/chat/completions/completions", "/completions/completions",
    "/chat/completions/v1/chat/completions", "/completions/v1/chat/completions",
    "/chat/completions/v1/completions", "/completions/v1/completions",
    "/v1/chat/completions/chat/completions", "/v1/completions",
    "/v1/chat/completions/completions", "/v1/completions/chat/completions",
    "/v1/chat/completions/v1/chat/completions", "/v1/completions/completions",
    "/v1/chat/completions/v1/completions", "/v1/completions/v1/chat/completions",
    "/v1/completions/v1/completions",
}

describe("foolproof policy", function()
    local h, chain

    local function setup(conf, prefix)
        h = fake.new({ api_prefix = prefix })
        chain = { assert(h.load("foolproof", conf)) }
    end

    before_each(function()
        setup({ enabled = true })
    end)

    local function send(path, method)
        return h.run(chain, h.request({ method = method or "POST", path = path }))
    end

    it("computes exactly the 19 paths of the original service", function()
        local got = {}
        for p in pairs(require("foolproof").paths("/v1")) do
            got[#got + 1] = p
        end
        table.sort(got)
        local want = { unpack(EXPECTED_V1) }
        table.sort(want)
        assert.same(want, got)
    end)

    it("rewrites each path, with and without one trailing slash", function()
        for _, p in ipairs(EXPECTED_V1) do
            for _, path in ipairs({ p, p .. "/" }) do
                local r = send(path)
                assert.equal("/v1/chat/completions", r.req.path, path)
                assert.is_true(r.req.api)
                assert.equal("foolproof", r.ctx.route_alias)
                assert.equal("Non-standard path, please use: /v1/chat/completions",
                    r.resp.headers["x-warning"])
            end
        end
    end)

    it("leaves the canonical path and near misses alone", function()
        for _, p in ipairs({ "/v1/chat/completions", "/v1/chat/completions/",
            "/chat/completions//", "/v1/v1/chat/completions", "/completion", "/",
            "/v1/models" }) do
            local r = send(p)
            assert.equal(p, r.req.path)
            assert.is_nil(r.resp.headers["x-warning"])
            assert.is_nil(r.ctx.route_alias)
        end
    end)

    it("answers other methods with 405 and no warning header", function()
        for _, m in ipairs({ "GET", "PUT", "DELETE" }) do
            local r = send("/v1/completions", m)
            assert.equal(405, r.resp.status)
            assert.same({ error = { code = "method_not_allowed", message = "Method not allowed",
                type = "error" } }, h.body(r))
            assert.is_nil(r.resp.headers["x-warning"])
        end
        assert.equal(200, send("/v1/completions", "OPTIONS").resp.status)
    end)

    it("follows a custom prefix", function()
        setup({ enabled = true }, "/api/v2")
        local r = send("/completions/api/v2/completions/")
        assert.equal("/api/v2/chat/completions", r.req.path)
        assert.equal("Non-standard path, please use: /api/v2/chat/completions",
            r.resp.headers["x-warning"])
        assert.equal("/v1/completions", send("/v1/completions").req.path)
    end)

    it("is forced off with a warning when the prefix is empty", function()
        setup({ enabled = true }, "")
        assert.is_true(h.logged("warn", "Foolproof routing is not supported when APIPrefix is "
            .. "empty, automatically disabled. Recommend using /v1 as prefix", true))
        local r = send("/completions")
        assert.equal("/completions", r.req.path)
        assert.is_nil(r.resp.headers["x-warning"])
    end)

    it("does nothing when disabled, without a warning", function()
        setup({ enabled = false }, "")
        assert.equal(0, #h.logs)
        setup({})
        assert.equal("/completions", send("/completions").req.path)
        assert.equal(200, send("/completions", "GET").resp.status)
    end)

    it("rejects a non-boolean enabled", function()
        local inst, err = h.load("foolproof", { enabled = 1 })
        assert.is_nil(inst)
        assert.matches("enabled", err)
    end)
end)
