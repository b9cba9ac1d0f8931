-- pieces-gateway: spec/policies/blacklist_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

local T0 = 1700000040 -- 2023-11-14T22:14:00Z

describe("blacklist policy", function()
    local h, bl

    local function setup(conf, files)
        h = fake.new({ now = T0 })
        for path, content in pairs(files or {}) do
            h.files[path] = content
        end
        bl = assert(h.load("blacklist", conf))
        return bl
    end

    before_each(function()
        setup({ threshold = 3 })
    end)

    -- runs the log phase for a request answered `status` (rate-limited unless told otherwise)
    local function violation(ip, status, flagged, host)
        host = host or h
        local limiter = { access = function(_, r)
            if flagged ~= false then
                r.ctx.rate_limited = "default"
            end
            r.resp:error(status or 429, "rate_limit_exceeded", "Rate limit exceeded")
        end }
        return host.run({ limiter, host.host.policy("blacklist") },
            host.request({ peer_ip = ip, path = "/v1/models" }))
    end

    local function lines(content)
        local out = {}
        for line in content:gmatch("[^\n]+") do
            out[#out + 1] = h.host.json.decode(line)
        end
        return out
    end

    it("has the original service's defaults", function()
        setup(nil)
        assert.equal("single", bl.mode)
        assert.equal(100, bl.threshold)
        assert.equal("blacklist.txt", bl.file)
        assert.equal(24, bl.ipv4_mask)
        assert.equal(48, bl.ipv6_mask)
        assert.equal(86400, bl.violation_ttl)
    end)

    it("bans an IP when its violations reach the threshold", function()
        violation("198.51.100.7")
        violation("198.51.100.7")
        assert.is_false(bl:is_banned("198.51.100.7"))
        assert.equal("", h.files["blacklist.txt"])
        violation("198.51.100.7")
        assert.is_true(bl:is_banned("198.51.100.7"))
        assert.is_true(bl:is_banned("::ffff:198.51.100.7"))
        assert.is_false(bl:is_banned("198.51.100.8"))
        assert.is_true(h.logged("warn", "banned 198.51.100.7 (ip) after 3 violations", true))
        assert.same({ { ip = "198.51.100.7", type = "ip", added_at = "2023-11-14T22:14:00Z",
            violations = 3 } }, lines(h.files["blacklist.txt"]))
        assert.equal('{"ip":"198.51.100.7","type":"ip","added_at":"2023-11-14T22:14:00Z",'
            .. '"violations":3}\n', h.files["blacklist.txt"])
    end)

    it("counts bans in gateway_bans_added_total{mode} and keeps gateway_bans_active", function()
        setup({ threshold = 1, mode = "subnet" },
            { ["blacklist.txt"] = '{"ip":"192.0.2.1","type":"ip"}\n' })
        assert.equal(1, h.metric("gateway_bans_active")) -- loaded from the file
        violation("198.51.100.7")
        violation("203.0.113.9")
        assert.equal(2, h.metric("gateway_bans_added_total", { mode = "subnet" }))
        assert.is_true(bl:is_banned("198.51.100.8")) -- a worker learns the new count
        assert.equal(3, h.metric("gateway_bans_active"))
    end)

    it("counts only rate-limit 429s", function()
        for _ = 1, 5 do
            violation("198.51.100.7", 429, false) -- a 429 that is not the limiter's
            violation("198.51.100.7", 403)
        end
        assert.is_false(bl:is_banned("198.51.100.7"))
        assert.is_nil(h.shared:get("bl:viol:198.51.100.7"))
    end)

    it("counts per IP", function()
        violation("198.51.100.1")
        violation("198.51.100.2")
        violation("198.51.100.3")
        assert.is_false(bl:is_banned("198.51.100.1"))
    end)

    it("forgets violations after violation_ttl", function()
        setup({ threshold = 3, violation_ttl = 60 })
        violation("198.51.100.7")
        violation("198.51.100.7")
        h.advance(60)
        violation("198.51.100.7")
        violation("198.51.100.7")
        assert.is_false(bl:is_banned("198.51.100.7"))
        violation("198.51.100.7")
        assert.is_true(bl:is_banned("198.51.100.7"))
    end)

    it("bans the subnet in subnet mode, v4 and v6", function()
        setup({ threshold = 1, mode = "subnet" })
        violation("198.51.100.7")
        violation("2001:db8:1:2::5")
        assert.is_true(bl:is_banned("198.51.100.200"))
        assert.is_false(bl:is_banned("198.51.101.1"))
        assert.is_true(bl:is_banned("2001:db8:1:ffff::1"))
        assert.is_false(bl:is_banned("2001:db8:2::1"))
        local got = lines(h.files["blacklist.txt"])
        assert.equal(2, #got)
        assert.same({ "198.51.100.0/24", "subnet" }, { got[1].ip, got[1].type })
        assert.same({ "2001:db8:1::/48", "subnet" }, { got[2].ip, got[2].type })
    end)

    it("uses the configured masks", function()
        setup({ threshold = 1, mode = "subnet", ipv4_mask = 16, ipv6_mask = 32 })
        violation("198.51.100.7")
        violation("2001:db8:1:2::5")
        assert.is_true(bl:is_banned("198.51.1.1"))
        assert.is_true(bl:is_banned("2001:db8:ffff::1"))
    end)

    it("warns about out-of-range masks and uses the defaults", function()
        setup({ ipv4_mask = 7, ipv6_mask = 129 })
        assert.equal(24, bl.ipv4_mask)
        assert.equal(48, bl.ipv6_mask)
        assert.is_true(h.logged("warn", "Warning: Invalid mask value 7, should be between 8 and "
            .. "32, using default value 24", true))
        assert.is_true(h.logged("warn", "Warning: Invalid mask value 129, should be between 32 "
            .. "and 128, using default value 48", true))
        setup({ ipv4_mask = 8, ipv6_mask = 128 })
        assert.same({ 8, 128 }, { bl.ipv4_mask, bl.ipv6_mask })
        setup({ ipv4_mask = 32, ipv6_mask = 32 })
        assert.same({ 32, 32 }, { bl.ipv4_mask, bl.ipv6_mask })
        assert.equal(0, #h.logs)
    end)

    it("counts nothing in mode off but still enforces the file", function()
        setup({ threshold = 1, mode = "off" },
            { ["blacklist.txt"] = '{"ip":"192.0.2.1","type":"ip"}\n' })
        violation("198.51.100.7")
        assert.is_false(bl:is_banned("198.51.100.7"))
        assert.is_nil(h.shared:get("bl:viol:198.51.100.7"))
        assert.is_true(bl:is_banned("192.0.2.1"))
    end)

    it("treats an unknown mode as single, with a warning", function()
        setup({ threshold = 1, mode = "sinlge" })
        assert.equal("single", bl.mode)
        assert.is_true(h.logged("warn", "unknown BLACKLIST_MODE 'sinlge'", true))
        violation("198.51.100.7")
        assert.is_true(bl:is_banned("198.51.100.7"))
    end)

    it("bans at the first violation with threshold 0 or 1", function()
        for _, t in ipairs({ 0, 1 }) do
            setup({ threshold = t })
            violation("198.51.100.7")
            assert.is_true(bl:is_banned("198.51.100.7"))
        end
    end)

    it("rejects bad numbers and files", function()
        for _, conf in ipairs({ { threshold = -1 }, { threshold = "100" },
            { violation_ttl = -5 }, { file = "" }, { file = 3 } }) do
            local inst, err = h.load("blacklist", conf)
            assert.is_nil(inst)
            assert.matches("blacklist: ", err)
        end
    end)

    describe("file", function()
        it("loads entries and keeps their fields", function()
            setup({ file = "bans.txt" }, { ["bans.txt"] = table.concat({
                '{"ip":"192.0.2.1","type":"ip","added_at":"2024-01-01T00:00:00Z","violations":7}',
                '',
                '{"ip":"203.0.113.9/24","type":"subnet","added_at":"2024-01-02T00:00:00Z"}',
                '{"ip":"2001:DB8::1","type":"ip"}',
                '{"ip":"2001:db8:5::/48","type":"subnet","violations":0}',
            }, "\r\n") })
            assert.is_true(bl:is_banned("192.0.2.1"))
            assert.is_false(bl:is_banned("192.0.2.2"))
            assert.is_true(bl:is_banned("203.0.113.77"))
            assert.is_true(bl:is_banned("2001:db8::1"))
            assert.is_true(bl:is_banned("2001:db8:5:1::1"))
            local bans = bl:bans()
            assert.equal(4, #bans)
            assert.same({ ip = "192.0.2.1", type = "ip", added_at = "2024-01-01T00:00:00Z",
                violations = 7 }, bans[3])
            assert.same({ ip = "203.0.113.0/24", type = "subnet",
                added_at = "2024-01-02T00:00:00Z", violations = 0 }, bans[4])
            assert.equal(0, #h.persisted) -- loading does not rewrite the file
        end)

        it("loads the original service's one-line JSON array", function()
            setup({}, { ["blacklist.txt"] = '[{"ip":"1.2.3.4","type":"ip","added_at":'
                .. '"2024-05-01T10:00:00.123456789+08:00","violations":100},'
                .. '{"ip":"1.2.4.0/24","type":"subnet","added_at":"x","violations":0}]\n' })
            assert.is_true(bl:is_banned("1.2.3.4"))
            assert.is_true(bl:is_banned("1.2.4.9"))
            local bans = bl:bans()
            assert.equal("2024-05-01T10:00:00.123456789+08:00", bans[2].added_at)
        end)

        it("skips bad entries with a warning", function()
            setup({}, { ["blacklist.txt"] = 'not json\n{"ip":"999.1.1.1"}\n{"nope":1}\n'
                .. '{"ip":"1.2.3.4","added_at":"bad \\"quote"}\n' })
            assert.is_true(bl:is_banned("1.2.3.4"))
            assert.equal(1, #bl:bans())
            assert.matches("^%d%d%d%d%-", bl:bans()[1].added_at) -- unsafe text replaced
            assert.is_true(h.logged("warn", "invalid IP or CIDR '999.1.1.1'", true))
            assert.is_true(h.logged("warn", "3 bad entries", true))
        end)

        it("creates a missing file empty, once for all workers", function()
            setup({})
            assert.same({ { path = "blacklist.txt", content = "" } }, h.persisted)
            local h2 = fake.new({ peer = h })
            h.files["blacklist.txt"] = nil
            assert(h2.load("blacklist", {}))
            assert.equal(1, #h.persisted)
        end)

        it("writes all bans, loaded ones included, oldest first", function()
            setup({ threshold = 1 }, { ["blacklist.txt"] = '{"ip":"192.0.2.1","type":"ip",'
                .. '"added_at":"2020-01-01T00:00:00Z","violations":7}\n' })
            violation("198.51.100.7")
            assert.equal('{"ip":"192.0.2.1","type":"ip","added_at":"2020-01-01T00:00:00Z",'
                .. '"violations":7}\n{"ip":"198.51.100.7","type":"ip","added_at":'
                .. '"2023-11-14T22:14:00Z","violations":1}\n', h.files["blacklist.txt"])
        end)

        it("reloads what it wrote", function()
            setup({ threshold = 1, mode = "subnet" })
            violation("198.51.100.7")
            h.advance(10)
            violation("2001:db8::7")
            local written = h.files["blacklist.txt"]
            local h2 = fake.new({ now = T0 })
            h2.files["blacklist.txt"] = written
            local bl2 = assert(h2.load("blacklist", {}))
            assert.is_true(bl2:is_banned("198.51.100.1"))
            assert.is_true(bl2:is_banned("2001:db8::1234"))
            assert.equal(written, bl2:render())
        end)

        it("keeps its bans when the dictionary cannot list keys", function()
            setup({ threshold = 1 })
            violation("198.51.100.7")
            assert.is_true(bl:is_banned("198.51.100.7"))
            local keys = h.shared.keys
            h.shared.keys = function() return nil, "no memory" end
            h.shared:incr("map:bans", 1, 0) -- the map moved: the policy must re-read it
            assert.is_true(bl:is_banned("198.51.100.7"))
            assert.is_true(h.logged("err", "cannot refresh the bans: no memory", true))
            h.shared.keys = keys
            assert.is_true(bl:is_banned("198.51.100.7"))
        end)

        it("logs a failed save", function()
            setup({ threshold = 1 })
            h.persist_error = "read-only file system"
            violation("198.51.100.7")
            assert.is_true(bl:is_banned("198.51.100.7"))
            assert.is_true(h.logged("err", "cannot save blacklist.txt: read-only", true))
        end)
    end)

    describe("workers", function()
        it("see each other's bans", function()
            local h2 = fake.new({ peer = h })
            local bl2 = assert(h2.load("blacklist", { threshold = 3 }))
            assert.is_false(bl2:is_banned("198.51.100.7"))
            violation("198.51.100.7")
            violation("198.51.100.7", 429, true, h2) -- counts are shared too
            violation("198.51.100.7")
            assert.is_true(bl2:is_banned("198.51.100.7"))
        end)

        it("load the same file without duplicates", function()
            setup({}, { ["blacklist.txt"] = '{"ip":"192.0.2.1","type":"ip"}\n' })
            local v = h.shared:map_version("bans")
            assert(fake.new({ peer = h }).load("blacklist", {}))
            assert.equal(1, #h.shared:keys("map:bans:"))
            assert.equal(v, h.shared:map_version("bans"))
        end)

        it("do not ban or save twice", function()
            setup({ threshold = 1, mode = "subnet" })
            violation("198.51.100.7")
            violation("198.51.100.8") -- already inside the banned subnet
            assert.equal(1, #h.persisted - 1) -- minus the empty file created at load
            assert.is_false(bl:ban("198.51.100.9", 1))
        end)
    end)
    describe("unban", function()
        it("lifts a ban, forgets the violations and rewrites the file", function()
            setup({ threshold = 2 })
            violation("198.51.100.7")
            violation("198.51.100.7")
            assert.is_true(bl:is_banned("198.51.100.7"))
            assert.is_true(bl:unban("198.51.100.7"))
            assert.is_false(bl:is_banned("198.51.100.7"))
            assert.is_nil(h.shared:get("bl:viol:198.51.100.7"))
            assert.equal("", h.files["blacklist.txt"])
            assert.is_true(h.logged("warn", "unbanned 198.51.100.7", true))
            violation("198.51.100.7") -- counting starts again
            assert.is_false(bl:is_banned("198.51.100.7"))
            assert.is_false(bl:unban("198.51.100.7"))
        end)

        it("takes CIDRs in any spelling, and refuses what is not an address", function()
            setup({ threshold = 1, mode = "subnet" })
            violation("198.51.100.7")
            assert.is_false(bl:unban("198.51.101.0/24"))
            assert.is_true(bl:unban("198.51.100.99/24"))
            assert.is_false(bl:is_banned("198.51.100.7"))
            assert.same({ nil, "not an IP address or CIDR" }, { bl:unban("nope") })
            assert.same({ nil, "not an IP address or CIDR" }, { bl:unban("1.2.3.4/99") })
        end)
    end)

    describe("with the shared (Redis) store", function()
        local a, b, bla, blb

        local function instances(conf)
            a = fake.new({ now = T0, store = {} })
            b = fake.new({ now = T0, worker_id = 1, store = { server = a.store.server } })
            bla = assert(a.load("blacklist", conf or { threshold = 3 }))
            blb = assert(b.load("blacklist", conf or { threshold = 3 }))
        end

        it("counts violations of every instance in the store, waiting in the log phase", function()
            instances()
            violation("198.51.100.7", 429, true, a)
            violation("198.51.100.7", 429, true, b)
            assert.is_false(blb:is_banned("198.51.100.7"))
            violation("198.51.100.7", 429, true, a)
            assert.equal(3, a.store.server.dict:get("bl:viol:198.51.100.7"))
            assert.is_true(a.waits >= 2)
            assert.is_true(bla:is_banned("198.51.100.7"))
            assert.is_true(blb:is_banned("198.51.100.7"), "B sees A's ban")
            assert.is_nil(b.files["blacklist.txt"]:find("198", 1, true),
                "B's worker 1 is not the writer of changes made elsewhere")
            assert.matches("198%.51%.100%.7", blb:render(), "its bans have it")
            assert.is_true(blb:unban("198.51.100.7"))
            assert.is_false(bla:is_banned("198.51.100.7"), "A sees B's unban")
        end)

        it("a ban made while the store is down stays local (local copy only)", function()
            instances({ threshold = 1 })
            a.store.down = true
            violation("198.51.100.7", 429, true, a)
            assert.is_true(bla:is_banned("198.51.100.7"))
            assert.is_false(blb:is_banned("198.51.100.7"))
        end)

        it("a late instance reads the bans there are", function()
            instances({ threshold = 1 })
            violation("198.51.100.7", 429, true, a)
            local c = fake.new({ now = T0, store = { server = a.store.server } })
            assert.is_true(assert(c.load("blacklist", {})):is_banned("198.51.100.7"))
        end)
    end)
end)
