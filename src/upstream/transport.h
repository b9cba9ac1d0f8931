/*
 * pieces-gateway: byte transports under the HTTP/2 session (internal to src/upstream).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * A transport owns one libuv TCP handle (DNS through uv_getaddrinfo, every resolved address
 * tried in turn) and a vtable that turns wire bytes into plaintext and back: plain (h2c) or
 * TLS (OpenSSL over memory BIOs). Events go to the owner through gw_transport_events_t; after
 * gw_transport_close no event but on_closed runs, and on_closed is the last one (the owner may
 * free the struct there). Single-threaded, loop thread only.
 */
#ifndef GW_TRANSPORT_H
#define GW_TRANSPORT_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_transport_s gw_transport_t;

typedef struct {
    void (*on_ready)(gw_transport_t *t);                             /* connected (+ TLS done) */
    void (*on_data)(gw_transport_t *t, const uint8_t *p, size_t n);  /* plaintext received */
    void (*on_error)(gw_transport_t *t, int kind, const char *msg);  /* fatal; owner closes */
    void (*on_drain)(gw_transport_t *t);                             /* queued writes done */
    void (*on_closed)(gw_transport_t *t);
    /* Optional: the peer closed its side in order (TCP FIN, TLS close_notify). When NULL an
     * EOF is an on_error (GW_GRPC_ERR_RESET), as HTTP/2 wants. */
    void (*on_eof)(gw_transport_t *t);
} gw_transport_events_t;

/* The vtable of one transport kind. Implementations report failures through
 * gw_transport_fail and return a negative code. */
typedef struct {
    const char *name;
    int (*connect)(gw_transport_t *t);                           /* TCP is up: handshake */
    int (*read)(gw_transport_t *t, const uint8_t *p, size_t n);  /* wire bytes in */
    int (*write)(gw_transport_t *t, const uint8_t *p, size_t n); /* plaintext out -> out buf */
    void (*close)(gw_transport_t *t);                            /* free implementation state */
} gw_transport_vt_t;

extern const gw_transport_vt_t gw_transport_plain;
extern const gw_transport_vt_t gw_transport_tls;

struct gw_transport_s {
    uv_loop_t *loop;
    const gw_transport_vt_t *vt;
    const gw_transport_events_t *ev;
    void *owner;
    void *impl;        /* vtable state (SSL for TLS) */
    SSL_CTX *ssl_ctx;  /* borrowed, TLS only */
    int insecure;
    char host[256];
    int port, is_ip;

    uv_tcp_t tcp;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    struct addrinfo *ai_list, *ai_next;
    struct sockaddr_storage ip_addr;
    int last_uv_err;

    uint8_t *out;      /* wire bytes waiting for the next uv_write */
    size_t out_len, out_cap;
    size_t inflight;   /* bytes handed to uv_write, not yet completed */
    uint8_t *rbuf;

    unsigned tcp_open : 1, gai_active : 1, closing : 1, failed : 1, ready : 1,
        close_when_drained : 1, allow_h1 : 1, alpn_h2 : 1, rbuf_borrowed : 1, reading : 1,
        trim_out : 1; /* free the out buffer once it is flushed (connections that write rarely) */
};

/* Prepares t (no I/O yet). host is copied. 0 or -ENOMEM. */
int gw_transport_init(gw_transport_t *t, uv_loop_t *loop, const gw_transport_vt_t *vt,
                      const gw_transport_events_t *ev, void *owner, const char *host, int port,
                      int is_ip, SSL_CTX *ssl_ctx, int insecure);
/* Resolves, connects, handshakes; ends in on_ready or on_error. */
int gw_transport_start(gw_transport_t *t);
/* Queues plaintext; gw_transport_flush hands what is queued to the socket. */
int gw_transport_write(gw_transport_t *t, const uint8_t *p, size_t n);
int gw_transport_flush(gw_transport_t *t);
static inline size_t gw_transport_backlog(const gw_transport_t *t)
{
    return t->inflight + t->out_len;
}
/* Stops (1) or restarts (0) reading from the socket (backpressure). */
void gw_transport_read_pause(gw_transport_t *t, int paused);
/* Reads into buf (at least 64 KiB, shared by the transports of one loop: every read is
 * delivered before the next one starts) instead of the transport's own buffer. */
void gw_transport_use_rbuf(gw_transport_t *t, uint8_t *buf);
/* Closes now (pending writes are dropped); on_closed follows from the loop. */
void gw_transport_close(gw_transport_t *t);
/* Closes once the queued writes are on the wire (used after a final GOAWAY). */
void gw_transport_close_after_writes(gw_transport_t *t);

/* For implementations: report a fatal error once (on_error), and append wire bytes. */
void gw_transport_fail(gw_transport_t *t, int kind, const char *fmt, ...);
int gw_transport_out_reserve(gw_transport_t *t, size_t n);

/* Builds the client SSL_CTX: TLS >= 1.2, ALPN h2, verification against ca_file (or the system
 * CAs when NULL/"") unless insecure. 0, or negative with *err malloc'ed. */
int gw_tls_ctx_new(const char *ca_file, int insecure, SSL_CTX **out, char **err);
/* The same offering ALPN "h2" and "http/1.1": a transport with allow_h1 set then accepts a
 * server that picks http/1.1 (or no ALPN) and records the choice in alpn_h2. */
int gw_tls_ctx_new_h1(const char *ca_file, int insecure, SSL_CTX **out, char **err);

#endif
