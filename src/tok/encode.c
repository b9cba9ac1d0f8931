/*
 * pieces-gateway: encoding and counting (pre-tokenisation with PCRE2, specials, BPE per piece).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_tok_encode, gw_tok_count and the piece loop the streaming counter shares.
 * Uses: split.c (the pieces of ASCII text), PCRE2 (JIT, the reference pat_str regexes: the
 * other pieces), bpe.c, utf8.c.
 * Mirrors tiktoken's CoreBPE::encode: the text is cut at each allowed special token (Claude
 * only; OpenAI encodings use encode_ordinary), each ordinary segment is split by the regex
 * (find_iter: leftmost-first matches, unmatched bytes skipped) and each piece is looked up whole
 * before byte-pair merging.
 * Must never: share a pcre2_match_data between threads, or run the regex on invalid UTF-8.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static int match(const gw_tok_t *t, const uint8_t *s, size_t n, size_t pos, uint32_t opts,
                 pcre2_match_data *md)
{
    if (t->jit)
        return pcre2_jit_match(t->re, s, n, pos, opts, md, NULL);
    return pcre2_match(t->re, s, n, pos, opts | PCRE2_NO_UTF_CHECK, md, NULL);
}

static int sink_piece(const gw_tok_t *t, const uint8_t *p, size_t n, tok_sink_t *sink)
{
    uint32_t *out = NULL;
    if (sink->ids) {
        if (sink->cap - sink->count < n) {
            size_t cap = sink->cap * 2 > sink->count + n ? sink->cap * 2 : sink->count + n;
            uint32_t *ids = realloc(sink->ids, cap * sizeof *ids);
            if (!ids)
                return -ENOMEM;
            sink->ids = ids;
            sink->cap = cap;
        }
        out = sink->ids + sink->count;
    }
    size_t k = tok_bpe(&t->vocab, p, n, out);
    if (k == 0)
        return -ENOMEM;
    sink->count += k;
    return 0;
}

static int sink_id(tok_sink_t *sink, uint32_t id)
{
    if (sink->ids && sink->cap == sink->count) {
        size_t cap = sink->cap * 2 + 1;
        uint32_t *ids = realloc(sink->ids, cap * sizeof *ids);
        if (!ids)
            return -ENOMEM;
        sink->ids = ids;
        sink->cap = cap;
    }
    if (sink->ids)
        sink->ids[sink->count] = id;
    sink->count++;
    return 0;
}

int tok_regex_next(const gw_tok_t *t, const uint8_t *s, size_t n, size_t pos, int partial,
                   pcre2_match_data *md, size_t *start, size_t *end)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int m = match(t, s, n, pos, partial ? PCRE2_PARTIAL_HARD : 0, md);
    if (m == PCRE2_ERROR_NOMATCH)
        return TOK_SPLIT_NONE;
    if (m == PCRE2_ERROR_PARTIAL)
        return TOK_SPLIT_MORE; /* the piece at pos depends on text not yet seen */
    if (m < 0 || ov[1] <= ov[0])
        return -EIO; /* resource limit or an empty match: not possible with our patterns */
    *start = ov[0];
    *end = ov[1];
    return TOK_SPLIT_OK;
}

int tok_encode_pieces(const gw_tok_t *t, const uint8_t *s, size_t n, int partial,
                      pcre2_match_data *md, tok_sink_t *sink, size_t *stop)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < n) {
        size_t start = pos, end;
        int m = t->split ? t->split(s, n, pos, partial, &end) : TOK_SPLIT_REGEX;
        if (m == TOK_SPLIT_REGEX)
            m = tok_regex_next(t, s, n, pos, partial, md, &start, &end);
        if (m == TOK_SPLIT_NONE && !partial)
            pos = n; /* find_iter skips text no alternative matches */
        if (m != TOK_SPLIT_OK) {
            rc = m < 0 ? m : 0;
            break;
        }
        if (partial && end >= n)
            break; /* a piece touching the end may still grow */
        if ((rc = sink_piece(t, s + start, end - start, sink)) != 0)
            break;
        pos = end;
    }
    *stop = pos;
    return rc;
}

size_t tok_find_special(const gw_tok_t *t, const uint8_t *s, size_t n, size_t from,
                        const tok_special_t **which)
{
    for (size_t i = from; i < n; i++) {
        const uint8_t *lt = memchr(s + i, '<', n - i);
        if (!lt)
            break;
        i = (size_t)(lt - s);
        for (size_t k = 0; k < t->n_specials; k++) {
            const tok_special_t *sp = &t->specials[k];
            if (n - i >= sp->len && memcmp(s + i, sp->text, sp->len) == 0) {
                *which = sp;
                return i;
            }
        }
    }
    return n;
}

size_t tok_special_prefix_tail(const gw_tok_t *t, const uint8_t *s, size_t n)
{
    size_t best = 0;
    for (size_t k = 0; k < t->n_specials; k++) {
        const tok_special_t *sp = &t->specials[k];
        for (size_t l = sp->len - 1; l > best; l--) {
            if (l <= n && memcmp(s + n - l, sp->text, l) == 0) {
                best = l;
                break;
            }
        }
    }
    return best;
}

int tok_encode_final(const gw_tok_t *t, const uint8_t *s, size_t n, pcre2_match_data *md,
                     tok_sink_t *sink)
{
    size_t pos = 0, stop;
    for (;;) {
        const tok_special_t *sp = NULL;
        size_t q = t->n_specials ? tok_find_special(t, s, n, pos, &sp) : n;
        int rc = tok_encode_pieces(t, s + pos, q - pos, 0, md, sink, &stop);
        if (rc != 0)
            return rc;
        if (q == n)
            return 0;
        if ((rc = sink_id(sink, sp->id)) != 0)
            return rc;
        pos = q + sp->len;
    }
}

int tok_prepare(const gw_tok_t *t, const uint8_t *s, size_t n, tok_buf_t *tmp,
                const uint8_t **out, size_t *out_len)
{
    tok_buf_t fixed = {0};
    if (tok_utf8_valid_prefix(s, n) != n) {
        if (tok_utf8_sanitize(&fixed, s, n, 1) == (size_t)-1)
            return -ENOMEM;
        s = fixed.p;
        n = fixed.len;
    }
    if (t->nfkc) {
        int rc = tok_nfkc_append(tmp, s, n);
        tok_buf_dispose(&fixed);
        if (rc != 0)
            return rc;
        *out = tmp->p;
        *out_len = tmp->len;
        return 0;
    }
    *tmp = fixed;
    *out = fixed.p ? fixed.p : s;
    *out_len = n;
    return 0;
}

static int run(const gw_tok_t *t, const char *text, size_t len, tok_sink_t *sink)
{
    if (!t || (!text && len))
        return -EINVAL;
    if (len >= UINT32_MAX)
        return -E2BIG;
    if (len == 0)
        return 0;
    tok_buf_t tmp = {0};
    const uint8_t *s;
    size_t n;
    int rc = tok_prepare(t, (const uint8_t *)text, len, &tmp, &s, &n);
    if (rc != 0)
        return rc;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) {
        rc = -ENOMEM;
        goto done;
    }
    rc = n >= UINT32_MAX ? -E2BIG : tok_encode_final(t, s, n, md, sink);
    pcre2_match_data_free(md);
done:
    tok_buf_dispose(&tmp);
    return rc;
}

int gw_tok_encode(const gw_tok_t *t, const char *text, size_t len, uint32_t **ids, size_t *n)
{
    tok_sink_t sink = {0};
    *ids = NULL;
    *n = 0;
    sink.cap = len / 3 + 16;
    sink.ids = malloc(sink.cap * sizeof *sink.ids);
    if (!sink.ids)
        return -ENOMEM;
    int rc = run(t, text, len, &sink);
    if (rc != 0 || sink.count == 0) {
        free(sink.ids);
        return rc;
    }
    *ids = sink.ids;
    *n = sink.count;
    return 0;
}

size_t gw_tok_count(const gw_tok_t *t, const char *text, size_t len)
{
    tok_sink_t sink = {0};
    return run(t, text, len, &sink) == 0 ? sink.count : GW_TOK_COUNT_ERROR;
}
