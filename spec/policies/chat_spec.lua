-- pieces-gateway: spec of policies/chat.lua and policies/tokenize.lua (route phase)
-- (seed-behavior.md §4.1, §4.2, §5.2, §8.1, §8.2, §9).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local fake = require "fake_host"

local NULL = cjson.null
local CRLF = ";\r\n"

describe("chat policy", function()
    local h, chat, chain, calls

    -- fresh host, the real catalog, the chat policy; conf.default_model goes to "models"
    local function setup(conf, default_model, prefix)
        h = fake.new({ api_prefix = prefix })
        assert(h.load("models", { default_model = default_model or "" }))
        chat = assert(h.load("chat", conf or {}))
        chain = { chat, assert(h.load("tokenize", {})) }
        -- deterministic tokenizer: the length of the text; every call recorded
        calls = {}
        h.token_counter = function(encoding, text)
            calls[#calls + 1] = { encoding, text }
            return #text
        end
    end

    before_each(function()
        setup()
    end)

    local function send(body, path, ctx)
        if type(body) == "table" then
            body = assert(cjson.encode(body))
        end
        local r = h.request({ method = "POST", path = path or "/v1/chat/completions", body = body })
        for k, v in pairs(ctx or {}) do
            r.ctx[k] = v
        end
        return h.run(chain, r)
    end

    -- the upstream request built for `messages` (and extra body fields)
    local function upstream(model, messages, extra)
        local body = { model = model, messages = messages }
        for k, v in pairs(extra or {}) do
            body[k] = v
        end
        local r = send(body)
        assert.is_nil(r.resp.body ~= "ok" and r.resp.body or nil)
        assert.is_table(r.upstream)
        return r.upstream, r
    end

    local function err(r)
        return { r.resp.status, h.body(r) }
    end

    local function invalid(message)
        return { 400, { error = { code = "invalid_request", message = message,
            type = "error" } } }
    end

    local function not_found(name)
        return { 404, { error = { code = "model_not_found",
            message = "Model '" .. name .. "' does not exist", type = "error" } } }
    end

    local function msg(role, content, name)
        return { role = role, content = content, name = name }
    end

    describe("GPT request (§8.1)", function()
        it("puts system messages in role 0 and every other message in role 1, in order", function()
            local up = upstream("gpt-4o", {
                msg("system", "S1"), msg("user", "U1", "alice"), msg("user", "U2"),
                msg("system", "S2"), msg("assistant", "A1", "bob"), msg("tool", "T1"),
                msg("Critic", "C1"), msg("assistant", "A2"),
            })
            assert.same({
                { role = 0, text = "system:S1" .. CRLF .. "system:S2" .. CRLF },
                { role = 1, text = "user:U1" .. CRLF .. "user:U2" .. CRLF .. "assistant:A1"
                    .. CRLF .. "tool:T1" .. CRLF .. "Critic:C1" .. CRLF .. "assistant:A2"
                    .. CRLF },
            }, up.messages)
            assert.equal("gpt", up.service)
            assert.equal("gpt-4o", up.model)
            assert.is_nil(up.message)
            assert.is_nil(up.rules)
        end)

        it("sends only the system block when there is no dialog", function()
            local up = upstream("gpt-4", { msg("system", "a"), msg("system", "") })
            assert.same({ { role = 0, text = "system:a" .. CRLF .. "system:" .. CRLF } },
                up.messages)
        end)

        it("sends only the dialog block when there is no system message", function()
            local up = upstream("gpt-4", { msg("user", "hi"), msg("assistant", "") })
            assert.same({ { role = 1, text = "user:hi" .. CRLF .. "assistant:" .. CRLF } },
                up.messages)
        end)

        it("passes temperature and top_p only when given", function()
            local up = upstream("gpt-4", { msg("user", "x") }, { temperature = 0.7, top_p = 0.25 })
            assert.equal(0.7, up.temperature)
            assert.equal(0.25, up.top_p)
            up = upstream("gpt-4", { msg("user", "x") })
            assert.is_nil(up.temperature)
            assert.is_nil(up.top_p)
            up = upstream("gpt-4", { msg("user", "x") }, { temperature = NULL, top_p = NULL })
            assert.is_nil(up.temperature)
            assert.is_nil(up.top_p)
        end)

        it("uses the conf defaults only when the client gives none", function()
            setup({ temperature = 0.1, top_p = 1 })
            local up = upstream("gpt-4", { msg("user", "x") })
            assert.equal(0.1, up.temperature)
            assert.equal(1, up.top_p)
            up = upstream("gpt-4", { msg("user", "x") }, { temperature = 0, top_p = 0.5 })
            assert.equal(0, up.temperature)
            assert.equal(0.5, up.top_p)
            up = upstream("gpt-4", { msg("user", "x") }, { top_p = 0.9 })
            assert.equal(0.1, up.temperature)
            assert.equal(0.9, up.top_p)
        end)

        it("rejects a conf whose temperature or top_p is not a number", function()
            h = fake.new()
            local inst, e = h.load("chat", { temperature = "0.1" })
            assert.is_nil(inst)
            assert.equal("temperature must be a number", e)
            inst, e = h.load("chat", { top_p = true })
            assert.is_nil(inst)
            assert.equal("top_p must be a number", e)
        end)
    end)

    describe("Vertex request (§8.2)", function()
        it("merges consecutive same-role messages; systems in between do not break a run",
            function()
                local up = upstream("claude-3-haiku@20240307", {
                    msg("system", "S1"), msg("user", "U1"), msg("system", "S2"),
                    msg("user", "U2"), msg("assistant", "A1", "bob"), msg("assistant", "A2"),
                    msg("user", "U3"),
                })
                assert.equal("user:U1\nU2" .. CRLF .. "assistant:A1\nA2" .. CRLF .. "user:U3"
                    .. CRLF, up.message)
                assert.equal("system:S1\nS2" .. CRLF, up.rules)
                assert.equal("vertex", up.service)
                assert.is_nil(up.messages)
                assert.is_nil(up.temperature)
                assert.is_nil(up.top_p)
            end)

        it("keeps odd roles and does not merge different roles", function()
            local up = upstream("gemini-pro", { msg("user", "a"), msg("User", "b"),
                msg("tool", "c") })
            assert.equal("user:a" .. CRLF .. "User:b" .. CRLF .. "tool:c" .. CRLF, up.message)
            assert.equal("", up.rules)
        end)

        it("has an empty message when there is no dialog", function()
            local up = upstream("chat-bison", { msg("system", "only"), msg("system", "two") })
            assert.equal("", up.message)
            assert.equal("system:only\ntwo" .. CRLF, up.rules)
        end)

        it("has empty rules when the systems join to nothing", function()
            local up = upstream("gemini-pro", { msg("system", ""), msg("user", "q") })
            assert.equal("", up.rules)
            assert.equal("user:q" .. CRLF, up.message)
        end)

        it("sends the @ form of a claude dash id, echoing the client's spelling", function()
            local up, r = upstream("claude-3-5-sonnet-20240620", { msg("user", "q") })
            assert.equal("claude-3-5-sonnet@20240620", up.model)
            assert.equal("claude-3-5-sonnet-20240620", up.echo_model)
            assert.equal("claude-3-5-sonnet-20240620", r.ctx.model)
            assert.equal("vertex", up.service)
            assert.equal("claude", up.encoding)
        end)

        it("ignores temperature and top_p", function()
            setup({ temperature = 0.1, top_p = 1 })
            local up = upstream("gemini-1.5-pro", { msg("user", "q") },
                { temperature = 0.5, top_p = 0.5 })
            assert.is_nil(up.temperature)
            assert.is_nil(up.top_p)
        end)
    end)

    describe("content (§4.1)", function()
        it("accepts a string, null, absent and an array of parts", function()
            local up = upstream("gpt-4", {
                msg("user", "plain"), msg("user", NULL), { role = "user" },
                msg("user", { { type = "text", text = "a" }, { type = "image_url",
                    image_url = { url = "http://x/y.png" } }, { type = "text", text = "" },
                    { text = "b" }, { type = "text", text = NULL }, { type = "text" },
                    { type = "text", text = "c" } }),
                msg("user", {}),
            })
            assert.same({ { role = 1, text = "user:plain" .. CRLF .. "user:" .. CRLF .. "user:"
                .. CRLF .. "user:abc" .. CRLF .. "user:" .. CRLF } }, up.messages)
        end)

        it("flattens parts the same way for Vertex", function()
            local up = upstream("gemini-pro", { msg("system", { { text = "s" }, { text = "t" } }),
                msg("user", { { text = "x" }, { type = "image_url" }, { text = "y" } }),
                msg("user", NULL) })
            assert.equal("user:xy\n" .. CRLF, up.message)
            assert.equal("system:st" .. CRLF, up.rules)
        end)
    end)

    describe("validation", function()
        local USER = { msg("user", "hi") }
        local cases = {
            { "", "Request body is empty" },
            { "{", "Invalid JSON body: Expected object key string but found T_END at character 2" },
            { "42", "Request body must be a JSON object" },
            { '"s"', "Request body must be a JSON object" },
            { "true", "Request body must be a JSON object" },
            { "null", "Request body must be a JSON object" },
            { "[1,2]", "messages must be a non-empty array" },
            { { model = "gpt-4" }, "messages must be a non-empty array" },
            { '{"model":"gpt-4","messages":[]}', "messages must be a non-empty array" },
            { { model = "gpt-4", messages = NULL }, "messages must be a non-empty array" },
            { { model = "gpt-4", messages = "hi" }, "messages must be a non-empty array" },
            { { model = "gpt-4", messages = { role = "user" } },
                "messages must be a non-empty array" },
            { { model = "gpt-4", messages = { "hi" } }, "messages[0] must be an object" },
            { { model = "gpt-4", messages = { USER[1], NULL } }, "messages[1] must be an object" },
            { { model = "gpt-4", messages = { { content = "x" } } },
                "messages[0].role must be a string" },
            { { model = "gpt-4", messages = { msg(5, "x") } },
                "messages[0].role must be a string" },
            { { model = "gpt-4", messages = { msg("user", 5) } },
                "messages[0].content must be a string, null or an array of content parts" },
            { { model = "gpt-4", messages = { msg("user", true) } },
                "messages[0].content must be a string, null or an array of content parts" },
            { { model = "gpt-4", messages = { msg("user", { type = "text", text = "x" }) } },
                "messages[0].content must be a string, null or an array of content parts" },
            { { model = "gpt-4", messages = { USER[1], msg("user", { { text = "a" }, "b" }) } },
                "messages[1].content[2] must be an object" },
            { { model = "gpt-4", messages = { msg("user", { { text = 7 } }) } },
                "messages[0].content[1].text must be a string" },
            { { model = "gpt-4", messages = { msg("user", "x", 3) } },
                "messages[0].name must be a string" },
            { { model = "gpt-4", messages = USER, stream = "yes" }, "stream must be a boolean" },
            { { model = "gpt-4", messages = USER, stream = 1 }, "stream must be a boolean" },
            { { model = "gpt-4", messages = USER, temperature = "hot" },
                "temperature must be a number" },
            { { model = "gpt-4", messages = USER, top_p = {} }, "top_p must be a number" },
            { { model = "gpt-4", messages = USER, stream_options = true },
                "stream_options must be an object" },
            { { model = 5, messages = USER }, "model must be a string" },
            { { model = { "gpt-4" }, messages = USER }, "model must be a string" },
        }
        for i, c in ipairs(cases) do
            it(("answers 400 invalid_request: %s (case %d)"):format(c[2], i), function()
                local r = send(c[1])
                assert.same(invalid(c[2]), err(r))
                assert.equal("chat", r.resp.answered_by)
                assert.is_nil(r.upstream)
            end)
        end

        it("accepts null name, stream and stream_options", function()
            local up = upstream("gpt-4", { msg("user", "x", NULL) },
                { stream = NULL, stream_options = NULL })
            assert.is_false(up.stream)
            assert.is_false(up.include_usage)
        end)

        it("checks the model type even when a model route names one", function()
            local r = send({ model = 5, messages = USER }, nil, { route_model = "gpt-4" })
            assert.same(invalid("model must be a string"), err(r))
        end)
    end)

    describe("text rule (one rule for every string of the body)", function()
        -- `^` marks the offending byte; the expected message names the field and its offset
        local function expect(field, marked, what)
            local at = marked:find("^", 1, true)
            local body = marked:sub(1, at - 1) .. marked:sub(at + 1)
            local tokenize = marked:find('"input"', 1, true)
            local r = send(body, tokenize and "/v1/tokenize" or nil)
            assert.same(invalid(("%s is not valid UTF-8: %s at body offset %d")
                :format(field, what, at - 1)), err(r))
            assert.equal(tokenize and "tokenize" or "chat", r.resp.answered_by)
            assert.is_nil(r.upstream)
        end
        local HI = '{"role":"user","content":"hi"}'

        it("content: raw invalid bytes", function()
            expect("messages[2].content", '{"model":"gpt-4","messages":[' .. HI .. "," .. HI
                .. ',{"role":"user","content":"a^\255b"}]}', "invalid byte 0xFF")
        end)

        it("name: an overlong sequence", function()
            expect("messages[0].name", '{"model":"gpt-4","messages":[{"role":"user",'
                .. '"name":"^\192\175","content":"x"}]}', "invalid byte 0xC0")
        end)

        it("system text: a truncated sequence, GPT and Vertex", function()
            for _, model in ipairs({ "gpt-4", "gemini-pro" }) do
                expect("messages[0].content", '{"model":"' .. model .. '","messages":['
                    .. '{"role":"system","content":"be ^\226\130"},' .. HI .. "]}",
                    "invalid byte 0xE2")
            end
        end)

        it("content parts, role and model: UTF-8 encoded surrogates and > U+10FFFF", function()
            expect("messages[0].content[1].text", '{"model":"gpt-4","messages":[{"role":"user",'
                .. '"content":[{"text":"ok"},{"text":"^\237\160\128"}]}]}', "invalid byte 0xED")
            expect("messages[0].role", '{"model":"gpt-4","messages":[{"role":"us^\244\144\128'
                .. '\128er","content":"x"}]}', "invalid byte 0xF4")
            expect("model", '{"model":"gpt-4^\255","messages":[' .. HI .. "]}",
                "invalid byte 0xFF")
        end)

        it("a lone surrogate escape gets the same answer", function()
            expect("messages[0].content", '{"model":"gpt-4","messages":[{"role":"user",'
                .. '"content":"x^\\ud800y"}]}', "lone surrogate escape \\ud800")
            expect("messages[0].name", '{"model":"gpt-4","messages":[{"role":"user",'
                .. '"content":"x","name":"^\\udfff"}]}', "lone surrogate escape \\udfff")
        end)

        it("any other field of the body, and tokenize requests", function()
            expect("metadata.tags[1]", '{"model":"gpt-4","messages":[' .. HI .. '],'
                .. '"metadata":{"tags":["a","^\128"]}}', "invalid byte 0x80")
            expect("input", '{"model":"gpt-4","input":"^\255"}', "invalid byte 0xFF")
        end)

        it("accepts valid UTF-8 and escaped surrogate pairs", function()
            local up = upstream("gpt-4", { msg("user", "caf\195\169 \240\159\152\128") })
            assert.equal("user:caf\195\169 \240\159\152\128" .. CRLF, up.messages[1].text)
            local r = send('{"model":"gpt-4","messages":[{"role":"user","content":'
                .. '"\\ud83d\\ude00"}]}')
            assert.equal("user:\240\159\152\128" .. CRLF, r.upstream.messages[1].text)
        end)
    end)

    describe("context length", function()
        -- gpt-4: max_tokens.input 4100; the spec's tokenizer counts bytes
        local function over(model, content)
            return send({ model = model, messages = { msg("user", content) } })
        end

        it("answers 400 context_length_exceeded over the input limit, with both numbers",
            function()
                -- 3 + (3 + #content + #"user") + 3 = 4101
                local r = over("gpt-4", string.rep("x", 4091))
                assert.same({ 400, { error = { code = "context_length_exceeded",
                    type = "invalid_request_error",
                    message = "This model's maximum context length is 4100 tokens. However, "
                        .. "your messages resulted in 4101 tokens. Please reduce the length "
                        .. "of the messages." } } }, err(r))
                assert.is_nil(r.upstream)
                assert.equal("gpt-4", r.ctx.model)
            end)

        it("accepts a prompt exactly at the limit", function()
            local r = over("gpt-4", string.rep("x", 4090))
            assert.equal(4100, r.upstream.prompt_tokens)
        end)

        it("uses each model's own limit, Vertex models too", function()
            -- claude-3-haiku: 35000; "\n\nuser:" .. c .. "\n\nAssistant:" = 19 + #c
            assert.is_table(over("claude-3-haiku-20240307", string.rep("y", 34981)).upstream)
            local r = over("claude-3-haiku-20240307", string.rep("y", 34982))
            assert.equal(400, r.resp.status)
            assert.matches("maximum context length is 35000 tokens%. However, your messages "
                .. "resulted in 35001 tokens", h.body(r).error.message)
            assert.is_table(over("gpt-4o", string.rep("x", 5000)).upstream) -- 64000 for gpt-4o
        end)
    end)

    describe("model resolution (§4.2, §5.2)", function()
        local USER = { msg("user", "hi") }

        it("resolves an exact id and echoes it", function()
            local up, r = upstream("gpt-4-turbo", USER)
            assert.equal("gpt-4-turbo", up.model)
            assert.equal("gpt-4-turbo", up.echo_model)
            assert.equal("gpt", up.service)
            assert.equal("gpt-4-turbo", r.ctx.model)
        end)

        it("accepts the @ form of claude ids as well", function()
            local up = upstream("claude-3-opus@20240229", USER)
            assert.equal("claude-3-opus@20240229", up.model)
            assert.equal("claude-3-opus@20240229", up.echo_model)
        end)

        it("answers 404 model_not_found for an unknown model", function()
            for _, name in ipairs({ "gpt-5", "GPT-4", "claude-3-haiku-2024030", "" }) do
                local r = send({ model = name, messages = USER })
                assert.same(not_found(name), err(r))
                assert.is_nil(r.upstream)
                assert.equal(name, r.ctx.model)
            end
        end)

        it("answers 404 with an empty name when the model is missing or null", function()
            assert.same(not_found(""), err(send({ messages = USER })))
            assert.same(not_found(""), err(send({ model = NULL, messages = USER })))
        end)

        it("substitutes DEFAULT_MODEL silently, echoing the requested name", function()
            setup(nil, "claude-3-haiku-20240307")
            local up, r = upstream("gpt-5", USER)
            assert.equal("claude-3-haiku@20240307", up.model)
            assert.equal("gpt-5", up.echo_model)
            assert.equal("vertex", up.service)
            assert.equal("claude", up.encoding)
            assert.equal("gpt-5", r.ctx.model)
        end)

        it("uses DEFAULT_MODEL's id as the echo when the body names no model", function()
            setup(nil, "gpt-4o-mini")
            local up = upstream(nil, USER)
            assert.equal("gpt-4o-mini", up.model)
            assert.equal("gpt-4o-mini", up.echo_model)
        end)

        it("does not substitute a valid model", function()
            setup(nil, "gpt-4o-mini")
            local up = upstream("gpt-4", USER)
            assert.equal("gpt-4", up.model)
        end)

        it("uses the model route's model when the body's is missing or unknown", function()
            setup(nil, "gpt-4")
            for _, body_model in ipairs({ NULL, "gpt-5" }) do
                local r = send({ model = body_model, messages = USER }, nil,
                    { route_model = "claude-3-haiku-20240307" })
                assert.equal("claude-3-haiku@20240307", r.upstream.model)
                assert.equal("claude-3-haiku-20240307", r.upstream.echo_model)
                assert.equal("claude-3-haiku-20240307", r.ctx.model)
            end
            local r = send({ messages = USER }, nil, { route_model = "gpt-4o" })
            assert.equal("gpt-4o", r.upstream.model)
        end)

        it("lets the body's valid model win over the model route's", function()
            local r = send({ model = "gpt-4", messages = USER }, nil, { route_model = "gpt-4o" })
            assert.equal("gpt-4", r.upstream.model)
            assert.equal("gpt-4", r.upstream.echo_model)
            assert.equal("gpt-4", r.ctx.model)
        end)

        it("works behind the real model_route policy", function()
            chain = { assert(h.load("model_route", { enabled = true })), chat }
            local r = h.run(chain, h.request({ method = "POST",
                path = "/gemini-1.5-flash/v1/chat/completions",
                body = cjson.encode({ messages = USER }) }))
            assert.equal("gemini-1.5-flash", r.upstream.model)
            assert.equal("gemini-1.5-flash", r.ctx.model)
        end)

        it("chooses the encoding per model", function()
            local want = {
                ["gpt-4o"] = "o200k_base", ["gpt-4o-mini"] = "o200k_base",
                ["gpt-4"] = "cl100k_base", ["gpt-4-turbo"] = "cl100k_base",
                ["gpt-3.5-turbo"] = "cl100k_base", ["gemini-pro"] = "claude",
                ["chat-bison"] = "claude", ["claude-3-sonnet@20240229"] = "claude",
            }
            for model, enc in pairs(want) do
                assert.equal(enc, upstream(model, USER).encoding, model)
            end
        end)
    end)

    describe("stream flags", function()
        local USER = { msg("user", "hi") }

        it("sets stream and include_usage", function()
            local up = upstream("gpt-4", USER)
            assert.is_false(up.stream)
            assert.is_false(up.include_usage)
            up = upstream("gpt-4", USER, { stream = true })
            assert.is_true(up.stream)
            assert.is_false(up.include_usage)
            up = upstream("gpt-4", USER, { stream = true,
                stream_options = { include_usage = true } })
            assert.is_true(up.stream)
            assert.is_true(up.include_usage)
            up = upstream("gpt-4", USER, { stream = false,
                stream_options = { include_usage = "yes" } })
            assert.is_false(up.stream)
            assert.is_false(up.include_usage)
        end)
    end)

    describe("prompt tokens (§9)", function()
        it("counts GPT prompts per message with role, content and name", function()
            local msgs = { msg("system", "be brief"), msg("user", "hello", "alice"),
                msg("assistant", "", NULL), msg("user", { { text = "ab" }, { text = "c" } }) }
            local up = upstream("gpt-4o", msgs)
            local want = (3 + 8 + 6) + (3 + 5 + 4 + 1 + 5) + (3 + 0 + 9) + (3 + 3 + 4) + 3
            assert.equal(want, up.prompt_tokens)
            for _, c in ipairs(calls) do
                assert.equal("o200k_base", c[1])
            end
            upstream("gpt-3.5-turbo", msgs)
            assert.equal("cl100k_base", calls[#calls][1])
        end)

        it("counts a name only when it is a non-empty string", function()
            local up = upstream("gpt-4", { msg("user", "x", ""), msg("user", "y", NULL),
                msg("user", "z", "n") })
            assert.equal((3 + 1 + 4) + (3 + 1 + 4) + (3 + 1 + 4 + 1 + 1) + 3, up.prompt_tokens)
        end)

        it("counts a GPT prompt with the fake host's own tokenizer", function()
            h.token_counter = nil
            -- "hi there" = 2, "user" = 1, "x.y" = 3, "system" = 1
            local up = upstream("gpt-4", { msg("system", "x.y"), msg("user", "hi there") })
            assert.equal((3 + 3 + 1) + (3 + 2 + 1) + 3, up.prompt_tokens)
        end)

        it("counts the Vertex prompt string with the claude encoding", function()
            local up = upstream("claude-3-haiku@20240307", {
                msg("system", "S1"), msg("user", "U1"), msg("system", "S2"), msg("user", "U2"),
                msg("assistant", "A1"), msg("user", "U3", "bob"),
            })
            local text = "\n\nSystem:S1\nS2" .. "\n\nuser:U1\nU2" .. "\n\nassistant:A1"
                .. "\n\nuser:U3" .. "\n\nAssistant:"
            assert.same({ { "claude", text } }, calls)
            assert.equal(#text, up.prompt_tokens)
        end)

        it("adds no Assistant: when the last entry is not user, no System: without systems",
            function()
                upstream("gemini-pro", { msg("user", "q"), msg("assistant", "a") })
                assert.same({ { "claude", "\n\nuser:q\n\nassistant:a" } }, calls)
                calls = {}
                upstream("gemini-pro", { msg("system", ""), msg("User", "q") })
                assert.same({ { "claude", "\n\nUser:q" } }, calls)
                calls = {}
                local up = upstream("gemini-pro", { msg("system", "only") })
                assert.same({ { "claude", "\n\nSystem:only" } }, calls)
                assert.equal(#"\n\nSystem:only", up.prompt_tokens)
            end)
    end)

    describe("POST {P}/tokenize", function()
        local function tokenize(body, prefix)
            return send(body, (prefix or "/v1") .. "/tokenize")
        end

        it("counts plain input with the model's encoding", function()
            local r = tokenize({ model = "gpt-4o-mini", input = "hello world" })
            assert.equal(200, r.resp.status)
            assert.equal("tokenize", r.resp.answered_by)
            assert.equal("application/json", r.resp.content_type)
            assert.same({ model = "gpt-4o-mini", encoding = "o200k_base", tokens = 11 },
                h.body(r))
            assert.same({ { "o200k_base", "hello world" } }, calls)
            assert.is_nil(r.upstream)
            assert.equal("gpt-4o-mini", r.ctx.model)
        end)

        it("echoes the claude dash spelling and counts with claude", function()
            local r = tokenize({ model = "claude-3-haiku-20240307", input = "" })
            assert.same({ model = "claude-3-haiku-20240307", encoding = "claude", tokens = 0 },
                h.body(r))
        end)

        it("counts messages as the prompt of a chat request", function()
            local msgs = { msg("system", "s"), msg("user", "hi", "al") }
            local r = tokenize({ model = "gpt-4", messages = msgs })
            assert.same({ model = "gpt-4", encoding = "cl100k_base",
                tokens = (3 + 1 + 6) + (3 + 2 + 4 + 1 + 2) + 3 }, h.body(r))
            assert.equal(h.body(r).tokens, upstream("gpt-4", msgs).prompt_tokens)
            r = tokenize({ model = "gemini-pro", messages = { msg("user", "q") } })
            assert.same({ model = "gemini-pro", encoding = "claude",
                tokens = #"\n\nuser:q\n\nAssistant:" }, h.body(r))
        end)

        it("prefers input over messages", function()
            local r = tokenize({ model = "gpt-4", input = "abc", messages = "junk" })
            assert.equal(3, h.body(r).tokens)
        end)

        it("answers 404 for an unknown or missing model", function()
            assert.same(not_found("nope"), err(tokenize({ model = "nope", input = "x" })))
            assert.same(not_found(""), err(tokenize({ input = "x" })))
            assert.same(not_found(""), err(tokenize({ model = NULL, input = "x" })))
        end)

        it("ignores DEFAULT_MODEL", function()
            setup(nil, "gpt-4")
            assert.same(not_found("nope"), err(tokenize({ model = "nope", input = "x" })))
        end)

        it("answers 400 for a bad input or bad messages", function()
            assert.same(invalid("input must be a string"),
                err(tokenize({ model = "gpt-4", input = 5 })))
            assert.same(invalid("messages must be a non-empty array"),
                err(tokenize({ model = "gpt-4" })))
            assert.same(invalid("messages[0].role must be a string"),
                err(tokenize({ model = "gpt-4", messages = { { content = "x" } } })))
            assert.same(invalid("Request body is empty"), err(tokenize("")))
            assert.same(invalid("model must be a string"),
                err(tokenize({ model = 4, input = "x" })))
        end)

        it("answers under an empty api prefix too", function()
            setup(nil, nil, "")
            local r = tokenize({ model = "gpt-4", input = "ab" }, "")
            assert.same({ model = "gpt-4", encoding = "cl100k_base", tokens = 2 }, h.body(r))
        end)
    end)

    describe("route phase scope", function()
        it("does not run for other paths or methods", function()
            local body = cjson.encode({ model = "gpt-4", messages = { msg("user", "x") } })
            for _, rq in ipairs({ { "GET", "/v1/chat/completions" }, { "POST", "/v1/models" },
                { "POST", "/v1/chat/completions/" } }) do
                local r = h.run(chain, h.request({ method = rq[1], path = rq[2], body = body }))
                assert.is_nil(r.upstream)
                assert.equal("host", r.resp.answered_by)
            end
        end)
    end)
end)
