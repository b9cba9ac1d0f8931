/*
 * pieces-gateway: one HTTP/2 client connection (nghttp2 session over a transport).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: session setup (1 MiB stream and connection windows, manual WINDOW_UPDATE, no
 *   push), request submission, the write pump, connect timeout, keepalive PING while streams
 *   are active (sent when nothing was read for ping_interval; the connection is dropped when
 *   the ACK does not come within ping_timeout), GOAWAY draining and graceful shutdown.
 * Uses: nghttp2, transport.c, call.c for everything stream-related, the pool for policy.
 * Must never: call nghttp2_session_mem_send/_del or free the connection from inside an nghttp2
 *   callback (in_h2 guards that), or free it before all three handles have closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_int.h"

#define WRITE_HIGH_WATER (256 * 1024)

static uint64_t ms(double seconds)
{
    return (uint64_t)(seconds * 1000.0 + 0.5);
}

const char *gw_conn_state_name(const conn_t *c)
{
    static const char *names[] = {"connecting", "ready", "draining", "closing"};
    return names[c->state];
}

static void on_conn_timer(uv_timer_t *t);

static void handle_done(conn_t *c)
{
    if (--c->handles > 0)
        return;
    if (c->sess)
        nghttp2_session_del(c->sess);
    c->sess = NULL;
    gw_pool_conn_freed(c->u, c);
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_done(h->data);
}

static void on_tr_closed(gw_transport_t *t)
{
    handle_done(t->owner);
}

static void close_handles(conn_t *c, int after_writes)
{
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->ping_timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->ping_timer, on_handle_closed);
    if (after_writes)
        gw_transport_close_after_writes(&c->tr);
    else
        gw_transport_close(&c->tr);
}

/* A connection that breaks before the peer's SETTINGS (closed, reset, not HTTP/2 at all) is a
 * failed connect for the calls waiting on it: unreachable, not a bad answer. */
static int setup_kind(int kind)
{
    switch (kind) {
    case GW_GRPC_ERR_RESET:
    case GW_GRPC_ERR_EOF:
    case GW_GRPC_ERR_PROTOCOL:
        return GW_GRPC_ERR_CONNECT;
    default:
        return kind;
    }
}

void gw_conn_fail(conn_t *c, int kind, const char *msg)
{
    int was_connecting = c->state == CONN_CONNECTING;
    int st = kind == GW_GRPC_ERR_PROTOCOL ? 13 : 14;

    if (c->state == CONN_CLOSING)
        return;
    if (was_connecting)
        kind = setup_kind(kind);
    c->state = CONN_CLOSING;
    while (c->calls)
        gw_call_end(c->calls, kind, st, msg);
    close_handles(c, 0);
    gw_pool_conn_failed(c->u, c, was_connecting, kind, msg);
}

void gw_conn_shutdown(conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    c->want_close = 0;
    while (c->calls) /* only from pool close: streams are normally gone by now */
        gw_call_fail_now(c->calls, GW_GRPC_ERR_CLOSED, 14, "upstream pool closed");
    if (c->sess && c->tr.ready && !c->tr.failed) {
        nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR);
        gw_conn_flush(c);
    }
    close_handles(c, 1);
}

void gw_conn_stream_done(conn_t *c)
{
    if (c->u->qhead)
        gw_pool_kick(c->u); /* a stream slot is free for the queue */
    if (c->nstreams > 0)
        return;
    c->idle_since = uv_now(c->u->loop);
    if (c->state == CONN_DRAINING) {
        c->want_close = 1;
        gw_pool_kick(c->u);
    }
}

void gw_conn_flush(conn_t *c)
{
    if (c->in_h2 || !c->sess || !c->tr.ready || c->tr.closing || c->tr.failed)
        return;
    /* want_write first: a read that brought only DATA has nothing to answer (the windows go
     * back in large steps), and mem_send would walk the session's queues for nothing */
    while (nghttp2_session_want_write(c->sess) &&
           gw_transport_backlog(&c->tr) < WRITE_HIGH_WATER) {
        const uint8_t *data;
        c->in_h2 = 1;
        ssize_t n = nghttp2_session_mem_send(c->sess, &data);
        c->in_h2 = 0;
        if (n < 0) {
            gw_conn_fail(c, GW_GRPC_ERR_PROTOCOL, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (gw_transport_write(&c->tr, data, (size_t)n) != 0)
            return;
    }
    gw_transport_flush(&c->tr);
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------ */

static int on_h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)s, (void)flags;
    return gw_call_on_header(ud, f, name, nlen, value, vlen);
}

static int on_h2_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                      size_t len, void *ud)
{
    (void)s, (void)flags;
    return gw_call_on_data(ud, id, data, len);
}

static int on_h2_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    (void)s;
    return gw_call_on_stream_close(ud, id, err);
}

static int on_h2_not_send(nghttp2_session *s, const nghttp2_frame *f, int lib_err, void *ud)
{
    (void)s, (void)lib_err;
    gw_call_on_not_sent(ud, f);
    return 0;
}

static void on_settings(conn_t *c)
{
    c->max_streams =
        nghttp2_session_get_remote_settings(c->sess, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (c->state == CONN_CONNECTING) {
        c->state = CONN_READY;
        c->idle_since = uv_now(c->u->loop);
        uv_timer_stop(&c->timer);
        uint64_t p = ms(c->u->conf.ping_interval);
        uv_timer_start(&c->timer, on_conn_timer, p, p);
        gw_pool_conn_ready(c->u, c);
    }
    gw_pool_kick(c->u); /* capacity may have changed */
}

static int on_h2_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    conn_t *c = ud;
    (void)s;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            on_settings(c);
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            c->ping_out = 0;
            uv_timer_stop(&c->ping_timer);
        }
        break;
    case NGHTTP2_GOAWAY:
        c->goaway = 1;
        c->goaway_code = f->goaway.error_code;
        c->u->cnt.goaways++;
        if (c->state == CONN_READY || c->state == CONN_CONNECTING)
            c->state = CONN_DRAINING;
        if (c->nstreams == 0)
            c->want_close = 1;
        gw_pool_kick(c->u);
        break;
    default:
        break;
    }
    return 0;
}

/* Keeps nghttp2's reason for the failure report when it ends the session itself. */
static int on_h2_error(nghttp2_session *s, int lib_err, const char *msg, size_t len, void *ud)
{
    conn_t *c = ud;
    (void)s, (void)lib_err;
    snprintf(c->h2_err, sizeof(c->h2_err), "%.*s", (int)len, msg);
    return 0;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_h2_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_h2_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_h2_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_h2_frame_recv);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_h2_not_send);
    nghttp2_session_callbacks_set_error_callback2(cb, on_h2_error);
    return cb;
}

static int session_new(conn_t *c)
{
    nghttp2_session_callbacks *cb = make_callbacks();
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GW_H2_WINDOW}};
    int rc = -ENOMEM;

    if (!cb || nghttp2_option_new(&opt) != 0)
        goto done;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_client_new2(&c->sess, cb, c, opt) != 0)
        goto done;
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, GW_H2_WINDOW) != 0)
        goto done;
    rc = 0;
done:
    if (opt)
        nghttp2_option_del(opt);
    if (cb)
        nghttp2_session_callbacks_del(cb);
    return rc;
}

/* ---- transport events ------------------------------------------------------------------ */

static void on_tr_ready(gw_transport_t *t)
{
    gw_conn_flush(t->owner); /* preface + SETTINGS; READY comes with the peer's SETTINGS */
}

/* The session wants neither to read nor to write: drained after a GOAWAY (a clean close), or
 * ended by nghttp2 itself (the peer broke the protocol, or never spoke HTTP/2: an HTTP/1.1
 * server or garbage instead of SETTINGS). The latter fails the connection at once, so its
 * streams and the calls queued for it fail now instead of waiting for their timeouts. */
static void session_over(conn_t *c)
{
    char msg[224];
    if (c->state != CONN_CONNECTING && c->nstreams == 0) {
        c->want_close = 1;
        return;
    }
    snprintf(msg, sizeof(msg), "%s: %s",
             c->state == CONN_CONNECTING ? "upstream does not speak HTTP/2"
                                         : "HTTP/2 session ended",
             c->h2_err[0] ? c->h2_err : "protocol error");
    gw_conn_fail(c, GW_GRPC_ERR_PROTOCOL, msg);
}

static void on_tr_data(gw_transport_t *t, const uint8_t *p, size_t n)
{
    conn_t *c = t->owner;
    ssize_t rv;

    if (c->state == CONN_CLOSING)
        return;
    c->last_read = uv_now(c->u->loop);
    c->in_h2 = 1;
    rv = nghttp2_session_mem_recv(c->sess, p, n);
    c->in_h2 = 0;
    if (rv < 0) {
        gw_conn_fail(c, GW_GRPC_ERR_PROTOCOL, nghttp2_strerror((int)rv));
        return;
    }
    gw_conn_flush(c);
    if (c->state != CONN_CLOSING && !nghttp2_session_want_read(c->sess) &&
        !nghttp2_session_want_write(c->sess))
        session_over(c);
    if (c->want_close && c->state != CONN_CLOSING)
        gw_conn_shutdown(c);
}

static void on_tr_error(gw_transport_t *t, int kind, const char *msg)
{
    conn_t *c = t->owner;
    if (c->state == CONN_CLOSING)
        return;
    if (c->goaway && c->nstreams == 0) { /* the peer closed after its GOAWAY: not a failure */
        gw_conn_shutdown(c);
        return;
    }
    if (c->goaway) { /* streams it promised to finish are cut: say so */
        char m[320];
        snprintf(m, sizeof(m), "%s after GOAWAY (%s)", msg,
                 nghttp2_http2_strerror(c->goaway_code));
        gw_conn_fail(c, kind, m);
        return;
    }
    gw_conn_fail(c, kind, msg);
}

static void on_tr_drain(gw_transport_t *t)
{
    gw_conn_flush(t->owner);
}

static const gw_transport_events_t conn_events = {on_tr_ready, on_tr_data, on_tr_error,
                                                  on_tr_drain, on_tr_closed, NULL};

/* ---- timers ------------------------------------------------------------------------------ */

static void on_ping_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    char msg[96];
    snprintf(msg, sizeof(msg), "keepalive ping not acknowledged within %llu ms",
             (unsigned long long)ms(c->u->conf.ping_timeout));
    gw_conn_fail(c, GW_GRPC_ERR_PING_TIMEOUT, msg);
}

static void on_conn_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    uint64_t now = uv_now(c->u->loop), interval = ms(c->u->conf.ping_interval);

    if (c->state == CONN_CONNECTING) {
        gw_conn_fail(c, GW_GRPC_ERR_CONNECT, "connect timeout (DNS, TCP, TLS and SETTINGS)");
        return;
    }
    if (c->nstreams == 0 || c->ping_out || now - c->last_read < interval)
        return;
    if (nghttp2_submit_ping(c->sess, NGHTTP2_FLAG_NONE, NULL) != 0)
        return;
    c->ping_out = 1;
    c->u->cnt.pings_sent++;
    uv_timer_start(&c->ping_timer, on_ping_timeout, ms(c->u->conf.ping_timeout), 0);
    gw_conn_flush(c);
}

conn_t *gw_conn_open(gw_upstream_t *u)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->u = u;
    c->id = ++u->next_id;
    c->state = CONN_CONNECTING;
    c->last_read = uv_now(u->loop);
    if (gw_transport_init(&c->tr, u->loop, u->vt, &conn_events, c, u->addr.host, u->addr.port,
                          u->addr.is_ip, u->ssl_ctx, u->conf.insecure) != 0 ||
        session_new(c) != 0) {
        if (c->sess)
            nghttp2_session_del(c->sess);
        free(c->tr.rbuf);
        free(c);
        return NULL;
    }
    uv_timer_init(u->loop, &c->timer);
    uv_timer_init(u->loop, &c->ping_timer);
    c->timer.data = c->ping_timer.data = c;
    c->handles = 3;
    c->next = u->conns;
    if (u->conns)
        u->conns->prev = c;
    u->conns = c;
    u->cnt.conns_opened++;
    uv_timer_start(&c->timer, on_conn_timer, ms(u->conf.connect_timeout), 0);
    int rc = gw_transport_start(&c->tr);
    if (rc != 0)
        gw_transport_fail(&c->tr, GW_GRPC_ERR_DNS, "cannot resolve %s: %s", u->addr.host,
                          uv_strerror(rc));
    return c;
}

int gw_conn_submit(conn_t *c, gw_grpc_call_t *call)
{
    gw_upstream_t *u = c->u;
    char tmo[24];
    const char *scheme = u->ssl_ctx ? "https" : "http";
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[8] = {NV(":method", "POST"), NV(":scheme", scheme),
                         NV(":path", call->path), NV(":authority", u->addr.authority),
                         NV("content-type", "application/grpc"), NV("te", "trailers"),
                         NV("user-agent", "dart-grpc/2.0.0"), NV("grpc-timeout", "")};
#undef NV
    size_t n = 7;
    nghttp2_data_provider dp = {.source.ptr = NULL, .read_callback = gw_call_read_body};
    int32_t id;

    if (call->timer_on) {
        uint64_t left = uv_timer_get_due_in(&call->timer);
        int len = gw_grpc_timeout_format(left ? left : 1, tmo, sizeof(tmo));
        if (len > 0) {
            nva[7].value = (uint8_t *)tmo;
            nva[7].valuelen = (size_t)len;
            n = 8;
        }
    }
    id = nghttp2_submit_request(c->sess, NULL, nva, n, &dp, call);
    if (id < 0)
        return id;
    call->stream_id = id;
    call->conn = c;
    call->state = CALL_ACTIVE;
    call->prev = NULL;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->nstreams++;
    return 0;
}
