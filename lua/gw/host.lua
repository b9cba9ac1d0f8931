-- pieces-gateway: the host library. Loads gateway.lua and the policies into this worker's VM
-- and runs their phases for each request.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Called from C (src/lua_host.c): init(opts) once per VM, then handle(req, id) for
-- rewrite/access/content, route(req, id) for chat requests and log(req, id) at the end.
-- Policies get `host` in new() and `r` in every phase (docs/policy-api.md); they never see FFI.
-- Every policy call is protected: an error is logged with policy, phase, file and line, and
-- the request gets a 500; the worker keeps serving.
-- Waiting: with the Redis store a host call may wait for I/O. Then the phases run in pooled
-- coroutines; a call that waits yields store.WAIT, the entry point returns true to C
-- ("suspended", the coroutine is parked under the request id), and C calls resume(req, id)
-- when the I/O is done (abort(req, id) if the client left: the coroutine is dropped, never
-- resumed). With the local store nothing can wait, and the phases are plain calls: a request
-- that cannot yield does not pay for the ability to.
local gwffi = require "gw.ffi"
local config = require "gw.config"
local metrics = require "gw.metrics"
local phases = require "gw.phases"
local errors = require "gw.errors"
local cjson = require "cjson.safe"
local gwstore = require "gw.store"

local C = gwffi.C
local type, pairs, ipairs, tostring, setmetatable = type, pairs, ipairs, tostring, setmetatable
local tonumber = tonumber
local format, find = string.format, string.find
local concat = table.concat
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local req_str, req_header = gwffi.req_str, gwffi.req_header
local has_new_tab, new_tab = pcall(require, "table.new") -- LuaJIT 2.1
if not has_new_tab then
    new_tab = function() return {} end
end

local PHASES, PHASE_BIT, phase_fn = phases.PHASES, phases.BIT, phases.fn

local _M = {}

local host          -- the host object given to policies
local cfg           -- the validated config
local chain = {}    -- phase -> array of { name, inst, fn }
local instances = {}
local active = {}   -- request id -> r (between handle/route and log)
local api_prefix = ""
local api_dir = "/" -- api_prefix .. "/"
local can_wait = false -- a host call may wait (the Redis store): run phases in coroutines
local ctl = { req = nil, co = nil } -- the request whose phase runs now (read by gw.store)
local WAIT, STORE_DOWN = gwstore.WAIT, gwstore.UNAVAILABLE
local metrics_on = true
local catalog       -- the models policy (resolves the model label of the metrics)
local policy_errors -- gateway_policy_errors_total

-- ---------- logging ----------

local muted = false -- worker VMs stay silent while loading: the main thread already said it

local function make_logger()
    local function logf(level)
        return function(fmt, ...)
            if muted and level ~= gwffi.LOG_ERROR then
                return
            end
            local ok, msg = pcall(format, fmt, ...)
            gwffi.log(level, ok and msg or tostring(fmt))
        end
    end
    local log = {
        info = logf(gwffi.LOG_INFO),
        warn = logf(gwffi.LOG_WARN),
        err = logf(gwffi.LOG_ERROR),
    }
    local debug_log = logf(gwffi.LOG_DEBUG)
    log.debug = function(...)
        if C.gw_ffi_debug_enabled() ~= 0 then
            debug_log(...)
        end
    end
    log.error = log.err
    return log
end

-- ---------- host services ----------

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        return nil, err
    end
    local data = f:read("*a")
    f:close()
    return data
end

local FILE_INFO_ERRORS = { [C.GW_FFI_ENOENT] = "No such file or directory",
    [C.GW_FFI_EINVAL] = "not a regular file" }

-- { size = bytes, mtime = unix seconds (float) } of a regular file, or nil, "<path>: <reason>"
local function file_info(path)
    if type(path) ~= "string" then
        error("file_info(path): path must be a string", 2)
    end
    if path == "" or path:find("\0", 1, true) then
        return nil, "invalid path"
    end
    local size, mtime = gwffi.file_info(path)
    if not size then
        return nil, path .. ": " .. (FILE_INFO_ERRORS[mtime] or "cannot stat")
    end
    return { size = size, mtime = mtime }
end

local function random_string(n, alphabet)
    alphabet = alphabet or "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    local out, k = {}, #alphabet
    local limit = 256 - 256 % k -- rejection sampling keeps every character equally likely
    while #out < n do
        local bytes = assert(gwffi.random_bytes(n * 2))
        for i = 1, #bytes do
            local b = bytes:byte(i)
            if b < limit and #out < n then
                local j = b % k + 1
                out[#out + 1] = alphabet:sub(j, j)
            end
        end
    end
    return concat(out)
end

-- lua-cjson with the text rule of request bodies, tested in C, and the C decoder in front of it
-- (lua/gw/json.lua, src/lua_json.h; only lua-cjson in the specs, where the binary is not)
local has_json_c, json_c = pcall(require, "gw.json_c")
local json = require("gw.json").new(gwffi.json_text_check, has_json_c and json_c.decode or nil)

local function optional(name)
    local ok, mod = pcall(require, name)
    if ok then
        return mod
    end
    return nil
end

local function shared_store()
    local st = cfg.shared_store
    if st and st.kind == "redis" then
        return gwstore.new(st, ctl), true
    end
    return optional("gw.shared"), false
end

-- The configuration as policies see it: the backends without their API keys.
local function public_config(c)
    local out = {}
    for k, v in pairs(c) do
        out[k] = v
    end
    local list, by = {}, {}
    for i, b in ipairs(c.backend_list or {}) do
        local copy = {}
        for k, v in pairs(b) do
            if k ~= "api_key" then
                copy[k] = v
            end
        end
        copy.has_api_key = (b.api_key or "") ~= ""
        list[i], by[b.name] = copy, copy
    end
    out.backend_list, out.backends = list, by
    return out
end

local TOK_CACHE_LEN, TOK_CACHE_MAX = 32, 1024 -- host.tokens' cache: texts up to 32 bytes

local function build_host(opts)
    local shared
    shared, can_wait = shared_store()
    local h = {
        config = public_config(cfg),
        log = make_logger(),
        now = C.gw_ffi_now,
        worker_id = opts.worker_id or 0,
        json = json,
        read_file = read_file,
        file_info = file_info,
        random_string = random_string,
        ip = optional("gw.ip"),
        shared = shared,
        metrics = metrics.new(C, { enabled = metrics_on }),
    }
    function h.policy(name)
        return instances[name]
    end
    function h.persist(path, content)
        if C.gw_ffi_persist(path, #path, content, #content) ~= 0 then
            return nil, "persistence queue not available"
        end
        return true
    end
    -- constant-time comparison of a client token with a secret (time depends on #secret only)
    function h.secure_equal(token, secret)
        return C.gw_ffi_secure_equal(token, #token, secret, #secret) == 1
    end
    function h.reload()
        C.gw_ffi_reload()
        return true
    end
    function h.status()
        local st = cjson.decode(gwffi.status())
        local lr = type(st) == "table" and st.last_reload
        if type(lr) == "table" and lr.error == cjson.null then
            lr.error = nil -- documented as string|nil; cjson.null would be a truthy userdata
        end
        return st
    end
    -- exact token count of text with a tokenizer ("cl100k_base", "o200k_base", "claude")
    -- Short texts (roles, names, short messages) are counted once per VM: the count of a text
    -- never changes, and a call into the tokenizer costs ~1 k instructions even for "user".
    local tok_cache, tok_cached = {}, 0 -- encoding -> text -> count
    function h.tokens(encoding, text)
        local by = tok_cache[encoding]
        local n = by and by[text]
        if n then
            return n
        end
        n = tonumber(C.gw_ffi_tok_count(encoding, #encoding, text, #text))
        if n < 0 then
            return nil, "unknown encoding " .. encoding
        end
        if #text <= TOK_CACHE_LEN then
            if tok_cached >= TOK_CACHE_MAX then
                tok_cache, tok_cached, by = {}, 0, nil
            end
            if not by then
                by = {}
                tok_cache[encoding] = by
            end
            by[text], tok_cached = n, tok_cached + 1
        end
        return n
    end
    -- this worker's backends and their pools ({ name = { type, pool } }) for r's worker
    function h.backend_pools(r)
        local s = gwffi.backends_json(r.req._req)
        return s and cjson.decode(s) or {}
    end
    return h
end

-- ---------- policies ----------

local function handler(err)
    if err == STORE_DOWN then -- SHARED_STORE_ON_ERROR=closed: not a policy error
        return err
    end
    local msg = tostring(err)
    if C.gw_ffi_debug_enabled() ~= 0 then
        return debug.traceback(msg, 2)
    end
    return msg
end

local function load_policy(dir, entry)
    local file = dir .. "/" .. entry.name .. ".lua"
    local chunk, err = loadfile(file)
    if not chunk then
        return nil, err
    end
    local ok, mod = xpcall(chunk, handler)
    if not ok then
        return nil, mod
    end
    if type(mod) ~= "table" or type(mod.new) ~= "function" then
        return nil, file .. ": must return a table with a new(conf, host) function"
    end
    local ok2, inst, nerr = xpcall(mod.new, handler, entry.conf, host)
    if not ok2 then
        return nil, inst
    end
    if not inst then
        return nil, format("%s: new() failed: %s", file, tostring(nerr))
    end
    return inst
end

local function where(fn)
    local info = debug.getinfo(fn, "S")
    return format("%s:%d", (info.source or "?"):gsub("^@", ""), info.linedefined or 0)
end

-- ---------- the request object ----------

local REQ_FIELDS = {
    method = gwffi.REQ_METHOD, path = gwffi.REQ_PATH, uri = gwffi.REQ_URI,
    query = gwffi.REQ_QUERY, peer_ip = gwffi.REQ_PEER_IP, client_ip = gwffi.REQ_CLIENT_IP,
}

-- (string.find at 1, plain, == 1: a prefix test that makes no substring)
local function is_api(path)
    if api_prefix ~= "" then
        return path == api_prefix or find(path, api_dir, 1, true) == 1
    end
    return path ~= "/" and path ~= "/ping" and path ~= "/metrics" and path ~= "/admin"
        and find(path, "/admin/", 1, true) ~= 1
end

local req_methods = {}

function req_methods.header(self, name)
    return req_header(self._req, name)
end

function req_methods.body(self)
    local b = self._body
    if b == nil then
        b = req_str(self._req, gwffi.REQ_BODY) or ""
        self._body = b
    end
    return b
end

function req_methods.set_path(self, path)
    if type(path) ~= "string" or C.gw_ffi_req_set_path(self._req, path, #path) ~= 0 then
        error("set_path: the path must be a string starting with '/'", 2)
    end
    self.path = path
    self.api = is_api(path)
end

local req_mt = {
    __index = function(t, k)
        local m = req_methods[k]
        if m then
            return m
        end
        local what = REQ_FIELDS[k]
        if what then
            local v = req_str(t._req, what)
            t[k] = v
            return v
        end
        if k == "api" then
            local v = is_api(t.path)
            t.api = v
            return v
        end
        return nil
    end,
}

local resp_methods = {}

function resp_methods.set_header(self, name, value)
    value = tostring(value)
    C.gw_ffi_resp_header(self._req, name, #name, value, #value)
end

function resp_methods.exit(self, status, body, content_type)
    if type(body) == "table" then
        body = cjson.encode(body)
        content_type = content_type or "application/json"
    end
    body = body or ""
    content_type = content_type or "text/plain; charset=utf-8"
    if C.gw_ffi_resp_answer(self._req, status, content_type, #content_type, body, #body) ~= 0 then
        error("resp:exit: a response was already sent, or the status is invalid", 2)
    end
    self._r._answered = true
end

-- The error envelope is the path's ingress format's, whoever raises it: Anthropic's on the
-- Messages paths (lua/gw/errors.lua), else OpenAI's (built in C).
function resp_methods.error(self, status, code, message, etype)
    code, message, etype = tostring(code or ""), tostring(message or ""), etype or "error"
    if self._r.ctx.ingress == "messages" then -- Anthropic's envelope (lua/gw/errors.lua)
        return resp_methods.exit(self, status, errors.body("messages", status, code, message),
            "application/json")
    end
    if C.gw_ffi_resp_error(self._req, status, code, #code, message, #message, etype,
        #etype) ~= 0 then
        error("resp:error: a response was already sent, or the status is invalid", 2)
    end
    self._r._answered = true
end

local resp_mt = {
    __index = function(t, k)
        local m = resp_methods[k]
        if m then
            return m
        end
        if k == "status" then
            local s = C.gw_ffi_resp_status(t._req)
            return s ~= 0 and s or nil
        end
        return nil
    end,
}

local cast_req = gwffi.cast_req

-- The tables of a request are made with room for the fields they get (the cached request
-- fields, r's own, the usual ctx keys): growing a table rehashes it, and that was ~10
-- rehashes per request, more than the policies' own work.
local function new_r(req)
    local rq = setmetatable(new_tab(0, 8), req_mt)
    rq._req = req
    -- r: 8 fields here, upstream (route) and attempts (log) later, room for a policy's own
    local r = new_tab(0, 16)
    r.ctx, r.shared, r.log, r.now, r.req = new_tab(0, 4), host.shared, host.log, host.now, rq
    r._answered, r._model = false, false
    r.resp = setmetatable({ _req = req, _r = r }, resp_mt)
    return r
end

-- ---------- phases ----------

local function run_phase(r, phase)
    local list = chain[phase]
    for i = 1, #list do
        local p = list[i]
        local ok, err = xpcall(p.fn, handler, p.inst, r)
        if not ok and err == STORE_DOWN then
            if phase == "log" then
                host.log.debug("policy '%s': the shared store is unavailable", p.name)
            else
                if not r._answered then
                    pcall(resp_methods.error, r.resp, 503, "store_unavailable",
                        "The shared store is unavailable")
                    r._answered = true
                end
                return
            end
        elseif not ok then
            host.log.err("policy '%s' failed in phase %s (%s): %s", p.name, phase, p.where, err)
            policy_errors:inc({ policy = p.name, phase = phase })
            if phase ~= "log" and not r._answered then
                r._answered = false
                pcall(resp_methods.error, r.resp, 500, "internal_error", "Internal server error")
                r._answered = true
            end
            if phase ~= "log" then
                return
            end
        elseif r._answered and phase ~= "log" then
            if phase == "content" then -- the policy serves this route: name it after the policy
                C.gw_ffi_req_set_stat(r.req._req, gwffi.STAT_ROUTE, p.name, #p.name)
            end
            return
        end
    end
end

local PRE_PHASES = { "rewrite", "access", "content" }

local route_paths = {} -- POST path -> ingress format (lua/gw/errors.lua)

-- r.ctx.ingress: the client API the (rewritten) path speaks, nil off the chat paths
local function run_pre(r)
    r.ctx.ingress = route_paths[r.req.path]
    for i = 1, 3 do
        local phase = PRE_PHASES[i]
        if #chain[phase] > 0 then
            run_phase(r, phase)
            if r._answered then
                return
            end
        end
        if i == 1 then
            r.ctx.ingress = route_paths[r.req.path]
        end
    end
end

-- Phases run in pooled coroutines when a host call may wait (see the header). There the
-- policies are called directly, not under xpcall: coroutine.resume already catches an error,
-- and a trace that goes on after a resume cannot return through an xpcall frame entered before
-- the yield ("NYI: return to lower frame": the rest of the phase would run interpreted). The
-- policy that runs is kept in cur_phase/cur_i (saved while parked), so an error still names
-- policy and phase, and a failed log phase goes on with the next policy in a new coroutine.
local pool = {}
local parked = {} -- request id -> { co, r, done, phase, i } while the request waits for I/O
local DONE = {}
local function log_done() end
local cur_phase, cur_i = "rewrite", 0 -- the policy call running in a coroutine now

-- chain[phase] from policy i in a coroutine; true when a policy answered (run_phase's rules)
local function co_phase(r, phase, i)
    local list = chain[phase]
    cur_phase = phase
    for j = i, #list do
        local p = list[j]
        cur_i = j
        p.fn(p.inst, r)
        if r._answered and phase ~= "log" then
            if phase == "content" then -- the policy serves this route: name it after the policy
                C.gw_ffi_req_set_stat(r.req._req, gwffi.STAT_ROUTE, p.name, #p.name)
            end
            return true
        end
    end
    return false
end

local function co_pre(r)
    r.ctx.ingress = route_paths[r.req.path]
    if #chain.rewrite > 0 and co_phase(r, "rewrite", 1) then
        return
    end
    r.ctx.ingress = route_paths[r.req.path]
    if #chain.access > 0 and co_phase(r, "access", 1) then
        return
    end
    if #chain.content > 0 then
        co_phase(r, "content", 1)
    end
end

local function co_route(r)
    co_phase(r, "route", 1)
end

local function co_log(r, i)
    co_phase(r, "log", i or 1)
end

local function co_body(fn, r, i)
    while true do
        fn(r, i)
        fn, r, i = co_yield(DONE)
    end
end

local function resume(co, req, ...)
    ctl.req, ctl.co = req, co
    local ok, res = co_resume(co, ...)
    ctl.req, ctl.co = nil, nil
    return ok, res
end

local start

-- The phase coroutine ended outside any policy (the host's own bug, or a bare yield): logged,
-- counted, a 500 unless answered, and the request goes on. Returns false (not parked).
local function host_failed(why, r, req, id, done)
    host.log.err("policy phase did not complete: %s", why)
    policy_errors:inc({ policy = "host", phase = "coroutine" })
    if not r._answered then
        pcall(resp_methods.error, r.resp, 500, "internal_error", "Internal server error")
    end
    done(r, req, id)
    return false
end

-- A policy raised err in a coroutine (cur_phase, cur_i; co is dead): run_phase's answers.
-- Returns true when the request is now parked (a log phase goes on with the next policy).
local function co_failed(co, err, r, req, id, done)
    local phase, i = cur_phase, cur_i
    local p = cur_i > 0 and chain[phase][i]
    if not p then -- not in a policy: the host's own bug
        return host_failed(tostring(err), r, req, id, done)
    end
    if err == STORE_DOWN then
        if phase == "log" then
            host.log.debug("policy '%s': the shared store is unavailable", p.name)
        elseif not r._answered then
            pcall(resp_methods.error, r.resp, 503, "store_unavailable",
                "The shared store is unavailable")
            r._answered = true
        end
    else
        local msg = tostring(err)
        if C.gw_ffi_debug_enabled() ~= 0 then
            msg = debug.traceback(co, msg)
        end
        host.log.err("policy '%s' failed in phase %s (%s): %s", p.name, phase, p.where, msg)
        policy_errors:inc({ policy = p.name, phase = phase })
        if phase ~= "log" and not r._answered then
            r._answered = false
            pcall(resp_methods.error, r.resp, 500, "internal_error", "Internal server error")
            r._answered = true
        end
    end
    if phase == "log" and i < #chain.log then
        return start(co_log, r, req, id, done, i + 1)
    end
    done(r, req, id)
    return false
end

-- After a resume: true when the coroutine parked on I/O; else the phase is over (done runs).
-- DONE comes only from co_body's yield (policies cannot reach it), so the coroutine is then
-- suspended and reusable: no coroutine.status call (it stitches the trace).
local function settle(co, ok, res, r, req, id, done)
    if ok and res == DONE then
        pool[#pool + 1] = co
        done(r, req, id)
        return false
    end
    if ok and res == WAIT then
        parked[id] = { co = co, r = r, done = done, phase = cur_phase, i = cur_i }
        return true
    end
    if not ok then
        return co_failed(co, res, r, req, id, done)
    end
    return host_failed("a policy yielded (not supported)", r, req, id, done)
end

-- fn(r, i) in a pooled coroutine, then done(r, req, id); true when the request is now parked
start = function(fn, r, req, id, done, i)
    local co = pool[#pool]
    if co then
        pool[#pool] = nil
    else
        co = co_create(co_body)
    end
    cur_i = 0
    local ok, res = resume(co, req, fn, r, i)
    return settle(co, ok, res, r, req, id, done)
end

-- Run fn(r) (co_fn(r) in a coroutine when a host call may wait), then done(r, req, id).
-- Returns true when the request is now parked.
local function run(fn, co_fn, r, req, id, done)
    if not can_wait then
        fn(r)
        done(r, req, id)
        return false
    end
    return start(co_fn, r, req, id, done)
end

-- C: the I/O the parked request waited for is done (its answer is readable through the FFI).
function _M.resume(req, id)
    local p = parked[id]
    if not p then
        return false
    end
    parked[id] = nil
    req = cast_req(req)
    cur_phase, cur_i = p.phase, p.i
    local ok, res = resume(p.co, req)
    return settle(p.co, ok, res, p.r, req, id, p.done)
end

-- C: the client of a parked request went away; the coroutine is dropped, never resumed. A log
-- phase still runs for the request (with its r.ctx).
function _M.abort(_, id)
    local p = parked[id]
    parked[id] = nil
    if p and #chain.log > 0 and p.done ~= log_done then
        active[id] = p.r
    end
    return false
end

local function publish_ctx(r, req)
    local m = r.ctx.model
    if type(m) == "string" and m ~= r._model then
        r._model = m
        C.gw_ffi_req_set_log_model(req, m, #m)
        if not metrics_on then
            return
        end
        -- the metrics' model label: the catalog id the name resolves to, or "other"
        local e = catalog and catalog:resolve(m)
        local label = type(e) == "table" and type(e.id) == "string" and e.id or "other"
        C.gw_ffi_req_set_stat(req, gwffi.STAT_MODEL, label, #label)
    end
end

local function handle_done(r, req, id)
    publish_ctx(r, req)
    -- keep r (and r.ctx) for the route and log phases of the same request
    -- the C router owns the route table: it says whether a route phase follows
    if #chain.log > 0 or (#chain.route > 0 and not r._answered and C.gw_ffi_req_routed(req) == 1)
    then
        active[id] = r
    end
end

function _M.handle(req, id)
    req = cast_req(req)
    return run(run_pre, co_pre, new_r(req), req, id, handle_done)
end

local function run_route(r)
    run_phase(r, "route")
end

-- r.upstream, set by the route phase, becomes the C side's chat parameters:
--   { echo_model, stream, include_usage, ingress = "chat"|"messages"|"responses",
--     body = (optional OpenAI body), stop_sequences = (optional { "..." }: the engine ends the
--     text at the first one, at most 16 of 1..256 bytes),
--     fields = (optional: JSON object members the answer object echoes as they are),
--     targets = { { backend, model, encoding, prompt_tokens, completion_offset, variant,
--                   temperature, top_p, parts = { { kind, text }, ... } }, ... } }
-- (docs/policy-api.md). What a target carries for each backend type is that backend's
-- business (policies/pieces.lua for Pieces, policies/chat.lua for OpenAI-compatible ones).
local function push_target(req, t)
    local b, m, enc = t.backend, t.model, t.encoding or ""
    if C.gw_ffi_chat_target(req, b, #b, m, #m, enc, #enc, t.prompt_tokens or 0,
        t.completion_offset or 0, t.variant or 0) ~= 0 then
        error("route: invalid target for backend " .. tostring(b), 0)
    end
    C.gw_ffi_chat_sampling(req, t.temperature and 1 or 0, t.temperature or 0,
        t.top_p and 1 or 0, t.top_p or 0)
    local parts = t.parts
    if parts then
        for i = 1, #parts do
            local p = parts[i]
            C.gw_ffi_chat_part(req, p.kind, p.text, #p.text)
        end
    end
end

local function push_upstream(r, req)
    local u = r.upstream
    if r._answered or type(u) ~= "table" then
        return
    end
    local echo, ingress = u.echo_model or "", u.ingress or "chat"
    if C.gw_ffi_chat_begin(req, echo, #echo, ingress, #ingress, u.stream and 1 or 0,
        u.include_usage and 1 or 0) ~= 0 then
        error("route: invalid upstream request", 0)
    end
    if u.body then
        C.gw_ffi_chat_body(req, u.body, #u.body)
    end
    if u.fields and C.gw_ffi_chat_fields(req, u.fields, #u.fields) ~= 0 then
        error("route: invalid upstream.fields", 0)
    end
    local stops = u.stop_sequences
    for i = 1, stops and #stops or 0 do
        if C.gw_ffi_chat_stop(req, stops[i], #stops[i]) ~= 0 then
            error("route: invalid stop sequence " .. i, 0)
        end
    end
    local targets = u.targets or {}
    for i = 1, #targets do
        push_target(req, targets[i])
    end
end

local function route_done(r, req)
    publish_ctx(r, req)
    local ok, err = pcall(push_upstream, r, req)
    if not ok then
        host.log.err("route phase: %s", tostring(err))
        pcall(resp_methods.error, r.resp, 500, "internal_error", "Internal server error")
    end
end

function _M.route(req, id)
    req = cast_req(req)
    local r = active[id]
    if not r then
        r = new_r(req)
        r.ctx.ingress = route_paths[r.req.path]
        if #chain.log > 0 then
            active[id] = r
        end
    elseif #chain.log == 0 then
        active[id] = nil
    end
    return run(run_route, co_route, r, req, id, route_done)
end

local function run_log(r)
    run_phase(r, "log")
end

function _M.log(req, id)
    local r = active[id]
    if r then
        req = r.req._req -- (the same request: no second cast)
        active[id] = nil
        if r.upstream then
            r.attempts = gwffi.chat_attempts(req) -- what each backend attempt did
        end
    else
        req = cast_req(req)
        r = new_r(req)
    end
    return run(run_log, co_log, r, req, id, log_done)
end

-- GET /: the circuit breakers of the route policy that keeps them (a JSON object string)
function _M.breakers_json()
    for _, inst in pairs(instances) do
        if type(inst) == "table" and type(inst.breakers) == "function" then
            return cjson.encode(inst:breakers())
        end
    end
    return nil
end

-- ---------- init ----------

-- opts.quiet: 0 print everything, 1 no config warnings, 2 nothing but errors while loading
function _M.init(opts)
    local quiet = opts.quiet or 0
    local jit_log = os.getenv("GW_JIT_LOG") -- development: LuaJIT's trace log to this file
    if jit_log and jit_log ~= "" and (opts.worker_id or 0) >= 0 then
        package.path = package.path .. ";/usr/share/luajit-2.1.0-beta3/?.lua"
        local ok, v = pcall(require, "jit.v")
        if ok then
            v.on(jit_log)
        end
    end
    cfg = config.load(opts.config_path, quiet >= 1)
    local st = cfg.shared_store -- C authenticates; policies (host.config) never see the password
    if st.password then
        st.password, st.url = nil, (st.url:gsub("^(redis://)[^@]*@", "%1***@"))
    end
    muted = quiet >= 2
    route_paths = errors.paths(cfg.api_prefix)
    api_prefix = cfg.api_prefix
    api_dir = api_prefix .. "/"
    metrics_on = opts.metrics ~= false
    host = build_host(opts)
    policy_errors = host.metrics.counter("gateway_policy_errors_total",
        "Errors raised by policies, by policy and phase.", { "policy", "phase" })
    if host.shared == nil then
        host.log.debug("gw.shared is not available in this build")
    end
    for _, phase in ipairs(PHASES) do
        chain[phase] = {}
    end
    instances = {} -- like chain: a second init must not keep the previous policies
    local names = {}
    for _, entry in ipairs(cfg.policies) do
        local inst, err = load_policy(cfg.policies_dir, entry)
        if not inst then
            error(err, 0)
        end
        instances[entry.name] = inst
        names[#names + 1] = entry.name
        for _, phase in ipairs(PHASES) do
            local fn = phase_fn(inst, phase)
            if fn then
                local list = chain[phase]
                list[#list + 1] = { name = entry.name, inst = inst, fn = fn, where = where(fn) }
            end
        end
    end
    local mask = 0
    for phase, bit in pairs(PHASE_BIT) do
        if #chain[phase] > 0 then
            mask = mask + bit
        end
    end
    muted = false
    local models = instances.models
    local models_json
    if models and type(models.list_json) == "function" then
        models_json = models:list_json()
    end
    catalog = models and type(models.resolve) == "function" and models or nil
    if models and type(models.ids) == "function" then
        metrics.catalog(C, models:ids())
    end
    local admin = instances.admin
    local admin_key = type(admin) == "table" and type(admin.key) == "string" and admin.key
    return { phases = mask, models_json = models_json, policy_names = concat(names, ","),
        admin_key = admin_key or nil }
end

-- for the contract spec and the e2e tests: what policies see
function _M.host()
    return host
end

return _M
