/*
 * pieces-gateway: libFuzzer driver for the tokenizer (a differential oracle, three encodings).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Input: byte 0 = header: bits 0-3 = H, how many chunk-length bytes follow; bits 4-5 = the
 * encoding (0 cl100k_base, 1 o200k_base, 2 claude, 3 all three). Then H chunk lengths (0..255,
 * used cyclically; 0 feeds an empty chunk, 1 is byte-at-a-time), then the text (any bytes:
 * invalid UTF-8, NUL, Claude specials...). With H = 0 the whole text is one chunk.
 * For the chosen encoding(s), three oracles, each aborting with the numbers on a difference:
 *  - counts: gw_tok_encode()'s length == gw_tok_count() == the streaming count over the
 *    chunking above (each chunk fed from its own malloc'd copy of exactly its size, so reading
 *    past a chunk is an ASan report);
 *  - round trip: the ids decode (vocabulary bytes, special-token texts) to exactly the text
 *    the tokenizer saw (after UTF-8 repair, and NFKC for Claude): no byte lost, doubled or
 *    moved, every id a real token;
 *  - BPE paths: on each 128-byte window of the raw bytes that is not itself a token, the
 *    array path (tok_bpe, pieces up to 128 bytes) and the heap path (tok_bpe_heap, longer
 *    pieces) give the same ids, so the path only long pieces take is checked on every input.
 * (One encoding per input keeps executions cheap; the fuzzer learns which inputs are worth all
 * three.) spec/fuzz/tokenizer.options caps the input length: the cost is linear in it, and
 * long-input behaviour is test_tok_robust's job.
 * The vocabularies load once, in LLVMFuzzerInitialize, from GW_SOURCE_DIR/assets (or
 * $GW_ASSETS_DIR).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_tok.h"
#include "tok/tok_internal.h"

#define N_ENC 3
#define WINDOW 128 /* bpe.c's SMALL_MAX: the longest piece the array path takes */

static const char *ENC[N_ENC] = {"cl100k_base", "o200k_base", "claude"};
static const gw_tok_t *toks[N_ENC];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("GW_ASSETS_DIR");
    char *err = NULL;
    if (!dir)
        dir = GW_SOURCE_DIR "/assets";
    if (gw_tok_load_all(dir, &err) != 0) {
        fprintf(stderr, "tokenizer fuzz: cannot load %s: %s\n", dir, err ? err : "?");
        exit(1);
    }
    for (int e = 0; e < N_ENC; e++) {
        toks[e] = gw_tok_get(ENC[e]);
        if (!toks[e]) {
            fprintf(stderr, "tokenizer fuzz: encoding %s missing\n", ENC[e]);
            exit(1);
        }
    }
    return 0;
}

static void mismatch(int e, const char *what, size_t got, size_t want, size_t len)
{
    fprintf(stderr, "tokenizer fuzz: %s: %s: got %zu, want %zu (text of %zu bytes)\n", ENC[e],
            what, got, want, len);
    abort();
}

/* Feeds text[0..len) to s as chunks of the lengths in cuts[0..ncuts) (cyclically). */
static void feed_chunks(int e, gw_tok_stream_t *s, const uint8_t *text, size_t len,
                        const uint8_t *cuts, size_t ncuts)
{
    size_t pos = 0, i = 0, idle = 0;
    while (pos < len) {
        size_t n = ncuts ? cuts[i++ % ncuts] : len;
        if (n > len - pos)
            n = len - pos;
        if (n > 0)
            idle = 0;
        else if (++idle > ncuts)
            n = len - pos; /* only empty chunks: the rest in one */
        char *chunk = malloc(n ? n : 1);
        if (!chunk)
            abort();
        memcpy(chunk, text + pos, n);
        if (gw_tok_stream_feed(s, chunk, n) != 0)
            mismatch(e, "stream feed failed at byte", pos, len, len);
        free(chunk);
        pos += n;
    }
}

static size_t stream_count(int e, const uint8_t *text, size_t len, const uint8_t *cuts,
                           size_t ncuts)
{
    gw_tok_stream_t *s = gw_tok_stream_new(toks[e]);
    if (!s)
        abort();
    feed_chunks(e, s, text, len, cuts, ncuts);
    size_t n = gw_tok_stream_finish(s);
    if (gw_tok_stream_finish(s) != n)
        mismatch(e, "second finish() vs first", gw_tok_stream_finish(s), n, len);
    gw_tok_stream_free(s);
    return n;
}

/* The bytes of token id (a special token's text, or the vocabulary entry); aborts if id is
 * neither. */
static const uint8_t *token_bytes(int e, uint32_t id, size_t *n)
{
    const gw_tok_t *t = toks[e];
    for (size_t k = 0; k < t->n_specials; k++) {
        if (t->specials[k].id == id) {
            *n = t->specials[k].len;
            return (const uint8_t *)t->specials[k].text;
        }
    }
    if (id >= t->vocab.n_ranks)
        mismatch(e, "id out of the vocabulary", id, t->vocab.n_ranks, 0);
    uint32_t st = tok_vocab_start(&t->vocab, id);
    *n = tok_vocab_start(&t->vocab, id + 1) - st;
    if (*n == 0)
        mismatch(e, "id of no token", id, 0, 0);
    return t->vocab.bytes + st;
}

static void check_round_trip(int e, const uint8_t *text, size_t len, const uint32_t *ids,
                             size_t n_ids)
{
    tok_buf_t tmp = {0};
    const uint8_t *want;
    size_t want_len, pos = 0;
    if (tok_prepare(toks[e], text, len, &tmp, &want, &want_len) != 0)
        abort();
    for (size_t i = 0; i < n_ids; i++) {
        size_t n;
        const uint8_t *b = token_bytes(e, ids[i], &n);
        if (n > want_len - pos || memcmp(b, want + pos, n) != 0)
            mismatch(e, "decoded text differs at byte", pos, want_len, len);
        pos += n;
    }
    if (pos != want_len)
        mismatch(e, "decoded length", pos, want_len, len);
    tok_buf_dispose(&tmp);
}

static void check_bpe_paths(int e, const uint8_t *text, size_t len)
{
    const tok_vocab_t *v = &toks[e]->vocab;
    uint32_t a[WINDOW], b[WINDOW];
    for (size_t off = 0; off + 2 <= len; off += WINDOW) {
        size_t n = len - off < WINDOW ? len - off : WINDOW;
        if (tok_vocab_rank(v, text + off, n) != TOK_NO_RANK)
            continue; /* tok_bpe answers a whole token without merging */
        size_t na = tok_bpe(v, text + off, n, a), nb = tok_bpe_heap(v, text + off, n, b);
        if (na != nb)
            mismatch(e, "heap path token count vs array path", nb, na, n);
        for (size_t i = 0; i < na; i++) {
            if (a[i] != b[i])
                mismatch(e, "heap path id vs array path at token", i, na, n);
        }
    }
}

static void check_encoding(int e, const uint8_t *text, size_t len, const uint8_t *cuts,
                           size_t ncuts)
{
    uint32_t *ids = NULL;
    size_t n_ids = 0;
    if (gw_tok_encode(toks[e], (const char *)text, len, &ids, &n_ids) != 0)
        mismatch(e, "encode failed", 0, 0, len);
    check_round_trip(e, text, len, ids, n_ids);
    free(ids);
    check_bpe_paths(e, text, len);
    size_t c = gw_tok_count(toks[e], (const char *)text, len);
    if (c != n_ids)
        mismatch(e, "count() vs encode length", c, n_ids, len);
    c = stream_count(e, text, len, cuts, ncuts);
    if (c != n_ids)
        mismatch(e, "stream count vs encode length", c, n_ids, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t ncuts = data[0] & 0x0f;
    if (ncuts > size - 1)
        ncuts = size - 1;
    const uint8_t *cuts = data + 1;
    const uint8_t *text = data + 1 + ncuts;
    size_t len = size - 1 - ncuts;
    /* the text in its own exact-size buffer: a read past its end is an ASan report */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, text, len);
    int sel = (data[0] >> 4) & 3;
    for (int e = 0; e < N_ENC; e++) {
        if (sel == 3 || sel == e)
            check_encoding(e, copy, len, cuts, ncuts);
    }
    free(copy);
    return 0;
}
