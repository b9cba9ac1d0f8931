/*
 * pieces-gateway: the HTTP/2 half of the HTTP client (streams on one nghttp2 session).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: the session (no push, 256 KiB stream windows, 1 MiB connection window, windows
 *   given back by hand), request submission, response headers and DATA to the handlers,
 *   stream ends and resets, GOAWAY, refused streams sent again.
 * Uses: nghttp2, httpc.c for the request lifecycle.
 * Must never: call nghttp2_session_mem_send or free the session inside an nghttp2 callback
 *   (in_h2 guards the write pump), or give a paused stream's window back before it resumes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc_int.h"

#define STREAM_WINDOW (256 * 1024)
#define CONN_WINDOW (1024 * 1024)
#define WRITE_HIGH_WATER (256 * 1024)

static gw_httpc_req_t *stream_req(nghttp2_session *s, int32_t id)
{
    gw_httpc_req_t *r = nghttp2_session_get_stream_user_data(s, id);
    return r && !r->dead ? r : NULL;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    gw_httpc_req_t *r;
    (void)flags, (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || !(r = stream_req(s, f->hd.stream_id)) || r->head_done)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        r->status = st;
    } else {
        gw_hc_parse_header(r, (const char *)name, nlen, (const char *)value, vlen);
    }
    return 0;
}

static void on_settings(hconn_t *c)
{
    c->max_streams =
        nghttp2_session_get_remote_settings(c->sess, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (!c->settings_seen) {
        c->settings_seen = 1;
        uv_timer_stop(&c->timer); /* the connect timeout ends with the peer's SETTINGS */
        if (c->nstreams == 0)
            gw_hc_idle_timer(c);
    }
    gw_hc_kick(c->pool);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    hconn_t *c = ud;
    gw_httpc_req_t *r;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        r = stream_req(s, f->hd.stream_id);
        if (r && !r->head_done && r->status >= 200) {
            r->got_bytes = 1;
            if (gw_hc_req_head(r, 1))
                gw_hc_req_release(r); /* cancelled by its handler; the RST is queued */
        }
        break;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            on_settings(c);
        break;
    case NGHTTP2_GOAWAY:
        c->goaway = 1;
        gw_hc_kick(c->pool);
        break;
    default: break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    gw_httpc_req_t *r = stream_req(s, id);
    (void)flags, (void)ud;
    nghttp2_session_consume_connection(s, len);
    if (!r) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    r->got_bytes = 1;
    if (r->paused)
        r->unconsumed += len; /* the stream stops after one window */
    else
        nghttp2_session_consume_stream(s, id, len);
    if (gw_hc_req_body(r, (const char *)data, len))
        gw_hc_req_release(r);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    hconn_t *c = ud;
    gw_httpc_req_t *r = stream_req(s, id);
    char msg[160];
    if (!r)
        return 0;
    c->used = 1;
    if (err == NGHTTP2_NO_ERROR && r->head_done) {
        gw_hc_req_finish(r, 0, NULL);
    } else if (err == NGHTTP2_REFUSED_STREAM && !r->got_bytes && !r->retried) {
        gw_hc_req_requeue(r); /* never processed by the peer */
    } else if (err == NGHTTP2_NO_ERROR) {
        gw_hc_req_finish(r, GW_HTTPC_BAD_ANSWER,
                         "the upstream closed the stream without an answer");
    } else {
        snprintf(msg, sizeof(msg), "stream reset by the upstream (%s) %s",
                 nghttp2_http2_strerror(err),
                 r->head_done ? "in the middle of the answer" : "before the answer");
        gw_hc_req_finish(r, r->head_done ? GW_HTTPC_BAD_ANSWER : GW_HTTPC_UNREACHABLE, msg);
    }
    return 0;
}

static int on_not_send(nghttp2_session *s, const nghttp2_frame *f, int lib_err, void *ud)
{
    gw_httpc_req_t *r;
    (void)lib_err, (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || !(r = stream_req(s, f->hd.stream_id)))
        return 0;
    if (!r->retried)
        gw_hc_req_requeue(r);
    else
        gw_hc_req_finish(r, GW_HTTPC_UNREACHABLE, "the request could not be sent (GOAWAY)");
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    gw_httpc_req_t *r = nghttp2_session_get_stream_user_data(s, id);
    (void)src, (void)ud;
    if (!r || r->dead) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t n = r->body_len - r->body_off;
    if (n > length)
        n = length;
    memcpy(buf, r->body + r->body_off, n);
    r->body_off += n;
    if (r->body_off == r->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int gw_h2_start(hconn_t *c)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW}};
    int rc = -1;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_not_send);
    if (nghttp2_option_new(&opt) != 0)
        goto done;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_client_new2(&c->sess, cb, c, opt) != 0)
        goto done;
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        goto done;
    c->max_streams = 100; /* until the peer's SETTINGS say otherwise */
    rc = 0;
done:
    if (opt)
        nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    return rc;
}

int gw_h2_has_room(const hconn_t *c)
{
    return !c->goaway && (uint32_t)c->nstreams < c->max_streams;
}

int gw_h2_submit(hconn_t *c, gw_httpc_req_t *r)
{
    gw_httpc_t *p = c->pool;
    char clen[24];
    size_t n = 0;
    nghttp2_nv nva[r->n_hdrs + 5];
#define NV(nm, v, vl) (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), strlen(nm), (vl), 0}
    nva[n++] = NV(":method", r->method, strlen(r->method));
    nva[n++] = NV(":scheme", "https", 5);
    nva[n++] = NV(":authority", p->host_header, strlen(p->host_header));
    nva[n++] = NV(":path", r->path, strlen(r->path));
    for (size_t i = 1; i <= r->n_hdrs; i++)
        nva[n++] = NV(r->hdrs[i].name, r->hdrs[i].value, strlen(r->hdrs[i].value));
    snprintf(clen, sizeof(clen), "%zu", r->body_len);
    nva[n++] = NV("content-length", clen, strlen(clen));
#undef NV
    nghttp2_data_provider dp = {.source.ptr = NULL, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->sess, NULL, nva, n, r->body_len ? &dp : NULL, r);
    if (id < 0)
        return id;
    r->stream_id = id;
    r->state = RQ_BOUND;
    r->conn = c;
    r->prev = NULL;
    r->next = c->streams;
    if (c->streams)
        c->streams->prev = r;
    c->streams = r;
    if (c->nstreams++ == 0 && c->settings_seen)
        uv_timer_stop(&c->timer); /* the idle timeout */
    p->cnt.requests++;
    if (c->used)
        p->cnt.reused++;
    return 0;
}

void gw_h2_flush(hconn_t *c)
{
    if (c->in_h2 || !c->sess || !c->tr.ready || c->tr.closing || c->tr.failed)
        return;
    while (gw_transport_backlog(&c->tr) < WRITE_HIGH_WATER) {
        const uint8_t *data;
        c->in_h2 = 1;
        ssize_t n = nghttp2_session_mem_send(c->sess, &data);
        c->in_h2 = 0;
        if (n < 0) {
            gw_hc_conn_fail(c, GW_HTTPC_UNREACHABLE, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0 || gw_transport_write(&c->tr, data, (size_t)n) != 0)
            break;
    }
    gw_transport_flush(&c->tr);
}

void gw_h2_on_data(hconn_t *c, const uint8_t *p, size_t n)
{
    c->in_h2 = 1;
    ssize_t rv = nghttp2_session_mem_recv(c->sess, p, n);
    c->in_h2 = 0;
    if (rv < 0) {
        gw_hc_conn_fail(c, GW_HTTPC_BAD_ANSWER, nghttp2_strerror((int)rv));
        return;
    }
    if (c->closed)
        return;
    gw_h2_flush(c);
    if (c->goaway && c->nstreams == 0)
        gw_hc_conn_close(c);
}

void gw_h2_cancel(gw_httpc_req_t *r)
{
    hconn_t *c = r->conn;
    if (!c->sess || r->stream_id <= 0)
        return;
    nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
    r->unconsumed = 0;   /* the stream's window goes with the stream */
    gw_hc_kick(c->pool); /* flush the RST from outside any nghttp2 callback */
}

void gw_h2_resume(gw_httpc_req_t *r)
{
    hconn_t *c = r->conn;
    if (r->unconsumed && c->sess && r->stream_id > 0)
        nghttp2_session_consume_stream(c->sess, r->stream_id, r->unconsumed);
    r->unconsumed = 0;
    gw_hc_kick(c->pool);
}

void gw_h2_fail_all(hconn_t *c, int kind, const char *msg)
{
    while (c->streams) {
        gw_httpc_req_t *r = c->streams;
        if (c->used && !r->got_bytes && !r->retried && !c->pool->closing)
            gw_hc_req_requeue(r);
        else
            gw_hc_req_finish(r, r->head_done ? GW_HTTPC_BAD_ANSWER : kind, msg);
    }
}

void gw_h2_shutdown(hconn_t *c)
{
    if (c->tr.ready && !c->tr.failed && !c->tr.closing) {
        nghttp2_session_terminate_session(c->sess, NGHTTP2_NO_ERROR);
        gw_h2_flush(c);
        gw_transport_close_after_writes(&c->tr);
    } else {
        gw_transport_close(&c->tr);
    }
}

void gw_h2_dispose(hconn_t *c)
{
    if (c->sess)
        nghttp2_session_del(c->sess);
    c->sess = NULL;
}
