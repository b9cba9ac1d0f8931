/*
 * pieces-gateway: the HTTP client pool: requests, connections, placement (see httpc.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_httpc_* (public), the request and connection lifecycle shared by the HTTP/1.1
 *   (httpc_h1.c) and HTTP/2 (httpc_h2.c) halves.
 * Uses: the upstream transports (plain, TLS with ALPN h2 + http/1.1); a uv_idle "kick" that
 *   places queued requests from the loop, so no handler ever runs inside gw_httpc_request and
 *   no connection is opened inside a parser callback.
 * Must never: call a handler after cancel or after the last callback, reuse a connection in
 *   the middle of an answer, free a connection before its timer and transport closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "gw_upstream.h"
#include "httpc_int.h"

#define RBUF_SIZE 65536

static uint64_t ms(double seconds)
{
    return (uint64_t)(seconds * 1000.0 + 0.5);
}

/* ---- pool lifetime ---------------------------------------------------------------------- */

static void check_closed(gw_httpc_t *p)
{
    if (!p->closing || p->conns || p->handles > 0 || p->close_done)
        return;
    p->close_done = 1;
    if (p->ssl)
        SSL_CTX_free(p->ssl);
    free(p->origin);
    free(p->ca_file);
    free(p->rbuf);
    free(p);
}

static void handle_closed(gw_httpc_t *p)
{
    p->handles--;
    check_closed(p);
}

static void on_pool_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_kick(uv_idle_t *h);

void gw_hc_kick(gw_httpc_t *p)
{
    if (!p->close_done && !uv_is_active((uv_handle_t *)&p->kick) &&
        !uv_is_closing((uv_handle_t *)&p->kick))
        uv_idle_start(&p->kick, on_kick);
}

/* ---- requests --------------------------------------------------------------------------- */

static void on_req_timer_closed(uv_handle_t *h)
{
    gw_httpc_req_t *r = h->data;
    gw_httpc_t *p = r->pool;
    free(r);
    handle_closed(p);
}

static void req_free(gw_httpc_req_t *r)
{
    free(r->body);
    free(r->hdrs);
    if (r->timer_on) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
    } else {
        free(r);
    }
}

static void queue_unlink(gw_httpc_t *p, gw_httpc_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        p->qhead = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        p->qtail = r->prev;
    r->prev = r->next = NULL;
    p->queued--;
}

void gw_hc_idle_timer(hconn_t *c);

/* Takes the request off its queue, connection or stream list. */
static void detach(gw_httpc_req_t *r)
{
    hconn_t *c = r->conn;
    if (r->state == RQ_QUEUED) {
        queue_unlink(r->pool, r);
    } else if (r->state == RQ_BOUND && c->h2 && c->state != HC_CONNECTING) {
        if (r->prev)
            r->prev->next = r->next;
        else
            c->streams = r->next;
        if (r->next)
            r->next->prev = r->prev;
        r->prev = r->next = NULL;
        if (c->sess && r->stream_id > 0)
            nghttp2_session_set_stream_user_data(c->sess, r->stream_id, NULL);
        if (--c->nstreams == 0)
            gw_hc_idle_timer(c);
        gw_hc_kick(r->pool); /* a stream slot is free */
    } else if (r->state == RQ_BOUND && c->req == r) {
        c->req = NULL;
    }
    r->conn = NULL;
    r->state = RQ_DETACHED;
}

void gw_hc_req_finish(gw_httpc_req_t *r, int kind, const char *msg)
{
    detach(r);
    r->dead = 1;
    r->in_cb = 1;
    if (r->discard)
        ; /* nobody listens any more */
    else if (kind == 0)
        r->h->on_end(r->ud);
    else
        r->h->on_error(r->ud, kind, msg);
    req_free(r);
}

int gw_hc_req_head(gw_httpc_req_t *r, int http2)
{
    gw_httpc_head_t h = {r->status, r->ctype, r->retry_after, http2};
    r->head_done = 1;
    if (r->discard)
        return 0;
    r->in_cb = 1;
    r->h->on_head(r->ud, &h);
    r->in_cb = 0;
    return r->dead;
}

int gw_hc_req_body(gw_httpc_req_t *r, const char *p, size_t n)
{
    if (r->discard)
        return 0;
    r->in_cb = 1;
    r->h->on_body(r->ud, p, n);
    r->in_cb = 0;
    return r->dead;
}

void gw_hc_req_release(gw_httpc_req_t *r)
{
    req_free(r);
}

void gw_hc_req_requeue(gw_httpc_req_t *r)
{
    gw_httpc_t *p = r->pool;
    detach(r);
    r->retried = 1;
    r->got_bytes = r->head_done = 0;
    r->body_off = 0;
    r->unconsumed = 0;
    r->stream_id = 0;
    r->status = 0;
    r->ctype[0] = '\0';
    r->retry_after = -1;
    p->cnt.retried++;
    r->state = RQ_QUEUED;
    r->next = p->qhead;
    if (p->qhead)
        p->qhead->prev = r;
    else
        p->qtail = r;
    p->qhead = r;
    p->queued++;
    gw_hc_kick(p);
}

void gw_hc_parse_header(gw_httpc_req_t *r, const char *name, size_t nlen, const char *value,
                        size_t vlen)
{
    if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0) {
        size_t n = vlen < sizeof(r->ctype) - 1 ? vlen : sizeof(r->ctype) - 1;
        memcpy(r->ctype, value, n);
        r->ctype[n] = '\0';
    } else if (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0) {
        double v = 0;
        size_t i = 0;
        while (i < vlen && value[i] == ' ')
            i++;
        if (i == vlen || value[i] < '0' || value[i] > '9')
            return; /* the HTTP-date form is not used */
        for (; i < vlen && value[i] >= '0' && value[i] <= '9' && v < 1e9; i++)
            v = v * 10 + (value[i] - '0');
        r->retry_after = v;
    }
}

/* ---- connections ------------------------------------------------------------------------- */

static void idle_remove(hconn_t *c)
{
    gw_httpc_t *p = c->pool;
    if (!c->idle)
        return;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        p->idle = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    c->iprev = c->inext = NULL;
    c->idle = 0;
    p->n_idle--;
    uv_timer_stop(&c->timer);
}

static void on_conn_timer(uv_timer_t *t);

void gw_hc_idle_timer(hconn_t *c)
{
    if (c->state == HC_READY && !c->closed && (!c->h2 || c->settings_seen))
        uv_timer_start(&c->timer, on_conn_timer, ms(c->pool->conf.idle_timeout), 0);
}

/* An idle connection beyond max_idle stays this long: when more requests are in flight than
 * max_idle, closing it at once meant a new connection (socket, connect, epoll_ctl, the server's
 * accept) for a request a few microseconds later: 5 % of all requests at 64 in flight against
 * max_idle 32. A burst's extra connections still go after SPARE_MS. */
#define SPARE_MS 1000

void gw_hc_conn_idle(hconn_t *c)
{
    gw_httpc_t *p = c->pool;
    c->used = 1;
    if (p->closing) {
        gw_hc_conn_close(c);
        return;
    }
    int spare = p->n_idle >= p->conf.max_idle;
    c->iprev = NULL;
    c->inext = p->idle;
    if (p->idle)
        p->idle->iprev = c;
    p->idle = c;
    c->idle = 1;
    p->n_idle++;
    if (spare && c->state == HC_READY && !c->closed)
        uv_timer_start(&c->timer, on_conn_timer, SPARE_MS, 0);
    else
        gw_hc_idle_timer(c);
    if (p->qhead)
        gw_hc_kick(p);
}

static void conn_handle_done(hconn_t *c)
{
    gw_httpc_t *p = c->pool;
    if (--c->handles > 0)
        return;
    gw_h1_dispose(c);
    gw_h2_dispose(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->n_conns--;
    free(c);
    if (p->closing)
        check_closed(p);
}

static void on_conn_timer_closed(uv_handle_t *h)
{
    conn_handle_done(h->data);
}

void gw_hc_conn_close(hconn_t *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    c->state = HC_CLOSING;
    idle_remove(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_conn_timer_closed);
    if (c->h2 && c->sess)
        gw_h2_shutdown(c);
    else
        gw_transport_close(&c->tr);
}

/* A request bound to a connection that failed: once more elsewhere when the connection was
 * reused and the server never answered (it closed the idle connection), else its error. */
static void fail_bound(hconn_t *c, gw_httpc_req_t *r, int kind, const char *msg)
{
    if (c->used && !r->got_bytes && !r->retried && !c->pool->closing) {
        gw_hc_req_requeue(r);
        return;
    }
    gw_hc_req_finish(r, r->head_done ? GW_HTTPC_BAD_ANSWER : kind, msg);
}

void gw_hc_conn_fail(hconn_t *c, int kind, const char *msg)
{
    if (c->closed)
        return;
    if (c->state == HC_CONNECTING)
        c->pool->cnt.conns_failed++;
    c->state = HC_CLOSING; /* nothing is placed on it any more */
    idle_remove(c);
    if (c->h2 && c->sess)
        gw_h2_fail_all(c, kind, msg);
    if (c->req)
        fail_bound(c, c->req, kind, msg);
    gw_hc_conn_close(c);
}

static void on_conn_timer(uv_timer_t *t)
{
    hconn_t *c = t->data;
    char msg[128];
    if (c->state == HC_CONNECTING || (c->h2 && !c->settings_seen)) {
        snprintf(msg, sizeof(msg), "connect timeout after %.3g s (%s)",
                 c->pool->conf.connect_timeout,
                 c->state == HC_CONNECTING ? "TCP and TLS" : "no HTTP/2 SETTINGS from the peer");
        gw_hc_conn_fail(c, GW_HTTPC_TIMEOUT, msg);
        return;
    }
    if (c->idle || (c->h2 && c->nstreams == 0))
        gw_hc_conn_close(c);
}

static void on_tr_ready(gw_transport_t *t)
{
    hconn_t *c = t->owner;
    gw_httpc_req_t *r = c->req;
    if (c->state != HC_CONNECTING)
        return;
    c->state = HC_READY;
    c->h2 = t->alpn_h2 && c->pool->ssl;
    t->trim_out = !c->h2;
    if (c->h2) {
        c->req = NULL;
        if (gw_h2_start(c) != 0) {
            c->req = r;
            gw_hc_conn_fail(c, GW_HTTPC_UNREACHABLE, "cannot set up an HTTP/2 session");
            return;
        }
        if (r && gw_h2_submit(c, r) != 0)
            gw_hc_req_finish(r, GW_HTTPC_UNREACHABLE, "cannot submit an HTTP/2 request");
        gw_h2_flush(c);
        gw_hc_kick(c->pool);
        return;
    }
    uv_timer_stop(&c->timer);
    if (r)
        gw_h1_send(c, r);
    else
        gw_hc_conn_idle(c);
}

static void on_tr_data(gw_transport_t *t, const uint8_t *p, size_t n)
{
    hconn_t *c = t->owner;
    if (c->closed)
        return;
    if (c->h2)
        gw_h2_on_data(c, p, n);
    else
        gw_h1_on_data(c, p, n);
}

static void on_tr_error(gw_transport_t *t, int kind, const char *msg)
{
    (void)kind;
    gw_hc_conn_fail(t->owner, GW_HTTPC_UNREACHABLE, msg);
}

static void on_tr_drain(gw_transport_t *t)
{
    hconn_t *c = t->owner;
    if (c->h2 && !c->closed)
        gw_h2_flush(c);
}

static void on_tr_closed(gw_transport_t *t)
{
    conn_handle_done(t->owner);
}

static void on_tr_eof(gw_transport_t *t)
{
    hconn_t *c = t->owner;
    if (c->closed)
        return;
    if (c->h2)
        gw_hc_conn_fail(c, GW_HTTPC_UNREACHABLE, "connection closed by the peer");
    else
        gw_h1_on_eof(c);
}

static const gw_transport_events_t conn_events = {on_tr_ready, on_tr_data,   on_tr_error,
                                                  on_tr_drain, on_tr_closed, on_tr_eof};

/* Opens a connection for r (bound to it while it connects). */
static hconn_t *conn_open(gw_httpc_t *p, gw_httpc_req_t *r)
{
    hconn_t *c = gw_calloc(1, sizeof(*c));
    c->pool = p;
    c->id = ++p->next_id;
    c->state = HC_CONNECTING;
    gw_buf_init(&c->hname);
    gw_buf_init(&c->hval);
    if (gw_transport_init(&c->tr, p->loop, p->vt, &conn_events, c, p->addr.host, p->addr.port,
                          p->addr.is_ip, p->ssl, p->conf.insecure) != 0) {
        free(c->tr.rbuf);
        free(c);
        return NULL;
    }
    gw_transport_use_rbuf(&c->tr, p->rbuf);
    c->tr.allow_h1 = 1;
    c->tr.trim_out = 1; /* HTTP/1.1 writes one request per answer: keep no 16 KiB buffer */
    uv_timer_init(p->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    p->n_conns++;
    p->cnt.conns_opened++;
    r->state = RQ_BOUND;
    r->conn = c;
    c->req = r;
    uv_timer_start(&c->timer, on_conn_timer, ms(p->conf.connect_timeout), 0);
    int rc = gw_transport_start(&c->tr);
    if (rc != 0)
        gw_transport_fail(&c->tr, GW_GRPC_ERR_DNS, "cannot resolve %s: %s", p->addr.host,
                          uv_strerror(rc));
    return c;
}

static hconn_t *find_h2(gw_httpc_t *p)
{
    hconn_t *best = NULL;
    for (hconn_t *c = p->conns; c; c = c->next)
        if (c->h2 && c->state == HC_READY && !c->closed && gw_h2_has_room(c) &&
            (!best || c->nstreams < best->nstreams))
            best = c;
    return best;
}

static void dispatch(gw_httpc_t *p)
{
    while (p->qhead) {
        gw_httpc_req_t *r = p->qhead;
        hconn_t *c = find_h2(p);
        queue_unlink(p, r);
        r->state = RQ_DETACHED;
        if (c) {
            if (gw_h2_submit(c, r) != 0)
                gw_hc_req_finish(r, GW_HTTPC_UNREACHABLE, "cannot submit an HTTP/2 request");
            continue;
        }
        if ((c = p->idle)) {
            idle_remove(c);
            r->state = RQ_BOUND;
            r->conn = c;
            c->req = r;
            gw_h1_send(c, r);
            continue;
        }
        if (!conn_open(p, r))
            gw_hc_req_finish(r, GW_HTTPC_UNREACHABLE, "cannot open a connection");
    }
}

static void close_all(gw_httpc_t *p)
{
    while (p->qhead)
        gw_hc_req_finish(p->qhead, GW_HTTPC_UNREACHABLE, "upstream pool closed");
    for (hconn_t *c = p->conns, *next; c; c = next) {
        next = c->next;
        gw_hc_conn_fail(c, GW_HTTPC_UNREACHABLE, "upstream pool closed");
    }
    uv_close((uv_handle_t *)&p->kick, on_pool_handle_closed);
}

static void on_kick(uv_idle_t *h)
{
    gw_httpc_t *p = h->data;
    uv_idle_stop(h);
    if (p->closing) {
        close_all(p);
        return;
    }
    dispatch(p);
    for (hconn_t *c = p->conns; c; c = c->next)
        if (c->h2 && !c->closed && c->state == HC_READY)
            gw_h2_flush(c);
}

/* ---- public API -------------------------------------------------------------------------- */

int gw_httpc_new(uv_loop_t *loop, const gw_httpc_conf_t *conf, gw_httpc_t **out, char **err)
{
    const char *perr = NULL;
    gw_httpc_t *p = gw_calloc(1, sizeof(*p));
    p->loop = loop;
    p->conf = *conf;
    if (p->conf.connect_timeout <= 0)
        p->conf.connect_timeout = 5;
    if (p->conf.idle_timeout <= 0)
        p->conf.idle_timeout = 30;
    if (p->conf.max_idle <= 0)
        p->conf.max_idle = 32;
    if (gw_upstream_addr_parse(conf->origin, &p->addr, &perr) != 0) {
        *err = gw_sprintf("invalid origin %s: %s", conf->origin, perr);
        free(p);
        return -EINVAL;
    }
    p->vt = &gw_transport_plain;
    if (p->addr.tls) {
        p->vt = &gw_transport_tls;
        if (gw_tls_ctx_new_h1(conf->ca_file, conf->insecure, &p->ssl, err) != 0) {
            free(p);
            return -EINVAL;
        }
    }
    int dflt = p->addr.port == (p->addr.tls ? 443 : 80);
    snprintf(p->host_header, sizeof(p->host_header), "%s",
             dflt ? (strchr(p->addr.host, ':') ? p->addr.authority : p->addr.host)
                  : p->addr.authority);
    if (dflt && strchr(p->addr.host, ':'))
        snprintf(p->host_header, sizeof(p->host_header), "[%s]", p->addr.host);
    p->origin = gw_strdup(conf->origin);
    p->ca_file = conf->ca_file ? gw_strdup(conf->ca_file) : NULL;
    p->conf.origin = p->origin;
    p->conf.ca_file = p->ca_file;
    p->rbuf = gw_malloc(RBUF_SIZE);
    uv_idle_init(loop, &p->kick);
    p->kick.data = p;
    p->handles = 1;
    *out = p;
    return 0;
}

void gw_httpc_close(gw_httpc_t *p)
{
    if (!p || p->closing)
        return;
    p->closing = 1;
    gw_hc_kick(p);
}

/* Copies the headers and their strings into one allocation. */
static gw_httpc_header_t *copy_headers(const gw_httpc_header_t *h, size_t n)
{
    size_t bytes = n * sizeof(*h);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(h[i].name) + strlen(h[i].value) + 2;
    gw_httpc_header_t *out = gw_malloc(bytes ? bytes : 1);
    char *s = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(h[i].name) + 1, b = strlen(h[i].value) + 1;
        out[i].name = memcpy(s, h[i].name, a);
        out[i].value = memcpy(s + a, h[i].value, b);
        s += a + b;
    }
    return out;
}

static void on_deadline(uv_timer_t *t)
{
    gw_httpc_req_t *r = t->data;
    hconn_t *c = r->conn;
    char msg[96];
    if (r->dead)
        return;
    if (r->state == RQ_BOUND && c->h2 && c->state != HC_CONNECTING)
        gw_h2_cancel(r);
    else if (r->state == RQ_BOUND && c->state == HC_READY)
        gw_hc_conn_close(c); /* mid-answer: the connection cannot be reused */
    snprintf(msg, sizeof(msg), "no complete answer within %llu ms",
             (unsigned long long)r->timeout_ms);
    gw_hc_req_finish(r, GW_HTTPC_TIMEOUT, msg);
}

int gw_httpc_request(gw_httpc_t *p, const char *method, const char *path,
                     const gw_httpc_header_t *headers, size_t n_headers, const char *body,
                     size_t body_len, uint64_t timeout_ms, const gw_httpc_handler_t *h, void *ud,
                     gw_httpc_req_t **out)
{
    if (out)
        *out = NULL;
    if (!p || !method || !path || path[0] != '/' || !h || !h->on_head || !h->on_body ||
        !h->on_end || !h->on_error || (body_len && !body))
        return -EINVAL;
    if (p->closing)
        return -ESHUTDOWN;
    gw_httpc_header_t all[n_headers + 1];
    all[0].name = method;
    all[0].value = path;
    memcpy(all + 1, headers, n_headers * sizeof(*headers));
    gw_httpc_req_t *r = gw_calloc(1, sizeof(*r));
    r->pool = p;
    r->hdrs = copy_headers(all, n_headers + 1);
    r->method = (char *)r->hdrs[0].name;
    r->path = (char *)r->hdrs[0].value;
    r->n_hdrs = n_headers;
    r->body = gw_malloc(body_len ? body_len : 1);
    memcpy(r->body, body ? body : "", body_len);
    r->body_len = body_len;
    r->h = h;
    r->ud = ud;
    r->retry_after = -1;
    r->timeout_ms = timeout_ms;
    if (timeout_ms) {
        uv_timer_init(p->loop, &r->timer);
        r->timer.data = r;
        r->timer_on = 1;
        p->handles++;
        uv_timer_start(&r->timer, on_deadline, timeout_ms, 0);
    }
    r->state = RQ_QUEUED;
    r->prev = p->qtail;
    if (p->qtail)
        p->qtail->next = r;
    else
        p->qhead = r;
    p->qtail = r;
    p->queued++;
    gw_hc_kick(p);
    if (out)
        *out = r;
    return 0;
}

void gw_httpc_cancel(gw_httpc_req_t *r)
{
    if (!r || r->dead)
        return;
    hconn_t *c = r->conn;
    if (r->state == RQ_BOUND && c->h2 && c->state != HC_CONNECTING)
        gw_h2_cancel(r);
    else if (r->state == RQ_BOUND && c->state == HC_READY)
        gw_hc_conn_close(c); /* sent: the rest of its answer would be in the way */
    detach(r);
    r->dead = 1;
    if (!r->in_cb)
        req_free(r);
}

void gw_httpc_discard(gw_httpc_req_t *r)
{
    if (!r || r->dead || r->discard)
        return;
    hconn_t *c = r->conn;
    if (r->state != RQ_BOUND || c->h2 || c->state != HC_READY) {
        gw_httpc_cancel(r); /* nothing to keep: not sent yet, or a stream reset is cheap */
        return;
    }
    r->discard = 1;
    gw_httpc_pause(r, 0);
    if (!r->timer_on) {
        uv_timer_init(r->pool->loop, &r->timer);
        r->timer.data = r;
        r->timer_on = 1;
        r->pool->handles++;
    }
    r->timeout_ms = 2000;
    uv_timer_start(&r->timer, on_deadline, r->timeout_ms, 0);
}

void gw_httpc_pause(gw_httpc_req_t *r, int paused)
{
    if (!r || r->dead || !!paused == r->paused)
        return;
    r->paused = !!paused;
    if (r->state != RQ_BOUND || r->conn->state != HC_READY)
        return; /* applied when it is sent */
    if (r->conn->h2) {
        if (!paused)
            gw_h2_resume(r);
    } else {
        gw_transport_read_pause(&r->conn->tr, paused);
    }
}

void gw_httpc_counters(gw_httpc_t *p, gw_httpc_counters_t *out)
{
    *out = p->cnt;
    out->connections = p->n_conns;
    out->idle = p->n_idle;
    out->h2 = 0;
    out->active = 0;
    for (hconn_t *c = p->conns; c; c = c->next) {
        out->h2 += c->h2 && !c->closed;
        out->active += c->h2 ? c->nstreams : c->req != NULL;
    }
}

void gw_httpc_stats_json(gw_httpc_t *p, gw_buf_t *out)
{
    gw_httpc_counters_t k;
    gw_httpc_counters(p, &k);
    gw_buf_puts(out, "{\"origin\":\"");
    gw_buf_json_escape(out, p->origin, strlen(p->origin));
    gw_buf_printf(out,
                  "\",\"connections\":%d,\"idle\":%d,\"h2\":%d,\"requests\":%d,"
                  "\"queued\":%d,\"opened\":%llu,\"failed\":%llu,\"reused\":%llu}",
                  k.connections, k.idle, k.h2, k.active, p->queued,
                  (unsigned long long)k.conns_opened, (unsigned long long)k.conns_failed,
                  (unsigned long long)k.reused);
}
