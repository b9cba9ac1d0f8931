-- pieces-gateway: the spec of the sample operator policy spec/operator/policies/greet.lua, run
-- by scripts/policy-test.sh from a directory outside the repository.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

describe("greet (an operator's policy)", function()
    local h, models, greet

    before_each(function()
        h = fake.new()
        models = assert(h.load("models", {})) -- shipped: found in the repository's policies/
        greet = assert(h.load("greet", { greeting = "hi" })) -- the operator's directory
    end)

    it("greets the client and counts the catalog", function()
        local r = h.run({ models, greet }, h.request({ path = "/v1/greet",
            peer_ip = "198.51.100.4" }))
        assert.equal(200, r.resp.status)
        assert.same({ greeting = "hi 198.51.100.4", models = 14 }, h.body(r))
        assert.is_true(h.logged("info", "greeting 198.51.100.4", true))
    end)

    it("keeps host.log as a plain field, not a log phase", function()
        assert.equal(h.host.log, greet.log)
        local r = h.run({ greet }, h.request({ path = "/v1/other" }))
        assert.equal("ok", r.resp.body)
    end)

    it("rejects a greeting that is not a string", function()
        local inst, err = h.load("greet", { greeting = 1 })
        assert.is_nil(inst)
        assert.equal("greeting must be a string", err)
    end)

    it("finds the operator's module with require too", function()
        assert.equal("greet", require("greet").name)
    end)
end)
