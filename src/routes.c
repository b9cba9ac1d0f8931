/*
 * pieces-gateway: the built-in routes.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_routes_*. Uses: http, process (metrics), lua_host (the models body).
 * Never: answers a known path with the wrong method other than 405.
 *
 *   GET|HEAD /                 health JSON
 *   GET|HEAD /ping             "pong"
 *   GET|HEAD {P}/models        the catalog rendered by policies/models.lua
 *   POST {P}/chat/completions  Lua route phase, then the upstream call (chat.c)
 *   POST {P}/tokenize          Lua route phase (the chat policy answers with the count)
 *   GET|HEAD /metrics          Prometheus metrics (metrics_hooks.c; METRICS_ALLOW / admin key)
 *   anything else              404 route_not_found (405 method_not_allowed on a known path)
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gw.h"
#include "gw_upstream.h"
#include "metrics.h"
#include "metrics_hooks.h"
#include "process.h"

struct gw_routes_s {
    uv_loop_t *loop;
    const gw_config_t *cfg;
    char *models_path, *chat_path, *tokenize_path;
    gw_chat_env_t chat;
    gw_metrics_pools_t *pools_watch;
};

static int new_pool(gw_routes_t *rt, const char *address, gw_upstream_t **out, char **err)
{
    const gw_config_t *cfg = rt->cfg;
    gw_upstream_conf_t uc = {
        .address = address,
        .ca_file = cfg->upstream.ca_file,
        .insecure = cfg->upstream.insecure,
        .min_conns = cfg->upstream.min_pool_size,
        .max_conns = cfg->upstream.max_pool_size,
        .scale_interval = cfg->upstream.scale_interval,
    };
    char *e = NULL;
    if (gw_upstream_new(rt->loop, &uc, out, &e) != 0) {
        *err = gw_sprintf("upstream %s: %s", address, e ? e : "invalid");
        free(e);
        return GW_ERROR;
    }
    return GW_OK;
}

int gw_routes_new(uv_loop_t *loop, const gw_config_t *cfg, gw_routes_t **out, char **err)
{
    gw_routes_t *rt = gw_calloc(1, sizeof(*rt));
    rt->loop = loop;
    rt->cfg = cfg;
    rt->models_path = gw_sprintf("%s/models", cfg->api_prefix);
    rt->chat_path = gw_sprintf("%s/chat/completions", cfg->api_prefix);
    rt->tokenize_path = gw_sprintf("%s/tokenize", cfg->api_prefix);
    rt->chat.loop = loop;
    rt->chat.cfg = cfg;
    *out = rt;
    if (new_pool(rt, cfg->upstream.gpt, &rt->chat.gpt, err) != 0 ||
        new_pool(rt, cfg->upstream.vertex, &rt->chat.vertex, err) != 0)
        return GW_ERROR;
    gw_upstream_t **pools[] = {&rt->chat.gpt, &rt->chat.vertex};
    rt->pools_watch = gw_metrics_pools_watch(loop, "pieces", pools, 2);
    return GW_OK;
}

void gw_routes_close(gw_routes_t *rt)
{
    gw_metrics_pools_close(rt->pools_watch);
    rt->pools_watch = NULL;
    if (rt->chat.gpt)
        gw_upstream_close(rt->chat.gpt, NULL, NULL);
    if (rt->chat.vertex)
        gw_upstream_close(rt->chat.vertex, NULL, NULL);
    rt->chat.gpt = rt->chat.vertex = NULL;
}

void gw_routes_free(gw_routes_t *rt)
{
    if (!rt)
        return;
    free(rt->models_path);
    free(rt->chat_path);
    free(rt->tokenize_path);
    free(rt);
}

static int path_is(const gw_req_t *req, const char *p, size_t len)
{
    return req->path_len == len && memcmp(req->path, p, len) == 0;
}

static int is_get(const gw_req_t *req)
{
    return strcmp(req->method_name, "GET") == 0 || strcmp(req->method_name, "HEAD") == 0;
}

static void method_not_allowed(gw_req_t *req)
{
    gw_resp_send_error(req, 405, "method_not_allowed", "Method not allowed", "error");
}

static void put_pool(gw_buf_t *b, const char *name, gw_upstream_t *u)
{
    char stats[4096];
    int n = u ? gw_upstream_stats_json(u, stats, sizeof(stats)) : -1;
    gw_buf_printf(b, "\"%s\":%s", name, n > 0 && (size_t)n < sizeof(stats) ? stats : "null");
}

/* Health: the seed's counters, plus this worker's upstream pools. */
static void health(gw_routes_t *rt, gw_req_t *req)
{
    char metrics[256];
    gw_metrics_json(metrics, sizeof(metrics));
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_printf(&b, "{\"status\":\"ok\",\"metrics\":%s,\"upstream\":{", metrics);
    put_pool(&b, "gpt", rt->chat.gpt);
    gw_buf_putc(&b, ',');
    put_pool(&b, "vertex", rt->chat.vertex);
    gw_buf_puts(&b, "}}");
    gw_resp_send(req, 200, "application/json", b.data, b.len);
    gw_buf_dispose(&b);
}

/* Route phase (Lua), then the upstream call or the policy's own answer. */
static void chat(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req, int tokenize)
{
    if (strcmp(req->method_name, "POST") != 0)
        return method_not_allowed(req);
    if (!(gw_vm_phases(vm) & GW_PHASE_ROUTE))
        return gw_resp_send_error(req, 500, "internal_error",
                                  "No policy handles the route phase (policy 'chat')", "error");
    gw_vm_route(vm, req);
    if (req->answered)
        return gw_resp_send(req, req->answer_status, req->answer_ctype, req->answer_body.data,
                            req->answer_body.len);
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (tokenize || !p || !p->model)
        return gw_resp_send_error(req, 500, "internal_error",
                                  "The route phase produced no upstream request", "error");
    gw_chat_start(&rt->chat, req);
}

/* The route name of the request's (current) path, for the access log and metrics. */
static const char *route_name(const gw_routes_t *rt, const gw_req_t *req)
{
    if (path_is(req, "/", 1))
        return "health";
    if (path_is(req, "/ping", 5))
        return "ping";
    if (path_is(req, "/metrics", 8))
        return "metrics";
    if (path_is(req, rt->models_path, strlen(rt->models_path)))
        return "models";
    if (path_is(req, rt->chat_path, strlen(rt->chat_path)))
        return "chat";
    if (path_is(req, rt->tokenize_path, strlen(rt->tokenize_path)))
        return "tokenize";
    return "other";
}

void gw_routes_classify(const gw_routes_t *rt, gw_req_t *req)
{
    if (!rt || !req->path)
        return;
    const char *name = route_name(rt, req); /* static, shorter than the record's field */
    memcpy(req->stats.route, name, strlen(name) + 1);
}

void gw_routes_dispatch(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req)
{
    if (path_is(req, "/", 1)) {
        if (!is_get(req))
            return method_not_allowed(req);
        return health(rt, req);
    }
    if (path_is(req, "/ping", 5)) {
        if (!is_get(req))
            return method_not_allowed(req);
        return gw_resp_send(req, 200, "text/plain; charset=utf-8", "pong", 4);
    }
    if (path_is(req, "/metrics", 8) && gw_metrics_enabled()) {
        if (!is_get(req))
            return method_not_allowed(req);
        return gw_metrics_serve(req, &rt->cfg->metrics.allow, gw_vm_admin_key(vm));
    }
    if (path_is(req, rt->models_path, strlen(rt->models_path))) {
        size_t len;
        const char *body = gw_vm_models_json(vm, &len);
        if (!is_get(req))
            return method_not_allowed(req);
        if (!body)
            return gw_resp_send_error(req, 500, "internal_error",
                                      "No model catalog is loaded (policy 'models')", "error");
        return gw_resp_send(req, 200, "application/json", body, len);
    }
    if (path_is(req, rt->chat_path, strlen(rt->chat_path)))
        return chat(rt, vm, req, 0);
    if (path_is(req, rt->tokenize_path, strlen(rt->tokenize_path)))
        return chat(rt, vm, req, 1);
    gw_resp_send_error(req, 404, "route_not_found", "Requested path not found", "error");
}
