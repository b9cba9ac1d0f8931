/*
 * pieces-gateway: TCP transport under the HTTP/2 session, and the plaintext (h2c) vtable.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: name resolution (uv_getaddrinfo, skipped for IP literals), connect with fallback
 *   over the resolved addresses, reads into one per-connection buffer, batched writes (one
 *   uv_write per flush), orderly close.
 * Uses: libuv; the vtable (plain here, TLS in tls.c) for the byte transformation.
 * Must never: deliver an event after gw_transport_close (except on_closed), or free the
 *   struct before every handle and request has called back.
 */
#include "transport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_upstream.h"

#define RBUF_SIZE 65536

typedef struct {
    uv_write_t req;
    gw_transport_t *t;
    size_t len;
    uint8_t data[];
} wreq_t;

static void try_next_address(gw_transport_t *t);

int gw_transport_init(gw_transport_t *t, uv_loop_t *loop, const gw_transport_vt_t *vt,
                      const gw_transport_events_t *ev, void *owner, const char *host, int port,
                      int is_ip, SSL_CTX *ssl_ctx, int insecure)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    t->vt = vt;
    t->ev = ev;
    t->owner = owner;
    t->port = port;
    t->is_ip = is_ip;
    t->ssl_ctx = ssl_ctx;
    t->insecure = insecure;
    snprintf(t->host, sizeof(t->host), "%s", host);
    t->rbuf = malloc(RBUF_SIZE);
    return t->rbuf ? 0 : -ENOMEM;
}

void gw_transport_fail(gw_transport_t *t, int kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (t->failed || t->closing)
        return;
    t->failed = 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    t->ev->on_error(t, kind, msg);
}

static void finish_close(gw_transport_t *t)
{
    if (t->tcp_open || t->gai_active)
        return;
    if (t->ai_list)
        uv_freeaddrinfo(t->ai_list);
    t->ai_list = NULL;
    t->vt->close(t);
    free(t->out);
    free(t->rbuf);
    t->out = t->rbuf = NULL;
    t->ev->on_closed(t);
}

static void on_tcp_closed(uv_handle_t *h)
{
    gw_transport_t *t = h->data;
    t->tcp_open = 0;
    if (t->closing)
        finish_close(t);
    else
        try_next_address(t); /* closed after a failed connect: next address */
}

void gw_transport_close(gw_transport_t *t)
{
    if (t->closing)
        return;
    t->closing = 1;
    if (t->gai_active)
        uv_cancel((uv_req_t *)&t->gai);
    if (t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp))
        uv_close((uv_handle_t *)&t->tcp, on_tcp_closed);
    else
        finish_close(t);
}

void gw_transport_close_after_writes(gw_transport_t *t)
{
    if (gw_transport_flush(t) != 0 || gw_transport_backlog(t) == 0)
        gw_transport_close(t);
    else
        t->close_when_drained = 1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    gw_transport_t *t = h->data;
    (void)hint;
    buf->base = (char *)t->rbuf;
    buf->len = RBUF_SIZE;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    gw_transport_t *t = s->data;
    (void)buf;
    if (t->closing || t->failed)
        return;
    if (n == UV_EOF) {
        gw_transport_fail(t, GW_GRPC_ERR_EOF, "connection closed by peer (EOF)");
        return;
    }
    if (n < 0) {
        gw_transport_fail(t, GW_GRPC_ERR_RESET, "connection error: %s", uv_strerror((int)n));
        return;
    }
    if (n > 0)
        t->vt->read(t, t->rbuf, (size_t)n);
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_transport_t *t = req->data;
    if (t->closing || status == UV_ECANCELED)
        return;
    if (status < 0) {
        t->last_uv_err = status;
        uv_close((uv_handle_t *)&t->tcp, on_tcp_closed); /* then the next address */
        return;
    }
    if (t->ai_list) {
        uv_freeaddrinfo(t->ai_list);
        t->ai_list = t->ai_next = NULL;
    }
    uv_tcp_nodelay(&t->tcp, 1);
    if (uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read) != 0) {
        gw_transport_fail(t, GW_GRPC_ERR_CONNECT, "read start failed");
        return;
    }
    t->vt->connect(t);
}

static void connect_to(gw_transport_t *t, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(t->loop, &t->tcp);
    if (rc != 0) {
        gw_transport_fail(t, GW_GRPC_ERR_CONNECT, "tcp init: %s", uv_strerror(rc));
        return;
    }
    t->tcp.data = t;
    t->tcp_open = 1;
    t->creq.data = t;
    rc = uv_tcp_connect(&t->creq, &t->tcp, sa, on_connect);
    if (rc != 0) {
        t->last_uv_err = rc;
        uv_close((uv_handle_t *)&t->tcp, on_tcp_closed);
    }
}

static void try_next_address(gw_transport_t *t)
{
    struct addrinfo *ai = t->ai_next;
    if (t->closing)
        return;
    if (!ai) {
        gw_transport_fail(t, GW_GRPC_ERR_CONNECT, "connect to %s:%d failed: %s", t->host,
                          t->port, uv_strerror(t->last_uv_err ? t->last_uv_err : UV_ECONNREFUSED));
        return;
    }
    t->ai_next = ai->ai_next;
    connect_to(t, ai->ai_addr);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gw_transport_t *t = req->data;
    t->gai_active = 0;
    if (t->closing) {
        if (res)
            uv_freeaddrinfo(res);
        finish_close(t);
        return;
    }
    if (status < 0) {
        gw_transport_fail(t, GW_GRPC_ERR_DNS, "DNS lookup of %s failed: %s", t->host,
                          uv_strerror(status));
        return;
    }
    t->ai_list = t->ai_next = res;
    try_next_address(t);
}

int gw_transport_start(gw_transport_t *t)
{
    struct addrinfo hints;
    int rc;

    if (t->is_ip) {
        if (uv_ip4_addr(t->host, t->port, (struct sockaddr_in *)&t->ip_addr) != 0 &&
            uv_ip6_addr(t->host, t->port, (struct sockaddr_in6 *)&t->ip_addr) != 0)
            return -EINVAL;
        connect_to(t, (struct sockaddr *)&t->ip_addr);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    char port[8];
    snprintf(port, sizeof(port), "%d", t->port);
    t->gai.data = t;
    rc = uv_getaddrinfo(t->loop, &t->gai, on_resolved, t->host, port, &hints);
    if (rc != 0)
        return rc;
    t->gai_active = 1;
    return 0;
}

int gw_transport_out_reserve(gw_transport_t *t, size_t n)
{
    if (t->out_len + n <= t->out_cap)
        return 0;
    size_t cap = t->out_cap ? t->out_cap : 16384;
    while (cap < t->out_len + n)
        cap *= 2;
    uint8_t *p = realloc(t->out, cap);
    if (!p)
        return -ENOMEM;
    t->out = p;
    t->out_cap = cap;
    return 0;
}

int gw_transport_write(gw_transport_t *t, const uint8_t *p, size_t n)
{
    if (t->closing || t->failed)
        return -EPIPE;
    return t->vt->write(t, p, n);
}

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    gw_transport_t *t = w->t;
    t->inflight -= w->len;
    free(w);
    if (t->closing)
        return;
    if (status < 0) {
        gw_transport_fail(t, GW_GRPC_ERR_RESET, "write failed: %s", uv_strerror(status));
        return;
    }
    if (t->inflight == 0) {
        if (t->close_when_drained && t->out_len == 0)
            gw_transport_close(t);
        else
            t->ev->on_drain(t);
    }
}

int gw_transport_flush(gw_transport_t *t)
{
    wreq_t *w;
    uv_buf_t b;
    int rc;

    if (t->closing || t->failed)
        return -EPIPE;
    if (t->out_len == 0)
        return 0;
    w = malloc(sizeof(*w) + t->out_len);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, t->out, t->out_len);
    w->t = t;
    w->len = t->out_len;
    t->out_len = 0;
    b = uv_buf_init((char *)w->data, (unsigned)w->len);
    rc = uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, on_written);
    if (rc != 0) {
        free(w);
        gw_transport_fail(t, GW_GRPC_ERR_RESET, "write failed: %s", uv_strerror(rc));
        return rc;
    }
    t->inflight += w->len;
    return 0;
}

/* ---- plaintext (h2c with prior knowledge) ---------------------------------------------- */

static int plain_connect(gw_transport_t *t)
{
    t->ready = 1;
    t->ev->on_ready(t);
    return 0;
}

static int plain_read(gw_transport_t *t, const uint8_t *p, size_t n)
{
    t->ev->on_data(t, p, n);
    return 0;
}

static int plain_write(gw_transport_t *t, const uint8_t *p, size_t n)
{
    if (gw_transport_out_reserve(t, n) != 0)
        return -ENOMEM;
    memcpy(t->out + t->out_len, p, n);
    t->out_len += n;
    return 0;
}

static void plain_close(gw_transport_t *t)
{
    (void)t;
}

const gw_transport_vt_t gw_transport_plain = {"h2c", plain_connect, plain_read, plain_write,
                                              plain_close};
