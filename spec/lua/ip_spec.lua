-- pieces-gateway: spec/lua/ip_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local ip = require "gw.ip"

describe("gw.ip", function()
    it("runs under LuaJIT (the .busted default)", function()
        assert.is_table(jit)
    end)

    describe("normalize", function()
        it("accepts strict dotted-quad IPv4", function()
            assert.equal("1.2.3.4", ip.normalize("1.2.3.4"))
            assert.equal("0.0.0.0", ip.normalize("0.0.0.0"))
            assert.equal("255.255.255.255", ip.normalize("255.255.255.255"))
        end)

        it("rejects malformed IPv4", function()
            for _, t in ipairs({ "01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5",
                "1.2.3.4 ", " 1.2.3.4", "1..2.3", "1.2.3.4/32", "1.2.3.4:80", "1.2.3.-4",
                "1.2.3.1000", "", "a.b.c.d", "0x1.2.3.4" }) do
                assert.is_nil(ip.normalize(t), t)
            end
        end)

        it("rejects non-strings", function()
            assert.is_nil(ip.normalize(nil))
            assert.is_nil(ip.normalize(42))
            assert.is_nil(ip.normalize({}))
        end)

        it("writes IPv6 in RFC 5952 form", function()
            local cases = {
                ["::"] = "::",
                ["::1"] = "::1",
                ["0:0:0:0:0:0:0:1"] = "::1",
                ["2001:DB8::1"] = "2001:db8::1",
                ["2001:0db8:0000:0000:0000:0000:0000:0001"] = "2001:db8::1",
                ["2001:db8:0:0:1:0:0:1"] = "2001:db8::1:0:0:1", -- first of equal runs
                ["2001:0:0:1:0:0:0:1"] = "2001:0:0:1::1",       -- longest run
                ["2001:db8:0:1:1:1:1:1"] = "2001:db8:0:1:1:1:1:1", -- single zero not compressed
                ["1:2:3:4:5:6:7::"] = "1:2:3:4:5:6:7:0",
                ["::2:3:4:5:6:7:8"] = "0:2:3:4:5:6:7:8",
                ["fe80::"] = "fe80::",
                ["2001:db8::0:1"] = "2001:db8::1",
                ["::1.2.3.4"] = "::102:304",
                ["64:ff9b::192.0.2.33"] = "64:ff9b::c000:221",
                ["1:2:3:4:5:6:1.2.3.4"] = "1:2:3:4:5:6:102:304",
            }
            for input, want in pairs(cases) do
                assert.equal(want, ip.normalize(input), input)
            end
        end)

        it("turns IPv4-mapped IPv6 into IPv4", function()
            assert.equal("1.2.3.4", ip.normalize("::ffff:1.2.3.4"))
            assert.equal("1.2.3.4", ip.normalize("::FFFF:102:304"))
            assert.equal("10.0.0.1", ip.normalize("0:0:0:0:0:ffff:a00:1"))
        end)

        it("rejects malformed IPv6, zone ids, brackets and ports", function()
            for _, t in ipairs({ ":::1", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
                "12345::", "g::1", ":1::", "1::2:", ":", "fe80::1%eth0", "[::1]", "[::1]:80",
                "::1 ", "1:2:3:4:5:6:7:8::", "::1.2.3", "::01.2.3.4", "::1.2.3.4:5",
                "1.2.3.4::", "::ffff:256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4" }) do
                assert.is_nil(ip.normalize(t), t)
            end
        end)
    end)

    describe("parse_cidr", function()
        it("parses IPs as full-length prefixes", function()
            assert.equal("1.2.3.4/32", ip.parse_cidr("1.2.3.4").text)
            assert.equal("2001:db8::1/128", ip.parse_cidr("2001:DB8::1").text)
        end)

        it("masks host bits", function()
            assert.equal("10.0.0.0/8", ip.parse_cidr("10.1.2.3/8").text)
            assert.equal("2001:db8:1::/48", ip.parse_cidr("2001:db8:1:2::5/48").text)
            assert.equal("0.0.0.0/0", ip.parse_cidr("9.9.9.9/0").text)
            assert.equal("::/0", ip.parse_cidr("2001::/0").text)
            assert.equal("1.2.3.128/25", ip.parse_cidr("1.2.3.200/25").text)
        end)

        it("maps IPv4-mapped CIDRs to IPv4", function()
            assert.equal("10.0.0.0/8", ip.parse_cidr("::ffff:10.1.0.0/104").text)
            assert.equal("1.2.3.4/32", ip.parse_cidr("::ffff:1.2.3.4").text)
        end)

        it("validates the prefix length", function()
            local m, err = ip.parse_cidr("1.2.3.4/33")
            assert.is_nil(m)
            assert.matches("out of range", err)
            assert.is_nil(ip.parse_cidr("::/129"))
            assert.is_nil(ip.parse_cidr("1.2.3.4/08"))
            assert.is_nil(ip.parse_cidr("1.2.3.4/"))
            assert.is_nil(ip.parse_cidr("1.2.3.4/-1"))
            assert.is_nil(ip.parse_cidr("1.2.3.4/8/8"))
            assert.is_nil(ip.parse_cidr("/8"))
            assert.is_nil(ip.parse_cidr("nope"))
            assert.is_nil(ip.parse_cidr(nil))
            assert.is_not_nil(ip.parse_cidr("::/128"))
        end)

        it("matches addresses of its family only", function()
            local m = ip.parse_cidr("192.168.0.0/16")
            assert.is_true(m:contains("192.168.200.1"))
            assert.is_true(m:contains("::ffff:192.168.0.1"))
            assert.is_false(m:contains("192.169.0.1"))
            assert.is_false(m:contains("::1"))
            assert.is_false(m:contains("garbage"))
            assert.is_false(m:contains(nil))
            local v6 = ip.parse_cidr("2001:db8::/32")
            assert.is_true(v6:contains("2001:DB8:ffff::1"))
            assert.is_false(v6:contains("2001:db9::1"))
            assert.is_false(v6:contains("32.1.13.184"))
            assert.is_false(ip.parse_cidr("::/0"):contains("1.2.3.4"))
            assert.is_true(ip.parse_cidr("0.0.0.0/0"):contains("1.2.3.4"))
        end)

        it("handles prefixes that are not a multiple of 8", function()
            local m = ip.parse_cidr("172.16.0.0/12")
            assert.is_true(m:contains("172.31.255.255"))
            assert.is_false(m:contains("172.32.0.0"))
            assert.is_false(m:contains("172.15.255.255"))
            local v6 = ip.parse_cidr("fc00::/7")
            assert.is_true(v6:contains("fd12::1"))
            assert.is_false(v6:contains("fe00::1"))
        end)
    end)

    describe("set", function()
        it("holds IPs and CIDRs of both families", function()
            local s = assert(ip.set({ "1.2.3.4", " 10.0.0.0/8 ", "", "2001:db8::/32",
                "::1", "172.16.0.0/12" }))
            assert.is_true(s:contains("1.2.3.4"))
            assert.is_true(s:contains("::ffff:1.2.3.4"))
            assert.is_false(s:contains("1.2.3.5"))
            assert.is_true(s:contains("10.255.0.1"))
            assert.is_true(s:contains("172.20.1.1"))
            assert.is_true(s:contains("2001:db8:1::1"))
            assert.is_true(s:contains("0:0::1"))
            assert.is_false(s:contains("::2"))
            assert.is_false(s:contains("not an ip"))
            assert.same({ "1.2.3.4/32", "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32", "::1/128" },
                s:texts())
        end)

        it("keeps same-length v4 and v6 prefixes apart", function()
            local s = assert(ip.set({ "1.2.0.0/16" }))
            assert.is_false(s:contains("102::1"))
        end)

        it("names the bad entry", function()
            local s, err = ip.set({ "1.2.3.4", "1.2.3.999" })
            assert.is_nil(s)
            assert.matches("1.2.3.999", err, 1, true)
        end)

        it("accepts nil as empty and rejects non-tables", function()
            assert.is_false(ip.set(nil):contains("1.2.3.4"))
            assert.is_nil(ip.set("1.2.3.4"))
        end)

        it("answers the same for repeated and non-string lookups, empty or not", function()
            for _, list in ipairs({ {}, { "10.0.0.0/8", "2001:db8::1" } }) do
                local s = assert(ip.set(list))
                for _ = 1, 3 do
                    assert.equal(#list > 0, s:contains("10.1.2.3"))
                    assert.equal(#list > 0, s:contains("2001:db8:0::1"))
                    assert.is_false(s:contains("11.1.2.3"))
                    assert.is_false(s:contains(nil))
                    assert.is_false(s:contains(42))
                    assert.is_false(s:contains({}))
                end
            end
        end)

        it("stays right after more distinct addresses than it remembers", function()
            local s = assert(ip.set({ "10.0.0.0/16" }))
            for i = 0, 5000 do
                local a = "10." .. i % 2 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
                assert.equal(i % 2 == 0, s:contains(a), a)
            end
            assert.is_true(s:contains("10.0.1.1"))
            assert.is_false(s:contains("10.1.1.1"))
        end)
    end)

    describe("subnet", function()
        it("builds the canonical CIDR of the address", function()
            assert.equal("1.2.3.0/24", ip.subnet("1.2.3.4", 24, 48))
            assert.equal("2001:db8:1::/48", ip.subnet("2001:db8:1:2::5", 24, 48))
            assert.equal("1.2.0.0/16", ip.subnet("::ffff:1.2.3.4", 16, 48))
            assert.equal("1.2.3.4/32", ip.subnet("1.2.3.4", 32, 128))
            assert.equal("1.2.3.0/25", ip.subnet("1.2.3.4", 25, 48))
        end)

        it("fails on bad input", function()
            assert.is_nil(ip.subnet("nope", 24, 48))
            assert.is_nil(ip.subnet("1.2.3.4", 33, 48))
            assert.is_nil(ip.subnet("::1", 24, 129))
        end)
    end)

    describe("client_ip", function()
        local trusted
        before_each(function()
            trusted = assert(ip.set({ "127.0.0.0/8", "10.0.0.0/8", "::1" }))
        end)

        it("uses the peer when the peer is not trusted", function()
            assert.equal("203.0.113.9",
                ip.client_ip("203.0.113.9", "1.1.1.1", "2.2.2.2", trusted))
        end)

        it("uses the peer when no proxy is trusted", function()
            assert.equal("127.0.0.1", ip.client_ip("127.0.0.1", "1.1.1.1", nil, nil))
        end)

        it("walks X-Forwarded-For right to left past trusted proxies", function()
            assert.equal("198.51.100.2", ip.client_ip("127.0.0.1",
                "6.6.6.6, 198.51.100.2, 10.0.0.2, 10.0.0.3", nil, trusted))
        end)

        it("returns the leftmost entry when every hop is trusted", function()
            assert.equal("10.0.0.1", ip.client_ip("127.0.0.1", "10.0.0.1,10.0.0.2", nil, trusted))
        end)

        it("normalises entries, IPv4-mapped included", function()
            assert.equal("198.51.100.2",
                ip.client_ip("::1", " ::ffff:198.51.100.2 ", nil, trusted))
            assert.equal("2001:db8::1", ip.client_ip("::1", "2001:DB8:0::1", nil, trusted))
        end)

        it("never returns garbage: falls back to the peer", function()
            assert.equal("127.0.0.1", ip.client_ip("127.0.0.1", "1.1.1.1, evil", nil, trusted))
            assert.equal("127.0.0.1", ip.client_ip("127.0.0.1", "unknown", nil, trusted))
            assert.equal("127.0.0.1", ip.client_ip("127.0.0.1", "1.2.3.4:80", nil, trusted))
            assert.equal("127.0.0.1", ip.client_ip("127.0.0.1", nil, "garbage", trusted))
        end)

        it("skips empty XFF items", function()
            assert.equal("1.1.1.1", ip.client_ip("127.0.0.1", "1.1.1.1, ,", nil, trusted))
        end)

        it("uses X-Real-IP only without X-Forwarded-For", function()
            assert.equal("5.5.5.5", ip.client_ip("127.0.0.1", nil, " 5.5.5.5, 6.6.6.6", trusted))
            assert.equal("5.5.5.5", ip.client_ip("127.0.0.1", "  ", "5.5.5.5", trusted))
            assert.equal("1.1.1.1", ip.client_ip("127.0.0.1", "1.1.1.1", "5.5.5.5", trusted))
        end)

        it("ignores X-Real-IP from untrusted peers", function()
            assert.equal("8.8.8.8", ip.client_ip("8.8.8.8", nil, "5.5.5.5", trusted))
        end)

        it("normalises the peer", function()
            assert.equal("8.8.8.8", ip.client_ip("::ffff:8.8.8.8", nil, nil, trusted))
        end)
    end)
end)
