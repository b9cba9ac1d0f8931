/*
 * pieces-gateway: gRPC-over-HTTP/2 wire helpers (see grpc_frame.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: the deframer, grpc-timeout, grpc-message decoding, status mapping, addresses.
 * Uses: libc only.
 * Must never: trust a length prefix before checking it against max_msg (a 4 GiB prefix must
 *   not become a 4 GiB allocation).
 */
#include "grpc_frame.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gw_grpc_deframer_init(gw_grpc_deframer_t *d, size_t max_msg)
{
    memset(d, 0, sizeof(*d));
    d->max_msg = max_msg;
}

void gw_grpc_deframer_dispose(gw_grpc_deframer_t *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

void gw_grpc_deframer_release(gw_grpc_deframer_t *d)
{
    if (d->off != d->len || !d->buf)
        return;
    free(d->buf);
    d->buf = NULL;
    d->cap = d->off = d->len = 0;
}

int gw_grpc_deframer_feed(gw_grpc_deframer_t *d, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (d->off == d->len) {
        d->off = d->len = 0;
    } else if (d->off > 0 && d->len + n > d->cap) {
        memmove(d->buf, d->buf + d->off, d->len - d->off);
        d->len -= d->off;
        d->off = 0;
    }
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *nb = realloc(d->buf, cap);
        if (!nb)
            return -ENOMEM;
        d->buf = nb;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return 0;
}

int gw_grpc_frame_parse(const uint8_t *p, size_t n, size_t max_msg, const uint8_t **msg,
                        size_t *len, size_t *wire)
{
    uint32_t m;
    if (n < GW_GRPC_PREFIX)
        return 0;
    if (p[0] != 0)
        return -EPROTO;
    m = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (m > max_msg)
        return -EMSGSIZE;
    if (n < GW_GRPC_PREFIX + (size_t)m)
        return 0;
    *msg = p + GW_GRPC_PREFIX;
    *len = m;
    *wire = GW_GRPC_PREFIX + (size_t)m;
    return 1;
}

int gw_grpc_deframer_next(gw_grpc_deframer_t *d, const uint8_t **msg, size_t *len, size_t *wire)
{
    size_t avail = d->len - d->off;
    if (avail < GW_GRPC_PREFIX)
        return 0; /* before forming a pointer: buf is NULL until the first feed (NULL + 0 is UB) */
    int rc = gw_grpc_frame_parse(d->buf + d->off, avail, d->max_msg, msg, len, wire);
    if (rc != 1)
        return rc;
    d->off += *wire;
    if (d->off == d->len)
        d->off = d->len = 0; /* the message stays readable: nothing overwrites it before feed */
    return 1;
}

void gw_grpc_frame_prefix(uint8_t out[GW_GRPC_PREFIX], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int gw_grpc_timeout_format(uint64_t ms, char *buf, size_t cap)
{
    static const struct {
        uint64_t div;
        char unit;
    } units[] = {{1, 'm'}, {1000, 'S'}, {60000, 'M'}, {3600000, 'H'}};
    const uint64_t max = 99999999;
    int n;

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t v = ms / units[i].div + (ms % units[i].div != 0);
        if (v <= max || i == sizeof(units) / sizeof(units[0]) - 1) {
            n = snprintf(buf, cap, "%llu%c", (unsigned long long)(v > max ? max : v),
                         units[i].unit);
            return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
        }
    }
    return -ENOSPC;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

size_t gw_grpc_percent_decode(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)in[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return o;
}

int gw_grpc_status_from_http(int s)
{
    switch (s) {
    case 400: return 13; /* INTERNAL */
    case 401: return 16; /* UNAUTHENTICATED */
    case 403: return 7;  /* PERMISSION_DENIED */
    case 404: return 12; /* UNIMPLEMENTED */
    case 429: case 502: case 503: case 504: return 14; /* UNAVAILABLE */
    default: return 2;   /* UNKNOWN */
    }
}

int gw_grpc_status_from_h2(uint32_t code)
{
    switch (code) {
    case 0x7: return 14; /* REFUSED_STREAM -> UNAVAILABLE */
    case 0x8: return 1;  /* CANCEL -> CANCELLED */
    case 0xb: return 8;  /* ENHANCE_YOUR_CALM -> RESOURCE_EXHAUSTED */
    case 0xc: return 7;  /* INADEQUATE_SECURITY -> PERMISSION_DENIED */
    default: return 13;  /* everything else -> INTERNAL */
    }
}

static int parse_port(const char *s, int *port)
{
    char *end;
    long v;
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* Splits "host[:port]" / "[v6][:port]" (path already cut off) into out. */
static int split_host_port(const char *hp, size_t n, gw_upstream_addr_t *out, const char **err)
{
    char tmp[300];
    const char *host = tmp, *colon;
    size_t hlen;
    unsigned char ip6[16];

    if (n == 0 || n >= sizeof(tmp))
        return *err = "empty or too long host", -EINVAL;
    memcpy(tmp, hp, n);
    tmp[n] = '\0';
    if (tmp[0] == '[') {
        char *close = strchr(tmp, ']');
        if (!close)
            return *err = "unterminated IPv6 literal", -EINVAL;
        *close = '\0';
        host = tmp + 1;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] && !colon)
            return *err = "junk after IPv6 literal", -EINVAL;
        if (inet_pton(AF_INET6, host, ip6) != 1)
            return *err = "invalid IPv6 literal", -EINVAL;
        out->is_ip = 1;
    } else {
        colon = strchr(tmp, ':');
        if (colon && strchr(colon + 1, ':'))
            return *err = "IPv6 literal needs brackets: [addr]:port", -EINVAL;
        if (colon)
            *(char *)colon = '\0';
        out->is_ip = inet_pton(AF_INET, host, ip6) == 1;
    }
    if (colon && parse_port(colon + 1, &out->port) != 0)
        return *err = "invalid port", -EINVAL;
    hlen = strlen(host);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return *err = "empty or too long host", -EINVAL;
    memcpy(out->host, host, hlen + 1);
    return 0;
}

int gw_upstream_addr_parse(const char *address, gw_upstream_addr_t *out, const char **err)
{
    const char *p = address, *slash;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!address || !*address)
        return *err = "empty address", -EINVAL;
    out->tls = 1;
    if (strncmp(p, "https://", 8) == 0) {
        p += 8;
    } else if (strncmp(p, "http://", 7) == 0) {
        p += 7;
        out->tls = 0;
    } else if (strstr(p, "://")) {
        return *err = "unsupported scheme (https:// or http://)", -EINVAL;
    }
    slash = strchr(p, '/');
    if (slash && slash[1] != '\0')
        return *err = "a path is not allowed in the upstream address", -EINVAL;
    n = slash ? (size_t)(slash - p) : strlen(p);
    out->port = out->tls ? 443 : 80;
    rc = split_host_port(p, n, out, err);
    if (rc != 0)
        return rc;
    snprintf(out->authority, sizeof(out->authority), strchr(out->host, ':') ? "[%s]:%d" : "%s:%d",
             out->host, out->port);
    return 0;
}
