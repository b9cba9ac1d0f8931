-- pieces-gateway: IP address helpers (`host.ip` of docs/policy-api.md), pure Lua.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- Provides: normalize, parse_cidr, set, subnet, client_ip.
-- Addresses are handled internally as binary strings: 4 bytes (IPv4) or 16 bytes (IPv6).
-- IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4 everywhere, so a v6 CIDR never matches a v4 client.
-- Strict parsing: no leading zeros in IPv4 octets or prefix lengths, no zone ids (`%eth0`), no
-- brackets, no ports, no surrounding blanks (client_ip trims header items itself).
-- Never: FFI, globals, I/O.

local bit = require "bit"

local band, lshift = bit.band, bit.lshift
local byte, char, sub, find, match, format, rep =
    string.byte, string.char, string.sub, string.find, string.match, string.format, string.rep
local concat, sort = table.concat, table.sort
local floor, tonumber, type, setmetatable = math.floor, tonumber, type, setmetatable

local _M = {}

local MAPPED_PREFIX = rep("\0", 10) .. "\255\255"

local function parse_v4(s)
    local a, b, c, d = match(s, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
    if not a then
        return nil
    end
    local t = { a, b, c, d }
    for i = 1, 4 do
        local p = t[i]
        if #p > 1 and byte(p, 1) == 48 then -- leading zero: ambiguous (octal), rejected
            return nil
        end
        local n = tonumber(p)
        if n > 255 then
            return nil
        end
        t[i] = n
    end
    return char(t[1], t[2], t[3], t[4])
end

-- Appends the 16-bit groups of `s` (colon-separated, possibly empty) to `out`; false on error.
local function parse_groups(s, out)
    if s == "" then
        return true
    end
    local pos = 1
    while true do
        local stop = find(s, ":", pos, true)
        local g = sub(s, pos, (stop or 0) - 1)
        if #g < 1 or #g > 4 or find(g, "%X") then
            return false
        end
        out[#out + 1] = tonumber(g, 16)
        if not stop then
            return true
        end
        pos = stop + 1
    end
end

-- Full 16-byte form of an IPv6 text, or nil (mapped addresses are not reduced here).
local function parse_v6(s)
    if #s < 2 or #s > 45 or find(s, "[^%x:%.]") then
        return nil
    end
    if find(s, ".", 1, true) then -- embedded IPv4 in the last 32 bits
        local last = #s - (find(s:reverse(), ":", 1, true) or 0) + 1
        if last > #s then
            return nil
        end
        local v4 = parse_v4(sub(s, last + 1))
        if not v4 then
            return nil
        end
        local b1, b2, b3, b4 = byte(v4, 1, 4)
        s = sub(s, 1, last) .. format("%x:%x", b1 * 256 + b2, b3 * 256 + b4)
    end
    local left, right = {}, {}
    local dc = find(s, "::", 1, true)
    if dc then
        if find(s, "::", dc + 1, true) then
            return nil
        end
        if not parse_groups(sub(s, 1, dc - 1), left)
            or not parse_groups(sub(s, dc + 2), right)
            or #left + #right > 7 then
            return nil
        end
    elseif not parse_groups(s, left) or #left ~= 8 then
        return nil
    end
    local out = {}
    for i = 1, #left do
        out[#out + 1] = char(floor(left[i] / 256), left[i] % 256)
    end
    out[#out + 1] = rep("\0\0", 8 - #left - #right)
    for i = 1, #right do
        out[#out + 1] = char(floor(right[i] / 256), right[i] % 256)
    end
    return concat(out)
end

-- Binary form: 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 bytes for IPv6; or nil.
local function to_bytes(text)
    if type(text) ~= "string" then
        return nil
    end
    if not find(text, ":", 1, true) then
        return parse_v4(text)
    end
    local b = parse_v6(text)
    if b and sub(b, 1, 12) == MAPPED_PREFIX then
        return sub(b, 13, 16)
    end
    return b
end

-- RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups as `::`.
local function format_v6(b)
    local g = {}
    for i = 1, 8 do
        local hi, lo = byte(b, 2 * i - 1, 2 * i)
        g[i] = hi * 256 + lo
    end
    local best, best_len, run, run_len = 0, 1, 0, 0
    for i = 1, 8 do
        if g[i] == 0 then
            if run_len == 0 then
                run = i
            end
            run_len = run_len + 1
            if run_len > best_len then
                best, best_len = run, run_len
            end
        else
            run_len = 0
        end
    end
    local parts = {}
    for i = 1, 8 do
        parts[i] = format("%x", g[i])
    end
    if best == 0 then
        return concat(parts, ":")
    end
    return concat(parts, ":", 1, best - 1) .. "::" .. concat(parts, ":", best + best_len, 8)
end

local function to_text(b)
    if #b == 4 then
        return format("%d.%d.%d.%d", byte(b, 1, 4))
    end
    return format_v6(b)
end

-- The first `plen` bits of `b`, the rest zeroed.
local function mask(b, plen)
    local full = floor(plen / 8)
    local bits = plen % 8
    if bits == 0 then
        return sub(b, 1, full) .. rep("\0", #b - full)
    end
    local partial = band(byte(b, full + 1), band(lshift(0xff, 8 - bits), 0xff))
    return sub(b, 1, full) .. char(partial) .. rep("\0", #b - full - 1)
end

_M.to_bytes = to_bytes
_M.to_text = to_text

function _M.normalize(text)
    local b = to_bytes(text)
    return b and to_text(b) or nil
end

local Cidr = {}
Cidr.__index = Cidr

function Cidr:contains(ip_text)
    local b = to_bytes(ip_text)
    return b ~= nil and #b == #self.net and mask(b, self.bits) == self.net
end

function _M.parse_cidr(text)
    if type(text) ~= "string" then
        return nil, "invalid IP or CIDR: not a string"
    end
    local addr, plen = match(text, "^([^/]+)/(%d+)$")
    if not addr then
        if find(text, "/", 1, true) then
            return nil, format("invalid CIDR '%s'", text)
        end
        addr = text
    elseif #plen > 1 and byte(plen, 1) == 48 then
        return nil, format("invalid prefix length in '%s'", text)
    end
    plen = plen and tonumber(plen)
    local b
    if find(addr, ":", 1, true) then
        b = parse_v6(addr)
        if b and sub(b, 1, 12) == MAPPED_PREFIX and (not plen or plen >= 96) then
            b, plen = sub(b, 13, 16), plen and plen - 96
        end
    else
        b = parse_v4(addr)
    end
    if not b then
        return nil, format("invalid IP address in '%s'", text)
    end
    local max = #b * 8
    plen = plen or max
    if plen > max then
        return nil, format("prefix length out of range (0-%d) in '%s'", max, text)
    end
    local net = mask(b, plen)
    return setmetatable({ net = net, bits = plen, text = to_text(net) .. "/" .. plen }, Cidr)
end

local Set = {}
Set.__index = Set

local MEMO_MAX = 4096

local function set_lookup(self, ip_text)
    if self.exact_text[ip_text] then
        return true
    end
    local b = to_bytes(ip_text)
    if not b then
        return false
    end
    if self.exact[b] then
        return true
    end
    local lens, nets = self.lens[#b], self.nets[#b]
    for i = 1, #lens do
        local plen = lens[i]
        if nets[plen][mask(b, plen)] then
            return true
        end
    end
    return false
end

-- A set never changes after _M.set(), so the verdict for an address text is kept (at most
-- MEMO_MAX texts, dropped when full): parsing and masking the address is the whole cost, and
-- clients repeat. An empty set answers at once.
function Set:contains(ip_text)
    if #self.members == 0 then
        return false
    end
    local memo = self.memo
    local v = memo[ip_text]
    if v == nil then
        v = set_lookup(self, ip_text)
        if type(ip_text) == "string" then
            if self.memo_n >= MEMO_MAX then
                memo = {}
                self.memo, self.memo_n = memo, 0
            end
            memo[ip_text] = v
            self.memo_n = self.memo_n + 1
        end
    end
    return v
end

-- Canonical `addr/len` texts of the members, sorted.
function Set:texts()
    local out = {}
    for i = 1, #self.members do
        out[i] = self.members[i]
    end
    sort(out)
    return out
end

function _M.set(list)
    local s = setmetatable({ exact_text = {}, exact = {}, lens = { [4] = {}, [16] = {} },
        nets = { [4] = {}, [16] = {} }, members = {}, memo = {}, memo_n = 0 }, Set)
    if list == nil then
        return s
    end
    if type(list) ~= "table" then
        return nil, "IP list must be an array of strings"
    end
    for _, entry in ipairs(list) do
        local item = type(entry) == "string" and match(entry, "^%s*(.-)%s*$") or entry
        if item ~= "" then
            local m, err = _M.parse_cidr(item)
            if not m then
                return nil, err
            end
            local n = #m.net
            s.members[#s.members + 1] = m.text
            if m.bits == n * 8 then
                s.exact[m.net] = true
                s.exact_text[to_text(m.net)] = true
            else
                local nets = s.nets[n]
                if not nets[m.bits] then
                    nets[m.bits] = {}
                    local lens = s.lens[n]
                    lens[#lens + 1] = m.bits
                end
                nets[m.bits][m.net] = true
            end
        end
    end
    sort(s.lens[4], function(a, c) return a > c end)
    sort(s.lens[16], function(a, c) return a > c end)
    return s
end

function _M.subnet(ip_text, v4_mask, v6_mask)
    local b = to_bytes(ip_text)
    if not b then
        return nil, "invalid IP address"
    end
    local plen = #b == 4 and (v4_mask or 32) or (v6_mask or 128)
    if type(plen) ~= "number" or plen < 0 or plen > #b * 8 or plen % 1 ~= 0 then
        return nil, "invalid mask"
    end
    return to_text(mask(b, plen)) .. "/" .. plen
end

local function trim(s)
    return match(s, "^%s*(.-)%s*$")
end

-- The client address: the TCP peer, unless the peer is a trusted proxy. Then X-Forwarded-For is
-- walked right to left, skipping trusted addresses; the first untrusted one is the client (the
-- leftmost when all are trusted). A garbage item ends the walk and the peer is used: nothing to
-- its left can be trusted. X-Real-IP (its first non-empty item) is used only without XFF.
function _M.client_ip(peer, xff, real_ip, trusted)
    local p = _M.normalize(peer) or peer
    if not trusted or not trusted:contains(p) then
        return p
    end
    if xff and find(xff, "%S") then
        local items = {}
        for item in (xff .. ","):gmatch("([^,]*),") do
            item = trim(item)
            if item ~= "" then
                items[#items + 1] = item
            end
        end
        local last
        for i = #items, 1, -1 do
            local n = _M.normalize(items[i])
            if not n then
                return p
            end
            if not trusted:contains(n) then
                return n
            end
            last = n
        end
        return last or p
    end
    if real_ip then
        for item in (real_ip .. ","):gmatch("([^,]*),") do
            item = trim(item)
            if item ~= "" then
                return _M.normalize(item) or p
            end
        end
    end
    return p
end

return _M
