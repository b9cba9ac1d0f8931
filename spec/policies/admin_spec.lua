-- pieces-gateway: spec/policies/admin_spec.lua
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake = require "fake_host"

describe("admin policy", function()
    local h, chain

    local function setup(conf)
        h = fake.new()
        chain = { assert(h.load("admin", conf)) }
    end

    before_each(function()
        setup({ key = "adm1n-key" })
    end)

    local function send(method, path, auth)
        return h.run(chain, h.request({ method = method, path = path,
            headers = { Authorization = auth } }))
    end

    local function assert_error(r, status, code, message)
        assert.equal(status, r.resp.status)
        assert.same({ error = { code = code, message = message, type = "error" } }, h.body(r))
    end

    local OK = "Bearer adm1n-key"

    describe("auth", function()
        it("needs 'Bearer ': 401 unauthorized", function()
            for _, v in ipairs({ false, "", "adm1n-key", "bearer adm1n-key", "Basic x" }) do
                assert_error(send("GET", "/admin/blacklist", v or nil), 401, "unauthorized",
                    "Unauthorized")
            end
        end)

        it("needs the exact key: 403 forbidden", function()
            for _, v in ipairs({ "Bearer ", "Bearer adm1n-ke", "Bearer adm1n-key ",
                "Bearer  adm1n-key", "Bearer ADM1N-KEY" }) do
                assert_error(send("GET", "/admin/blacklist", v), 403, "forbidden", "Forbidden")
            end
        end)

        it("comes before route matching", function()
            assert_error(send("GET", "/admin/nope", nil), 401, "unauthorized", "Unauthorized")
            assert_error(send("DELETE", "/admin/reload", "Bearer x"), 403, "forbidden",
                "Forbidden")
        end)

        it("does not accept the API key scheme elsewhere", function()
            local r = h.run(chain, h.request({ method = "GET", path = "/admin/blacklist",
                headers = { ["X-Api-Key"] = "adm1n-key" } }))
            assert.equal(401, r.resp.status)
        end)
    end)

    describe("GET /admin/blacklist", function()
        it("sends the raw file as an attachment", function()
            local content = '{"ip":"1.2.3.4","type":"ip"}\n{"ip":"::1"}\n'
            h.files["blacklist.txt"] = content
            local r = send("GET", "/admin/blacklist", OK)
            assert.equal(200, r.resp.status)
            assert.equal(content, r.resp.body)
            assert.equal("text/plain", r.resp.content_type)
            assert.equal("attachment; filename=blacklist.txt",
                r.resp.headers["content-disposition"])
        end)

        it("answers 404 text when the file is missing", function()
            local r = send("GET", "/admin/blacklist", OK)
            assert.equal(404, r.resp.status)
            assert.equal("404 page not found\n", r.resp.body)
            assert.matches("^text/plain", r.resp.content_type)
        end)

        it("uses the configured file, else the blacklist policy's", function()
            setup({ key = "k", file = "/data/bans.txt" })
            h.files["/data/bans.txt"] = "x"
            assert.equal("x", send("GET", "/admin/blacklist", "Bearer k").resp.body)
            h = fake.new()
            local line = '{"ip":"192.0.2.1","type":"ip","added_at":"2024-01-01T00:00:00Z",'
                .. '"violations":7}\n'
            h.files["other.txt"] = line
            assert(h.load("blacklist", { file = "other.txt" }))
            chain = { assert(h.load("admin", { key = "k" })) }
            assert.equal(line, send("GET", "/admin/blacklist", "Bearer k").resp.body)
        end)

        it("answers 405 to other methods", function()
            assert_error(send("POST", "/admin/blacklist", OK), 405, "method_not_allowed",
                "Method not allowed")
        end)
    end)

    describe("GET /admin/blacklist as a static file", function()
        local MTIME = 1700000000.75 -- Tue, 14 Nov 2023 22:13:20.75 GMT
        local LM = "Tue, 14 Nov 2023 22:13:20 GMT"
        local reads

        before_each(function()
            h.files["blacklist.txt"] = "0123456789"
            h.mtimes["blacklist.txt"] = MTIME
            reads = 0
            local read_file = h.host.read_file
            h.host.read_file = function(path)
                reads = reads + 1
                return read_file(path)
            end
        end)

        local function get(headers)
            headers.Authorization = OK
            return h.run(chain, h.request({ method = "GET", path = "/admin/blacklist",
                headers = headers }))
        end

        local function assert_206(r, body, range)
            assert.equal(206, r.resp.status)
            assert.equal(body, r.resp.body)
            assert.equal("bytes " .. range .. "/10", r.resp.headers["content-range"])
            assert.equal("text/plain", r.resp.content_type)
            assert.equal("bytes", r.resp.headers["accept-ranges"])
            assert.equal(LM, r.resp.headers["last-modified"])
        end

        local function assert_416(r, body, content_range)
            assert.equal(416, r.resp.status)
            assert.equal(body, r.resp.body)
            assert.equal("text/plain; charset=utf-8", r.resp.content_type)
            assert.equal(content_range, r.resp.headers["content-range"])
        end

        it("sends Last-Modified (whole seconds) and Accept-Ranges with the file", function()
            local r = get({})
            assert.equal(200, r.resp.status)
            assert.equal("0123456789", r.resp.body)
            assert.equal("text/plain", r.resp.content_type)
            assert.equal(LM, r.resp.headers["last-modified"])
            assert.equal("bytes", r.resp.headers["accept-ranges"])
            assert.equal("attachment; filename=blacklist.txt",
                r.resp.headers["content-disposition"])
            assert.is_nil(r.resp.headers["content-range"])
        end)

        it("takes the mtime of a file written through host.persist", function()
            h.advance(3600)
            assert(h.host.persist("blacklist.txt", "new\n"))
            local r = get({})
            assert.equal("new\n", r.resp.body)
            assert.equal("Tue, 14 Nov 2023 23:13:20 GMT", r.resp.headers["last-modified"])
        end)

        it("sends no Last-Modified for an mtime at the epoch and ignores If-Modified-Since",
            function()
                h.mtimes["blacklist.txt"] = 0
                local r = get({ ["If-Modified-Since"] = LM })
                assert.equal(200, r.resp.status)
                assert.is_nil(r.resp.headers["last-modified"])
            end)

        describe("If-Modified-Since", function()
            it("answers 304 without body when not modified since", function()
                for _, ims in ipairs({ LM, "Tue, 14 Nov 2023 22:13:21 GMT",
                    "Wed, 01 Jan 2031 00:00:00 GMT" }) do
                    local r = get({ ["If-Modified-Since"] = ims })
                    assert.equal(304, r.resp.status, ims)
                    assert.equal("", r.resp.body)
                    assert.equal(LM, r.resp.headers["last-modified"])
                    assert.equal("attachment; filename=blacklist.txt",
                        r.resp.headers["content-disposition"])
                    assert.is_nil(r.resp.headers["accept-ranges"])
                end
                assert.equal(0, reads, "a 304 does not read the file")
            end)

            it("sends the file when modified since", function()
                local r = get({ ["If-Modified-Since"] = "Tue, 14 Nov 2023 22:13:19 GMT" })
                assert.equal(200, r.resp.status)
                assert.equal("0123456789", r.resp.body)
                h.advance(10)
                assert(h.host.persist("blacklist.txt", "changed"))
                r = get({ ["If-Modified-Since"] = LM })
                assert.equal(200, r.resp.status)
                assert.equal("changed", r.resp.body)
            end)

            it("ignores unparsable dates (IMF-fixdate only)", function()
                for _, ims in ipairs({ "", "yesterday", "Tuesday, 14-Nov-23 22:13:20 GMT",
                    "Tue Nov 14 22:13:20 2023", "Tue, 14 Nov 2023 22:13:20 UTC",
                    "Tue, 14 Foo 2023 22:13:20 GMT", "Tue, 32 Nov 2023 22:13:20 GMT",
                    "Tue, 14 Nov 2023 24:13:20 GMT", "Tue, 4 Nov 2023 22:13:20 GMT" }) do
                    assert.equal(200, get({ ["If-Modified-Since"] = ims }).resp.status, ims)
                end
            end)

            it("parses dates across months, leap days and centuries", function()
                for _, t in ipairs({ 86400, 951782400, 951868799, 1709210096, 1735689599,
                    1735689600, 4102444799, 4107542400, 253402300799 }) do
                    h.mtimes["blacklist.txt"] = t + 0.5
                    local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
                    local r = get({ ["If-Modified-Since"] = date })
                    assert.equal(304, r.resp.status, date)
                    assert.equal(date, r.resp.headers["last-modified"])
                    h.mtimes["blacklist.txt"] = t + 1
                    assert.equal(200, get({ ["If-Modified-Since"] = date }).resp.status, date)
                end
            end)

            it("is ignored with If-None-Match, except If-None-Match *", function()
                local r = get({ ["If-Modified-Since"] = LM, ["If-None-Match"] = '"abc"' })
                assert.equal(200, r.resp.status)
                r = get({ ["If-None-Match"] = "*" })
                assert.equal(304, r.resp.status)
            end)

            it("comes before Range", function()
                local r = get({ ["If-Modified-Since"] = LM, Range = "bytes=0-1" })
                assert.equal(304, r.resp.status)
                assert.is_nil(r.resp.headers["content-range"])
            end)
        end)

        describe("Range", function()
            it("answers 206 with one range", function()
                assert_206(get({ Range = "bytes=2-5" }), "2345", "2-5")
                assert_206(get({ Range = "bytes=0-0" }), "0", "0-0")
                assert_206(get({ Range = "bytes=9-9" }), "9", "9-9")
                assert_206(get({ Range = "bytes=7-" }), "789", "7-9")
                assert_206(get({ Range = "bytes=-3" }), "789", "7-9")
                assert_206(get({ Range = "bytes=-10" }), "0123456789", "0-9")
                assert_206(get({ Range = "bytes=-20" }), "0123456789", "0-9")
                assert_206(get({ Range = "bytes=5-100" }), "56789", "5-9")
                assert_206(get({ Range = "bytes= 1 - 2 ," }), "12", "1-2")
            end)

            it("answers 206 with the one satisfiable range of several", function()
                assert_206(get({ Range = "bytes=20-30, 3-4, 10-" }), "34", "3-4")
            end)

            it("answers several satisfiable ranges with the whole file (200)", function()
                for _, range in ipairs({ "bytes=0-1,4-5", "bytes=-2,0-0" }) do
                    local r = get({ Range = range })
                    assert.equal(200, r.resp.status)
                    assert.equal("0123456789", r.resp.body)
                    assert.is_nil(r.resp.headers["content-range"])
                end
            end)

            it("answers 200 to an empty range set", function()
                for _, range in ipairs({ "bytes=", "bytes=,", "bytes= , " }) do
                    assert.equal(200, get({ Range = range }).resp.status, range)
                end
            end)

            it("answers 416 with Content-Range */size when nothing overlaps", function()
                for _, range in ipairs({ "bytes=10-", "bytes=10-20", "bytes=-0",
                    "bytes=10-5", "bytes=10-x", "bytes=12-,20-30" }) do
                    assert_416(get({ Range = range }), "invalid range: failed to overlap\n",
                        "bytes */10")
                end
            end)

            it("answers 416 invalid range to a malformed Range", function()
                for _, range in ipairs({ "items=0-1", "Bytes=0-1", "bytes=5", "bytes=-",
                    "bytes=5-2", "bytes=a-b", "bytes=1-b", "bytes=--1", "bytes=+1-2",
                    "bytes=0-1,x", "bytes=0-1,3-2" }) do
                    assert_416(get({ Range = range }), "invalid range\n", nil)
                end
            end)

            it("answers 200 to a Range on an empty file that nothing overlaps", function()
                h.files["blacklist.txt"] = ""
                local r = get({ Range = "bytes=0-" })
                assert.equal(200, r.resp.status)
                assert.equal("", r.resp.body)
                assert_416(get({ Range = "bytes=x" }), "invalid range\n", nil)
            end)

            it("If-Range: a date equal to Last-Modified keeps the Range, else it is dropped",
                function()
                    assert_206(get({ Range = "bytes=0-1", ["If-Range"] = LM }), "01", "0-1")
                    for _, ir in ipairs({ "Tue, 14 Nov 2023 22:13:21 GMT", '"etag"', "x" }) do
                        local r = get({ Range = "bytes=0-1", ["If-Range"] = ir })
                        assert.equal(200, r.resp.status, ir)
                        assert.equal("0123456789", r.resp.body)
                    end
                end)
        end)

        it("answers 404 when the file is missing, with no file headers", function()
            h.files["blacklist.txt"] = nil
            local r = get({ Range = "bytes=0-1", ["If-Modified-Since"] = LM })
            assert.equal(404, r.resp.status)
            assert.equal("404 page not found\n", r.resp.body)
            assert.is_nil(r.resp.headers["last-modified"])
            assert.is_nil(r.resp.headers["content-range"])
        end)
    end)

    describe("DELETE /admin/blacklist/{ip-or-cidr}", function()
        local bl

        before_each(function()
            h = fake.new()
            h.files["blacklist.txt"] = '{"ip":"192.0.2.0/24","type":"subnet"}\n'
                .. '{"ip":"198.51.100.9","type":"ip"}\n'
            bl = assert(h.load("blacklist", {}))
            chain = { bl, assert(h.load("admin", { key = "adm1n-key" })) }
        end)

        it("lifts a ban (IP or percent-encoded CIDR) and rewrites the file", function()
            local r = send("DELETE", "/admin/blacklist/198.51.100.9", OK)
            assert.equal(200, r.resp.status)
            assert.same({ status = "removed", ip = "198.51.100.9" }, h.body(r))
            assert.is_false(bl:is_banned("198.51.100.9"))
            r = send("DELETE", "/admin/blacklist/192.0.2.0%2F24", OK)
            assert.same({ status = "removed", ip = "192.0.2.0/24" }, h.body(r))
            assert.is_false(bl:is_banned("192.0.2.1"))
            assert.equal("", h.files["blacklist.txt"])
        end)

        it("answers 404 ban_not_found and 400 invalid_request", function()
            assert_error(send("DELETE", "/admin/blacklist/203.0.113.1", OK), 404, "ban_not_found",
                "No ban for 203.0.113.1")
            assert_error(send("DELETE", "/admin/blacklist/x%20y", OK), 400, "invalid_request",
                "not an IP address or CIDR")
        end)

        it("needs the admin key and the DELETE method", function()
            assert_error(send("DELETE", "/admin/blacklist/198.51.100.9"), 401, "unauthorized",
                "Unauthorized")
            assert_error(send("GET", "/admin/blacklist/198.51.100.9", OK), 405,
                "method_not_allowed", "Method not allowed")
            assert.is_true(bl:is_banned("198.51.100.9"))
        end)

        it("is not routed without the blacklist policy", function()
            setup({ key = "adm1n-key" })
            assert_error(send("DELETE", "/admin/blacklist/198.51.100.9", OK), 404,
                "route_not_found", "Requested path not found")
        end)

        it("GET serves the current bans when the file lags them", function()
            h.files["blacklist.txt"] = "stale\n" -- e.g. a change made on another instance
            h.mtimes["blacklist.txt"] = 1000
            h.advance(5)
            local r = send("GET", "/admin/blacklist", OK)
            assert.equal(200, r.resp.status)
            assert.matches("198%.51%.100%.9", r.resp.body)
            assert.equal(r.resp.body, h.files["blacklist.txt"], "and the file is written")
            assert.equal("Tue, 14 Nov 2023 22:13:25 GMT", r.resp.headers["last-modified"])
            r = send("GET", "/admin/blacklist", OK) -- in step now: the file's own mtime
            assert.equal(r.resp.body, h.files["blacklist.txt"])
        end)
    end)

    describe("POST /admin/reload", function()
        it("asks the host to reload", function()
            local r = send("POST", "/admin/reload", OK)
            assert.equal(200, r.resp.status)
            assert.same({ status = "reloading" }, h.body(r))
            assert.equal("application/json", r.resp.content_type)
            assert.equal(1, h.reloads)
        end)

        it("answers 405 to GET without reloading", function()
            assert_error(send("GET", "/admin/reload", OK), 405, "method_not_allowed",
                "Method not allowed")
            assert.equal(0, h.reloads)
        end)
    end)

    describe("GET /admin/policies", function()
        it("returns host.status()", function()
            local r = send("GET", "/admin/policies", OK)
            assert.equal(200, r.resp.status)
            local body = h.body(r)
            assert.same({ "admin" }, body.policies)
            assert.equal(1, body.config_version)
            assert.is_true(body.last_reload.ok)
        end)

        it("answers 500 when the host has no status", function()
            h.host.status = nil
            assert_error(send("GET", "/admin/policies", OK), 500, "internal_error",
                "Status is not available")
        end)
    end)

    it("answers 404 route_not_found to unknown admin paths", function()
        for _, p in ipairs({ "/admin/", "/admin/blacklist/", "/admin/whitelist" }) do
            assert_error(send("GET", p, OK), 404, "route_not_found", "Requested path not found")
        end
    end)

    it("leaves other paths, /admin itself and OPTIONS alone", function()
        for _, p in ipairs({ "/admin", "/v1/admin/reload", "/", "/administrator" }) do
            assert.equal(200, send("GET", p, nil).resp.status)
        end
        assert.equal(200, send("OPTIONS", "/admin/reload", nil).resp.status)
    end)

    describe("generated key", function()
        it("generates 32-64 characters of the seed alphabet and logs it once", function()
            for _ = 1, 20 do
                setup({})
                local key = h.host.policy("admin").key
                assert.is_true(#key >= 32 and #key <= 64)
                assert.matches("^[a-zA-Z0-9!@#$%%^&*]+$", key)
                assert.is_true(h.logged("warn", "Generated random ADMIN_KEY: " .. key, true))
                assert.equal(200, send("POST", "/admin/reload", "Bearer " .. key).resp.status)
            end
        end)

        it("is the same for every worker", function()
            setup({ key = "" })
            local key = h.host.policy("admin").key
            local h2 = fake.new({ peer = h })
            local a2 = assert(h2.load("admin", { key = "" }))
            assert.equal(key, a2.key)
            assert.equal(0, #h2.logs)
        end)
    end)

    it("rejects a non-string key", function()
        local inst, err = h.load("admin", { key = 42 })
        assert.is_nil(inst)
        assert.matches("key", err)
    end)
end)
