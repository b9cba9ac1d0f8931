-- pieces-gateway configuration.
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
    debug = env.bool("DEBUG", false),
    trusted_proxies = env.list("TRUSTED_PROXIES",
        { "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7" }),

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
    },

    -- Enabled policies, in the order their phases run. `conf` is passed to the policy's new().
    policies = {
        { name = "models", conf = { default_model = env.str("DEFAULT_MODEL", "") } },
    },
}
