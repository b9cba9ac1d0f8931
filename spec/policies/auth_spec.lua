-- pieces-gateway: spec/policies/auth_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

describe("auth policy", function()
    local h, chain

    local function setup(keys, prefix)
        h = fake.new({ api_prefix = prefix })
        chain = { assert(h.load("auth", { keys = keys })) }
    end

    before_each(function()
        setup({ "sk-secret" })
    end)

    local function send(auth, path, method)
        return h.run(chain, h.request({ method = method or "POST",
            path = path or "/v1/chat/completions", headers = { Authorization = auth } }))
    end

    local function assert_401(r, message)
        assert.equal(401, r.resp.status)
        assert.same({ error = { code = "unauthorized", message = message, type = "error" } },
            h.body(r))
    end

    it("accepts the exact Bearer key", function()
        local r = send("Bearer sk-secret")
        assert.equal(200, r.resp.status)
        assert.equal(1, r.ctx.api_key_index)
    end)

    it("reads the header name case-insensitively", function()
        local r = h.run(chain, h.request({ method = "POST", path = "/v1/chat/completions",
            headers = { authorization = "Bearer sk-secret" } }))
        assert.equal(200, r.resp.status)
    end)

    it("rejects a missing or empty header", function()
        assert_401(send(nil), "Missing authentication information")
        assert_401(send(""), "Missing authentication information")
    end)

    it("rejects anything but 'Bearer ' with one space", function()
        for _, v in ipairs({ "bearer sk-secret", "BEARER sk-secret", "Bearer", "Bearersk-secret",
            "Basic c2s6c2VjcmV0", "sk-secret", " Bearer sk-secret", "Token sk-secret" }) do
            assert_401(send(v), "Invalid authentication format")
        end
    end)

    it("compares the token exactly, without trimming", function()
        for _, v in ipairs({ "Bearer  sk-secret", "Bearer sk-secret ", "Bearer SK-SECRET",
            "Bearer sk-secre", "Bearer sk-secrett", "Bearer ", "Bearer sk-secret\0" }) do
            assert_401(send(v), "Invalid API key")
        end
    end)

    it("applies to every API path, before route matching", function()
        assert_401(send(nil, "/v1/unknown", "GET"), "Missing authentication information")
        assert_401(send(nil, "/v1", "GET"), "Missing authentication information")
        assert_401(send(nil, "/v1/models", "GET"), "Missing authentication information")
    end)

    it("does not apply to /, /ping, /admin/... or paths outside the prefix", function()
        for _, p in ipairs({ "/", "/ping", "/admin/blacklist", "/v1x", "/chat/completions" }) do
            assert.equal(200, send(nil, p, "GET").resp.status, p)
        end
    end)

    it("applies to rewritten model and foolproof routes", function()
        local rw = { rewrite = function(_, r) r.req:set_path("/v1/chat/completions") end }
        chain = { rw, chain[1] }
        assert_401(send(nil, "/gpt-4o/v1/chat/completions"), "Missing authentication information")
    end)

    it("accepts any of several keys", function()
        setup({ "k1", "k2", "k3" })
        assert.equal(3, send("Bearer k3").ctx.api_key_index)
        assert.equal(1, send("Bearer k1").ctx.api_key_index)
        assert_401(send("Bearer k4"), "Invalid API key")
    end)

    it("takes a comma-separated string", function()
        setup(" k1 , k2,, ")
        assert.same({ "k1", "k2" }, h.host.policy("auth").keys)
        assert.equal(200, send("Bearer k2").resp.status)
    end)

    it("needs no auth when no key is configured", function()
        for _, keys in ipairs({ {}, "", { "" } }) do
            setup(keys)
            assert.equal(200, send(nil).resp.status)
        end
        setup(nil)
        assert.equal(200, send("garbage").resp.status)
    end)

    it("works with an empty prefix", function()
        setup({ "k" }, "")
        assert_401(send(nil, "/chat/completions"), "Missing authentication information")
        assert.equal(200, send(nil, "/ping", "GET").resp.status)
    end)

    it("rejects bad config", function()
        assert.is_nil(h.load("auth", { keys = 42 }))
        local inst, err = h.load("auth", { keys = { "a", 7 } })
        assert.is_nil(inst)
        assert.matches("keys%[2%]", err)
    end)

    describe("comparison", function()
        it("checks every key with the host's constant-time secure_equal, no early exit", function()
            h = fake.new({})
            local calls = {}
            local real = h.host.secure_equal
            h.host.secure_equal = function(token, secret)
                calls[#calls + 1] = { token, secret }
                return real(token, secret)
            end
            chain = { assert(h.load("auth", { keys = { "k1", "k2", "k3" } })) }
            local r = send("Bearer k1")
            assert.equal(200, r.resp.status)
            assert.same({ { "k1", "k1" }, { "k1", "k2" }, { "k1", "k3" } }, calls)
            assert.equal(1, r.ctx.api_key_index)
        end)
    end)
end)
