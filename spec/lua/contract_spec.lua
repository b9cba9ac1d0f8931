-- pieces-gateway: the contract checks between src/gw_ffi.h, the lua/gw cdefs, the fake FFI, the
-- fake host, the real host and docs/policy-api.md; and the shared client-IP vectors.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local ffi = require "ffi"
local fake_ffi = require "fake_ffi"
local fake_host = require "fake_host"
local ip = require "gw.ip"

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local function strip_comments(s)
    return (s:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " "))
end

-- name -> normalised prototype ("int gw_ffi_x(void *req, int what)") of every gw_ffi_* in text
local function prototypes(text, where)
    local out = {}
    for decl in strip_comments(text):gmatch("[^;]+") do
        decl = decl:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
        local name = decl:match("(gw_ffi_[%w_]+)%s*%(")
        if name then
            assert(out[name] == nil or out[name] == decl,
                ("%s declares %s twice, differently"):format(where, name))
            out[name] = decl
        end
    end
    return out
end

local function header_block()
    local h = read("src/gw_ffi.h")
    local block = h:match("/%* GW_FFI_BEGIN %*/(.-)/%* GW_FFI_END %*/")
    assert(block, "src/gw_ffi.h has no GW_FFI_BEGIN ... GW_FFI_END block")
    return block
end

local function lua_gw_files()
    local out = {}
    local p = assert(io.popen("ls lua/gw/*.lua"))
    for line in p:lines() do
        out[#out + 1] = line
    end
    p:close()
    return out
end

local function keys_of(t, skip)
    local out = {}
    for k in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" and not (skip and skip[k]) then
            out[#out + 1] = k
        end
    end
    table.sort(out)
    return out
end

local function sorted(set)
    local out = {}
    for k in pairs(set) do
        out[#out + 1] = k
    end
    table.sort(out)
    return out
end

-- The names docs/policy-api.md documents, from the first column of its tables.
local function documented()
    local doc = { host = {}, log = {}, r = { req = true, resp = true }, req = {}, resp = {},
        shared = {}, ip = {} }
    for line in io.lines("docs/policy-api.md") do
        local cell = line:match("^|([^|]+)|")
        for span in (cell or ""):gmatch("`([^`]+)`") do
            local name
            name = span:match("^host%.([%w_]+)")
            if name then
                doc.host[name] = true
                if name == "log" then
                    local levels = line:match("`([%w/]+)%(fmt")
                    for level in (levels or ""):gmatch("[^/]+") do
                        doc.log[level] = true
                    end
                end
            end
            local obj, member = span:match("^r%.(re[qs]p?)[.:]([%w_]+)")
            if obj then
                doc[obj][member] = true
            elseif span:match("^r%.([%w_]+)$") then
                doc.r[span:match("^r%.([%w_]+)$")] = true
            end
            name = span:match("^shared:([%w_]+)%(")
            if name then
                doc.shared[name] = true
            end
            name = span:match("^ip%.([%w_]+)%(")
            if name then
                doc.ip[name] = true
            end
        end
    end
    for k, v in pairs(doc) do
        doc[k] = sorted(v)
    end
    return doc
end

describe("contract", function()
    describe("src/gw_ffi.h and the lua/gw cdefs", function()
        local header, lua

        before_each(function()
            header = prototypes(header_block(), "src/gw_ffi.h")
            lua = {}
            for _, file in ipairs(lua_gw_files()) do
                local text = read(file)
                for _, block in text:gmatch("ffi%.cdef%s*%(?%s*%[(=*)%[(.-)%]%1%]") do
                    for name, decl in pairs(prototypes(block, file)) do
                        assert(lua[name] == nil or lua[name] == decl,
                            name .. " is declared differently by two lua/gw modules")
                        lua[name] = decl
                    end
                end
            end
        end)

        it("finds the declarations", function()
            assert.is_true(#keys_of(header) >= 20)
            assert.equal("int gw_ffi_req_str(void *req, int what, const char **p, size_t *len)",
                header.gw_ffi_req_str)
        end)

        it("every header prototype is cdef'd with the same signature", function()
            for name, decl in pairs(header) do
                assert.equal(decl, lua[name], name)
            end
        end)

        it("every cdef'd gw_ffi_* function is in the header", function()
            for name in pairs(lua) do
                assert.is_not_nil(header[name], name .. " is cdef'd but not in src/gw_ffi.h")
            end
        end)

        it("the header block is parsable by ffi.cdef", function()
            assert.has_no.errors(function()
                -- the enums are declared already (gw.ffi): parse the rest; the enums alone
                -- are checked below
                ffi.cdef((header_block():gsub("enum%s*{.-};", "")))
            end)
        end)

        it("gw.ffi declares the block's enums verbatim and reads no constant by hand", function()
            local enums = {}
            for e in strip_comments(header_block()):gmatch("enum%s*{.-};") do
                enums[#enums + 1] = (e:gsub("%s+", " "))
            end
            local cdef = {}
            for e in strip_comments(require("gw.ffi").ENUMS):gmatch("enum%s*{.-};") do
                cdef[#cdef + 1] = (e:gsub("%s+", " "))
            end
            assert.same(enums, cdef)
            assert.is_true(#enums >= 6)
            for _, f in ipairs(lua_gw_files()) do -- no status number in a Lua table by hand
                assert.is_nil(read(f):find("%[%-%d+%]%s*="), f)
            end
        end)

        it("the fake FFI reads the same constants from the header", function()
            local C = fake_ffi.new().C
            for name, v in strip_comments(header_block()):gmatch("(GW_FFI_[%w_]+)%s*=%s*(%-?%d+)")
            do
                assert.equal(tonumber(v), C[name], name)
            end
        end)
    end)

    describe("spec/support/fake_ffi.lua", function()
        it("implements exactly the header's functions", function()
            local header = prototypes(header_block(), "src/gw_ffi.h")
            local C, funcs = fake_ffi.new().C, {}
            for name, v in pairs(C) do
                if name:match("^gw_ffi_") then
                    funcs[name] = v
                    assert.equal("function", type(v), name)
                else
                    assert.equal("number", type(v), name) -- a GW_FFI_* constant
                end
            end
            assert.same(keys_of(header), keys_of(funcs))
        end)
    end)

    describe("docs/policy-api.md", function()
        local doc

        before_each(function()
            doc = documented()
        end)

        it("documents something for every object", function()
            for _, what in ipairs({ "host", "log", "r", "req", "resp", "shared", "ip" }) do
                assert.is_true(#doc[what] > 0, what)
            end
            assert.same({ "ctx", "log", "now", "req", "resp", "shared" }, doc.r)
        end)

        describe("the fake host", function()
            local h

            before_each(function()
                h = fake_host.new()
            end)

            it("host has exactly the documented fields", function()
                assert.same(doc.host, keys_of(h.host))
                assert.same(doc.log, keys_of(h.host.log))
            end)

            it("r, r.req and r.resp have exactly the documented members", function()
                local r = h.run({}, h.request({}))
                assert.same(doc.r, keys_of(r))
                assert.same(doc.req, keys_of(r.req))
                -- test-only fields are listed in fake_host.lua's header
                assert.same(doc.resp, keys_of(r.resp, { headers = true, body = true,
                    content_type = true, answered_by = true }))
            end)

            it("the shared dictionary and host.ip have exactly the documented calls", function()
                assert.same(doc.shared, keys_of(h.host.shared))
                assert.same(doc.ip, keys_of(h.host.ip))
            end)

            it("its fake Redis store has exactly the documented calls too", function()
                assert.same(doc.shared, keys_of(fake_host.new({ store = {} }).host.shared))
            end)
        end)

        describe("the real host (gw.host over the fake FFI)", function()
            local f, host, dir, captured

            setup(function()
                dir = os.tmpname()
                os.remove(dir)
                assert(os.execute("mkdir -p " .. dir) == 0)
                local p = assert(io.open(dir .. "/capture.lua", "w"))
                p:write([[
local _M = {}
function _M.new() return setmetatable({}, { __index = _M }) end
function _M:access(r) self.r = r end
return _M
]])
                p:close()
                p = assert(io.open(dir .. "/gateway.lua", "w"))
                p:write(("return { policies_dir = %q, policies = { { name = 'capture' } } }")
                    :format(dir))
                p:close()
            end)

            teardown(function()
                os.execute("rm -rf " .. dir)
            end)

            before_each(function()
                f = fake_ffi.new()
                f.install()
                host = require "gw.host"
                host.init({ config_path = dir .. "/gateway.lua" })
                host.handle(f.request({ path = "/v1/models" }), 1)
                captured = host.host().policy("capture").r
            end)

            local function upvalue(fn, wanted)
                for i = 1, 100 do
                    local name, value = debug.getupvalue(fn, i)
                    if name == nil then
                        break
                    end
                    if name == wanted then
                        return value
                    end
                end
                error("no upvalue " .. wanted)
            end

            it("host has the same fields as the fake host", function()
                assert.same(keys_of(fake_host.new().host), keys_of(host.host()))
                assert.same(doc.host, keys_of(host.host()))
            end)

            it("host.log has the documented levels", function()
                for _, level in ipairs(doc.log) do
                    assert.equal("function", type(host.host().log[level]), level)
                end
            end)

            it("r has the documented fields", function()
                assert.same(doc.r, keys_of(captured))
            end)

            it("r.req has exactly the documented members", function()
                local index = getmetatable(captured.req).__index
                local names = {}
                for k in pairs(upvalue(index, "req_methods")) do
                    names[k] = true
                end
                for k in pairs(upvalue(index, "REQ_FIELDS")) do
                    names[k] = true
                end
                names.api = true -- computed by __index from the path
                assert.same(doc.req, sorted(names))
                for _, k in ipairs(doc.req) do
                    assert.is_not_nil(captured.req[k], k)
                end
            end)

            it("r.resp has exactly the documented members", function()
                local names = { status = true } -- read from C by __index
                for k in pairs(upvalue(getmetatable(captured.resp).__index, "resp_methods")) do
                    names[k] = true
                end
                assert.same(doc.resp, sorted(names))
            end)

            it("the shared dictionary has the documented calls", function()
                assert.same(doc.shared, keys_of(host.host().shared))
                assert.equal(host.host().shared, captured.shared)
            end)

            it("the Redis store (gw.store) has the same calls", function()
                assert.same(doc.shared, keys_of(f.store.new({ on_error = "local" }, {})))
            end)

            it("host.json decodes like the fake host's, text rule included", function()
                local real, fake = host.host().json, fake_host.new().host.json
                assert.same(keys_of(fake), keys_of(real))
                assert.equal(fake.null, real.null)
                for _, body in ipairs({ '{"a":[1,"x"]}', '{"a":"\255"}', '{"a":"\\udc00"}',
                    '{"a":', '"\237\160\128"' }) do
                    assert.same({ fake.decode(body) }, { real.decode(body) }, body)
                end
                assert.equal("a is not valid UTF-8: invalid byte 0xFF at body offset 6",
                    select(2, real.decode('{"a":"\255"}')))
            end)
        end)
    end)

    describe("phase detection: the real host and the fake host agree", function()
        -- Each policy records the phases it was called in, in self.seen. Only instance fields
        -- that are functions (own or inherited) are phases; any other field named like a phase
        -- is plain data, e.g. `self.log = host.log`.
        local POLICIES = {
            keeps_log = [[
local _M = {}
function _M.new(_, host) return setmetatable({ log = host.log, seen = {} }, { __index = _M }) end
function _M:access(r)
    self.seen[#self.seen + 1] = "access"
    self.log.info("access %s", r.req.path)
end
return _M]],
            data_fields = [[
local _M = {}
function _M.new()
    return setmetatable({ route = "not a phase", content = {}, seen = {},
        rewrite = setmetatable({}, { __call = function() error("called") end }) },
        { __index = _M })
end
function _M:log() self.seen[#self.seen + 1] = "log" end
return _M]],
            inherited = [[
local base = {}
function base:rewrite() self.seen[#self.seen + 1] = "rewrite" end
function base:route() self.seen[#self.seen + 1] = "route" end
local _M = setmetatable({}, { __index = base })
function _M.new() return setmetatable({ seen = {} }, { __index = _M }) end
function _M:content() self.seen[#self.seen + 1] = "content" end
return _M]],
        }
        local NAMES = { "keeps_log", "data_fields", "inherited" }
        local dir

        setup(function()
            dir = os.tmpname()
            os.remove(dir)
            assert(os.execute("mkdir -p " .. dir) == 0)
            for name, text in pairs(POLICIES) do
                local p = assert(io.open(dir .. "/" .. name .. ".lua", "w"))
                p:write(text)
                p:close()
            end
            local list = {}
            for i, name in ipairs(NAMES) do
                list[i] = ("{ name = %q }"):format(name)
            end
            local p = assert(io.open(dir .. "/gateway.lua", "w"))
            p:write(("return { policies_dir = %q, policies = { %s } }")
                :format(dir, table.concat(list, ", ")))
            p:close()
        end)

        teardown(function()
            os.execute("rm -rf " .. dir)
        end)

        local function seen_by_real_host()
            local f = fake_ffi.new()
            f.install()
            local host = require "gw.host"
            local info = host.init({ config_path = dir .. "/gateway.lua" })
            local req = f.request({ method = "POST", path = "/v1/chat/completions" })
            host.handle(req, 1)
            host.route(req, 1)
            host.log(req, 1)
            local out = {}
            for _, name in ipairs(NAMES) do
                out[name] = host.host().policy(name).seen
            end
            return out, info.phases, f
        end

        local function seen_by_fake_host()
            local h = fake_host.new()
            local list = {}
            for i, name in ipairs(NAMES) do
                local mod = assert(loadfile(dir .. "/" .. name .. ".lua"))()
                list[i] = h.register(name, assert(mod.new({}, h.host)))
            end
            local r = h.run(list, h.request({ method = "POST", path = "/v1/chat/completions" }))
            local out = {}
            for i, name in ipairs(NAMES) do
                out[name] = list[i].seen
            end
            return out, r, h
        end

        it("both call exactly the function fields named as phases", function()
            local expected = {
                keeps_log = { "access" },
                data_fields = { "log" },
                inherited = { "rewrite", "content", "route" },
            }
            local real, mask, f = seen_by_real_host()
            assert.same(expected, real)
            assert.equal(1 + 2 + 4 + 8 + 16, mask)
            assert.same({}, f.lines(3)) -- no policy error was logged
            local fake, r, h = seen_by_fake_host()
            assert.same(expected, fake)
            assert.equal(200, r.resp.status)
            assert.is_true(h.logged("info", "access /v1/chat/completions", true))
        end)

        it("a policy keeping host.log as self.log has no log phase in the real host", function()
            local f = fake_ffi.new()
            f.install()
            local host = require "gw.host"
            local p = assert(io.open(dir .. "/only_keeper.lua", "w"))
            p:write(("return { policies_dir = %q, policies = { { name = 'keeps_log' } } }")
                :format(dir))
            p:close()
            assert.equal(2, host.init({ config_path = dir .. "/only_keeper.lua" }).phases)
        end)

        it("both take the phase list and the detection from gw.phases", function()
            local phases = require "gw.phases"
            assert.same({ "rewrite", "access", "content", "route", "log" }, phases.PHASES)
            assert.is_nil(phases.fn({ log = {} }, "log"))
            assert.is_nil(phases.fn({ log = setmetatable({}, { __call = print }) }, "log"))
            assert.equal(print, phases.fn(setmetatable({}, { __index = { log = print } }), "log"))
        end)
    end)

    describe("the built-in metric families", function()
        -- src/metrics.c `builtins`: {"name", "help", GW_MT_<TYPE>, GW_MA_<AGG>, "labels", ...}
        local function from_c()
            local text = read("src/metrics.c")
            local table_src = text:match("builtins%[GW_MF_BUILTIN_COUNT%] = {(.-)\n};")
            local out = {}
            for name, typ, agg, labels in table_src:gmatch(
                '{"([%w_]+)",%s*"[^"]*",%s*GW_MT_(%u+),%s*GW_MA_(%u+),%s*"([^"]*)"') do
                out[#out + 1] = { name, typ:lower(), agg:lower(), labels }
            end
            return out
        end

        it("the fake store preloads exactly those of src/metrics.c, in order", function()
            local c = from_c()
            assert.equal(22, #c)
            local fake = {}
            for i, b in ipairs(require("fake_metrics").BUILTINS) do
                fake[i] = { b[1], b[2], b[3], b[4] }
            end
            assert.same(c, fake)
        end)

        it("are all named in the issue's exact spelling in the e2e test", function()
            local e2e = read("spec/e2e/metrics.test.js")
            for _, b in ipairs(from_c()) do
                assert.truthy(e2e:find("'" .. b[1] .. "'", 1, true), b[1])
            end
        end)
    end)

    describe("client IP vectors (spec/fixtures/client_ip.json)", function()
        local vectors = assert(cjson.decode(read("spec/fixtures/client_ip.json"))).vectors
        local function opt(v)
            if v == cjson.null then
                return nil
            end
            return v
        end

        it("has vectors", function()
            assert.is_true(#vectors >= 20)
        end)

        it("gw.ip.client_ip gives the expected address", function()
            for _, v in ipairs(vectors) do
                local trusted = assert(ip.set(v.trusted))
                assert.equal(v.expected,
                    ip.client_ip(v.peer, opt(v.xff), opt(v.x_real_ip), trusted), v.name)
            end
        end)

        it("the fake host's r.req.client_ip agrees", function()
            for _, v in ipairs(vectors) do
                local h = fake_host.new({ trusted_proxies = v.trusted })
                local r = h.request({ peer_ip = v.peer, headers = {
                    ["X-Forwarded-For"] = opt(v.xff), ["X-Real-IP"] = opt(v.x_real_ip) } })
                assert.equal(v.expected, r.req.client_ip, v.name)
            end
        end)
    end)
end)
