/*
 * pieces-gateway fuzz driver: IP and CIDR parsing, matching and client-IP resolution
 * (src/ipaddr.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Input: "A\nB\nXFF" (missing parts are empty). A and B are parsed as IPs and CIDRs, XFF is an
 * X-Forwarded-For value (and A an X-Real-IP value) for gw_client_ip.
 * Oracles: inet_pton decides which texts are addresses (an address text holds no NUL, blanks
 * around it are trimmed) and gives their bytes; the normalised text round-trips through
 * gw_ip_parse and inet_pton to the same address and formats to itself (inet_ntop); a CIDR's
 * prefix is checked against an independent reading of the text after '/', its host bits are
 * zero, and gw_cidr_contains agrees with a bit-by-bit comparison; the client IP is always the
 * peer or an address of the headers.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "gw.h"
#include "ipaddr.h"

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "ipaddr: %s failed at line %d\n", #c, __LINE__);                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* What inet_pton makes of the trimmed text: 0 (not an address) or 1 with *want filled. */
static int oracle_ip(const char *s, size_t n, gw_ip_t *want)
{
    size_t tl;
    const char *t = gw_trim(s, n, &tl);
    char buf[256];
    if (tl == 0 || tl >= sizeof(buf) || memchr(t, '\0', tl))
        return 0; /* too long for any address text (the longest IPv6 text has 45 bytes) */
    memcpy(buf, t, tl);
    buf[tl] = '\0';
    memset(want, 0, sizeof(*want));
    uint8_t a6[16];
    if (inet_pton(AF_INET, buf, want->addr) == 1) {
        want->family = 4;
    } else if (inet_pton(AF_INET6, buf, a6) == 1) {
        int mapped = memcmp(a6, v4mapped, 12) == 0;
        want->family = mapped ? 4 : 6;
        memcpy(want->addr, mapped ? a6 + 12 : a6, mapped ? 4 : 16);
    } else {
        return 0;
    }
    return 1;
}

static int same_ip(const gw_ip_t *a, const gw_ip_t *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

static void check_ip(const char *s, size_t n)
{
    gw_ip_t ip, want, again;
    int rc = gw_ip_parse(s, n, &ip);
    int ok = oracle_ip(s, n, &want);
    REQUIRE((rc == 0) == ok);
    if (rc != 0)
        return;
    REQUIRE(same_ip(&ip, &want));
    char text[GW_IP_TEXT_MAX], text2[GW_IP_TEXT_MAX];
    gw_ip_format(&ip, text, sizeof(text));
    REQUIRE(gw_ip_parse(text, strlen(text), &again) == 0 && same_ip(&ip, &again));
    gw_ip_format(&again, text2, sizeof(text2));
    REQUIRE(strcmp(text, text2) == 0);
    uint8_t bytes[16];
    REQUIRE(inet_pton(ip.family == 4 ? AF_INET : AF_INET6, text, bytes) == 1);
    REQUIRE(memcmp(bytes, ip.addr, ip.family == 4 ? 4 : 16) == 0);
    char ntop[INET6_ADDRSTRLEN];
    REQUIRE(inet_ntop(ip.family == 4 ? AF_INET : AF_INET6, bytes, ntop, sizeof(ntop)));
    REQUIRE(strcmp(ntop, text) == 0);
}

/* The prefix of a CIDR text as the documentation says: digits only (1 to 7 of them), at most
 * 32 (IPv4) or 128; an IPv4-mapped IPv6 address takes 96 + its IPv4 prefix. -1: invalid. */
static int oracle_prefix(const char *digits, size_t n, const gw_ip_t *ip, int mapped)
{
    if (n == 0 || n > 7)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return -1;
        v = v * 10 + (digits[i] - '0');
    }
    if (mapped)
        v -= 96;
    return v < 0 || v > (ip->family == 4 ? 32 : 128) ? -1 : (int)v;
}

static int bit(const uint8_t *a, int i) { return a[i / 8] >> (7 - i % 8) & 1; }

static void check_cidr(const char *s, size_t n, const char *other, size_t on)
{
    gw_cidr_t c;
    int rc = gw_cidr_parse(s, n, &c);
    size_t tl;
    const char *t = gw_trim(s, n, &tl);
    const char *slash = memchr(t, '/', tl);
    size_t iplen = slash ? (size_t)(slash - t) : tl;
    gw_ip_t want;
    int ok = oracle_ip(t, iplen, &want);
    int max = want.family == 4 ? 32 : 128, prefix = max;
    if (ok && slash)
        prefix = oracle_prefix(slash + 1, tl - iplen - 1, &want,
                               want.family == 4 && memchr(t, ':', iplen) != NULL);
    REQUIRE((rc == 0) == (ok && prefix >= 0));
    if (rc != 0)
        return;
    REQUIRE(c.prefix == prefix);
    for (int i = 0; i < max; i++)
        REQUIRE(bit(c.ip.addr, i) == (i < prefix ? bit(want.addr, i) : 0));
    REQUIRE(gw_cidr_contains(&c, &want));

    char text[GW_IP_TEXT_MAX + 8], ip[GW_IP_TEXT_MAX];
    gw_ip_format(&c.ip, ip, sizeof(ip));
    snprintf(text, sizeof(text), "%s/%d", ip, c.prefix);
    gw_cidr_t c2;
    REQUIRE(gw_cidr_parse(text, strlen(text), &c2) == 0);
    REQUIRE(same_ip(&c.ip, &c2.ip) && c.prefix == c2.prefix);

    gw_ip_t o;
    if (gw_ip_parse(other, on, &o) == 0) {
        int in = o.family == c.ip.family;
        for (int i = 0; in && i < c.prefix; i++)
            in = bit(o.addr, i) == bit(c.ip.addr, i);
        REQUIRE(gw_cidr_contains(&c, &o) == in);
    }
}

/* The answer of gw_client_ip is the peer or one of the addresses in xff or xri. */
static int among(const char *out, const char *list, size_t n)
{
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        gw_ip_t ip;
        char text[GW_IP_TEXT_MAX];
        if (gw_ip_parse(list + i, j - i, &ip) == 0) {
            gw_ip_format(&ip, text, sizeof(text));
            if (strcmp(text, out) == 0)
                return 1;
        }
        i = j + 1;
    }
    return 0;
}

static void check_client_ip(const char *a, size_t an, const char *b, size_t bn, const char *xff,
                            size_t xn)
{
    static const char *const trusted_items[] = {"10.0.0.0/8", "::1", "192.168.0.0/16"};
    gw_cidr_list_t trusted;
    REQUIRE(gw_cidr_list_parse(trusted_items, 3, &trusted, NULL) == 0);
    gw_ip_t peer;
    if (gw_ip_parse(b, bn, &peer) != 0)
        REQUIRE(gw_ip_parse("10.1.2.3", 8, &peer) == 0);
    char out[GW_IP_TEXT_MAX], p[GW_IP_TEXT_MAX];
    gw_client_ip(&peer, xn ? xff : NULL, xn, a, an, &trusted, out, sizeof(out));
    gw_ip_format(&peer, p, sizeof(p));
    gw_ip_t ip;
    REQUIRE(gw_ip_parse(out, strlen(out), &ip) == 0);
    if (!gw_cidr_list_contains(&trusted, &peer))
        REQUIRE(strcmp(out, p) == 0);
    else
        REQUIRE(strcmp(out, p) == 0 || among(out, xff, xn) || among(out, a, an));
    gw_cidr_list_free(&trusted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl1 = memchr(s, '\n', size);
    size_t an = nl1 ? (size_t)(nl1 - s) : size;
    const char *b = nl1 ? nl1 + 1 : s + size;
    size_t rest = size - (size_t)(b - s);
    const char *nl2 = memchr(b, '\n', rest);
    size_t bn = nl2 ? (size_t)(nl2 - b) : rest;
    const char *xff = nl2 ? nl2 + 1 : b + bn;
    size_t xn = size - (size_t)(xff - s);

    check_ip(s, an);
    check_ip(b, bn);
    check_cidr(s, an, b, bn);
    check_cidr(b, bn, s, an);
    check_client_ip(s, an, b, bn, xff, xn);
    return 0;
}
