-- pieces-gateway policy: OpenAI Responses ingress (route phase).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- POST {P}/responses: validates a Responses request and maps it onto an OpenAI chat request,
-- which the chat policy (:dispatch, enabled before this one) routes like any other. The answer
-- is written by src/ingress_responses.c (ingress "responses"). Mapping: instructions -> a first
-- system message; input (string) -> one user message; input items: message (role user |
-- assistant | system | developer -> system; content a string or input_text / output_text /
-- input_image parts), function_call (-> assistant tool_calls, consecutive calls merged),
-- function_call_output (-> a tool message); max_output_tokens -> max_tokens; temperature, top_p,
-- seed, parallel_tool_calls, user; tools (function tools only); tool_choice auto | none |
-- required | {type:"function",name}; text.format json_schema | json_object -> response_format.
-- Stateless: store is accepted, nothing stored (store:false); previous_response_id answers 400.
-- The answer echoes the request's parameters (:echo_fields). OpenAI errors. No config keys.

local _M = { name = "responses" }

local type, ipairs, pairs, next, tostring = type, ipairs, pairs, next, tostring
local format, sub, concat = string.format, string.sub, table.concat

function _M.new(_, host)
    return setmetatable({ host = host }, { __index = _M })
end

local function is_array(v)
    return type(v) == "table" and (v[1] ~= nil or next(v) == nil)
end

local ROLES = { user = "user", assistant = "assistant", system = "system", developer = "system" }
local TEXT_PARTS = { input_text = true, output_text = true, text = true, refusal = true }

local function map_content(c, where)
    if type(c) == "string" then
        return c
    end
    if not is_array(c) then
        return nil, where .. " must be a string or an array of content parts"
    end
    local parts, texts, has_image = {}, {}, false
    for j, p in ipairs(c) do
        local at = format("%s[%d]", where, j - 1)
        local t = type(p) == "table" and p.type
        if TEXT_PARTS[t] then
            local text = t == "refusal" and p.refusal or p.text
            if type(text) ~= "string" then
                return nil, at .. ".text must be a string"
            end
            parts[#parts + 1], texts[#texts + 1] = { type = "text", text = text }, text
        elseif t == "input_image" then
            if type(p.image_url) ~= "string" then
                return nil, at .. ".image_url must be a string (file_id is not supported)"
            end
            parts[#parts + 1] = { type = "image_url",
                image_url = { url = p.image_url, detail = p.detail } }
            has_image = true
        else
            return nil, format("%s: unsupported content part type '%s'", at, tostring(t))
        end
    end
    return has_image and parts or concat(texts)
end

-- input items -> chat messages appended to msgs; nil, message when invalid
local function map_items(input, msgs)
    local calls -- the assistant message collecting consecutive function_call items
    for i, it in ipairs(input) do
        local where = format("input[%d]", i - 1)
        local t = type(it) == "table" and (it.type or "message")
        if t == "function_call" then
            if type(it.call_id) ~= "string" or type(it.name) ~= "string"
                or type(it.arguments) ~= "string" then
                return nil, where .. ": function_call needs string call_id, name and arguments"
            end
            if not calls then
                calls = { role = "assistant", content = "", tool_calls = {} }
                msgs[#msgs + 1] = calls
            end
            calls.tool_calls[#calls.tool_calls + 1] = { id = it.call_id, type = "function",
                ["function"] = { name = it.name, arguments = it.arguments } }
        else
            calls = nil
            if t == "function_call_output" then
                if type(it.call_id) ~= "string" or type(it.output) ~= "string" then
                    return nil, where .. ": function_call_output needs string call_id and output"
                end
                msgs[#msgs + 1] = { role = "tool", tool_call_id = it.call_id, content = it.output }
            elseif t == "message" then
                local role = ROLES[it.role]
                if not role then
                    return nil, where .. ".role must be user, assistant, system or developer"
                end
                local content, err = map_content(it.content, where .. ".content")
                if not content then
                    return nil, err
                end
                msgs[#msgs + 1] = { role = role, content = content }
            else
                return nil, format("%s: unsupported input item type '%s'", where, tostring(t))
            end
        end
    end
    return true
end

local function map_tools(req, oai)
    if req.tools ~= nil then
        if not is_array(req.tools) then
            return "tools must be an array"
        end
        local tools = {}
        for i, t in ipairs(req.tools) do
            if type(t) ~= "table" or t.type ~= "function" or type(t.name) ~= "string" then
                return format("tools[%d]: only function tools with a name are supported", i - 1)
            end
            tools[i] = { type = "function", ["function"] = { name = t.name,
                description = t.description, parameters = t.parameters, strict = t.strict } }
        end
        oai.tools = #tools > 0 and tools or nil
    end
    local tc = req.tool_choice
    if tc == "auto" or tc == "none" or tc == "required" then
        oai.tool_choice = tc
    elseif type(tc) == "table" and tc.type == "function" and type(tc.name) == "string" then
        oai.tool_choice = { type = "function", ["function"] = { name = tc.name } }
    elseif tc ~= nil then
        return "tool_choice must be auto, none, required or {type:\"function\",name}"
    end
    return nil
end

local function map_text(req, oai)
    local f = type(req.text) == "table" and req.text.format
    if f == nil or f == false then
        return nil
    end
    if type(f) ~= "table" then
        return "text.format must be an object"
    end
    if f.type == "json_schema" then
        if type(f.schema) ~= "table" then
            return "text.format.schema must be an object"
        end
        oai.response_format = { type = "json_schema", json_schema = { name = f.name or "schema",
            schema = f.schema, strict = f.strict, description = f.description } }
    elseif f.type == "json_object" then
        oai.response_format = { type = "json_object" }
    elseif f.type ~= "text" then
        return "text.format.type must be text, json_object or json_schema"
    end
end

local function map_params(req, oai)
    local mt = req.max_output_tokens
    if mt ~= nil and (type(mt) ~= "number" or mt < 1 or mt % 1 ~= 0) then
        return "max_output_tokens must be an integer >= 1"
    end
    oai.max_tokens = mt
    for _, k in ipairs({ "temperature", "top_p", "seed" }) do
        if req[k] ~= nil and type(req[k]) ~= "number" then
            return k .. " must be a number"
        end
        oai[k] = req[k]
    end
    oai.stream = req.stream -- chat:dispatch checks it
    for k, t in pairs({ parallel_tool_calls = "boolean", user = "string" }) do
        if type(req[k]) == t then oai[k] = req[k] end
    end
    return map_tools(req, oai) or map_text(req, oai)
end

-- The OpenAI chat request for a Responses one; nil, message, param when it is invalid.
function _M:map(req)
    local null = self.host.json.null
    if req.previous_response_id ~= nil and req.previous_response_id ~= null then
        return nil, "previous_response_id is not supported: this gateway is stateless and "
            .. "stores no responses; send the whole conversation in input", "previous_response_id"
    end
    if type(req.model) ~= "string" or req.model == "" then
        return nil, "Missing required parameter: 'model'.", "model"
    end
    for k, t in pairs({ instructions = "string", metadata = "table" }) do
        if req[k] ~= nil and req[k] ~= null and type(req[k]) ~= t then
            return nil, format("%s must be %s", k, t == "table" and "an object" or "a string"), k
        end
    end
    local msgs = { type(req.instructions) == "string"
        and { role = "system", content = req.instructions } or nil }
    if type(req.input) == "string" then
        msgs[#msgs + 1] = { role = "user", content = req.input }
    elseif is_array(req.input) and #req.input > 0 then
        local ok, err = map_items(req.input, msgs)
        if not ok then
            return nil, err, "input"
        end
    else
        return nil, "Missing required parameter: 'input' (a string or a non-empty array).",
            "input"
    end
    local oai = { model = req.model, messages = msgs }
    local err = map_params(req, oai)
    if err then
        return nil, err
    end
    return oai
end

-- The request parameters the response object echoes, in order, with OpenAI's defaults (null
-- for the others).
local ECHO = { "instructions", "max_output_tokens", "parallel_tool_calls", "temperature", "text",
    "tool_choice", "tools", "top_p", "metadata", "user", parallel_tool_calls = true,
    temperature = 1, tool_choice = "auto", top_p = 1, tools = {}, metadata = {} }
-- ECHO as JSON object members for src/ingress_responses.c (r.upstream.fields). Completes req.text.
function _M.echo_fields(req, json)
    local null, out, text = json.null, {}, type(req.text) == "table" and req.text or {}
    text.format = (text.format == nil or text.format == null) and { type = "text" } or text.format
    for i, k in ipairs(ECHO) do
        local v = k == "text" and text or req[k]
        v = (v == nil or v == null) and (ECHO[k] or null) or v
        out[i] = sub(json.encode_body({ [k] = v }), 2, -2)
    end
    return concat(out, ",")
end

function _M:route(r)
    if r.ctx.ingress ~= "responses" then
        return
    end
    local host = self.host
    local chat = host.policy("chat")
    if not chat then
        return r.resp:error(500, "internal_error", "responses needs the chat policy")
    end
    local req = chat.decode_body(r, host.json)
    if not req then
        return
    end
    local oai, err = self:map(req)
    if not oai then
        return r.resp:error(400, "invalid_request", err, "invalid_request_error")
    end
    chat:dispatch(r, oai, "responses", host.json.encode_body(oai))
    if r.upstream then
        r.upstream.fields = _M.echo_fields(req, host.json)
    end
end

return _M
