/*
 * pieces-gateway: the built-in routes served by C (health, ping, models, chat, tokenize).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * One gw_routes_t per worker (it owns that worker's backends and their pools); used only from
 * its loop.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <uv.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "lua_host.h"

typedef struct gw_routes_s gw_routes_t;

int gw_routes_new(uv_loop_t *loop, const gw_config_t *cfg, gw_routes_t **out, char **err);
void gw_routes_dispatch(gw_routes_t *rt, gw_vm_t *vm, gw_req_t *req);
/* Fills what is still empty of req->stats: route, the name of the built-in route of its path
 * ("health", "ping", "metrics", "models", "chat", "tokenize", "messages", "count_tokens",
 * "responses"; "other" for any other path), and ingress, the client API format of a chat path
 * ("chat", "messages", "responses"; stays "" elsewhere). */
void gw_routes_classify(const gw_routes_t *rt, gw_req_t *req);
/* The JSON error body for req in the API shape of its path (Anthropic's on the Messages
 * paths, else OpenAI's): gw_http_conf_t.error_body of the worker. */
void gw_routes_error_body(const gw_routes_t *rt, const gw_req_t *req, gw_buf_t *out,
                          int status, const char *code, const char *message, const char *type);
/* Whether dispatching req now would run the Lua route phase (the one route table). */
int gw_routes_has_route_phase(const gw_routes_t *rt, const gw_req_t *req);
/* {"<name>":{"type":..,"pool":{..}},..}: this worker's backends, appended to out. */
void gw_routes_backends_json(gw_routes_t *rt, gw_buf_t *out);
/* Close the loop handles it owns (upstream pools); gw_routes_free after the loop ran. */
void gw_routes_close(gw_routes_t *rt);
void gw_routes_free(gw_routes_t *rt);

#endif
