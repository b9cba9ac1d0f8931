/*
 * pieces-gateway: an HTTP client for one origin: HTTP/1.1 keep-alive pool, HTTP/2 when TLS ALPN
 * picks h2.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * A gw_httpc_t is the connection pool of one worker loop to one origin (http://host:port or
 * https://host:port). Connections run over the upstream transports (src/upstream/transport.h:
 * plain TCP or OpenSSL memory BIOs, ALPN "h2,http/1.1"). Policy: a request goes to a ready
 * HTTP/2 connection with a free stream slot, else to an idle HTTP/1.1 connection (most recently
 * used first), else a new connection is opened for it; max_idle idle HTTP/1.1 connections
 * are kept for idle_timeout, extra ones for 1 s (so a load with more requests in flight than
 * max_idle does not open a connection per request), then they close. A request that
 * fails on a reused HTTP/1.1 connection before any response byte arrived (the server closed
 * it while idle) is sent once more on a new connection. Responses: Content-Length, chunked, or
 * delimited by close.
 *
 * Callbacks (gw_httpc_handler_t) run from the loop, never inside gw_httpc_request. on_head,
 * then on_body any number of times, then exactly one of on_end / on_error, the last callback
 * (the request is freed after it returns). gw_httpc_cancel is allowed inside on_head and
 * on_body (not after the last callback). Single-threaded: the loop thread only.
 */
#ifndef GW_HTTPC_H
#define GW_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

typedef struct gw_httpc_s gw_httpc_t;
typedef struct gw_httpc_req_s gw_httpc_req_t;

typedef struct {
    const char *origin;     /* "http://host[:port]" or "https://host[:port]" (no path) */
    const char *ca_file;    /* PEM bundle; NULL/"" = the system CAs */
    int insecure;           /* no certificate verification */
    double connect_timeout; /* TCP + TLS (+ the peer's first SETTINGS on h2); 0 = 5 s */
    double idle_timeout;    /* idle HTTP/1.1 connections close after this; 0 = 30 s */
    int max_idle;           /* idle HTTP/1.1 connections kept; 0 = 32 */
} gw_httpc_conf_t;

/* Error classes, as the backend interface's (backend.h: GW_BE_*). */
enum { GW_HTTPC_UNREACHABLE = 1, GW_HTTPC_TIMEOUT = 2, GW_HTTPC_BAD_ANSWER = 3 };

typedef struct {
    int status;
    const char *content_type; /* "" when absent */
    double retry_after;       /* Retry-After in seconds (delta form), -1 when absent */
    int http2;
} gw_httpc_head_t;

typedef struct {
    void (*on_head)(void *ud, const gw_httpc_head_t *h);
    void (*on_body)(void *ud, const char *p, size_t n);
    void (*on_end)(void *ud);
    /* kind: GW_HTTPC_*; msg describes the transport error (never contains request data). */
    void (*on_error)(void *ud, int kind, const char *msg);
} gw_httpc_handler_t;

typedef struct {
    const char *name, *value; /* names lower-case (HTTP/2 requires it) */
} gw_httpc_header_t;

/* Creates the pool (no connection yet). Strings are copied. 0, or -EINVAL with *err (caller
 * frees) for a bad origin or a TLS setup failure. */
int gw_httpc_new(uv_loop_t *loop, const gw_httpc_conf_t *conf, gw_httpc_t **out, char **err);
/* Open requests end with on_error (UNREACHABLE, "pool closed"), connections close, the pool
 * frees itself once every handle closed. Call once. */
void gw_httpc_close(gw_httpc_t *p);

/* Starts a request: path (with query), extra headers (Host, Content-Length and, for HTTP/2,
 * the pseudo-headers are added) and body are copied. timeout_ms: deadline of the whole
 * exchange (queueing and connecting included), 0 = none. 0 and *out, or -EINVAL/-ESHUTDOWN
 * (no callback then). */
int gw_httpc_request(gw_httpc_t *p, const char *method, const char *path,
                     const gw_httpc_header_t *headers, size_t n_headers, const char *body,
                     size_t body_len, uint64_t timeout_ms, const gw_httpc_handler_t *h, void *ud,
                     gw_httpc_req_t **out);
/* No callback after this; an HTTP/1.1 connection in the middle of the answer is closed, an
 * HTTP/2 stream is reset (CANCEL). */
void gw_httpc_cancel(gw_httpc_req_t *r);
/* No callback after this, but the rest of the answer is still read (within 2 s) so the
 * connection can be kept: for an answer whose end is known to be near ("[DONE]" seen). */
void gw_httpc_discard(gw_httpc_req_t *r);
/* Backpressure: stop reading (HTTP/1.1: the socket; HTTP/2: the stream's window is not
 * given back) until resumed. */
void gw_httpc_pause(gw_httpc_req_t *r, int paused);

/* {"origin":..,"connections":N,"idle":N,"h2":N,"requests":N,"queued":N} appended to out. */
void gw_httpc_stats_json(gw_httpc_t *p, gw_buf_t *out);

typedef struct {
    uint64_t conns_opened, conns_failed, requests, reused, retried;
    int connections, idle, h2, active;
} gw_httpc_counters_t;
void gw_httpc_counters(gw_httpc_t *p, gw_httpc_counters_t *out);

#endif
