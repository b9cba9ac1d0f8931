-- pieces-gateway: spec of policies/models.lua, the model catalog (seed-behavior.md §5).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local fake = require "fake_host"

-- seed-behavior.md §5.1, in file order: id, owned_by, created, name, total, input, output
local CATALOG = {
    { "chat-bison", "google", 1694793600, "(PaLM2) Chat Model", 9000, 8000, 1000 },
    { "gpt-4o-mini", "openai", 1721232000, "GPT-4o Mini Chat Model", 80384, 64000, 16384 },
    { "gemini-1.5-pro", "google", 1716825600, "Gemini-1.5 Pro Chat Model", 128000, 119808, 8192 },
    { "gpt-4o", "openai", 1715702400, "GPT-4o Chat Model", 68096, 64000, 4096 },
    { "codechat-bison", "google", 1694793600, "Codey (PaLM2) Chat Model", 7000, 6000, 1000 },
    { "claude-3-sonnet@20240229", "anthropic", 1709136000, "Claude 3 Sonnet Chat Model",
        40000, 35000, 4096 },
    { "gemini-pro", "google", 1704643200, "(Gemini) Chat Model", 32000, 20000, 8000 },
    { "claude-3-opus@20240229", "anthropic", 1709136000, "Claude 3 Opus Chat Model",
        40000, 35000, 4096 },
    { "gpt-4-turbo", "openai", 1707408000, "GPT-4 Turbo Chat Model", 68096, 64000, 4096 },
    { "gemini-1.5-flash", "google", 1716825600, "Gemini-1.5 Flash Chat Model",
        128000, 119808, 8192 },
    { "claude-3-5-sonnet@20240620", "anthropic", 1718812800, "Claude 3.5 Sonnet Chat Model",
        40000, 35000, 4096 },
    { "claude-3-haiku@20240307", "anthropic", 1711468800, "Claude 3 Haiku Chat Model",
        40000, 35000, 4096 },
    { "gpt-3.5-turbo", "openai", 1694793600, "GPT-3.5-turbo Chat Model", 16000, 12000, 4000 },
    { "gpt-4", "openai", 1694793600, "GPT-4 Chat Model", 8000, 4100, 3900 },
}

local ENCODING = {
    ["gpt-4o"] = "o200k_base", ["gpt-4o-mini"] = "o200k_base",
    ["gpt-4"] = "cl100k_base", ["gpt-4-turbo"] = "cl100k_base",
    ["gpt-3.5-turbo"] = "cl100k_base",
}

describe("models policy", function()
    local h, m

    before_each(function()
        h = fake.new()
        m = assert(h.load("models", {}))
    end)

    describe("catalog", function()
        it("lists the 14 ids in the seed's file order", function()
            local want = {}
            for i, e in ipairs(CATALOG) do
                want[i] = e[1]
            end
            assert.same(want, m:ids())
            assert.equal(14, #m:ids())
        end)

        it("ids() returns a fresh array each call", function()
            local ids = m:ids()
            ids[1] = "changed"
            assert.equal("chat-bison", m:ids()[1])
        end)

        it("renders every field of GET {P}/models", function()
            local doc = assert(cjson.decode(m:list_json()))
            assert.equal("list", doc.object)
            assert.equal(14, #doc.data)
            for i, e in ipairs(CATALOG) do
                assert.same({
                    id = e[1], object = "model", created = e[3], owned_by = e[2],
                    details = { name = e[4],
                        max_tokens = { total = e[5], input = e[6], output = e[7] } },
                }, doc.data[i])
            end
        end)

        it("keeps only those keys in each entry", function()
            local doc = cjson.decode(m:list_json())
            local keys = {}
            for k in pairs(doc.data[1]) do
                keys[#keys + 1] = k
            end
            table.sort(keys)
            assert.same({ "created", "details", "id", "object", "owned_by" }, keys)
        end)
    end)

    describe("resolve", function()
        it("finds every exact id", function()
            for _, e in ipairs(CATALOG) do
                local entry = m:resolve(e[1])
                assert.is_table(entry)
                assert.equal(e[1], entry.id)
                assert.same({ total = e[5], input = e[6], output = e[7] }, entry.max_tokens)
            end
        end)

        it("accepts the claude -YYYYMMDD spelling for @YYYYMMDD", function()
            assert.equal("claude-3-haiku@20240307", m:resolve("claude-3-haiku-20240307").id)
            assert.equal("claude-3-5-sonnet@20240620",
                m:resolve("claude-3-5-sonnet-20240620").id)
            assert.equal("claude-3-opus@20240229", m:resolve("claude-3-opus-20240229").id)
            assert.equal("claude-3-sonnet@20240229", m:resolve("claude-3-sonnet-20240229").id)
        end)

        it("normalises only claude- names", function()
            assert.equal("claude-x@20240101", m.normalize("claude-x-20240101"))
            assert.equal("gpt-4-20240101", m.normalize("gpt-4-20240101"))
            assert.is_nil(m:resolve("gemini-pro-20240101"))
            assert.equal("Claude-3-haiku-20240307", m.normalize("Claude-3-haiku-20240307"))
        end)

        it("normalises only when there is no '@'", function()
            assert.equal("claude-3@haiku-20240307", m.normalize("claude-3@haiku-20240307"))
            assert.is_nil(m:resolve("claude-3-haiku@20240307-20240307"))
        end)

        it("normalises only an 8-digit last segment", function()
            assert.equal("claude-3-haiku-2024030", m.normalize("claude-3-haiku-2024030"))
            assert.equal("claude-3-haiku-202403071", m.normalize("claude-3-haiku-202403071"))
            assert.equal("claude-3-haiku-2024030x", m.normalize("claude-3-haiku-2024030x"))
            assert.equal("claude-3-haiku_20240307", m.normalize("claude-3-haiku_20240307"))
            assert.is_nil(m:resolve("claude-3-haiku-2024030"))
            assert.is_nil(m:resolve("claude-3-haiku20240307"))
            -- only the final '-' changes
            assert.equal("claude-3-5-sonnet@20240620", m.normalize("claude-3-5-sonnet-20240620"))
        end)

        it("is case-sensitive and exact", function()
            assert.is_nil(m:resolve("GPT-4"))
            assert.is_nil(m:resolve("Claude-3-haiku@20240307"))
            assert.is_nil(m:resolve("CLAUDE-3-HAIKU-20240307"))
            assert.is_nil(m:resolve(" gpt-4"))
            assert.is_nil(m:resolve("gpt-4 "))
            assert.is_nil(m:resolve("gpt"))
            assert.is_nil(m:resolve(""))
        end)

        it("returns nil for non-strings", function()
            assert.is_nil(m:resolve(nil))
            assert.is_nil(m:resolve(4))
            assert.is_nil(m:resolve({ "gpt-4" }))
            assert.is_nil(m:resolve(true))
            assert.equal(4, m.normalize(4))
        end)
    end)

    describe("service and encoding", function()
        it("routes gpt-* to gpt and everything else to vertex", function()
            for _, e in ipairs(CATALOG) do
                local want = e[1]:sub(1, 4) == "gpt-" and "gpt" or "vertex"
                assert.equal(want, m:resolve(e[1]).service, e[1])
            end
            assert.equal("gpt", m:resolve("gpt-4o").service)
            assert.equal("vertex", m:resolve("chat-bison").service)
        end)

        it("uses tiktoken's encodings for GPT and the Claude vocabulary for Vertex", function()
            for _, e in ipairs(CATALOG) do
                assert.equal(ENCODING[e[1]] or "claude", m:resolve(e[1]).encoding, e[1])
            end
        end)

        it("carries owned_by, created and the display name", function()
            local e = m:resolve("gemini-pro")
            assert.equal("google", e.owned_by)
            assert.equal(1704643200, e.created)
            assert.equal("(Gemini) Chat Model", e.name)
        end)
    end)

    describe("DEFAULT_MODEL", function()
        it("is nil when unset or empty", function()
            assert.is_nil(m:default_model())
            local m2 = assert(fake.new().load("models", { default_model = "" }))
            assert.is_nil(m2:default_model())
        end)

        it("accepts a catalog id", function()
            local h2 = fake.new()
            local m2 = assert(h2.load("models", { default_model = "gpt-4o" }))
            assert.equal("gpt-4o", m2:default_model().id)
            assert.equal(0, #h2.logs)
        end)

        it("accepts the claude dash form and stores the @ entry", function()
            local h2 = fake.new()
            local m2 = assert(h2.load("models", { default_model = "claude-3-haiku-20240307" }))
            assert.equal("claude-3-haiku@20240307", m2:default_model().id)
            assert.equal(0, #h2.logs)
        end)

        it("warns and clears an unsupported model", function()
            local h2 = fake.new()
            local m2 = assert(h2.load("models", { default_model = "gpt-5" }))
            assert.is_nil(m2:default_model())
            assert.same({ { level = "warn",
                msg = "Warning: DEFAULT_MODEL 'gpt-5' is not supported, setting to empty" } },
                h2.logs)
        end)

        it("is case-sensitive too", function()
            local h2 = fake.new()
            local m2 = assert(h2.load("models", { default_model = "GPT-4" }))
            assert.is_nil(m2:default_model())
            assert.is_true(h2.logged("warn", "DEFAULT_MODEL 'GPT-4' is not supported", true))
        end)
    end)
end)
