/*
 * pieces-gateway: libFuzzer driver for the upstream SSE parser (src/backend/openai/sse.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Input: 2 bytes of seed, then the stream. The stream is parsed once in one piece and once cut
 * at pseudo-random points chosen by the seed (1..64-byte pieces); the events (name and data),
 * the final status and the bytes left pending must be identical. Bit 0 of the seed selects a
 * small event limit (64 bytes) so the -EMSGSIZE path is exercised too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/openai/sse.h"

typedef struct {
    gw_buf_t out;
} sink_t;

static int on_event(void *ud, const char *ev, size_t elen, const char *d, size_t dlen)
{
    sink_t *s = ud;
    uint32_t l[2] = {(uint32_t)elen, (uint32_t)dlen};
    gw_buf_append(&s->out, l, sizeof(l));
    gw_buf_append(&s->out, ev, elen);
    gw_buf_append(&s->out, d, dlen);
    return 0;
}

static int parse(const uint8_t *p, size_t n, size_t max, uint32_t seed, gw_buf_t *out,
                 size_t *pending)
{
    gw_sse_parser_t sp;
    sink_t s = {*out};
    int rc = 0;
    gw_sse_init(&sp, max);
    for (size_t i = 0; i < n && rc == 0;) {
        size_t step = n - i;
        if (seed) {
            seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
            step = 1 + seed % 64;
            if (step > n - i)
                step = n - i;
        }
        rc = gw_sse_feed(&sp, (const char *)p + i, step, on_event, &s);
        i += step;
    }
    *pending = gw_sse_pending(&sp);
    gw_sse_dispose(&sp);
    *out = s.out;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] | (uint32_t)data[1] << 8;
    size_t max = (seed & 1) ? 64 : 0;
    gw_buf_t a, b;
    size_t pa, pb;
    gw_buf_init(&a);
    gw_buf_init(&b);
    int ra = parse(data + 2, size - 2, max, 0, &a, &pa);
    int rb = parse(data + 2, size - 2, max, seed | 0x10000, &b, &pb);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0) ||
        (ra == 0 && pa != pb))
        abort();
    gw_buf_dispose(&a);
    gw_buf_dispose(&b);
    return 0;
}
