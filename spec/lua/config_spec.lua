-- pieces-gateway: spec of lua/gw/config.lua (gateway.lua evaluation and validation), driven
-- through the fake FFI (spec/support/fake_ffi.lua) since gw.config requires gw.ffi.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake_ffi = require "fake_ffi"

local LOG_WARN = 2

describe("gw.config", function()
    local f, config, files

    local function write(text)
        local path = os.tmpname()
        local fh = assert(io.open(path, "w"))
        fh:write(text)
        fh:close()
        files[#files + 1] = path
        return path
    end

    -- load() of a gateway.lua with this text; returns ok, cfg-or-error, path
    local function load(text, quiet, getenv)
        local path = write(text)
        local ok, res = pcall(config.load, path, quiet, getenv)
        return ok, res, path
    end

    local function load_error(text)
        local ok, err, path = load(text)
        assert.is_false(ok, "expected a load error")
        return err, path
    end

    before_each(function()
        files = {}
        f = fake_ffi.new()
        f.install()
        config = require "gw.config"
    end)

    after_each(function()
        for _, p in ipairs(files) do
            os.remove(p)
        end
    end)

    describe("env_readers", function()
        local vars, warnings, env

        before_each(function()
            vars, warnings = {}, {}
            env = config.env_readers(function(msg)
                warnings[#warnings + 1] = msg
            end, function(name)
                return vars[name]
            end)
        end)

        it("str trims and treats empty or blank as unset", function()
            vars.A, vars.B, vars.C = "  hello world \t", "", "   "
            assert.equal("hello world", env.str("A", "d"))
            assert.equal("d", env.str("B", "d"))
            assert.equal("d", env.str("C", "d"))
            assert.equal("d", env.str("MISSING", "d"))
            assert.is_nil(env.str("MISSING"))
            assert.same({}, warnings)
        end)

        it("int parses [+-]digits from the raw value", function()
            vars.A, vars.B, vars.C, vars.D = "42", "-3", "+7", "007"
            assert.equal(42, env.int("A", 1))
            assert.equal(-3, env.int("B", 1))
            assert.equal(7, env.int("C", 1))
            assert.equal(7, env.int("D", 1))
            assert.equal(1, env.int("MISSING", 1))
            vars.E = ""
            assert.equal(1, env.int("E", 1))
            assert.same({}, warnings)
        end)

        it("int warns naming the variable and falls back", function()
            for _, bad in ipairs({ " 42", "42 ", "4.2", "abc", "0x10", "1e3", "+", "- 1",
                "99999999999999999999" }) do
                warnings = {}
                vars.PORT = bad
                assert.equal(8787, env.int("PORT", 8787), bad)
                assert.same({ ("Warning: invalid integer value for PORT: '%s', using default 8787")
                    :format(bad) }, warnings)
            end
        end)

        it("num parses plain decimals only", function()
            vars.A, vars.B, vars.C, vars.D = "1.5", "-0.25", "1e3", "10"
            assert.equal(1.5, env.num("A", 0))
            assert.equal(-0.25, env.num("B", 0))
            assert.equal(1000, env.num("C", 0))
            assert.equal(10, env.num("D", 0))
            assert.same({}, warnings)
            for _, bad in ipairs({ "0x10", "inf", "nan", "-inf", " 1", "1 ", "1e999", "1,5",
                "", "." }) do
                warnings = {}
                vars.T = bad
                assert.equal(30, env.num("T", 30), bad)
                if bad ~= "" then
                    assert.same({ ("Warning: invalid number value for T: '%s', using default 30")
                        :format(bad) }, warnings)
                end
            end
        end)

        it("bool takes Go's ParseBool spellings", function()
            for _, s in ipairs({ "1", "t", "T", "TRUE", "true", "True" }) do
                vars.B = s
                assert.is_true(env.bool("B", false), s)
            end
            for _, s in ipairs({ "0", "f", "F", "FALSE", "false", "False" }) do
                vars.B = s
                assert.is_false(env.bool("B", true), s)
            end
            assert.same({}, warnings)
        end)

        it("bool warns on anything else", function()
            for _, bad in ipairs({ "yes", "no", "on", "tRUE", "TRUE ", " 1", "2" }) do
                warnings = {}
                vars.DEBUG = bad
                assert.is_false(env.bool("DEBUG", false), bad)
                assert.same({ ("Warning: invalid boolean value for DEBUG: '%s', using default"
                    .. " false"):format(bad) }, warnings)
            end
        end)

        it("list splits on commas, trims and drops empty items", function()
            vars.L = " a, b ,,c , "
            assert.same({ "a", "b", "c" }, env.list("L", { "d" }))
            vars.L = "single"
            assert.same({ "single" }, env.list("L", {}))
            vars.L = ","
            assert.same({}, env.list("L", { "d" }))
            vars.L = "   "
            assert.same({ "d" }, env.list("L", { "d" }))
            assert.same({ "d" }, env.list("MISSING", { "d" }))
        end)

        it("reads the process environment through gw.ffi by default", function()
            f.state.env.GW_TEST = " v "
            f.state.env.EMPTY = ""
            local e = config.env_readers(function() end)
            assert.equal("v", e.str("GW_TEST"))
            assert.equal("x", e.str("EMPTY", "x"))
        end)
    end)

    describe("shared_store", function()
        it("parses SHARED_STORE URLs", function()
            assert.same({ kind = "local" }, config.parse_store_url(""))
            assert.same({ kind = "local" }, config.parse_store_url("local"))
            assert.same({ kind = "redis", host = "10.0.0.5", port = 6380, db = 2 },
                config.parse_store_url("redis://10.0.0.5:6380/2"))
            assert.same({ kind = "redis", host = "redis", port = 6379, db = 0 },
                config.parse_store_url("redis://redis"))
            assert.same({ kind = "redis", host = "h", port = 1, db = 0, password = "p@:w%" },
                config.parse_store_url("redis://:p%40:w%25@h:1/"))
            assert.same({ kind = "redis", host = "::1", port = 7000, db = 0, user = "app",
                password = "pw" }, config.parse_store_url("redis://app:pw@[::1]:7000"))
        end)

        it("refuses bad URLs, modes and timeouts without quoting the URL", function()
            for _, url in ipairs({ "http://x", "redis://", "redis://:secret@h:99999/0",
                "redis://:secret@h:1/x", "redis://:secret@h:p/0" }) do
                local err = load_error(("return { shared_store = { url = %q } }"):format(url))
                assert.matches("shared_store.url must be", err)
                assert.is_nil(err:find("secret", 1, true), err)
            end
            assert.matches('shared_store.on_error must be "open", "closed" or "local"',
                load_error('return { shared_store = { on_error = "fail" } }'))
            assert.matches("shared_store.timeout_ms must be between 1 and 60000",
                load_error("return { shared_store = { timeout_ms = 0 } }"))
        end)

        it("defaults to the local dictionary, 50 ms, on_error local", function()
            local ok, cfg = load("return {}")
            assert.is_true(ok, cfg)
            assert.equal("local", cfg.shared_store.kind)
            assert.equal(50, cfg.shared_store.timeout_ms)
            assert.equal("local", cfg.shared_store.on_error)
        end)
    end)

    describe("normalize_prefix", function()
        local warnings
        local function norm(p)
            warnings = {}
            return config.normalize_prefix(p, function(m)
                warnings[#warnings + 1] = m
            end)
        end

        it("keeps a good prefix and the empty prefix", function()
            assert.equal("/v1", norm("/v1"))
            assert.same({}, warnings)
            assert.equal("", norm(""))
            assert.same({}, warnings)
            assert.equal("/api/v2", norm("/api/v2"))
        end)

        it("adds a leading slash with the seed's warning", function()
            assert.equal("/v1", norm("v1"))
            assert.same({ "Warning: APIPrefix should start with /, auto fixed to: /v1" },
                warnings)
        end)

        it("removes trailing slashes with the seed's warning", function()
            assert.equal("/v1", norm("/v1/"))
            assert.same({ "Warning: APIPrefix should not end with /, auto fixed to: /v1" },
                warnings)
            assert.equal("/v1", norm("/v1//"))
            assert.equal(1, #warnings)
        end)

        it("turns '/' into the empty prefix", function()
            assert.equal("", norm("/"))
            assert.same({ "Warning: APIPrefix should not end with /, auto fixed to: " }, warnings)
        end)

        it("applies both fixes in order", function()
            assert.equal("/v1", norm("v1/"))
            assert.same({ "Warning: APIPrefix should start with /, auto fixed to: /v1/",
                "Warning: APIPrefix should not end with /, auto fixed to: /v1" }, warnings)
        end)
    end)

    describe("load", function()
        it("keeps absolute directories as they are", function()
            local ok, cfg = load('return { policies_dir = "/srv/p", assets_dir = "/srv/a" }')
            assert.is_true(ok, cfg)
            assert.equal("/srv/p", cfg.policies_dir)
            assert.equal("/srv/a", cfg.assets_dir)
        end)

        it("fills every default", function()
            local ok, cfg, path = load("return {}")
            assert.is_true(ok, cfg)
            local dir = path:match("^(.*)/[^/]*$")
            assert.same({ host = "0.0.0.0", port = 8787 }, cfg.listen)
            assert.equal("0.0.0.0", cfg.listen_host)
            assert.equal(8787, cfg.port)
            assert.equal(0, cfg.workers)
            assert.equal("/v1", cfg.api_prefix)
            -- relative directories are relative to the config file
            assert.equal(dir .. "/policies", cfg.policies_dir)
            assert.equal(dir .. "/assets", cfg.assets_dir)
            assert.equal("", cfg.log_file)
            assert.is_false(cfg.debug)
            assert.is_true(cfg.access_log)
            assert.same({ max_connections = 10000, max_header_size = 16384,
                max_body_size = 8388608, header_timeout = 10, keepalive_timeout = 75,
                shutdown_grace = 30, request_timeout = 30, stream_timeout = 300,
                shared_dict_size = 67108864 }, cfg.limits)
            assert.equal(5, cfg.upstream.min_pool_size)
            assert.equal(20, cfg.upstream.max_pool_size)
            assert.equal(3, cfg.upstream.max_retries)
            assert.is_false(cfg.upstream.insecure)
            assert.matches("^runtime%-native%-io%-gpt%-", cfg.upstream.gpt)
            assert.same({ "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                "192.168.0.0/16", "fc00::/7" }, cfg.trusted_proxies)
            assert.same({}, cfg.policies)
        end)

        it("fills the missing keys of a partial section and keeps lists whole", function()
            local ok, cfg = load([[return { limits = { max_body_size = 10 },
                listen = { port = 9000 }, trusted_proxies = { "1.2.3.4" } }]])
            assert.is_true(ok, cfg)
            assert.equal(10, cfg.limits.max_body_size)
            assert.equal(16384, cfg.limits.max_header_size)
            assert.equal(9000, cfg.port)
            assert.equal("0.0.0.0", cfg.listen.host)
            assert.same({ "1.2.3.4" }, cfg.trusted_proxies)
        end)

        it("passes the env readers to gateway.lua", function()
            f.state.env.PORT = "9001"
            f.state.env.API_PREFIX = " v2/ "
            local ok, cfg = load([[local env = ...
                return { listen = { port = env.int("PORT", 8787) },
                    api_prefix = env.str("API_PREFIX", "/v1") }]])
            assert.is_true(ok, cfg)
            assert.equal(9001, cfg.port)
            assert.equal("/v2", cfg.api_prefix)
            assert.same({ "Warning: APIPrefix should start with /, auto fixed to: /v2/",
                "Warning: APIPrefix should not end with /, auto fixed to: /v2" }, f.lines())
            assert.equal(LOG_WARN, f.state.logs[1].level)
        end)

        it("logs env warnings unless quiet", function()
            f.state.env.PORT = "http"
            local text = 'local env = ... return { listen = { port = env.int("PORT", 8787) } }'
            local ok, cfg = load(text)
            assert.is_true(ok, cfg)
            assert.equal(8787, cfg.port)
            assert.same({ "Warning: invalid integer value for PORT: 'http', using default 8787" },
                f.lines())
            f.state.logs = {}
            ok = load(text, true)
            assert.is_true(ok)
            assert.same({}, f.state.logs)
        end)

        it("uses the getenv argument when given", function()
            local ok, cfg = load('local env = ... return { workers = env.int("W", 1) }', false,
                function(name)
                    return name == "W" and "3" or nil
                end)
            assert.is_true(ok, cfg)
            assert.equal(3, cfg.workers)
        end)

        it("rejects an unknown top-level key, naming it", function()
            local err, path = load_error("return { prot = 80 }")
            assert.equal(path .. ": prot is not a known setting", err)
        end)

        it("reports range errors with the dotted key", function()
            local err, path = load_error("return { listen = { port = 70000 } }")
            assert.equal(path .. ": listen.port must be between 1 and 65535 (got 70000)", err)
            err = load_error("return { limits = { max_header_size = 1 } }")
            assert.matches("limits.max_header_size must be between 256 and 1048576 (got 1)", err,
                1, true)
            err = load_error("return { limits = { header_timeout = 0 } }")
            assert.matches("limits.header_timeout must be between 0.001 and 3600 (got 0)", err,
                1, true)
        end)

        it("reports type errors with the dotted key", function()
            local cases = {
                { "return { listen = { port = '80' } }",
                    "listen.port must be an integer (got 80)" },
                { "return { workers = 1.5 }", "workers must be an integer (got 1.5)" },
                { "return { debug = 'yes' }", "debug must be a boolean (got string)" },
                { "return { api_prefix = 1 }", "api_prefix must be a string (got number)" },
                { "return { upstream = { insecure = 1 } }",
                    "upstream.insecure must be a boolean (got number)" },
                { "return { limits = { stream_timeout = 0/0 } }",
                    "limits.stream_timeout must be a number" },
                { "return { upstream = { gpt = false } }",
                    "upstream.gpt must be a string (got boolean)" },
            }
            for _, c in ipairs(cases) do
                local err, path = load_error(c[1])
                assert.equal(path .. ": ", err:sub(1, #path + 2), c[1])
                assert.matches(c[2], err, 1, true)
            end
        end)

        it("reports a section that is not a table, naming it", function()
            local err, path = load_error("return { limits = 5 }")
            assert.equal(path .. ": limits must be a table (got number)", err)
            err, path = load_error("return { listen = 'x' }")
            assert.equal(path .. ": listen must be a table (got string)", err)
            err, path = load_error("return { trusted_proxies = '1.2.3.4' }")
            assert.equal(path .. ": trusted_proxies must be a table (got string)", err)
        end)

        it("metrics: on by default, METRICS=on|off, METRICS_ALLOW a list", function()
            local ok, cfg = load("return {}")
            assert.is_true(ok, cfg)
            assert.is_true(cfg.metrics.enabled)
            assert.same({ "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                "192.168.0.0/16", "fc00::/7" }, cfg.metrics.allow)
            assert.equal("text", cfg.access_log_format)
            ok, cfg = load('return { metrics = { enabled = "off", allow = { "10.1.0.0/16" } },'
                .. ' access_log_format = "json" }')
            assert.is_true(ok, cfg)
            assert.is_false(cfg.metrics.enabled)
            assert.same({ "10.1.0.0/16" }, cfg.metrics.allow)
            assert.equal("json", cfg.access_log_format)
            assert.is_true(select(2, load('return { metrics = { enabled = "on" } }')).metrics
                .enabled)
            local err, path = load_error('return { metrics = { enabled = "maybe" } }')
            assert.equal(path .. ": metrics.enabled must be a boolean (got string)", err)
            err, path = load_error('return { access_log_format = "xml" }')
            assert.equal(path .. ': access_log_format must be "text" or "json" (got "xml")', err)
            err, path = load_error('return { metrics = { allow = "10.0.0.0/8" } }')
            assert.equal(path .. ": metrics.allow must be a list of IPs or CIDRs", err)
        end)

        it("rejects min_pool_size > max_pool_size", function()
            local err, path = load_error(
                "return { upstream = { min_pool_size = 30, max_pool_size = 20 } }")
            assert.equal(path .. ": upstream.min_pool_size must not exceed"
                .. " upstream.max_pool_size", err)
            local ok = load("return { upstream = { min_pool_size = 20, max_pool_size = 20 } }")
            assert.is_true(ok)
        end)

        describe("policies", function()
            it("defaults conf to an empty table", function()
                local ok, cfg = load([[return { policies = { { name = "models" },
                    { name = "ip_rules", conf = { a = 1 } } } }]])
                assert.is_true(ok, cfg)
                assert.same({ { name = "models", conf = {} },
                    { name = "ip_rules", conf = { a = 1 } } }, cfg.policies)
            end)

            it("rejects bad names", function()
                for _, p in ipairs({ "{ name = 'a b' }", "{ name = '../x' }", "{ name = '' }",
                    "{}", "'models'", "{ name = 5 }" }) do
                    local err, path = load_error("return { policies = { " .. p .. " } }")
                    assert.equal(path .. ": policies[1] must be a table with a name made of"
                        .. " letters, digits, _ or -", err, p)
                end
            end)

            it("rejects a duplicate", function()
                local err, path = load_error([[return { policies = { { name = "auth" },
                    { name = "models" }, { name = "auth" } } }]])
                assert.equal(path .. ": policies[3] repeats policy 'auth'", err)
            end)

            it("rejects a conf that is not a table", function()
                local err, path = load_error("return { policies = { { name = 'a', conf = 1 } } }")
                assert.equal(path .. ": policies[1].conf must be a table", err)
            end)

            it("rejects a policies value that is not a list", function()
                local err, path = load_error("return { policies = 'auth' }")
                assert.equal(path .. ": policies must be a list", err)
            end)
        end)

        it("reports a syntax error with file and line", function()
            local err, path = load_error("return {\n  listen = {\n}")
            assert.equal(path .. ":3:", err:sub(1, #path + 3))
        end)

        it("reports a runtime error with file and line", function()
            local err, path = load_error("local x = 1\nerror('no config for you')\nreturn {}")
            assert.equal(path .. ":2: no config for you", err)
        end)

        it("runs gateway.lua in a sandbox without io or os", function()
            local err, path = load_error("io.write('x')\nreturn {}")
            assert.equal(path .. ":1:", err:sub(1, #path + 3))
            err = load_error("return { log_file = os.getenv('HOME') }")
            assert.matches("os", err, 1, true)
        end)

        it("rejects a file that does not return a table", function()
            local err, path = load_error("return 42")
            assert.equal(path .. ": must return a table", err)
        end)

        it("reports a missing file", function()
            local ok, err = pcall(config.load, "/nonexistent/gateway.lua")
            assert.is_false(ok)
            assert.matches("/nonexistent/gateway.lua", err, 1, true)
        end)

        it("loads the shipped gateway.lua", function()
            local ok, cfg = pcall(config.load, "gateway.lua", true)
            assert.is_true(ok, cfg)
            assert.equal("/v1", cfg.api_prefix)
            assert.equal("models", cfg.policies[1].name)
            for _, p in ipairs(cfg.policies) do
                assert.is_table(p.conf)
                local fh = io.open("policies/" .. p.name .. ".lua")
                assert.is_not_nil(fh, p.name)
                fh:close()
            end
        end)
    end)

    describe("backends", function()
        local function names(cfg)
            local out = {}
            for i, b in ipairs(cfg.backend_list) do
                out[i] = b.name
            end
            return out
        end

        it("default: Pieces only, settings from upstream", function()
            local ok, cfg = load("return { upstream = { ca_file = '/ca.pem', insecure = true } }")
            assert.is_true(ok, cfg)
            assert.same({ "pieces" }, names(cfg))
            assert.equal("/ca.pem", cfg.backend_list[1].ca_file)
            assert.is_true(cfg.backend_list[1].insecure)
            assert.same({ failures = 5, cooldown = 30 }, cfg.breaker)
            assert.equal(5, cfg.upstream.connect_timeout)
        end)

        it("an openai backend without a base_url does not exist (OPENAI_BASE_URL unset)", function()
            local ok, cfg = load("return { backends = { pieces = { type = 'pieces' }, "
                .. "openai = { type = 'openai', base_url = '', api_key = 'k' } } }")
            assert.is_true(ok, cfg)
            assert.same({ "pieces" }, names(cfg))
        end)

        it("orders by backend_order, then by name; parses models and headers", function()
            local ok, cfg = load([[return { backend_order = { "b", "pieces" }, backends = {
                pieces = { type = "pieces" }, z = { type = "openai", base_url = "http://z" },
                b = { type = "openai", base_url = "https://h/api/v1", api_key = "sk",
                    models = { "gpt-4o=openai/gpt-4o", " deepseek-chat ", "gpt-4o=dup",
                        { id = "x", model = "y", encoding = "cl100k_base" } },
                    headers = { ["HTTP-Referer"] = "https://me", ["X-Title"] = "t" } } } }]])
            assert.is_true(ok, cfg)
            assert.same({ "b", "pieces", "z" }, names(cfg))
            local b = cfg.backend_list[1]
            assert.same({ { id = "gpt-4o", model = "openai/gpt-4o" },
                { id = "deepseek-chat", model = "deepseek-chat" },
                { id = "x", model = "y", encoding = "cl100k_base" } }, b.models)
            assert.same({ { name = "HTTP-Referer", value = "https://me" },
                { name = "X-Title", value = "t" } }, b.header_list)
            assert.equal("sk", b.api_key)
            assert.equal(32, b.max_idle)
        end)

        it("rejects what cannot work, naming the key", function()
            for text, want in pairs({
                ["return { backends = 5 }"] = "backends must be a table",
                ["return { backends = { x = { type = 'grpc' } } }"] = "backends.x.type must be",
                ["return { backends = { ['a b'] = { type = 'pieces' } } }"] = "needs a name",
                ["return { backends = { o = { type = 'openai', base_url = 'ftp://x' } } }"] =
                    "backends.o.base_url must be an http",
                ["return { backends = { o = { type = 'openai', base_url = 'http://x', "
                    .. "headers = { A = 'x\\r\\nB: y' } } } }"] = "backends.o.headers.A must be",
                ["return { backends = { o = { type = 'openai', base_url = 'http://x', "
                    .. "headers = { Authorization = 'x' } } } }"] = "must not set Authorization",
                ["return { backends = { o = { type = 'openai', base_url = 'http://x', "
                    .. "models = { 5 } } } }"] = "backends.o.models[1] must be",
                ["return { backends = { p = { type = 'pieces', base_url = 'x' } } }"] =
                    "backends.p.base_url is not a setting of a pieces backend",
                ["return { breaker = { failures = 0 } }"] = "breaker.failures must be between",
                ["return { backend_order = 'pieces' }"] = "backend_order must be a table",
            }) do
                local err = load_error(text)
                assert.matches(want, err, 1, true)
            end
        end)
    end)
end)