/*
 * pieces-gateway: libFuzzer driver for the gRPC message deframer (src/upstream/grpc_frame.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Input: byte 0 picks max_msg, bytes 1..8 seed the split points, the rest is the DATA byte
 * stream of one call. A reference parse of the whole stream at once (written here, from the
 * gRPC wire format) gives the expected messages and the expected end: an error at message k
 * (compressed/bad flag, or a prefix above max_msg) or n leftover bytes. The deframer is then
 * fed the same bytes in random-sized pieces (empty ones included), taking messages after every
 * feed the way call.c does (and releasing its buffer whenever it is empty), and must produce
 * the same messages, byte for byte, whatever the splits, and end the same way. Each message
 * is also re-framed with gw_grpc_frame_prefix and must equal its wire bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"

#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c))                                                                              \
            __builtin_trap();                                                                  \
    } while (0)

typedef struct {
    size_t off, len; /* payload position in the stream */
} ref_msg_t;

typedef struct {
    ref_msg_t *msgs;
    size_t n;
    int err;          /* 0, -EPROTO or -EMSGSIZE: what ends the parse */
    size_t left;      /* bytes after the last complete message (when err == 0) */
} ref_t;

static void reference(const uint8_t *p, size_t n, size_t max_msg, ref_t *r)
{
    size_t off = 0;
    memset(r, 0, sizeof(*r));
    r->msgs = malloc((n / GW_GRPC_PREFIX + 1) * sizeof(*r->msgs));
    while (n - off >= GW_GRPC_PREFIX) {
        uint32_t len = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
                       (uint32_t)p[off + 3] << 8 | (uint32_t)p[off + 4];
        if (p[off] != 0) { /* compression is never negotiated: any flag is an error */
            r->err = -EPROTO;
            return;
        }
        if (len > max_msg) {
            r->err = -EMSGSIZE;
            return;
        }
        if (n - off - GW_GRPC_PREFIX < len)
            break;
        r->msgs[r->n].off = off + GW_GRPC_PREFIX;
        r->msgs[r->n].len = len;
        r->n++;
        off += GW_GRPC_PREFIX + len;
    }
    r->left = n - off;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Split sizes: mostly small (the interesting boundaries are inside the 5-byte prefix), some
 * empty, some large. */
static size_t piece(uint64_t *s, size_t left)
{
    uint64_t r = next_rand(s);
    size_t n;
    switch (r & 7) {
    case 0: n = 0; break;
    case 1: case 2: case 3: n = 1 + (r >> 8) % 6; break;
    case 4: case 5: n = 1 + (r >> 8) % 64; break;
    case 6: n = 1 + (r >> 8) % 4096; break;
    default: n = left; break;
    }
    return n < left ? n : left;
}

static const size_t MAX_MSGS[] = {0, 1, 4, 5, 16, 100, 255, 1024, 65536, 4u << 20};

/* Takes every complete message now buffered; checks each against the reference. Returns the
 * deframer's verdict: 0 (needs more) or its error. */
static int drain(gw_grpc_deframer_t *d, const uint8_t *stream, const ref_t *r, size_t *k)
{
    const uint8_t *msg;
    size_t len, wire;
    int rc;
    while ((rc = gw_grpc_deframer_next(d, &msg, &len, &wire)) == 1) {
        uint8_t prefix[GW_GRPC_PREFIX];
        CHECK(*k < r->n);
        CHECK(len == r->msgs[*k].len && wire == len + GW_GRPC_PREFIX);
        CHECK(len == 0 || memcmp(msg, stream + r->msgs[*k].off, len) == 0);
        gw_grpc_frame_prefix(prefix, (uint32_t)len);
        CHECK(memcmp(prefix, stream + r->msgs[*k].off - GW_GRPC_PREFIX, GW_GRPC_PREFIX) == 0);
        (*k)++;
    }
    if (rc == 0 && gw_grpc_deframer_pending(d) == 0)
        gw_grpc_deframer_release(d); /* as call.c does between messages */
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    size_t max_msg = MAX_MSGS[data[0] % (sizeof(MAX_MSGS) / sizeof(MAX_MSGS[0]))];
    uint64_t seed;
    memcpy(&seed, data + 1, 8);
    const uint8_t *stream = data + 9;
    size_t n = size - 9, fed = 0, k = 0;
    ref_t r;
    reference(stream, n, max_msg, &r);

    gw_grpc_deframer_t d;
    gw_grpc_deframer_init(&d, max_msg);
    int rc = drain(&d, stream, &r, &k); /* a call that ends before any DATA */
    while (rc == 0 && fed < n) {
        size_t m = piece(&seed, n - fed);
        CHECK(gw_grpc_deframer_feed(&d, stream + fed, m) == 0);
        fed += m;
        rc = drain(&d, stream, &r, &k);
        CHECK(rc == 0 || rc == r.err);
    }
    CHECK(k == r.n);
    CHECK(rc == r.err);
    if (rc == 0)
        CHECK(gw_grpc_deframer_pending(&d) == r.left);
    else /* an error stops at the bad prefix: nothing of it was taken */
        CHECK(gw_grpc_deframer_pending(&d) >= GW_GRPC_PREFIX);
    gw_grpc_deframer_dispose(&d);
    free(r.msgs);
    return 0;
}
