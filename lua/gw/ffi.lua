-- pieces-gateway: the Lua half of the C seam (core functions) and small helpers around it.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- The cdef below must match the core section of src/gw_ffi.h exactly (checked by a test).
-- Only the host library requires this module; policies never see FFI.
local ffi = require "ffi"

ffi.cdef [[
int gw_ffi_req_str(void *req, int what, const char **p, size_t *len);
int gw_ffi_req_header(void *req, const char *name, size_t nlen, const char **p, size_t *len);
int gw_ffi_req_set_path(void *req, const char *p, size_t len);
int gw_ffi_req_set_log_model(void *req, const char *p, size_t len);
int gw_ffi_req_set_stat(void *req, int field, const char *p, size_t len);
int gw_ffi_resp_header(void *req, const char *n, size_t nl, const char *v, size_t vl);
int gw_ffi_resp_answer(void *req, int status, const char *ctype, size_t ctlen, const char *body,
                       size_t blen);
int gw_ffi_resp_status(void *req);
double gw_ffi_now(void);
int gw_ffi_log(int level, const char *msg, size_t len);
int gw_ffi_debug_enabled(void);
int gw_ffi_env(const char *name, const char **p, size_t *len);
int gw_ffi_parse_int(const char *s, long long *out);
int gw_ffi_parse_num(const char *s, double *out);
int gw_ffi_parse_bool(const char *s, int *out);
int gw_ffi_random_bytes(unsigned char *buf, size_t n);
int gw_ffi_secure_equal(const char *a, size_t alen, const char *b, size_t blen);
int gw_ffi_persist(const char *path, size_t plen, const char *data, size_t dlen);
int gw_ffi_reload(void);
int gw_ffi_status(char *buf, size_t cap);
int gw_ffi_file_info(const char *path, size_t plen, long long *size, double *mtime);
int gw_ffi_json_text_check(const char *s, size_t len, size_t *at);
long long gw_ffi_tok_count(const char *enc, size_t elen, const char *text, size_t tlen);
int gw_ffi_chat_begin(void *req, int service, const char *model, size_t mlen, const char *echo,
                      size_t elen, const char *enc, size_t enclen, int stream, int include_usage,
                      long long prompt_tokens);
int gw_ffi_chat_sampling(void *req, int has_temperature, double temperature, int has_top_p,
                         double top_p);
int gw_ffi_chat_message(void *req, int role, const char *text, size_t len);
int gw_ffi_chat_vertex(void *req, const char *message, size_t mlen, const char *rules,
                       size_t rlen);
]]

local C = ffi.C
local ffi_string = ffi.string
local tonumber, type = tonumber, type

local _M = { C = C }

_M.REQ_METHOD, _M.REQ_PATH, _M.REQ_URI, _M.REQ_QUERY = 0, 1, 2, 3
_M.REQ_BODY, _M.REQ_PEER_IP, _M.REQ_CLIENT_IP = 4, 5, 6
_M.LOG_DEBUG, _M.LOG_INFO, _M.LOG_WARN, _M.LOG_ERROR = 0, 1, 2, 3
_M.STAT_ROUTE, _M.STAT_MODEL = 0, 1

local sp = ffi.new("const char *[2]")
local sl = ffi.new("size_t[2]")
local ll = ffi.new("long long[1]")
local dbl = ffi.new("double[1]")
local int1 = ffi.new("int[1]")

-- The request handle arrives from C as a number (the pointer's value: LuaJIT compiles neither
-- FFI calls taking a light userdata nor casts of one); the host turns it into a void * cdata
-- once per request.
local void_ptr = ffi.typeof("void *")
function _M.cast_req(req)
    if type(req) == "number" then
        return ffi.cast(void_ptr, req)
    end
    return req
end

function _M.req_str(req, what)
    if C.gw_ffi_req_str(req, what, sp, sl) ~= 0 then
        return nil
    end
    return ffi_string(sp[0], sl[0])
end

function _M.req_header(req, name)
    if C.gw_ffi_req_header(req, name, #name, sp, sl) ~= 0 then
        return nil
    end
    return ffi_string(sp[0], sl[0])
end

function _M.env(name)
    if C.gw_ffi_env(name, sp, sl) ~= 0 then
        return nil
    end
    return ffi_string(sp[0], sl[0])
end

function _M.parse_int(s)
    if C.gw_ffi_parse_int(s, ll) ~= 0 then
        return nil
    end
    return tonumber(ll[0])
end

function _M.parse_num(s)
    if C.gw_ffi_parse_num(s, dbl) ~= 0 then
        return nil
    end
    return dbl[0]
end

function _M.parse_bool(s)
    if C.gw_ffi_parse_bool(s, int1) ~= 0 then
        return nil
    end
    return int1[0] ~= 0
end

function _M.log(level, msg)
    C.gw_ffi_log(level, msg, #msg)
end

function _M.random_bytes(n)
    local buf = ffi.new("unsigned char[?]", n)
    if C.gw_ffi_random_bytes(buf, n) ~= 0 then
        return nil, "random source failed"
    end
    return ffi_string(buf, n)
end

-- size, mtime of a regular file, or nil and the GW_E* status of gw_ffi_file_info
function _M.file_info(path)
    local rc = C.gw_ffi_file_info(path, #path, ll, dbl)
    if rc ~= 0 then
        return nil, rc
    end
    return tonumber(ll[0]), dbl[0]
end

-- nil when the JSON text s is clean (src/jsontext.h), else the 0-based offset of the first
-- invalid UTF-8 byte or lone surrogate escape
function _M.json_text_check(s)
    if C.gw_ffi_json_text_check(s, #s, sl) ~= 0 then
        return tonumber(sl[0])
    end
    return nil
end

function _M.status()
    local cap = 4096
    while true do
        local buf = ffi.new("char[?]", cap)
        local n = C.gw_ffi_status(buf, cap)
        if n < cap then
            return ffi_string(buf, n)
        end
        cap = n + 1
    end
end

return _M
