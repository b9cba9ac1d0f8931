/*
 * pieces-gateway: tokenizer robustness: invalid UTF-8, pathological inputs, asset checks, API.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Invalid UTF-8 must equal the text with U+FFFD per maximal invalid subsequence (the golden
 * file also has TextDecoder-made cases); 1 MiB of one character, random bytes, one long word...
 * must count in well under a second (256 KiB under ASan); a corrupted or missing rank file must
 * be refused with a message naming it; streams must hold back little memory.
 * Runs from the repository root (ctest sets the working directory).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_test.h"
#include "gw_test_tok.h"
#include "tok/tok_internal.h"

#define SLOW_BUILD GW_TEST_ASAN

#define BIG (SLOW_BUILD ? 256 * 1024 : 1024 * 1024)
/* Typical: 0.35 s. The worst case, digits / claude (one 1 MiB piece: the heap path, bound by
 * memory latency), takes 0.9-1.2 s of thread CPU time on a 2-core VM at load 15 (CPU time
 * includes cache contention and steal there), so 1 s failed most runs; a quadratic re-scan
 * still takes ~4 s on an idle machine. */
#define BIG_SECONDS (SLOW_BUILD ? 4.0 : 2.5)

static const char *ENC[] = {"cl100k_base", "o200k_base", "claude"};
#define N_ENC 3

/* This thread's CPU time: the bound is about the algorithm, not about how busy the machine
 * is (CI runs the tests in parallel on two cores). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t stream_count(const gw_tok_t *t, const char *s, size_t n, size_t chunk)
{
    gw_tok_stream_t *st = gw_tok_stream_new(t);
    for (size_t i = 0; i < n; i += chunk) {
        if (gw_tok_stream_feed(st, s + i, n - i < chunk ? n - i : chunk) != 0)
            break;
    }
    size_t r = gw_tok_stream_finish(st);
    gw_tok_stream_free(st);
    return r;
}

/* --- invalid UTF-8 -------------------------------------------------------------------------- */

typedef struct {
    const char *in;
    size_t in_len;
    const char *want; /* the same text with U+FFFD (EF BF BD) where the decoder replaces */
    size_t want_len;
} repl_t;

#define R(a, b) {a, sizeof(a) - 1, b, sizeof(b) - 1}
#define FFFD "\xEF\xBF\xBD"
static const repl_t REPL[] = {
    R("\x80", FFFD),
    R("a\xC0\x80 b", "a" FFFD FFFD " b"),            /* C0/C1 never start a sequence */
    R("\xE0\x80\x80", FFFD FFFD FFFD),              /* overlong: E0 needs A0..BF next */
    R("x\xE0\xA0", "x" FFFD),                        /* truncated at the end: one U+FFFD */
    R("\xED\xA0\x80!", FFFD FFFD FFFD "!"),         /* UTF-16 surrogate */
    R("\xF0\x9F\x98 x", FFFD " x"),                   /* a cut emoji */
    R("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD),     /* above U+10FFFF */
    R("\xE2\x82\x28", FFFD "("),
    R("\xF8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD),
    R("caf\xC3\xA9\xCC", "caf\xC3\xA9" FFFD),
    R("it\xFF's \xFE\xFF", "it" FFFD "'s " FFFD FFFD),
    R("\xF0\x9F\x98\x80\xF0\x9F\x98", "\xF0\x9F\x98\x80" FFFD),
    R("<EOT\xFF>", "<EOT" FFFD ">"),
    R("\x00\xC2\x00", "\x00" FFFD "\x00"),
};

static int same_ids(const gw_tok_t *t, const char *a, size_t an, const char *b, size_t bn)
{
    uint32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int ok = gw_tok_encode(t, a, an, &x, &nx) == 0 && gw_tok_encode(t, b, bn, &y, &ny) == 0 &&
             nx == ny && (nx == 0 || memcmp(x, y, nx * sizeof *x) == 0);
    free(x);
    free(y);
    return ok;
}

TEST(invalid_utf8_is_replaced)
{
    for (size_t i = 0; i < sizeof REPL / sizeof *REPL; i++) {
        const repl_t *r = &REPL[i];
        size_t want_len = r->want_len;
        for (int e = 0; e < N_ENC; e++) {
            const gw_tok_t *t = gw_tok_get(ENC[e]);
            if (!same_ids(t, r->in, r->in_len, r->want, want_len))
                fprintf(stderr, "replacement case %zu / %s differs\n", i, ENC[e]);
            CHECK(same_ids(t, r->in, r->in_len, r->want, want_len));
            size_t want = gw_tok_count(t, r->want, want_len);
            CHECK_EQ_INT(stream_count(t, r->in, r->in_len, 1), want);
            CHECK_EQ_INT(stream_count(t, r->in, r->in_len, 2), want);
        }
    }
}

/* --- pathological inputs ------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
    return gw_test_rng(&rng_state);
}

static char *make_input(int kind, size_t n)
{
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: s[i] = 'a'; break;
        case 1: s[i] = ' '; break;
        case 2: s[i] = (char)rng(); break;                    /* random bytes */
        case 3: s[i] = (char)('a' + rng() % 26); break;       /* one long word */
        case 4: s[i] = (char)('0' + rng() % 10); break;       /* one long number */
        case 5: s[i] = "\n \t\r"[rng() % 4]; break;           /* whitespace soup */
        case 6: s[i] = "\xF0\x9F\x98\x80"[i % 4]; break;      /* one emoji repeated */
        case 7: s[i] = "\xCC\x81"[i % 2]; break;              /* combining marks only */
        case 8: s[i] = i + 1 < n ? ' ' : 'x'; break;             /* backtracks \s+(?!\S) */
        case 9: s[i] = i + 1 < n ? 'A' : 'b'; break;             /* o200k's [Lu]*[Ll]+ */
        default: s[i] = i % 3 ? '\n' : ' '; break;               /* \s*[\r\n]+ */
        }
    }
    return s;
}

static const char *KIND[] = {"repeated a", "spaces", "random bytes", "long word", "digits",
                             "whitespace soup", "emoji", "combining marks", "spaces then x",
                             "capitals then b", "newline runs"};

TEST(pathological_inputs_are_fast)
{
    for (int k = 0; k < 11; k++) {
        char *s = make_input(k, BIG);
        for (int e = 0; e < N_ENC; e++) {
            const gw_tok_t *t = gw_tok_get(ENC[e]);
            double t0 = now();
            size_t n = gw_tok_count(t, s, BIG);
            double dt = now() - t0;
            if (getenv("TOK_VERBOSE") || dt > BIG_SECONDS)
                fprintf(stderr, "%s / %s: %.3f s for %d bytes\n", KIND[k], ENC[e], dt, BIG);
            CHECK(dt < BIG_SECONDS);
            CHECK(n > 0 && n != GW_TOK_COUNT_ERROR);
            /* Streamed in small chunks: a quadratic re-scan of the unfinished piece would
             * show here (16384 feeds of a 256 KiB piece); the count must not change. */
            t0 = now();
            CHECK_EQ_INT(stream_count(t, s, BIG / 4, 16), gw_tok_count(t, s, BIG / 4));
            dt = now() - t0;
            if (getenv("TOK_VERBOSE") || dt > BIG_SECONDS)
                fprintf(stderr, "%s / %s stream: %.3f s\n", KIND[k], ENC[e], dt);
            CHECK(dt < BIG_SECONDS);
        }
        free(s);
    }
}

TEST(long_piece_encodes_whole)
{
    /* 1 MiB of 'a' is a single pre-token piece: the heap merge must give what the vocabulary
     * allows, e.g. cl100k has "aaaaaaaa" (8 a's) so the count is about n / 8. */
    char *s = make_input(0, BIG);
    const gw_tok_t *t = gw_tok_get("cl100k_base");
    uint32_t *ids = NULL;
    size_t n = 0;
    CHECK_EQ_INT(gw_tok_encode(t, s, BIG, &ids, &n), 0);
    CHECK(n >= BIG / 16 && n <= BIG / 4);
    CHECK_EQ_INT(gw_tok_count(t, s, BIG), n);
    free(ids);
    free(s);
}

/* --- streaming memory bound ------------------------------------------------------------------ */

static size_t max_buffered(const gw_tok_t *t, const char *unit, size_t total, size_t chunk)
{
    size_t ulen = strlen(unit), max = 0;
    char *s = malloc(total);
    for (size_t i = 0; i < total; i++)
        s[i] = unit[i % ulen];
    gw_tok_stream_t *st = gw_tok_stream_new(t);
    for (size_t i = 0; i < total; i += chunk) {
        gw_tok_stream_feed(st, s + i, total - i < chunk ? total - i : chunk);
        size_t b = tok_stream_buffered(st);
        max = b > max ? b : max;
    }
    size_t n = gw_tok_stream_finish(st);
    CHECK_EQ_INT(n, gw_tok_count(t, s, total));
    gw_tok_stream_free(st);
    free(s);
    return max;
}

TEST(stream_memory_is_bounded)
{
    static const char *texts[] = {
        "The quick brown fox jumps over the lazy dog, again and again. ",
        "人工智能正在改变世界，机器学习是其中的重要组成部分。",
        "안녕하세요 만나서 반갑습니다 ",
        "<EOT> x <META> y\r\n\t",
    };
    for (int e = 0; e < N_ENC; e++) {
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            size_t m = max_buffered(gw_tok_get(ENC[e]), texts[i], BIG / 4, 1000);
            if (m > 2200)
                fprintf(stderr, "%s: text %zu buffered %zu bytes\n", ENC[e], i, m);
            CHECK(m <= 2200); /* one chunk plus the unfinished tail */
        }
    }
}

/* --- assets: SHA-256 and missing files ------------------------------------------------------ */

static const char *FILES[] = {"cl100k_base.tiktoken", "o200k_base.tiktoken", "claude.tiktoken",
                              "SHA256SUMS"};

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int rc = a && b ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, a)) > 0)
        rc = fwrite(buf, 1, n, b) == n ? 0 : -1;
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    return rc;
}

static void make_assets_copy(const char *dir)
{
    char from[256], to[512];
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "assets/%s", FILES[i]);
        snprintf(to, sizeof to, "%s/%s", dir, FILES[i]);
        CHECK_EQ_INT(copy_file(from, to), 0);
    }
}

static void remove_assets_copy(const char *dir)
{
    char p[512];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, FILES[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Loading dir must fail with a message containing both needles; nothing stays loaded. */
static void expect_refused(const char *dir, const char *needle1, const char *needle2)
{
    char *err = NULL;
    int rc = gw_tok_load_all(dir, &err);
    CHECK(rc < 0);
    CHECK(err != NULL);
    if (err) {
        if (!strstr(err, needle1) || !strstr(err, needle2))
            fprintf(stderr, "unexpected message: %s\n", err);
        CHECK(strstr(err, needle1) != NULL);
        CHECK(strstr(err, needle2) != NULL);
    }
    free(err);
    for (int e = 0; e < N_ENC; e++)
        CHECK(gw_tok_get(ENC[e]) == NULL);
}

TEST(assets_are_verified)
{
    char dir[] = "/tmp/gw_tok_assets_XXXXXX", p[512];
    CHECK(mkdtemp(dir) != NULL);
    gw_tok_unload_all();
    make_assets_copy(dir);
    snprintf(p, sizeof p, "%s/claude.tiktoken", dir);
    FILE *f = fopen(p, "r+b"); /* flip one byte in the middle */
    CHECK(f != NULL);
    fseek(f, 500000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 500000, SEEK_SET);
    fputc(c == 'A' ? 'B' : 'A', f);
    fclose(f);
    expect_refused(dir, "claude.tiktoken", "SHA-256 mismatch");
    snprintf(p, sizeof p, "%s/o200k_base.tiktoken", dir);
    unlink(p);
    expect_refused(dir, "o200k_base.tiktoken", "cannot read");
    snprintf(p, sizeof p, "%s/SHA256SUMS", dir);
    unlink(p);
    expect_refused(dir, "SHA256SUMS", "cannot read");
    f = fopen(p, "w"); /* a sums file without the cl100k entry */
    fputs("0000000000000000000000000000000000000000000000000000000000000000  other\n", f);
    fclose(f);
    expect_refused(dir, "cl100k_base.tiktoken", "no entry");
    remove_assets_copy(dir);
    char *err = NULL;
    CHECK_EQ_INT(gw_tok_load_all("assets", &err), 0);
    CHECK(err == NULL);
    CHECK_EQ_INT(gw_tok_load_all("/nonexistent", &err), 0); /* idempotent */
    CHECK(gw_tok_get("claude") != NULL);
}

/* --- API edges --------------------------------------------------------------------------------- */

TEST(api_edges)
{
    CHECK(gw_tok_get("gpt2") == NULL);
    CHECK(gw_tok_get(NULL) == NULL);
    for (int e = 0; e < N_ENC; e++) {
        const gw_tok_t *t = gw_tok_get(ENC[e]);
        CHECK_EQ_STR(gw_tok_name(t), ENC[e]);
        uint32_t *ids = (uint32_t *)1;
        size_t n = 99;
        CHECK_EQ_INT(gw_tok_encode(t, "", 0, &ids, &n), 0);
        CHECK(ids == NULL && n == 0);
        CHECK_EQ_INT(gw_tok_count(t, NULL, 0), 0);
        gw_tok_stream_t *s = gw_tok_stream_new(t);
        CHECK_EQ_INT(gw_tok_stream_feed(s, "hello", 5), 0);
        CHECK_EQ_INT(gw_tok_stream_feed(s, NULL, 0), 0);
        size_t c = gw_tok_stream_finish(s);
        CHECK_EQ_INT(c, gw_tok_count(t, "hello", 5));
        CHECK_EQ_INT(gw_tok_stream_finish(s), c);
        CHECK_EQ_INT(gw_tok_stream_feed(s, "x", 1), -EINVAL);
        gw_tok_stream_free(s);
    }
    CHECK_EQ_INT(gw_tok_count(NULL, "x", 1), GW_TOK_COUNT_ERROR);
    CHECK(gw_tok_stream_new(NULL) == NULL);
    gw_tok_stream_free(NULL);
    /* Claude counts specials as one token each, OpenAI encodings as plain text. */
    CHECK_EQ_INT(gw_tok_count(gw_tok_get("claude"), "<EOT><META_START>", 17), 2);
    CHECK(gw_tok_count(gw_tok_get("cl100k_base"), "<|endoftext|>", 13) > 1);
}

/* --- vocabulary packing: limits fail loudly, any rank order loads ------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
} text_t;

static void put_token(text_t *t, const uint8_t *tok, size_t len, unsigned long rank)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (t->n + len * 2 + 32 > t->cap) {
        t->cap = (t->n + len * 2 + 32) * 2;
        t->p = realloc(t->p, t->cap);
    }
    for (size_t i = 0; i < len; i += 3) {
        uint32_t a = (uint32_t)tok[i] << 16 | (i + 1 < len ? (uint32_t)tok[i + 1] << 8 : 0) |
                     (i + 2 < len ? tok[i + 2] : 0);
        t->p[t->n++] = A[a >> 18];
        t->p[t->n++] = A[(a >> 12) & 63];
        t->p[t->n++] = i + 1 < len ? A[(a >> 6) & 63] : '=';
        t->p[t->n++] = i + 2 < len ? A[a & 63] : '=';
    }
    t->n += (size_t)sprintf(t->p + t->n, " %lu\n", rank);
}

/* The 256 single bytes at ranks 1000.. (descending, so the file is not in rank order). */
static void put_bytes(text_t *t)
{
    for (int b = 255; b >= 0; b--) {
        uint8_t c = (uint8_t)b;
        put_token(t, &c, 1, 1000 + (unsigned long)b);
    }
}

static int parse_text(text_t *t, tok_vocab_t *v, const char **why)
{
    *why = NULL;
    return tok_vocab_parse(v, (const uint8_t *)t->p, t->n, why);
}

TEST(vocab_packing)
{
    tok_vocab_t v;
    const char *why;
    text_t t = {0};
    /* tokens of 2, 3, 4 and 5 bytes in reverse rank order: decoding one must not clobber the
     * bytes of the rank after it */
    put_token(&t, (const uint8_t *)"hello", 5, 3);
    put_token(&t, (const uint8_t *)"abcd", 4, 2);
    put_token(&t, (const uint8_t *)"xyz", 3, 1);
    put_token(&t, (const uint8_t *)"ab", 2, 0);
    put_bytes(&t);
    CHECK_EQ_INT(parse_text(&t, &v, &why), 0);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"ab", 2) == 0);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"xyz", 3) == 1);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"abcd", 4) == 2);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"hello", 5) == 3);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"a", 1) == 1000 + 'a');
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"ba", 2) == TOK_NO_RANK);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"abc", 3) == TOK_NO_RANK);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"hellp", 5) == TOK_NO_RANK);
    CHECK(tok_vocab_rank(&v, (const uint8_t *)"hello!", 6) == TOK_NO_RANK);
    tok_vocab_dispose(&v);

    struct {
        unsigned long rank; /* of an extra token "abc" */
        size_t long_len;    /* 0, or a run of 32 tokens this long, ranks 2016..2047 (one block) */
        int dup;            /* 1: a second rank for "abc"; 2: a second token at its rank */
        const char *needle;
    } bad[] = {
        {(1ul << 24) - 1, 0, 0, "too large"},
        {(1ul << 24) - 2, 0, 0, NULL}, /* the largest rank that fits */
        {5, 0, 1, "duplicate token"},
        {5, 0, 2, "duplicate rank"},
        {5, 2047, 0, NULL},
        {5, 2200, 0, "start table"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t.n = 0;
        put_bytes(&t);
        put_token(&t, (const uint8_t *)"abc", 3, bad[i].rank);
        if (bad[i].dup == 1)
            put_token(&t, (const uint8_t *)"abc", 3, 6);
        if (bad[i].dup == 2)
            put_token(&t, (const uint8_t *)"abd", 3, bad[i].rank);
        uint8_t *big = calloc(1, bad[i].long_len + 1);
        for (size_t k = 0; bad[i].long_len && k < 32; k++) {
            memset(big, 'A' + (int)k, bad[i].long_len);
            put_token(&t, big, bad[i].long_len, 2016 + k);
        }
        int rc = parse_text(&t, &v, &why);
        if (bad[i].needle) {
            CHECK_EQ_INT(rc, -EIO);
            CHECK(why && strstr(why, bad[i].needle));
            if (!why || !strstr(why, bad[i].needle))
                fprintf(stderr, "case %zu: %s\n", i, why ? why : "(no message)");
        } else {
            CHECK_EQ_INT(rc, 0);
            CHECK(rc != 0 || tok_vocab_rank(&v, (const uint8_t *)"abc", 3) == bad[i].rank);
            if (rc == 0 && bad[i].long_len) {
                memset(big, 'A' + 31, bad[i].long_len);
                CHECK(tok_vocab_rank(&v, big, bad[i].long_len) == 2047);
            }
            tok_vocab_dispose(&v);
        }
        free(big);
    }
    free(t.p);
}

int main(void)
{
    if (gw_test_load_vocab() != 0)
        return 1;
    RUN(invalid_utf8_is_replaced);
    RUN(pathological_inputs_are_fast);
    RUN(long_piece_encodes_whole);
    RUN(stream_memory_is_bounded);
    RUN(api_edges);
    RUN(vocab_packing);
    RUN(assets_are_verified);
    gw_tok_unload_all();
    return TEST_REPORT();
}
