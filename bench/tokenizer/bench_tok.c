/*
 * pieces-gateway: tokenizer benchmark driver (not a test; bench/tokenizer/run.sh runs it).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Usage: bench_tok ASSETS_DIR CORPUS_FILE [ENCODING...]
 * Prints the vocabulary load time and RSS growth, then for each encoding (default cl100k_base
 * o200k_base) the token count of the corpus on one thread, best of 3 runs, as MB/s and tokens/s,
 * then the streaming counter on the same text in 1000-byte and 7-byte chunks (same count).
 * Uses only the public API (gw_tok.h). Must never: run more than one thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_tok.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    }
    if (f)
        fclose(f);
    return kib;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The streaming counter fed in chunk-byte pieces (SSE-like deltas); must equal the count. */
static int bench_stream(const gw_tok_t *t, const char *text, size_t len, size_t chunk,
                        size_t want)
{
    double t0 = now();
    gw_tok_stream_t *s = gw_tok_stream_new(t);
    for (size_t i = 0; s && i < len; i += chunk)
        gw_tok_stream_feed(s, text + i, len - i < chunk ? len - i : chunk);
    size_t n = gw_tok_stream_finish(s);
    gw_tok_stream_free(s);
    double dt = now() - t0;
    printf("c-stream  %-12s %10zu tokens %8.3f s %8.2f MB/s (%zu-byte chunks)%s\n",
           gw_tok_name(t), n, dt, (double)len / 1e6 / dt, chunk,
           n == want ? "" : "  COUNT DIFFERS");
    return n != want;
}

static int bench(const char *name, const char *text, size_t len)
{
    const gw_tok_t *t = gw_tok_get(name);
    if (!t) {
        fprintf(stderr, "bench_tok: unknown encoding %s\n", name);
        return 1;
    }
    double best = 1e9;
    size_t count = 0;
    for (int run = 0; run < 3; run++) {
        double t0 = now();
        count = gw_tok_count(t, text, len);
        double dt = now() - t0;
        if (dt < best)
            best = dt;
    }
    printf("c-engine  %-12s %10zu tokens %8.3f s %8.2f MB/s %12.0f tokens/s\n", name, count,
           best, (double)len / 1e6 / best, (double)count / best);
    return bench_stream(t, text, len, 1000, count) | bench_stream(t, text, len, 7, count);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tok ASSETS_DIR CORPUS_FILE [ENCODING...]\n");
        return 2;
    }
    size_t len;
    char *text = read_all(argv[2], &len);
    if (!text) {
        perror(argv[2]);
        return 1;
    }
    char *err = NULL;
    long rss0 = rss_kib();
    double t0 = now();
    if (gw_tok_load_all(argv[1], &err) != 0) {
        fprintf(stderr, "bench_tok: %s\n", err ? err : "load failed");
        return 1;
    }
    printf("c-engine  load all three vocabularies: %.1f ms, RSS +%.1f MiB\n", (now() - t0) * 1e3,
           (double)(rss_kib() - rss0) / 1024.0);
    int rc = 0;
    if (argc == 3) {
        rc |= bench("cl100k_base", text, len);
        rc |= bench("o200k_base", text, len);
    }
    for (int i = 3; i < argc; i++)
        rc |= bench(argv[i], text, len);
    gw_tok_unload_all();
    free(text);
    return rc;
}
