/*
 * pieces-gateway: IP parsing/formatting, CIDR matching, trusted-proxy client IP.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ip_*, gw_cidr_*, gw_client_ip. Uses: inet_pton/inet_ntop.
 * Never: trusts a header from an untrusted peer.
 */
#include "ipaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "gw.h"

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int gw_ip_parse(const char *s, size_t n, gw_ip_t *out)
{
    char tmp[GW_IP_TEXT_MAX];
    s = gw_trim(s, n, &n);
    /* inet_pton reads a C string: a NUL inside would hide what follows it */
    if (n == 0 || n >= sizeof(tmp) || memchr(s, '\0', n))
        return GW_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, tmp, out->addr) == 1) {
        out->family = 4;
        return GW_OK;
    }
    uint8_t a6[16];
    if (inet_pton(AF_INET6, tmp, a6) != 1)
        return GW_EINVAL;
    if (memcmp(a6, v4mapped, 12) == 0) {
        out->family = 4;
        memcpy(out->addr, a6 + 12, 4);
    } else {
        out->family = 6;
        memcpy(out->addr, a6, 16);
    }
    return GW_OK;
}

/* IPv4 by hand: glibc's inet_ntop formats it with sprintf (~3.5k instructions), and the
 * peer and client addresses are formatted for every request. */
static void format_v4(const uint8_t *a, char *out)
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
}

void gw_ip_format(const gw_ip_t *ip, char *out, size_t cap)
{
    if (ip->family == 4 && cap >= 16) {
        format_v4(ip->addr, out);
        return;
    }
    if (!inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->addr, out, (socklen_t)cap))
        snprintf(out, cap, "invalid");
}

static void mask_bits(gw_cidr_t *c)
{
    int bytes = c->ip.family == 4 ? 4 : 16;
    for (int i = 0; i < bytes; i++) {
        int keep = c->prefix - i * 8;
        if (keep >= 8)
            continue;
        c->ip.addr[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

int gw_cidr_parse(const char *s, size_t n, gw_cidr_t *out)
{
    s = gw_trim(s, n, &n);
    if (memchr(s, '\0', n)) /* the prefix is read as a C string too */
        return GW_EINVAL;
    const char *slash = memchr(s, '/', n);
    size_t iplen = slash ? (size_t)(slash - s) : n;
    if (gw_ip_parse(s, iplen, &out->ip) != 0)
        return GW_EINVAL;
    int max = out->ip.family == 4 ? 32 : 128;
    out->prefix = max;
    if (slash) {
        char num[8];
        size_t nl = n - iplen - 1;
        long long p;
        if (nl == 0 || nl >= sizeof(num))
            return GW_EINVAL;
        memcpy(num, slash + 1, nl);
        num[nl] = '\0';
        if (gw_parse_int(num, &p) != 0 || p < 0 || num[0] == '+' || num[0] == '-')
            return GW_EINVAL;
        /* "::ffff:1.2.3.0/120" is an IPv4 /24 */
        int mapped = out->ip.family == 4 && memchr(s, ':', iplen) != NULL;
        if (mapped)
            p -= 96;
        if (p < 0 || p > max)
            return GW_EINVAL;
        out->prefix = (int)p;
    }
    mask_bits(out);
    return GW_OK;
}

int gw_cidr_contains(const gw_cidr_t *c, const gw_ip_t *ip)
{
    if (c->ip.family != ip->family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->ip.addr, ip->addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (c->ip.addr[full] & m) == (ip->addr[full] & m);
}

int gw_cidr_list_parse(const char *const *items, size_t n, gw_cidr_list_t *out, char **err)
{
    out->items = n ? gw_calloc(n, sizeof(gw_cidr_t)) : NULL;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (gw_cidr_parse(items[i], strlen(items[i]), &out->items[out->n]) != 0) {
            if (err)
                *err = gw_sprintf("invalid IP or CIDR '%s'", items[i]);
            gw_cidr_list_free(out);
            return GW_EINVAL;
        }
        out->n++;
    }
    return GW_OK;
}

int gw_cidr_list_contains(const gw_cidr_list_t *l, const gw_ip_t *ip)
{
    for (size_t i = 0; i < l->n; i++)
        if (gw_cidr_contains(&l->items[i], ip))
            return 1;
    return 0;
}

void gw_cidr_list_free(gw_cidr_list_t *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* The first non-blank comma-separated item of a header value. */
static const char *first_item(const char *v, size_t n, size_t *len)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t l;
        const char *t = gw_trim(v + i, j - i, &l);
        if (l) {
            *len = l;
            return t;
        }
        i = j + 1;
    }
    return NULL;
}

void gw_client_ip(const gw_ip_t *peer, const char *xff, size_t xff_len, const char *xri,
                  size_t xri_len, const gw_cidr_list_t *trusted, char *out, size_t cap)
{
    gw_ip_t best = *peer, cur;
    size_t l;
    if (!trusted || !gw_cidr_list_contains(trusted, peer))
        goto done;
    if (xff && first_item(xff, xff_len, &l)) {
        /* Right to left: skip blank items and trusted hops; the first untrusted address is
         * the client; garbage means the chain cannot be believed: keep the peer. */
        size_t end = xff_len;
        for (;;) {
            size_t start = end;
            while (start > 0 && xff[start - 1] != ',')
                start--;
            const char *item = gw_trim(xff + start, end - start, &l);
            if (l) {
                if (gw_ip_parse(item, l, &cur) != 0) {
                    best = *peer;
                    break;
                }
                best = cur;
                if (!gw_cidr_list_contains(trusted, &cur))
                    break;
            }
            if (start == 0)
                break;
            end = start - 1;
        }
    } else if (xri) {
        const char *item = first_item(xri, xri_len, &l);
        if (item && gw_ip_parse(item, l, &cur) == 0)
            best = cur;
    }
done:
    gw_ip_format(&best, out, cap);
}
