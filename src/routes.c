/*
 * pieces-gateway: the built-in routes.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_routes_*. Uses: http, process (metrics), lua_host (the models body, breakers),
 *   chat (the engine and this worker's backends).
 * Never: answers a known path with the wrong method other than 405.
 *
 *   GET|HEAD /                 health JSON (counters, upstream pools, the shared store)
 *   GET|HEAD /ping             "pong"
 *   GET|HEAD {P}/models        the catalog rendered by policies/models.lua
 *   POST {P}/chat/completions  Lua route phase, then the upstream call (chat.c)
 *   POST {P}/tokenize          Lua route phase (the chat policy answers with the count)
 *   POST {P}/messages          Anthropic Messages: route phase (policies/messages.lua), chat.c
 *   POST {P}/messages/count_tokens   route phase (the messages policy answers)
 *   POST {P}/responses         OpenAI Responses: route phase (policies/responses.lua), chat.c
 *   (every gateway-made error on these paths, the HTTP layer's 408/413 and the worker's 405
 *   too, is in the path's ingress format: gw_routes_error_body, gw_ingress_t.error_body)
 *   GET|HEAD /metrics          Prometheus metrics (metrics_hooks.c; METRICS_ALLOW / admin key)
 *   anything else              404 route_not_found (405 method_not_allowed on a known path)
 */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gw.h"
#include "ingress.h"
#include "metrics.h"
#include "metrics_hooks.h"
#include "process.h"
#include "store.h"

struct gw_routes_s {
    uv_loop_t *loop;
    const gw_config_t *cfg;
    char *models_path, *chat_path, *tokenize_path, *messages_path, *count_path, *responses_path;
    gw_chat_env_t chat;
    gw_metrics_pools_t *pools_watch;
};

int gw_routes_new(uv_loop_t *loop, const gw_config_t *cfg, gw_routes_t **out, char **err)
{
    gw_routes_t *rt = gw_calloc(1, sizeof(*rt));
    rt->loop = loop;
    rt->cfg = cfg;
    rt->models_path = gw_sprintf("%s/models", cfg->api_prefix);
    rt->chat_path = gw_sprintf("%s/chat/completions", cfg->api_prefix);
    rt->tokenize_path = gw_sprintf("%s/tokenize", cfg->api_prefix);
    rt->messages_path = gw_sprintf("%s/messages", cfg->api_prefix);
    rt->count_path = gw_sprintf("%s/messages/count_tokens", cfg->api_prefix);
    rt->responses_path = gw_sprintf("%s/responses", cfg->api_prefix);
    rt->chat.loop = loop;
    rt->chat.cfg = cfg;
    *out = rt;
    if (gw_backends_open(loop, cfg, &rt->chat.backends, err) != 0)
        return GW_ERROR;
    rt->pools_watch = gw_metrics_pools_watch(loop, &rt->chat.backends);
    return GW_OK;
}

void gw_routes_close(gw_routes_t *rt)
{
    gw_metrics_pools_close(rt->pools_watch);
    rt->pools_watch = NULL;
    gw_backends_close(&rt->chat.backends);
}

void gw_routes_free(gw_routes_t *rt)
{
    if (!rt)
        return;
    free(rt->models_path);
    free(rt->chat_path);
    free(rt->tokenize_path);
    free(rt->messages_path);
    free(rt->count_path);
    free(rt->responses_path);
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

void gw_routes_backends_json(gw_routes_t *rt, gw_buf_t *out)
{
    const gw_backends_t *set = &rt->chat.backends;
    gw_buf_putc(out, '{');
    for (size_t i = 0; i < set->n; i++) {
        gw_backend_t *b = set->list[i];
        gw_buf_printf(out, "%s\"%s\":{\"type\":\"%s\",\"pool\":", i ? "," : "", b->name,
                      b->vt->type);
        b->vt->stats_json(b, out);
        gw_buf_putc(out, '}');
    }
    gw_buf_putc(out, '}');
}

/* Health: the seed's counters, this worker's Pieces pools (as before) and every backend with
 * its pool and circuit breaker (the breaker state comes from the route policy in Lua). */
static void health(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req)
{
    char metrics[256];
    gw_metrics_json(metrics, sizeof(metrics));
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_printf(&b, "{\"status\":\"ok\",\"metrics\":%s,\"upstream\":", metrics);
    gw_backend_t *pieces = NULL;
    for (size_t i = 0; i < rt->chat.backends.n && !pieces; i++)
        if (rt->chat.backends.list[i]->type == GW_BACKEND_PIECES)
            pieces = rt->chat.backends.list[i];
    if (pieces)
        pieces->vt->stats_json(pieces, &b);
    else
        gw_buf_puts(&b, "null");
    gw_buf_puts(&b, ",\"backends\":");
    gw_routes_backends_json(rt, &b);
    char *breakers = gw_vm_breakers_json(vm);
    gw_buf_printf(&b, ",\"breakers\":%s,", breakers ? breakers : "{}");
    free(breakers);
    gw_store_status_json(&b);
    gw_buf_putc(&b, '}');
    gw_resp_send(req, 200, "application/json", b.data, b.len);
    gw_buf_dispose(&b);
}

/* The ingress format of a path with a route phase (NULL for none); *answered_only: the route
 * phase must answer itself (tokenize, count_tokens). */
static const gw_ingress_t *path_ingress(const gw_routes_t *rt, const gw_req_t *req,
                                        int *answered_only)
{
    const struct {
        const char *path;
        const gw_ingress_t *fmt;
        int answered_only;
    } api[] = {
        {rt->chat_path, &gw_ingress_chat, 0},
        {rt->tokenize_path, &gw_ingress_chat, 1},
        {rt->messages_path, &gw_ingress_anthropic, 0},
        {rt->count_path, &gw_ingress_anthropic, 1},
        {rt->responses_path, &gw_ingress_responses, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(api); i++)
        if (path_is(req, api[i].path, strlen(api[i].path))) {
            *answered_only = api[i].answered_only;
            return api[i].fmt;
        }
    return NULL;
}

void gw_routes_error_body(const gw_routes_t *rt, const gw_req_t *req, gw_buf_t *out,
                          int status, const char *code, const char *message, const char *type)
{
    int answered_only;
    const gw_ingress_t *fmt = rt && req->path ? path_ingress(rt, req, &answered_only) : NULL;
    gw_out_error_t e = {status, code, type ? type : "error", message};
    (fmt ? fmt : &gw_ingress_chat)->error_body(out, &e);
}

/* After the route phase (at once, or when a waiting phase finished). */
static void after_route(gw_req_t *req, void *ud)
{
    gw_routes_t *rt = ud;
    if (req->answered)
        return gw_resp_send(req, req->answer_status, req->answer_ctype, req->answer_body.data,
                            req->answer_body.len);
    int answered_only = 1;
    const gw_ingress_t *fmt = path_ingress(rt, req, &answered_only);
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!fmt || answered_only || !p || !p->n_targets)
        return gw_resp_send_error(req, 500, "internal_error",
                                  "The route phase produced no upstream request", "error");
    gw_chat_start(&rt->chat, req);
}

/* Route phase (Lua), then the upstream call or the policy's own answer. */
static void chat(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req)
{
    if (strcmp(req->method_name, "POST") != 0)
        return method_not_allowed(req);
    if (!(gw_vm_phases(vm) & GW_PHASE_ROUTE))
        return gw_resp_send_error(req, 500, "internal_error",
                                  "No policy handles the route phase (policy 'chat')", "error");
    if (gw_vm_route(vm, req, after_route, rt) == GW_VM_SUSPENDED)
        return;
    after_route(req, rt);
}

/* The route name of the request's (current) path, for the access log and metrics; *ingress:
 * the client API format of the path (NULL off the chat paths). */
static const char *route_name(const gw_routes_t *rt, const gw_req_t *req, const char **ingress)
{
    *ingress = NULL;
    if (path_is(req, "/", 1))
        return "health";
    if (path_is(req, "/ping", 5))
        return "ping";
    if (path_is(req, "/metrics", 8))
        return "metrics";
    if (path_is(req, rt->models_path, strlen(rt->models_path)))
        return "models";
    const struct {
        const char *path, *route, *ingress;
    } api[] = {
        {rt->chat_path, "chat", "chat"},
        {rt->tokenize_path, "tokenize", "chat"},
        {rt->messages_path, "messages", "messages"},
        {rt->count_path, "count_tokens", "messages"},
        {rt->responses_path, "responses", "responses"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(api); i++)
        if (path_is(req, api[i].path, strlen(api[i].path))) {
            *ingress = api[i].ingress;
            return api[i].route;
        }
    return "other";
}

void gw_routes_classify(const gw_routes_t *rt, gw_req_t *req)
{
    if (!rt || !req->path)
        return;
    const char *ingress;
    const char *name = route_name(rt, req, &ingress); /* static, shorter than the fields */
    if (!req->stats.route[0])
        memcpy(req->stats.route, name, strlen(name) + 1);
    if (!req->stats.ingress[0] && ingress)
        memcpy(req->stats.ingress, ingress, strlen(ingress) + 1);
}

int gw_routes_has_route_phase(const gw_routes_t *rt, const gw_req_t *req)
{
    int answered_only;
    return strcmp(req->method_name, "POST") == 0 && path_ingress(rt, req, &answered_only);
}

void gw_routes_dispatch(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req)
{
    if (path_is(req, "/", 1)) {
        if (!is_get(req))
            return method_not_allowed(req);
        return health(rt, vm, req);
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
    int answered_only;
    if (path_ingress(rt, req, &answered_only))
        return chat(rt, vm, req);
    gw_resp_send_error(req, 404, "route_not_found", "Requested path not found", "error");
}
