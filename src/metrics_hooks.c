/*
 * pieces-gateway: metrics hooks (request completion, LLM calls, upstreams, policies, reloads)
 * and the GET /metrics handler.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: metrics_hooks.h. Uses: metrics.h, http (requests, answers), upstream (pool
 * counters). Never: keeps a pointer to a request, or blocks the loop (a scrape formats in
 * memory and answers at once).
 */
#include "metrics_hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_ffi.h"
#include "metrics.h"

static gw_mlabel_t label_of(const char *s)
{
    return s && *s ? gw_metrics_label(s, strlen(s)) : GW_ML_OTHER;
}

static gw_mlabel_t method_label(const char *m)
{
    static const char *known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; m && i < GW_ARRAY_SIZE(known); i++)
        if (strcmp(m, known[i]) == 0)
            return (gw_mlabel_t)(GW_ML_GET + i);
    return GW_ML_OTHER;
}

static gw_mlabel_t status_label(int status)
{
    return status >= 100 && status <= 599 ? GW_ML_STATUS(status) : GW_ML_OTHER;
}

void gw_metrics_llm_start(gw_req_t *req, const char *backend, int stream)
{
    gw_req_stats_t *st = &req->stats;
    size_t n = backend ? strnlen(backend, sizeof(st->backend) - 1) : 0;
    memcpy(st->backend, backend ? backend : "", n);
    st->backend[n] = '\0';
    st->llm = 1;
    st->stream = stream ? 1 : 0;
    if (st->stream)
        gw_metrics_add(GW_MF_LLM_ACTIVE_STREAMS, NULL, 1);
}

static void llm_done(const gw_req_t *req, gw_mlabel_t status, uint64_t now, double duration)
{
    const gw_req_stats_t *st = &req->stats;
    const char *model = st->model[0] ? st->model : req->log_model ? req->log_model : "";
    gw_mlabel_t m = gw_metrics_model_label(model, strlen(model));
    gw_mlabel_t l[4] = {m == GW_ML_EMPTY ? GW_ML_OTHER : m, label_of(st->backend),
                        st->stream ? GW_ML_TRUE : GW_ML_FALSE, status};
    gw_metrics_add(GW_MF_LLM_REQUESTS, l, 1);
    gw_metrics_observe(GW_MF_LLM_DURATION, l, duration);
    if (st->stream) {
        gw_metrics_add(GW_MF_LLM_ACTIVE_STREAMS, NULL, -1);
        if (st->first_token_ns >= req->start_ns) {
            gw_metrics_observe(GW_MF_LLM_TTFT, l, (double)(st->first_token_ns - req->start_ns) / 1e9);
            if (st->completion_tokens > 1 && now >= st->first_token_ns)
                gw_metrics_observe(GW_MF_LLM_TPOT, l,
                                   (double)(now - st->first_token_ns) / 1e9 /
                                       (double)(st->completion_tokens - 1));
        }
    }
    if (st->usage_source == GW_USAGE_NONE)
        return;
    l[2] = GW_ML_PROMPT;
    gw_metrics_add(GW_MF_LLM_TOKENS, l, (double)st->prompt_tokens);
    l[2] = GW_ML_COMPLETION;
    gw_metrics_add(GW_MF_LLM_TOKENS, l, (double)st->completion_tokens);
    l[0] = st->usage_source == GW_USAGE_UPSTREAM ? GW_ML_UPSTREAM : GW_ML_TOKENIZER;
    gw_metrics_add(GW_MF_LLM_USAGE_SOURCE, l, 1);
}

void gw_metrics_request_done(const gw_req_t *req)
{
    if (!gw_metrics_enabled())
        return;
    uint64_t now = gw_now_ns();
    double duration = now > req->start_ns ? (double)(now - req->start_ns) / 1e9 : 0;
    gw_mlabel_t status = status_label(req->status);
    gw_mlabel_t l[3] = {label_of(req->stats.route), method_label(req->method_name), status};
    gw_metrics_add(GW_MF_HTTP_REQUESTS, l, 1);
    gw_metrics_observe(GW_MF_HTTP_DURATION, l, duration);
    if (req->stats.llm)
        llm_done(req, status, now, duration);
}

void gw_metrics_upstream_attempt(const char *backend, gw_up_result_t result)
{
    if (!gw_metrics_enabled())
        return;
    gw_mlabel_t l[2] = {label_of(backend), (unsigned)result < GW_UP_RESULT_COUNT
                                               ? (gw_mlabel_t)(GW_ML_RESULT_FIRST + result)
                                               : GW_ML_OTHER};
    gw_metrics_add(GW_MF_UPSTREAM_ATTEMPTS, l, 1);
}

void gw_metrics_upstream_conns(const char *backend, const char *state, int n)
{
    if (!gw_metrics_enabled())
        return;
    gw_mlabel_t l[2] = {label_of(backend), label_of(state)};
    gw_metrics_set(GW_MF_UPSTREAM_CONNECTIONS, l, n);
}

void gw_metrics_breaker_open(const char *backend, int open)
{
    if (!gw_metrics_enabled())
        return;
    gw_mlabel_t l[1] = {label_of(backend)};
    gw_metrics_set(GW_MF_UPSTREAM_BREAKER_OPEN, l, open ? 1 : 0);
}

void gw_metrics_policy_error(const char *policy, const char *phase)
{
    if (!gw_metrics_enabled())
        return;
    gw_mlabel_t l[2] = {label_of(policy), label_of(phase)};
    gw_metrics_add(GW_MF_POLICY_ERRORS, l, 1);
}

void gw_metrics_reload(int ok)
{
    if (!gw_metrics_enabled())
        return;
    gw_mlabel_t l[1] = {ok ? gw_metrics_label("ok", 2) : gw_metrics_label("error", 5)};
    gw_metrics_add(GW_MF_RELOADS, l, 1);
}

/* ---------- upstream pools ---------- */

struct gw_metrics_pools_s {
    uv_timer_t timer;
    const gw_backends_t *set;
};

typedef struct {
    const char *backend;
    int zero;
} emit_ctx_t;

static void emit_state(void *ud, const char *state, int n)
{
    emit_ctx_t *e = ud;
    gw_metrics_upstream_conns(e->backend, state, e->zero ? 0 : n);
}

static void publish_pools(gw_metrics_pools_t *w, int zero)
{
    for (size_t i = 0; i < w->set->n; i++) {
        gw_backend_t *b = w->set->list[i];
        emit_ctx_t e = {b->name, zero};
        if (b->vt->conn_states)
            b->vt->conn_states(b, emit_state, &e);
    }
}

static void on_pools_tick(uv_timer_t *t) { publish_pools(t->data, 0); }

gw_metrics_pools_t *gw_metrics_pools_watch(uv_loop_t *loop, const gw_backends_t *set)
{
    if (!gw_metrics_enabled())
        return NULL;
    gw_metrics_pools_t *w = gw_calloc(1, sizeof(*w));
    w->set = set;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_pools_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&w->timer); /* never keeps a draining loop alive */
    for (size_t i = 0; i < set->n; i++) /* the series exist (closed) before any failure */
        gw_metrics_breaker_open(set->list[i]->name, 0);
    publish_pools(w, 0);
    return w;
}

static void on_pools_closed(uv_handle_t *h) { free(h->data); }

void gw_metrics_pools_close(gw_metrics_pools_t *w)
{
    if (!w)
        return;
    publish_pools(w, 1);
    uv_close((uv_handle_t *)&w->timer, on_pools_closed);
}

/* ---------- GET /metrics ---------- */

static int allowed(const gw_req_t *req, const gw_cidr_list_t *allow, const char *admin_key)
{
    gw_ip_t ip;
    const char *client = req->client_ip[0] ? req->client_ip : req->peer_ip;
    if (allow && gw_ip_parse(client, strlen(client), &ip) == 0 &&
        gw_cidr_list_contains(allow, &ip))
        return 1;
    size_t n = 0;
    const char *h = gw_req_header(req, "Authorization", 13, &n);
    if (!admin_key || !*admin_key || !h || n < 7 || memcmp(h, "Bearer ", 7) != 0)
        return 0;
    return gw_ffi_secure_equal(h + 7, n - 7, admin_key, strlen(admin_key)) == 1;
}

void gw_metrics_serve(gw_req_t *req, const gw_cidr_list_t *allow, const char *admin_key)
{
    if (!allowed(req, allow, admin_key))
        return gw_resp_send_error(req, 403, "forbidden",
                                  "Metrics are not available to this client: its address is not "
                                  "in METRICS_ALLOW and it sent no valid admin key "
                                  "(Authorization: Bearer <ADMIN_KEY>)",
                                  "error");
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_reserve(&b, 64 * 1024);
    gw_metrics_render(&b);
    gw_resp_add_header(req, "Cache-Control", 13, "no-store", 8);
    gw_resp_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    gw_buf_dispose(&b);
}
