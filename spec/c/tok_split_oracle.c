/*
 * pieces-gateway: the differential oracle of the hand-written splitters (see the header).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Uses: tok_internal.h (t->split, tok_regex_next, tok_encode_pieces). The regex side runs on a
 * copy of the encoding with split = NULL, the path every piece took before split.c.
 * Must never: run the regex on invalid UTF-8 (the caller's texts are valid).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_split_oracle.h"

typedef struct {
    const gw_tok_t *t;
    gw_tok_t slow;          /* t without its splitter: the regex only */
    pcre2_match_data *md;
    const uint8_t *s, *u;   /* the text, and the text + ext */
    size_t n, un;
    int ascii;              /* s has no byte >= 0x80 */
    tok_split_stats_t *st;
    char *why;
    size_t why_len;
} oracle_t;

static int fail(oracle_t *o, const char *what, size_t pos, long got, long want)
{
    int k = snprintf(o->why, o->why_len, "%s: %s at %zu: got %ld, want %ld; text (%zu + %zu "
                     "bytes): \"", gw_tok_name(o->t), what, pos, got, want, o->n, o->un - o->n);
    size_t w = k > 0 ? (size_t)k : 0;
    for (size_t i = 0; i < o->un && w + 8 < o->why_len; i++) {
        uint8_t b = o->u[i];
        if (i == o->n)
            w += (size_t)snprintf(o->why + w, o->why_len - w, "\" + \"");
        if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\')
            o->why[w++] = (char)b;
        else
            w += (size_t)snprintf(o->why + w, o->why_len - w, "\\x%02x", b);
    }
    if (w + 2 < o->why_len)
        memcpy(o->why + w, "\"", 2);
    return -1;
}

/* The regex's match at pos of s[0..n) (complete text): its end, or -1 if it does not start at
 * pos or there is none. */
static long regex_at(oracle_t *o, const uint8_t *s, size_t n, size_t pos)
{
    size_t a = 0, b = 0;
    int r = tok_regex_next(o->t, s, n, pos, 0, o->md, &a, &b);
    return r == TOK_SPLIT_OK && a == pos ? (long)b : -1;
}

static int check_partial(oracle_t *o, size_t pos, long want)
{
    size_t e = 0, a = 0, b = 0;
    int f = o->t->split(o->s, o->n, pos, 1, &e);
    if (f == TOK_SPLIT_OK) {
        o->st->fast_final++;
        if ((long)e != want)
            return fail(o, "final piece vs the regex on the text", pos, (long)e, want);
        long x = regex_at(o, o->u, o->un, pos);
        if ((long)e != x)
            return fail(o, "final piece vs the regex on text + ext", pos, (long)e, x);
    } else if (f == TOK_SPLIT_MORE) {
        o->st->more++;
        int r = tok_regex_next(o->t, o->s, o->n, pos, 1, o->md, &a, &b);
        if (r == TOK_SPLIT_OK && b < o->n)
            return fail(o, "'more' where the regex (partial) commits a piece", pos, -1, (long)b);
    } else if (f != TOK_SPLIT_REGEX || o->ascii) {
        return fail(o, "partial answer code on this text", pos, f, TOK_SPLIT_OK);
    }
    return 0;
}

static int check_pos(oracle_t *o, size_t pos)
{
    size_t e = 0;
    int f = o->t->split(o->s, o->n, pos, 0, &e);
    o->st->positions++;
    if (o->s[pos] >= 0x80) { /* a non-ASCII character start: always the regex's */
        o->st->fallback++;
        return f == TOK_SPLIT_REGEX ? 0 : fail(o, "answer at a non-ASCII byte", pos, f, 2);
    }
    long want = regex_at(o, o->s, o->n, pos);
    if (f == TOK_SPLIT_OK) {
        o->st->fast++;
        if ((long)e != want)
            return fail(o, "piece end vs the regex", pos, (long)e, want);
    } else if (f == TOK_SPLIT_REGEX && !o->ascii) {
        o->st->fallback++;
    } else {
        return fail(o, "answer code on the complete text", pos, f, TOK_SPLIT_OK);
    }
    return check_partial(o, pos, want);
}

/* The ids of tok_encode_pieces(t, s[0..n), partial) into *ids (caller frees), and its stop. */
static size_t encode(const gw_tok_t *t, const uint8_t *s, size_t n, int partial,
                     pcre2_match_data *md, uint32_t **ids, size_t *stop)
{
    tok_sink_t sink = {.ids = malloc((n + 1) * sizeof(uint32_t)), .cap = n + 1};
    if (!sink.ids || tok_encode_pieces(t, s, n, partial, md, &sink, stop) != 0)
        abort(); /* out of memory, or an -EIO the patterns cannot give */
    *ids = sink.ids;
    return sink.count;
}

static int same_ids(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static int check_sequences(oracle_t *o)
{
    uint32_t *f = NULL, *r = NULL, *fu = NULL, *ru = NULL, *fp = NULL, *rp = NULL;
    size_t stop, fstop, rstop;
    int rc = 0;
    size_t nf = encode(o->t, o->s, o->n, 0, o->md, &f, &stop);
    size_t nr = encode(&o->slow, o->s, o->n, 0, o->md, &r, &stop);
    size_t nfu = encode(o->t, o->u, o->un, 0, o->md, &fu, &stop);
    size_t nru = encode(&o->slow, o->u, o->un, 0, o->md, &ru, &stop);
    size_t nfp = encode(o->t, o->s, o->n, 1, o->md, &fp, &fstop);
    size_t nrp = encode(&o->slow, o->s, o->n, 1, o->md, &rp, &rstop);
    o->st->pieces += nf + nfu;
    if (!same_ids(f, nf, r, nr))
        rc = fail(o, "ids of the text (tokens), splitter vs regex", 0, (long)nf, (long)nr);
    else if (!same_ids(fu, nfu, ru, nru))
        rc = fail(o, "ids of text + ext (tokens), splitter vs regex", 0, (long)nfu,
                          (long)nru);
    else if (fstop < rstop || nfp < nrp || !same_ids(fp, nrp, rp, nrp))
        rc = fail(o, "partial: the splitter's final pieces (stop) do not extend the "
                          "regex's", 0, (long)fstop, (long)rstop);
    else if (nfp > nfu || !same_ids(fp, nfp, fu, nfp))
        rc = fail(o, "partial: the final pieces' ids are not a prefix of those of text "
                          "+ ext (tokens)", 0, (long)nfp, (long)nfu);
    free(f);
    free(r);
    free(fu);
    free(ru);
    free(fp);
    free(rp);
    return rc;
}

int tok_split_oracle(const gw_tok_t *t, const uint8_t *s, size_t n, const uint8_t *ext,
                     size_t ext_len, pcre2_match_data *md, tok_split_stats_t *st, char *why,
                     size_t why_len)
{
    uint8_t *u = malloc(n + ext_len + 1); /* exact size (+1 for n + ext_len == 0): ASan */
    if (!u)
        abort();
    memcpy(u, s, n);
    memcpy(u + n, ext, ext_len);
    oracle_t o = {t, *t, md, s, u, n, n + ext_len, tok_ascii_run(s, n) == n, st, why, why_len};
    o.slow.split = NULL;
    st->inputs++;
    int rc = 0;
    for (size_t pos = 0; pos < n && rc == 0; pos++) {
        if ((s[pos] & 0xC0) != 0x80) /* a character start */
            rc = check_pos(&o, pos);
    }
    if (rc == 0)
        rc = check_sequences(&o);
    free(u);
    return rc;
}
