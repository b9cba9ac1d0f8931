/*
 * pieces-gateway: tiktoken rank-file parser and the bytes -> rank hash table.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: tok_vocab_parse/dispose, tok_hash. Uses: libc only. Layout: tok_internal.h.
 * Must never: modify a table after parse (readers run concurrently without locks), or accept a
 * malformed file silently (a wrong vocabulary means wrong usage numbers).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A small wyhash-style hash: tokens are short, so the tail handling matters most. */
uint64_t tok_hash(const uint8_t *p, size_t n)
{
    uint64_t a, b, seed = 0xa0761d6478bd642full ^ n;
    size_t i = n;
    while (i > 16) {
        seed = mix(load64(p) ^ 0xe7037ed1a0b428dbull, load64(p + 8) ^ seed);
        p += 16;
        i -= 16;
    }
    if (i > 8) {
        a = load64(p);
        b = load64(p + i - 8);
    } else if (i >= 4) {
        a = load32(p);
        b = load32(p + i - 4);
    } else if (i > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[i >> 1] << 8) | p[i - 1];
        b = 0;
    } else {
        a = b = 0;
    }
    return mix(0xe7037ed1a0b428dbull ^ n, mix(a ^ 0x8ebc6af09c88c6e3ull, b ^ seed));
}

static int8_t b64_value[256];

static void b64_init(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(b64_value, -1, sizeof b64_value);
    for (int i = 0; i < 64; i++)
        b64_value[(uint8_t)alpha[i]] = (int8_t)i;
}

/* Decodes standard padded base64 s[0..n) into out; returns the length or -1. */
static long b64_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 4 != 0)
        return -1;
    size_t pad = (s[n - 1] == '=') + (n >= 2 && s[n - 2] == '=');
    long o = 0, out_len = (long)(n / 4 * 3 - pad);
    for (size_t i = 0; i < n; i += 4) {
        uint32_t acc = 0;
        for (size_t k = 0; k < 4; k++) {
            int8_t d = b64_value[s[i + k]];
            if (d < 0) {
                if (!(i + 4 == n && k >= 4 - pad))
                    return -1;
                d = 0;
            }
            acc = (acc << 6) | (uint32_t)d;
        }
        /* never writes the padding: the bytes after a token are the next token's */
        uint8_t group[3] = {(uint8_t)(acc >> 16), (uint8_t)(acc >> 8), (uint8_t)acc};
        for (int k = 0; k < 3 && o < out_len; k++)
            out[o++] = group[k];
    }
    return o;
}

/* Load factor of the table of long tokens, in percent. With 32-bit slots, 0.65 costs half of
 * what 12-byte slots at 0.8 did; an unsuccessful probe (most merge candidates) stays within one
 * or two cache lines. Measured: 0.5 is no faster, 0.8 is ~10% slower. */
#define TOK_LOAD_PCT 65

/* One line "<base64> <rank>" of data[*pos..len): the token's base64 text, its decoded length
 * and rank. Returns 1 for a line, 0 at the end, -EIO if malformed. Empty lines are skipped. */
static int next_line(const uint8_t *data, size_t len, size_t *pos, const uint8_t **b64,
                     size_t *b64_len, size_t *tok_len, uint32_t *rank, const char **why)
{
    const uint8_t *p, *eol;
    for (;;) {
        if (*pos >= len)
            return 0;
        p = data + *pos;
        const uint8_t *nl = memchr(p, '\n', len - *pos);
        eol = nl ? nl : data + len;
        *pos = (size_t)(eol - data) + 1;
        if (eol > p)
            break;
    }
    const uint8_t *sp = memchr(p, ' ', (size_t)(eol - p));
    if (!sp || sp == p || sp + 1 == eol)
        return (*why = "expected '<base64> <rank>'"), -EIO;
    uint64_t r = 0;
    for (const uint8_t *q = sp + 1; q < eol; q++) {
        if (*q < '0' || *q > '9' || r > UINT32_MAX / 16)
            return (*why = "bad rank"), -EIO;
        r = r * 10 + (uint64_t)(*q - '0');
    }
    size_t n = (size_t)(sp - p);
    size_t pad = n >= 1 ? (p[n - 1] == '=') + (n >= 2 && p[n - 2] == '=') : 0;
    size_t tl = n / 4 * 3 - pad;
    if (n == 0 || n % 4 != 0 || tl == 0 || tl > UINT16_MAX || r >= TOK_NO_RANK)
        return (*why = "bad base64 token"), -EIO;
    *b64 = p;
    *b64_len = n;
    *tok_len = tl;
    *rank = (uint32_t)r;
    return 1;
}

static inline uint32_t slot_index(const tok_vocab_t *v, uint64_t h)
{
    return (uint32_t)(((uint64_t)(uint32_t)h * v->n_slots) >> 32);
}

static int insert_long(tok_vocab_t *v, uint32_t rank, size_t len)
{
    uint32_t st = tok_vocab_start(v, rank);
    const uint8_t *p = v->bytes + st;
    uint64_t h = tok_hash(p, len);
    uint32_t rank_mask = (1u << v->rank_bits) - 1;
    uint32_t want = (uint32_t)(h >> 32) & ~rank_mask;
    for (uint32_t i = slot_index(v, h);; i = i + 1 == v->n_slots ? 0 : i + 1) {
        uint32_t s = v->slots[i];
        if (s == 0) {
            v->slots[i] = want | (rank + 1);
            return 0;
        }
        if ((s & ~rank_mask) == want) {
            uint32_t r = (s & rank_mask) - 1, rs = tok_vocab_start(v, r);
            if (tok_vocab_start(v, r + 1) - rs == len && memcmp(v->bytes + rs, p, len) == 0)
                return -1; /* duplicate token */
        }
    }
}

static size_t align_up(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

int tok_vocab_parse(tok_vocab_t *v, const uint8_t *data, size_t len, const char **why)
{
    memset(v, 0, sizeof *v);
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, b64_init);
    const uint8_t *b64;
    size_t b64_len, tl, pos, n_long = 0, n_pairs = 0, total = 0;
    uint32_t rank, max_rank = 0;
    int rc;

    /* pass 1: sizes */
    for (pos = 0; (rc = next_line(data, len, &pos, &b64, &b64_len, &tl, &rank, why)) > 0;) {
        v->n_tokens++;
        total += tl;
        n_long += tl >= 3;
        n_pairs += tl == 2;
        if (rank > max_rank)
            max_rank = rank;
        if (tl > v->max_len)
            v->max_len = tl;
    }
    if (rc < 0)
        goto fail;
    /* packing limits: a slot holds rank + 1 in rank_bits and a tag of at least 8 bits; the
     * byte offsets are 32-bit */
    if (v->n_tokens == 0 || max_rank >= (1u << 24) - 1 || total >= UINT32_MAX) {
        *why = v->n_tokens == 0 ? "no tokens"
                                : "vocabulary too large for the packed tables (rank >= 2^24 - 1 "
                                  "or more than 4 GiB of token bytes)";
        rc = -EIO;
        goto fail;
    }
    v->n_ranks = max_rank + 1;
    while ((1u << v->rank_bits) <= v->n_ranks)
        v->rank_bits++;
    uint64_t slots = (uint64_t)n_long * 100 / TOK_LOAD_PCT + 1;
    v->n_slots = (uint32_t)(slots < 16 ? 16 : slots);

    size_t n_blocks = (v->n_ranks >> TOK_BLOCK_SHIFT) + 1;
    size_t o_slots = 0, o_blocks = align_up(o_slots + v->n_slots * sizeof(uint32_t));
    size_t o_pairs = align_up(o_blocks + n_blocks * sizeof(uint32_t));
    size_t o_delta = align_up(o_pairs + n_pairs * sizeof(uint32_t));
    size_t o_bytes = align_up(o_delta + ((size_t)v->n_ranks + 1) * sizeof(uint16_t));
    v->mem_size = o_bytes + total + 16;
    v->mem = calloc(1, v->mem_size);
    if (!v->mem) {
        rc = -ENOMEM;
        goto fail;
    }
    uint8_t *m = v->mem;
    v->slots = (uint32_t *)(m + o_slots);
    v->block_start = (uint32_t *)(m + o_blocks);
    v->pair_rank = (uint32_t *)(m + o_pairs);
    v->delta = (uint16_t *)(m + o_delta);
    v->bytes = m + o_bytes;
    for (int i = 0; i < 256; i++)
        v->byte_rank[i] = TOK_NO_RANK;

    /* pass 2: the length of each rank, then the starts */
    for (pos = 0; next_line(data, len, &pos, &b64, &b64_len, &tl, &rank, why) > 0;) {
        if (v->delta[rank] != 0) {
            *why = "duplicate rank";
            rc = -EIO;
            goto fail;
        }
        v->delta[rank] = (uint16_t)tl;
    }
    uint32_t acc = 0;
    for (uint32_t r = 0; r <= v->n_ranks; r++) {
        if ((r & ((1u << TOK_BLOCK_SHIFT) - 1)) == 0)
            v->block_start[r >> TOK_BLOCK_SHIFT] = acc;
        uint32_t d = acc - v->block_start[r >> TOK_BLOCK_SHIFT];
        if (d > UINT16_MAX) {
            *why = "tokens too long for the packed start table (a run of 32 ranks spans > 64 KiB)";
            rc = -EIO;
            goto fail;
        }
        uint32_t l = v->delta[r];
        v->delta[r] = (uint16_t)d;
        acc += l;
    }

    /* pass 3: decode the bytes into place and index them */
    for (pos = 0; next_line(data, len, &pos, &b64, &b64_len, &tl, &rank, why) > 0;) {
        uint8_t *dst = v->bytes + tok_vocab_start(v, rank);
        if (b64_decode(b64, b64_len, dst) != (long)tl) {
            *why = "bad base64 token";
            rc = -EIO;
            goto fail;
        }
        int dup;
        if (tl == 1) {
            dup = v->byte_rank[dst[0]] != TOK_NO_RANK;
            v->byte_rank[dst[0]] = rank;
        } else if (tl == 2) {
            uint32_t key = (uint32_t)dst[0] << 8 | dst[1];
            dup = (v->pair_bits[key >> 6] >> (key & 63)) & 1;
            v->pair_bits[key >> 6] |= 1ull << (key & 63);
        } else {
            dup = insert_long(v, rank, tl) != 0;
        }
        if (dup) {
            *why = "duplicate token";
            rc = -EIO;
            goto fail;
        }
    }
    for (int i = 0; i < 256; i++) {
        if (v->byte_rank[i] == TOK_NO_RANK) {
            *why = "a single-byte token is missing (not a byte-level vocabulary)";
            rc = -EIO;
            goto fail;
        }
    }
    uint32_t seen = 0;
    for (int w = 0; w < 1024; w++) {
        v->pair_count[w] = (uint16_t)seen;
        seen += tok_popcount64(v->pair_bits[w]);
    }
    for (uint32_t r = 0; r < v->n_ranks; r++) {
        uint32_t st = tok_vocab_start(v, r);
        if (tok_vocab_start(v, r + 1) - st != 2)
            continue;
        uint32_t key = (uint32_t)v->bytes[st] << 8 | v->bytes[st + 1];
        uint64_t word = v->pair_bits[key >> 6];
        v->pair_rank[v->pair_count[key >> 6] + tok_popcount64(word & ((1ull << (key & 63)) - 1))] =
            r;
    }
    return 0;
fail:
    if (rc == -ENOMEM)
        *why = "out of memory";
    tok_vocab_dispose(v);
    return rc;
}

void tok_vocab_dispose(tok_vocab_t *v)
{
    free(v->mem);
    memset(v, 0, sizeof *v);
}
