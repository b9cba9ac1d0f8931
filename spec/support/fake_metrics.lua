-- pieces-gateway: an in-memory fake of the metrics store in C (src/metrics.c, src/ffi_metrics.c)
-- for busted: the fake host and the fake FFI run the real lua/gw/metrics.lua over it.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- local store = require("fake_metrics").new()
--   store.C(worker)          the gw_ffi_metrics_* functions recording as worker `worker` (any
--                            key; one table of series per worker, like the per-thread shards)
--   store.value(name, labels) the merged value as a scrape shows it: counters and gauges a
--                            number (gauges merged by their aggregation), histograms
--                            { count = N, sum = S, buckets = { [upper bound] = cumulative } };
--                            labels: a table by label name (nil for none); 0 / nil if absent
--   store.families[name]     { type, agg, labels = { names }, buckets, help }
--   store.catalog[name]      true for names added with gw_ffi_metrics_catalog
-- The family checks are the C ones (check_def in src/metrics.c); the built-in families are
-- preloaded (BUILTINS below; spec/lua/contract_spec.lua compares them with src/metrics.c).

local ffi = require "ffi"

local _M = {}

local GW_EINVAL, GW_EEXIST = -3, -5
local TYPES = { [0] = "counter", [1] = "gauge", [2] = "histogram" }
local AGGS = { [0] = "sum", [1] = "max", [2] = "last" }
local LAT = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120 }
local TPOT = { 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1 }

-- name, type, aggregation, label names, buckets
_M.BUILTINS = {
    { "gateway_http_requests_total", "counter", "sum", "route,method,status" },
    { "gateway_http_request_duration_seconds", "histogram", "sum", "route", LAT },
    { "gateway_http_connections", "gauge", "sum", "" },
    { "gateway_llm_requests_total", "counter", "sum", "model,backend,stream,status" },
    { "gateway_llm_time_to_first_token_seconds", "histogram", "sum", "model,backend", LAT },
    { "gateway_llm_request_duration_seconds", "histogram", "sum", "model,backend,stream", LAT },
    { "gateway_llm_time_per_output_token_seconds", "histogram", "sum", "model,backend", TPOT },
    { "gateway_llm_tokens_total", "counter", "sum", "model,backend,type" },
    { "gateway_llm_usage_source_total", "counter", "sum", "source" },
    { "gateway_llm_active_streams", "gauge", "sum", "" },
    { "gateway_upstream_attempts_total", "counter", "sum", "backend,result" },
    { "gateway_upstream_connections", "gauge", "sum", "backend,state" },
    { "gateway_upstream_breaker_open", "gauge", "last", "backend" },
    { "gateway_ratelimit_rejections_total", "counter", "sum", "rule" },
    { "gateway_bans_active", "gauge", "last", "" },
    { "gateway_bans_added_total", "counter", "sum", "mode" },
    { "gateway_policy_errors_total", "counter", "sum", "policy,phase" },
    { "gateway_reloads_total", "counter", "sum", "result" },
    { "gateway_config_version", "gauge", "sum", "" },
    { "gateway_build_info", "gauge", "sum", "version" },
    { "process_start_time_seconds", "gauge", "sum", "" },
    { "process_resident_memory_bytes", "gauge", "sum", "" },
}

local function split(list)
    local out = {}
    for name in list:gmatch("[^,]+") do
        out[#out + 1] = name
    end
    return out
end

local function valid_name(s, colon)
    local pattern = colon and "^[%a_:][%w_:]*$" or "^[%a_][%w_]*$"
    return #s > 0 and #s <= 100 and s:find(pattern) ~= nil
end

local function suffix(s, x)
    return s:sub(-#x) == x
end

-- The message of src/metrics.c check_def for a bad definition, or nil.
local function check(def)
    local name, kind = def.name, def.type
    if not valid_name(name, true) then
        return "invalid metric name (letters, digits, _ and :, not starting with a digit)"
    end
    if kind == "counter" and not suffix(name, "_total") then
        return "a counter's name must end with _total"
    end
    if kind ~= "counter" and suffix(name, "_total") then
        return "only counters end with _total"
    end
    if kind == "histogram" and (suffix(name, "_bucket") or suffix(name, "_count")
        or suffix(name, "_sum")) then
        return "a histogram's name must not end with _bucket, _count or _sum"
    end
    local seen = {}
    for i, l in ipairs(def.labels) do
        if i > 7 then
            return "too many labels (at most 7)"
        end
        if not valid_name(l, false) or l:sub(1, 2) == "__" or l == "le" then
            return "invalid label name (letters, digits and _; not le or __*)"
        end
        if seen[l] then
            return "label names repeat"
        end
        seen[l] = true
    end
    if kind ~= "histogram" then
        return #def.buckets > 0 and "only histograms have buckets" or nil
    end
    if #def.buckets < 1 or #def.buckets > 30 then
        return "a histogram needs 1 to 30 buckets"
    end
    for i, b in ipairs(def.buckets) do
        if b ~= b or b == math.huge or b == -math.huge or (i > 1 and b <= def.buckets[i - 1]) then
            return "buckets must be finite and strictly increasing"
        end
    end
    return nil
end

local function same(a, b)
    if a.type ~= b.type or a.agg ~= b.agg or #a.labels ~= #b.labels
        or #a.buckets ~= #b.buckets then
        return false
    end
    for i = 1, #a.labels do
        if a.labels[i] ~= b.labels[i] then
            return false
        end
    end
    for i = 1, #a.buckets do
        if a.buckets[i] ~= b.buckets[i] then
            return false
        end
    end
    return true
end

function _M.new()
    local store = { families = {}, catalog = {} }
    local by_id, texts, ids = {}, { [0] = "", [1] = "other" }, { [""] = 0, other = 1 }
    local workers = {} -- worker -> key -> { v, seq } or histogram { counts, sum }
    local seq = 0

    local function register(def)
        local err = check(def)
        if err then
            return nil, GW_EINVAL, "metric " .. def.name .. ": " .. err
        end
        local f = store.families[def.name]
        if f then
            if same(f, def) then
                return f.id
            end
            return nil, GW_EEXIST, "metric " .. def.name .. " is already registered with another"
                .. " type, labels, buckets or aggregation (a change needs a restart)"
        end
        def.id = #by_id + 1
        by_id[def.id] = def
        store.families[def.name] = def
        return def.id
    end

    for _, b in ipairs(_M.BUILTINS) do
        assert(register({ name = b[1], type = b[2], agg = b[3], labels = split(b[4]),
            buckets = b[5] or {}, help = "" }))
    end

    local function key_of(f, values)
        return f.name .. "\0" .. table.concat(values, "\0")
    end

    function store.C(worker)
        local series = workers[worker] or {}
        workers[worker] = series
        local C = {}
        function C.gw_ffi_metrics_family(name, nlen, help, hlen, typ, agg, labels, llen,
                                         buckets, nb, err, errcap)
            local def = { name = name:sub(1, tonumber(nlen)), help = help:sub(1, tonumber(hlen)),
                type = TYPES[typ], agg = typ == 1 and AGGS[agg] or "sum",
                labels = split(labels:sub(1, tonumber(llen))), buckets = {} }
            for i = 1, tonumber(nb) do
                def.buckets[i] = buckets[i - 1]
            end
            local id, rc, msg = register(def)
            if not id then
                ffi.copy(err, msg:sub(1, tonumber(errcap) - 1))
                return rc
            end
            return id
        end
        function C.gw_ffi_metrics_label(value, len)
            value = value:sub(1, tonumber(len))
            local id = ids[value]
            if not id then
                if #value > 128 then
                    return 1
                end
                id = #texts + 1
                texts[id], ids[value] = value, id
            end
            return id
        end
        function C.gw_ffi_metrics_update(family, op, labels, n, value)
            local f = by_id[family]
            if not f or #f.labels ~= n then
                return GW_EINVAL
            end
            local values = {}
            for i = 1, n do
                values[i] = texts[labels[i - 1]] or "other"
            end
            local k = key_of(f, values)
            local s = series[k]
            if f.type == "histogram" then
                if op ~= 2 then
                    return 0
                end
                s = s or { counts = {}, sum = 0 }
                local i = 1
                while f.buckets[i] and value > f.buckets[i] do
                    i = i + 1
                end
                s.counts[i] = (s.counts[i] or 0) + 1
                s.sum = s.sum + value
            elseif op == 0 and (f.type == "gauge" or value >= 0) then
                s = s or { v = 0, seq = 0 }
                s.v = s.v + value
            elseif op == 1 and f.type == "gauge" then
                seq = seq + 1
                s = { v = value, seq = seq }
            end
            series[k] = s
            return 0
        end
        function C.gw_ffi_metrics_catalog(name, len)
            store.catalog[name:sub(1, tonumber(len))] = true
            return 0
        end
        return C
    end

    local function merge(f, k)
        local out
        for _, series in pairs(workers) do
            local s = series[k]
            if s and f.type == "histogram" then
                out = out or { count = 0, sum = 0, counts = {} }
                for i, c in pairs(s.counts) do
                    out.counts[i] = (out.counts[i] or 0) + c
                    out.count = out.count + c
                end
                out.sum = out.sum + s.sum
            elseif s then
                if not out then
                    out = { v = s.v, seq = s.seq }
                elseif f.agg == "sum" then
                    out.v = out.v + s.v
                elseif f.agg == "max" then
                    out.v = math.max(out.v, s.v)
                elseif s.seq > out.seq then
                    out = { v = s.v, seq = s.seq }
                end
            end
        end
        return out
    end

    function store.value(name, labels)
        local f = assert(store.families[name], "no metric " .. name)
        local values = {}
        for i, l in ipairs(f.labels) do
            values[i] = tostring((labels or {})[l])
        end
        local m = merge(f, key_of(f, values))
        if f.type ~= "histogram" then
            return m and m.v or 0
        end
        if not m then
            return nil
        end
        local h, cum = { count = m.count, sum = m.sum, buckets = {} }, 0
        for i, b in ipairs(f.buckets) do
            cum = cum + (m.counts[i] or 0)
            h.buckets[b] = cum
        end
        return h
    end

    return store
end

return _M
