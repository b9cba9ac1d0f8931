-- pieces-gateway: spec of lua/gw/json.lua (host.json with the text rule of request bodies), over
-- the vectors it shares with the C check (spec/fixtures/json_text.txt).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local fake_ffi = require "fake_ffi"
local fake_host = require "fake_host"
local gwjson = require "gw.json"

local function unpct(s)
    return (s:gsub("%%(%x%x)", function(h)
        return string.char(tonumber(h, 16))
    end))
end

-- { field, body, at (0-based offset or nil), line }
local function vectors()
    local out = {}
    for line in io.lines("spec/fixtures/json_text.txt") do
        local field, body = line:match("^([^\t#][^\t]*)\t(.*)$")
        if field then
            local mark = body:find("^", 1, true)
            local at
            if mark then
                at = #unpct(body:sub(1, mark - 1))
                body = body:sub(1, mark - 1) .. body:sub(mark + 1)
            end
            out[#out + 1] = { field = field, body = unpct(body), at = at, line = line }
        end
    end
    return out
end

describe("gw.json", function()
    local V = vectors()

    it("has clean, dirty and non-JSON vectors", function()
        local kinds = { clean = 0, field = 0, outside = 0 }
        for _, v in ipairs(V) do
            local k = v.field == "-" and "clean" or v.field == "?" and "outside" or "field"
            kinds[k] = kinds[k] + 1
            assert.equal(v.field == "-", v.at == nil, v.line)
        end
        assert.is_true(kinds.clean >= 5 and kinds.field >= 30 and kinds.outside >= 3)
    end)

    it("text_check reports the marked offset", function()
        for _, v in ipairs(V) do
            assert.equal(v.at, gwjson.text_check(v.body), v.line)
        end
    end)

    it("the fake FFI's gw_ffi_json_text_check agrees (through the gw.ffi wrapper)", function()
        local g = fake_ffi.new().module
        for _, v in ipairs(V) do
            assert.equal(v.at, g.json_text_check(v.body), v.line)
        end
    end)

    it("locate names the field holding the offset", function()
        for _, v in ipairs(V) do
            if v.at then
                local field = gwjson.locate(v.body, v.at)
                assert.equal(v.field ~= "?" and v.field or nil, field, v.line)
            end
        end
    end)

    it("says what is wrong, with the body offset", function()
        local _, why = gwjson.locate('{"a":"\255"}', 6)
        assert.equal("invalid byte 0xFF at body offset 6", why)
        _, why = gwjson.locate('{"a":"x\\uD800y"}', 7)
        assert.equal("lone surrogate escape \\uD800 at body offset 7", why)
    end)

    describe("decode, in both hosts", function()
        local decoders = {}

        before_each(function()
            local f = fake_ffi.new()
            decoders = {
                fake_host = fake_host.new().host.json.decode,
                -- the real host's json over the fake FFI (in the gateway: the C check)
                real_host = gwjson.new(f.module.json_text_check).decode,
            }
        end)

        it("decodes clean text exactly as lua-cjson does", function()
            for name, decode in pairs(decoders) do
                for _, v in ipairs(V) do
                    if v.field == "-" then
                        assert.same({ cjson.decode(v.body) }, { decode(v.body) }, name .. v.line)
                    end
                end
                assert.same({ 1, 2 }, decode("[1,2]"))
                assert.equal(cjson.null, decode("null"))
            end
        end)

        it("refuses text breaking the rule, naming the field", function()
            for name, decode in pairs(decoders) do
                for _, v in ipairs(V) do
                    if v.at and v.field ~= "?" then
                        local val, err, field = decode(v.body)
                        assert.is_nil(val, name .. v.line)
                        assert.equal(v.field, field, name .. v.line)
                        assert.equal(v.field .. " is not valid UTF-8: ", err:sub(1, #v.field + 21),
                            name .. v.line)
                        assert.matches(" at body offset " .. v.at .. "$", err)
                    end
                end
            end
        end)

        it("leaves text outside strings to the decoder's syntax error", function()
            for name, decode in pairs(decoders) do
                for _, v in ipairs(V) do
                    if v.field == "?" then
                        local val, err, field = decode(v.body)
                        assert.is_nil(val, name .. v.line)
                        assert.is_nil(field, name .. v.line)
                        assert.equal(select(2, cjson.decode(v.body)), err, name .. v.line)
                    end
                end
            end
        end)

        it("names the first offending string in body order", function()
            for _, decode in pairs(decoders) do
                local _, err = decode('{"b":"\\udc00","a":"\255"}')
                assert.equal("b is not valid UTF-8: lone surrogate escape \\udc00 at body offset 6",
                    err)
            end
        end)

        it("refuses a text the check flags even if the walk finds no string (fail closed)",
            function()
                -- a check that flags a clean byte: the decoder accepts the text, decode must not
                local decode = gwjson.new(function() return 5 end).decode
                local val, err, field = decode('{"a":1}')
                assert.is_nil(val)
                assert.equal("the body", field)
                assert.equal("the body is not valid UTF-8: invalid byte 0x31 at body offset 5",
                    err)
            end)

        it("takes a fast decoder's value, and asks lua-cjson for what it declines", function()
            local seen = {}
            local decode = gwjson.new(nil, function(s)
                seen[#seen + 1] = s
                if s == "[1]" then
                    return true, "fast"
                end
                return false
            end).decode
            assert.equal("fast", decode("[1]"))
            assert.same({ 2 }, decode("[2]")) -- declined: lua-cjson's value
            assert.same({ cjson.decode("[1,") }, { decode("[1,") }) -- and its error
            local val, _, field = decode('["\\udc00"]') -- the text rule comes first
            assert.is_nil(val)
            assert.equal("[0]", field)
            assert.same({ cjson.decode(5) }, { decode(5) }) -- a non-string: lua-cjson alone
            assert.same({ "[1]", "[2]", "[1," }, seen)
        end)

        it("passes non-strings to lua-cjson unchanged", function()
            for _, decode in pairs(decoders) do
                assert.same({ cjson.decode(nil) }, { decode(nil) })
                assert.same({ cjson.decode(5) }, { decode(5) })
            end
        end)
    end)

    it("is fast on a big clean body and on a big dirty one", function()
        local f = fake_ffi.new()
        local decode = gwjson.new(f.module.json_text_check).decode
        local text = string.rep("caf\195\169 \226\130\172 ", 100000) -- 1.4 MB of UTF-8
        local body = '{"messages":[{"role":"user","content":"' .. text .. '\255"}]}'
        local t0 = os.clock()
        local val, err = decode(body)
        assert.is_nil(val)
        assert.matches("^messages%[0%]%.content is not valid UTF%-8", err)
        assert.is_true(os.clock() - t0 < 2, "the Lua walk is linear")
    end)
end)
