-- pieces-gateway policy: the Pieces backend's request shape (no phases; used by chat/tokenize).
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Builds the target a backend of type "pieces" gets for a validated chat request, in the
-- original service's prompt formats:
--   GPT:    {role 0: "system:<c>;\r\n"...} {role 1: "<role>:<c>;\r\n"...}  (parts kind 0, 1)
--   Vertex: consecutive same-role messages merged with "\n" (system messages in between do
--           not break a run); message = "<role>:<c>" joined by ";\r\n" plus ";\r\n" (part 0);
--           rules = "system:" .. systems joined by "\n" .. ";\r\n" (part 1)
-- Usage: GPT prompt = sum(3 + tokens(content) + tokens(role) [+ 1 + tokens(name) if name is a
-- non-empty string, as the original's Go check `Name != ""`]) + 3;
-- Vertex prompt = Claude tokens of "\n\nSystem:<s>" .. "\n\n<role>:<c>"... [.. "\n\nAssistant:"];
-- Vertex completions count 3 more tokens than their text.
--
-- Other policies use it through host.policy("pieces"):
--   :target(name, entry, msgs, sampling)  the target for backend `name` (sampling: temperature,
--                                         top_p, sent to GPT only)
--   :prompt_tokens(entry, msgs)           the prompt count above
-- No config keys.

local _M = { name = "pieces" }

local ipairs = ipairs
local concat = table.concat
local has_new_tab, new_tab = pcall(require, "table.new") -- LuaJIT 2.1: sized at creation
new_tab = has_new_tab and new_tab or function() return {} end

local GPT, VERTEX = 0, 1 -- the target's variant: GW_FFI_PIECES_GPT, _VERTEX (src/gw_ffi.h)

function _M.new(_, host)
    return setmetatable({ host = host }, { __index = _M })
end

local function gpt_parts(msgs)
    local sys, dlg = new_tab(#msgs, 0), new_tab(#msgs, 0)
    for i = 1, #msgs do -- (numeric: a loop of one or two turns is then compiled inline)
        local m = msgs[i]
        if m.role == "system" then
            sys[#sys + 1] = "system:" .. m.content .. ";\r\n"
        else
            dlg[#dlg + 1] = m.role .. ":" .. m.content .. ";\r\n"
        end
    end
    local out = new_tab(2, 0)
    if #sys > 0 then
        out[#out + 1] = { kind = 0, text = concat(sys) }
    end
    if #dlg > 0 then
        out[#out + 1] = { kind = 1, text = concat(dlg) }
    end
    return out
end

-- systems S and the merged dialog C of the Vertex format
local function vertex_split(msgs)
    local S, C = {}, {}
    for _, m in ipairs(msgs) do
        if m.role == "system" then
            S[#S + 1] = m.content
        elseif #C > 0 and C[#C].role == m.role then
            C[#C].content = C[#C].content .. "\n" .. m.content
        else
            C[#C + 1] = { role = m.role, content = m.content }
        end
    end
    return concat(S, "\n"), C
end

local function vertex_parts(msgs)
    local systems, C = vertex_split(msgs)
    local lines = {}
    for i, e in ipairs(C) do
        lines[i] = e.role .. ":" .. e.content
    end
    local message = #lines > 0 and concat(lines, ";\r\n") .. ";\r\n" or ""
    local rules = systems ~= "" and "system:" .. systems .. ";\r\n" or ""
    return { { kind = 0, text = message }, { kind = 1, text = rules } }
end

function _M:prompt_tokens(entry, msgs)
    local count = self.host.tokens
    if entry.service == "gpt" then
        local n = 3
        for i = 1, #msgs do
            local m = msgs[i]
            n = n + 3 + count(entry.encoding, m.content) + count(entry.encoding, m.role)
            if m.name then
                n = n + 1 + count(entry.encoding, m.name)
            end
        end
        return n
    end
    local systems, C = vertex_split(msgs)
    local text = {}
    if systems ~= "" then
        text[1] = "\n\nSystem:" .. systems
    end
    for _, e in ipairs(C) do
        text[#text + 1] = "\n\n" .. e.role .. ":" .. e.content
    end
    if #C > 0 and C[#C].role == "user" then
        text[#text + 1] = "\n\nAssistant:"
    end
    return count("claude", concat(text))
end

-- (one constructor with every field: adding keys to a made table rehashes it)
function _M:target(name, entry, msgs, sampling, prompt)
    local gpt = entry.service == "gpt"
    return {
        backend = name, model = entry.id, encoding = entry.encoding,
        prompt_tokens = prompt or self:prompt_tokens(entry, msgs),
        variant = gpt and GPT or VERTEX, completion_offset = gpt and 0 or 3,
        parts = gpt and gpt_parts(msgs) or vertex_parts(msgs),
        temperature = gpt and sampling.temperature or nil, top_p = gpt and sampling.top_p or nil,
    }
end

return _M
