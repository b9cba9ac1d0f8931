/*
 * pieces-gateway: stop sequences applied by the gateway to an answer's text.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_stop_*. Uses: gw_buf. A match must end in the bytes just fed (the held text
 * had none), so each feed searches at most keep + n bytes per sequence.
 */
#include "chat_stop.h"

#include <string.h>

void gw_stop_init(gw_stop_t *s, char *const *seqs, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->seqs = seqs;
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(seqs[i]);
        if (len && len - 1 > s->keep)
            s->keep = len - 1;
    }
    gw_buf_init(&s->hold);
}

void gw_stop_dispose(gw_stop_t *s)
{
    gw_buf_dispose(&s->hold);
}

void gw_stop_reset(gw_stop_t *s)
{
    gw_buf_reset(&s->hold);
}

/* The earliest match in h[0..len) (the first listed sequence on a tie), or -1. */
static int earliest(const gw_stop_t *s, const char *h, size_t len, size_t *at)
{
    int which = -1;
    for (size_t i = 0; i < s->n; i++) {
        size_t sl = strlen(s->seqs[i]);
        const char *m = sl ? memmem(h, len, s->seqs[i], sl) : NULL;
        if (m && (which < 0 || (size_t)(m - h) < *at)) {
            *at = (size_t)(m - h);
            which = (int)i;
        }
    }
    return which;
}

int gw_stop_feed(gw_stop_t *s, const char *p, size_t n, gw_buf_t *out)
{
    gw_buf_append(&s->hold, p, n);
    const char *h = s->hold.data;
    size_t len = s->hold.len, at = 0;
    if (!len)
        return -1;
    int which = earliest(s, h, len, &at);
    if (which >= 0) {
        gw_buf_append(out, h, at);
        gw_buf_reset(&s->hold);
        return which;
    }
    size_t emit = len > s->keep ? len - s->keep : 0;
    while (emit > 0 && emit < len && ((unsigned char)h[emit] & 0xC0) == 0x80)
        emit--; /* never split a UTF-8 character between two deltas */
    if (!emit)
        return -1;
    gw_buf_append(out, h, emit);
    memmove(s->hold.data, h + emit, len - emit);
    s->hold.len = len - emit;
    return -1;
}

void gw_stop_flush(gw_stop_t *s, gw_buf_t *out)
{
    if (s->hold.len)
        gw_buf_append(out, s->hold.data, s->hold.len);
    gw_buf_reset(&s->hold);
}
