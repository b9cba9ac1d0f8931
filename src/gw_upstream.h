/*
 * pieces-gateway: the upstream gRPC client (HTTP/2 connection pool, gRPC calls).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * One gw_upstream_t is a pool of HTTP/2 connections to one upstream address, owned by one
 * libuv loop (one worker thread). Nothing here is thread-safe: every function must be called
 * on the loop's thread. No function calls a handler synchronously; handlers run from the loop.
 *
 * Pool policy: min_conns connections are opened eagerly by gw_upstream_new and kept (a broken
 * one is replaced after an exponential backoff, 100 ms doubling up to backoff_max). A call goes
 * to the least-loaded ready connection below the peer's SETTINGS_MAX_CONCURRENT_STREAMS; when
 * every connection is saturated (or none is ready) the call waits in a FIFO queue and, if no
 * connection is already connecting and fewer than max_conns are open, a new one is opened at
 * once (a call never waits for a backoff). If a connection attempt fails while no other
 * connection is ready or connecting, the queued calls fail with that attempt's error. Every
 * scale_interval, idle connections above min_conns are closed. A GOAWAY drains a connection:
 * no new streams, open ones finish, then it closes; streams the peer refused (REFUSED_STREAM,
 * or above GOAWAY's last_stream_id) are retried transparently on another connection, up to
 * twice, as they never reached the application.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_upstream_s gw_upstream_t;

typedef struct {
    const char *address;   /* "host:port" (TLS), "https://host:port" (TLS) or "http://host:port"
                              (h2c, prior knowledge); IPv6 literals as "[::1]:port"; port
                              defaults to 443 (TLS) or 80 (h2c) */
    const char *ca_file;   /* PEM bundle to verify the server; NULL/"" = system CAs */
    int insecure;          /* skip certificate verification (tests only) */
    int min_conns;         /* connections kept open; 0 = fully lazy */
    int max_conns;         /* upper bound; <= 0 means 1 */
    double scale_interval; /* seconds between idle-extra sweeps; 0 = 30 */
    double ping_interval;  /* keepalive PING period while streams are active; 0 = 30 */
    double ping_timeout;   /* connection dropped if a PING is unanswered this long; 0 = 10 */
    double connect_timeout;/* DNS + TCP + TLS + first SETTINGS; 0 = 10 */
    double backoff_max;    /* cap of the reconnect backoff; 0 = 10 */
    size_t max_message;    /* largest accepted reply message; 0 = 4 MiB */
} gw_upstream_conf_t;

/* Creates the pool and starts connecting min_conns connections. Strings in conf are copied.
 * Returns 0, or a negative errno-style code with *err set to a malloc'ed message (caller
 * frees) for a bad address, unreadable ca_file or TLS setup failure. */
int gw_upstream_new(uv_loop_t *loop, const gw_upstream_conf_t *conf, gw_upstream_t **out,
                    char **err);

/* Closes the pool: every call still open gets on_close with GW_GRPC_ERR_CLOSED (from the
 * loop, not from inside this function), connections send GOAWAY and close, and on_closed(ud)
 * runs once every handle is closed; the pool is freed just before. Call once. */
void gw_upstream_close(gw_upstream_t *u, void (*on_closed)(void *ud), void *ud);

typedef enum {
    GW_GRPC_OK_STATUS = 0,   /* the call ended with grpc-status 0 */
    GW_GRPC_ERR_STATUS,      /* the server ended the call with grpc-status != 0 (also
                                trailers-only responses) */
    GW_GRPC_ERR_CONNECT,     /* TCP connect failed or timed out */
    GW_GRPC_ERR_DNS,         /* name resolution failed */
    GW_GRPC_ERR_TLS,         /* TLS handshake or certificate verification failed, or no h2 ALPN */
    GW_GRPC_ERR_RESET,       /* connection reset (ECONNRESET, failed write), or the stream was
                                reset (RST_STREAM) */
    GW_GRPC_ERR_REFUSED,     /* stream refused (REFUSED_STREAM or above GOAWAY's last id) */
    GW_GRPC_ERR_TIMEOUT,     /* the call's deadline (timeout_ms) passed */
    GW_GRPC_ERR_PING_TIMEOUT,/* keepalive PING unanswered: connection dropped */
    GW_GRPC_ERR_PROTOCOL,    /* HTTP/2 protocol error, bad gRPC framing, missing grpc-status */
    GW_GRPC_ERR_HTTP,        /* HTTP :status != 200 (http_status says which) */
    GW_GRPC_ERR_CLOSED,      /* the pool was closed while the call was open */
    GW_GRPC_ERR_NOMEM,
    GW_GRPC_ERR_EOF          /* the peer closed the connection (TCP FIN, TLS close_notify)
                                while the call was open: as much a truncation as a reset */
} gw_grpc_error_kind_t;

/* Passed to on_close; valid only during that callback. grpc_status is the server's status
 * when kind is OK/STATUS, otherwise the gRPC code the error maps to (e.g. UNAVAILABLE for a
 * reset connection, DEADLINE_EXCEEDED for a timeout, INTERNAL for RST_STREAM INTERNAL_ERROR)
 * so retry rules can look at one field. message: grpc-message (percent-decoded) or a text
 * describing the transport error ("" when none). http_status: the response :status, 0 if no
 * response headers came. */
typedef struct {
    gw_grpc_error_kind_t kind;
    int grpc_status;
    const char *message;
    int http_status;
} gw_grpc_result_t;

typedef struct gw_grpc_call_s gw_grpc_call_t;

typedef struct {
    /* Each complete gRPC message, in order; msg is valid during the callback only. */
    void (*on_message)(gw_grpc_call_t *c, const uint8_t *msg, size_t len, void *ud);
    /* Exactly once, the last callback; the call is freed after it returns. */
    void (*on_close)(gw_grpc_call_t *c, const gw_grpc_result_t *res, void *ud);
} gw_grpc_handler_t;

/* Starts a call: path e.g. "/runtime.aot.machine_learning.parents.gpt.GPTInferenceService/
 * PredictWithStream"; msg (the serialized request, without the 5-byte prefix) and path are
 * copied; timeout_ms 0 = no deadline (otherwise sent as grpc-timeout and enforced locally,
 * queue time included). h must outlive the call. Returns 0 and the call in *out (may be NULL),
 * or -EINVAL / -ENOMEM / -ESHUTDOWN (pool closing); a function that returns an error never
 * calls the handler. */
int gw_grpc_call_start(gw_upstream_t *u, const char *path, const uint8_t *msg, size_t len,
                       uint64_t timeout_ms, const gw_grpc_handler_t *h, void *ud,
                       gw_grpc_call_t **out);

/* Cancels: RST_STREAM CANCEL at once (or removal from the queue); no callback runs after
 * this returns, the call is freed. Safe inside the call's own callbacks (not after on_close). */
void gw_grpc_call_cancel(gw_grpc_call_t *c);

/* Frees this thread's pool of call structs (also run by itself when the thread ends, see
 * freelist.h). */
void gw_upstream_pools_drain(void);

/* Backpressure. While paused no on_message runs and received DATA is not acknowledged, so
 * the peer stops after one stream window (1 MiB) per call; resuming delivers what was buffered
 * (from the loop, not inside this function) and reopens the window. A stream that ends while
 * paused keeps its on_close until the buffered messages are delivered. */
void gw_grpc_call_pause(gw_grpc_call_t *c, int paused);

/* Writes the pool state as one JSON object ({"address":..,"connections":N,"streams":N,
 * "queued":N,"buffered":N,"conns":[{"id":..,"state":"ready","streams":N,"max_streams":N,
 * "buffered":N},..]}) into buf; buffered = reply bytes received and not yet delivered
 * (paused calls). connections counts connecting + ready ones; conns lists all.
 * Returns the length written (excluding the NUL), or -ENOSPC if cap is too small. */
int gw_upstream_stats_json(gw_upstream_t *u, char *buf, size_t cap);

/* Lifetime counters, for tests and metrics. */
typedef struct {
    uint64_t conns_opened, conns_failed, conns_closed, calls_started, calls_retried,
        pings_sent, goaways;
    int connections, ready, streams, queued;
} gw_upstream_counters_t;
void gw_upstream_counters(gw_upstream_t *u, gw_upstream_counters_t *out);

/* Static name of an error kind ("ok", "status", "connect", ...). */
const char *gw_grpc_error_name(gw_grpc_error_kind_t kind);

#endif
