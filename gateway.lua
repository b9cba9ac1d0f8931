-- pieces-gateway configuration.
-- Copyright (C) 2026 pieces-gateway authors
-- This program is free software: you can redistribute it and/or modify it under the terms of
-- the GNU General Public License as published by the Free Software Foundation, either version 3
-- of the License, or (at your option) any later version. See LICENSE.
--
-- This file returns a plain table. It runs in a sandbox with one helper, `env`, that reads
-- environment variables (a .env file in the working directory is read first; the real
-- environment wins):
--   env.str(name, default)   env.int(name, default)   env.num(name, default)
--   env.bool(name, default)  env.list(name, default)  (comma-separated, trimmed)
-- Every variable of the original service keeps its name and default.
local env = ...

return {
    listen = { host = env.str("HOST", "0.0.0.0"), port = env.int("PORT", 8787) },
    workers = env.int("WORKERS", 0), -- 0: one per CPU
    api_prefix = env.str("API_PREFIX", "/v1"),
    policies_dir = env.str("POLICIES_DIR", "policies"),
    assets_dir = env.str("ASSETS_DIR", "assets"),
    log_file = env.str("LOG_FILE", ""),
    access_log = env.bool("ACCESS_LOG", true), -- access lines on stdout (LOG_FILE always gets them)
    access_log_format = env.str("ACCESS_LOG_FORMAT", "text"), -- "text" (the seed's line) or "json"
    debug = env.bool("DEBUG", false),
    trusted_proxies = env.list("TRUSTED_PROXIES",
        { "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7" }),
    -- GET /metrics (Prometheus): recorded unless METRICS=off; served to clients whose IP is in
    -- METRICS_ALLOW, or that send the admin key (Authorization: Bearer <ADMIN_KEY>)
    metrics = {
        enabled = env.str("METRICS", "on"),
        allow = env.list("METRICS_ALLOW", { "127.0.0.0/8", "::1/128", "10.0.0.0/8",
            "172.16.0.0/12", "192.168.0.0/16", "fc00::/7" }),
    },

    limits = {
        max_connections = env.int("MAX_CONNECTIONS", 10000),
        max_header_size = env.int("MAX_HEADER_SIZE", 16384),
        max_body_size = env.int("MAX_BODY_SIZE", 8 * 1024 * 1024),
        header_timeout = env.num("HEADER_TIMEOUT", 10),
        keepalive_timeout = env.num("KEEPALIVE_TIMEOUT", 75),
        shutdown_grace = env.num("SHUTDOWN_GRACE", 30),
        request_timeout = env.num("REQUEST_TIMEOUT", 30),
        stream_timeout = env.num("STREAM_TIMEOUT", 300),
    },

    -- The store behind host.shared / r.shared (rate-limit windows, violation counts, bans):
    -- "" or "local" for this process's dictionary, or redis://[:password@]host:port/db to share
    -- them with every gateway instance using that Redis. timeout_ms bounds each call; on_error
    -- says what a call does when Redis is down or slow: "open" (allow, count locally),
    -- "closed" (503 store_unavailable) or "local" (this instance's dictionary, same limits).
    shared_store = {
        url = env.str("SHARED_STORE", ""),
        timeout_ms = env.int("SHARED_STORE_TIMEOUT_MS", 50),
        on_error = env.str("SHARED_STORE_ON_ERROR", "local"),
    },

    upstream = {
        gpt = env.str("GPT_GRPC_ADDR",
            "runtime-native-io-gpt-inference-grpc-service-lmuw6mcn3q-ul.a.run.app:443"),
        vertex = env.str("VERTEX_GRPC_ADDR",
            "runtime-native-io-vertex-inference-grpc-service-lmuw6mcn3q-ul.a.run.app:443"),
        ca_file = env.str("UPSTREAM_CA_FILE", ""),
        insecure = env.bool("UPSTREAM_INSECURE", false),
        min_pool_size = env.int("MIN_POOL_SIZE", 5),
        max_pool_size = env.int("MAX_POOL_SIZE", 20),
        scale_interval = env.num("SCALE_INTERVAL", 30),
        max_retries = env.int("MAX_RETRIES", 3),
        timeout = env.num("TIMEOUT", 30),
        -- one connection attempt (TCP + TLS + HTTP/2 preface), for every backend
        connect_timeout = env.num("UPSTREAM_CONNECT_TIMEOUT", 5),
    },

    -- Backends: name -> { type = "pieces" | "openai", ... }. The Pieces backend uses the
    -- `upstream` settings above. An openai backend with an empty base_url does not exist.
    --   openai: base_url (with a path prefix, e.g. https://openrouter.ai/api/v1), api_key
    --   (sent as Authorization: Bearer; never logged or shown), models (list of "public" or
    --   "public=upstream", or { id =, model =, encoding = }), headers (extra static request
    --   headers, name -> value), ca_file / insecure (default: the upstream ones), max_idle.
    backends = {
        pieces = { type = "pieces" },
        openai = {
            type = "openai",
            base_url = env.str("OPENAI_BASE_URL", ""),
            api_key = env.str("OPENAI_API_KEY", ""),
            models = env.list("OPENAI_MODELS", {}),
            headers = {},
        },
    },
    -- The order in which the backends that serve a model are tried (fallback on failure).
    backend_order = env.list("BACKEND_ORDER", { "pieces", "openai" }),
    -- Circuit breaker per backend: open after `failures` consecutive failed attempts
    -- (unreachable, timeout, 5xx/bad answer), skipped while open, one probe after `cooldown` s.
    breaker = {
        failures = env.int("BREAKER_FAILURES", 5),
        cooldown = env.num("BREAKER_COOLDOWN", 30),
    },

    -- Enabled policies, in the order their phases run. `conf` is passed to the policy's new().
    -- Each policy's config keys are documented in the header of policies/<name>.lua.
    -- Access order as in the original service: ip_rules (403 before anything else), rate_limit
    -- (every request, so unauthenticated floods are limited and auto-banned), the router's 405s
    -- of model_route/foolproof, then auth. (Rewrites all run before access, whatever the order.)
    -- admin serves /admin/* in the content phase; blacklist counts 429s in the log phase.
    policies = {
        { name = "models", conf = { default_model = env.str("DEFAULT_MODEL", "") } },
        { name = "ip_rules", conf = {
            blacklist = env.list("IP_BLACKLIST", {}),
            whitelist = env.list("IP_WHITELIST", {}),
        } },
        { name = "rate_limit", conf = {
            default = {
                limit = env.int("RATE_LIMIT", 60),
                window = env.int("RATE_LIMIT_WINDOW", 60),
                enabled = env.bool("RATE_LIMIT_ENABLED", true),
            },
            strict = {
                limit = env.int("STRICT_RATE_LIMIT", 10),
                window = env.int("STRICT_RATE_LIMIT_WINDOW", 60),
                enabled = env.bool("STRICT_RATE_LIMIT_ENABLED", false),
                scope = env.str("STRICT_RATE_LIMIT_SCOPE", "chat"),
            },
            burst = {
                limit = env.int("BURST_RATE_LIMIT", 100),
                window = env.int("BURST_RATE_LIMIT_WINDOW", 1),
                enabled = env.bool("BURST_RATE_LIMIT_ENABLED", false),
            },
        } },
        { name = "model_route", conf = { enabled = env.bool("ENABLE_MODEL_ROUTE", false) } },
        { name = "foolproof", conf = { enabled = env.bool("ENABLE_FOOLPROOF_ROUTE", false) } },
        { name = "auth", conf = { keys = env.list("API_KEY", {}) } },
        { name = "blacklist", conf = {
            mode = env.str("BLACKLIST_MODE", "single"),
            threshold = env.int("BLACKLIST_THRESHOLD", 100),
            file = env.str("BLACKLIST_FILE", "blacklist.txt"),
            ipv4_mask = env.int("IPV4_MASK", 24),
            ipv6_mask = env.int("IPV6_MASK", 48),
            violation_ttl = env.num("BLACKLIST_VIOLATION_TTL", 86400),
        } },
        { name = "pieces" },
        { name = "chat", conf = {
            temperature = env.num("GPT_DEFAULT_TEMPERATURE", nil),
            top_p = env.num("GPT_DEFAULT_TOP_P", nil),
        } },
        -- Anthropic Messages ({P}/messages, /messages/count_tokens) and OpenAI Responses
        -- ({P}/responses): map their requests onto the chat policy's (after it, before router)
        { name = "messages" },
        { name = "responses" },
        -- after chat: orders each request's backends (route phase) and keeps their circuit
        -- breakers (route: skip open ones; log: count outcomes). See policies/router.lua.
        { name = "router" },
        { name = "tokenize" },
        { name = "admin", conf = {
            key = env.str("ADMIN_KEY", ""),
            file = env.str("BLACKLIST_FILE", "blacklist.txt"),
        } },
    },
}
