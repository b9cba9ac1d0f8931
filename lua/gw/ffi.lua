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
int gw_ffi_resp_error(void *req, int status, const char *code, size_t clen, const char *msg,
                      size_t mlen, const char *type, size_t tlen);
int gw_ffi_resp_status(void *req);
int gw_ffi_req_routed(void *req);
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
int gw_ffi_chat_begin(void *req, const char *echo, size_t elen, const char *ingress,
                      size_t ilen, int stream, int include_usage);
int gw_ffi_chat_target(void *req, const char *backend, size_t blen, const char *model,
                       size_t mlen, const char *enc, size_t enclen, long long prompt_tokens,
                       long long completion_offset, int variant);
int gw_ffi_chat_sampling(void *req, int has_temperature, double temperature, int has_top_p,
                         double top_p);
int gw_ffi_chat_part(void *req, int kind, const char *text, size_t len);
int gw_ffi_chat_body(void *req, const char *body, size_t len);
int gw_ffi_chat_fields(void *req, const char *json, size_t len);
int gw_ffi_chat_stop(void *req, const char *seq, size_t len);
int gw_ffi_chat_attempt(void *req, int i, const char **backend, size_t *blen, int *result,
                        int *status, int *next);
int gw_ffi_backends_json(void *req, char *buf, size_t cap);
]]

local C = ffi.C
local ffi_string = ffi.string
local tonumber, type = tonumber, type
local has_new_tab, new_tab = pcall(require, "table.new") -- LuaJIT 2.1
if not has_new_tab then
    new_tab = function() return {} end
end

-- The seam's constants: the enums of src/gw_ffi.h's block, verbatim (checked by a test), read
-- as C.GW_FFI_*. Declared once per VM (a second ffi.cdef of an enum constant raises).
local ENUMS = [[
enum {
    GW_FFI_OK = 0,
    GW_FFI_EPERM = -1,         /* not allowed in the current state (GW_ESTATE) */
    GW_FFI_ENOENT = -2,        /* not found (GW_ENOENT, GW_SHDICT_NOT_FOUND) */
    GW_FFI_EIO = -5,           /* failure, see the message (GW_ERROR) */
    GW_FFI_EAGAIN = -11,       /* try again, too many (GW_EAGAIN) */
    GW_FFI_ENOMEM = -12,       /* no memory (GW_ENOMEM, GW_SHDICT_NO_MEMORY) */
    GW_FFI_EEXIST = -17,       /* exists (GW_EEXIST, GW_SHDICT_EXISTS) */
    GW_FFI_ENODEV = -19,       /* no shared dictionary (GW_SHDICT_NO_DICT) */
    GW_FFI_EINVAL = -22,       /* invalid argument (GW_EINVAL, GW_SHDICT_INVALID) */
    GW_FFI_EDOM = -33,         /* not a number (GW_SHDICT_NOT_NUMBER) */
    GW_FFI_ENOBUFS = -105,     /* the caller's buffer is too small (GW_SHDICT_TOO_SMALL) */
    GW_FFI_EKEYREJECTED = -129 /* empty or too long key (GW_SHDICT_BAD_KEY) */
};
enum {
    GW_FFI_REQ_METHOD = 0,
    GW_FFI_REQ_PATH = 1,
    GW_FFI_REQ_URI = 2,
    GW_FFI_REQ_QUERY = 3,
    GW_FFI_REQ_BODY = 4,
    GW_FFI_REQ_PEER_IP = 5,
    GW_FFI_REQ_CLIENT_IP = 6
};
enum { GW_FFI_LOG_DEBUG = 0, GW_FFI_LOG_INFO = 1, GW_FFI_LOG_WARN = 2, GW_FFI_LOG_ERROR = 3 };
enum { GW_FFI_TNUMBER = 1, GW_FFI_TSTRING = 2 };
enum {
    GW_FFI_ATTEMPT_OK = 0,
    GW_FFI_ATTEMPT_UNREACHABLE = 1,
    GW_FFI_ATTEMPT_TIMEOUT = 2,
    GW_FFI_ATTEMPT_BAD_ANSWER = 3,
    GW_FFI_ATTEMPT_REFUSED = 4,
    GW_FFI_ATTEMPT_CANCELLED = 5
};
enum { GW_FFI_NEXT_NONE = 0, GW_FFI_NEXT_RETRY = 1, GW_FFI_NEXT_FALLBACK = 2 };
enum { GW_FFI_PIECES_GPT = 0, GW_FFI_PIECES_VERTEX = 1 };
enum {
    GW_FFI_SCRIPT_WINDOW = 0,
    GW_FFI_SCRIPT_INCR = 1,
    GW_FFI_SCRIPT_KEYS = 2,
    GW_FFI_SCRIPT_MAP_ADD = 3,
    GW_FFI_SCRIPT_MAP_DEL = 4,
    GW_FFI_SCRIPT_EVAL = 256
};
enum {
    GW_FFI_REPLY_NONE = -3,
    GW_FFI_REPLY_DOWN = -2,
    GW_FFI_REPLY_TIMEOUT = -1,
    GW_FFI_REPLY_NIL = 0,
    GW_FFI_REPLY_INTEGER = 1,
    GW_FFI_REPLY_STRING = 2,
    GW_FFI_REPLY_ARRAY = 3,
    GW_FFI_REPLY_ERROR = 4,
    GW_FFI_REPLY_STATUS = 5
};
]]
if not pcall(function() return C.GW_FFI_OK end) then
    ffi.cdef(ENUMS)
end

local _M = { C = C, ENUMS = ENUMS }

_M.REQ_METHOD, _M.REQ_PATH, _M.REQ_URI = C.GW_FFI_REQ_METHOD, C.GW_FFI_REQ_PATH, C.GW_FFI_REQ_URI
_M.REQ_QUERY, _M.REQ_BODY = C.GW_FFI_REQ_QUERY, C.GW_FFI_REQ_BODY
_M.REQ_PEER_IP, _M.REQ_CLIENT_IP = C.GW_FFI_REQ_PEER_IP, C.GW_FFI_REQ_CLIENT_IP
_M.LOG_DEBUG, _M.LOG_INFO = C.GW_FFI_LOG_DEBUG, C.GW_FFI_LOG_INFO
_M.LOG_WARN, _M.LOG_ERROR = C.GW_FFI_LOG_WARN, C.GW_FFI_LOG_ERROR
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

-- size, mtime of a regular file, or nil and the GW_FFI_E* status of gw_ffi_file_info
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

-- The attempts of a finished chat request: { { backend, result, status, next }, ... }
local RESULTS = {
    [C.GW_FFI_ATTEMPT_OK] = "ok", [C.GW_FFI_ATTEMPT_UNREACHABLE] = "unreachable",
    [C.GW_FFI_ATTEMPT_TIMEOUT] = "timeout", [C.GW_FFI_ATTEMPT_BAD_ANSWER] = "bad_answer",
    [C.GW_FFI_ATTEMPT_REFUSED] = "refused", [C.GW_FFI_ATTEMPT_CANCELLED] = "cancelled",
}
local NEXTS = { [C.GW_FFI_NEXT_NONE] = "none", [C.GW_FFI_NEXT_RETRY] = "retry",
    [C.GW_FFI_NEXT_FALLBACK] = "fallback" }
local i3 = ffi.new("int[3]")
function _M.chat_attempts(req)
    local out = new_tab(1, 0) -- (one attempt, as a rule)
    while C.gw_ffi_chat_attempt(req, #out, sp, sl, i3, i3 + 1, i3 + 2) == 0 do
        out[#out + 1] = { backend = ffi_string(sp[0], sl[0]), result = RESULTS[i3[0]] or "?",
            status = i3[1], next = NEXTS[i3[2]] or "none" }
    end
    return out
end

-- Calls fill(buf, cap) -> length with a bigger buffer until the text fits (nil if it fails).
local function grown(fill)
    local cap = 4096
    while true do
        local buf = ffi.new("char[?]", cap)
        local n = fill(buf, cap)
        if n < 0 then
            return nil
        end
        if n < cap then
            return ffi_string(buf, n)
        end
        cap = n + 1
    end
end

function _M.backends_json(req)
    return grown(function(buf, cap) return C.gw_ffi_backends_json(req, buf, cap) end)
end

function _M.status()
    return grown(C.gw_ffi_status)
end

return _M
