/*
 * pieces-gateway: IP addresses, CIDR lists and client-IP resolution behind trusted proxies.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Addresses are normalised: IPv4 dotted quad, IPv6 in RFC 5952 form, IPv4-mapped IPv6 as IPv4.
 * Pure functions; thread-safe. A gw_cidr_list_t is immutable after parsing.
 */
#ifndef GW_IPADDR_H
#define GW_IPADDR_H

#include <stddef.h>
#include <stdint.h>

#define GW_IP_TEXT_MAX 64

typedef struct {
    int family;        /* 4 or 6 */
    uint8_t addr[16];  /* network order; IPv4 uses the first 4 bytes */
} gw_ip_t;

typedef struct {
    gw_ip_t ip;
    int prefix;        /* 0..32 or 0..128 */
} gw_cidr_t;

typedef struct {
    gw_cidr_t *items;
    size_t n;
} gw_cidr_list_t;

/* Parse IPv4 / IPv6 text (no port, no brackets, no zone). 0 or GW_EINVAL. */
int gw_ip_parse(const char *s, size_t n, gw_ip_t *out);
/* Normalised text into out (cap >= GW_IP_TEXT_MAX). */
void gw_ip_format(const gw_ip_t *ip, char *out, size_t cap);
/* "a.b.c.d" or "a.b.c.d/n" or IPv6 equivalents; host bits are masked off. 0 or GW_EINVAL. */
int gw_cidr_parse(const char *s, size_t n, gw_cidr_t *out);
int gw_cidr_contains(const gw_cidr_t *c, const gw_ip_t *ip);
/* Parse a list of CIDRs; *err (caller frees) names the bad entry. Free with gw_cidr_list_free. */
int gw_cidr_list_parse(const char *const *items, size_t n, gw_cidr_list_t *out, char **err);
int gw_cidr_list_contains(const gw_cidr_list_t *l, const gw_ip_t *ip);
void gw_cidr_list_free(gw_cidr_list_t *l);

/* Resolve the client IP: the peer, unless the peer is trusted; then X-Forwarded-For is walked
 * right to left skipping trusted addresses (the first untrusted one is the client; if all are
 * trusted, the leftmost); X-Real-IP is used only when XFF is absent. Garbage never wins: an
 * unparsable entry stops the walk and the last good address is used. Writes normalised text. */
void gw_client_ip(const gw_ip_t *peer, const char *xff, size_t xff_len, const char *xri,
                  size_t xri_len, const gw_cidr_list_t *trusted, char *out, size_t cap);

#endif
