-- pieces-gateway policy: the model catalog.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- The 14 models of the original service, in its file order, with the upstream service each
-- one is served by and the tokenizer encoding used for `usage`, served by every backend of
-- type "pieces"; plus the models each backend of type "openai" lists in its `models` (public
-- name and the upstream's name). The catalog is in backend order (gateway.lua backend_order),
-- each backend's models in its own order, a public name once; GET {P}/models is rendered from
-- it once per load. An entry's `backends` lists who serves it, in backend order:
--   { backend = name, type = "pieces"|"openai", model = upstream name }
--
-- Other policies use the instance through host.policy("models"):
--   :ids()            array of model ids, in catalog order
--   :resolve(name)    the entry for a model id (claude "-YYYYMMDD" accepted for "@YYYYMMDD"),
--                     or nil
--   :default_model()  the DEFAULT_MODEL entry, or nil
--
-- Config:
--   default_model (env DEFAULT_MODEL, default ""): used when a request names an unknown
--     model. Must be a catalog model (the claude dash form is accepted); otherwise a warning
--     is logged and it is cleared, as the original did.

local _M = { name = "models" }

-- id, owned_by, created, details.name, total/input/output, service, encoding
local MODELS = {
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

-- tiktoken's model table: o200k for the gpt-4o family, cl100k for the other GPT models;
-- every Vertex model is counted with the Claude vocabulary, as the original did.
local function encoding_for(id)
    if id:sub(1, 4) ~= "gpt-" then
        return "claude"
    end
    if id == "gpt-4o" or id:sub(1, 7) == "gpt-4o-" then
        return "o200k_base"
    end
    return "cl100k_base"
end

-- claude-x-YYYYMMDD -> claude-x@YYYYMMDD
function _M.normalize(name)
    if type(name) ~= "string" then
        return name
    end
    if name:sub(1, 7) == "claude-" and not name:find("@", 1, true) then
        local base, date = name:match("^(.*)%-(%d%d%d%d%d%d%d%d)$")
        if base then
            return base .. "@" .. date
        end
    end
    return name
end

-- An OpenAI-compatible model's tokenizer when the config names none: tiktoken's choice for
-- OpenAI's names (o200k for the gpt-4o/4.1/5 and o-series, cl100k for gpt-4 and 3.5), the
-- Claude vocabulary for claude names, o200k otherwise.
local function encoding_for_openai(id)
    local base = id:match("([^/]+)$") or id
    if base:sub(1, 7) == "claude-" then
        return "claude"
    end
    if base:match("^gpt%-4%-") or base == "gpt-4" or base:match("^gpt%-3%.5") then
        return "cl100k_base"
    end
    return "o200k_base"
end

local function add_backend(entry, b, model)
    entry.backends[#entry.backends + 1] = { backend = b.name, type = b.type, model = model }
end

local function add_entry(self, entry, json)
    self.by_id[entry.id] = entry
    self.list[#self.list + 1] = entry
    self.data[#self.data + 1] = json
end

local function add_pieces(self, b, q)
    for _, m in ipairs(MODELS) do
        local entry = self.by_id[m[1]]
        if not entry then
            entry = {
                id = m[1], owned_by = m[2], created = m[3], name = m[4],
                max_tokens = { total = m[5], input = m[6], output = m[7] },
                service = m[1]:sub(1, 4) == "gpt-" and "gpt" or "vertex",
                encoding = encoding_for(m[1]), backends = {},
            }
            -- written by hand so the key order is the same in every worker and every run
            add_entry(self, entry, string.format('{"id":%s,"object":"model","created":%d,'
                .. '"owned_by":%s,"details":{"name":%s,"max_tokens":{"total":%d,"input":%d,'
                .. '"output":%d}}}', q(entry.id), entry.created, q(entry.owned_by),
                q(entry.name), m[5], m[6], m[7]))
        end
        entry.service = entry.service or (m[1]:sub(1, 4) == "gpt-" and "gpt" or "vertex")
        add_backend(entry, b, m[1])
    end
end

local function add_openai(self, b, q)
    for _, m in ipairs(b.models or {}) do
        local entry = self.by_id[m.id]
        if not entry then
            entry = { id = m.id, owned_by = b.name, created = 0, name = m.id,
                encoding = m.encoding or encoding_for_openai(m.id), backends = {} }
            add_entry(self, entry, string.format('{"id":%s,"object":"model","created":0,'
                .. '"owned_by":%s}', q(entry.id), q(b.name)))
        end
        add_backend(entry, b, m.model)
    end
end

function _M.new(conf, host)
    local self = setmetatable({ by_id = {}, list = {}, data = {}, default = nil },
        { __index = _M })
    local q = host.json.encode
    local backends = host.config.backend_list or { { name = "pieces", type = "pieces" } }
    for _, b in ipairs(backends) do
        if b.type == "pieces" then
            add_pieces(self, b, q)
        elseif b.type == "openai" then
            add_openai(self, b, q)
        end
    end
    self.json = '{"object":"list","data":[' .. table.concat(self.data, ",") .. "]}"
    self.data = nil
    local dm = conf.default_model or ""
    if dm ~= "" then
        self.default = self:resolve(dm)
        if not self.default then
            host.log.warn("Warning: DEFAULT_MODEL '%s' is not supported, setting to empty", dm)
        end
    end
    return self
end

function _M:ids()
    local out = {}
    for i, e in ipairs(self.list) do
        out[i] = e.id
    end
    return out
end

function _M:resolve(name)
    if type(name) ~= "string" then
        return nil
    end
    return self.by_id[name] or self.by_id[_M.normalize(name)]
end

function _M:default_model()
    return self.default
end

-- The GET {P}/models body, served by the C core.
function _M:list_json()
    return self.json
end

return _M
