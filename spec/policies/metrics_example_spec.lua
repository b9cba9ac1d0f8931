-- pieces-gateway: the example policy of docs/policy-api.md (Metrics), run as documented on the
-- fake host, so the documentation cannot drift from the API.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

local function example()
    local fh = assert(io.open("docs/policy-api.md"))
    local doc = fh:read("*a")
    fh:close()
    local src = doc:match("```lua\n(%-%- policies/request_sizes%.lua.-)```")
    assert(src, "docs/policy-api.md has the request_sizes example")
    return assert(loadstring(src, "=request_sizes"))()
end

describe("the metrics example of docs/policy-api.md", function()
    local h, chain

    before_each(function()
        h = fake.new()
        local mod = example()
        h.register("request_sizes", assert(mod.new({}, h.host)))
        chain = { assert(h.load("auth", { keys = { "sk-a", "sk-b" } })),
            h.host.policy("request_sizes") }
    end)

    local function send(path, key, body)
        return h.run(chain, h.request({ method = "POST", path = path, body = body,
            headers = { Authorization = key and "Bearer " .. key } }))
    end

    it("observes body sizes per route class and counts answers per API key", function()
        send("/v1/chat/completions", "sk-b", string.rep("x", 300))
        send("/v1/chat/completions", "sk-b", "{}")
        send("/v1/models", "nope")
        send("/ping")
        local sizes = h.metric("gateway_example_request_body_bytes", { class = "api" })
        assert.equal(3, sizes.count)
        assert.equal(302, sizes.sum)
        assert.equal(2, sizes.buckets[256])
        assert.equal(1, h.metric("gateway_example_request_body_bytes", { class = "other" }).count)
        assert.equal(2, h.metric("gateway_example_answers_total", { key = "2", status = "200" }))
        assert.equal(0, h.metric("gateway_example_answers_total", { key = "1", status = "200" }))
    end)

    it("defines the same families in every worker and after a reload", function()
        local again = assert(example().new({}, fake.new({ peer = h }).host))
        assert.equal(h.host.policy("request_sizes").answers.id, again.answers.id)
    end)
end)
