/*
 * pieces-gateway: tiktoken rank-file parser and the bytes -> rank hash table.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: tok_vocab_parse/dispose, tok_hash. Uses: libc only.
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
    long o = 0;
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
        out[o++] = (uint8_t)(acc >> 16);
        out[o++] = (uint8_t)(acc >> 8);
        out[o++] = (uint8_t)acc;
    }
    return o - (long)pad;
}

static int insert(tok_vocab_t *v, uint32_t off, size_t len, uint32_t rank)
{
    const uint8_t *p = v->bytes + off;
    uint64_t h = tok_hash(p, len);
    uint16_t tag = (uint16_t)(h >> 48);
    for (uint64_t i = h & v->mask;; i = (i + 1) & v->mask) {
        tok_slot_t *s = &v->slots[i];
        if (s->len == 0) {
            *s = (tok_slot_t){.off = off, .rank = rank, .len = (uint16_t)len, .tag = tag};
            return 0;
        }
        if (s->tag == tag && s->len == len && memcmp(v->bytes + s->off, p, len) == 0)
            return -1; /* duplicate token */
    }
}

static size_t count_lines(const uint8_t *d, size_t len)
{
    size_t n = 0;
    for (const uint8_t *p = d; (p = memchr(p, '\n', (size_t)(d + len - p))) != NULL; p++)
        n++;
    return n + (len > 0 && d[len - 1] != '\n');
}

/* One line "<base64> <rank>": decodes the token at v->bytes + *used. */
static int parse_line(tok_vocab_t *v, const uint8_t *p, const uint8_t *end, size_t *used,
                      const char **why)
{
    const uint8_t *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || sp + 1 == end)
        return (*why = "expected '<base64> <rank>'"), -EIO;
    uint64_t rank = 0;
    for (const uint8_t *q = sp + 1; q < end; q++) {
        if (*q < '0' || *q > '9' || rank > UINT32_MAX / 16)
            return (*why = "bad rank"), -EIO;
        rank = rank * 10 + (uint64_t)(*q - '0');
    }
    long len = b64_decode(p, (size_t)(sp - p), v->bytes + *used);
    if (len <= 0 || len > UINT16_MAX || rank >= TOK_NO_RANK)
        return (*why = "bad base64 token"), -EIO;
    if (insert(v, (uint32_t)*used, (size_t)len, (uint32_t)rank) != 0)
        return (*why = "duplicate token"), -EIO;
    if (len == 1)
        v->byte_rank[v->bytes[*used]] = (uint32_t)rank;
    if ((size_t)len > v->max_len)
        v->max_len = (size_t)len;
    *used += (size_t)len;
    v->n_tokens++;
    return 0;
}

static int alloc_tables(tok_vocab_t *v, size_t lines, size_t len)
{
    /* load factor <= 0.8: the tags make probes cheap, and a third of the memory goes */
    size_t slots = 1024;
    while (slots * 4 < lines * 5)
        slots <<= 1;
    v->bytes = malloc(len / 4 * 3 + 4);
    v->slots = calloc(slots, sizeof *v->slots);
    v->mask = slots - 1;
    if (!v->bytes || !v->slots)
        return -ENOMEM;
    for (int i = 0; i < 256; i++)
        v->byte_rank[i] = TOK_NO_RANK;
    return 0;
}

int tok_vocab_parse(tok_vocab_t *v, const uint8_t *data, size_t len, const char **why)
{
    memset(v, 0, sizeof *v);
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, b64_init);
    int rc = alloc_tables(v, count_lines(data, len), len);
    if (rc)
        goto fail;
    size_t used = 0;
    for (const uint8_t *p = data, *end = data + len; p < end;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *eol = nl ? nl : end;
        if (eol > p && (rc = parse_line(v, p, eol, &used, why)) != 0)
            goto fail;
        p = eol + 1;
    }
    for (int i = 0; i < 256; i++) {
        if (v->byte_rank[i] == TOK_NO_RANK) {
            *why = "a single-byte token is missing (not a byte-level vocabulary)";
            rc = -EIO;
            goto fail;
        }
    }
    /* give back the over-estimate of the decoded size (offsets stay valid) */
    uint8_t *shrunk = realloc(v->bytes, used + 4);
    if (shrunk)
        v->bytes = shrunk;
    return 0;
fail:
    if (rc == -ENOMEM)
        *why = "out of memory";
    tok_vocab_dispose(v);
    return rc;
}

void tok_vocab_dispose(tok_vocab_t *v)
{
    free(v->bytes);
    free(v->slots);
    memset(v, 0, sizeof *v);
}
