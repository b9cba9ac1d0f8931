/*
 * pieces-gateway: tokenizer golden vectors, streaming splits and concurrent use.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Checks every case of spec/fixtures/tokenizer/golden.tsv (ids from npm tiktoken@1.0.22 and
 * @anthropic-ai/tokenizer@0.0.4, see gen_golden.js) against gw_tok_encode/gw_tok_count for the
 * three encodings, the streaming counter on every 2-way split of the shorter cases and on
 * random multi-way splits of all of them, and the same work from several threads at once.
 * Runs from the repository root (ctest sets the working directory).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_test.h"
#include "gw_test_tok.h"

#define GOLDEN "spec/fixtures/tokenizer/golden.tsv"
#define N_ENC 3

static const char *ENC[N_ENC] = {"cl100k_base", "o200k_base", "claude"};

typedef struct {
    char name[64];
    uint8_t *text;
    size_t len;
    uint32_t *ids[N_ENC];
    size_t n[N_ENC];
} gcase_t;

static gcase_t *cases;
static size_t n_cases;

static int hexval(int c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void parse_ids(char *f, uint32_t **ids, size_t *n)
{
    size_t cap = strlen(f) / 2 + 1;
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (strcmp(f, "-") == 0)
        return;
    for (char *p = f; *p;) {
        (*ids)[(*n)++] = (uint32_t)strtoul(p, &p, 10);
        if (*p == ',')
            p++;
    }
}

static void parse_line(char *line, gcase_t *c)
{
    char *f[5];
    for (int i = 0; i < 5; i++) {
        f[i] = strsep(&line, "\t");
        if (!f[i]) {
            fprintf(stderr, "golden: short line\n");
            exit(2);
        }
    }
    snprintf(c->name, sizeof c->name, "%s", f[0]);
    size_t hl = strcmp(f[1], "-") == 0 ? 0 : strlen(f[1]);
    c->len = hl / 2;
    c->text = malloc(c->len + 1);
    for (size_t i = 0; i < c->len; i++)
        c->text[i] = (uint8_t)(hexval(f[1][2 * i]) << 4 | hexval(f[1][2 * i + 1]));
    for (int e = 0; e < N_ENC; e++)
        parse_ids(f[2 + e], &c->ids[e], &c->n[e]);
}

static void load_golden(void)
{
    FILE *f = fopen(GOLDEN, "r");
    if (!f) {
        perror(GOLDEN);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (n_cases == alloc) {
            alloc = alloc ? alloc * 2 : 512;
            cases = realloc(cases, alloc * sizeof *cases);
        }
        parse_line(line, &cases[n_cases++]);
    }
    free(line);
    fclose(f);
}

static void free_golden(void)
{
    for (size_t i = 0; i < n_cases; i++) {
        free(cases[i].text);
        for (int e = 0; e < N_ENC; e++)
            free(cases[i].ids[e]);
    }
    free(cases);
}

static void print_ids(const char *what, const uint32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %u", ids[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

/* 0 if encoding case c with e gives the golden ids (and count agrees). */
static int check_case(const gcase_t *c, int e, int verbose)
{
    const gw_tok_t *t = gw_tok_get(ENC[e]);
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = gw_tok_encode(t, (const char *)c->text, c->len, &ids, &n);
    int bad = rc != 0 || n != c->n[e] || (n && memcmp(ids, c->ids[e], n * sizeof *ids) != 0);
    bad |= gw_tok_count(t, (const char *)c->text, c->len) != c->n[e];
    if (bad && verbose) {
        fprintf(stderr, "golden mismatch: %s / %s (rc %d)\n", c->name, ENC[e], rc);
        print_ids("want", c->ids[e], c->n[e]);
        print_ids("got ", ids, n);
    }
    free(ids);
    return bad;
}

TEST(golden_ids)
{
    CHECK(n_cases >= 300);
    int fails[N_ENC] = {0};
    for (size_t i = 0; i < n_cases; i++) {
        for (int e = 0; e < N_ENC; e++)
            fails[e] += check_case(&cases[i], e, fails[e] < 10);
    }
    for (int e = 0; e < N_ENC; e++) {
        if (fails[e])
            fprintf(stderr, "%s: %d of %zu golden cases differ\n", ENC[e], fails[e], n_cases);
        CHECK_EQ_INT(fails[e], 0);
    }
}

/* Count of c streamed in the chunks cut at cuts[0..k) (ascending offsets). */
static size_t stream_count(const gw_tok_t *t, const gcase_t *c, const size_t *cuts, size_t k)
{
    gw_tok_stream_t *s = gw_tok_stream_new(t);
    size_t prev = 0;
    for (size_t i = 0; i <= k; i++) {
        size_t end = i < k ? cuts[i] : c->len;
        if (gw_tok_stream_feed(s, (const char *)c->text + prev, end - prev) != 0) {
            gw_tok_stream_free(s);
            return GW_TOK_COUNT_ERROR;
        }
        prev = end;
    }
    size_t n = gw_tok_stream_finish(s);
    gw_tok_stream_free(s);
    return n;
}

static int stream_mismatch(const gcase_t *c, int e, const size_t *cuts, size_t k, int verbose)
{
    size_t got = stream_count(gw_tok_get(ENC[e]), c, cuts, k);
    if (got == c->n[e])
        return 0;
    if (verbose) {
        fprintf(stderr, "stream mismatch: %s / %s: got %zu want %zu, cuts:", c->name, ENC[e],
                got, c->n[e]);
        for (size_t i = 0; i < k && i < 20; i++)
            fprintf(stderr, " %zu", cuts[i]);
        fprintf(stderr, "\n");
    }
    return 1;
}

TEST(stream_every_split)
{
    int bad = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const gcase_t *c = &cases[i];
        if (c->len > 256)
            continue;
        for (int e = 0; e < N_ENC; e++) {
            CHECK(stream_mismatch(c, e, NULL, 0, 1) == 0);
            for (size_t cut = 0; cut <= c->len; cut++)
                bad += stream_mismatch(c, e, &cut, 1, bad < 10);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    return gw_test_rng(&rng_state);
}

TEST(stream_multiway_splits)
{
    int bad = 0;
    size_t *cuts = NULL;
    for (size_t i = 0; i < n_cases; i++) {
        const gcase_t *c = &cases[i];
        cuts = realloc(cuts, (c->len + 1) * sizeof *cuts);
        for (int e = 0; e < N_ENC; e++) {
            for (size_t k = 0; k < c->len; k++) /* one byte per chunk */
                cuts[k] = k;
            bad += stream_mismatch(c, e, cuts, c->len, bad < 10);
            for (int round = 0; round < 4; round++) { /* random chunk sizes 1..12 */
                size_t k = 0;
                for (size_t at = 1 + rng() % 12; at < c->len; at += 1 + rng() % 12)
                    cuts[k++] = at;
                bad += stream_mismatch(c, e, cuts, k, bad < 10);
            }
        }
    }
    free(cuts);
    CHECK_EQ_INT(bad, 0);
}

/* Random strings over an alphabet of the characters the regexes and NFKC treat specially,
 * streamed with random splits: the count must equal the one-shot count (itself golden-checked). */
static const char *ALPHABET[] = {
    " ", "  ", "\n", "\r", "\t", "\r\n", "\xC2\xA0", "\xE3\x80\x80", "\xE1\xA0\x8E", "a", "Z",
    "'", "s", "S", "t", "re", "VE", "ll", "d", "m", "1", "23", "\xD9\xA3", "/", ".", "!", "<", ">",
    "<EO", "T>", "<META", "_START>", "_END>", "<SOS>", "<|endoftext|>", "e\xCC\x81", "\xCC\x81",
    "\xCC\xA3", "\xEF\xBD\xB6", "\xEF\xBE\x9E", "\xE1\x84\x80", "\xE1\x85\xA1",
    "\xE1\x86\xA8", "\xEA\xB0\x80", "\xE3\x84\xB1", "\xE3\x85\x8F", "\xEF\xAC\x81",
    "\xE2\x91\xA0", "\xF0\x9F\x98\x80", "\xE2\x80\x8D", "\xC5\xBF", "\xC7\x85", "\xE4\xB8\xAD",
    "\xFF", "\xE2\x82", "\xF0\x9F",
};

TEST(stream_random_differential)
{
    int bad = 0;
    size_t n_alpha = sizeof ALPHABET / sizeof *ALPHABET;
    for (int round = 0; round < 1500; round++) {
        gcase_t c = {.name = "random"};
        uint8_t buf[512];
        size_t len = 0, parts = 1 + rng() % 40;
        for (size_t i = 0; i < parts; i++) {
            const char *a = ALPHABET[rng() % n_alpha];
            memcpy(buf + len, a, strlen(a));
            len += strlen(a);
        }
        c.text = buf;
        c.len = len;
        for (int e = 0; e < N_ENC; e++) {
            c.n[e] = gw_tok_count(gw_tok_get(ENC[e]), (const char *)buf, len);
            size_t cuts[8], k = 0;
            for (size_t at = 1 + rng() % 6; at < len && k < 8; at += 1 + rng() % 6)
                cuts[k++] = at;
            bad += stream_mismatch(&c, e, cuts, k, bad < 10);
            size_t one = rng() % (len + 1);
            bad += stream_mismatch(&c, e, &one, 1, bad < 10);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

#define N_THREADS 4

static void *worker(void *arg)
{
    size_t id = (size_t)arg, bad = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t i = id; i < n_cases + id; i++) {
            const gcase_t *c = &cases[i % n_cases];
            int e = (int)((i + round) % N_ENC);
            bad += (size_t)check_case(c, e, 0);
            size_t cut = c->len / 2;
            bad += (size_t)stream_mismatch(c, e, &cut, 1, 0);
        }
    }
    return (void *)bad;
}

TEST(concurrent_threads)
{
    pthread_t th[N_THREADS];
    for (size_t i = 0; i < N_THREADS; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    for (size_t i = 0; i < N_THREADS; i++) {
        void *bad = NULL;
        pthread_join(th[i], &bad);
        CHECK_EQ_INT((size_t)bad, 0);
    }
}

int main(void)
{
    if (gw_test_load_vocab() != 0)
        return 1;
    load_golden();
    RUN(golden_ids);
    RUN(stream_every_split);
    RUN(stream_multiway_splits);
    RUN(stream_random_differential);
    RUN(concurrent_threads);
    free_golden();
    gw_tok_unload_all();
    return TEST_REPORT();
}
