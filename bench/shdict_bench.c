/*
 * pieces-gateway: micro-benchmark of the shared dictionary (not a test).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Measures ns/op of incr (one hot key, and spread over many keys, as a rate limiter keyed by
 * client IP would be) and of get, with 1 and 2 threads.
 * Usage: shdict_bench [iterations_per_thread [shards]]
 */
#include "shdict.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    gw_shdict_t *d;
    int id;
    long iters;
    int mode; /* 0: incr one key per thread-set, 1: incr many keys, 2: get many keys */
} arg_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define NKEYS 4096
static char keys[NKEYS][32];
static size_t klens[NKEYS];

/* Keys are prepared up front so that the loop measures the dictionary, not snprintf. */
static void *run(void *p)
{
    arg_t *a = p;
    char buf[64];
    double out;
    for (long i = 0; i < a->iters; i++) {
        size_t k = a->mode == 0 ? 0 : (size_t)(i * 2654435761u) % NKEYS;
        if (a->mode == 2) {
            gw_shdict_val_t v;
            size_t len = sizeof(buf);
            gw_shdict_get(a->d, keys[k], klens[k], &v, buf, &len);
        } else {
            gw_shdict_incr(a->d, keys[k], klens[k], 1, 1, 0, 60, &out);
        }
    }
    return NULL;
}

static void bench(gw_shdict_t *d, const char *name, int mode, int threads, long iters)
{
    pthread_t t[8];
    arg_t a[8];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        a[i] = (arg_t){d, i, iters, mode};
        pthread_create(&t[i], NULL, run, &a[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double el = now_s() - t0;
    double total = (double)iters * threads;
    printf("%-28s threads=%d  %7.1f ns/op (wall / total ops)  %6.1f Mops/s\n", name, threads,
           el * 1e9 / total, total / el / 1e6);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 5000000;
    unsigned shards = argc > 2 ? (unsigned)atoi(argv[2]) : 64;
    gw_shdict_t *d = gw_shdict_new(64 << 20, shards);
    printf("shards=%u\n", shards);
    if (!d)
        return 1;
    for (int i = 0; i < NKEYS; i++)
        klens[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "rl:10.0.%d.%d:60", i >> 8, i & 255);
    for (int threads = 1; threads <= 2; threads++) {
        bench(d, "incr, one hot key", 0, threads, iters);
        bench(d, "incr, 4096 keys", 1, threads, iters);
        bench(d, "get (number), 4096 keys", 2, threads, iters);
    }
    gw_shdict_free(d);
    return 0;
}
