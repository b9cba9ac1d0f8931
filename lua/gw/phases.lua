-- pieces-gateway: the request phases and which of them a policy instance has.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Shared by the real host (lua/gw/host.lua) and the fake host of the busted specs
-- (spec/support/fake_host.lua), so the two cannot disagree about what counts as a phase.
-- Pure Lua: no FFI, no globals, no I/O.

local type = type

local _M = {}

-- in the order the host runs them
_M.PHASES = { "rewrite", "access", "content", "route", "log" }

-- the bit of each phase in the mask the host reports to C (src/lua_host.h)
_M.BIT = { rewrite = 1, access = 2, content = 4, route = 8, log = 16 }

-- The function inst[phase] (own field or inherited through the metatable), or nil. Only a
-- function is a phase: a policy may keep e.g. `self.log = host.log` (a table) as a plain field.
function _M.fn(inst, phase)
    local f = inst[phase]
    if type(f) == "function" then
        return f
    end
    return nil
end

return _M
