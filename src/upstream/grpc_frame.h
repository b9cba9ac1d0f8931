/*
 * pieces-gateway: gRPC-over-HTTP/2 wire helpers (internal to src/upstream).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The message deframer (5-byte prefix: compression flag, big-endian length), grpc-timeout
 * formatting, grpc-message percent-decoding, HTTP/2 -> gRPC status mapping, and upstream
 * address parsing. Pure code, no I/O; unit-tested by spec/c/test_grpc_frame.c.
 */
#ifndef GW_GRPC_FRAME_H
#define GW_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GW_GRPC_PREFIX 5

/* Accumulates DATA bytes and cuts them into messages. Bytes stay in the buffer until taken
 * with gw_grpc_deframer_next, so a paused call holds exactly what it did not deliver. */
typedef struct {
    uint8_t *buf;
    size_t off, len, cap; /* unread bytes are buf[off..len) */
    size_t max_msg;
} gw_grpc_deframer_t;

void gw_grpc_deframer_init(gw_grpc_deframer_t *d, size_t max_msg);
void gw_grpc_deframer_dispose(gw_grpc_deframer_t *d);
/* Free the buffer while it holds nothing (the deframer stays usable). */
void gw_grpc_deframer_release(gw_grpc_deframer_t *d);
/* Appends bytes (copied). 0 or -ENOMEM. */
int gw_grpc_deframer_feed(gw_grpc_deframer_t *d, const uint8_t *p, size_t n);
/* Takes the next complete message: returns 1 with *msg (valid until the next feed/next call)
 * and *len (payload) and *wire (prefix + payload bytes consumed); 0 if incomplete; -EMSGSIZE
 * when the prefix announces more than max_msg; -EPROTO for a compressed flag (we never
 * negotiate compression) or a flag other than 0/1. */
int gw_grpc_deframer_next(gw_grpc_deframer_t *d, const uint8_t **msg, size_t *len, size_t *wire);
/* The same cut on bytes the caller holds (no copy): the first message of p[0..n), with the
 * return values of gw_grpc_deframer_next; *msg points into p. */
int gw_grpc_frame_parse(const uint8_t *p, size_t n, size_t max_msg, const uint8_t **msg,
                        size_t *len, size_t *wire);
/* Bytes buffered and not yet taken. */
static inline size_t gw_grpc_deframer_pending(const gw_grpc_deframer_t *d)
{
    return d->len - d->off;
}

/* Writes the 5-byte prefix for an uncompressed message of len bytes. */
void gw_grpc_frame_prefix(uint8_t out[GW_GRPC_PREFIX], uint32_t len);

/* "<n><unit>" with at most 8 digits (gRPC spec), rounded up so the peer never sees a shorter
 * deadline than ours. Returns the length, or -ENOSPC. */
int gw_grpc_timeout_format(uint64_t ms, char *buf, size_t cap);

/* Percent-decodes grpc-message into out (cap >= n + 1 always suffices); invalid escapes are
 * kept verbatim. Returns the decoded length; out is NUL-terminated. */
size_t gw_grpc_percent_decode(const char *in, size_t n, char *out);

/* gRPC status for an HTTP :status (gRPC's http-grpc-status-mapping.md). */
int gw_grpc_status_from_http(int http_status);
/* gRPC status for an RST_STREAM / GOAWAY error code. */
int gw_grpc_status_from_h2(uint32_t error_code);

typedef struct {
    int tls;
    int port;
    int is_ip;          /* host is an IP literal (no SNI, IP SAN check) */
    char host[256];     /* without brackets */
    char authority[300];/* host:port, IPv6 in brackets */
} gw_upstream_addr_t;

/* Parses "host:port", "https://host[:port]", "http://host[:port]", "[v6]:port". 0, or
 * -EINVAL with *err a static message. */
int gw_upstream_addr_parse(const char *address, gw_upstream_addr_t *out, const char **err);

#endif
