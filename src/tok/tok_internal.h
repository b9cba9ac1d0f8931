/*
 * pieces-gateway: tokenizer internals shared by the files of src/tok (not a public API).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_TOK_INTERNAL_H
#define GW_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gw_tok.h"

#define TOK_NO_RANK UINT32_MAX

/* --- vocab.c: bytes -> rank hash table over one .tiktoken file ---------------------------- */

typedef struct {
    uint32_t off;  /* token bytes at vocab.bytes + off */
    uint32_t rank;
    uint16_t len;  /* 0 = empty slot */
    uint16_t tag;  /* high hash bits, rejects most probes without a memcmp */
} tok_slot_t;

typedef struct {
    uint8_t *bytes;       /* all token bytes, concatenated */
    tok_slot_t *slots;
    uint64_t mask;        /* slot count - 1 (power of two) */
    size_t n_tokens;
    size_t max_len;       /* longest token, in bytes */
    uint32_t byte_rank[256];
} tok_vocab_t;

/* Parses a tiktoken rank file (data[0..len)). 0 or -EIO (malformed) / -ENOMEM; *why gets a
 * static description of a format error. */
int tok_vocab_parse(tok_vocab_t *v, const uint8_t *data, size_t len, const char **why);
void tok_vocab_dispose(tok_vocab_t *v);

uint64_t tok_hash(const uint8_t *p, size_t n);

/* Rank of the byte string p[0..n), or TOK_NO_RANK. */
static inline uint32_t tok_vocab_rank(const tok_vocab_t *v, const uint8_t *p, size_t n)
{
    if (n == 1)
        return v->byte_rank[p[0]];
    if (n > v->max_len)
        return TOK_NO_RANK;
    uint64_t h = tok_hash(p, n);
    uint16_t tag = (uint16_t)(h >> 48);
    for (uint64_t i = h & v->mask;; i = (i + 1) & v->mask) {
        const tok_slot_t *s = &v->slots[i];
        if (s->len == 0)
            return TOK_NO_RANK;
        if (s->tag == tag && s->len == n && memcmp(v->bytes + s->off, p, n) == 0)
            return s->rank;
    }
}

/* --- the encoding ---------------------------------------------------------------------------- */

typedef struct {
    const char *text;
    size_t len;
    uint32_t id;
} tok_special_t;

struct gw_tok_s {
    const char *name;
    tok_vocab_t vocab;
    pcre2_code *re;
    int jit;                        /* re has JIT code (complete + partial-hard) */
    int nfkc;                       /* Claude: NFKC-normalise the text first */
    const tok_special_t *specials;  /* recognised in the text (Claude); NULL = ordinary only */
    size_t n_specials;
};

/* --- bpe.c ------------------------------------------------------------------------------------ */

/* Byte-pair merges of one pre-token piece p[0..n) (n >= 1). Appends the ids to out (room for n
 * ids) unless out is NULL. Returns the number of tokens, or 0 on allocation failure. */
size_t tok_bpe(const tok_vocab_t *v, const uint8_t *p, size_t n, uint32_t *out);

/* --- utf8.c ------------------------------------------------------------------------------------ */

/* Length of the leading ASCII run of s[0..n). */
size_t tok_ascii_run(const uint8_t *s, size_t n);

/* Length of the longest valid UTF-8 prefix of s[0..n). */
size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n);

typedef struct {
    uint8_t *p;
    size_t len, cap;
} tok_buf_t;

int tok_buf_reserve(tok_buf_t *b, size_t extra);
int tok_buf_append(tok_buf_t *b, const void *p, size_t n);
void tok_buf_consume(tok_buf_t *b, size_t n); /* drops the first n bytes */
void tok_buf_dispose(tok_buf_t *b);

/* Appends s[0..n) to out with each maximal invalid subsequence replaced by U+FFFD (WHATWG).
 * If final is 0, a trailing incomplete-but-valid sequence is not consumed; returns the number
 * of input bytes consumed (always n when final), or (size_t)-1 on allocation failure. */
size_t tok_utf8_sanitize(tok_buf_t *out, const uint8_t *s, size_t n, int final);

/* --- nfkc.c ----------------------------------------------------------------------------------- */

/* NFKC of the valid UTF-8 s[0..n), appended to out. 0 or negative errno. */
int tok_nfkc_append(tok_buf_t *out, const uint8_t *s, size_t n);

/* Largest b <= n such that NFKC(s[0..b)) + NFKC(s[b..n) + anything) == NFKC(s + anything),
 * i.e. s[b] is a character no later text can combine with or reorder across; 0 if none is
 * found at or after from (the position of a character start). */
size_t tok_nfkc_boundary(const uint8_t *s, size_t n, size_t from);

/* --- encode.c ------------------------------------------------------------------------------- */

typedef struct {
    uint32_t *ids; /* NULL: count only */
    size_t n, cap;
    size_t count;
} tok_sink_t;

/* Pre-tokenises s[0..n) (valid UTF-8, already normalised) and BPE-encodes each piece into
 * sink, treating s as a complete text: specials are recognised when t has any. */
int tok_encode_final(const gw_tok_t *t, const uint8_t *s, size_t n, pcre2_match_data *md,
                     tok_sink_t *sink);

/* Encodes the ordinary text s[0..n) piece by piece. If partial is set, stops before the first
 * piece that may change when more text is appended and returns its offset in *stop; otherwise
 * encodes everything (*stop = n). */
int tok_encode_pieces(const gw_tok_t *t, const uint8_t *s, size_t n, int partial,
                      pcre2_match_data *md, tok_sink_t *sink, size_t *stop);

/* The first complete special token in s[from..n): its offset, and *which; n if none. */
size_t tok_find_special(const gw_tok_t *t, const uint8_t *s, size_t n, size_t from,
                        const tok_special_t **which);

/* Length of the longest suffix of s[0..n) that is a proper prefix of a special token. */
size_t tok_special_prefix_tail(const gw_tok_t *t, const uint8_t *s, size_t n);

/* Makes text valid UTF-8 (and NFKC for Claude): returns s itself or a buffer in tmp. */
int tok_prepare(const gw_tok_t *t, const uint8_t *s, size_t n, tok_buf_t *tmp,
                const uint8_t **out, size_t *out_len);

/* --- stream.c --------------------------------------------------------------------------- */

/* Bytes a stream currently holds back (tests check the memory bound with it). */
size_t tok_stream_buffered(const gw_tok_stream_t *s);

#endif
