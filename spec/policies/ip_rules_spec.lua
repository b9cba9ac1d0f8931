-- pieces-gateway: spec/policies/ip_rules_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

describe("ip_rules policy", function()
    local h, chain

    local function setup(conf)
        h = fake.new()
        chain = { assert(h.load("ip_rules", conf)) }
    end

    before_each(function()
        setup({ blacklist = { "6.6.6.6", "10.66.0.0/16", "2001:db8:bad::/48" },
            whitelist = { "7.7.7.7", "192.0.2.0/24", "6.6.6.6", "2001:db8::1" } })
    end)

    local function from(peer, headers, path)
        return h.run(chain, h.request({ path = path or "/v1/models", peer_ip = peer,
            headers = headers }))
    end

    local function assert_blocked(r)
        assert.equal(403, r.resp.status)
        assert.same({ error = { code = "ip_blocked", message = "IP has been blocked",
            type = "error" } }, h.body(r))
    end

    it("blocks configured IPs and CIDRs, v4 and v6", function()
        assert_blocked(from("6.6.6.6"))
        assert_blocked(from("::ffff:6.6.6.6"))
        assert_blocked(from("10.66.3.4"))
        assert_blocked(from("2001:db8:bad:1::9"))
        assert_blocked(from("2001:DB8:BAD::1"))
    end)

    it("blocks every path, /ping and /admin included", function()
        for _, p in ipairs({ "/", "/ping", "/admin/blacklist", "/v1/chat/completions" }) do
            assert_blocked(from("6.6.6.6", nil, p))
        end
    end)

    it("lets other clients through", function()
        for _, peer in ipairs({ "6.6.6.7", "10.67.0.1", "2001:db8:bae::1", "8.8.8.8" }) do
            local r = from(peer)
            assert.equal(200, r.resp.status)
            assert.is_nil(r.ctx.whitelisted)
        end
    end)

    it("marks whitelisted clients", function()
        assert.is_true(from("7.7.7.7").ctx.whitelisted)
        assert.is_true(from("192.0.2.200").ctx.whitelisted)
        assert.is_true(from("2001:db8:0::1").ctx.whitelisted)
    end)

    it("does not let the whitelist override the blacklist", function()
        local r = from("6.6.6.6")
        assert_blocked(r)
        assert.is_nil(r.ctx.whitelisted)
    end)

    it("uses the resolved client IP, not a spoofed header", function()
        -- untrusted peer: X-Forwarded-For is ignored
        assert.equal(200, from("8.8.8.8", { ["X-Forwarded-For"] = "6.6.6.6" }).resp.status)
        assert.is_nil(from("6.6.6.7", { ["X-Forwarded-For"] = "7.7.7.7" }).ctx.whitelisted)
        -- trusted proxy: the forwarded client is checked
        assert_blocked(from("127.0.0.1", { ["X-Forwarded-For"] = "6.6.6.6" }))
        assert_blocked(from("10.0.0.1", { ["X-Real-IP"] = "10.66.1.1" }))
    end)

    it("asks the blacklist policy about auto-bans", function()
        local banned = { ["5.5.5.5"] = true }
        h.register("blacklist", { is_banned = function(_, ip) return banned[ip] == true end })
        assert_blocked(from("5.5.5.5"))
        assert.equal(200, from("5.5.5.6").resp.status)
        banned["5.5.5.6"] = true
        assert_blocked(from("5.5.5.6"))
    end)

    it("blocks auto-banned whitelisted clients too", function()
        h.register("blacklist", { is_banned = function() return true end })
        assert_blocked(from("7.7.7.7"))
    end)

    it("accepts comma-separated strings and empty lists", function()
        setup({ blacklist = "1.1.1.1, 2.2.2.0/24", whitelist = "" })
        assert_blocked(from("2.2.2.9"))
        assert.equal(200, from("3.3.3.3").resp.status)
        setup({})
        assert.equal(200, from("6.6.6.6").resp.status)
    end)

    it("gives the same verdicts for repeated clients, also past the sets' memo bound", function()
        -- 5000 distinct addresses (more than the memo holds), then the listed ones again
        for i = 1, 5000 do
            local peer = string.format("11.%d.%d.1", math.floor(i / 256), i % 256)
            assert.equal(200, from(peer).resp.status)
        end
        for _ = 1, 2 do
            assert_blocked(from("6.6.6.6"))
            assert_blocked(from("10.66.3.4"))
            assert.is_true(from("7.7.7.7").ctx.whitelisted)
            assert.is_nil(from("8.8.8.8").ctx.whitelisted)
        end
    end)

    it("fails to load naming an invalid entry", function()
        local inst, err = h.load("ip_rules", { blacklist = { "1.2.3.4", "1.2.3.4/40" } })
        assert.is_nil(inst)
        assert.matches("blacklist", err)
        assert.matches("1.2.3.4/40", err, 1, true)
        inst, err = h.load("ip_rules", { whitelist = { "bogus" } })
        assert.is_nil(inst)
        assert.matches("whitelist", err)
        assert.matches("bogus", err, 1, true)
        inst, err = h.load("ip_rules", { whitelist = 5 })
        assert.is_nil(inst)
        assert.matches("whitelist", err)
    end)
end)
