# shellcheck shell=bash
# pieces-gateway: the reference servers of the bench/*.sh scripts (sourced after common.sh).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
# Provides the http{} parts for start_nginx (bench/lib/common.sh) of the two peers the gateway is
# compared with (docs PEERS.md):
#   nginx_static_conf FILE WWW            GET /v1/models as the static file WWW/v1/models
#   nginx_lua_conf FILE KEY BLACK LIMIT WWW
#       the same file behind an access_by_lua_block doing what the gateway's policy chain does
#       (auth, ip_rules, rate_limit, blacklist): Bearer check with the same 401 bodies and a
#       constant-time compare, an IP blacklist with CIDRs (BLACK, comma-separated) plus the
#       auto-ban lookup, a sliding-window counter in a lua_shared_dict (two window keys read,
#       one incr; LIMIT per 60 s) and the RateLimit-* headers
#   nginx_relay_conf FILE UPSTREAM_PORT   a plain reverse proxy of /v1/ to an HTTP/1.1 upstream
#       on 127.0.0.1:UPSTREAM_PORT, kept alive, unbuffered (each chunk of an SSE answer goes to
#       the client as soon as it was read): bench/stream_relay.sh
#   NGINX_LUA_MAIN                        the load_module lines nginx_lua_conf needs (NGINX_MAIN)

# shellcheck disable=SC2034 # read by the scripts, for start_nginx
NGINX_LUA_MAIN="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"

nginx_static_conf() {
    local file=$1 www=$2
    cat >"$file" <<CONF
    server {
        listen 127.0.0.1:@PORT@ reuseport backlog=4096;
        location = /v1/models {
            default_type application/json;
            root $www;
        }
    }
CONF
}

nginx_relay_conf() {
    local file=$1 up=$2
    cat >"$file" <<CONF
    upstream relay_up {
        server 127.0.0.1:$up;
        keepalive 1024;
        keepalive_requests 100000000;
        # below the mock's own 30 s: else nginx may send a request on a connection the mock
        # is closing at that moment, and answer 502
        keepalive_timeout 25s;
    }
    server {
        listen 127.0.0.1:@PORT@ reuseport backlog=4096;
        location = / {
            return 200 "relay\\n";
        }
        location /v1/ {
            proxy_pass http://relay_up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }
    }
CONF
}

nginx_lua_conf() {
    local file=$1 key=$2 black=$3 limit=$4 www=$5
    cat >"$file" <<CONF
    lua_shared_dict rl 16m;
    init_by_lua_block {
        local bit = require "bit"
        local BLACK, KEYS = "$black", { "$key" }
        local exact, cidrs = {}, {}
        local function v4(s)
            local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
            return a and ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256
                + tonumber(d)
        end
        for item in BLACK:gmatch("[^,]+") do
            local addr, len = item:match("^(.-)/(%d+)$")
            if not addr then
                exact[item] = true
            elseif v4(addr) then
                local m = bit.lshift(-1, 32 - tonumber(len))
                cidrs[#cidrs + 1] = { bit.band(v4(addr), m), m }
            end -- v6 CIDRs never match a v4 client: skipped, like the gateway's per-family sets
        end
        local function blocked(ip)
            if exact[ip] then
                return true
            end
            local n = v4(ip)
            if n then
                for i = 1, #cidrs do
                    if bit.band(n, cidrs[i][2]) == cidrs[i][1] then
                        return true
                    end
                end
            end
            return ngx.shared.rl:get("bl:ban:" .. ip) ~= nil -- the auto-ban lookup
        end
        local function equal(token, key) -- constant time for a given key, as policies/auth.lua
            local n, m = #key, #token
            local diff = (n == m) and 0 or 1
            if m == 0 then
                token, m = "\0", 1
            end
            for i = 1, n do
                diff = bit.bor(diff, bit.bxor(key:byte(i), token:byte((i - 1) % m + 1)))
            end
            return diff == 0
        end
        local function fail(status, code, msg)
            ngx.status = status
            ngx.header.content_type = "application/json"
            ngx.print('{"error":{"message":"' .. msg .. '","type":"error","code":"' .. code
                .. '"}}')
            return ngx.exit(status)
        end
        local LIMIT, W = $limit, 60
        function bench_access()
            local ip = ngx.var.remote_addr
            if blocked(ip) then
                return fail(403, "ip_blocked", "IP has been blocked")
            end
            local dict, now = ngx.shared.rl, ngx.now()
            local idx = math.floor(now / W)
            local elapsed = now - idx * W
            local base = "rl:default:" .. ip .. ":"
            local cur_key = base .. idx
            local cur = dict:get(cur_key) or 0
            local prev = dict:get(base .. (idx - 1)) or 0
            local estimate = prev * (W - elapsed) / W + cur
            if estimate + 1 > LIMIT then
                return fail(429, "rate_limit_exceeded", "Rate limit exceeded")
            end
            dict:incr(cur_key, 1, 0, 2 * W)
            ngx.header["RateLimit-Limit"] = LIMIT
            ngx.header["RateLimit-Remaining"] = math.floor(LIMIT - estimate - 1)
            ngx.header["RateLimit-Reset"] = math.max(1, math.ceil(W - elapsed))
            local h = ngx.var.http_authorization
            if h == nil or h == "" then
                return fail(401, "unauthorized", "Missing authentication information")
            end
            if h:sub(1, 7) ~= "Bearer " then
                return fail(401, "unauthorized", "Invalid authentication format")
            end
            local token, found = h:sub(8), nil
            for i = 1, #KEYS do
                if equal(token, KEYS[i]) and not found then
                    found = i
                end
            end
            if not found then
                return fail(401, "unauthorized", "Invalid API key")
            end
        end
    }
    server {
        listen 127.0.0.1:@PORT@ reuseport backlog=4096;
        location = /v1/models {
            default_type application/json;
            access_by_lua_block { bench_access() }
            root $www;
        }
    }
CONF
}
