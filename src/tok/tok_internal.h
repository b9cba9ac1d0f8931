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

/* --- vocab.c: bytes -> rank tables over one .tiktoken file ---------------------------------
 * Layout (about 15.5 bytes per token, was about 24):
 *   - 1-byte tokens: byte_rank[256];
 *   - 2-byte tokens: a 64 Ki-bit presence bitmap with per-word running counts, indexing
 *     pair_rank[] (about 28 KiB, stays in L1/L2: BPE's most frequent lookups are pairs);
 *   - longer tokens: an open-addressing table of 32-bit slots, tag << rank_bits | (rank + 1)
 *     (0 = empty), load factor <= TOK_LOAD_PCT, sized freely (no power of two);
 *   - the token bytes in rank order: rank r is bytes[start(r) .. start(r + 1)), with
 *     start(r) = block_start[r / 32] + delta[r] (so frequent, low-rank tokens share cache lines).
 * The parser fails loudly if a vocabulary does not fit the packing (see vocab.c). */

#define TOK_BLOCK_SHIFT 5

typedef struct {
    uint8_t *bytes;         /* token bytes, in rank order */
    uint32_t *slots;        /* tokens of >= 3 bytes */
    uint32_t *block_start;  /* (n_ranks >> TOK_BLOCK_SHIFT) + 1 entries */
    uint16_t *delta;        /* n_ranks + 1 entries */
    uint32_t *pair_rank;    /* ranks of the 2-byte tokens, in byte-pair order */
    void *mem;              /* one allocation holding all of the above */
    size_t mem_size;
    uint32_t n_slots;
    uint32_t rank_bits;     /* width of the rank + 1 field of a slot; the tag has the rest */
    uint32_t n_ranks;       /* highest rank + 1 */
    size_t n_tokens;
    size_t max_len;         /* longest token, in bytes */
    uint32_t byte_rank[256];
    uint64_t pair_bits[1024];  /* bit (b0 << 8 | b1) set: the pair b0 b1 is a token */
    uint16_t pair_count[1024]; /* set bits in the words before this one */
} tok_vocab_t;

/* Parses a tiktoken rank file (data[0..len)). 0 or -EIO (malformed, or does not fit the
 * packing) / -ENOMEM; *why gets a static description of the error. */
int tok_vocab_parse(tok_vocab_t *v, const uint8_t *data, size_t len, const char **why);
void tok_vocab_dispose(tok_vocab_t *v);

uint64_t tok_hash(const uint8_t *p, size_t n);

static inline uint32_t tok_popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

static inline uint32_t tok_vocab_start(const tok_vocab_t *v, uint32_t rank)
{
    return v->block_start[rank >> TOK_BLOCK_SHIFT] + v->delta[rank];
}

/* Rank of the byte string p[0..n), or TOK_NO_RANK. */
static inline uint32_t tok_vocab_rank(const tok_vocab_t *v, const uint8_t *p, size_t n)
{
    if (n == 2) {
        uint32_t key = (uint32_t)p[0] << 8 | p[1];
        uint64_t word = v->pair_bits[key >> 6];
        uint32_t bit = key & 63;
        if (!((word >> bit) & 1))
            return TOK_NO_RANK;
        return v->pair_rank[v->pair_count[key >> 6] + tok_popcount64(word & ((1ull << bit) - 1))];
    }
    if (n == 1)
        return v->byte_rank[p[0]];
    if (n > v->max_len || n == 0)
        return TOK_NO_RANK;
    uint64_t h = tok_hash(p, n);
    uint32_t rank_bits = v->rank_bits, rank_mask = (1u << rank_bits) - 1;
    uint32_t want = (uint32_t)(h >> 32) & ~rank_mask; /* the tag, in place */
    uint32_t i = (uint32_t)(((uint64_t)(uint32_t)h * v->n_slots) >> 32);
    for (;;) {
        uint32_t s = v->slots[i];
        if (s == 0)
            return TOK_NO_RANK;
        if ((s & ~rank_mask) == want) {
            uint32_t r = (s & rank_mask) - 1, st = tok_vocab_start(v, r);
            if (tok_vocab_start(v, r + 1) - st == n && memcmp(v->bytes + st, p, n) == 0)
                return r;
        }
        if (++i == v->n_slots)
            i = 0;
    }
}

/* --- split.c: the split regexes by hand, for ASCII ---------------------------------------- */

enum {
    TOK_SPLIT_OK = 0,    /* *end = the end of the regex's match at pos (which starts at pos) */
    TOK_SPLIT_MORE = 1,  /* partial: the match at pos depends on text after n */
    TOK_SPLIT_REGEX = 2, /* the match at pos depends on a non-ASCII character: ask the regex */
    TOK_SPLIT_NONE = 3,  /* tok_regex_next only: no match at or after pos */
};

/* The piece the encoding's regex matches at pos of the valid UTF-8 s[0..n) (pos < n, at a
 * character start), as tok_regex_next() would find it, for matches decided by ASCII bytes.
 * partial: the text may still grow past n (answers MORE rather than assume it ends). */
typedef int (*tok_split_fn)(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end);
int tok_split_cl100k(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end);
int tok_split_o200k(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end);
int tok_split_claude(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end);

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
    tok_split_fn split;             /* re by hand for ASCII text; NULL: re only */
    int nfkc;                       /* Claude: NFKC-normalise the text first */
    const tok_special_t *specials;  /* recognised in the text (Claude); NULL = ordinary only */
    size_t n_specials;
};

/* --- bpe.c ------------------------------------------------------------------------------------ */

/* Byte-pair merges of one pre-token piece p[0..n) (n >= 1). Appends the ids to out (room for n
 * ids) unless out is NULL. Returns the number of tokens, or 0 on allocation failure. */
size_t tok_bpe(const tok_vocab_t *v, const uint8_t *p, size_t n, uint32_t *out);

/* tok_bpe's path for pieces over 128 bytes (heap + linked list, O(n log n)) on any piece of
 * n >= 2 bytes, without the whole-piece lookup first. Exposed so that spec/fuzz/tokenizer.c
 * can check it against the array path on short pieces: the same merges, the same ids. */
size_t tok_bpe_heap(const tok_vocab_t *v, const uint8_t *p, size_t n, uint32_t *out);

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

/* The regex's next match in s[0..n) from pos: TOK_SPLIT_OK with [*start, *end) (*start > pos
 * where find_iter skips text), TOK_SPLIT_MORE (partial: the match may change with more text,
 * PCRE2_PARTIAL_HARD), TOK_SPLIT_NONE (no match at or after pos), or -EIO. */
int tok_regex_next(const gw_tok_t *t, const uint8_t *s, size_t n, size_t pos, int partial,
                   pcre2_match_data *md, size_t *start, size_t *end);

/* Encodes the ordinary text s[0..n) piece by piece (t->split where it answers, else t->re). If partial is set, stops before the first
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
