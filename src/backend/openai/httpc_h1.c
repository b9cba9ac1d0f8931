/*
 * pieces-gateway: the HTTP/1.1 half of the HTTP client (one request at a time per connection).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: request serialisation, response parsing with llhttp (Content-Length, chunked,
 *   close-delimited; 1xx answers skipped), keep-alive decisions, EOF handling.
 * Uses: llhttp in response mode (its callbacks call the request's handlers), httpc.c.
 * Must never: keep a connection whose answer was not read to the end, or that carried bytes
 *   after the answer; let a header with CR or LF into the request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc_int.h"

static int on_header_field(llhttp_t *lp, const char *at, size_t n)
{
    hconn_t *c = lp->data;
    if (c->hname.len + n > 256)
        return -1;
    gw_buf_append(&c->hname, at, n);
    return 0;
}

static int on_header_value(llhttp_t *lp, const char *at, size_t n)
{
    hconn_t *c = lp->data;
    if (c->hval.len + n > 8192)
        return -1;
    gw_buf_append(&c->hval, at, n);
    return 0;
}

static int on_header_value_complete(llhttp_t *lp)
{
    hconn_t *c = lp->data;
    if (c->req)
        gw_hc_parse_header(c->req, c->hname.data ? c->hname.data : "", c->hname.len,
                           c->hval.data ? c->hval.data : "", c->hval.len);
    gw_buf_reset(&c->hname);
    gw_buf_reset(&c->hval);
    return 0;
}

static int on_headers_complete(llhttp_t *lp)
{
    hconn_t *c = lp->data;
    gw_httpc_req_t *r = c->req;
    int status = llhttp_get_status_code(lp);
    if (!r || status < 200)
        return 0;
    r->status = status;
    return gw_hc_req_head(r, 0) ? -1 : 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t n)
{
    hconn_t *c = lp->data;
    if (!c->req || llhttp_get_status_code(lp) < 200)
        return 0;
    return gw_hc_req_body(c->req, at, n) ? -1 : 0;
}

static int on_message_complete(llhttp_t *lp)
{
    hconn_t *c = lp->data;
    if (llhttp_get_status_code(lp) < 200) {
        gw_buf_reset(&c->hname);
        gw_buf_reset(&c->hval);
        return 0; /* 100 Continue and friends: the real answer follows */
    }
    c->keep = llhttp_should_keep_alive(lp) != 0;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int clean(const char *s)
{
    return !strpbrk(s, "\r\n");
}

void gw_h1_send(hconn_t *c, gw_httpc_req_t *r)
{
    gw_httpc_t *p = c->pool;
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_reserve(&b, 512 + r->body_len);
    gw_buf_puts(&b, r->method);
    gw_buf_putc(&b, ' ');
    gw_buf_puts(&b, r->path);
    gw_buf_puts(&b, " HTTP/1.1\r\nHost: ");
    gw_buf_puts(&b, p->host_header);
    gw_buf_puts(&b, "\r\n");
    for (size_t i = 1; i <= r->n_hdrs; i++) {
        const gw_httpc_header_t *h = &r->hdrs[i];
        if (!clean(h->name) || !clean(h->value))
            continue;
        gw_buf_puts(&b, h->name);
        gw_buf_puts(&b, ": ");
        gw_buf_puts(&b, h->value);
        gw_buf_puts(&b, "\r\n");
    }
    gw_buf_puts(&b, "Content-Length: ");
    gw_buf_put_uint(&b, r->body_len);
    gw_buf_puts(&b, "\r\n\r\n");
    gw_buf_append(&b, r->body, r->body_len);
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
    c->keep = 0;
    gw_buf_reset(&c->hname);
    gw_buf_reset(&c->hval);
    p->cnt.requests++;
    if (c->used)
        p->cnt.reused++;
    gw_transport_read_pause(&c->tr, r->paused);
    if (gw_transport_write(&c->tr, (const uint8_t *)b.data, b.len) == 0)
        gw_transport_flush(&c->tr); /* a failure comes back as on_error */
    gw_buf_dispose(&b);
}

void gw_h1_on_data(hconn_t *c, const uint8_t *data, size_t n)
{
    gw_httpc_req_t *r = c->req;
    char msg[160];
    if (!r) {
        gw_hc_conn_close(c); /* bytes nobody asked for */
        return;
    }
    r->got_bytes = 1;
    llhttp_errno_t e = llhttp_execute(&c->parser, (const char *)data, n);
    if (r->dead) { /* cancelled inside a handler (the connection is closing) */
        gw_hc_req_release(r);
        return;
    }
    if (e == HPE_PAUSED) {
        const char *end = llhttp_get_error_pos(&c->parser);
        int extra = end && end < (const char *)data + n;
        int keep = c->keep && !extra;
        c->req = NULL;
        if (keep)
            c->state = HC_READY; /* idle once the handler is done */
        else
            gw_hc_conn_close(c);
        r->state = RQ_DETACHED;
        r->conn = NULL;
        gw_hc_req_finish(r, 0, NULL);
        if (keep && !c->closed && !c->req)
            gw_hc_conn_idle(c);
        return;
    }
    if (e != HPE_OK) {
        snprintf(msg, sizeof(msg), "invalid HTTP answer from the upstream: %s",
                 llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
                                                     : llhttp_errno_name(e));
        gw_hc_conn_close(c);
        gw_hc_req_finish(r, GW_HTTPC_BAD_ANSWER, msg);
    }
}

void gw_h1_on_eof(hconn_t *c)
{
    gw_httpc_req_t *r = c->req;
    if (!r) {
        gw_hc_conn_close(c);
        return;
    }
    llhttp_errno_t e = r->got_bytes ? llhttp_finish(&c->parser) : HPE_OK;
    if (r->dead) {
        gw_hc_req_release(r);
        return;
    }
    gw_hc_conn_close(c);
    if (e == HPE_PAUSED) { /* an answer delimited by the close */
        gw_hc_req_finish(r, 0, NULL);
        return;
    }
    if (c->used && !r->got_bytes && !r->retried && !c->pool->closing) {
        gw_hc_req_requeue(r);
        return;
    }
    gw_hc_req_finish(r, r->head_done ? GW_HTTPC_BAD_ANSWER : GW_HTTPC_UNREACHABLE,
                     r->head_done ? "connection closed in the middle of the answer"
                                  : "connection closed before the answer");
}

void gw_h1_dispose(hconn_t *c)
{
    gw_buf_dispose(&c->hname);
    gw_buf_dispose(&c->hval);
}
