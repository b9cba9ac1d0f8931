/*
 * pieces-gateway: internals of the HTTP client (httpc.c, httpc_h1.c, httpc_h2.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Ownership: the pool owns its connections and every request until the request's last
 * callback returned. A request is queued (pool queue), bound (conn->req of an HTTP/1.1
 * connection, or pending on a connecting one) or a stream (conn->streams of an HTTP/2
 * connection). Handlers may cancel inside on_head/on_body: the request is then marked dead and
 * freed by whoever called the handler, after it returned. Nothing frees a connection
 * synchronously: transports close through the loop, the struct goes in the last close callback.
 */
#ifndef GW_HTTPC_INT_H
#define GW_HTTPC_INT_H

#include <llhttp.h>
#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "httpc.h"
#include "transport.h"

typedef enum { HC_CONNECTING, HC_READY, HC_CLOSING } hc_state_t;
typedef enum { RQ_QUEUED, RQ_BOUND, RQ_DETACHED } rq_state_t;

typedef struct hconn_s hconn_t;

struct gw_httpc_req_s {
    gw_httpc_t *pool;
    hconn_t *conn;
    gw_httpc_req_t *prev, *next; /* pool queue or conn->streams */
    rq_state_t state;
    char *method, *path;
    gw_httpc_header_t *hdrs; /* [0] = method, path; [1..n_hdrs] the headers; strings
                                live in the same allocation */
    size_t n_hdrs;
    char *body;
    size_t body_len, body_off;
    uint64_t timeout_ms;
    uv_timer_t timer;
    const gw_httpc_handler_t *h;
    void *ud;
    int32_t stream_id;
    int status;
    double retry_after;
    char ctype[96];
    size_t unconsumed; /* HTTP/2 DATA bytes not yet given back to the stream */
    unsigned timer_on : 1, paused : 1, dead : 1, in_cb : 1, head_done : 1, got_bytes : 1,
        retried : 1, discard : 1;
};

struct hconn_s {
    gw_httpc_t *pool;
    hconn_t *prev, *next;   /* every connection */
    hconn_t *iprev, *inext; /* idle HTTP/1.1 connections */
    hc_state_t state;
    unsigned id;
    gw_transport_t tr;
    uv_timer_t timer; /* connect timeout, then the idle timeout */
    int handles;
    unsigned h2 : 1, used : 1, idle : 1, keep : 1, settings_seen : 1, in_h2 : 1, goaway : 1,
        closed : 1;
    /* HTTP/1.1 */
    llhttp_t parser;
    gw_httpc_req_t *req;  /* bound (sent, or waiting for this connection to be ready) */
    gw_buf_t hname, hval; /* the response header being parsed */
    /* HTTP/2 */
    nghttp2_session *sess;
    gw_httpc_req_t *streams;
    int nstreams;
    uint32_t max_streams;
};

struct gw_httpc_s {
    uv_loop_t *loop;
    gw_httpc_conf_t conf;
    char *origin, *ca_file;
    gw_upstream_addr_t addr;
    char host_header[300];
    SSL_CTX *ssl;
    const gw_transport_vt_t *vt;
    hconn_t *conns, *idle;
    int n_conns, n_idle;
    unsigned next_id;
    gw_httpc_req_t *qhead, *qtail;
    int queued;
    uv_idle_t kick;
    int handles;
    uint8_t *rbuf; /* read buffer shared by this pool's transports */
    gw_httpc_counters_t cnt;
    unsigned closing : 1, close_done : 1;
};

/* httpc.c */
void gw_hc_kick(gw_httpc_t *p);
void gw_hc_conn_close(hconn_t *c);
/* The connection broke: its requests get their errors (or go again), then it closes. */
void gw_hc_conn_fail(hconn_t *c, int kind, const char *msg);
/* An HTTP/1.1 connection whose answer is complete: idle (or closed when enough are idle). */
void gw_hc_conn_idle(hconn_t *c);
/* (Re)arms the idle timeout of a connection without requests. */
void gw_hc_idle_timer(hconn_t *c);
/* The request's last callback: on_end (kind 0) or on_error; then it is freed. */
void gw_hc_req_finish(gw_httpc_req_t *r, int kind, const char *msg);
/* Calls on_head / on_body; returns 1 when the handler cancelled the request. */
int gw_hc_req_head(gw_httpc_req_t *r, int http2);
int gw_hc_req_body(gw_httpc_req_t *r, const char *p, size_t n);
/* Frees a request that was cancelled inside a handler (its caller noticed r->dead). */
void gw_hc_req_release(gw_httpc_req_t *r);
/* Puts a request that never reached the server back at the head of the queue. */
void gw_hc_req_requeue(gw_httpc_req_t *r);
void gw_hc_parse_header(gw_httpc_req_t *r, const char *name, size_t nlen, const char *value,
                        size_t vlen);

/* httpc_h1.c */
void gw_h1_send(hconn_t *c, gw_httpc_req_t *r);
void gw_h1_on_data(hconn_t *c, const uint8_t *p, size_t n);
void gw_h1_on_eof(hconn_t *c);
void gw_h1_dispose(hconn_t *c);

/* httpc_h2.c */
int gw_h2_start(hconn_t *c);
int gw_h2_submit(hconn_t *c, gw_httpc_req_t *r);
void gw_h2_on_data(hconn_t *c, const uint8_t *p, size_t n);
void gw_h2_flush(hconn_t *c);
void gw_h2_cancel(gw_httpc_req_t *r);
void gw_h2_resume(gw_httpc_req_t *r);
int gw_h2_has_room(const hconn_t *c);
void gw_h2_fail_all(hconn_t *c, int kind, const char *msg);
void gw_h2_shutdown(hconn_t *c);
void gw_h2_dispose(hconn_t *c);

#endif
