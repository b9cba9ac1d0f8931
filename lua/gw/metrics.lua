-- pieces-gateway: host.metrics, the policies' Prometheus metrics (docs/policy-api.md).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- new(C, opts) builds the host.metrics object of one VM over the gw_ffi_metrics_* functions: ffi.C
-- in the binary, the in-memory fake of spec/support/fake_metrics.lua in specs (so both run this
-- same code). Families live in C for the whole process (registering the same definition again,
-- from another worker or after a reload, returns the same family); series are per worker and
-- merged when /metrics is scraped. An update is a few table lookups and one FFI call: label
-- values are mapped to ids once per VM (cache bounded), nothing is allocated when the labels
-- are given as a string (one label) or a reused table.
local ffi = require "ffi"

ffi.cdef [[
int gw_ffi_metrics_family(const char *name, size_t nlen, const char *help, size_t hlen, int type,
                          int agg, const char *labels, size_t llen, const double *buckets,
                          int nbuckets, char *err, size_t errcap);
int gw_ffi_metrics_label(const char *value, size_t len);
int gw_ffi_metrics_update(int family, int op, const uint16_t *labels, int n, double value);
int gw_ffi_metrics_catalog(const char *name, size_t len);
]]

local type, tostring, error, setmetatable = type, tostring, error, setmetatable
local ipairs, pairs = ipairs, pairs
local concat = table.concat
local huge = math.huge

local _M = {}

local TYPE = { counter = 0, gauge = 1, histogram = 2 }
local AGG = { sum = 0, max = 1, last = 2 }
local OP_ADD, OP_SET, OP_OBSERVE = 0, 1, 2
local MAX_LABELS, MAX_CACHED = 7, 4096

-- latencies of LLM calls, seconds (the built-in histograms use the same)
_M.DEFAULT_BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120 }

local function number(v)
    return type(v) == "number" and v == v and v > -huge and v < huge
end

-- opts.enabled = false (METRICS=off): families are still checked and registered, updates are
-- only checked (no FFI call)
function _M.new(C, opts)
    local enabled = not (opts and opts.enabled == false)
    local ids, n_ids = {}, 0
    local buf = ffi.new("uint16_t[?]", MAX_LABELS)
    local errbuf = ffi.new("char[256]")

    local function label_id(v)
        local id = ids[v]
        if id then
            return id
        end
        local tv = type(v)
        if tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
            return nil
        end
        local s = tostring(v)
        id = C.gw_ffi_metrics_label(s, #s)
        if n_ids < MAX_CACHED then
            ids[v], n_ids = id, n_ids + 1
        end
        return id
    end

    -- label values into buf; labels: nil (no labels), a scalar (one label), or a table by name
    -- (or by position)
    local function fill(self, labels)
        local names, n = self.label_names, self.n
        if n == 0 then
            return true
        end
        if type(labels) ~= "table" then
            local id = n == 1 and label_id(labels)
            if not id then
                return nil, "labels must be a table of " .. concat(names, ", ")
            end
            buf[0] = id
            return true
        end
        for i = 1, n do
            local v = labels[names[i]]
            if v == nil then
                v = labels[i]
            end
            local id = v ~= nil and label_id(v)
            if not id then
                return nil, "label '" .. names[i] .. "' must be a string, number or boolean"
            end
            buf[i - 1] = id
        end
        return true
    end

    local function update(self, op, labels, v, what)
        if not enabled then
            return
        end
        local ok, err = fill(self, labels)
        if not ok then
            error(self.name .. ":" .. what .. ": " .. err, 3)
        end
        C.gw_ffi_metrics_update(self.id, op, buf, self.n, v)
    end

    local methods = {}
    function methods.inc(self, labels, n)
        n = n or 1
        if not number(n) or (self.kind == "counter" and n < 0) then
            error(self.name .. ":inc: n must be a finite number"
                .. (self.kind == "counter" and " >= 0" or ""), 2)
        end
        update(self, OP_ADD, labels, n, "inc")
    end
    function methods.dec(self, labels, n)
        n = n or 1
        if not number(n) then
            error(self.name .. ":dec: n must be a finite number", 2)
        end
        update(self, OP_ADD, labels, -n, "dec")
    end
    local function value_method(op, what)
        return function(self, labels, v)
            if not number(v) then
                error(self.name .. ":" .. what .. ": the value must be a finite number", 2)
            end
            update(self, op, labels, v, what)
        end
    end
    methods.set = value_method(OP_SET, "set")
    methods.observe = value_method(OP_OBSERVE, "observe")

    -- per kind: its methods; the others raise (a counter has no :set)
    local KINDS = { counter = { inc = true }, gauge = { inc = true, dec = true, set = true },
        histogram = { observe = true } }
    local mts = {}
    for kind, allowed in pairs(KINDS) do
        local index = {}
        for name, fn in pairs(methods) do
            index[name] = allowed[name] and fn or function()
                error(("a %s has no :%s"):format(kind, name), 2)
            end
        end
        mts[kind] = { __index = index }
    end

    local function define(kind, name, help, label_names, agg, buckets)
        local where = "host.metrics." .. kind
        if type(name) ~= "string" or type(help) ~= "string" then
            error(where .. "(name, help, label_names): name and help must be strings", 3)
        end
        label_names = label_names or {}
        if type(label_names) ~= "table" then
            error(where .. ": label_names must be an array of strings", 3)
        end
        for _, l in ipairs(label_names) do
            if type(l) ~= "string" then
                error(where .. ": label_names must be an array of strings", 3)
            end
            if not l:find("^[%a_][%w_]*$") then -- (before joining them with ",")
                error(where .. ": metric " .. name .. ": invalid label name '" .. l .. "'", 3)
            end
        end
        local b, nb = nil, 0
        if buckets then
            nb = #buckets
            b = ffi.new("double[?]", nb + 1)
            for i = 1, nb do
                if not number(buckets[i]) then
                    error(where .. ": buckets must be finite numbers", 3)
                end
                b[i - 1] = buckets[i]
            end
        end
        local joined = concat(label_names, ",")
        local id = C.gw_ffi_metrics_family(name, #name, help, #help, TYPE[kind], AGG[agg] or 0,
            joined, #joined, b, nb, errbuf, 256)
        if id < 0 then
            error(where .. ": " .. ffi.string(errbuf), 3)
        end
        local names = {}
        for i, l in ipairs(label_names) do
            names[i] = l
        end
        return setmetatable({ id = id, name = name, kind = kind, label_names = names,
            n = #names }, mts[kind])
    end

    local api = {}
    function api.counter(name, help, label_names)
        return define("counter", name, help, label_names)
    end
    -- gopts.aggregate: how the workers' values merge: "sum" (default), "max" or "last" (the
    -- value set most recently by any worker)
    function api.gauge(name, help, label_names, gopts)
        local agg = gopts and gopts.aggregate or "sum"
        if not AGG[agg] then
            error("host.metrics.gauge: aggregate must be \"sum\", \"max\" or \"last\"", 2)
        end
        return define("gauge", name, help, label_names, agg)
    end
    function api.histogram(name, help, label_names, buckets)
        if buckets ~= nil and type(buckets) ~= "table" then
            error("host.metrics.histogram: buckets must be an array of numbers", 2)
        end
        return define("histogram", name, help, label_names, nil, buckets or _M.DEFAULT_BUCKETS)
    end
    return api
end

-- Adds the model names of the catalog to the set that bounds the model label.
function _M.catalog(C, names)
    for _, name in ipairs(names) do
        if type(name) == "string" then
            C.gw_ffi_metrics_catalog(name, #name)
        end
    end
end

return _M
