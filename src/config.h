/*
 * pieces-gateway: the process configuration (what the C core needs from gateway.lua).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * gateway.lua is evaluated by the host library (lua/gw/config.lua), which validates and
 * normalises it; lua_config.c copies the result into a gw_config_t. After start-up the
 * struct is read-only and shared by all threads.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>

#include "ipaddr.h"

typedef struct {
    char *address;     /* host:port, https://host:port or http://host:port */
} gw_upstream_addr_t;

/* Backend types (gateway.lua: backends.<name>.type). */
enum { GW_BACKEND_PIECES = 1, GW_BACKEND_OPENAI = 2 };

/* One configured backend. Pieces takes its addresses and pool sizes from `upstream`. */
typedef struct {
    char *name;
    int type;            /* GW_BACKEND_* */
    char *base_url;      /* openai: http(s)://host[:port][/path prefix] */
    char *api_key;       /* openai: sent as Authorization: Bearer; never logged or shown */
    char *ca_file;       /* "" = system CAs */
    int insecure;        /* skip certificate verification (warned at start) */
    char **header_names, **header_values; /* extra static request headers */
    size_t n_headers;
    int max_idle;        /* openai: idle keep-alive connections kept per worker */
} gw_backend_conf_t;

typedef struct {
    char *config_path;   /* gateway.lua */
    char *listen_host;
    int port;
    int workers;         /* resolved: >= 1 */
    char *api_prefix;    /* normalised: "" or "/x" without trailing '/' */
    char *policies_dir;
    char *assets_dir;
    char *log_file;
    int debug;
    int access_log;      /* access lines on stdout */
    int access_log_json; /* ACCESS_LOG_FORMAT=json: one JSON object per access line */
    gw_cidr_list_t trusted_proxies;
    struct {
        int enabled;           /* METRICS: record and serve GET /metrics */
        gw_cidr_list_t allow;  /* METRICS_ALLOW: clients served without the admin key */
    } metrics;

    size_t max_connections;
    size_t max_header_size;
    size_t max_body_size;
    double header_timeout;
    double keepalive_timeout;
    double shutdown_grace;
    double request_timeout;  /* 0 = unlimited */
    double stream_timeout;   /* 0 = unlimited */
    size_t shared_dict_size; /* bytes */

    /* SHARED_STORE: the store behind host.shared (src/store.h). */
    struct {
        int redis;           /* 0: the local dictionary only */
        char *host;
        int port;
        char *user;          /* NULL: AUTH <password> alone */
        char *password;      /* NULL: no AUTH. Never logged */
        int db;
        int timeout_ms;      /* per call */
        int on_error;        /* GW_STORE_OPEN, GW_STORE_CLOSED or GW_STORE_LOCAL */
    } store;

    struct {
        char *gpt;
        char *vertex;
        char *ca_file;
        int insecure;
        int min_pool_size;
        int max_pool_size;
        double scale_interval;
        int max_retries;
        double timeout;      /* 0 = unlimited */
        double connect_timeout; /* one connection attempt: TCP + TLS + HTTP/2 preface */
    } upstream;
    gw_backend_conf_t *backends; /* in the order of gateway.lua's backend_order */
    size_t n_backends;
} gw_config_t;

void gw_config_dispose(gw_config_t *c);

#endif
