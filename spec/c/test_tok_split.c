/*
 * pieces-gateway: the hand-written splitters (src/tok/split.c) against the split regexes.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Generated texts, mostly ASCII and weighted towards what the patterns decide on (letters in
 * both cases, digit runs of 1..7, single spaces and long runs of them, \n \r \t \v \f, the
 * contractions in every case and cut short, punctuation, '/', control bytes), a share with
 * non-ASCII characters the regexes treat specially (long s and Kelvin sign, which (?i) folds to
 * ASCII; White_Space beyond ASCII; marks, Lm/Lt/Lo letters; other-script digits) and a list of
 * hand-picked edge cases, each continued by a random extension: tok_split_oracle() checks every
 * position of each text, complete and partial, and the whole-text piece sequences, for the
 * three encodings. Deterministic (fixed seed); prints the counts.
 * Runs from the repository root (ctest sets the working directory).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_test.h"
#include "gw_test_tok.h"
#include "tok_split_oracle.h"

#define SLOW_BUILD GW_TEST_ASAN

#define N_TEXTS (SLOW_BUILD ? 3000 : 8000) /* per encoding */
#define N_ENC 3

static const char *ENC[N_ENC] = {"cl100k_base", "o200k_base", "claude"};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
    return gw_test_rng(&rng_state);
}

static size_t pick(size_t n)
{
    return (size_t)(rng() % n);
}

static const char *const APOS[] = {
    "'", "'s", "'S", "'t", "'T", "'re", "'RE", "'rE", "'Re", "'ve", "'VE", "'vE", "'m", "'M",
    "'ll", "'LL", "'lL", "'Ll", "'d", "'D", "'r", "'R", "'v", "'l", "'L", "'e", "'x", "''",
};
static const char *const SPACE[] = {
    " ", " ", " ", " ", "\n", "\n", "\n\n", "\r\n", "\r", "\t", "\t\t", "\v", "\f", " \n", "\n ",
};
static const char PUNCT[] = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'/";
static const char CTRL[] = {0, 1, 8, 14, 27, 28, 29, 30, 31, 127};
/* Non-ASCII characters the patterns treat specially (valid UTF-8). */
static const char *const WIDE[] = {
    "\xC3\xA9",         /* e acute (Ll) */
    "\xC3\x89",         /* E acute (Lu) */
    "\xC5\xBF",         /* long s: (?i)'s matches it */
    "\xE2\x84\xAA",     /* Kelvin sign: folds to k */
    "\xC2\xA0",         /* no-break space (White_Space) */
    "\xC2\x85",         /* next line (White_Space) */
    "\xE2\x80\xA8",     /* line separator (White_Space, not \r\n) */
    "\xE3\x80\x80",     /* ideographic space */
    "\xE1\xA0\x8E",     /* U+180E: PCRE2's \s, not White_Space */
    "\xE2\x80\x99",     /* right single quotation mark */
    "\xC2\xB2",         /* superscript two (No) */
    "\xD9\xA3",         /* Arabic-Indic digit three (Nd) */
    "\xCC\x81",         /* combining acute (Mn) */
    "\xCA\xB0",         /* modifier letter small h (Lm) */
    "\xC7\x85",         /* Dz with caron (Lt) */
    "\xE4\xB8\xAD",     /* a CJK ideograph (Lo) */
    "\xF0\x9F\x98\x80", /* an emoji (So) */
    "\xE2\x80\x94",     /* em dash */
};

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Appends one random fragment to b (room for 64 bytes); wide: may be non-ASCII. */
static size_t fragment(char *b, int wide)
{
    size_t n = 0, k;
    switch (pick(wide ? 13 : 12)) {
    case 0: case 1: case 2: /* a lower-case word */
        for (k = 1 + pick(9); n < k; n++)
            b[n] = (char)('a' + pick(26));
        return n;
    case 3: /* mixed case: Capitalised, UPPER, camelCase */
        for (k = 1 + pick(8); n < k; n++)
            b[n] = (char)((pick(3) ? 'a' : 'A') + pick(26));
        return n;
    case 4: /* a digit run of 1..7 */
        for (k = 1 + pick(7); n < k; n++)
            b[n] = (char)('0' + pick(10));
        return n;
    case 5: case 6: /* white space */
        return (size_t)snprintf(b, 64, "%s", SPACE[pick(COUNT(SPACE))]);
    case 7: /* a long run of spaces, maybe with a newline or tab in it */
        for (k = 2 + pick(30); n < k; n++)
            b[n] = pick(12) ? ' ' : "\n\t\r"[pick(3)];
        return n;
    case 8: case 9: /* a contraction, whole or cut short */
        return (size_t)snprintf(b, 64, "%s", APOS[pick(COUNT(APOS))]);
    case 10: /* punctuation, one or a run */
        for (k = pick(3) ? 1 : 2 + pick(4); n < k; n++)
            b[n] = PUNCT[pick(sizeof PUNCT - 1)];
        return n;
    case 11: /* a control byte (NUL included) or a slash after a newline */
        if (pick(2))
            return (size_t)snprintf(b, 64, "%s", pick(2) ? "\n/" : "/\n");
        b[0] = CTRL[pick(sizeof CTRL)];
        return 1;
    default:
        return (size_t)snprintf(b, 64, "%s", WIDE[pick(COUNT(WIDE))]);
    }
}

static size_t gen(char *b, size_t cap, size_t parts, int wide)
{
    size_t n = 0;
    for (size_t i = 0; i < parts && n + 64 < cap; i++)
        n += fragment(b + n, wide);
    return n;
}

/* Texts whose pieces turn on one character; each also gets the random extensions. */
static const char *const EDGE[] = {
    "", "'", "'s", "'S", "'ll", "'LL", "'l", "'r", "don't", "DON'T", "they'RE", "ABC'S", "ABCdef",
    "HelloWorld", "camelCase", "aB", "x'", "x'l", "'sup", "1234567", "12", "123", "1'2", " ",
    "  ", "   x", "  \n  x", "\n\n", "\r\n\r\n ", " \t\n \ty", "\t x", "\tx", "\vword", "\fword",
    " !!", " !\n", "!\n/\n", "a/\n/b", "//", " /", "x\x1c y", "\x7f\x7f", "a b  c   d", "\n ",
    " \n", "end ", "end  ", "end\n", "?\r\n", " 's", " 'S", "<|endoftext|>", "<EOT>",
};

static int check(int e, pcre2_match_data *md, const char *s, size_t n, const char *x, size_t xn,
                 tok_split_stats_t *st, int *bad)
{
    char why[2048];
    if (tok_split_oracle(gw_tok_get(ENC[e]), (const uint8_t *)s, n, (const uint8_t *)x, xn, md,
                         st, why, sizeof why) == 0)
        return 0;
    if ((*bad)++ < 10)
        fprintf(stderr, "%s\n", why);
    return 1;
}

TEST(differential)
{
    char text[2048], ext[256];
    for (int e = 0; e < N_ENC; e++) {
        tok_split_stats_t st = {0};
        int bad = 0;
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        CHECK(md != NULL);
        for (size_t i = 0; i < COUNT(EDGE); i++) {
            for (int k = 0; k < 8; k++) {
                size_t xn = gen(ext, sizeof ext, pick(4), k & 1);
                check(e, md, EDGE[i], strlen(EDGE[i]), ext, xn, &st, &bad);
            }
        }
        for (int i = 0; i < N_TEXTS; i++) {
            int wide = i % 3 == 0; /* two texts in three are pure ASCII */
            size_t n = gen(text, i % 16 ? 256 : sizeof text, 1 + pick(i % 16 ? 40 : 200), wide);
            size_t xn = gen(ext, sizeof ext, pick(5), pick(2));
            check(e, md, text, n, ext, xn, &st, &bad);
        }
        pcre2_match_data_free(md);
        printf("%s: %zu texts, %zu positions: %zu by the splitter, %zu by the regex; partial: "
               "%zu final checked on text + ext, %zu 'more'; %zu pieces compared; %d differ\n",
               ENC[e], st.inputs, st.positions, st.fast, st.fallback, st.fast_final, st.more,
               st.pieces, bad);
        CHECK_EQ_INT(bad, 0);
        CHECK(st.fast > st.positions / 2); /* the splitter does answer most of them */
    }
}

int main(void)
{
    if (gw_test_load_vocab() != 0)
        return 1;
    RUN(differential);
    gw_tok_unload_all();
    return TEST_REPORT();
}
