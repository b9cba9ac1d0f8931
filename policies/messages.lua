-- pieces-gateway policy: Anthropic Messages ingress (route phase).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- POST {P}/messages: validates an Anthropic Messages request and maps it onto an OpenAI chat
-- request that the chat policy (:dispatch; enabled before this one) routes like any other;
-- src/ingress_anthropic.c writes the answer (ingress "messages"). Mapping: system (string or
-- text blocks) -> a first system message; text blocks -> content (parts with an image); image
-- {source: base64 | url} -> image_url; assistant tool_use -> tool_calls; user tool_result -> a
-- tool message before the user's text; max_tokens (required); temperature, top_p, top_k as
-- they are; tools -> function tools; tool_choice auto | any (required) | tool | none;
-- metadata.user_id -> user; stream. stop_sequences (at most 16 of 1..256 bytes) go to the
-- engine, not the upstream (r.upstream.stop_sequences: the text ends before the first one,
-- stop_reason "stop_sequence", on every backend; upstreams would not say which one matched).
-- POST {P}/messages/count_tokens: {"input_tokens": N}, the prompt count the answer would report.
-- Errors come out in Anthropic's shape (lua/gw/errors.lua: the path's format). No config keys.
local _M = { name = "messages" }

local type, ipairs, next, tostring, format = type, ipairs, next, tostring, string.format
local concat = table.concat

function _M.new(_, host)
    return setmetatable({ host = host }, { __index = _M })
end

local function is_array(v)
    return type(v) == "table" and (v[1] ~= nil or next(v) == nil)
end

local function text_of(v, null)
    if type(v) == "string" or v == nil or v == null then
        return type(v) == "string" and v or ""
    elseif not is_array(v) then
        return nil
    end
    local out = {}
    for _, b in ipairs(v) do
        if type(b) ~= "table" or type(b.text) ~= "string" then
            return nil
        end
        out[#out + 1] = b.text
    end
    return concat(out)
end

local function image_part(b)
    local s = type(b.source) == "table" and b.source or {}
    if s.type == "base64" and type(s.data) == "string" and type(s.media_type) == "string" then
        return { type = "image_url",
            image_url = { url = "data:" .. s.media_type .. ";base64," .. s.data } }
    elseif s.type == "url" and type(s.url) == "string" then
        return { type = "image_url", image_url = { url = s.url } }
    end
    return nil
end

-- One Anthropic message -> OpenAI messages appended to out; nil, error message when invalid.
local function map_message(m, where, out, json)
    if type(m) ~= "table" or (m.role ~= "user" and m.role ~= "assistant") then
        return nil, where .. ".role must be \"user\" or \"assistant\""
    end
    if type(m.content) == "string" then
        out[#out + 1] = { role = m.role, content = m.content }
        return true
    end
    if not is_array(m.content) then
        return nil, where .. ".content must be a string or an array of content blocks"
    end
    local parts, texts, calls, has_image = {}, {}, {}, false
    for j, b in ipairs(m.content) do
        local at = format("%s.content[%d]", where, j - 1)
        local t = type(b) == "table" and b.type
        if t == "text" and type(b.text) == "string" then
            parts[#parts + 1], texts[#texts + 1] = { type = "text", text = b.text }, b.text
        elseif t == "image" and m.role == "user" then
            local p = image_part(b)
            if not p then
                return nil, at .. ".source must be {type:\"base64\",media_type,data}"
                    .. " or {type:\"url\",url}"
            end
            parts[#parts + 1], has_image = p, true
        elseif t == "tool_use" and m.role == "assistant" then
            if type(b.id) ~= "string" or type(b.name) ~= "string" then
                return nil, at .. ": tool_use needs a string id and name"
            end
            calls[#calls + 1] = { id = b.id, type = "function",
                ["function"] = { name = b.name, arguments = json.encode_body(b.input or {}) } }
        elseif t == "tool_result" and m.role == "user" then
            local text = text_of(b.content, json.null)
            if type(b.tool_use_id) ~= "string" or not text then
                return nil, at .. ": tool_result needs a string tool_use_id and text content"
            end
            out[#out + 1] = { role = "tool", tool_call_id = b.tool_use_id, content = text }
        elseif t ~= "thinking" and t ~= "redacted_thinking" then
            return nil, format("%s: unsupported content block type '%s' for role %s", at,
                tostring(t), m.role)
        end
    end
    if #calls > 0 then
        out[#out + 1] = { role = "assistant", content = concat(texts), tool_calls = calls }
    elseif #parts > 0 then
        out[#out + 1] = { role = m.role, content = has_image and parts or concat(texts) }
    end
    return true
end

local MAX_STOPS, MAX_STOP_LEN = 16, 256 -- src/chat_stop.h's bounds
local TOOL_CHOICE = { auto = "auto", any = "required", none = "none" }

local function map_tools(req, oai)
    if req.tools ~= nil then
        if not is_array(req.tools) then
            return "tools must be an array"
        end
        local tools = {}
        for i, t in ipairs(req.tools) do
            if type(t) ~= "table" or type(t.name) ~= "string"
                or (t.type ~= nil and t.type ~= "custom") then
                return format("tools[%d] must be a custom tool with a name and input_schema", i - 1)
            end
            tools[i] = { type = "function", ["function"] = { name = t.name,
                description = t.description, parameters = t.input_schema or { type = "object" } } }
        end
        oai.tools = #tools > 0 and tools or nil
    end
    local tc = req.tool_choice
    if tc ~= nil then
        if type(tc) ~= "table" or not (TOOL_CHOICE[tc.type] or tc.type == "tool") then
            return "tool_choice.type must be one of auto, any, tool, none"
        end
        if tc.type == "tool" and type(tc.name) ~= "string" then
            return "tool_choice.name must be a string"
        end
        oai.tool_choice = TOOL_CHOICE[tc.type]
            or { type = "function", ["function"] = { name = tc.name } }
        if tc.disable_parallel_tool_use == true and oai.tools then
            oai.parallel_tool_calls = false
        end
    end
    return nil
end

local function map_params(req, oai, counting)
    local mt = req.max_tokens
    if not counting and (type(mt) ~= "number" or mt < 1 or mt % 1 ~= 0) then
        return "max_tokens: Field required (an integer >= 1)"
    end
    oai.max_tokens = not counting and mt or nil
    for _, k in ipairs({ "temperature", "top_p", "top_k" }) do
        if req[k] ~= nil and type(req[k]) ~= "number" then
            return k .. " must be a number"
        end
        oai[k] = req[k]
    end
    local stops = req.stop_sequences
    if stops ~= nil and not (is_array(stops) and #stops <= MAX_STOPS) then
        return format("stop_sequences must be an array of at most %d strings", MAX_STOPS)
    end
    for i, s in ipairs(stops or {}) do
        if type(s) ~= "string" or s == "" or #s > MAX_STOP_LEN then
            return format("stop_sequences[%d] must be a string of 1 to %d bytes", i - 1,
                MAX_STOP_LEN)
        end
    end
    if req.stream ~= nil and type(req.stream) ~= "boolean" then
        return "stream must be a boolean"
    end
    oai.stream = req.stream == true or nil
    local md = req.metadata
    if md ~= nil and type(md) ~= "table" then
        return "metadata must be an object"
    end
    oai.user = type(md) == "table" and type(md.user_id) == "string" and md.user_id or nil
    return map_tools(req, oai)
end

-- The OpenAI chat request for an Anthropic one; nil, message when it is invalid.
function _M:map(req, counting)
    local json = self.host.json
    if type(req.model) ~= "string" or req.model == "" then
        return nil, "model: Field required (a string)"
    end
    if not is_array(req.messages) or #req.messages == 0 then
        return nil, "messages: Field required (a non-empty array)"
    end
    local msgs = {}
    if req.system ~= nil then
        local s = text_of(req.system, json.null)
        if not s then
            return nil, "system must be a string or an array of text blocks"
        end
        msgs[1] = s ~= "" and { role = "system", content = s } or nil
    end
    for i, m in ipairs(req.messages) do
        local ok, err = map_message(m, format("messages[%d]", i - 1), msgs, json)
        if not ok then
            return nil, err
        end
    end
    local oai = { model = req.model, messages = msgs }
    local err = map_params(req, oai, counting)
    return not err and oai or nil, err
end

function _M:route(r)
    if r.ctx.ingress ~= "messages" then
        return
    end
    local host = self.host
    local chat = host.policy("chat")
    if not chat then
        return r.resp:error(500, "internal_error", "messages needs the chat policy")
    end
    local req = chat.decode_body(r, host.json)
    if not req then
        return
    end
    local counting = r.req.path:sub(-13) == "/count_tokens"
    local oai, err = self:map(req, counting)
    if not oai then
        return chat.bad(r, err)
    end
    if counting then
        return self:count(r, chat, oai)
    end
    chat:dispatch(r, oai, "messages", host.json.encode_body(oai))
    if r.upstream and req.stop_sequences and #req.stop_sequences > 0 then -- checked by map
        r.upstream.stop_sequences = req.stop_sequences
    end
end

function _M:count(r, chat, oai)
    local entry = self.host.policy("models"):resolve(oai.model)
    r.ctx.model = oai.model
    if not entry then
        return chat.model_not_found(r, oai.model)
    end
    local msgs = chat.check_messages(r, oai.messages, self.host.json.null)
    if msgs then
        r.resp:exit(200, { input_tokens = chat:prompt_tokens(entry, msgs) })
    end
end

return _M
