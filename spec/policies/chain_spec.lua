-- The shipped policies together, configured by gateway.lua's `policies` list from a fake
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
-- environment, run in gateway.lua's order (the `models` entry is the spec stub).
local fake = require "fake_host"
local models_stub = require "models_stub"

-- gateway.lua's real `env` readers (lua/gw/config.lua, over the fake FFI) reading a table.
local function fake_env(vars)
    require("fake_ffi").new().install()
    return require("gw.config").env_readers(function() end, function(name)
        return vars[name]
    end)
end

local T0 = 60 * 28333334

describe("policy chain of gateway.lua", function()
    local h, chain, routed

    local function setup(vars)
        local config = assert(loadfile("gateway.lua"))(fake_env(vars or {}))
        h = fake.new({ now = T0, api_prefix = config.api_prefix })
        chain, routed = {}, {}
        for _, p in ipairs(config.policies) do
            if p.name == "models" then
                chain[#chain + 1] = h.register("models", models_stub.new())
            elseif p.name == "chat" then
                -- the chat policy itself has its own spec: here only "was it routed?"
                chain[#chain + 1] = h.register("chat", {
                    route = function(_, r) routed[#routed + 1] = r end,
                })
            else
                chain[#chain + 1] = assert(h.load(p.name, p.conf))
            end
        end
        return config
    end

    before_each(function()
        setup({})
    end)

    local function send(method, path, headers, peer)
        return h.run(chain, h.request({ method = method, path = path, headers = headers,
            peer_ip = peer or "198.51.100.10" }))
    end

    local function code(r)
        local body = h.body(r)
        return r.resp.status, body and body.error and body.error.code
    end

    it("lists the policies in the documented order", function()
        local names = {}
        for i, p in ipairs(setup({}).policies) do
            names[i] = p.name
        end
        assert.same({ "models", "ip_rules", "rate_limit", "model_route", "foolproof", "auth",
            "blacklist", "pieces", "chat", "messages", "responses", "router", "tokenize", "admin" },
            names)
    end)

    it("serves with the defaults: no auth, 60/min, headers", function()
        local r = send("GET", "/v1/models")
        assert.equal(200, r.resp.status)
        assert.equal("59", r.resp.headers["ratelimit-remaining"])
        assert.equal(0, #routed)
        send("POST", "/v1/chat/completions")
        assert.equal(1, #routed)
    end)

    it("limits, then bans, unauthenticated floods", function()
        setup({ API_KEY = "sk", RATE_LIMIT = "2", BLACKLIST_THRESHOLD = "2" })
        assert.same({ 401, "unauthorized" }, { code(send("GET", "/v1/models")) })
        assert.same({ 401, "unauthorized" }, { code(send("GET", "/v1/models")) })
        assert.same({ 429, "rate_limit_exceeded" }, { code(send("GET", "/v1/models")) })
        assert.same({ 429, "rate_limit_exceeded" }, { code(send("GET", "/v1/models")) })
        assert.same({ 403, "ip_blocked" }, { code(send("GET", "/v1/models")) })
        assert.same({ 403, "ip_blocked" }, { code(send("GET", "/ping")) })
        h.advance(3600) -- bans do not expire
        assert.same({ 403, "ip_blocked" }, { code(send("GET", "/", nil)) })
        assert.equal(200, send("GET", "/v1/models", { Authorization = "Bearer sk" },
            "198.51.100.11").resp.status)
        assert.matches('"ip":"198.51.100.10","type":"ip"', h.files["blacklist.txt"], 1, true)
    end)

    it("bans subnets in subnet mode", function()
        setup({ RATE_LIMIT = "1", BLACKLIST_THRESHOLD = "1", BLACKLIST_MODE = "subnet",
            IPV4_MASK = "16" })
        send("GET", "/")
        send("GET", "/")
        assert.same({ 403, "ip_blocked" }, { code(send("GET", "/", nil, "198.51.7.7")) })
        assert.equal(200, send("GET", "/", nil, "198.52.0.1").resp.status)
    end)

    it("blocks configured IPs before anything else and never writes them", function()
        setup({ IP_BLACKLIST = "198.51.100.0/24, 2001:db8::/32", IP_WHITELIST = "198.51.100.10",
            RATE_LIMIT = "0", BLACKLIST_THRESHOLD = "1", ENABLE_MODEL_ROUTE = "true" })
        for _, req in ipairs({ { "GET", "/" }, { "GET", "/admin/blacklist" },
            { "GET", "/gpt-4o/v1/chat/completions" }, { "POST", "/v1/chat/completions" } }) do
            assert.same({ 403, "ip_blocked" }, { code(send(req[1], req[2])) })
        end
        assert.same({ 403, "ip_blocked" }, { code(send("GET", "/", nil, "2001:db8::5")) })
        assert.equal("", h.files["blacklist.txt"])
    end)

    it("exempts whitelisted clients from rate limits, not from auth", function()
        setup({ IP_WHITELIST = "198.51.100.0/24", RATE_LIMIT = "1", API_KEY = "sk" })
        for _ = 1, 5 do
            assert.same({ 401, "unauthorized" }, { code(send("GET", "/v1/models")) })
        end
        assert.equal(200, send("GET", "/v1/models", { Authorization = "Bearer sk" }).resp.status)
    end)

    it("routes model paths to the chat route, after auth", function()
        setup({ ENABLE_MODEL_ROUTE = "true", API_KEY = "sk" })
        assert.same({ 401, "unauthorized" }, { code(send("POST", "/gpt-4o/v1/chat/completions")) })
        assert.equal(0, #routed)
        local r = send("POST", "/claude-3-haiku-20240307/v1/chat/completions",
            { Authorization = "Bearer sk" })
        assert.equal(200, r.resp.status)
        assert.equal(1, #routed)
        assert.equal("claude-3-haiku-20240307", routed[1].ctx.route_model)
        -- wrong method: the router's 405 comes before auth, as in the original service
        assert.same({ 405, "method_not_allowed" }, { code(send("GET",
            "/gpt-4o/v1/chat/completions")) })
    end)

    it("routes foolproof paths with the warning header, after auth", function()
        setup({ ENABLE_FOOLPROOF_ROUTE = "1", API_KEY = "sk" })
        assert.same({ 401, "unauthorized" }, { code(send("POST", "/v1/completions")) })
        local r = send("POST", "/chat/completions/", { Authorization = "Bearer sk" })
        assert.equal(200, r.resp.status)
        assert.equal("Non-standard path, please use: /v1/chat/completions",
            r.resp.headers["x-warning"])
        assert.equal(1, #routed)
    end)

    it("applies the strict rule to every spelling of chat, once", function()
        setup({ STRICT_RATE_LIMIT_ENABLED = "true", STRICT_RATE_LIMIT = "3",
            ENABLE_MODEL_ROUTE = "true", ENABLE_FOOLPROOF_ROUTE = "true" })
        assert.equal(200, send("POST", "/v1/chat/completions").resp.status)
        assert.equal(200, send("POST", "/gpt-4/v1/chat/completions").resp.status)
        assert.equal(200, send("POST", "/completions").resp.status)
        local r = send("POST", "/v1/chat/completions")
        assert.same({ 429, "rate_limit_exceeded" }, { code(r) })
        assert.equal("strict", r.ctx.rate_limited)
        assert.equal(200, send("GET", "/v1/models").resp.status)
    end)

    it("serves admin endpoints with the admin key only", function()
        setup({ ADMIN_KEY = "adm", API_KEY = "sk", BLACKLIST_FILE = "/data/bl.txt" })
        assert.same({ 401, "unauthorized" }, { code(send("GET", "/admin/blacklist")) })
        assert.same({ 403, "forbidden" }, { code(send("GET", "/admin/blacklist",
            { Authorization = "Bearer sk" })) })
        local r = send("GET", "/admin/blacklist", { Authorization = "Bearer adm" })
        assert.equal(200, r.resp.status)
        assert.equal("", r.resp.body)
        assert.equal(200, send("POST", "/admin/reload", { Authorization = "Bearer adm" })
            .resp.status)
        assert.equal(1, h.reloads)
    end)

    it("counts 405s of alias routes against the rate limit, like the original", function()
        setup({ ENABLE_MODEL_ROUTE = "true", ENABLE_FOOLPROOF_ROUTE = "true", RATE_LIMIT = "2" })
        assert.equal(405, send("GET", "/gpt-4o/v1/chat/completions").resp.status)
        assert.equal(405, send("GET", "/v1/completions").resp.status)
        assert.same({ 429, "rate_limit_exceeded" }, { code(send("GET", "/v1/completions")) })
    end)

    it("counts admin requests against the global rate limit", function()
        setup({ ADMIN_KEY = "adm", RATE_LIMIT = "1" })
        send("GET", "/admin/blacklist", { Authorization = "Bearer adm" })
        assert.same({ 429, "rate_limit_exceeded" }, { code(send("GET", "/admin/blacklist",
            { Authorization = "Bearer adm" })) })
    end)

    it("takes the seed's env spellings and fallbacks", function()
        local config = setup({ RATE_LIMIT = "abc", BLACKLIST_MODE = "subnet", IPV4_MASK = "40",
            API_KEY = "a, b" })
        local rl = config.policies[3].conf
        assert.equal(60, rl.default.limit)
        assert.same({ "a", "b" }, h.host.policy("auth").keys)
        assert.equal(24, h.host.policy("blacklist").ipv4_mask)
        assert.is_true(h.logged("warn", "Invalid mask value 40", true))
    end)
end)
