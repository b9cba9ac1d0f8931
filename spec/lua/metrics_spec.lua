-- pieces-gateway: spec of lua/gw/metrics.lua (host.metrics) over the in-memory store of
-- spec/support/fake_metrics.lua, and of the fake host's metrics.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local metrics = require "gw.metrics"
local fake_metrics = require "fake_metrics"
local fake_host = require "fake_host"

describe("host.metrics", function()
    local store, m

    before_each(function()
        store = fake_metrics.new()
        m = metrics.new(store.C(1))
    end)

    describe("counters", function()
        it("count by labels given by name, by position or as the value of the one label",
            function()
                local c = m.counter("x_hits_total", "Hits.", { "rule" })
                c:inc({ rule = "a" })
                c:inc({ "a" }, 2)
                c:inc("a", 0.5)
                c:inc("b")
                assert.equal(3.5, store.value("x_hits_total", { rule = "a" }))
                assert.equal(1, store.value("x_hits_total", { rule = "b" }))
                assert.equal(0, store.value("x_hits_total", { rule = "c" }))
            end)

        it("take numbers and booleans as their text, and no labels as nil", function()
            local c = m.counter("x_codes_total", "Codes.", { "code", "ok" })
            c:inc({ code = 200, ok = true })
            assert.equal(1, store.value("x_codes_total", { code = "200", ok = "true" }))
            local plain = m.counter("x_plain_total", "No labels.")
            plain:inc()
            plain:inc(nil, 4)
            assert.equal(5, store.value("x_plain_total"))
        end)

        it("raise on misuse, naming the metric", function()
            local c = m.counter("x_err_total", "E.", { "a", "b" })
            assert.has_error(function() c:inc({ a = "1" }) end,
                "x_err_total:inc: label 'b' must be a string, number or boolean")
            assert.has_error(function() c:inc("1") end,
                "x_err_total:inc: labels must be a table of a, b")
            assert.has_error(function() c:inc({ a = 1, b = 2 }, -1) end,
                "x_err_total:inc: n must be a finite number >= 0")
            assert.has_error(function() c:inc({ a = 1, b = 2 }, 0 / 0) end)
            assert.has_error(function() c:inc({ a = {}, b = 2 }) end)
            assert.has_error(function() c:set({ a = 1, b = 2 }, 1) end, "a counter has no :set")
            assert.has_error(function() c:observe({ a = 1, b = 2 }, 1) end,
                "a counter has no :observe")
        end)
    end)

    describe("gauges", function()
        it("set, inc and dec", function()
            local g = m.gauge("x_level", "Level.", { "k" })
            g:set("a", 10)
            g:inc("a", 5)
            g:dec("a")
            assert.equal(14, store.value("x_level", { k = "a" }))
            assert.has_error(function() g:observe("a", 1) end, "a gauge has no :observe")
            assert.has_error(function() g:set("a", 1 / 0) end,
                "x_level:set: the value must be a finite number")
        end)

        it("merge the workers' values by their aggregation", function()
            local w2 = metrics.new(store.C(2))
            local sum1, sum2 = m.gauge("x_sum", "S."), w2.gauge("x_sum", "S.")
            local max1 = m.gauge("x_max", "M.", nil, { aggregate = "max" })
            local max2 = w2.gauge("x_max", "M.", nil, { aggregate = "max" })
            local last1 = m.gauge("x_last", "L.", nil, { aggregate = "last" })
            local last2 = w2.gauge("x_last", "L.", nil, { aggregate = "last" })
            sum1:set(nil, 3)
            sum2:set(nil, 4)
            max1:set(nil, 9)
            max2:set(nil, 2)
            last2:set(nil, 1)
            last1:set(nil, 7)
            assert.equal(7, store.value("x_sum"))
            assert.equal(9, store.value("x_max"))
            assert.equal(7, store.value("x_last"))
            last2:set(nil, 5)
            assert.equal(5, store.value("x_last"))
            assert.has_error(function() m.gauge("x_bad", "B.", nil, { aggregate = "avg" }) end,
                'host.metrics.gauge: aggregate must be "sum", "max" or "last"')
        end)
    end)

    describe("histograms", function()
        it("count observations into cumulative buckets with a sum", function()
            local h = m.histogram("x_size_bytes", "Sizes.", { "k" }, { 10, 100 })
            h:observe("a", 5)
            h:observe("a", 50)
            h:observe("a", 500)
            local v = store.value("x_size_bytes", { k = "a" })
            assert.same({ count = 3, sum = 555, buckets = { [10] = 1, [100] = 2 } }, v)
            assert.has_error(function() h:inc("a") end, "a histogram has no :inc")
        end)

        it("default to the latency buckets, 5 ms to 120 s", function()
            m.histogram("x_lat_seconds", "Latency.")
            assert.same(metrics.DEFAULT_BUCKETS, store.families.x_lat_seconds.buckets)
            assert.equal(0.005, metrics.DEFAULT_BUCKETS[1])
            assert.equal(120, metrics.DEFAULT_BUCKETS[#metrics.DEFAULT_BUCKETS])
        end)

        it("reject bad buckets", function()
            assert.has_error(function() m.histogram("x_h1", "H.", nil, { 2, 1 }) end,
                "host.metrics.histogram: metric x_h1: buckets must be finite and strictly "
                    .. "increasing")
            assert.has_error(function() m.histogram("x_h2", "H.", nil, {}) end,
                "host.metrics.histogram: metric x_h2: a histogram needs 1 to 30 buckets")
            assert.has_error(function() m.histogram("x_h3", "H.", nil, { "a" }) end,
                "host.metrics.histogram: buckets must be finite numbers")
        end)
    end)

    describe("definitions", function()
        it("the same definition again (another worker, a reload) is the same family", function()
            local a = m.counter("x_same_total", "A.", { "k" })
            local b = metrics.new(store.C(2)).counter("x_same_total", "Other help.", { "k" })
            assert.equal(a.id, b.id)
            a:inc("v")
            b:inc("v")
            assert.equal(2, store.value("x_same_total", { k = "v" }))
        end)

        it("another type, labels or aggregation under a known name raises", function()
            m.counter("x_dup_total", "A.", { "k" })
            assert.has_error(function() m.counter("x_dup_total", "A.", { "j" }) end,
                "host.metrics.counter: metric x_dup_total is already registered with another "
                    .. "type, labels, buckets or aggregation (a change needs a restart)")
            m.gauge("x_dup", "G.")
            assert.has_error(function() m.gauge("x_dup", "G.", nil, { aggregate = "max" }) end)
        end)

        it("the built-in families a policy updates are defined with their exact labels", function()
            local r = m.counter("gateway_ratelimit_rejections_total", "x", { "rule" })
            r:inc("burst")
            assert.equal(1, store.value("gateway_ratelimit_rejections_total", { rule = "burst" }))
            assert.has_error(function()
                m.counter("gateway_ratelimit_rejections_total", "x", { "name" })
            end)
            assert.has_error(function() m.gauge("gateway_bans_active", "x") end) -- "last"
            m.gauge("gateway_bans_active", "x", nil, { aggregate = "last" })
        end)

        it("follow the Prometheus naming rules", function()
            local cases = {
                { "counter", "x_count", nil, "a counter's name must end with _total" },
                { "gauge", "x_total", nil, "only counters end with _total" },
                { "counter", "9x_total", nil, "invalid metric name" },
                { "counter", "x y_total", nil, "invalid metric name" },
                { "gauge", "x_g", { "le" }, "invalid label name" },
                { "gauge", "x_g", { "__a" }, "invalid label name" },
                { "gauge", "x_g", { "a-b" }, "invalid label name" },
                { "gauge", "x_g", { "a,b" }, "invalid label name 'a,b'" },
                { "gauge", "x_g", { "" }, "invalid label name" },
                { "gauge", "x_g", { "a", "a" }, "label names repeat" },
                { "gauge", "x_g", { "a", "b", "c", "d", "e", "f", "g", "h" }, "too many labels" },
                { "histogram", "x_h_sum", nil, "must not end with _bucket, _count or _sum" },
            }
            for _, c in ipairs(cases) do
                local ok, err = pcall(m[c[1]], c[2], "help", c[3])
                assert.is_false(ok, c[2])
                assert.matches(c[4], err, 1, true)
            end
            assert.has_error(function() m.counter("x_total") end,
                "host.metrics.counter(name, help, label_names): name and help must be strings")
            assert.has_error(function() m.counter("x_total", "h", "k") end,
                "host.metrics.counter: label_names must be an array of strings")
        end)

        it("keeps its own copy of the label names", function()
            local names = { "k" }
            local c = m.counter("x_copy_total", "C.", names)
            names[1] = "changed"
            c:inc({ k = "v" })
            assert.equal(1, store.value("x_copy_total", { k = "v" }))
        end)
    end)

    it("maps each label value to its id once per VM, with a bounded cache", function()
        local calls = 0
        local C = store.C(1)
        local real = C.gw_ffi_metrics_label
        C.gw_ffi_metrics_label = function(...)
            calls = calls + 1
            return real(...)
        end
        local c = metrics.new(C).counter("x_cache_total", "C.", { "k" })
        for _ = 1, 10 do
            c:inc("same")
        end
        assert.equal(1, calls)
        for i = 1, 5000 do
            c:inc("v" .. i)
        end
        assert.equal(5001, calls)
        c:inc("v4999") -- past the cache bound: asked again, still counted right
        assert.equal(5002, calls)
        assert.equal(2, store.value("x_cache_total", { k = "v4999" }))
    end)

    it("with enabled = false (METRICS=off) checks definitions but records nothing", function()
        local off = metrics.new(store.C(1), { enabled = false })
        local c = off.counter("x_off_total", "Off.", { "k" })
        c:inc("a")
        assert.equal(0, store.value("x_off_total", { k = "a" }))
        assert.has_error(function() c:inc("a", -1) end)
        assert.has_error(function() off.counter("x_off", "Bad name.") end)
    end)

    it("catalog() adds the model names that bound the model label", function()
        metrics.catalog(store.C(1), { "gpt-4o", "claude-3-haiku@20240307", 42 })
        assert.same({ ["gpt-4o"] = true, ["claude-3-haiku@20240307"] = true }, store.catalog)
    end)
end)

describe("the fake host's metrics", function()
    it("are shared with peers and read merged through h.metric", function()
        local h = fake_host.new()
        local peer = fake_host.new({ peer = h })
        h.host.metrics.counter("x_peer_total", "P."):inc()
        peer.host.metrics.counter("x_peer_total", "P."):inc(nil, 2)
        assert.equal(3, h.metric("x_peer_total"))
        assert.equal(3, peer.metric("x_peer_total"))
        assert.equal(0, fake_host.new().metric("gateway_ratelimit_rejections_total",
            { rule = "default" }))
    end)
end)
