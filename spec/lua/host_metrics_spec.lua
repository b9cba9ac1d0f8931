-- pieces-gateway: what lua/gw/host.lua tells the metrics: policy errors, the route a content
-- policy serves, the model label, the catalog, the admin key (through the fake FFI).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local fake_ffi = require "fake_ffi"

local function write(path, text)
    local fh = assert(io.open(path, "w"))
    fh:write(text)
    fh:close()
end

local function read(path)
    local fh = assert(io.open(path))
    local s = fh:read("*a")
    fh:close()
    return s
end

local function policy(body)
    return "local _M = {}\n"
        .. "function _M.new(conf, host)\n"
        .. "    return setmetatable({ conf = conf, host = host }, { __index = _M })\n"
        .. "end\n" .. body .. "\nreturn _M\n"
end

describe("gw.host and the metrics", function()
    local dir, f, host, n = nil, nil, nil, 0

    setup(function()
        dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir -p " .. dir) == 0)
        write(dir .. "/models.lua", read("policies/models.lua"))
    end)

    teardown(function()
        os.execute("rm -rf " .. dir)
    end)

    local function boot(sources, enabled)
        n = n + 1
        for name, text in pairs(sources) do
            write(dir .. "/" .. name .. ".lua", text)
        end
        local list = {}
        for i, e in ipairs(enabled) do
            list[i] = ("{ name = %q, conf = { key = 'k-admin' } }"):format(e)
        end
        local cfg = dir .. "/gateway" .. n .. ".lua"
        write(cfg, ("return { policies_dir = %q, policies = { %s } }")
            :format(dir, table.concat(list, ", ")))
        return host.init({ config_path = cfg })
    end

    before_each(function()
        f = fake_ffi.new()
        f.install()
        host = require "gw.host"
    end)

    it("counts a policy raising, by policy and phase", function()
        boot({ bad = policy("function _M:access() error('no') end\n"
            .. "function _M:log() error('x') end") }, { "bad" })
        host.handle(f.request({ path = "/x" }), 1)
        host.log(f.request({ path = "/x" }), 1)
        local value = f.state.metrics.value
        assert.equal(1, value("gateway_policy_errors_total", { policy = "bad", phase = "access" }))
        assert.equal(1, value("gateway_policy_errors_total", { policy = "bad", phase = "log" }))
    end)

    it("names the route after the policy that answered in the content phase", function()
        boot({ srv = policy("function _M:content(r) r.resp:exit(200, 'x') end"),
            pre = policy("function _M:access(r) if r.req.path == '/no' then "
                .. "r.resp:exit(403) end end") }, { "pre", "srv" })
        local served, refused = f.request({ path = "/mine" }), f.request({ path = "/no" })
        host.handle(served, 1)
        host.handle(refused, 2)
        assert.equal("srv", served.stats.route)
        assert.is_nil(refused.stats) -- answered before the content phase: C names it by path
    end)

    it("sets the model label to the catalog id the client's name resolves to", function()
        local info = boot({ chat = policy("function _M:route(r) r.ctx.model = "
            .. "r.req:header('x-model') end") }, { "models", "chat" })
        assert.truthy(f.state.metrics.catalog["gpt-4o"])
        assert.truthy(f.state.metrics.catalog["claude-3-haiku@20240307"])
        assert.is_nil(info.admin_key)
        local cases = { ["gpt-4o"] = "gpt-4o", ["claude-3-haiku-20240307"] =
            "claude-3-haiku@20240307", ["my-model"] = "other" }
        for name, label in pairs(cases) do
            local req = f.request({ method = "POST", path = "/v1/chat/completions",
                headers = { { "x-model", name } } })
            host.route(req, 1)
            assert.equal(name, req.log_model)
            assert.equal(label, req.stats.model)
        end
    end)

    it("returns the admin policy's key for GET /metrics", function()
        local info = boot({ admin = read("policies/admin.lua") }, { "admin" })
        assert.equal("k-admin", info.admin_key)
    end)
end)
