/*
 * pieces-gateway: libFuzzer differential driver: the hand-written splitters vs the regexes.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Input: byte 0 = the encoding (bits 0-1: 0 cl100k_base, 1 o200k_base, 2 claude, 3 all
 * three); byte 1 = where the text ends and its continuation starts (byte 1 / 256 of the way,
 * moved back to a character start); then any bytes, made valid UTF-8 as the tokenizer does
 * (U+FFFD per invalid sequence; no NFKC: the splitters take any valid UTF-8). Each encoding
 * runs spec/c/tok_split_oracle.c (every position, complete and partial, the final pieces
 * against the continued text, the whole piece sequences) and aborts with the description on
 * the first difference. spec/fuzz/tok_split.options caps the length (the oracle is quadratic
 * in the longest run: every position re-matches it).
 * The vocabularies load once, in LLVMFuzzerInitialize, from GW_SOURCE_DIR/assets (or
 * $GW_ASSETS_DIR).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../c/tok_split_oracle.h"
#include "gw_tok.h"

#define N_ENC 3

static const char *ENC[N_ENC] = {"cl100k_base", "o200k_base", "claude"};
static const gw_tok_t *toks[N_ENC];
static pcre2_match_data *md;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("GW_ASSETS_DIR");
    char *err = NULL;
    (void)argc;
    (void)argv;
    if (!dir)
        dir = GW_SOURCE_DIR "/assets";
    if (gw_tok_load_all(dir, &err) != 0) {
        fprintf(stderr, "tok_split fuzz: cannot load %s: %s\n", dir, err ? err : "?");
        exit(1);
    }
    for (int e = 0; e < N_ENC; e++) {
        toks[e] = gw_tok_get(ENC[e]);
        if (!toks[e] || !toks[e]->split) {
            fprintf(stderr, "tok_split fuzz: encoding %s missing or without splitter\n", ENC[e]);
            exit(1);
        }
    }
    md = pcre2_match_data_create(1, NULL);
    if (!md)
        exit(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    tok_buf_t text = {0};
    if (tok_utf8_sanitize(&text, data + 2, size - 2, 1) == (size_t)-1)
        abort();
    size_t cut = text.len * data[1] / 256;
    while (cut > 0 && (text.p[cut] & 0xC0) == 0x80)
        cut--;
    const uint8_t *s = text.p ? text.p : (const uint8_t *)"";
    tok_split_stats_t st = {0};
    char why[4096];
    for (int e = 0; e < N_ENC; e++) {
        if ((data[0] & 3) != 3 && (data[0] & 3) != e)
            continue;
        if (tok_split_oracle(toks[e], s, cut, s + cut, text.len - cut, md, &st, why,
                             sizeof why) != 0) {
            fprintf(stderr, "tok_split fuzz: %s\n", why);
            abort();
        }
    }
    tok_buf_dispose(&text);
    return 0;
}
