-- pieces-gateway policy: chat completions (route phase).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- For POST {P}/chat/completions: decodes and validates the body, resolves the model through
-- the catalog (policy "models"; claude -YYYYMMDD accepted; the model of a model route when the
-- body names none or an unknown one; DEFAULT_MODEL; else 404 model_not_found) and hands the C
-- core one target per backend that serves the model, in the catalog's backend order, through
-- r.upstream (docs/policy-api.md). Policies after it in the route phase may reorder or drop
-- targets (policies/router.lua does: overrides and circuit breakers).
-- Targets: a "pieces" backend gets the Pieces prompt shape (policies/pieces.lua); an "openai"
-- backend gets the client's body as it came (the C backend sets model and stream options) and
-- the prompt count of OpenAI's rule: sum(3 + tokens(content) + tokens(role) [+ 1 +
-- tokens(name)]) + 3 in the model's encoding.
-- POST {P}/tokenize is answered by policies/tokenize.lua with this policy's helpers.
-- Every string of the body must be valid UTF-8 without lone surrogate escapes (host.json's text
-- rule; 400 invalid_request naming the field). A prompt over the model's input limit (the
-- catalog's max_tokens.input) answers 400 context_length_exceeded before dispatch.
--
-- Config:
--   temperature, top_p (env GPT_DEFAULT_TEMPERATURE, GPT_DEFAULT_TOP_P; default unset): sent
--     to the Pieces GPT service when the client gives none (the original sent nothing).

local _M = { name = "chat" }

local type, ipairs, next, tostring = type, ipairs, next, tostring
local concat, format, find = table.concat, string.format, string.find
local has_new_tab, new_tab = pcall(require, "table.new") -- LuaJIT 2.1: sized at creation
new_tab = has_new_tab and new_tab or function() return {} end

local CONTEXT = "This model's maximum context length is %d tokens. However, your messages "
    .. "resulted in %d tokens. Please reduce the length of the messages."

function _M.new(conf, host)
    for _, k in ipairs({ "temperature", "top_p" }) do
        if conf[k] ~= nil and type(conf[k]) ~= "number" then
            return nil, k .. " must be a number"
        end
    end
    return setmetatable({ conf = conf, host = host }, { __index = _M })
end

local function bad(r, msg)
    r.resp:error(400, "invalid_request", msg)
    return nil
end

-- content: string, null/absent, or an array (not an object) of parts whose texts are joined
local function flatten(r, content, i, null)
    if content == nil or content == null then
        return ""
    end
    if type(content) == "string" then
        return content
    end
    local where = format("messages[%d].content", i - 1)
    if type(content) ~= "table" or (content[1] == nil and next(content) ~= nil) then
        return bad(r, where .. " must be a string, null or an array of content parts")
    end
    local out = {}
    for j, part in ipairs(content) do
        if type(part) ~= "table" then
            return bad(r, format("%s[%d] must be an object", where, j))
        end
        local text = part.text
        if text ~= nil and text ~= null and type(text) ~= "string" then
            return bad(r, format("%s[%d].text must be a string", where, j))
        end
        if type(text) == "string" and text ~= "" then
            out[#out + 1] = text
        end
    end
    return concat(out)
end

local function check_messages(r, list, null)
    if type(list) ~= "table" or #list == 0 then
        return bad(r, "messages must be a non-empty array")
    end
    local out = new_tab(#list, 0)
    for i = 1, #list do -- (numeric: a loop of one or two turns is then compiled inline)
        local m = list[i]
        local why = type(m) ~= "table" and " must be an object" or type(m.role) ~= "string"
            and ".role must be a string" or m.name ~= nil and m.name ~= null
            and type(m.name) ~= "string" and ".name must be a string" -- (names: errors only)
        if why then
            return bad(r, format("messages[%d]", i - 1) .. why)
        end
        local content = flatten(r, m.content, i, null)
        if not content then
            return nil
        end
        local name = type(m.name) == "string" and m.name ~= "" and m.name
        out[i] = { role = m.role, content = content, name = name }
    end
    return out
end

-- OpenAI's prompt rule (also the Pieces GPT one) in an encoding
local function openai_prompt(count, encoding, msgs)
    local n = 3
    for i = 1, #msgs do
        local m = msgs[i]
        n = n + 3 + count(encoding, m.content) + count(encoding, m.role)
        if m.name then
            n = n + 1 + count(encoding, m.name)
        end
    end
    return n
end

-- The prompt tokens the answer reports (the first backend's rule).
function _M:prompt_tokens(entry, msgs)
    local first = entry.backends and entry.backends[1]
    local pieces = self.host.policy("pieces")
    if (not first or first.type == "pieces") and pieces then
        return pieces:prompt_tokens(entry, msgs)
    end
    return openai_prompt(self.host.tokens, entry.encoding, msgs)
end

-- One target per backend of the entry (nil and a message when a needed policy is missing).
function _M:targets(entry, msgs, sampling)
    local list, pieces = entry.backends or {}, self.host.policy("pieces")
    local out = new_tab(#list, 0)
    for i = 1, #list do
        local b = list[i]
        if b.type == "pieces" then
            if not pieces then
                return nil, "policy 'pieces' is not loaded"
            end
            out[#out + 1] = pieces:target(b.backend, entry, msgs, sampling)
        else
            out[#out + 1] = { backend = b.backend, model = b.model, encoding = entry.encoding,
                prompt_tokens = openai_prompt(self.host.tokens, entry.encoding, msgs) }
        end
    end
    return out
end

local function decode_body(r, json)
    local body = r.req:body()
    if body == "" then
        return bad(r, "Request body is empty")
    end
    local req, err, field = json.decode(body)
    if req == nil then
        -- field: a string breaks the text rule (invalid UTF-8 or a lone surrogate escape)
        return bad(r, field and err or "Invalid JSON body: " .. tostring(err))
    end
    if type(req) ~= "table" then
        return bad(r, "Request body must be a JSON object")
    end
    if req.model ~= nil and req.model ~= json.null and type(req.model) ~= "string" then
        return bad(r, "model must be a string")
    end
    return req
end

local function model_not_found(r, name)
    name = type(name) == "string" and name or "" -- missing/null: "Model '' does not exist"
    r.resp:error(404, "model_not_found", format("Model '%s' does not exist", name))
end

local function number_or_nil(r, req, key, null)
    local v = req[key]
    if v == nil or v == null then
        return true, nil
    end
    if type(v) ~= "number" then
        return bad(r, key .. " must be a number")
    end
    return true, v
end

function _M:route(r)
    if r.ctx.ingress ~= "chat" or find(r.req.path, "/tokenize", -9, true) then -- (no substring)
        return -- policies/tokenize.lua; the other formats call :dispatch themselves
    end
    local req = decode_body(r, self.host.json)
    return req and self:dispatch(r, req) or nil
end

-- Validates an OpenAI chat request (a decoded body) and sets r.upstream. Other ingress formats
-- (policies/messages.lua, policies/responses.lua) map their request onto one and pass
-- `ingress` (the answer format) and `body` (that request encoded: what HTTP backends get).
function _M:dispatch(r, req, ingress, body)
    local null = self.host.json.null
    local catalog = self.host.policy("models")
    r.ctx.model = type(req.model) == "string" and req.model or r.ctx.route_model
    local msgs = check_messages(r, req.messages, null)
    if not msgs then
        return
    end
    if req.stream ~= nil and req.stream ~= null and type(req.stream) ~= "boolean" then
        return bad(r, "stream must be a boolean")
    end
    local ok1, temperature = number_or_nil(r, req, "temperature", null)
    if not ok1 then
        return
    end
    local ok2, top_p = number_or_nil(r, req, "top_p", null)
    if not ok2 then
        return
    end
    local so = req.stream_options
    if so ~= nil and so ~= null and type(so) ~= "table" then
        return bad(r, "stream_options must be an object")
    end
    -- the body's valid model wins over a model route's; then DEFAULT_MODEL
    local echo = type(req.model) == "string" and req.model or nil
    local entry = catalog:resolve(echo)
    if not entry and r.ctx.route_model then
        entry = catalog:resolve(r.ctx.route_model)
        echo = r.ctx.route_model
    end
    if not entry then
        entry = catalog:default_model()
        if not entry then
            return model_not_found(r, echo)
        end
        echo = echo or entry.id
    end
    r.ctx.model = echo
    local targets, err = self:targets(entry, msgs, {
        temperature = temperature or self.conf.temperature, top_p = top_p or self.conf.top_p })
    if not targets then
        return r.resp:error(500, "internal_error", err)
    end
    -- the first target's count is the one the answer reports
    local prompt = targets[1] and targets[1].prompt_tokens or 0
    local limit = entry.max_tokens and entry.max_tokens.input
    if limit and prompt > limit then -- OpenAI's answer; the upstream never sees the request
        return r.resp:error(400, "context_length_exceeded", format(CONTEXT, limit, prompt),
            "invalid_request_error")
    end
    r.upstream = {
        echo_model = echo, ingress = ingress or "chat", stream = req.stream == true, body = body,
        include_usage = type(so) == "table" and so.include_usage == true,
        targets = targets,
    }
end

-- shared with policies/tokenize.lua
_M.decode_body, _M.check_messages, _M.model_not_found = decode_body, check_messages, model_not_found
_M.bad, _M.number_or_nil = bad, number_or_nil

return _M
