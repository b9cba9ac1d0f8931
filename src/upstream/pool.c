/*
 * pieces-gateway: the upstream connection pool (public gw_upstream_* API).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: pool creation and close, call placement (least-loaded ready connection within the
 *   peer's MAX_CONCURRENT_STREAMS, else the FIFO queue), growth up to max_conns, the idle
 *   sweep down to min_conns, reconnect backoff, stats. The policy is described in
 *   gw_upstream.h.
 * Uses: conn.c, call.c; a uv_idle "kick" that runs deferred work (dispatch, resumed calls,
 *   draining connections, writes) from the loop, outside every nghttp2 callback.
 * Must never: share anything between loops/threads; free the pool before every connection,
 *   call timer and pool handle has closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_int.h"

#define BACKOFF_FIRST_MS 100.0

static uint64_t ms(double seconds)
{
    return (uint64_t)(seconds * 1000.0 + 0.5);
}

static void on_kick(uv_idle_t *h);

void gw_pool_kick(gw_upstream_t *u)
{
    if (!u->close_done && !uv_is_closing((uv_handle_t *)&u->kick) && !uv_is_active((uv_handle_t *)&u->kick))
        uv_idle_start(&u->kick, on_kick);
}

static int count_conns(gw_upstream_t *u, int connecting, int ready)
{
    int n = 0;
    for (conn_t *c = u->conns; c; c = c->next)
        n += (connecting && c->state == CONN_CONNECTING) || (ready && c->state == CONN_READY);
    return n;
}

static void check_closed(gw_upstream_t *u)
{
    if (!u->closing || u->conns || u->handles > 0 || u->close_done)
        return;
    u->close_done = 1;
    if (u->ssl_ctx)
        SSL_CTX_free(u->ssl_ctx);
    void (*cb)(void *) = u->on_closed;
    void *ud = u->closed_ud;
    free(u->address);
    free(u->ca_file);
    free(u);
    if (cb)
        cb(ud);
}

void gw_pool_handle_closed(gw_upstream_t *u)
{
    u->handles--;
    check_closed(u);
}

static void on_pool_handle_closed(uv_handle_t *h)
{
    gw_pool_handle_closed(h->data);
}

void gw_pool_requeue(gw_upstream_t *u, gw_grpc_call_t *c)
{
    c->state = CALL_QUEUED;
    c->prev = NULL;
    c->next = u->qhead;
    if (u->qhead)
        u->qhead->prev = c;
    else
        u->qtail = c;
    u->qhead = c;
    u->queued++;
    gw_pool_kick(u);
}

static void fail_queue(gw_upstream_t *u, int kind, int st, const char *msg)
{
    while (u->qhead)
        gw_call_fail_now(u->qhead, kind, st, msg);
}

static void maintain(gw_upstream_t *u)
{
    int live = count_conns(u, 1, 1);
    if (u->closing || uv_is_active((uv_handle_t *)&u->backoff_timer))
        return;
    for (; live < u->conf.min_conns; live++)
        if (!gw_conn_open(u))
            break;
}

static conn_t *least_loaded(gw_upstream_t *u)
{
    conn_t *best = NULL;
    for (conn_t *c = u->conns; c; c = c->next)
        if (c->state == CONN_READY && (uint32_t)c->nstreams < c->max_streams &&
            (!best || c->nstreams < best->nstreams))
            best = c;
    return best;
}

static void dispatch(gw_upstream_t *u)
{
    conn_t *best;
    while (u->qhead && (best = least_loaded(u))) {
        gw_grpc_call_t *c = u->qhead;
        gw_call_detach(c);
        int rc = gw_conn_submit(best, c);
        if (rc == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) { /* stream ids exhausted: retire it */
            best->state = CONN_DRAINING;
            gw_conn_stream_done(best);
            gw_pool_requeue(u, c);
        } else if (rc != 0) {
            gw_call_fail_now(c, GW_GRPC_ERR_NOMEM, 8, nghttp2_strerror(rc));
        }
    }
    if (u->qhead && count_conns(u, 1, 0) == 0 && count_conns(u, 1, 1) < u->conf.max_conns &&
        !gw_conn_open(u))
        fail_queue(u, GW_GRPC_ERR_NOMEM, 8, "cannot allocate a connection");
}

static void pop_resumed(gw_upstream_t *u)
{
    while (u->resume) {
        gw_grpc_call_t *c = u->resume;
        u->resume = c->rnext;
        if (u->resume)
            u->resume->rprev = NULL;
        c->rnext = c->rprev = NULL;
        c->in_resume = 0;
        gw_call_resume_now(c);
    }
}

static void close_all(gw_upstream_t *u)
{
    uv_timer_stop(&u->scale_timer);
    uv_timer_stop(&u->backoff_timer);
    fail_queue(u, GW_GRPC_ERR_CLOSED, 14, "upstream pool closed");
    while (u->ending)
        gw_call_fail_now(u->ending, GW_GRPC_ERR_CLOSED, 14, "upstream pool closed");
    for (conn_t *c = u->conns; c; c = c->next)
        gw_conn_shutdown(c);
    uv_close((uv_handle_t *)&u->kick, on_pool_handle_closed);
    uv_close((uv_handle_t *)&u->scale_timer, on_pool_handle_closed);
    uv_close((uv_handle_t *)&u->backoff_timer, on_pool_handle_closed);
}

static void on_kick(uv_idle_t *h)
{
    gw_upstream_t *u = h->data;
    uv_idle_stop(h);
    if (u->closing) {
        close_all(u);
        return;
    }
    pop_resumed(u);
    for (conn_t *c = u->conns; c; c = c->next)
        if (c->want_close && c->nstreams == 0 && c->state != CONN_CLOSING)
            gw_conn_shutdown(c);
    dispatch(u);
    maintain(u);
    for (conn_t *c = u->conns; c; c = c->next)
        if (c->state != CONN_CLOSING)
            gw_conn_flush(c);
}

static void on_backoff(uv_timer_t *t)
{
    gw_upstream_t *u = t->data;
    maintain(u);
}

static void on_scale(uv_timer_t *t)
{
    gw_upstream_t *u = t->data;
    int ready = count_conns(u, 0, 1);
    for (conn_t *c = u->conns; c && ready > u->conf.min_conns; c = c->next) {
        if (c->state == CONN_READY && c->nstreams == 0 && u->queued == 0) {
            gw_conn_shutdown(c);
            ready--;
        }
    }
}

void gw_pool_conn_ready(gw_upstream_t *u, conn_t *c)
{
    (void)c;
    u->backoff_ms = 0;
    gw_pool_kick(u);
}

void gw_pool_conn_failed(gw_upstream_t *u, conn_t *c, int was_connecting, int kind,
                         const char *msg)
{
    snprintf(u->last_err, sizeof(u->last_err), "%s", msg);
    u->last_kind = kind;
    if (was_connecting)
        u->cnt.conns_failed++;
    if (u->closing)
        return;
    if (was_connecting && count_conns(u, 1, 1) == 0)
        fail_queue(u, kind, 14, msg);
    if (!c->goaway && count_conns(u, 1, 1) < u->conf.min_conns &&
        !uv_is_active((uv_handle_t *)&u->backoff_timer)) {
        u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : BACKOFF_FIRST_MS;
        if (u->backoff_ms > u->conf.backoff_max * 1000.0)
            u->backoff_ms = u->conf.backoff_max * 1000.0;
        uv_timer_start(&u->backoff_timer, on_backoff, (uint64_t)u->backoff_ms, 0);
    }
    gw_pool_kick(u);
}

void gw_pool_conn_freed(gw_upstream_t *u, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        u->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    u->cnt.conns_closed++;
    free(c);
    if (u->closing)
        check_closed(u);
    else
        gw_pool_kick(u); /* keep min_conns */
}

/* ---- public API ------------------------------------------------------------------------ */

static void conf_defaults(gw_upstream_conf_t *c)
{
    if (c->min_conns < 0)
        c->min_conns = 0;
    if (c->max_conns <= 0)
        c->max_conns = 1;
    if (c->max_conns < c->min_conns)
        c->max_conns = c->min_conns;
    if (c->scale_interval <= 0)
        c->scale_interval = 30;
    if (c->ping_interval <= 0)
        c->ping_interval = 30;
    if (c->ping_timeout <= 0)
        c->ping_timeout = 10;
    if (c->connect_timeout <= 0)
        c->connect_timeout = 10;
    if (c->backoff_max <= 0)
        c->backoff_max = 10;
    if (c->max_message == 0)
        c->max_message = 4u << 20;
}

static char *err_dup(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

int gw_upstream_new(uv_loop_t *loop, const gw_upstream_conf_t *conf, gw_upstream_t **out,
                    char **err)
{
    gw_upstream_t *u;
    const char *perr = NULL;
    int rc;

    if (err)
        *err = NULL;
    if (!loop || !conf || !out)
        return -EINVAL;
    if (!(u = calloc(1, sizeof(*u))))
        return -ENOMEM;
    u->loop = loop;
    u->conf = *conf;
    conf_defaults(&u->conf);
    rc = gw_upstream_addr_parse(conf->address, &u->addr, &perr);
    if (rc != 0) {
        if (err)
            *err = err_dup("invalid upstream address: ", perr);
        goto fail_conf;
    }
    u->address = strdup(conf->address);
    u->ca_file = conf->ca_file ? strdup(conf->ca_file) : NULL;
    u->conf.address = u->address;
    u->conf.ca_file = u->ca_file;
    u->vt = &gw_transport_plain;
    if (u->addr.tls) {
        u->vt = &gw_transport_tls;
        if ((rc = gw_tls_ctx_new(u->ca_file, u->conf.insecure, &u->ssl_ctx, err)) != 0)
            goto fail_conf;
    }
    uv_idle_init(loop, &u->kick);
    uv_timer_init(loop, &u->scale_timer);
    uv_timer_init(loop, &u->backoff_timer);
    u->kick.data = u->scale_timer.data = u->backoff_timer.data = u;
    u->handles = 3;
    uint64_t si = ms(u->conf.scale_interval);
    uv_timer_start(&u->scale_timer, on_scale, si, si);
    gw_pool_kick(u); /* opens min_conns connections */
    *out = u;
    return 0;

fail_conf:
    free(u->address);
    free(u->ca_file);
    free(u);
    return rc;
}

void gw_upstream_close(gw_upstream_t *u, void (*on_closed)(void *ud), void *ud)
{
    if (!u || u->closing)
        return;
    u->closing = 1;
    u->on_closed = on_closed;
    u->closed_ud = ud;
    gw_pool_kick(u);
}

static size_t conn_buffered(const conn_t *c)
{
    size_t n = 0;
    for (const gw_grpc_call_t *k = c->calls; k; k = k->next)
        n += gw_grpc_deframer_pending(&k->df);
    return n;
}

int gw_upstream_stats_json(gw_upstream_t *u, char *buf, size_t cap)
{
    size_t o = 0, buffered = 0;
    int n, streams = 0, conns = count_conns(u, 1, 1);
    for (conn_t *c = u->conns; c; c = c->next)
        streams += c->nstreams, buffered += conn_buffered(c);
    for (const gw_grpc_call_t *k = u->ending; k; k = k->next)
        buffered += gw_grpc_deframer_pending(&k->df);
#define EMIT(...)                                                                              \
    do {                                                                                       \
        n = snprintf(buf + o, cap > o ? cap - o : 0, __VA_ARGS__);                             \
        if (n < 0 || (size_t)n >= (cap > o ? cap - o : 0))                                     \
            return -ENOSPC;                                                                    \
        o += (size_t)n;                                                                        \
    } while (0)
    EMIT("{\"address\":\"%s\",\"connections\":%d,\"streams\":%d,\"queued\":%d,"
         "\"buffered\":%zu,\"conns\":[",
         u->addr.authority, conns, streams, u->queued, buffered);
    for (conn_t *c = u->conns; c; c = c->next)
        EMIT("%s{\"id\":%u,\"state\":\"%s\",\"streams\":%d,\"max_streams\":%u,"
             "\"buffered\":%zu}",
             c == u->conns ? "" : ",", c->id, gw_conn_state_name(c), c->nstreams,
             c->state == CONN_CONNECTING ? 0 : c->max_streams, conn_buffered(c));
    EMIT("]}");
#undef EMIT
    return (int)o;
}

void gw_upstream_counters(gw_upstream_t *u, gw_upstream_counters_t *out)
{
    *out = u->cnt;
    out->connections = count_conns(u, 1, 1);
    out->ready = count_conns(u, 0, 1);
    out->queued = u->queued;
    out->streams = 0;
    for (conn_t *c = u->conns; c; c = c->next)
        out->streams += c->nstreams;
}

const char *gw_grpc_error_name(gw_grpc_error_kind_t kind)
{
    static const char *names[] = {"ok", "status", "connect", "dns", "tls", "reset", "refused",
                                  "timeout", "ping_timeout", "protocol", "http", "closed",
                                  "nomem", "eof"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}
