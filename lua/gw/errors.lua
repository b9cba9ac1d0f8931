-- pieces-gateway: the ingress formats of the API paths and their error envelopes.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Which client API a path speaks ("chat", "messages" for Anthropic Messages, "responses" for
-- OpenAI Responses) decides the shape of every error answered on it, whichever policy raises
-- it (auth, ip_rules, rate_limit, the format's own validation): r.resp:error(status, code,
-- message, type) renders through body() here. The C side renders the same shapes for the
-- engine's errors (src/ingress_anthropic.c, gw_ingress_t.error_body).
--   chat, responses: {"error":{"message","type","code"}} (OpenAI)
--   messages:        {"type":"error","error":{"type":<by status>,"message"}} (Anthropic)
local cjson = require "cjson.safe"

local format = string.format
local encode = cjson.encode

local _M = {}

-- Anthropic's error type for an HTTP status (their documented list).
local ANTHROPIC = {
    [400] = "invalid_request_error", [401] = "authentication_error",
    [403] = "permission_error", [404] = "not_found_error", [413] = "request_too_large",
    [429] = "rate_limit_error", [500] = "api_error", [503] = "overloaded_error",
    [529] = "overloaded_error",
}

function _M.anthropic_type(status)
    return ANTHROPIC[status] or (status < 500 and "invalid_request_error" or "api_error")
end

-- The path -> format table for an API prefix (the POST paths that have a route phase).
function _M.paths(prefix)
    return {
        [prefix .. "/chat/completions"] = "chat",
        [prefix .. "/tokenize"] = "chat",
        [prefix .. "/messages"] = "messages",
        [prefix .. "/messages/count_tokens"] = "messages",
        [prefix .. "/responses"] = "responses",
    }
end

-- The JSON error body of `fmt` (nil/unknown: OpenAI's).
function _M.body(fmt, status, code, message, etype)
    if fmt == "messages" then
        return format('{"type":"error","error":{"type":%s,"message":%s}}',
            encode(_M.anthropic_type(status)), encode(message or ""))
    end
    return format('{"error":{"message":%s,"type":%s,"code":%s}}',
        encode(message or ""), encode(etype or "error"), encode(code or ""))
end

return _M
