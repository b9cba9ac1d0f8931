/*
 * pieces-gateway: the three encodings, loaded once per process from verified asset files.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_tok_load_all, gw_tok_get, gw_tok_name, gw_tok_unload_all.
 * Uses: OpenSSL (SHA-256), PCRE2 (compile + JIT), vocab.c, pthreads.
 * The split patterns are the reference pat_str strings (tiktoken's cl100k_base/o200k_base, the
 * claude.json of @anthropic-ai/tokenizer) with one adaptation: the references run them with
 * Rust's regex crate, whose \s is exactly Unicode White_Space, while PCRE2's UCP \s adds
 * U+180E; so \s and \S are spelled out as that property (see rewrite_space()).
 * split.c spells each pattern out for ASCII text (the piece loop asks it first).
 * Must never: publish a half-built encoding (readers take the pointer without a lock), or use
 * a rank file whose SHA-256 does not match SHA256SUMS.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tok_internal.h"

static const char PAT_CL100K[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_O200K[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_CLAUDE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const tok_special_t CLAUDE_SPECIALS[] = {
    {"<EOT>", 5, 0}, {"<META>", 6, 1}, {"<META_START>", 12, 2}, {"<META_END>", 10, 3},
    {"<SOS>", 5, 4},
};

typedef struct {
    const char *name;
    const char *pattern;
    tok_split_fn split;
    int nfkc;
    const tok_special_t *specials;
    size_t n_specials;
} encoding_def_t;

static const encoding_def_t DEFS[] = {
    {"cl100k_base", PAT_CL100K, tok_split_cl100k, 0, NULL, 0},
    {"o200k_base", PAT_O200K, tok_split_o200k, 0, NULL, 0},
    {"claude", PAT_CLAUDE, tok_split_claude, 1, CLAUDE_SPECIALS,
     sizeof CLAUDE_SPECIALS / sizeof *CLAUDE_SPECIALS},
};
#define N_DEFS (sizeof DEFS / sizeof *DEFS)

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(gw_tok_t *) loaded[N_DEFS];

static int fail_msg(char **err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(err, fmt, ap) < 0)
            *err = NULL;
        va_end(ap);
    }
    return rc;
}

/* Unicode White_Space, the set Rust's regex crate (used by the references) calls \s. */
#define WHITE_SPACE "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}" \
                    "\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Copies pattern with \s and \S replaced by explicit White_Space classes (inside a class, \s
 * becomes the bare ranges). The patterns have no other escapes containing 's' or 'S'. */
static char *rewrite_space(const char *pat)
{
    size_t cap = strlen(pat) * 8 + 1, o = 0;
    char *out = malloc(cap);
    int in_class = 0;
    if (!out)
        return NULL;
    for (const char *p = pat; *p; p++) {
        const char *add = NULL;
        if (p[0] == '\\' && (p[1] == 's' || p[1] == 'S')) {
            add = p[1] == 'S' ? "[^" WHITE_SPACE "]" : in_class ? WHITE_SPACE : "[" WHITE_SPACE "]";
            p++;
        } else if (p[0] == '\\') {
            out[o++] = *p++;
        } else if (*p == '[') {
            in_class = 1;
        } else if (*p == ']') {
            in_class = 0;
        }
        if (add) {
            memcpy(out + o, add, strlen(add));
            o += strlen(add);
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static int compile(gw_tok_t *t, const char *pattern, char **err)
{
    int code;
    PCRE2_SIZE off;
    char *pat = rewrite_space(pattern);
    if (!pat)
        return fail_msg(err, -ENOMEM, "tokenizer: out of memory");
    t->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                          &off, NULL);
    free(pat);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return fail_msg(err, -EINVAL, "tokenizer %s: regex error at %zu: %s", t->name,
                        (size_t)off, (char *)msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD) == 0;
    return 0;
}

/* The file's bytes (NUL-terminated) in a private anonymous mapping, not on the heap: a
 * multi-megabyte buffer freed into the middle of the heap would stay resident behind the
 * tables allocated after it. Release with release_file(). */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    int rc = -EIO;
    long size;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto done;
    void *m = mmap(NULL, (size_t)size + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED) {
        rc = -ENOMEM;
        goto done;
    }
    *data = m;
    if (fread(*data, 1, (size_t)size, f) != (size_t)size) {
        munmap(m, (size_t)size + 1);
        *data = NULL;
        goto done;
    }
    (*data)[size] = '\0';
    *len = (size_t)size;
    rc = 0;
done:
    fclose(f);
    return rc;
}

static void release_file(uint8_t *data, size_t len)
{
    if (data)
        munmap(data, len + 1);
}

/* The expected hex SHA-256 of file name in the SHA256SUMS text sums (sha256sum format). */
static int expected_sum(const char *sums, const char *name, char hex[65])
{
    size_t nl = strlen(name);
    for (const char *line = sums; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *f = line + 64;
        if (strspn(line, "0123456789abcdefABCDEF") < 64 || (f[0] != ' ' && f[0] != '\t'))
            continue;
        f += 1 + (f[1] == ' ' || f[1] == '*');
        if (strncmp(f, name, nl) == 0 && (f[nl] == '\n' || f[nl] == '\0' || f[nl] == '\r')) {
            for (int i = 0; i < 64; i++)
                hex[i] = (char)(line[i] | 0x20);
            hex[64] = '\0';
            return 0;
        }
    }
    return -1;
}

static int sha256_hex(const uint8_t *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Reads and verifies dir/name.tiktoken, then parses it into t->vocab. */
static int load_vocab(gw_tok_t *t, const char *dir, const char *sums, char **err)
{
    char path[4096], file[64], want[65], got[65];
    uint8_t *data = NULL;
    size_t len = 0;
    const char *why = NULL;
    snprintf(file, sizeof file, "%s.tiktoken", t->name);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (expected_sum(sums, file, want) != 0)
        return fail_msg(err, -EIO, "tokenizer: %s has no entry in %s/SHA256SUMS", path, dir);
    int rc = read_file(path, &data, &len);
    if (rc != 0)
        return fail_msg(err, rc == -ENOMEM ? rc : -EIO, "tokenizer: cannot read %s: %s", path,
                        strerror(-rc));
    if (sha256_hex(data, len, got) != 0 || strcmp(want, got) != 0) {
        release_file(data, len);
        return fail_msg(err, -EIO, "tokenizer: SHA-256 mismatch for %s (expected %s, got %s)",
                        path, want, got);
    }
    rc = tok_vocab_parse(&t->vocab, data, len, &why);
    release_file(data, len);
    if (rc != 0)
        return fail_msg(err, rc, "tokenizer: bad rank file %s: %s", path, why ? why : "?");
    return 0;
}

static void tok_free(gw_tok_t *t)
{
    if (!t)
        return;
    tok_vocab_dispose(&t->vocab);
    pcre2_code_free(t->re);
    free(t);
}

static int load_one(const encoding_def_t *d, const char *dir, const char *sums, gw_tok_t **out,
                    char **err)
{
    gw_tok_t *t = calloc(1, sizeof *t);
    if (!t)
        return fail_msg(err, -ENOMEM, "tokenizer: out of memory");
    t->name = d->name;
    t->nfkc = d->nfkc;
    t->split = d->split;
    t->specials = d->specials;
    t->n_specials = d->n_specials;
    int rc = load_vocab(t, dir, sums, err);
    if (rc == 0)
        rc = compile(t, d->pattern, err);
    if (rc != 0) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static int load_locked(const char *dir, char **err)
{
    gw_tok_t *toks[N_DEFS] = {0};
    char sums_path[4096];
    uint8_t *sums = NULL;
    size_t len;
    snprintf(sums_path, sizeof sums_path, "%s/SHA256SUMS", dir);
    int rc = read_file(sums_path, &sums, &len);
    if (rc != 0)
        return fail_msg(err, rc == -ENOMEM ? rc : -EIO, "tokenizer: cannot read %s: %s",
                        sums_path, strerror(-rc));
    for (size_t i = 0; i < N_DEFS && rc == 0; i++)
        rc = load_one(&DEFS[i], dir, (const char *)sums, &toks[i], err);
    release_file(sums, len);
    if (rc != 0) {
        for (size_t i = 0; i < N_DEFS; i++)
            tok_free(toks[i]);
        return rc;
    }
    for (size_t i = 0; i < N_DEFS; i++)
        atomic_store_explicit(&loaded[i], toks[i], memory_order_release);
    return 0;
}

int gw_tok_load_all(const char *assets_dir, char **err)
{
    if (err)
        *err = NULL;
    if (!assets_dir)
        return fail_msg(err, -EINVAL, "tokenizer: no assets directory");
    pthread_mutex_lock(&load_lock);
    int rc = 0;
    if (!atomic_load_explicit(&loaded[0], memory_order_acquire))
        rc = load_locked(assets_dir, err);
    pthread_mutex_unlock(&load_lock);
    return rc;
}

const gw_tok_t *gw_tok_get(const char *name)
{
    for (size_t i = 0; name && i < N_DEFS; i++) {
        if (strcmp(name, DEFS[i].name) == 0)
            return atomic_load_explicit(&loaded[i], memory_order_acquire);
    }
    return NULL;
}

const char *gw_tok_name(const gw_tok_t *t)
{
    return t ? t->name : NULL;
}

void gw_tok_unload_all(void)
{
    pthread_mutex_lock(&load_lock);
    for (size_t i = 0; i < N_DEFS; i++)
        tok_free(atomic_exchange(&loaded[i], NULL));
    pthread_mutex_unlock(&load_lock);
}
