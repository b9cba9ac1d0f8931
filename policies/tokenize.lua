-- pieces-gateway policy: POST {P}/tokenize (route phase).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Lets clients check the cost of a request before they make it:
--   {"model", "messages"} -> the prompt tokens the chat completion would report
--   {"model", "input"}    -> the plain token count of the text
-- answered with {"model", "encoding", "tokens"}. Unknown model -> 404 model_not_found (no
-- DEFAULT_MODEL substitution: the client asks about a named model); bad body -> 400
-- invalid_request. Uses the validation and prompt rules of the chat policy, which must be
-- enabled before it. No config keys.

local _M = { name = "tokenize" }
local find = string.find

function _M.new(_, host)
    return setmetatable({ host = host }, { __index = _M })
end

function _M:route(r)
    if not find(r.req.path, "/tokenize", -9, true) then -- (the path ends so; no substring made)
        return
    end
    local host = self.host
    local chat, catalog = host.policy("chat"), host.policy("models")
    if not chat or not catalog then
        return r.resp:error(500, "internal_error", "tokenize needs the chat and models policies")
    end
    local null = host.json.null
    local req = chat.decode_body(r, host.json)
    if not req then
        return
    end
    r.ctx.model = type(req.model) == "string" and req.model or nil
    local entry = catalog:resolve(req.model)
    if not entry then
        return chat.model_not_found(r, req.model)
    end
    local n
    if req.input ~= nil then
        if type(req.input) ~= "string" then
            return chat.bad(r, "input must be a string")
        end
        n = host.tokens(entry.encoding, req.input)
    else
        local msgs = chat.check_messages(r, req.messages, null)
        if not msgs then
            return
        end
        n = chat:prompt_tokens(entry, msgs)
    end
    r.resp:exit(200, { model = req.model, encoding = entry.encoding, tokens = n })
end

return _M
