/*
 * pieces-gateway: worker threads and the request dispatcher.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_worker_*. Uses: http, lua_host, process, routes.
 * Never: shares a loop, a VM or a connection with another thread.
 *
 * Dispatch order for a complete request: metrics and client IP; OPTIONS -> 204 and unknown
 * methods -> 405 (before any policy, as the original's CORS layer; DELETE only under /admin/);
 * Lua rewrite/access/content (only when a policy defines one of them); then the built-in routes
 * in C. A phase that waits for the shared store continues in after_pre / log_done once its I/O
 * completed; a log phase that waits keeps its request (req->held) past the connection.
 *
 * Stop: the listener closes and idle connections go; requests in flight get the shutdown grace
 * period, then their connections are closed (the requests aborted). A stopping worker also waits
 * for its held requests (their store calls end by their own timeout) before it closes its store.
 * Either way the loop ends with every request completed and every VM released.
 */
#include "worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access_log.h"
#include "gw.h"
#include "log.h"
#include "metrics_hooks.h"
#include "process.h"
#include "routes.h"
#include "store.h"

struct gw_worker_s {
    int id;
    const gw_config_t *cfg;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    atomic_int want_stop;
    atomic_int want_reload;
    gw_http_server_t *http;
    gw_vm_t *vm;
    gw_routes_t *routes;
    gw_store_t *store;  /* the Redis connection of this worker's requests, or NULL */
    char store_name[32];
    int held;           /* requests whose log phase still waits */
    int drained;        /* the HTTP server has no connection left (stopping) */
    uv_sem_t ready;
    int start_rc;
    char *start_err;
    int stopping;
    uv_timer_t grace; /* while stopping: in-flight requests get cfg->shutdown_grace seconds */
};

/* ---------- dispatch ---------- */

static int is_api_path(const gw_config_t *cfg, const char *path, size_t len)
{
    size_t pl = strlen(cfg->api_prefix);
    return len >= pl && memcmp(path, cfg->api_prefix, pl) == 0;
}

/* Several X-Forwarded-For headers count as one list, in order (RFC 7230 section 3.2.2). */
static const char *forwarded_for(gw_req_t *req, gw_buf_t *joined, size_t *len)
{
    const char *first = NULL;
    size_t n = 0, count = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const gw_header_t *h = &req->headers[i];
        if (h->name_len != 15 || strncasecmp(req->head.data + h->name_off, "X-Forwarded-For", 15))
            continue;
        if (count++ == 0) {
            first = req->head.data + h->value_off;
            n = h->value_len;
            continue;
        }
        if (count == 2)
            gw_buf_append(joined, first, n);
        gw_buf_putc(joined, ',');
        gw_buf_append(joined, req->head.data + h->value_off, h->value_len);
    }
    if (count > 1) {
        *len = joined->len;
        return joined->data;
    }
    *len = n;
    return first;
}

static void resolve_client_ip(const gw_config_t *cfg, gw_req_t *req)
{
    size_t xl = 0, rl = 0;
    gw_buf_t joined;
    gw_buf_init(&joined);
    const char *xff = forwarded_for(req, &joined, &xl);
    const char *xri = gw_req_header(req, "X-Real-IP", 9, &rl);
    gw_client_ip(&req->peer, xff, xl, xri, rl, &cfg->trusted_proxies, req->client_ip,
                 sizeof(req->client_ip));
    gw_buf_dispose(&joined);
}

static void send_answer(gw_req_t *req)
{
    gw_resp_send(req, req->answer_status, req->answer_ctype, req->answer_body.data,
                 req->answer_body.len);
}

/* After rewrite/access/content (at once, or when a waiting phase finished). */
static void after_pre(gw_req_t *req, void *ud)
{
    gw_worker_t *w = ud;
    if (req->answered) {
        send_answer(req);
        return;
    }
    gw_routes_dispatch(w->routes, req->vm, req);
}

static void worker_error_body(const gw_req_t *req, gw_buf_t *out, int status, const char *code,
                              const char *message, const char *type, void *ud)
{
    gw_worker_t *w = ud;
    gw_routes_error_body(w->routes, req, out, status, code, message, type);
}

static int method_allowed(const gw_req_t *req)
{
    const char *m = req->method_name;
    if (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "HEAD") == 0)
        return 1;
    /* DELETE /admin/blacklist/{ip}: only the admin endpoints take it */
    return strcmp(m, "DELETE") == 0 && req->path_len > 7 && memcmp(req->path, "/admin/", 7) == 0;
}

void gw_worker_on_request(gw_req_t *req, void *ud)
{
    gw_worker_t *w = ud;
    const gw_config_t *cfg = w->cfg;
    gw_metrics_count(is_api_path(cfg, req->path, req->path_len));
    resolve_client_ip(cfg, req);
    if (strcmp(req->method_name, "OPTIONS") == 0) {
        gw_resp_send(req, 204, NULL, NULL, 0);
        return;
    }
    if (!method_allowed(req)) {
        gw_resp_send_error(req, 405, "method_not_allowed", "Method not allowed", "error");
        return;
    }
    gw_vm_t *vm = w->vm;
    gw_vm_ref(vm);
    req->vm = vm;
    if ((gw_vm_phases(vm) & (GW_PHASE_REWRITE | GW_PHASE_ACCESS | GW_PHASE_CONTENT)) &&
        gw_vm_handle(vm, req, after_pre, w) == GW_VM_SUSPENDED)
        return;
    after_pre(req, w);
}

/* What every completed request records: its route (if no handler named it), metrics, the access
 * log line. */
static void record(gw_worker_t *w, gw_req_t *req)
{
    gw_routes_classify(w->routes, req); /* what no handler recorded */
    gw_metrics_request_done(req);
    gw_access_log(req, w->cfg->access_log_json);
}

static void finish_stop(gw_worker_t *w);

/* After the log phase (at once, or when it waited: then the request was held). */
static void log_done(gw_req_t *req, void *ud)
{
    gw_worker_t *w = ud;
    gw_vm_t *vm = req->vm;
    req->vm = NULL;
    if (vm)
        gw_vm_unref(vm);
    record(w, req);
    if (req->held) {
        gw_req_free(req);
        w->held--;
        finish_stop(w);
    }
}

void gw_worker_on_complete(gw_req_t *req, void *ud)
{
    gw_worker_t *w = ud;
    gw_vm_t *vm = req->vm;
    if (vm && (gw_vm_phases(vm) & GW_PHASE_LOG) &&
        gw_vm_log(vm, req, log_done, w) == GW_VM_SUSPENDED) {
        req->held = 1; /* the server detaches it; log_done frees it */
        w->held++;
        return;
    }
    log_done(req, w);
}

static __thread gw_worker_t *current; /* the worker running on this thread */

void gw_worker_backends_json(gw_buf_t *out)
{
    if (current && current->routes)
        gw_routes_backends_json(current->routes, out);
    else
        gw_buf_puts(out, "{}");
}

int gw_worker_route_phase(const gw_req_t *req)
{
    return current && current->routes && gw_routes_has_route_phase(current->routes, req);
}

/* ---------- lifecycle ---------- */

/* Once no connection and no held request is left, close what keeps the loop alive. */
static void finish_stop(gw_worker_t *w)
{
    if (!w->drained || w->held > 0)
        return;
    w->drained = 0;
    gw_routes_close(w->routes);
    if (w->store)
        gw_store_close(w->store); /* nothing waits on it any more */
    w->store = NULL;
    gw_store_set_thread(NULL);
    uv_close((uv_handle_t *)&w->async, NULL);
}

static void on_drained(void *ud)
{
    gw_worker_t *w = ud;
    if (!uv_is_closing((uv_handle_t *)&w->grace))
        uv_close((uv_handle_t *)&w->grace, NULL);
    w->drained = 1;
    finish_stop(w);
}

/* The grace period is over: close every connection now. Unfinished requests are aborted there
 * (their handlers are told, their log phase runs and they release their VM), so the worker
 * still ends its loop with everything freed, as after a finished drain. */
static void on_grace_over(uv_timer_t *t)
{
    gw_worker_t *w = t->data;
    gw_warn("worker %d: shutdown grace period over, closing %zu connection(s)", w->id,
            gw_http_server_connections(w->http));
    gw_http_server_free(w->http); /* the drain callback is dropped: it would not come now */
    on_drained(w);
}

static void start_stop(gw_worker_t *w)
{
    w->stopping = 1;
    uv_timer_init(&w->loop, &w->grace);
    w->grace.data = w;
    uv_timer_start(&w->grace, on_grace_over, (uint64_t)(w->cfg->shutdown_grace * 1000), 0);
    gw_http_server_drain(w->http, on_drained, w); /* may call on_drained at once */
}

static void do_reload(gw_worker_t *w)
{
    gw_vm_opts_t opts = {w->cfg->config_path, w->id, 2};
    gw_vm_t *vm = NULL;
    char *err = NULL;
    if (gw_vm_new(&opts, &vm, &err) != 0) {
        gw_error("worker %d: reload failed, keeping the current policies: %s", w->id, err);
        gw_reload_record(w->id, 0, err);
        free(err);
        return;
    }
    gw_vm_t *old = w->vm;
    w->vm = vm;
    gw_vm_unref(old); /* closed when its last request ends */
    gw_reload_record(w->id, 1, NULL);
}

static void on_async(uv_async_t *a)
{
    gw_worker_t *w = a->data;
    if (atomic_exchange(&w->want_stop, 0) && !w->stopping) {
        start_stop(w);
        return;
    }
    if (atomic_exchange(&w->want_reload, 0) && !w->stopping)
        do_reload(w);
}

static int worker_setup(gw_worker_t *w)
{
    const gw_config_t *cfg = w->cfg;
    gw_vm_opts_t opts = {cfg->config_path, w->id, 2};
    if (cfg->store.redis) { /* before the VM: policies may use the store in new() */
        snprintf(w->store_name, sizeof(w->store_name), "worker %d", w->id);
        gw_store_opts_t so = {.name = w->store_name};
        w->store = gw_store_new(&w->loop, cfg, &so);
        gw_store_set_thread(w->store);
    }
    if (gw_vm_new(&opts, &w->vm, &w->start_err) != 0)
        return GW_ERROR;
    if (gw_routes_new(&w->loop, cfg, &w->routes, &w->start_err) != 0)
        return GW_ERROR;
    gw_http_conf_t hc = {
        .max_connections = cfg->max_connections,
        .max_header_size = cfg->max_header_size,
        .max_body_size = cfg->max_body_size,
        .header_timeout = cfg->header_timeout,
        .keepalive_timeout = cfg->keepalive_timeout,
        .trusted_proxies = &cfg->trusted_proxies,
        .on_request = gw_worker_on_request,
        .on_complete = gw_worker_on_complete,
        .error_body = worker_error_body,
        .ud = w,
    };
    return gw_http_server_start(&w->loop, cfg->listen_host, cfg->port, &hc, &w->http,
                                &w->start_err);
}

static void worker_cleanup(gw_worker_t *w)
{
    gw_store_set_thread(NULL);
    if (w->routes)
        gw_routes_free(w->routes);
    w->routes = NULL;
    if (w->vm)
        gw_vm_unref(w->vm);
    w->vm = NULL;
    uv_loop_close(&w->loop);
}

static void worker_main(void *arg)
{
    gw_worker_t *w = arg;
    current = w;
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    w->start_rc = worker_setup(w);
    if (w->start_rc != 0) {
        uv_close((uv_handle_t *)&w->async, NULL);
        if (w->routes)
            gw_routes_close(w->routes);
        if (w->store)
            gw_store_close(w->store);
        w->store = NULL;
        uv_run(&w->loop, UV_RUN_DEFAULT);
        worker_cleanup(w);
        uv_sem_post(&w->ready); /* the starter frees w: touch nothing after this */
        return;
    }
    uv_sem_post(&w->ready);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    gw_http_server_free(w->http);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    gw_http_server_release(w->http);
    w->http = NULL;
    worker_cleanup(w);
    gw_process_worker_exited(w->id);
}

int gw_worker_spawn(int id, const gw_config_t *cfg, gw_worker_t **out, char **err)
{
    gw_worker_t *w = gw_calloc(1, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    uv_sem_init(&w->ready, 0);
    uv_thread_options_t opts = {UV_THREAD_HAS_STACK_SIZE, 8 << 20};
    if (uv_thread_create_ex(&w->thread, &opts, worker_main, w) != 0) {
        *err = gw_strdup("cannot create a worker thread");
        uv_sem_destroy(&w->ready);
        free(w);
        return GW_ERROR;
    }
    *out = w;
    return GW_OK;
}

int gw_worker_wait_ready(gw_worker_t *w, char **err)
{
    uv_sem_wait(&w->ready);
    if (w->start_rc != 0) {
        *err = w->start_err ? w->start_err : gw_strdup("worker failed to start");
        uv_thread_join(&w->thread);
        uv_sem_destroy(&w->ready);
        free(w);
        return GW_ERROR;
    }
    return GW_OK;
}

void gw_worker_stop(gw_worker_t *w)
{
    atomic_store(&w->want_stop, 1);
    uv_async_send(&w->async);
}

void gw_worker_reload(gw_worker_t *w)
{
    atomic_store(&w->want_reload, 1);
    uv_async_send(&w->async);
}

void gw_worker_join(gw_worker_t *w)
{
    uv_thread_join(&w->thread);
    uv_sem_destroy(&w->ready);
    free(w->start_err);
    free(w);
}
