-- pieces-gateway: host.json of docs/policy-api.md: lua-cjson (safe) plus the text rule.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- The text rule (one rule for every string a JSON body carries, so for every string the gateway
-- forwards into a protobuf `string` field, which must be valid UTF-8): each byte sequence is
-- well-formed UTF-8 and no \uXXXX escape is a lone UTF-16 surrogate. decode() refuses a text
-- that breaks it with nil, "<field> is not valid UTF-8: <what> at body offset <n>", "<field>",
-- where <field> is e.g. `messages[2].content`, `a key of messages[0]` or `the body`.
--
-- The whole-text test is `check(text) -> nil | 0-based offset`: in the gateway the C function
-- gw_ffi_json_text_check (src/jsontext.c, fast), in the fake host text_check below (the same
-- rule in Lua; spec/fixtures/json_text.txt holds the vectors both must pass). Only when it
-- finds something does locate() walk the JSON structure to name the field.
-- Pure Lua: no FFI, no globals, no I/O.

local cjson = require "cjson.safe"

local byte, sub, find, format = string.byte, string.sub, string.find, string.format
local concat = table.concat
local tonumber, type, next, pairs, tostring = tonumber, type, next, pairs, tostring

local _M = {}

local BACKSLASH, QUOTE = 92, 34
local KEY_MAX = 64 -- longer keys are cut in field names

-- Length (1..4) of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or 0.
local function utf8_len(s, i)
    local c = byte(s, i)
    local need, lo, hi
    lo, hi = 0x80, 0xBF
    if c >= 0xC2 and c <= 0xDF then
        need = 1
    elseif c >= 0xE0 and c <= 0xEF then
        need = 2
        lo = c == 0xE0 and 0xA0 or 0x80
        hi = c == 0xED and 0x9F or 0xBF
    elseif c >= 0xF0 and c <= 0xF4 then
        need = 3
        lo = c == 0xF0 and 0x90 or 0x80
        hi = c == 0xF4 and 0x8F or 0xBF
    else
        return 0
    end
    for k = 1, need do
        local b = byte(s, i + k)
        if not b or b < lo or b > hi then
            return 0
        end
        lo, hi = 0x80, 0xBF
    end
    return need + 1
end

-- the code unit of the \uXXXX at s[i], or nil
local function escaped_unit(s, i)
    if byte(s, i) ~= BACKSLASH or byte(s, i + 1) ~= 117 then -- 'u'
        return nil
    end
    local h = sub(s, i + 2, i + 5)
    if #h ~= 4 or find(h, "[^%x]") then
        return nil
    end
    return tonumber(h, 16)
end

-- bytes covered by the escape at s[i] (as escape_len in src/jsontext.c); 0: a lone surrogate
local function escape_len(s, i)
    local b = byte(s, i + 1)
    if not b or b >= 0x80 then
        return 1
    end
    local u = escaped_unit(s, i)
    if not u then
        return 2
    end
    if u < 0xD800 or u > 0xDFFF then
        return 6
    end
    if u >= 0xDC00 then
        return 0
    end
    local lo = escaped_unit(s, i + 6)
    return (lo and lo >= 0xDC00 and lo <= 0xDFFF) and 12 or 0
end

-- The rule of gw_json_text_check in Lua: nil, or the 0-based offset of the first bad byte.
function _M.text_check(s)
    local i = 1
    while true do
        i = find(s, "[\\\128-\255]", i)
        if not i then
            return nil
        end
        local step = byte(s, i) == BACKSLASH and escape_len(s, i) or utf8_len(s, i)
        if step == 0 then
            return i - 1
        end
        i = i + step
    end
end

-- what is wrong at s[p] (1-based), as said to the client
local function reason(s, p)
    if byte(s, p) == BACKSLASH then
        return format("lone surrogate escape %s at body offset %d", sub(s, p, p + 5), p - 1)
    end
    return format("invalid byte 0x%02X at body offset %d", byte(s, p), p - 1)
end

-- index of the closing quote of the string opened at s[i], or nil
local function string_end(s, i)
    local k = i + 1
    while true do
        k = find(s, '["\\]', k)
        if not k or byte(s, k) == QUOTE then
            return k
        end
        k = k + 2
    end
end

-- a key as written (escapes included), cut on a character boundary when long
local function key_text(key)
    if #key <= KEY_MAX then
        return key
    end
    local n = KEY_MAX
    while n > 0 and byte(key, n + 1) >= 0x80 and byte(key, n + 1) < 0xC0 do
        n = n - 1
    end
    return sub(key, 1, n) .. "..."
end

-- the path of frames 1..depth: messages[2].content
local function path(stack, depth)
    local out = {}
    for d = 1, depth do
        local f = stack[d]
        if f.idx then
            out[#out + 1] = "[" .. f.idx .. "]"
        else
            local key = key_text(f.key or "")
            out[#out + 1] = #out == 0 and key or "." .. key
        end
    end
    return concat(out)
end

local function field_name(stack, depth, is_key)
    if is_key then
        local p = path(stack, depth - 1)
        return "a key of " .. (p ~= "" and p or "the body")
    end
    local p = path(stack, depth)
    return p ~= "" and p or "the body"
end

-- After a ',' the next thing is a key (object) or the next element (array).
local function next_member(f)
    if f.idx then
        f.idx = f.idx + 1
    else
        f.want_key, f.key = true, nil
    end
end

-- The field of the JSON text s whose string holds the 0-based offset `at`, and what is wrong
-- there; nil when `at` is not inside a string (then the text is not JSON: the decoder says why).
function _M.locate(s, at)
    local p = at + 1
    local stack, depth = {}, 0 -- frames: { idx = n } (array) or { key =, want_key = } (object)
    local i = 1
    while true do
        i = find(s, "[^ \t\r\n]", i)
        if not i or i > p then
            return nil
        end
        local c, top = byte(s, i), stack[depth]
        if c == QUOTE then
            local j = string_end(s, i)
            local is_key = top ~= nil and top.want_key == true
            if not j or p <= j then
                return field_name(stack, depth, is_key), reason(s, p)
            end
            if is_key then
                top.key, top.want_key = sub(s, i + 1, j - 1), false
            end
            i = j + 1
        elseif c == 123 or c == 91 then -- { [
            depth = depth + 1
            stack[depth] = c == 91 and { idx = 0 } or { want_key = true }
            i = i + 1
        elseif c == 125 or c == 93 then -- } ]
            if depth > 0 then
                stack[depth] = nil
                depth = depth - 1
            end
            i = i + 1
        elseif c == 44 then -- ,
            if top then
                next_member(top)
            end
            i = i + 1
        elseif c == 58 then -- :
            i = i + 1
        else -- a number or literal (or garbage): up to the next delimiter
            local j = find(s, '[ \t\r\n,:%[%]{}"]', i + 1) or #s + 1
            if p < j then
                return nil
            end
            i = j
        end
    end
end

-- lua-cjson 2.1 decodes [] and {} to the same empty table and encodes it as {}. A body the
-- gateway builds from a decoded one (policies/messages.lua, policies/responses.lua) renders an
-- empty table as [] under the keys that JSON Schema and the chat API define as arrays.
local ARRAY_KEYS = {
    required = true, enum = true, anyOf = true, oneOf = true, allOf = true, prefixItems = true,
    examples = true, type = true, stop = true, tools = true, tool_calls = true, content = true,
    messages = true,
}

local function encode_into(v, out, key)
    if type(v) ~= "table" or v == cjson.null then
        out[#out + 1] = cjson.encode(v)
    elseif next(v) == nil then
        out[#out + 1] = ARRAY_KEYS[key] and "[]" or "{}"
    elseif v[1] ~= nil then
        out[#out + 1] = "["
        for i = 1, #v do
            if i > 1 then
                out[#out + 1] = ","
            end
            encode_into(v[i], out, nil)
        end
        out[#out + 1] = "]"
    else
        out[#out + 1] = "{"
        local first = true
        for k, x in pairs(v) do
            out[#out + 1] = (first and "" or ",") .. cjson.encode(tostring(k)) .. ":"
            first = false
            encode_into(x, out, k)
        end
        out[#out + 1] = "}"
    end
end

function _M.encode_body(v)
    local out = {}
    encode_into(v, out, nil)
    return concat(out)
end

-- host.json over `check` (default: text_check) and, if given, `fast` (the gateway's C decoder,
-- src/lua_json.h: fast(s) -> true, value, or false for a text it leaves to lua-cjson, which
-- then decodes it to the same value or says what is wrong)
function _M.new(check, fast)
    check = check or _M.text_check
    local cjson_decode = cjson.decode
    local function decode(s)
        if type(s) == "string" then
            local at = check(s)
            if not at and fast then
                local ok, v = fast(s)
                if ok then
                    return v
                end
            elseif at then
                local field, why = _M.locate(s, at)
                if field then
                    return nil, format("%s is not valid UTF-8: %s", field, why), field
                end
                local v, err = cjson_decode(s)
                if v == nil then
                    return nil, err
                end
                -- the decoder took it, so it was a string after all: refuse it all the same
                return nil, "the body is not valid UTF-8: " .. reason(s, at + 1), "the body"
            end
        end
        return cjson_decode(s)
    end
    return {
        encode = cjson.encode,
        encode_body = _M.encode_body,
        decode = decode,
        null = cjson.null,
    }
end

return _M
