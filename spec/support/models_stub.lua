-- A stub of the `models` policy interface used by other policies' specs:
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
-- `:ids()` (the 14 catalog ids, in file order) and `:resolve(name)` -> entry | nil, with the
-- claude `-YYYYMMDD` -> `@YYYYMMDD` normalisation.
local IDS = {
    "chat-bison", "gpt-4o-mini", "gemini-1.5-pro", "gpt-4o", "codechat-bison",
    "claude-3-sonnet@20240229", "gemini-pro", "claude-3-opus@20240229", "gpt-4-turbo",
    "gemini-1.5-flash", "claude-3-5-sonnet@20240620", "claude-3-haiku@20240307",
    "gpt-3.5-turbo", "gpt-4",
}

local _M = {}

function _M.new()
    local by_id = {}
    for _, id in ipairs(IDS) do
        by_id[id] = { id = id }
    end
    local m = {}
    function m.ids()
        local out = {}
        for i, id in ipairs(IDS) do
            out[i] = id
        end
        return out
    end
    function m.resolve(_, name)
        if type(name) ~= "string" then
            return nil
        end
        if name:sub(1, 7) == "claude-" and not name:find("@", 1, true) then
            local head, date = name:match("^(.*)%-(%d%d%d%d%d%d%d%d)$")
            if head then
                name = head .. "@" .. date
            end
        end
        return by_id[name]
    end
    return m
end

_M.IDS = IDS
return _M
