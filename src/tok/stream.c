/*
 * pieces-gateway: the streaming token counter (exact count of the concatenated chunks).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_tok_stream_*. Uses: encode.c (piece loop, specials), utf8.c, PCRE2 partial match.
 * Pipeline per chunk: raw bytes -> UTF-8 repair (a cut sequence waits in pend) -> [Claude: NFKC
 * of the text before the last safe starter; the rest waits in norm] -> text, where only pieces
 * that cannot change are counted and dropped. A piece is final when PCRE2_PARTIAL_HARD finds a
 * complete match that never needed to look at the end of the buffered text (greedy runs,
 * lookahead such as \s+(?!\S) and failed alternatives all count as looking) and that does not
 * touch the end. For Claude a suffix that could still become a special token (e.g. "<MET") is
 * kept out of the regex subject, so the ordinary text never runs into it.
 * Pieces are looked for once DRAIN_BATCH bytes of text wait: a streamed delta is often one
 * token of a few bytes, and counting per delta re-matched the unfinished tail every time
 * (the count is the same, the work per byte is not).
 * Must never: count text twice, or keep more than the unfinished tail and one batch (the
 * re-scan of a long unfinished piece is deferred until the buffer doubles, keeping the total
 * work linear).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define DRAIN_BATCH 256

struct gw_tok_stream_s {
    const gw_tok_t *t;
    pcre2_match_data *md;
    uint8_t pend[4];    /* the start of a UTF-8 sequence cut by the end of the last chunk */
    size_t npend;
    tok_buf_t norm;     /* Claude: repaired text not yet NFKC-normalised */
    size_t norm_scanned; /* norm has no safe NFKC split point before this offset */
    tok_buf_t text;     /* normalised text whose pieces are not final yet */
    size_t rescan_at;   /* do not look for final pieces before text.len reaches this */
    size_t count;
    int state;          /* 0 open, 1 finished, < 0 failed with this errno */
};

gw_tok_stream_t *gw_tok_stream_new(const gw_tok_t *t)
{
    if (!t)
        return NULL;
    gw_tok_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->md = pcre2_match_data_create(1, NULL);
    /* the buffers are never NULL, so offsets into them are always defined */
    if (!s->md || tok_buf_reserve(&s->text, 64) != 0 || tok_buf_reserve(&s->norm, 64) != 0) {
        gw_tok_stream_free(s);
        return NULL;
    }
    return s;
}

size_t tok_stream_buffered(const gw_tok_stream_t *s)
{
    return s->npend + s->norm.len + s->text.len;
}

void gw_tok_stream_free(gw_tok_stream_t *s)
{
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    tok_buf_dispose(&s->norm);
    tok_buf_dispose(&s->text);
    free(s);
}

/* Repairs chunk (with the pending cut sequence in front) into dst. */
static int repair(gw_tok_stream_t *s, tok_buf_t *dst, const uint8_t *p, size_t n, int final)
{
    while (s->npend > 0 && (n > 0 || final)) {
        uint8_t tmp[8];
        size_t take = n < 4 ? n : 4;
        memcpy(tmp, s->pend, s->npend);
        memcpy(tmp + s->npend, p, take);
        size_t used = tok_utf8_sanitize(dst, tmp, s->npend + take, final && take == n);
        if (used == (size_t)-1)
            return -ENOMEM;
        if (used < s->npend) { /* still incomplete (so used == 0): all of chunk joins pend */
            memcpy(s->pend, tmp + used, s->npend + take - used);
            s->npend += take - used;
            return 0;
        }
        p += used - s->npend;
        n -= used - s->npend;
        s->npend = 0;
        /* tmp may have stopped inside the chunk's own bytes: continue from there below */
    }
    if (s->npend > 0)
        return 0; /* an empty chunk: the cut sequence keeps waiting */
    size_t used = tok_utf8_sanitize(dst, p, n, final);
    if (used == (size_t)-1)
        return -ENOMEM;
    memcpy(s->pend, p + used, n - used);
    s->npend = n - used;
    return 0;
}

/* Claude: moves the NFKC of norm up to its last safe split point into text. */
static int normalise(gw_tok_stream_t *s, int final)
{
    size_t b = s->norm.len;
    if (!final) {
        size_t from = s->norm_scanned > 1 ? s->norm_scanned : 1;
        b = tok_nfkc_boundary(s->norm.p, s->norm.len, from);
        s->norm_scanned = s->norm.len;
        if (b == 0)
            return 0;
    }
    int rc = tok_nfkc_append(&s->text, s->norm.p, b);
    if (rc != 0)
        return rc;
    tok_buf_consume(&s->norm, b);
    s->norm_scanned = s->norm.len;
    return 0;
}

/* Counts and drops the final pieces at the front of text. */
static int drain(gw_tok_stream_t *s, int final)
{
    const gw_tok_t *t = s->t;
    tok_sink_t sink = {0};
    size_t pos = 0, stop;
    int rc = 0;
    if (final) {
        rc = tok_encode_final(t, s->text.p, s->text.len, s->md, &sink);
        pos = s->text.len;
    }
    while (!final && rc == 0) {
        const tok_special_t *sp = NULL;
        size_t n = s->text.len;
        size_t q = t->n_specials ? tok_find_special(t, s->text.p, n, pos, &sp) : n;
        size_t end = sp ? q : n - (t->n_specials ? tok_special_prefix_tail(t, s->text.p, n) : 0);
        if (end < pos)
            end = pos;
        rc = tok_encode_pieces(t, s->text.p + pos, end - pos, !sp, s->md, &sink, &stop);
        pos += stop;
        if (rc != 0 || !sp)
            break;
        sink.count++; /* the special token itself */
        pos = q + sp->len;
    }
    if (rc != 0)
        return rc;
    s->count += sink.count;
    tok_buf_consume(&s->text, pos);
    s->rescan_at = s->text.len < 64 ? 0 : 2 * s->text.len;
    return 0;
}

static int fail(gw_tok_stream_t *s, int rc)
{
    s->state = rc;
    tok_buf_dispose(&s->norm);
    tok_buf_dispose(&s->text);
    return rc;
}

int gw_tok_stream_feed(gw_tok_stream_t *s, const char *chunk, size_t len)
{
    if (!s || (!chunk && len) || s->state != 0)
        return -EINVAL;
    tok_buf_t *dst = s->t->nfkc ? &s->norm : &s->text;
    int rc = repair(s, dst, (const uint8_t *)(chunk ? chunk : ""), len, 0);
    if (rc == 0 && s->t->nfkc)
        rc = normalise(s, 0);
    if (rc == 0 && s->text.len >= s->rescan_at && s->text.len >= DRAIN_BATCH)
        rc = drain(s, 0);
    return rc == 0 ? 0 : fail(s, rc);
}

size_t gw_tok_stream_finish(gw_tok_stream_t *s)
{
    if (!s || s->state < 0)
        return GW_TOK_COUNT_ERROR;
    if (s->state == 1)
        return s->count;
    tok_buf_t *dst = s->t->nfkc ? &s->norm : &s->text;
    int rc = repair(s, dst, (const uint8_t *)"", 0, 1);
    if (rc == 0 && s->t->nfkc)
        rc = normalise(s, 1);
    if (rc == 0)
        rc = drain(s, 1);
    if (rc != 0) {
        fail(s, rc);
        return GW_TOK_COUNT_ERROR;
    }
    s->state = 1;
    tok_buf_dispose(&s->norm);
    tok_buf_dispose(&s->text);
    return s->count;
}
