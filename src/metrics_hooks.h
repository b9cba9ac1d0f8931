/*
 * pieces-gateway: the calls other modules make so the metrics see what happens: request
 * completion, LLM calls, upstream attempts, pools, breakers, policy errors, reloads; and the
 * GET /metrics handler.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The per-request numbers come from req->stats (http.h), filled by the handlers while the
 * request runs and read once by gw_metrics_request_done at completion. A backend / chat
 * engine must:
 *   - call gw_metrics_llm_start when it starts an LLM call for a request (sets stats.llm,
 *     stats.stream and stats.backend; counts the stream as active until the request ends);
 *   - count every attempt in stats.attempts and report it with gw_metrics_upstream_attempt;
 *   - set stats.first_token_ns (gw_now_ns()) when the first content byte goes to the client,
 *     and stats.prompt_tokens / completion_tokens / usage_source when an answer carries usage;
 *   - report breaker state changes with gw_metrics_breaker_open.
 * All functions run on the calling thread's shard (thread-safe, lock-free once a series
 * exists) and do nothing when metrics are disabled.
 */
#ifndef GW_METRICS_HOOKS_H
#define GW_METRICS_HOOKS_H

#include <uv.h>

#include "http.h"
#include "ipaddr.h"

#include "backend/backend.h"

/* gateway_upstream_attempts_total{result} */
typedef enum {
    GW_UP_OK,          /* the attempt answered (the answer may still be an error the client sees) */
    GW_UP_RETRY,       /* failed, and the same backend is tried again */
    GW_UP_FALLBACK,    /* failed, and the next backend is tried */
    GW_UP_UNREACHABLE, /* connect / DNS / TLS failure, unavailable, closed */
    GW_UP_TIMEOUT,     /* deadline or keepalive timeout */
    GW_UP_BAD_ANSWER,  /* an answer the gateway could not use */
    GW_UP_REFUSED,     /* refused by the upstream (stream refused) or by an open breaker */
    GW_UP_RESULT_COUNT
} gw_up_result_t;

/* An LLM call starts for req: backend (copied into stats.backend), stream (0/1). */
void gw_metrics_llm_start(gw_req_t *req, const char *backend, int stream);
/* The request is complete (once, from the server's on_complete, after the log phase and with
 * stats.route set): HTTP and LLM families. */
void gw_metrics_request_done(const gw_req_t *req);
/* One upstream attempt ended with result. */
void gw_metrics_upstream_attempt(const char *backend, gw_up_result_t result);
/* This thread's upstream connections of backend in state (a gauge, summed over threads). */
void gw_metrics_upstream_conns(const char *backend, const char *state, int n);
/* This thread's breaker of backend is open (1) or closed (0); the scrape shows the max. */
void gw_metrics_breaker_open(const char *backend, int open);
/* A policy raised an error (policy "host": the host library itself). */
void gw_metrics_policy_error(const char *policy, const char *phase);
/* A reload was validated and applied (ok) or refused. */
void gw_metrics_reload(int ok);

/* gateway_upstream_connections{backend,state}: every second (on an unref'd timer) each
 * backend of the set reports its connections by state (vt->conn_states); closing the watch
 * publishes zeros for the states last seen. Also sets gateway_upstream_breaker_open{backend}
 * to 0 once, so the series exist before any failure. The set must outlive the watch. NULL
 * when the metrics are off. */
typedef struct gw_metrics_pools_s gw_metrics_pools_t;
gw_metrics_pools_t *gw_metrics_pools_watch(uv_loop_t *loop, const gw_backends_t *set);
void gw_metrics_pools_close(gw_metrics_pools_t *w);

/* GET|HEAD /metrics: the exposition when the client IP is in allow or the request carries
 * `Authorization: Bearer <admin_key>` (admin_key NULL or "": no key accepted); otherwise
 * 403 forbidden. */
void gw_metrics_serve(gw_req_t *req, const gw_cidr_list_t *allow, const char *admin_key);

#endif
