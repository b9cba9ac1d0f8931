/*
 * pieces-gateway: worker threads (one loop, one listener, one Lua VM each).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The main thread starts workers and talks to them only through gw_worker_stop/reload, which
 * are thread-safe (uv_async). Everything else in a worker runs on its own loop.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <uv.h>

#include "config.h"
#include "http.h"
#include "lua_host.h"

typedef struct gw_worker_s gw_worker_t;

/* Start a worker thread (it loads its VM and listens in the background). */
int gw_worker_spawn(int id, const gw_config_t *cfg, gw_worker_t **out, char **err);
/* Wait until a spawned worker listens (0), or failed to start (*err; the worker is freed). */
int gw_worker_wait_ready(gw_worker_t *w, char **err);
/* Graceful stop: stop accepting, finish in-flight requests (no new keep-alive). */
void gw_worker_stop(gw_worker_t *w);
/* Build a fresh VM and swap it in between requests; errors keep the old VM. */
void gw_worker_reload(gw_worker_t *w);
/* Wait for the thread to exit and free the worker. */
void gw_worker_join(gw_worker_t *w);

/* The backends and pools of the worker running on the calling thread as JSON (src/routes.h),
 * appended to out ("{}" on a thread that is no worker). */
void gw_worker_backends_json(gw_buf_t *out);

/* Whether the calling thread's worker would run the route phase for req (src/routes.h). */
int gw_worker_route_phase(const gw_req_t *req);

/* Handler entry points (worker.c), used by the HTTP server of each worker. */
void gw_worker_on_request(gw_req_t *req, void *ud);
void gw_worker_on_complete(gw_req_t *req, void *ud);

#endif
