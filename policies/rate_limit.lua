-- pieces-gateway policy: per-client-IP rate limits (rules default, strict, burst).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Access phase, every request except OPTIONS, keyed by `r.req.client_ip`; whitelisted clients
-- (`r.ctx.whitelisted`, set by ip_rules) skip it. Runs after ip_rules and before auth, like the
-- original's global limiter, so unauthenticated floods are limited and can get auto-banned.
--
-- Rules and scope. `default` and `burst` apply to every request. `strict` applies only to LLM
-- calls: POST {P}/chat/completions after the rewrite phase, which includes the model routes
-- and foolproof aliases (all spellings of the same expensive call), and the same call in the
-- other ingress formats, POST {P}/messages (Anthropic) and {P}/responses (OpenAI Responses).
-- It is evaluated in the same single check as the other rules and counted once per request.
-- (The original applied strict twice to chat: in its global limiter, to every route, and again
-- in a strict-only limiter; `strict.scope = "all"` restores "strict on every route", still
-- counted once.)
--
-- Algorithm: sliding-window counter per rule and IP. Time is cut into fixed windows of
-- `window` seconds; shared keys `rl:<rule>:<ip>:<index>` count allowed requests (TTL two
-- windows). The estimate for now is previous * (unelapsed fraction of the current window) +
-- current; the request is allowed when estimate + 1 <= limit. So a client that used its limit
-- at the end of one window cannot use it again at the start of the next (no double burst).
-- ALL applicable rules are checked before ANY counter is incremented; a rejected request is
-- not counted. The check and the increment of all rules are one atomic `shared:window_incr`
-- (one step under the dictionary's locks, or one server-side script with the Redis store), so
-- any number of workers and instances admit exactly the limit.
-- `limit = 0` rejects everything; `window = 0` (or enabled = false) disables the rule.
--
-- Over a limit: 429 `rate_limit_exceeded` "Rate limit exceeded", `r.ctx.rate_limited = <rule>`
-- (the blacklist policy counts it as a violation in the log phase), with `Retry-After`
-- (integer seconds >= 1 until the request would pass) and RateLimit-Limit, -Remaining (0),
-- -Reset (= Retry-After) of the rule that rejected. Allowed requests get RateLimit-Limit,
-- -Remaining and -Reset (seconds to the end of the current window) of the tightest rule.
-- Each rejection counts in the metric gateway_ratelimit_rejections_total{rule}.
--
-- Config keys (gateway.lua), per rule `default`, `strict`, `burst`:
--   limit    requests per window, integer >= 0: env RATE_LIMIT (60), STRICT_RATE_LIMIT (10),
--            BURST_RATE_LIMIT (100)
--   window   seconds >= 0: env RATE_LIMIT_WINDOW (60), STRICT_RATE_LIMIT_WINDOW (60),
--            BURST_RATE_LIMIT_WINDOW (1)
--   enabled  boolean: env RATE_LIMIT_ENABLED (true), STRICT_RATE_LIMIT_ENABLED (false),
--            BURST_RATE_LIMIT_ENABLED (false)
--   scope    strict only: "chat" (default) or "all", env STRICT_RATE_LIMIT_SCOPE

local _M = { name = "rate_limit" }

local NAMES = { "default", "strict", "burst" }
local DEFAULTS = {
    default = { limit = 60, window = 60, enabled = true, scope = "all" },
    strict = { limit = 10, window = 60, enabled = false, scope = "chat" },
    burst = { limit = 100, window = 1, enabled = false, scope = "all" },
}

local floor, ceil, max, format = math.floor, math.ceil, math.max, string.format
local has_new_tab, new_tab = pcall(require, "table.new") -- LuaJIT 2.1: sized at creation
if not has_new_tab then
    new_tab = function() return {} end
end

local function rule_conf(name, c)
    local d = DEFAULTS[name]
    if c ~= nil and type(c) ~= "table" then
        return nil, format("rate_limit: %s must be a table", name)
    end
    c = c or {}
    local rule = { name = name }
    for _, k in ipairs({ "limit", "window", "enabled", "scope" }) do
        local v = c[k]
        if v == nil then
            v = d[k]
        end
        rule[k] = v
    end
    if type(rule.limit) ~= "number" or rule.limit < 0 or rule.limit % 1 ~= 0 then
        return nil, format("rate_limit: %s.limit must be an integer >= 0", name)
    end
    if type(rule.window) ~= "number" or rule.window < 0 then
        return nil, format("rate_limit: %s.window must be a number >= 0", name)
    end
    if type(rule.enabled) ~= "boolean" then
        return nil, format("rate_limit: %s.enabled must be a boolean", name)
    end
    if rule.scope ~= "all" and (name ~= "strict" or rule.scope ~= "chat") then
        return nil, format("rate_limit: %s.scope must be %s", name,
            name == "strict" and "\"chat\" or \"all\"" or "\"all\"")
    end
    return rule
end

-- The POST paths of an LLM call, in every ingress format (the strict rule's "chat" scope).
local function llm_paths(prefix)
    return { [prefix .. "/chat/completions"] = true, [prefix .. "/messages"] = true,
        [prefix .. "/responses"] = true }
end

function _M.new(conf, host)
    conf = conf or {}
    local rules = {}
    for _, name in ipairs(NAMES) do
        local rule, err = rule_conf(name, conf[name])
        if not rule then
            return nil, err
        end
        if rule.enabled and rule.window > 0 then
            rule.keys, rule.keys_n, rule.limit_text = {}, 0, tostring(rule.limit)
            rules[#rules + 1] = rule
        end
    end
    return setmetatable({
        rules = rules, access = #rules > 0 and _M.access or false, -- no rule: no phase to call
        shared = host.shared,
        now = host.now,
        llm_paths = llm_paths(host.config.api_prefix or ""),
        rejections = host.metrics.counter("gateway_ratelimit_rejections_total",
            "Requests rejected by a rate limit rule.", { "rule" }),
    }, { __index = _M })
end

-- Seconds until `estimate + 1 <= limit` holds, for a rule whose check failed.
local function retry_after(limit, window, elapsed, prev, cur)
    local room = limit - 1
    if room < 0 then
        return window -- limit 0: never; a window is as good an answer as any
    end
    if cur <= room and prev > 0 then -- the previous window's weight must decay a bit more
        return window * (1 - (room - cur) / prev) - elapsed
    end
    -- the current count must become the previous one and decay
    return (window - elapsed) + max(0, window * (1 - room / cur))
end

-- The counter names of rule for ip in window idx: "rl:<rule>:<ip>:<idx>" and the previous
-- window's. Kept per rule and client address (clients repeat, and building and interning the
-- two strings cost more than the rest of the check); at most KEYS_MAX addresses, dropped
-- when full.
local KEYS_MAX = 4096

local function counter_keys(rule, ip, idx)
    local memo = rule.keys
    local e = memo[ip]
    if e == nil then
        if rule.keys_n >= KEYS_MAX then
            memo = {}
            rule.keys, rule.keys_n = memo, 0
        end
        e = { idx = false, key = false, prev = false, base = "rl:" .. rule.name .. ":" .. ip
            .. ":" }
        memo[ip] = e
        rule.keys_n = rule.keys_n + 1
    end
    if e.idx ~= idx then
        local prev = e.idx == idx - 1 and e.key or e.base .. format("%d", idx - 1)
        e.idx, e.key, e.prev = idx, e.base .. format("%d", idx), prev
    end
    return e.key, e.prev
end

-- The window counters of one rule for a request at `now` (a window_incr rule), with room for
-- what window_incr and judge add.
local function window_of(rule, ip, now)
    local w = rule.window
    local idx = floor(now / w)
    local elapsed = now - idx * w
    local key, prev = counter_keys(rule, ip, idx)
    return { rule = rule, key = key, prev = prev, weight = (w - elapsed) / w,
        limit = rule.limit, ttl = 2 * w, elapsed = elapsed, count = 0, prev_count = 0,
        ok = false, remaining = 0, reset = 0 }
end

-- The header numbers of a rule from the counts window_incr read (before this request).
local function judge(s)
    local rule, w = s.rule, s.rule.window
    local estimate = s.prev_count * s.weight + s.count
    s.ok = estimate + 1 <= rule.limit
    if s.ok then
        s.remaining = floor(rule.limit - estimate - 1)
        s.reset = max(1, ceil(w - s.elapsed))
    else
        s.remaining = 0
        s.reset = max(1, ceil(retry_after(rule.limit, w, s.elapsed, s.prev_count, s.count)
            - 1e-9))
    end
    return s
end

-- A header's integer as tostring writes it ("%d" takes LuaJIT's integer path, several
-- times cheaper than tostring's "%.14g"; the two agree below 1e14).
local function int_text(n)
    if n < 1e14 then
        return format("%d", n)
    end
    return tostring(n)
end

local function set_headers(r, s)
    r.resp:set_header("RateLimit-Limit", s.rule.limit_text)
    r.resp:set_header("RateLimit-Remaining", int_text(s.remaining))
    r.resp:set_header("RateLimit-Reset", int_text(s.reset))
end

function _M:access(r)
    local rules = self.rules
    if #rules == 0 or r.ctx.whitelisted or r.req.method == "OPTIONS" then
        return
    end
    local ip, now = r.req.client_ip, self.now()
    local chat = r.req.method == "POST" and self.llm_paths[r.req.path]
    local states = new_tab(#rules, 0)
    for i = 1, #rules do
        local rule = rules[i]
        if rule.scope == "all" or chat then
            states[#states + 1] = window_of(rule, ip, now)
        end
    end
    if #states == 0 then
        return
    end
    local admitted, err = self.shared:window_incr(states)
    if admitted == nil then -- the dictionary failed (no memory): let the request through
        r.log.debug("rate_limit: %s", tostring(err))
        return
    end
    local rejected, tightest
    for i = 1, #states do
        local s = judge(states[i])
        if not s.ok then
            if not rejected or s.reset > rejected.reset then
                rejected = s
            end
        elseif not tightest or s.remaining < tightest.remaining then
            tightest = s
        end
    end
    if not admitted and rejected then
        r.ctx.rate_limited = rejected.rule.name
        self.rejections:inc(rejected.rule.name)
        set_headers(r, rejected)
        r.resp:set_header("Retry-After", int_text(rejected.reset))
        return r.resp:error(429, "rate_limit_exceeded", "Rate limit exceeded")
    end
    if tightest then
        set_headers(r, tightest)
    end
end

return _M
