-- pieces-gateway: spec of policies/messages.lua and policies/responses.lua (request mapping onto
-- the chat policy's request) and of the per-format error envelope (lua/gw/errors.lua).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.

local cjson = require "cjson.safe"
local fake = require "fake_host"

describe("ingress formats", function()
    local h, chain

    before_each(function()
        h = fake.new({})
        assert(h.load("models", { default_model = "" }))
        assert(h.load("pieces", {}))
        chain = { assert(h.load("auth", { keys = { "k1" } })), assert(h.load("chat", {})),
            assert(h.load("messages", {})), assert(h.load("responses", {})) }
        h.token_counter = function(_, text) return #text end
    end)

    local function send(path, body, headers)
        if type(body) == "table" then
            body = assert(cjson.encode(body))
        end
        local r = h.request({ method = "POST", path = path, body = body,
            headers = headers or { Authorization = "Bearer k1" } })
        return h.run(chain, r)
    end

    local function sent(r)
        assert.is_table(r.upstream, r.resp.body)
        return cjson.decode(r.upstream.body), r.upstream
    end

    describe("Anthropic Messages", function()
        it("maps system, blocks, images, tools, tool_use and tool_result", function()
            local r = send("/v1/messages", {
                model = "gpt-4o", max_tokens = 100, system = { { type = "text", text = "S" } },
                stop_sequences = { "END" }, temperature = 0.5, top_k = 5, stream = true,
                metadata = { user_id = "u1" },
                tools = { { name = "f", description = "d", input_schema = { type = "object" } } },
                tool_choice = { type = "any" },
                messages = {
                    { role = "user", content = { { type = "text", text = "a" }, { type = "image",
                        source = { type = "base64", media_type = "image/png", data = "QQ==" } } } },
                    { role = "assistant", content = { { type = "text", text = "b" },
                        { type = "tool_use", id = "t1", name = "f", input = { x = 1 } } } },
                    { role = "user", content = { { type = "tool_result", tool_use_id = "t1",
                        content = "res" }, { type = "text", text = "c" } } },
                } })
            local b, u = sent(r)
            assert.equal("messages", u.ingress)
            assert.is_true(u.stream)
            assert.equal(100, b.max_tokens)
            assert.is_nil(b.stop) -- the engine applies them (it must know which one matched)
            assert.same({ "END" }, u.stop_sequences)
            assert.equal(5, b.top_k)
            assert.equal("u1", b.user)
            assert.equal("required", b.tool_choice)
            assert.same({ type = "function", ["function"] = { name = "f", description = "d",
                parameters = { type = "object" } } }, b.tools[1])
            local m = b.messages
            assert.same({ role = "system", content = "S" }, m[1])
            assert.equal("data:image/png;base64,QQ==", m[2].content[2].image_url.url)
            assert.equal('{"x":1}', m[3].tool_calls[1]["function"].arguments)
            assert.same({ role = "tool", tool_call_id = "t1", content = "res" }, m[4])
            assert.same({ role = "user", content = "c" }, m[5])
        end)

        it("bounds stop_sequences: 1..256 bytes each, at most 16", function()
            local function bad(stops)
                local r = send("/v1/messages", { model = "gpt-4o", max_tokens = 8,
                    messages = { { role = "user", content = "hi" } }, stop_sequences = stops })
                assert.equal(400, r.resp.status)
                assert.equal("invalid_request_error", cjson.decode(r.resp.body).error.type)
                return cjson.decode(r.resp.body).error.message
            end
            assert.matches("stop_sequences%[1%]", bad({ "ok", "" }))
            assert.matches("stop_sequences%[0%]", bad({ ("x"):rep(257) }))
            assert.matches("at most 16", bad({ "a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
                "k", "l", "m", "n", "o", "p", "q" }))
            assert.matches("at most 16", bad("END"))
            local r = send("/v1/messages", { model = "gpt-4o", max_tokens = 8, stop_sequences = {},
                messages = { { role = "user", content = "hi" } } })
            assert.is_nil(select(2, sent(r)).stop_sequences)
        end)

        it("keeps empty JSON Schema arrays as arrays", function()
            local r = send("/v1/messages", { model = "gpt-4o", max_tokens = 5, messages = {
                { role = "user", content = "x" } }, tools = { { name = "f",
                input_schema = { type = "object", properties = {}, required = {} } } } })
            assert.matches('"required":%[%]', r.upstream.body)
            assert.matches('"properties":{}', r.upstream.body)
        end)

        it("answers errors in Anthropic's shape, policy errors too", function()
            local cases = {
                { { model = "gpt-4o", messages = { { role = "user", content = "x" } } }, 400,
                    "invalid_request_error", "max_tokens" },
                { { model = "gpt-4o", max_tokens = 5, messages = {} }, 400,
                    "invalid_request_error", "messages" },
                { { model = "gpt-4o", max_tokens = 5, messages = { { role = "tool",
                    content = "x" } } }, 400, "invalid_request_error", "role" },
                { { model = "gpt-4o", max_tokens = 5, messages = { { role = "user",
                    content = { { type = "document" } } } } }, 400, "invalid_request_error",
                    "unsupported" },
                { { model = "nope", max_tokens = 5, messages = { { role = "user",
                    content = "x" } } }, 404, "not_found_error", "does not exist" },
                { "{", 400, "invalid_request_error", "JSON" },
            }
            for _, c in ipairs(cases) do
                local r = send("/v1/messages", c[1])
                assert.equal(c[2], r.resp.status)
                local b = h.body(r)
                assert.equal("error", b.type)
                assert.equal(c[3], b.error.type)
                assert.matches(c[4], b.error.message)
            end
            local r = send("/v1/messages", { model = "gpt-4o", max_tokens = 5 }, {})
            assert.equal(401, r.resp.status)
            assert.equal("authentication_error", h.body(r).error.type)
        end)

        it("accepts x-api-key on the Messages paths only", function()
            local body = { model = "gpt-4o", max_tokens = 5, messages = { { role = "user",
                content = "x" } } }
            assert.is_table(send("/v1/messages", body, { ["x-api-key"] = "k1" }).upstream)
            local r = send("/v1/chat/completions", { model = "gpt-4o", messages = body.messages },
                { ["x-api-key"] = "k1" })
            assert.equal(401, r.resp.status)
            assert.equal("unauthorized", h.body(r).error.code)
        end)

        it("count_tokens answers the prompt count of the chat rule", function()
            local r = send("/v1/messages/count_tokens", { model = "gpt-4o",
                messages = { { role = "user", content = "hello" } } })
            assert.equal(200, r.resp.status)
            -- 3 + (3 + #"hello" + #"user") with the length tokenizer
            assert.same({ input_tokens = 15 }, h.body(r))
        end)
    end)

    describe("OpenAI Responses", function()
        it("maps instructions, items, function calls and text.format", function()
            local r = send("/v1/responses", {
                model = "gpt-4o", instructions = "I", max_output_tokens = 20, stream = true,
                tools = { { type = "function", name = "f", parameters = { type = "object" } } },
                tool_choice = { type = "function", name = "f" },
                text = { format = { type = "json_schema", name = "s",
                    schema = { type = "object" } } },
                input = {
                    { role = "developer", content = "D" },
                    { role = "user", content = { { type = "input_text", text = "q" },
                        { type = "input_image", image_url = "https://x/y.png" } } },
                    { type = "function_call", call_id = "c1", name = "f", arguments = "{}" },
                    { type = "function_call", call_id = "c2", name = "f", arguments = "{}" },
                    { type = "function_call_output", call_id = "c1", output = "o1" },
                } })
            local b, u = sent(r)
            assert.equal("responses", u.ingress)
            assert.equal(20, b.max_tokens)
            assert.same({ type = "function", ["function"] = { name = "f" } }, b.tool_choice)
            assert.equal("json_schema", b.response_format.type)
            local m = b.messages
            assert.same({ role = "system", content = "I" }, m[1])
            assert.same({ role = "system", content = "D" }, m[2])
            assert.equal("https://x/y.png", m[3].content[2].image_url.url)
            assert.equal(2, #m[4].tool_calls) -- consecutive calls merged
            assert.same({ role = "tool", tool_call_id = "c1", content = "o1" }, m[5])
        end)

        it("echoes the request's parameters in the response object (r.upstream.fields)", function()
            local tools = { { type = "function", name = "f", description = "d", strict = true,
                parameters = { type = "object", properties = {}, required = {} } } }
            local fmt = { type = "json_schema", name = "s", strict = true,
                schema = { type = "object", properties = { a = { type = "string" } } } }
            local _, u = sent(send("/v1/responses", { model = "gpt-4o", input = "x",
                instructions = "I", max_output_tokens = 9, parallel_tool_calls = false,
                temperature = 0.5, top_p = 0.25, tools = tools, tool_choice = "required",
                text = { format = fmt }, metadata = { k = "v" }, user = "u1" }))
            local f = assert(cjson.decode("{" .. u.fields .. "}"))
            assert.same({ instructions = "I", max_output_tokens = 9, parallel_tool_calls = false,
                temperature = 0.5, top_p = 0.25, tools = tools, tool_choice = "required",
                text = { format = fmt }, metadata = { k = "v" }, user = "u1" }, f)
            assert.matches('"required":%[%]', u.fields) -- empty arrays stay arrays
            assert.matches('^"instructions":', u.fields) -- OpenAI's order
            -- absent: OpenAI's defaults
            _, u = sent(send("/v1/responses", { model = "gpt-4o", input = "x" }))
            assert.equal('"instructions":null,"max_output_tokens":null,'
                .. '"parallel_tool_calls":true,"temperature":1,"text":{"format":{"type":"text"}},'
                .. '"tool_choice":"auto","tools":[],"top_p":1,"metadata":{},"user":null',
                u.fields)
        end)

        it("a string input is one user message", function()
            local b = sent(send("/v1/responses", { model = "gpt-4o", input = "hi" }))
            assert.same({ { role = "user", content = "hi" } }, b.messages)
        end)

        it("refuses previous_response_id (stateless) and bad input, OpenAI-shaped", function()
            for _, c in ipairs({
                { { model = "gpt-4o", input = "x", previous_response_id = "r1" }, "stateless" },
                { { model = "gpt-4o" }, "input" },
                { { input = "x" }, "model" },
                { { model = "gpt-4o", input = "x", tools = { { type = "web_search" } } },
                    "function" },
                { { model = "gpt-4o", input = { { type = "reasoning" } } }, "unsupported" },
                { { model = "gpt-4o", input = "x", max_output_tokens = 0 }, "max_output_tokens" },
                { { model = "gpt-4o", input = "x", metadata = "m" }, "metadata must be an object" },
                { { model = "gpt-4o", input = "x", instructions = 1 }, "instructions must be" },
                { { model = "gpt-4o", input = "x", stream = "yes" }, "stream must be a boolean" },
            }) do
                local r = send("/v1/responses", c[1])
                assert.equal(400, r.resp.status)
                local b = h.body(r)
                assert.matches(c[2], b.error.message)
                assert.equal("invalid_request", b.error.code)
            end
        end)
    end)
end)
