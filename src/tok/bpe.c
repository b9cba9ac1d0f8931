/*
 * pieces-gateway: byte-pair merging of one pre-token piece (tiktoken's algorithm).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: tok_bpe (and its long-piece path tok_bpe_heap, for the fuzz driver). Uses: the
 * vocab hash table (tok_vocab_rank), libc.
 * The rule, as in tiktoken's _byte_pair_merge: start from single bytes; repeatedly merge the
 * adjacent pair whose concatenation has the lowest rank, the leftmost one on ties; stop when no
 * adjacent concatenation is in the vocabulary. Short pieces use tiktoken's O(n^2) array loop
 * (fast, no allocation); long ones a binary heap over a linked list, O(n log n), so a megabyte
 * of one repeated character cannot stall a worker.
 * Must never: allocate for short pieces, or produce a different merge order than tiktoken.
 */
#include <stdlib.h>

#include "tok_internal.h"

#define SMALL_MAX 128

static inline uint32_t rank_of(const tok_vocab_t *v, const uint8_t *p, size_t n)
{
    return tok_vocab_rank(v, p, n);
}

static size_t small_emit(const tok_vocab_t *v, const uint8_t *p, const uint32_t *start, size_t m,
                         uint32_t *out)
{
    if (out) {
        for (size_t i = 0; i + 1 < m; i++)
            out[i] = rank_of(v, p + start[i], start[i + 1] - start[i]);
    }
    return m - 1;
}

/* parts i = [start[i], start[i+1]); rank[i] = rank of parts i and i+1 merged. */
static size_t bpe_small(const tok_vocab_t *v, const uint8_t *p, size_t n, uint32_t *out)
{
    uint32_t start[SMALL_MAX + 1], rank[SMALL_MAX + 1];
    size_t m = n + 1; /* parts plus the end sentinel */
    for (size_t i = 0; i + 1 < n; i++) {
        start[i] = (uint32_t)i;
        rank[i] = rank_of(v, p + i, 2);
    }
    start[n - 1] = (uint32_t)(n - 1);
    rank[n - 1] = TOK_NO_RANK;
    start[n] = (uint32_t)n;
    rank[n] = TOK_NO_RANK;
    for (;;) {
        uint32_t best = TOK_NO_RANK;
        size_t b = 0;
        for (size_t i = 0; i + 2 < m; i++) {
            if (rank[i] < best) {
                best = rank[i];
                b = i;
            }
        }
        if (best == TOK_NO_RANK)
            break;
        if (b > 0)
            rank[b - 1] = rank_of(v, p + start[b - 1], start[b + 2] - start[b - 1]);
        rank[b] = b + 3 < m ? rank_of(v, p + start[b], start[b + 3] - start[b]) : TOK_NO_RANK;
        memmove(&start[b + 1], &start[b + 2], (m - b - 2) * sizeof *start);
        memmove(&rank[b + 1], &rank[b + 2], (m - b - 2) * sizeof *rank);
        m--;
    }
    return small_emit(v, p, start, m, out);
}

/* --- long pieces: min-heap of (rank << 32 | part start) with lazy invalidation ------------- */

typedef struct {
    uint64_t *a;
    size_t n;
} heap_t;

static void heap_push(heap_t *h, uint64_t x)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->a[parent] <= x)
            break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = x;
}

static uint64_t heap_pop(heap_t *h)
{
    uint64_t top = h->a[0], x = h->a[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->a[c + 1] < h->a[c])
            c++;
        if (x <= h->a[c])
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n > 0)
        h->a[i] = x;
    return top;
}

typedef struct {
    const tok_vocab_t *v;
    const uint8_t *p;
    uint32_t n;
    uint32_t *nxt;   /* start of the next part; 0 marks a part merged away */
    uint32_t *prv;   /* start of the previous part */
    uint32_t *prank; /* rank of this part merged with the next one */
    heap_t heap;
} large_t;

/* Recomputes the pair rank of the part starting at i and queues it. */
static void large_update(large_t *L, uint32_t i)
{
    uint32_t j = L->nxt[i];
    uint32_t r = j < L->n ? rank_of(L->v, L->p + i, L->nxt[j] - i) : TOK_NO_RANK;
    L->prank[i] = r;
    if (r != TOK_NO_RANK)
        heap_push(&L->heap, (uint64_t)r << 32 | i);
}

static void large_merge(large_t *L)
{
    while (L->heap.n > 0) {
        uint64_t top = heap_pop(&L->heap);
        uint32_t i = (uint32_t)top, r = (uint32_t)(top >> 32);
        if (L->nxt[i] == 0 || L->prank[i] != r)
            continue; /* stale: the part grew or vanished since this entry was queued */
        uint32_t j = L->nxt[i], k = L->nxt[j];
        L->nxt[i] = k;
        L->nxt[j] = 0;
        if (k < L->n)
            L->prv[k] = i;
        large_update(L, i);
        if (i > 0)
            large_update(L, L->prv[i]);
    }
}

size_t tok_bpe_heap(const tok_vocab_t *v, const uint8_t *p, size_t n, uint32_t *out)
{
    large_t L = {.v = v, .p = p, .n = (uint32_t)n};
    size_t count = 0;
    L.nxt = malloc((n + 1) * sizeof *L.nxt);
    L.prv = malloc(n * sizeof *L.prv);
    L.prank = malloc(n * sizeof *L.prank);
    L.heap.a = malloc(3 * n * sizeof *L.heap.a); /* n - 1 initial + at most 2 per merge */
    if (!L.nxt || !L.prv || !L.prank || !L.heap.a)
        goto done;
    for (uint32_t i = 0; i <= L.n; i++)
        L.nxt[i] = i + 1;
    for (uint32_t i = 0; i < L.n; i++)
        L.prv[i] = i - 1;
    L.nxt[L.n] = L.n;
    for (uint32_t i = 0; i < L.n; i++)
        large_update(&L, i);
    large_merge(&L);
    for (uint32_t i = 0; i < L.n; i = L.nxt[i]) {
        if (out)
            out[count] = rank_of(v, p + i, L.nxt[i] - i);
        count++;
    }
done:
    free(L.nxt);
    free(L.prv);
    free(L.prank);
    free(L.heap.a);
    return count;
}

size_t tok_bpe(const tok_vocab_t *v, const uint8_t *p, size_t n, uint32_t *out)
{
    uint32_t r = rank_of(v, p, n);
    if (r != TOK_NO_RANK) {
        if (out)
            out[0] = r;
        return 1;
    }
    if (n <= SMALL_MAX)
        return bpe_small(v, p, n, out);
    return tok_bpe_heap(v, p, n, out);
}
