/*
 * pieces-gateway: unit tests for the shared dictionary engine (src/shdict/shdict.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Covers: get/set/add/delete/incr semantics and types, TTL with an injected clock, LRU
 * eviction, keys(prefix, max), big/empty/binary values and keys, flush_expired, stats, and
 * multi-threaded incr totals and mixed stress (run under ASan by the _asan variant).
 */
#include "gw_test.h"
#include "shdict.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define SEC 1000000000ull

static uint64_t fake_now = 1000 * SEC;
static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static gw_shdict_t *new_dict(size_t cap, unsigned shards)
{
    gw_shdict_t *d = gw_shdict_new(cap, shards);
    if (d)
        gw_shdict_set_clock(d, fake_clock, NULL);
    return d;
}

static gw_shdict_val_t num(double n) { return (gw_shdict_val_t){GW_SHDICT_TNUMBER, n, NULL, 0}; }
static gw_shdict_val_t str(const char *s, size_t n)
{
    return (gw_shdict_val_t){GW_SHDICT_TSTRING, 0, s, n};
}
static gw_shdict_val_t cstr(const char *s) { return str(s, strlen(s)); }

static int set_s(gw_shdict_t *d, const char *k, const char *v, double ttl)
{
    gw_shdict_val_t x = cstr(v);
    return gw_shdict_set(d, k, strlen(k), &x, ttl);
}
static int set_n(gw_shdict_t *d, const char *k, double v, double ttl)
{
    gw_shdict_val_t x = num(v);
    return gw_shdict_set(d, k, strlen(k), &x, ttl);
}

/* get into a static buffer; returns the status, fills *out. */
static char gbuf[1 << 16];
static int get(gw_shdict_t *d, const char *k, size_t klen, gw_shdict_val_t *out)
{
    size_t len = sizeof(gbuf);
    memset(out, 0, sizeof(*out));
    return gw_shdict_get(d, k, klen, out, gbuf, &len);
}
static int gets(gw_shdict_t *d, const char *k, gw_shdict_val_t *out)
{
    return get(d, k, strlen(k), out);
}
static int has(gw_shdict_t *d, const char *k)
{
    gw_shdict_val_t v;
    return gets(d, k, &v) == 0;
}

TEST(set_get_types)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    gw_shdict_val_t v;
    CHECK_EQ_INT(gets(d, "missing", &v), GW_SHDICT_NOT_FOUND);
    CHECK_EQ_INT(set_n(d, "n", 42.5, 0), 0);
    CHECK_EQ_INT(gets(d, "n", &v), 0);
    CHECK_EQ_INT(v.type, GW_SHDICT_TNUMBER);
    CHECK(v.num == 42.5);
    CHECK_EQ_INT(set_s(d, "s", "hello", 0), 0);
    CHECK_EQ_INT(gets(d, "s", &v), 0);
    CHECK_EQ_INT(v.type, GW_SHDICT_TSTRING);
    CHECK_EQ_INT(v.len, 5);
    CHECK(memcmp(v.str, "hello", 5) == 0);
    /* "42" as a string stays a string; a number overwrites a string and back */
    CHECK_EQ_INT(set_s(d, "n", "42", 0), 0);
    CHECK_EQ_INT(gets(d, "n", &v), 0);
    CHECK_EQ_INT(v.type, GW_SHDICT_TSTRING);
    CHECK_EQ_INT(set_n(d, "s", -1e300, 0), 0);
    CHECK_EQ_INT(gets(d, "s", &v), 0);
    CHECK_EQ_INT(v.type, GW_SHDICT_TNUMBER);
    CHECK(v.num == -1e300);
    CHECK_EQ_INT(set_s(d, "s", "a longer string than before", 0), 0);
    CHECK_EQ_INT(gets(d, "s", &v), 0);
    CHECK_EQ_INT(v.len, 27);
    gw_shdict_val_t bad = {7, 0, NULL, 0};
    CHECK_EQ_INT(gw_shdict_set(d, "x", 1, &bad, 0), GW_SHDICT_INVALID);
    bad = (gw_shdict_val_t){GW_SHDICT_TSTRING, 0, NULL, 3};
    CHECK_EQ_INT(gw_shdict_set(d, "x", 1, &bad, 0), GW_SHDICT_INVALID);
    gw_shdict_free(d);
}

TEST(add_delete)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    gw_shdict_val_t a = cstr("a"), b = cstr("b"), v;
    CHECK_EQ_INT(gw_shdict_add(d, "k", 1, &a, 0), 0);
    CHECK_EQ_INT(gw_shdict_add(d, "k", 1, &b, 0), GW_SHDICT_EXISTS);
    CHECK_EQ_INT(gets(d, "k", &v), 0);
    CHECK(v.len == 1 && v.str[0] == 'a');
    CHECK_EQ_INT(gw_shdict_delete(d, "k", 1), 0);
    CHECK_EQ_INT(gw_shdict_delete(d, "k", 1), GW_SHDICT_NOT_FOUND);
    CHECK_EQ_INT(gets(d, "k", &v), GW_SHDICT_NOT_FOUND);
    CHECK_EQ_INT(gw_shdict_add(d, "k", 1, &b, 0), 0);
    CHECK_EQ_INT(gets(d, "k", &v), 0);
    CHECK(v.len == 1 && v.str[0] == 'b');
    /* add over an expired key succeeds */
    CHECK_EQ_INT(gw_shdict_add(d, "t", 1, &a, 1.0), 0);
    fake_now += 2 * SEC;
    CHECK_EQ_INT(gw_shdict_add(d, "t", 1, &b, 0), 0);
    CHECK_EQ_INT(gets(d, "t", &v), 0);
    CHECK(v.len == 1 && v.str[0] == 'b');
    gw_shdict_free(d);
}

TEST(incr)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    double out = -1;
    CHECK_EQ_INT(gw_shdict_incr(d, "c", 1, 1, 0, 0, 0, &out), GW_SHDICT_NOT_FOUND);
    CHECK(out == -1);
    CHECK_EQ_INT(gw_shdict_incr(d, "c", 1, 2, 1, 10, 0, &out), 0);
    CHECK(out == 12);
    CHECK_EQ_INT(gw_shdict_incr(d, "c", 1, -0.5, 1, 100, 0, &out), 0);
    CHECK(out == 11.5);
    CHECK_EQ_INT(set_s(d, "s", "5", 0), 0);
    CHECK_EQ_INT(gw_shdict_incr(d, "s", 1, 1, 1, 0, 0, &out), GW_SHDICT_NOT_NUMBER);
    gw_shdict_val_t v;
    CHECK_EQ_INT(gets(d, "c", &v), 0);
    CHECK_EQ_INT(v.type, GW_SHDICT_TNUMBER);
    CHECK(v.num == 11.5);
    CHECK_EQ_INT(gw_shdict_incr(d, "c", 1, 1, 1, 0, -1, &out), GW_SHDICT_INVALID);
    CHECK_EQ_INT(gw_shdict_incr(d, "", 0, 1, 1, 0, 0, &out), GW_SHDICT_BAD_KEY);
    gw_shdict_free(d);
}

TEST(incr_ttl_only_on_create)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    double out;
    CHECK_EQ_INT(gw_shdict_incr(d, "w", 1, 1, 1, 0, 10, &out), 0);
    fake_now += 6 * SEC;
    CHECK_EQ_INT(gw_shdict_incr(d, "w", 1, 1, 1, 0, 10, &out), 0); /* does not extend */
    CHECK(out == 2);
    fake_now += 5 * SEC;
    CHECK(!has(d, "w"));
    CHECK_EQ_INT(gw_shdict_incr(d, "w", 1, 1, 1, 0, 10, &out), 0); /* a new window */
    CHECK(out == 1);
    CHECK_EQ_INT(gw_shdict_incr(d, "w", 1, 1, 0, 0, 0, &out), 0);
    CHECK(out == 2);
    gw_shdict_free(d);
}

TEST(window_incr)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    gw_shdict_window_t w[2] = {
        {"a:2", 3, "a:1", 3, 0.5, 3, 10, 0, 0},
        {"b:2", 3, "b:1", 3, 0.0, 10, 10, 0, 0},
    };
    CHECK_EQ_INT(set_n(d, "a:1", 2, 0), 0);       /* previous window: 2 * 0.5 = 1 counted */
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 2), 1);   /* 1 + 0 + 1 <= 3 */
    CHECK(w[0].cur_count == 0 && w[0].prev_count == 2 && w[1].cur_count == 0);
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 2), 1);   /* 1 + 1 + 1 <= 3 */
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 2), 0);   /* 1 + 2 + 1 > 3: nothing changes */
    CHECK(w[0].cur_count == 2 && w[1].cur_count == 2);
    gw_shdict_val_t r;
    CHECK(gets(d, "a:2", &r) == 0 && r.num == 2);
    CHECK(gets(d, "b:2", &r) == 0 && r.num == 2); /* b passed but a failed: b not counted */
    /* the created counter expires after its ttl; an existing one keeps its ttl */
    fake_now += 11 * SEC;
    CHECK(!has(d, "a:2") && !has(d, "b:2"));
    w[0].limit = 0; /* limit 0 rejects */
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 1), 0);
    /* misuse and strings */
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 0), GW_SHDICT_INVALID);
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, GW_SHDICT_WINDOW_MAX + 1), GW_SHDICT_INVALID);
    CHECK_EQ_INT(set_s(d, "b:1", "x", 0), 0);
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 2), GW_SHDICT_NOT_NUMBER);
    w[1].plen = 0;
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 2), GW_SHDICT_BAD_KEY);
    w[1].plen = 3;
    w[1].ttl = -1;
    CHECK_EQ_INT(gw_shdict_window_incr(d, w, 2), GW_SHDICT_INVALID);
    gw_shdict_free(d);
}

TEST(ttl)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    CHECK_EQ_INT(set_n(d, "a", 1, 1.5), 0);
    CHECK_EQ_INT(set_n(d, "forever", 1, 0), 0);
    CHECK_EQ_INT(set_n(d, "huge", 1, 1e12), 0);
    CHECK_EQ_INT(set_n(d, "inf", 1, INFINITY), 0);
    CHECK_EQ_INT(set_n(d, "tiny", 1, 1e-12), 0);
    CHECK_EQ_INT(set_n(d, "neg", 1, -1), GW_SHDICT_INVALID);
    CHECK_EQ_INT(set_n(d, "nan", 1, NAN), GW_SHDICT_INVALID);
    CHECK(!has(d, "neg") && !has(d, "nan"));
    CHECK(has(d, "a"));
    CHECK(has(d, "tiny")); /* same instant: 1 ns has not passed yet */
    fake_now += 1;
    CHECK(!has(d, "tiny"));
    fake_now += SEC;
    CHECK(has(d, "a"));
    fake_now += SEC / 2;
    CHECK(!has(d, "a"));
    CHECK_EQ_INT(gw_shdict_delete(d, "a", 1), GW_SHDICT_NOT_FOUND); /* reclaimed by the get */
    /* set replaces the TTL: with 0 the key stops expiring */
    CHECK_EQ_INT(set_n(d, "b", 1, 1), 0);
    CHECK_EQ_INT(set_n(d, "b", 2, 0), 0);
    fake_now += 100 * SEC;
    CHECK(has(d, "b") && has(d, "forever") && has(d, "huge") && has(d, "inf"));
    gw_shdict_free(d);
}

TEST(flush_expired_and_stats)
{
    gw_shdict_t *d = new_dict(1 << 20, 8);
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        CHECK_EQ_INT(set_n(d, k, i, i % 2 ? 1 : 0), 0);
    }
    gw_shdict_stats_t st;
    gw_shdict_stats(d, &st);
    CHECK_EQ_INT(st.entries, 100);
    CHECK(st.used_bytes > 100 * 2 && st.used_bytes <= st.capacity_bytes);
    CHECK_EQ_INT(gw_shdict_flush_expired(d, 0), 0);
    fake_now += 2 * SEC;
    CHECK_EQ_INT(gw_shdict_flush_expired(d, 10), 10);
    CHECK_EQ_INT(gw_shdict_flush_expired(d, 0), 40);
    gw_shdict_stats(d, &st);
    CHECK_EQ_INT(st.entries, 50);
    CHECK_EQ_INT(st.evictions, 0);
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        gw_shdict_delete(d, k, strlen(k));
    }
    gw_shdict_stats(d, &st);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.used_bytes, 0);
    gw_shdict_free(d);
}

TEST(lru_eviction)
{
    /* one shard, room for about 50 small entries */
    gw_shdict_t *d = new_dict(50 * 80, 1);
    char k[32];
    CHECK_EQ_INT(set_n(d, "hot", 1, 0), 0);
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "cold%d", i);
        CHECK_EQ_INT(set_n(d, k, i, 0), 0);
        CHECK(has(d, "hot")); /* every read keeps it most recently used */
    }
    CHECK(has(d, "cold499"));
    CHECK(!has(d, "cold0"));
    gw_shdict_stats_t st;
    gw_shdict_stats(d, &st);
    CHECK(st.used_bytes <= st.capacity_bytes);
    CHECK(st.evictions >= 400);
    CHECK(st.entries >= 50 && st.entries <= 50 * 80 / 64); /* entries cost 64 + key bytes */
    /* expired entries at the cold end go first, without counting as evictions */
    gw_shdict_t *e = new_dict(10 * 80, 1);
    for (int i = 0; i < 9; i++) {
        snprintf(k, sizeof(k), "t%d", i);
        set_n(e, k, i, 1);
    }
    fake_now += 2 * SEC;
    for (int i = 0; i < 9; i++) {
        snprintf(k, sizeof(k), "n%d", i);
        set_n(e, k, i, 0);
    }
    gw_shdict_stats(e, &st);
    CHECK_EQ_INT(st.evictions, 0);
    gw_shdict_free(e);
    gw_shdict_free(d);
}

TEST(big_and_empty_values)
{
    gw_shdict_t *d = new_dict(8 << 20, 2); /* 4 MiB per shard */
    size_t n = 1 << 20;
    char *big = malloc(n), *out = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 31 + 7);
    gw_shdict_val_t v = str(big, n), r;
    CHECK_EQ_INT(gw_shdict_set(d, "big", 3, &v, 0), 0);
    size_t len = 100;
    CHECK_EQ_INT(gw_shdict_get(d, "big", 3, &r, out, &len), GW_SHDICT_TOO_SMALL);
    CHECK_EQ_INT(len, n);
    len = n;
    CHECK_EQ_INT(gw_shdict_get(d, "big", 3, &r, out, &len), 0);
    CHECK(len == n && memcmp(out, big, n) == 0);
    /* larger than a shard: refused, old value untouched */
    char *huge = calloc(5 << 20, 1);
    gw_shdict_val_t h = str(huge, 5 << 20);
    CHECK_EQ_INT(gw_shdict_set(d, "big", 3, &h, 0), GW_SHDICT_NO_MEMORY);
    len = n;
    CHECK_EQ_INT(gw_shdict_get(d, "big", 3, &r, out, &len), 0);
    CHECK_EQ_INT(len, n);
    /* empty string: present, a string, length 0; a NULL pointer is fine for length 0 */
    gw_shdict_val_t e = str(NULL, 0);
    CHECK_EQ_INT(gw_shdict_set(d, "empty", 5, &e, 0), 0);
    len = 0;
    CHECK_EQ_INT(gw_shdict_get(d, "empty", 5, &r, NULL, &len), 0);
    CHECK_EQ_INT(r.type, GW_SHDICT_TSTRING);
    CHECK_EQ_INT(len, 0);
    free(huge);
    free(big);
    free(out);
    gw_shdict_free(d);
}

TEST(keys_binary_and_limits)
{
    gw_shdict_t *d = new_dict(1 << 20, 4);
    gw_shdict_val_t v = num(1), r;
    CHECK_EQ_INT(gw_shdict_set(d, "", 0, &v, 0), GW_SHDICT_BAD_KEY);
    CHECK_EQ_INT(gw_shdict_set(d, NULL, 3, &v, 0), GW_SHDICT_BAD_KEY);
    CHECK_EQ_INT(get(d, "", 0, &r), GW_SHDICT_BAD_KEY);
    char *long_key = malloc(GW_SHDICT_KEY_MAX + 1);
    memset(long_key, 'k', GW_SHDICT_KEY_MAX + 1);
    CHECK_EQ_INT(gw_shdict_set(d, long_key, GW_SHDICT_KEY_MAX + 1, &v, 0), GW_SHDICT_BAD_KEY);
    CHECK_EQ_INT(gw_shdict_set(d, long_key, GW_SHDICT_KEY_MAX, &v, 0), 0);
    CHECK_EQ_INT(get(d, long_key, GW_SHDICT_KEY_MAX, &r), 0);
    free(long_key);
    /* keys differing only after a NUL byte are distinct */
    gw_shdict_val_t b = num(2), c = num(3);
    CHECK_EQ_INT(gw_shdict_set(d, "a\0b", 3, &b, 0), 0);
    CHECK_EQ_INT(gw_shdict_set(d, "a\0c", 3, &c, 0), 0);
    CHECK_EQ_INT(gw_shdict_set(d, "a", 1, &v, 0), 0);
    CHECK(get(d, "a\0b", 3, &r) == 0 && r.num == 2);
    CHECK(get(d, "a\0c", 3, &r) == 0 && r.num == 3);
    CHECK(get(d, "a", 1, &r) == 0 && r.num == 1);
    CHECK_EQ_INT(get(d, "a\0", 2, &r), GW_SHDICT_NOT_FOUND);
    gw_shdict_free(d);
}

typedef struct {
    int n;
    char seen[64][16];
} key_list;

static void collect(const char *k, size_t klen, void *ud)
{
    key_list *l = ud;
    if (l->n < 64 && klen < 16) {
        memcpy(l->seen[l->n], k, klen);
        l->seen[l->n][klen] = 0;
    }
    l->n++;
}

TEST(keys_prefix_max)
{
    gw_shdict_t *d = new_dict(1 << 20, 8);
    char k[32];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof(k), "rl:%d", i);
        set_n(d, k, i, i < 5 ? 1 : 0);
        snprintf(k, sizeof(k), "ban:%d", i);
        set_n(d, k, i, 0);
    }
    key_list l = {0};
    CHECK_EQ_INT(gw_shdict_keys(d, "rl:", 3, 0, collect, &l), 20);
    for (int i = 0; i < l.n; i++)
        CHECK(strncmp(l.seen[i], "rl:", 3) == 0);
    memset(&l, 0, sizeof(l));
    CHECK_EQ_INT(gw_shdict_keys(d, "", 0, 0, collect, &l), 40);
    memset(&l, 0, sizeof(l));
    CHECK_EQ_INT(gw_shdict_keys(d, "rl:", 3, 7, collect, &l), 7);
    CHECK_EQ_INT(l.n, 7);
    memset(&l, 0, sizeof(l));
    CHECK_EQ_INT(gw_shdict_keys(d, "rl:1", 4, 0, collect, &l), 11); /* rl:1, rl:10..19 */
    fake_now += 2 * SEC;
    memset(&l, 0, sizeof(l));
    CHECK_EQ_INT(gw_shdict_keys(d, "rl:", 3, 0, collect, &l), 15); /* expired are skipped */
    memset(&l, 0, sizeof(l));
    CHECK_EQ_INT(gw_shdict_keys(d, "nope", 4, 0, collect, &l), 0);
    gw_shdict_free(d);
}

TEST(many_keys_grow)
{
    gw_shdict_t *d = new_dict(64 << 20, 0);
    char k[32];
    int ok = 1;
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        ok &= set_n(d, k, i, 0) == 0;
    }
    CHECK(ok);
    gw_shdict_val_t r;
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        ok &= gets(d, k, &r) == 0 && r.num == i;
    }
    CHECK(ok);
    gw_shdict_stats_t st;
    gw_shdict_stats(d, &st);
    CHECK_EQ_INT(st.entries, 100000);
    CHECK_EQ_INT(st.evictions, 0);
    gw_shdict_free(d);
}

TEST(global)
{
    CHECK(gw_shdict_global() == NULL);
    gw_shdict_t *d = new_dict(1 << 20, 0);
    gw_shdict_set_global(d);
    CHECK(gw_shdict_global() == d);
    gw_shdict_set_global(NULL);
    CHECK(gw_shdict_global() == NULL);
    gw_shdict_free(d);
    CHECK_EQ_STR(gw_shdict_strerror(GW_SHDICT_EXISTS), "exists");
    CHECK_EQ_STR(gw_shdict_strerror(-1000), "unknown error");
    CHECK(gw_shdict_new(0, 4) == NULL);
}

/* --- concurrency ------------------------------------------------------------------------ */

#define NTHREADS 8
#define NITER 100000
#define NKEYS 1000

typedef struct {
    gw_shdict_t *d;
    int id;
    int failures;
} worker_arg;

static void *incr_same(void *p)
{
    worker_arg *a = p;
    double out;
    for (int i = 0; i < NITER; i++)
        a->failures += gw_shdict_incr(a->d, "hits", 4, 1, 1, 0, 0, &out) != 0;
    return NULL;
}

static void *incr_many(void *p)
{
    worker_arg *a = p;
    char k[32];
    double out;
    for (int i = 0; i < NITER; i++) {
        int n = snprintf(k, sizeof(k), "ip:%d", (i + a->id * 7) % NKEYS);
        a->failures += gw_shdict_incr(a->d, k, (size_t)n, 1, 1, 0, 0, &out) != 0;
    }
    return NULL;
}

static void run_threads(gw_shdict_t *d, void *(*fn)(void *), int *failures)
{
    pthread_t t[NTHREADS];
    worker_arg a[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        a[i] = (worker_arg){d, i, 0};
        pthread_create(&t[i], NULL, fn, &a[i]);
    }
    *failures = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        *failures += a[i].failures;
    }
}

TEST(concurrent_incr)
{
    gw_shdict_t *d = gw_shdict_new(64 << 20, 64);
    int failures;
    run_threads(d, incr_same, &failures);
    CHECK_EQ_INT(failures, 0);
    gw_shdict_val_t r;
    CHECK(gets(d, "hits", &r) == 0);
    CHECK_EQ_INT((long long)r.num, NTHREADS * NITER);
    run_threads(d, incr_many, &failures);
    CHECK_EQ_INT(failures, 0);
    char k[32];
    int ok = 1;
    for (int i = 0; i < NKEYS; i++) {
        snprintf(k, sizeof(k), "ip:%d", i);
        ok &= gets(d, k, &r) == 0 && r.num == NTHREADS * NITER / NKEYS;
    }
    CHECK(ok);
    gw_shdict_free(d);
}

/* Many threads against one limit over three rules whose keys span shards: exactly `limit`
 * calls are admitted (the check and the increment are one step), and no thread deadlocks. */
#define WLIMIT 5000
static atomic_int admitted;

static void *window_race(void *p)
{
    worker_arg *a = p;
    char k[6][16];
    gw_shdict_window_t w[3];
    for (int r = 0; r < 3; r++) {
        /* the rules in a different order per thread: the lock order must not depend on it */
        int j = (r + a->id) % 3;
        snprintf(k[2 * r], 16, "w%d:cur", j);
        snprintf(k[2 * r + 1], 16, "w%d:prev", j);
        w[r] = (gw_shdict_window_t){k[2 * r], strlen(k[2 * r]), k[2 * r + 1],
                                    strlen(k[2 * r + 1]), 0.5, j == 1 ? WLIMIT : 1e9, 60, 0, 0};
    }
    for (int i = 0; i < NITER / 10; i++) {
        int rc = gw_shdict_window_incr(a->d, w, 3);
        if (rc < 0)
            a->failures++;
        else if (rc == 1)
            atomic_fetch_add(&admitted, 1);
    }
    return NULL;
}

TEST(concurrent_window_incr)
{
    gw_shdict_t *d = gw_shdict_new(64 << 20, 64);
    int failures;
    atomic_store(&admitted, 0);
    run_threads(d, window_race, &failures);
    CHECK_EQ_INT(failures, 0);
    CHECK_EQ_INT(atomic_load(&admitted), WLIMIT);
    gw_shdict_val_t r;
    CHECK(gets(d, "w1:cur", &r) == 0 && r.num == WLIMIT);
    CHECK(gets(d, "w0:cur", &r) == 0 && r.num == WLIMIT);
    gw_shdict_free(d);
}

/* Mixed writers, readers and deleters over few keys in a small dict (constant eviction). A
 * string value is "<len>:" followed by that many copies of one letter: a torn copy shows. */
static int check_value(const gw_shdict_val_t *v)
{
    if (v->type == GW_SHDICT_TNUMBER)
        return 1;
    char *colon = memchr(v->str, ':', v->len);
    if (!colon)
        return 0;
    size_t n = (size_t)strtoul(v->str, NULL, 10), off = (size_t)(colon - v->str) + 1;
    if (off + n != v->len)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (v->str[off + i] != v->str[off])
            return 0;
    return 1;
}

static void *stress(void *p)
{
    worker_arg *a = p;
    char k[32], val[600], buf[600];
    unsigned seed = (unsigned)a->id * 2654435761u + 1;
    for (int i = 0; i < NITER / 2; i++) {
        seed = seed * 1103515245u + 12345u;
        int op = (int)(seed >> 16) % 6, kn = snprintf(k, sizeof(k), "s%u", (seed >> 8) % 64);
        size_t vn = (seed >> 4) % 500, len = sizeof(buf);
        int hn = snprintf(val, sizeof(val), "%zu:", vn);
        memset(val + hn, 'a' + (int)(seed % 26), vn);
        gw_shdict_val_t v = str(val, (size_t)hn + vn), r;
        double out;
        if (op == 0 || op == 1)
            gw_shdict_set(a->d, k, (size_t)kn, &v, (seed & 1) ? 0 : 1e-6);
        else if (op == 2)
            gw_shdict_add(a->d, k, (size_t)kn, &v, 0);
        else if (op == 3)
            gw_shdict_delete(a->d, k, (size_t)kn);
        else if (op == 4)
            gw_shdict_incr(a->d, k, (size_t)kn, 1, 1, 0, 0, &out);
        else if (gw_shdict_get(a->d, k, (size_t)kn, &r, buf, &len) == 0)
            a->failures += !check_value(&r);
        if (i % 1000 == 0)
            gw_shdict_flush_expired(a->d, 10);
    }
    return NULL;
}

TEST(concurrent_stress)
{
    gw_shdict_t *d = gw_shdict_new(16 * 1024, 2); /* ~8 KiB per shard: constant eviction */
    int failures;
    run_threads(d, stress, &failures);
    CHECK_EQ_INT(failures, 0);
    gw_shdict_stats_t st;
    gw_shdict_stats(d, &st);
    CHECK(st.used_bytes <= st.capacity_bytes);
    CHECK(st.evictions > 0);
    gw_shdict_free(d);
}

int main(void)
{
    RUN(set_get_types);
    RUN(add_delete);
    RUN(incr);
    RUN(incr_ttl_only_on_create);
    RUN(window_incr);
    RUN(ttl);
    RUN(flush_expired_and_stats);
    RUN(lru_eviction);
    RUN(big_and_empty_values);
    RUN(keys_binary_and_limits);
    RUN(keys_prefix_max);
    RUN(many_keys_grow);
    RUN(global);
    RUN(concurrent_incr);
    RUN(concurrent_window_incr);
    RUN(concurrent_stress);
    return TEST_REPORT();
}
