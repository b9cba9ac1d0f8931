/*
 * pieces-gateway: shared internals of the upstream pool, its connections and calls.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Ownership: the pool (pool.c) owns its connections (conn.c) and every call (call.c) until
 * the call's on_close returns. A call is on exactly one list: the pool's queue (QUEUED), its
 * connection's list (ACTIVE: it has an HTTP/2 stream) or the pool's ending list (ENDING: the
 * stream is gone but buffered messages or the result still wait for a resume). User callbacks
 * run from nghttp2 callbacks, timers or the pool's idle "kick"; nothing that frees a
 * connection or calls nghttp2_session_mem_send may run inside an nghttp2 callback, so such
 * work is deferred to the kick.
 */
#ifndef GW_UPSTREAM_INT_H
#define GW_UPSTREAM_INT_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "grpc_frame.h"
#include "gw_upstream.h"
#include "transport.h"

#define GW_H2_WINDOW 1048576 /* stream and connection receive windows (seed §6) */
#define GW_RETRY_REFUSED 2   /* transparent retries of streams the peer never processed */

typedef struct conn_s conn_t;

typedef enum { CALL_QUEUED, CALL_ACTIVE, CALL_ENDING, CALL_DETACHED } call_state_t;
typedef enum { CONN_CONNECTING, CONN_READY, CONN_DRAINING, CONN_CLOSING } conn_state_t;

struct gw_grpc_call_s {
    gw_upstream_t *u;
    conn_t *conn;
    gw_grpc_call_t *prev, *next;   /* queue / conn->calls / u->ending */
    gw_grpc_call_t *rprev, *rnext; /* u->resume */
    call_state_t state;
    int32_t stream_id;
    const gw_grpc_handler_t *h;
    void *ud;
    char *path;
    uint8_t *req; /* 5-byte prefix + message */
    size_t req_len, req_off;
    uint64_t timeout_ms;
    uv_timer_t timer;
    gw_grpc_deframer_t df;
    size_t unconsumed; /* DATA bytes not yet returned to the stream window */
    int retries;
    int http_status, grpc_status;
    char *grpc_message;
    gw_grpc_error_kind_t end_kind; /* result held while ENDING */
    int end_status;
    char *end_msg;
    unsigned timer_on : 1, paused : 1, in_cb : 1, dead : 1, headers_seen : 1, has_status : 1,
        in_resume : 1, grpc_ct : 1;
};

struct conn_s {
    gw_upstream_t *u;
    conn_t *prev, *next;
    unsigned id;
    conn_state_t state;
    gw_transport_t tr;
    nghttp2_session *sess;
    uv_timer_t timer;      /* connect timeout, then the keepalive period */
    uv_timer_t ping_timer; /* PING ACK deadline */
    int handles;           /* open handles: timers + transport */
    gw_grpc_call_t *calls;
    int nstreams;
    uint32_t max_streams;
    uint64_t last_read;
    uint64_t idle_since;
    uint32_t goaway_code;  /* error code of the peer's GOAWAY (when goaway) */
    char h2_err[160];      /* nghttp2's last error text (why it ended the session) */
    unsigned ping_out : 1, in_h2 : 1, want_close : 1, goaway : 1;
};

struct gw_upstream_s {
    uv_loop_t *loop;
    gw_upstream_conf_t conf;
    char *address, *ca_file;
    gw_upstream_addr_t addr;
    const gw_transport_vt_t *vt;
    SSL_CTX *ssl_ctx;
    conn_t *conns;
    unsigned next_id;
    gw_grpc_call_t *qhead, *qtail, *ending, *resume;
    int queued;
    uv_idle_t kick;
    uv_timer_t scale_timer, backoff_timer;
    int handles;
    double backoff_ms;
    int last_kind;
    char last_err[256];
    gw_upstream_counters_t cnt;
    unsigned closing : 1, close_done : 1;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

/* pool.c */
void gw_pool_kick(gw_upstream_t *u);
void gw_pool_requeue(gw_upstream_t *u, gw_grpc_call_t *c); /* at the queue head */
void gw_pool_conn_ready(gw_upstream_t *u, conn_t *c);
void gw_pool_conn_failed(gw_upstream_t *u, conn_t *c, int was_connecting, int kind,
                         const char *msg);
void gw_pool_conn_freed(gw_upstream_t *u, conn_t *c);
void gw_pool_handle_closed(gw_upstream_t *u); /* a pool-counted handle finished closing */

/* conn.c */
conn_t *gw_conn_open(gw_upstream_t *u);
int gw_conn_submit(conn_t *c, gw_grpc_call_t *call);
void gw_conn_flush(conn_t *c);
void gw_conn_fail(conn_t *c, int kind, const char *msg);
void gw_conn_shutdown(conn_t *c); /* GOAWAY, then close once written */
void gw_conn_stream_done(conn_t *c);
const char *gw_conn_state_name(const conn_t *c);

/* call.c: the stream half of the nghttp2 callbacks, and call lifecycle */
int gw_call_on_header(conn_t *cn, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen);
int gw_call_on_data(conn_t *cn, int32_t stream_id, const uint8_t *data, size_t len);
int gw_call_on_stream_close(conn_t *cn, int32_t stream_id, uint32_t error_code);
void gw_call_on_not_sent(conn_t *cn, const nghttp2_frame *f);
ssize_t gw_call_read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *src, void *ud);
/* The stream is over (or the connection broke): deliver what is buffered, then on_close. */
void gw_call_end(gw_grpc_call_t *c, int kind, int grpc_status, const char *msg);
/* on_close at once, buffered messages dropped (pool close, connect failure while queued). */
void gw_call_fail_now(gw_grpc_call_t *c, int kind, int grpc_status, const char *msg);
/* Takes the call off its list (queue, connection, ending); it is then on none. */
void gw_call_detach(gw_grpc_call_t *c);
/* Continue delivery of a resumed call (from the kick). */
void gw_call_resume_now(gw_grpc_call_t *c);

#endif
