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
 *   anything else              404 route_not_found (405 method_not_allowed on a known path)
 */
#include "routes.h"

#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "process.h"

struct gw_routes_s {
    uv_loop_t *loop;
    const gw_config_t *cfg;
    char *models_path;
    size_t models_path_len;
};

int gw_routes_new(uv_loop_t *loop, const gw_config_t *cfg, gw_routes_t **out, char **err)
{
    GW_UNUSED(err);
    gw_routes_t *rt = gw_calloc(1, sizeof(*rt));
    rt->loop = loop;
    rt->cfg = cfg;
    rt->models_path = gw_sprintf("%s/models", cfg->api_prefix);
    rt->models_path_len = strlen(rt->models_path);
    *out = rt;
    return GW_OK;
}

void gw_routes_close(gw_routes_t *rt) { GW_UNUSED(rt); }

void gw_routes_free(gw_routes_t *rt)
{
    if (!rt)
        return;
    free(rt->models_path);
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

static void health(gw_req_t *req)
{
    char metrics[256], body[512];
    gw_metrics_json(metrics, sizeof(metrics));
    int n = snprintf(body, sizeof(body), "{\"status\":\"ok\",\"metrics\":%s}", metrics);
    gw_resp_send(req, 200, "application/json", body, (size_t)n);
}

void gw_routes_dispatch(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req)
{
    if (path_is(req, "/", 1)) {
        if (!is_get(req))
            return method_not_allowed(req);
        return health(req);
    }
    if (path_is(req, "/ping", 5)) {
        if (!is_get(req))
            return method_not_allowed(req);
        return gw_resp_send(req, 200, "text/plain; charset=utf-8", "pong", 4);
    }
    if (path_is(req, rt->models_path, rt->models_path_len)) {
        size_t len;
        const char *body = gw_vm_models_json(vm, &len);
        if (!is_get(req))
            return method_not_allowed(req);
        if (!body)
            return gw_resp_send_error(req, 500, "internal_error",
                                      "No model catalog is loaded (policy 'models')", "error");
        return gw_resp_send(req, 200, "application/json", body, len);
    }
    gw_resp_send_error(req, 404, "route_not_found", "Requested path not found", "error");
}
