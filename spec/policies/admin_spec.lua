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
            h.files["other.txt"] = "y"
            assert(h.load("blacklist", { file = "other.txt" }))
            chain = { assert(h.load("admin", { key = "k" })) }
            assert.equal("y", send("GET", "/admin/blacklist", "Bearer k").resp.body)
        end)

        it("answers 405 to other methods", function()
            assert_error(send("POST", "/admin/blacklist", OK), 405, "method_not_allowed",
                "Method not allowed")
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
