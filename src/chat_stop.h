/*
 * pieces-gateway: stop sequences applied by the gateway to an answer's text.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Anthropic's stop_sequences on every backend (the Pieces services take none, and
 * OpenAI-compatible servers do not say which one matched): the engine (chat.c) passes the text
 * of choice 0 through a matcher, which lets through what can no longer be the start of a stop
 * sequence, holds back the rest (at most the longest sequence's length - 1 bytes, cut at a
 * UTF-8 character boundary), and reports the earliest sequence found, with the text before it.
 * The sequence itself is never shown. Not thread-safe: one per answer.
 */
#ifndef GW_CHAT_STOP_H
#define GW_CHAT_STOP_H

#include <stddef.h>

#include "buf.h"

#define GW_STOP_MAX 16      /* sequences per request */
#define GW_STOP_MAX_LEN 256 /* bytes per sequence */

typedef struct {
    char *const *seqs; /* borrowed (the request's parameters), non-empty strings */
    size_t n;
    size_t keep; /* the longest sequence's length - 1 */
    gw_buf_t hold;
} gw_stop_t;

/* n == 0: an inactive matcher (gw_stop_active is 0). */
void gw_stop_init(gw_stop_t *s, char *const *seqs, size_t n);
void gw_stop_dispose(gw_stop_t *s);
/* Forget the held text (a new attempt). */
void gw_stop_reset(gw_stop_t *s);
static inline int gw_stop_active(const gw_stop_t *s)
{
    return s->n > 0;
}
/* Appends to out what of the text so far may be shown now. Returns the index of the sequence
 * that ended the text (out then has the text before it and nothing more may be fed), or -1. */
int gw_stop_feed(gw_stop_t *s, const char *p, size_t n, gw_buf_t *out);
/* The answer ended without a match: appends the held text to out. */
void gw_stop_flush(gw_stop_t *s, gw_buf_t *out);

#endif
