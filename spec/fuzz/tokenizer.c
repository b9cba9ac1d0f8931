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
 * For the chosen encoding(s): gw_tok_encode()'s length, gw_tok_count() and the streaming count
 * over the chunking above must be equal; any difference aborts with the numbers. Each chunk is
 * fed from its own malloc'd copy of exactly its size, so reading past a chunk is an ASan report.
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

#define N_ENC 3

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

static void check_encoding(int e, const uint8_t *text, size_t len, const uint8_t *cuts,
                           size_t ncuts)
{
    uint32_t *ids = NULL;
    size_t n_ids = 0;
    if (gw_tok_encode(toks[e], (const char *)text, len, &ids, &n_ids) != 0)
        mismatch(e, "encode failed", 0, 0, len);
    free(ids);
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
