-- pieces-gateway: a fake of the C half of the FFI seam, so the real host library (gw.ffi,
-- gw.shared, gw.config, gw.host) runs under plain busted.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- ffi.C symbols exist only inside the binary. This module implements every gw_ffi_* function of
-- src/gw_ffi.h in Lua (table `C`, same arguments, out-parameters written into the cdata the
-- callers pass) and loads the REAL lua/gw/ffi.lua and lua/gw/shared.lua against it, so their
-- wrappers are exercised too.
--
-- local fake = require("fake_ffi").new{ env = { PORT = "80" }, now = 1000 }
--   fake.C              the gw_ffi_* functions
--   fake.module         gw.ffi (the real wrappers over fake.C); fake.shared: gw.shared;
--                       fake.store: gw.store
--   fake.install()      puts both in package.loaded and forgets gw.config/gw.host, so the next
--                       require loads them over this fake
--   fake.request{ method, path, query, body, headers = { {name, value}, ... }, peer_ip,
--                 client_ip }   a request handle (the `req` argument of the request functions)
--   fake.state          env, now, debug, logs ({level, msg}), persisted ({path, data}),
--                       reloads, persist_rc, random (function(n) -> n bytes), status_json,
--                       no_dict, dict (key -> {v, exp}), tokens (function(enc, text) -> n),
--                       files (path -> { size, mtime } for gw_ffi_file_info, or a GW_E* status),
--                       store ({ down, sent, reply }: the Redis store's commands and the answer
--                       the next resumed call reads), maps (map pushes and watches),
--                       metrics (the fake_metrics store behind gw_ffi_metrics_*)
-- A request handle records: path (after set_path), log_model, stats ({ route, model } from
-- gw_ffi_req_set_stat), resp_headers ({name, value}),
-- answered, answer_status, answer_ctype, answer_body, chat (route phase parameters),
-- attempts (what the log phase reads), backends_json; set
-- `started` or `status` to play C.

local ffi = require "ffi"
local fake_metrics = require "fake_metrics"

local byte, sub, find = string.byte, string.sub, string.find

local _M = {}

-- The seam's constants, read from src/gw_ffi.h's block (never kept by hand here).
local function header_constants()
    local f = assert(io.open("src/gw_ffi.h", "rb"))
    local h = f:read("*a")
    f:close()
    local block = assert(h:match("/%* GW_FFI_BEGIN %*/(.-)/%* GW_FFI_END %*/"))
    local out = {}
    for name, v in block:gsub("/%*.-%*/", ""):gmatch("(GW_FFI_[%w_]+)%s*=%s*(%-?%d+)") do
        out[name] = tonumber(v)
    end
    return out
end
local K = header_constants()
_M.CONSTANTS = K

local GW_OK, GW_EINVAL, GW_ENOENT, GW_EAGAIN, GW_ESTATE =
    K.GW_FFI_OK, K.GW_FFI_EINVAL, K.GW_FFI_ENOENT, K.GW_FFI_EAGAIN, K.GW_FFI_EPERM
local SD_NOT_FOUND, SD_EXISTS, SD_NOT_NUMBER, SD_TOO_SMALL =
    K.GW_FFI_ENOENT, K.GW_FFI_EEXIST, K.GW_FFI_EDOM, K.GW_FFI_ENOBUFS
local SD_BAD_KEY, SD_INVALID, SD_NO_DICT = K.GW_FFI_EKEYREJECTED, K.GW_FFI_EINVAL, K.GW_FFI_ENODEV
local SD_KEY_MAX = 65535
local TTL_FOREVER = 31 * 365 * 86400

-- Loads a lua/gw module file with `require "ffi"` answered by an ffi whose C is `C` (and the
-- modules in `mods` answered from there).
local function load_over(modname, C, mods)
    local path = assert(package.searchpath(modname, package.path))
    local chunk = assert(loadfile(path))
    local proxy = setmetatable({ C = C }, { __index = ffi })
    local env = setmetatable({
        require = function(name)
            if name == "ffi" then
                return proxy
            end
            if mods and mods[name] then
                return mods[name]
            end
            return require(name)
        end,
    }, { __index = _G })
    setfenv(chunk, env)
    return chunk(modname)
end

-- src/env.c gw_parse_int: [+-]digits, the whole (untrimmed) string, within long long.
local INT64_MAX = "9223372036854775807"
local function parse_int(s)
    local sign, digits = s:match("^([+-]?)(%d+)$")
    if not digits then
        return nil
    end
    local d = digits:gsub("^0+", "")
    local limit = sign == "-" and "9223372036854775808" or INT64_MAX
    if #d > #limit or (#d == #limit and d > limit) then
        return nil
    end
    local v = ffi.new("int64_t", 0)
    for i = 1, #d do
        local n = byte(d, i) - 48
        v = sign == "-" and v * 10 - n or v * 10 + n
    end
    return v
end

-- gw_parse_num: strtod over plain decimals only (no blanks, hex, inf, nan), finite, no range
-- error (strtod sets ERANGE on overflow and underflow).
local function parse_num(s)
    if s == "" or find(s, "[^%d%.%+%-eE]") then
        return nil
    end
    local v = tonumber(s)
    if v == nil or v ~= v or v == math.huge or v == -math.huge then
        return nil
    end
    local mantissa = s:match("^[^eE]*")
    if (v == 0 and find(mantissa, "[1-9]")) or (v ~= 0 and math.abs(v) < 2.2250738585072014e-308)
    then
        return nil
    end
    return v
end

local BOOLS = { ["1"] = 1, t = 1, T = 1, TRUE = 1, ["true"] = 1, True = 1,
    ["0"] = 0, f = 0, F = 0, FALSE = 0, ["false"] = 0, False = 0 }

-- Writes a Lua string into a `const char *` out-parameter (the string is anchored by the caller
-- or in `anchor`, as C keeps its memory alive).
local function put_str(p, len, s)
    p[0] = s
    len[0] = #s
end

local function core_functions(st)
    local C = {}

    function C.gw_ffi_req_str(req, what, p, len)
        local v
        if what == 0 then
            v = req.method or ""
        elseif what == 1 then
            v = req.path or "/"
        elseif what == 2 then
            v = req.uri or ""
        elseif what == 3 then
            v = req.query or ""
        elseif what == 4 then
            v = req.body or ""
        elseif what == 5 then
            v = req.peer_ip or ""
        elseif what == 6 then
            v = req.client_ip or ""
        else
            return GW_EINVAL
        end
        put_str(p, len, v)
        return GW_OK
    end

    function C.gw_ffi_req_header(req, name, nlen, p, len)
        local want = sub(name, 1, tonumber(nlen)):lower()
        for _, h in ipairs(req.headers or {}) do
            if h[1]:lower() == want then
                put_str(p, len, h[2])
                return GW_OK
            end
        end
        return GW_ENOENT
    end

    function C.gw_ffi_req_set_path(req, p, len)
        len = tonumber(len)
        if len == 0 or byte(p, 1) ~= 47 then
            return GW_EINVAL
        end
        req.path = sub(p, 1, len)
        return GW_OK
    end

    function C.gw_ffi_req_set_log_model(req, p, len)
        req.log_model = sub(p, 1, tonumber(len))
        return GW_OK
    end

    function C.gw_ffi_req_set_stat(req, field, p, len)
        if field ~= 0 and field ~= 1 then
            return GW_EINVAL
        end
        req.stats = req.stats or {}
        req.stats[field == 0 and "route" or "model"] = sub(p, 1, tonumber(len))
        return GW_OK
    end

    function C.gw_ffi_resp_header(req, n, nl, v, vl)
        if req.started then
            return GW_ESTATE
        end
        local list = req.resp_headers
        list[#list + 1] = { sub(n, 1, tonumber(nl)), sub(v, 1, tonumber(vl)) }
        return GW_OK
    end

    function C.gw_ffi_resp_answer(req, status, ctype, ctlen, body, blen)
        if req.started or req.answered then
            return GW_ESTATE
        end
        if status < 100 or status > 599 then
            return GW_EINVAL
        end
        req.answered = true
        req.answer_status = status
        req.answer_ctype = tonumber(ctlen) > 0 and sub(ctype, 1, tonumber(ctlen)) or nil
        req.answer_body = sub(body, 1, tonumber(blen))
        return GW_OK
    end

    -- the envelope as src/http.c writes it (cjson escapes a little more: same JSON value)
    function C.gw_ffi_resp_error(req, status, code, clen, msg, mlen, etype, tlen)
        local cjson = require "cjson"
        local t = tonumber(tlen) > 0 and sub(etype, 1, tonumber(tlen)) or "error"
        local body = string.format('{"error":{"message":%s,"type":%s,"code":%s}}',
            cjson.encode(sub(msg, 1, tonumber(mlen))), cjson.encode(t),
            cjson.encode(sub(code, 1, tonumber(clen))))
        return C.gw_ffi_resp_answer(req, status, "application/json", 16, body, #body)
    end

    -- the C router's table (src/routes.c): st.api_prefix (default "/v1")
    function C.gw_ffi_req_routed(req)
        local p, pre = req.path or "", st.api_prefix or "/v1"
        return (req.method == "POST" and (p == pre .. "/chat/completions"
            or p == pre .. "/tokenize")) and 1 or 0
    end

    function C.gw_ffi_resp_status(req)
        return req.status or req.answer_status or 0
    end

    function C.gw_ffi_now()
        return st.now
    end

    function C.gw_ffi_log(level, msg, len)
        if level < 0 or level > 3 then
            return GW_EINVAL
        end
        st.logs[#st.logs + 1] = { level = level, msg = sub(msg, 1, tonumber(len)) }
        return GW_OK
    end

    function C.gw_ffi_debug_enabled()
        return st.debug and 1 or 0
    end

    function C.gw_ffi_env(name, p, len)
        local v = st.env[name]
        if v == nil or v == "" then
            return GW_ENOENT
        end
        put_str(p, len, v)
        return GW_OK
    end

    -- gw_ffi_parse_*: the parsed value into out[0], or GW_EINVAL
    local function parser(parse)
        return function(s, out)
            local v = parse(s)
            if v == nil then
                return GW_EINVAL
            end
            out[0] = v
            return GW_OK
        end
    end
    C.gw_ffi_parse_int = parser(parse_int)
    C.gw_ffi_parse_num = parser(parse_num)
    C.gw_ffi_parse_bool = parser(function(s) return BOOLS[s] end)

    function C.gw_ffi_secure_equal(a, alen, b, blen)
        return (ffi.string(a, alen) == ffi.string(b, blen)) and 1 or 0
    end

    function C.gw_ffi_random_bytes(buf, n)
        n = tonumber(n)
        local bytes = st.random(n)
        if bytes == nil then
            return K.GW_FFI_EIO
        end
        for i = 1, n do
            buf[i - 1] = byte(bytes, i)
        end
        return GW_OK
    end

    function C.gw_ffi_persist(path, plen, data, dlen)
        if st.persist_rc ~= 0 then
            return st.persist_rc
        end
        local list = st.persisted
        list[#list + 1] = { path = sub(path, 1, tonumber(plen)),
            data = sub(data, 1, tonumber(dlen)) }
        return GW_OK
    end

    function C.gw_ffi_reload()
        st.reloads = st.reloads + 1
        return GW_OK
    end

    function C.gw_ffi_file_info(path, plen, size, mtime)
        plen = tonumber(plen)
        if plen == 0 or find(sub(path, 1, plen), "\0", 1, true) then
            return GW_EINVAL
        end
        local e = st.files[sub(path, 1, plen)]
        if e == nil then
            return GW_ENOENT
        end
        if type(e) == "number" then
            return e
        end
        size[0], mtime[0] = e.size, e.mtime
        return GW_OK
    end

    function C.gw_ffi_json_text_check(s, len, at)
        local off = require("gw.json").text_check(sub(s, 1, tonumber(len)))
        if off == nil then
            return GW_OK
        end
        at[0] = off
        return GW_EINVAL
    end

    function C.gw_ffi_status(buf, cap)
        local s = st.status_json
        local n = #s
        if n < tonumber(cap) then
            ffi.copy(buf, s) -- with the terminating NUL, as C does
        end
        return n
    end

    return C
end

-- The shared dictionary of src/shdict.h on the fake clock.
local function shdict_functions(st, C)
    local function live(key)
        local e = st.dict[key]
        if e and e.exp and e.exp <= st.now then
            st.dict[key] = nil
            return nil
        end
        return e
    end
    local function bad_key(klen)
        return klen == 0 or klen > SD_KEY_MAX
    end
    local function bad_ttl(ttl)
        return ttl ~= ttl or ttl < 0
    end
    local function expiry(ttl)
        if ttl > 0 and ttl < TTL_FOREVER then
            return st.now + ttl
        end
        return nil
    end
    local function value(vtype, num, str, slen)
        if vtype == 1 then
            return num
        end
        return sub(str, 1, tonumber(slen))
    end
    local function store(add, key, klen, vtype, num, str, slen, ttl)
        klen = tonumber(klen)
        if st.no_dict then
            return SD_NO_DICT
        end
        if bad_key(klen) then
            return SD_BAD_KEY
        end
        if (vtype ~= 1 and vtype ~= 2) or bad_ttl(ttl) then
            return SD_INVALID
        end
        key = sub(key, 1, klen)
        if add and live(key) then
            return SD_EXISTS
        end
        st.dict[key] = { v = value(vtype, num, str, slen), exp = expiry(ttl) }
        return GW_OK
    end

    function C.gw_ffi_shdict_get(key, klen, vtype, num, buf, len)
        klen = tonumber(klen)
        if st.no_dict then
            return SD_NO_DICT
        end
        if bad_key(klen) then
            return SD_BAD_KEY
        end
        local e = live(sub(key, 1, klen))
        if not e then
            return SD_NOT_FOUND
        end
        if type(e.v) == "number" then
            vtype[0], num[0] = 1, e.v
            return GW_OK
        end
        if #e.v > tonumber(len[0]) then
            len[0] = #e.v
            return SD_TOO_SMALL
        end
        ffi.copy(buf, e.v, #e.v)
        vtype[0], len[0] = 2, #e.v
        return GW_OK
    end

    function C.gw_ffi_shdict_set(key, klen, vtype, num, str, slen, ttl)
        return store(false, key, klen, vtype, num, str, slen, ttl)
    end

    function C.gw_ffi_shdict_add(key, klen, vtype, num, str, slen, ttl)
        return store(true, key, klen, vtype, num, str, slen, ttl)
    end

    function C.gw_ffi_shdict_incr(key, klen, delta, has_init, init, ttl, out)
        klen = tonumber(klen)
        if st.no_dict then
            return SD_NO_DICT
        end
        if bad_key(klen) then
            return SD_BAD_KEY
        end
        key = sub(key, 1, klen)
        local e = live(key)
        if not e then
            if has_init == 0 then
                return SD_NOT_FOUND
            end
            if bad_ttl(ttl) then
                return SD_INVALID
            end
            e = { v = init, exp = expiry(ttl) }
            st.dict[key] = e
        elseif type(e.v) ~= "number" then
            return SD_NOT_NUMBER
        end
        e.v = e.v + delta -- an existing key keeps its expiry
        out[0] = e.v
        return GW_OK
    end

    function C.gw_ffi_shdict_delete(key, klen)
        if st.no_dict then
            return SD_NO_DICT
        end
        key = sub(key, 1, tonumber(klen))
        if st.dict[key] == nil then
            return SD_NOT_FOUND
        end
        st.dict[key] = nil
        return GW_OK
    end

    function C.gw_ffi_shdict_window_incr(n, keys, klens, args, counts)
        if st.no_dict then
            return SD_NO_DICT
        end
        if n < 1 or n > 8 then
            return SD_INVALID
        end
        local admit = 1
        for i = 0, n - 1 do
            local cur = live(ffi.string(keys[2 * i], klens[2 * i]))
            local prev = live(ffi.string(keys[2 * i + 1], klens[2 * i + 1]))
            local c, p = cur and cur.v or 0, prev and prev.v or 0
            if type(c) ~= "number" or type(p) ~= "number" then
                return SD_NOT_NUMBER
            end
            counts[2 * i], counts[2 * i + 1] = c, p
            if p * args[3 * i] + c + 1 > args[3 * i + 1] then
                admit = 0
            end
        end
        for i = 0, n - 1 do
            if admit == 1 then
                local key = ffi.string(keys[2 * i], klens[2 * i])
                local e = live(key)
                if e then
                    e.v = e.v + 1
                else
                    st.dict[key] = { v = 1, exp = expiry(args[3 * i + 2]) }
                end
            end
        end
        return admit
    end

    function C.gw_ffi_shdict_keys(prefix, plen, max, buf, len)
        if st.no_dict then
            return SD_NO_DICT
        end
        prefix = sub(prefix, 1, tonumber(plen))
        local names = {}
        for k in pairs(st.dict) do
            names[#names + 1] = k
        end
        table.sort(names)
        local cap, need, count = tonumber(len[0]), 0, 0
        for _, k in ipairs(names) do
            if max > 0 and count >= max then
                break
            end
            if sub(k, 1, #prefix) == prefix and live(k) then
                if need + 2 + #k <= cap then
                    buf[need] = #k % 256
                    buf[need + 1] = math.floor(#k / 256)
                    ffi.copy(buf + need + 2, k, #k)
                end
                need = need + 2 + #k
                count = count + 1
            end
        end
        len[0] = need
        if need > cap then
            return SD_TOO_SMALL
        end
        return count
    end
end

-- The shared store section of gw_ffi.h (src/ffi_store.c). st.store.down: sends fail;
-- st.store.sent: every command ({ req, script, argv }); st.store.reply: what
-- gw_ffi_store_reply reads (GW_FFI_REPLY_TIMEOUT/DOWN, or { type = GW_FFI_REPLY_*, value,
-- elements = {...} }); st.maps: map pushes and watches.
local function store_functions(st, C)
    local anchor = {}
    local function describe(r, p, len, num)
        if r.type == 1 or r.type == 3 then
            num[0] = r.type == 1 and r.value or #r.elements
        elseif r.type == 2 or r.type == 4 or r.type == 5 then
            anchor[#anchor + 1] = r.value
            put_str(p, len, r.value)
        end
        return r.type
    end

    function C.gw_ffi_store_send(req, script, argc, argv, lens)
        if st.store.down then
            return K.GW_FFI_EAGAIN
        end
        local args = {}
        for i = 0, argc - 1 do
            args[i + 1] = ffi.string(argv[i], lens[i])
        end
        st.store.sent[#st.store.sent + 1] = { req = req, script = script, argv = args }
        return GW_OK
    end

    function C.gw_ffi_store_reply(i, p, len, num)
        local r = st.store.reply
        if type(r) == "number" then
            return r
        end
        if i > 0 then
            r = r.elements and r.elements[i]
            if not r then
                return K.GW_FFI_REPLY_NONE
            end
        end
        return describe(r, p, len, num)
    end

    -- the rate limiter's script: recorded with the argv src/ffi_store.c makes
    function C.gw_ffi_store_window(req, flags, n, keys, klens, nums)
        if st.store.down then
            return K.GW_FFI_EAGAIN
        end
        local function int(v)
            return string.format("%d", v)
        end
        local args = { int(2 * n) }
        for i = 0, 2 * n - 1 do
            args[#args + 1] = "gw:" .. ffi.string(keys[i], klens[i])
        end
        for i = 0, n - 1 do
            local w, limit, ttl = nums[3 * i], nums[3 * i + 1], nums[3 * i + 2]
            local m, e = math.frexp(w)
            args[#args + 1] = (m < 0 and "-" or "") .. string.format("%x", math.abs(m) * 2 ^ 53)
            args[#args + 1] = int(e - 53)
            args[#args + 1] = limit % 1 == 0 and int(limit) or string.format("%.17g", limit)
            args[#args + 1] = (ttl <= 0 or ttl >= 1e9) and "0" or int(math.ceil(ttl * 1000))
        end
        st.store.sent[#st.store.sent + 1] = { req = req, script = flags, argv = args }
        return GW_OK
    end

    function C.gw_ffi_store_reply_ints(out, max)
        local r = st.store.reply
        if type(r) == "number" or r.type ~= 3 then
            return -1
        end
        local k = 0
        while k < max and r.elements[k + 1] and r.elements[k + 1].type == 1 do
            out[k] = r.elements[k + 1].value
            k = k + 1
        end
        return k
    end

    function C.gw_ffi_map_push(add, map, mlen, field, flen, value, vlen)
        st.maps[#st.maps + 1] = { add = add, map = sub(map, 1, tonumber(mlen)),
            field = sub(field, 1, tonumber(flen)), value = sub(value, 1, tonumber(vlen)) }
        return GW_OK
    end

    function C.gw_ffi_map_watch(map, mlen)
        st.maps[#st.maps + 1] = { watch = sub(map, 1, tonumber(mlen)) }
        return GW_OK
    end
end

-- The tokenizer and chat sections of gw_ffi.h (src/ffi_chat.c). Token counts come from
-- st.tokens(encoding, text) (default: one token per byte); chat parameters land in req.chat.
local function chat_functions(st, C)
    local ENCODINGS = { cl100k_base = true, o200k_base = true, claude = true }

    function C.gw_ffi_tok_count(enc, elen, text, tlen)
        elen = tonumber(elen)
        if elen == 0 or elen >= 32 then
            return GW_EINVAL
        end
        enc = sub(enc, 1, elen)
        if not ENCODINGS[enc] then
            return GW_ENOENT
        end
        return st.tokens(enc, sub(text, 1, tonumber(tlen)))
    end

    -- chat parameters: req.chat = { echo, ingress, stream, include_usage, body, stops, targets =
    -- { { backend, model, encoding, prompt_tokens, completion_offset, variant, temperature,
    -- top_p, parts = { { kind, text } } } } }; st.attempts[req] (or req.attempts): the attempts
    -- the log phase reads ({ backend, result (number), status, next (number) })
    local function str(p, n)
        return sub(p, 1, tonumber(n))
    end

    function C.gw_ffi_chat_begin(req, echo, elen, ingress, ilen, stream, include_usage)
        if req.chat then
            return GW_ESTATE
        end
        local fmt = str(ingress, ilen)
        if fmt ~= "chat" and fmt ~= "messages" and fmt ~= "responses" then -- gw_ingress_find
            return GW_EINVAL
        end
        req.chat = { echo = str(echo, elen), ingress = fmt, stream = stream ~= 0,
            include_usage = include_usage ~= 0, targets = {} }
        return GW_OK
    end

    function C.gw_ffi_chat_target(req, backend, blen, model, mlen, enc, enclen, prompt_tokens,
                                  completion_offset, variant)
        local c = req.chat
        if not c then
            return GW_ESTATE
        end
        if tonumber(blen) == 0 or tonumber(blen) >= 32 or tonumber(mlen) == 0 then
            return GW_EINVAL
        end
        if #c.targets >= 8 then
            return GW_EAGAIN
        end
        c.targets[#c.targets + 1] = { backend = str(backend, blen), model = str(model, mlen),
            encoding = str(enc, enclen), prompt_tokens = tonumber(prompt_tokens),
            completion_offset = tonumber(completion_offset), variant = tonumber(variant),
            parts = {} }
        return GW_OK
    end

    local function last(req)
        local c = req.chat
        return c and c.targets[#c.targets]
    end

    function C.gw_ffi_chat_sampling(req, has_temperature, temperature, has_top_p, top_p)
        local t = last(req)
        if not t then
            return GW_ESTATE
        end
        t.temperature = has_temperature ~= 0 and temperature or nil
        t.top_p = has_top_p ~= 0 and top_p or nil
        return GW_OK
    end

    function C.gw_ffi_chat_part(req, kind, text, len)
        local t = last(req)
        if not t then
            return GW_ESTATE
        end
        t.parts[#t.parts + 1] = { kind = tonumber(kind), text = str(text, len) }
        return GW_OK
    end

    function C.gw_ffi_chat_body(req, body, len)
        if not req.chat then
            return GW_ESTATE
        end
        req.chat.body = str(body, len)
        return GW_OK
    end

    function C.gw_ffi_chat_fields(req, json, len)
        if not req.chat then
            return GW_ESTATE
        end
        local v = str(json, len)
        if #v == 0 or v:find("\0", 1, true) then
            return GW_EINVAL
        end
        req.chat.fields = v
        return GW_OK
    end

    function C.gw_ffi_chat_stop(req, seq, len)
        local c = req.chat
        if not c then
            return GW_ESTATE
        end
        local v = str(seq, len)
        if #v == 0 or #v > 256 or v:find("\0", 1, true) then
            return GW_EINVAL
        end
        c.stops = c.stops or {}
        if #c.stops >= 16 then
            return GW_EAGAIN
        end
        c.stops[#c.stops + 1] = v
        return GW_OK
    end

    function C.gw_ffi_chat_attempt(req, i, backend, blen, result, status, nxt)
        local a = (req.attempts or {})[tonumber(i) + 1]
        if not a then
            return GW_ENOENT
        end
        backend[0], blen[0] = a.backend, #a.backend
        result[0], status[0], nxt[0] = a.result, a.status or 0, a.next or 0
        return GW_OK
    end

    function C.gw_ffi_backends_json(req, buf, cap)
        local s = req.backends_json or st.backends_json or "{}"
        if #s < tonumber(cap) then
            ffi.copy(buf, s, #s)
            buf[#s] = 0
        end
        return #s
    end
end

-- A deterministic byte source: 0, 1, 2, ... (mod 256), continuing across calls.
local function counter_bytes()
    local next_byte = 0
    return function(n)
        local out = {}
        for i = 1, n do
            out[i] = string.char(next_byte)
            next_byte = (next_byte + 1) % 256
        end
        return table.concat(out)
    end
end

local DEFAULT_STATUS = '{"policies":["models"],"config_version":1,"workers":1,'
    .. '"last_reload":{"at":1700000000.000,"ok":true,"error":null}}'

function _M.new(opts)
    opts = opts or {}
    local st = {
        env = opts.env or {},
        now = opts.now or 1700000000,
        debug = opts.debug or false,
        logs = {},
        persisted = {},
        reloads = 0,
        persist_rc = 0,
        random = counter_bytes(),
        status_json = DEFAULT_STATUS,
        no_dict = false,
        dict = {},
        tokens = function(_, text) return #text end,
        files = {},
        store = { down = false, sent = {}, reply = K.GW_FFI_REPLY_DOWN },
        maps = {},
    }
    local C = core_functions(st)
    shdict_functions(st, C)
    store_functions(st, C)
    chat_functions(st, C)
    st.metrics = fake_metrics.new()
    for name, fn in pairs(st.metrics.C(1)) do
        C[name] = fn
    end
    for name, v in pairs(K) do
        C[name] = v
    end
    local fake = { state = st, C = C }
    fake.module = load_over("gw.ffi", C)
    fake.shared = load_over("gw.shared", C)
    fake.store = load_over("gw.store", C, { ["gw.shared"] = fake.shared, ["gw.ffi"] = fake.module })

    function fake.install()
        package.loaded["gw.ffi"] = fake.module
        package.loaded["gw.shared"] = fake.shared
        package.loaded["gw.store"] = fake.store
        package.loaded["gw.config"] = nil
        package.loaded["gw.host"] = nil
    end

    function fake.request(spec)
        spec = spec or {}
        local path = spec.path or "/"
        local query = spec.query or ""
        return {
            method = spec.method or "GET",
            path = path,
            uri = spec.uri or (query ~= "" and path .. "?" .. query or path),
            query = query,
            body = spec.body or "",
            headers = spec.headers or {},
            peer_ip = spec.peer_ip or "203.0.113.7",
            client_ip = spec.client_ip or spec.peer_ip or "203.0.113.7",
            resp_headers = {},
        }
    end

    -- Log lines (text) at or above `level` (0 debug .. 3 error), in order.
    function fake.lines(level)
        local out = {}
        for _, e in ipairs(st.logs) do
            if e.level >= (level or 0) then
                out[#out + 1] = e.msg
            end
        end
        return out
    end

    function fake.logged(pattern, plain)
        for _, e in ipairs(st.logs) do
            if find(e.msg, pattern, 1, plain) then
                return true
            end
        end
        return false
    end

    return fake
end

_M.parse_int = parse_int
_M.parse_num = parse_num
return _M
