/*
 * pieces-gateway: gRPC calls on HTTP/2 streams (public call API and stream callbacks).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_grpc_call_start/cancel/pause, response header and trailer handling, message
 *   delivery with manual flow control (DATA goes back to the connection window on receipt
 *   and to the stream window only when its message is delivered, so a paused call stops its
 *   stream after one stream window without stalling the other streams), result
 *   classification, deadlines, transparent retry of refused streams.
 * Uses: nghttp2 (stream half of the callbacks), grpc_frame.c, the pool for queueing.
 * Must never: call a handler after cancel or after on_close; touch a call after its on_close
 *   returned; hold DATA bytes against the connection window.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freelist.h"
#include "upstream_int.h"

#define LIST_UNLINK(head, c, prev, next)                                                       \
    do {                                                                                       \
        if ((c)->prev)                                                                         \
            (c)->prev->next = (c)->next;                                                       \
        else                                                                                   \
            (head) = (c)->next;                                                                \
        if ((c)->next)                                                                         \
            (c)->next->prev = (c)->prev;                                                       \
        (c)->prev = (c)->next = NULL;                                                          \
    } while (0)

/* Calls come from a per-thread free list (the struct is ~0.5 KiB, one per stream). */
static __thread gw_freelist_t call_pool;

void gw_upstream_pools_drain(void) { gw_freelist_drain(&call_pool, sizeof(gw_grpc_call_t)); }
GW_FREELIST_OWNER(call_pools, gw_upstream_pools_drain)

static void on_timer_closed(uv_handle_t *h)
{
    gw_grpc_call_t *c = h->data;
    gw_upstream_t *u = c->u;
    gw_freelist_put(&call_pool, c, sizeof(*c));
    gw_pool_handle_closed(u); /* last: may free the pool */
}

static void free_call(gw_grpc_call_t *c)
{
    gw_grpc_deframer_dispose(&c->df);
    free(c->path);
    free(c->req);
    free(c->grpc_message);
    free(c->end_msg);
    if (c->timer_on) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    } else {
        gw_freelist_put(&call_pool, c, sizeof(*c));
    }
}

static void unresume(gw_grpc_call_t *c)
{
    if (!c->in_resume)
        return;
    LIST_UNLINK(c->u->resume, c, rprev, rnext);
    c->in_resume = 0;
}

/* Takes the call off whatever list holds it; an ACTIVE call also leaves its stream. */
static void detach(gw_grpc_call_t *c)
{
    gw_upstream_t *u = c->u;
    conn_t *cn = c->conn;

    unresume(c);
    switch (c->state) {
    case CALL_QUEUED:
        if (u->qtail == c)
            u->qtail = c->prev;
        LIST_UNLINK(u->qhead, c, prev, next);
        u->queued--;
        break;
    case CALL_ACTIVE:
        LIST_UNLINK(cn->calls, c, prev, next);
        if (cn->sess && nghttp2_session_get_stream_user_data(cn->sess, c->stream_id) == c)
            nghttp2_session_set_stream_user_data(cn->sess, c->stream_id, NULL);
        c->conn = NULL;
        cn->nstreams--;
        gw_conn_stream_done(cn);
        break;
    case CALL_ENDING:
        LIST_UNLINK(u->ending, c, prev, next);
        break;
    case CALL_DETACHED:
        break;
    }
    c->state = CALL_DETACHED;
}

void gw_call_detach(gw_grpc_call_t *c)
{
    detach(c);
}

static void finish(gw_grpc_call_t *c, int kind, int grpc_status, const char *msg)
{
    gw_grpc_result_t r = {(gw_grpc_error_kind_t)kind, grpc_status, msg ? msg : "",
                          c->http_status};
    detach(c);
    c->dead = 1; /* a cancel from inside on_close is a no-op */
    c->in_cb = 1;
    c->h->on_close(c, &r, c->ud);
    free_call(c);
}

/* RST_STREAM CANCEL (the connection window already has the stream's bytes back). */
static void reset_stream(gw_grpc_call_t *c)
{
    conn_t *cn = c->conn;
    if (c->state != CALL_ACTIVE || !cn->sess)
        return;
    nghttp2_submit_rst_stream(cn->sess, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
    c->unconsumed = 0;
    gw_pool_kick(c->u); /* flush the RST from outside any nghttp2 callback */
}

/* One message to the handler; its bytes go back to the stream window. 1 when the call is
 * gone. */
static int deliver_one(gw_grpc_call_t *c, const uint8_t *msg, size_t len, size_t wire)
{
    if (c->state == CALL_ACTIVE) {
        nghttp2_session_consume_stream(c->conn->sess, c->stream_id, wire);
        c->unconsumed -= wire;
    }
    c->in_cb = 1;
    c->h->on_message(c, msg, len, c->ud);
    c->in_cb = 0;
    if (c->dead) {
        free_call(c);
        return 1;
    }
    return 0;
}

static void bad_prefix(gw_grpc_call_t *c, int rc)
{
    reset_stream(c);
    finish(c, GW_GRPC_ERR_PROTOCOL, 13,
           rc == -EMSGSIZE ? "gRPC message larger than the limit"
                           : "compressed or malformed gRPC message prefix");
}

/* Delivers complete messages while not paused. Returns 1 when the call is gone. */
static int deliver(gw_grpc_call_t *c)
{
    const uint8_t *msg;
    size_t len, wire;
    int rc;

    while (!c->paused) {
        rc = gw_grpc_deframer_next(&c->df, &msg, &len, &wire);
        if (rc == 0) {
            /* nothing buffered between messages: a long-lived stream holds no buffer */
            if (gw_grpc_deframer_pending(&c->df) == 0)
                gw_grpc_deframer_release(&c->df);
            return 0;
        }
        if (rc < 0) {
            bad_prefix(c, rc);
            return 1;
        }
        if (deliver_one(c, msg, len, wire))
            return 1;
    }
    return 0;
}

/* While nothing is buffered, messages complete in a DATA chunk go to the handler straight
 * from nghttp2's bytes (no copy, no buffer per chunk); *p and *n are left at what remains (a
 * partial message, or the rest after a pause) for the deframer. 1 when the call is gone. */
static int deliver_direct(gw_grpc_call_t *c, const uint8_t **p, size_t *n)
{
    const uint8_t *msg;
    size_t len, wire;
    while (!c->paused && *n > 0) {
        int rc = gw_grpc_frame_parse(*p, *n, c->df.max_msg, &msg, &len, &wire);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            bad_prefix(c, rc);
            return 1;
        }
        *p += wire;
        *n -= wire;
        if (deliver_one(c, msg, len, wire))
            return 1;
    }
    return 0;
}

static void settle(gw_grpc_call_t *c)
{
    if (deliver(c) != 0)
        return;
    if (c->paused && gw_grpc_deframer_pending(&c->df) > 0)
        return; /* resumed later */
    if (gw_grpc_deframer_pending(&c->df) > 0 && c->end_kind == GW_GRPC_OK_STATUS) {
        c->end_kind = GW_GRPC_ERR_PROTOCOL;
        c->end_status = 13;
        free(c->end_msg);
        c->end_msg = strdup("stream ended inside a gRPC message");
    }
    finish(c, c->end_kind, c->end_status, c->end_msg);
}

void gw_call_end(gw_grpc_call_t *c, int kind, int grpc_status, const char *msg)
{
    gw_upstream_t *u = c->u;
    detach(c);
    c->end_kind = (gw_grpc_error_kind_t)kind;
    c->end_status = grpc_status;
    free(c->end_msg);
    c->end_msg = strdup(msg ? msg : "");
    c->state = CALL_ENDING;
    c->prev = NULL;
    c->next = u->ending;
    if (u->ending)
        u->ending->prev = c;
    u->ending = c;
    settle(c);
}

void gw_call_fail_now(gw_grpc_call_t *c, int kind, int grpc_status, const char *msg)
{
    finish(c, kind, grpc_status, msg);
}

void gw_call_resume_now(gw_grpc_call_t *c)
{
    if (c->paused)
        return;
    if (c->state == CALL_ACTIVE)
        deliver(c);
    else if (c->state == CALL_ENDING)
        settle(c);
    /* QUEUED: nothing buffered yet */
}

/* ---- nghttp2 stream callbacks (called from conn.c) ------------------------------------ */

static gw_grpc_call_t *stream_call(conn_t *cn, int32_t id)
{
    gw_grpc_call_t *c = nghttp2_session_get_stream_user_data(cn->sess, id);
    return c && !c->dead ? c : NULL;
}

static int name_is(const uint8_t *n, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(n, s, len) == 0;
}

int gw_call_on_header(conn_t *cn, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen)
{
    gw_grpc_call_t *c;
    char num[16];

    if (f->hd.type != NGHTTP2_HEADERS || !(c = stream_call(cn, f->hd.stream_id)))
        return 0;
    if (f->headers.cat == NGHTTP2_HCAT_RESPONSE)
        c->headers_seen = 1;
    if (name_is(name, nlen, ":status") || name_is(name, nlen, "grpc-status")) {
        size_t n = vlen < sizeof(num) - 1 ? vlen : sizeof(num) - 1;
        memcpy(num, value, n);
        num[n] = '\0';
        if (name[0] == ':') {
            c->http_status = atoi(num);
        } else {
            c->grpc_status = atoi(num);
            c->has_status = 1;
        }
    } else if (name_is(name, nlen, "content-type")) {
        c->grpc_ct = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0;
    } else if (name_is(name, nlen, "grpc-message")) {
        free(c->grpc_message);
        c->grpc_message = malloc(vlen + 1);
        if (c->grpc_message)
            gw_grpc_percent_decode((const char *)value, vlen, c->grpc_message);
    }
    return 0;
}

int gw_call_on_data(conn_t *cn, int32_t stream_id, const uint8_t *data, size_t len)
{
    gw_grpc_call_t *c = stream_call(cn, stream_id);
    if (!c) { /* cancelled: give the window back at once */
        nghttp2_session_consume(cn->sess, stream_id, len);
        return 0;
    }
    if (c->http_status != 200 || !c->grpc_ct) { /* an error page, not gRPC: drop it */
        nghttp2_session_consume(cn->sess, stream_id, len);
        return 0;
    }
    /* Connection window back at once, stream window on delivery: a paused call stops its own
     * stream after one stream window and never stalls its neighbours on the connection. */
    nghttp2_session_consume_connection(cn->sess, len);
    c->unconsumed += len;
    if (!c->paused && gw_grpc_deframer_pending(&c->df) == 0) {
        if (deliver_direct(c, &data, &len) != 0 || len == 0)
            return 0;
    }
    if (gw_grpc_deframer_feed(&c->df, data, len) != 0) {
        reset_stream(c);
        finish(c, GW_GRPC_ERR_NOMEM, 8, "out of memory buffering a reply");
        return 0;
    }
    if (!c->paused)
        deliver(c);
    return 0;
}

static void reset_for_retry(gw_grpc_call_t *c)
{
    gw_grpc_deframer_dispose(&c->df);
    gw_grpc_deframer_init(&c->df, c->u->conf.max_message);
    free(c->grpc_message);
    c->grpc_message = NULL;
    c->req_off = 0;
    c->unconsumed = 0;
    c->http_status = c->grpc_status = 0;
    c->has_status = c->headers_seen = c->grpc_ct = 0;
    c->retries++;
}

/* The refused stream never reached the application: run it again on another connection. */
static int retry_refused(gw_grpc_call_t *c)
{
    if (c->headers_seen || c->retries >= GW_RETRY_REFUSED || c->u->closing)
        return 0;
    detach(c);
    reset_for_retry(c);
    c->u->cnt.calls_retried++;
    gw_pool_requeue(c->u, c);
    return 1;
}

static void classify(gw_grpc_call_t *c, uint32_t err, int *kind, int *st, char *msg, size_t cap)
{
    const char *gm = c->grpc_message ? c->grpc_message : "";
    if (err == NGHTTP2_REFUSED_STREAM && !c->has_status) {
        *kind = GW_GRPC_ERR_REFUSED, *st = 14;
        snprintf(msg, cap, "stream refused by upstream (REFUSED_STREAM)");
    } else if (err != NGHTTP2_NO_ERROR && !c->has_status) {
        *kind = GW_GRPC_ERR_RESET, *st = gw_grpc_status_from_h2(err);
        snprintf(msg, cap, "stream terminated by RST_STREAM with error code: %s",
                 nghttp2_http2_strerror(err));
    } else if (c->http_status != 200) {
        *kind = GW_GRPC_ERR_HTTP, *st = gw_grpc_status_from_http(c->http_status);
        snprintf(msg, cap, "upstream HTTP status %d%s%s", c->http_status, *gm ? ": " : "", gm);
    } else if (!c->has_status) {
        *kind = GW_GRPC_ERR_PROTOCOL, *st = c->grpc_ct ? 13 : 2;
        snprintf(msg, cap, c->grpc_ct ? "stream ended without grpc-status"
                                      : "upstream reply is not gRPC (content-type)");
    } else {
        *kind = c->grpc_status == 0 ? GW_GRPC_OK_STATUS : GW_GRPC_ERR_STATUS;
        *st = c->grpc_status;
        snprintf(msg, cap, "%s", gm);
    }
}

int gw_call_on_stream_close(conn_t *cn, int32_t stream_id, uint32_t error_code)
{
    gw_grpc_call_t *c = stream_call(cn, stream_id);
    char msg[512];
    int kind, st;

    if (!c)
        return 0;
    c->unconsumed = 0;
    if (error_code == NGHTTP2_REFUSED_STREAM && retry_refused(c))
        return 0;
    classify(c, error_code, &kind, &st, msg, sizeof(msg));
    gw_call_end(c, kind, st, msg);
    return 0;
}

void gw_call_on_not_sent(conn_t *cn, const nghttp2_frame *f)
{
    gw_grpc_call_t *c;
    if (f->hd.type != NGHTTP2_HEADERS || !(c = stream_call(cn, f->hd.stream_id)))
        return;
    if (!retry_refused(c))
        gw_call_end(c, GW_GRPC_ERR_REFUSED, 14, "request could not be sent (connection closing)");
}

ssize_t gw_call_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    gw_grpc_call_t *c = nghttp2_session_get_stream_user_data(s, stream_id);
    size_t n;
    (void)src, (void)ud;
    if (!c || c->dead) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    n = c->req_len - c->req_off;
    if (n > length)
        n = length;
    memcpy(buf, c->req + c->req_off, n);
    c->req_off += n;
    if (c->req_off == c->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- public API ---------------------------------------------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    gw_grpc_call_t *c = t->data;
    char msg[96];
    if (c->dead)
        return;
    reset_stream(c);
    snprintf(msg, sizeof(msg), "deadline exceeded after %llu ms",
             (unsigned long long)c->timeout_ms);
    finish(c, GW_GRPC_ERR_TIMEOUT, 4, msg);
}

static gw_grpc_call_t *call_new(gw_upstream_t *u, const char *path, const uint8_t *msg,
                                size_t len)
{
    call_pools_arm();
    gw_grpc_call_t *c = gw_freelist_get(&call_pool, sizeof(*c));
    if (!c)
        return NULL;
    c->path = strdup(path);
    c->req = malloc(GW_GRPC_PREFIX + len);
    if (!c->path || !c->req) {
        free(c->path);
        free(c->req);
        gw_freelist_put(&call_pool, c, sizeof(*c));
        return NULL;
    }
    gw_grpc_frame_prefix(c->req, (uint32_t)len);
    if (len)
        memcpy(c->req + GW_GRPC_PREFIX, msg, len);
    c->req_len = GW_GRPC_PREFIX + len;
    c->u = u;
    gw_grpc_deframer_init(&c->df, u->conf.max_message);
    return c;
}

int gw_grpc_call_start(gw_upstream_t *u, const char *path, const uint8_t *msg, size_t len,
                       uint64_t timeout_ms, const gw_grpc_handler_t *h, void *ud,
                       gw_grpc_call_t **out)
{
    gw_grpc_call_t *c;

    if (out)
        *out = NULL;
    if (!u || !path || path[0] != '/' || !h || !h->on_close || !h->on_message ||
        (len && !msg) || len > UINT32_MAX)
        return -EINVAL;
    if (u->closing)
        return -ESHUTDOWN;
    if (!(c = call_new(u, path, msg, len)))
        return -ENOMEM;
    c->h = h;
    c->ud = ud;
    c->timeout_ms = timeout_ms;
    if (timeout_ms) {
        uv_timer_init(u->loop, &c->timer);
        c->timer.data = c;
        c->timer_on = 1;
        u->handles++;
        uv_timer_start(&c->timer, on_deadline, timeout_ms, 0);
    }
    c->state = CALL_QUEUED;
    c->prev = u->qtail;
    if (u->qtail)
        u->qtail->next = c;
    else
        u->qhead = c;
    u->qtail = c;
    u->queued++;
    u->cnt.calls_started++;
    gw_pool_kick(u);
    if (out)
        *out = c;
    return 0;
}

void gw_grpc_call_cancel(gw_grpc_call_t *c)
{
    if (!c || c->dead)
        return;
    reset_stream(c);
    detach(c);
    c->dead = 1;
    if (!c->in_cb)
        free_call(c);
}

void gw_grpc_call_pause(gw_grpc_call_t *c, int paused)
{
    gw_upstream_t *u;
    if (!c || c->dead || !!paused == c->paused)
        return;
    c->paused = !!paused;
    if (c->paused || c->in_resume)
        return;
    u = c->u;
    c->rprev = NULL;
    c->rnext = u->resume;
    if (u->resume)
        u->resume->rprev = c;
    u->resume = c;
    c->in_resume = 1;
    gw_pool_kick(u);
}
