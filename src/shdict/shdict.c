/*
 * pieces-gateway: the shared dictionary engine (see src/shdict.h for the contract).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_shdict_*, a sharded hash table (one mutex, one chained hash table and one LRU
 *           list per shard, shards cache-line aligned), values copied in and out, lazy TTL.
 * Uses:     pthreads, the C library (malloc, clock_gettime, getrandom).
 * Never:    includes Lua headers; holds two shard locks at once (except window_incr, which
 *           takes its shards' locks in ascending order, so two such calls cannot deadlock);
 *           calls a user callback while another shard is locked; hands out pointers into its
 *           own memory (except to the keys callback, for the duration of the call).
 */
#include "shdict.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_SHARDS 4096
#define MIN_SHARD_BYTES 4096 /* shards are halved until each one holds at least this */
#define INITIAL_BUCKETS 16
#define SWEEP_PER_STORE 2    /* expired LRU-tail entries reclaimed by every store */
#define TTL_FOREVER_S 1e9    /* ~31.7 years: treated as "no expiry" */

typedef struct lru_link {
    struct lru_link *prev, *next;
} lru_link;

/* One key/value. lru must stay the first member: the LRU list links entries through it. */
typedef struct entry {
    lru_link lru;
    struct entry *hnext; /* bucket chain */
    uint64_t hash;
    uint64_t expires; /* monotonic ns; 0 = never */
    double num;
    uint32_t klen;
    uint32_t vlen; /* string bytes after the key; 0 for numbers */
    uint8_t type;
    unsigned char data[]; /* key bytes, then value bytes */
} entry;

typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t used; /* bytes charged */
    size_t cap;  /* this shard's share of the capacity; fixed after creation */
    uint64_t evictions;
    lru_link lru; /* sentinel: lru.next is the most recently used entry, lru.prev the least */
} shard;

struct gw_shdict {
    shard *shards;
    unsigned nshards;
    unsigned shard_bits;
    uint64_t seed;
    size_t capacity;
    gw_shdict_clock_fn clock;
    void *clock_ud;
};

/* The current time, read at most once per operation and only when a TTL needs it. */
typedef struct {
    gw_shdict_t *d;
    int have;
    uint64_t now;
} tclock;

static _Atomic(gw_shdict_t *) global_dict;

/* --- helpers --------------------------------------------------------------------------- */

/* CLOCK_MONOTONIC_COARSE costs ~5 ns against ~23 ns for CLOCK_MONOTONIC (measured; that was
 * 40% of an incr), at the price of a resolution of one kernel tick (1-4 ms): a TTL may end up
 * to a tick early or late, which rate-limit windows and bans do not notice. */
static uint64_t mono_ns(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_of(tclock *tc)
{
    if (!tc->have) {
        tc->now = tc->d->clock(tc->d->clock_ud);
        tc->have = 1;
    }
    return tc->now;
}

static int expired(tclock *tc, const entry *e)
{
    return e->expires != 0 && e->expires <= now_of(tc);
}

static uint64_t fmix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A seeded 64-bit hash, 8 bytes a step. The seed is random per dictionary, so keys chosen by
 * clients (IPs, API keys) cannot be aimed at one bucket without knowing it. */
static uint64_t hash_key(uint64_t seed, const char *p, size_t n)
{
    const uint64_t m = 0x9e3779b97f4a7c15ull;
    uint64_t h = seed ^ ((uint64_t)n * m);
    uint64_t k;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&k, p, 8);
        h = (h ^ fmix(k));
        h = ((h << 27) | (h >> 37)) * m;
    }
    k = 0;
    memcpy(&k, p, n);
    return fmix(h ^ fmix(k ^ seed));
}

static shard *shard_of(gw_shdict_t *d, uint64_t h)
{
    return d->shard_bits ? &d->shards[h >> (64 - d->shard_bits)] : d->shards;
}

static size_t charge_of(size_t klen, size_t vlen)
{
    return sizeof(entry) + klen + vlen;
}

static int ttl_to_ns(double ttl, uint64_t *ns)
{
    if (!(ttl >= 0)) /* negative or NaN */
        return GW_SHDICT_INVALID;
    if (ttl >= TTL_FOREVER_S) {
        *ns = 0;
        return 0;
    }
    uint64_t v = (uint64_t)(ttl * 1e9);
    *ns = (ttl > 0 && v == 0) ? 1 : v; /* a tiny positive ttl still expires */
    return 0;
}

static int check_key(const char *key, size_t klen)
{
    return (klen == 0 || klen > GW_SHDICT_KEY_MAX || !key) ? GW_SHDICT_BAD_KEY : 0;
}

static int check_val(const gw_shdict_val_t *v)
{
    if (!v)
        return GW_SHDICT_INVALID;
    if (v->type == GW_SHDICT_TNUMBER)
        return 0;
    if (v->type != GW_SHDICT_TSTRING || (v->len && !v->str))
        return GW_SHDICT_INVALID;
    return v->len > UINT32_MAX ? GW_SHDICT_NO_MEMORY : 0;
}

/* --- LRU and chains (shard lock held) ---------------------------------------------------- */

static void lru_unlink(lru_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void lru_push_front(shard *s, lru_link *l)
{
    l->prev = &s->lru;
    l->next = s->lru.next;
    s->lru.next->prev = l;
    s->lru.next = l;
}

static void lru_touch(shard *s, entry *e)
{
    if (s->lru.next != &e->lru) {
        lru_unlink(&e->lru);
        lru_push_front(s, &e->lru);
    }
}

/* The chain slot holding key, or the empty slot at the end of its chain. */
static entry **find_slot(shard *s, uint64_t h, const char *key, size_t klen)
{
    entry **pp = &s->buckets[h & (s->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        entry *e = *pp;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            break;
    }
    return pp;
}

static void remove_at(shard *s, entry **pp)
{
    entry *e = *pp;
    *pp = e->hnext;
    lru_unlink(&e->lru);
    s->count--;
    s->used -= charge_of(e->klen, e->vlen);
    free(e);
}

static void remove_entry(shard *s, entry *e)
{
    entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    remove_at(s, pp);
}

/* Double the bucket array when the load factor passes 1; on allocation failure keep going
 * with longer chains. */
static void maybe_grow(shard *s)
{
    if (s->count <= s->nbuckets)
        return;
    size_t nb = s->nbuckets * 2;
    entry **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry *e = s->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            e->hnext = nbk[e->hash & (nb - 1)];
            nbk[e->hash & (nb - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = nbk;
    s->nbuckets = nb;
}

/* Reclaim a few expired entries from the cold end, then evict until need bytes fit. */
static void make_room(shard *s, tclock *tc, size_t need)
{
    for (int i = 0; i < SWEEP_PER_STORE && s->lru.prev != &s->lru; i++) {
        entry *tail = (entry *)s->lru.prev;
        if (!expired(tc, tail))
            break;
        remove_entry(s, tail);
    }
    while (s->used + need > s->cap && s->lru.prev != &s->lru) {
        entry *victim = (entry *)s->lru.prev;
        if (!expired(tc, victim))
            s->evictions++;
        remove_entry(s, victim);
    }
}

static void fill_value(entry *e, const gw_shdict_val_t *v, uint64_t ttl_ns, tclock *tc)
{
    e->type = (uint8_t)v->type;
    e->num = v->type == GW_SHDICT_TNUMBER ? v->num : 0;
    if (e->vlen)
        memcpy(e->data + e->klen, v->str, e->vlen);
    e->expires = ttl_ns ? now_of(tc) + ttl_ns : 0;
}

/* Insert a key known to be absent. The caller checked that the entry fits in a shard. */
static int insert_new(shard *s, tclock *tc, uint64_t h, const char *key, size_t klen,
                      const gw_shdict_val_t *v, uint64_t ttl_ns)
{
    size_t vlen = v->type == GW_SHDICT_TSTRING ? v->len : 0;
    size_t need = charge_of(klen, vlen);
    make_room(s, tc, need);
    entry *e = malloc(need);
    if (!e)
        return GW_SHDICT_NO_MEMORY;
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    memcpy(e->data, key, klen);
    fill_value(e, v, ttl_ns, tc);
    entry **head = &s->buckets[h & (s->nbuckets - 1)];
    e->hnext = *head;
    *head = e;
    lru_push_front(s, &e->lru);
    s->count++;
    s->used += need;
    maybe_grow(s);
    return 0;
}

/* --- lifecycle --------------------------------------------------------------------------- */

static unsigned shard_count(size_t capacity, unsigned want)
{
    unsigned n = 1;
    if (want == 0)
        want = GW_SHDICT_DEFAULT_SHARDS;
    if (want > MAX_SHARDS)
        want = MAX_SHARDS;
    while (n < want)
        n <<= 1;
    while (n > 1 && capacity / n < MIN_SHARD_BYTES)
        n >>= 1;
    return n;
}

static int shard_init(shard *s, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->buckets = calloc(INITIAL_BUCKETS, sizeof(*s->buckets));
    if (!s->buckets)
        return GW_SHDICT_NO_MEMORY;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s->buckets);
        return GW_SHDICT_NO_MEMORY;
    }
    s->nbuckets = INITIAL_BUCKETS;
    s->cap = cap;
    s->lru.next = s->lru.prev = &s->lru;
    return 0;
}

static void shard_dispose(shard *s)
{
    while (s->lru.next != &s->lru) {
        entry *e = (entry *)s->lru.next;
        lru_unlink(&e->lru);
        free(e);
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->lock);
}

static uint64_t random_seed(const void *salt)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = mono_ns(NULL) ^ (uint64_t)(uintptr_t)salt;
    return fmix(seed);
}

gw_shdict_t *gw_shdict_new(size_t capacity_bytes, unsigned shards)
{
    if (capacity_bytes == 0)
        return NULL;
    gw_shdict_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->nshards = shard_count(capacity_bytes, shards);
    while ((1u << d->shard_bits) < d->nshards)
        d->shard_bits++;
    d->shards = aligned_alloc(_Alignof(shard), d->nshards * sizeof(shard));
    if (!d->shards)
        goto fail_shards;
    unsigned i = 0;
    for (; i < d->nshards; i++)
        if (shard_init(&d->shards[i], capacity_bytes / d->nshards) != 0)
            goto fail_init;
    d->capacity = capacity_bytes;
    d->seed = random_seed(d);
    d->clock = mono_ns;
    return d;

fail_init:
    while (i-- > 0)
        shard_dispose(&d->shards[i]);
    free(d->shards);
fail_shards:
    free(d);
    return NULL;
}

void gw_shdict_free(gw_shdict_t *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < d->nshards; i++)
        shard_dispose(&d->shards[i]);
    free(d->shards);
    free(d);
}

void gw_shdict_set_clock(gw_shdict_t *d, gw_shdict_clock_fn fn, void *ud)
{
    d->clock = fn ? fn : mono_ns;
    d->clock_ud = fn ? ud : NULL;
}

/* key's live entry, or NULL (an expired one is removed on the way); *slot (if asked) is where
 * a live entry hangs, for remove_at. */
static entry *find_live(shard *s, tclock *tc, uint64_t h, const char *key, size_t klen,
                        entry ***slot)
{
    entry **pp = find_slot(s, h, key, klen);
    entry *e = *pp;
    if (e && expired(tc, e)) {
        remove_at(s, pp);
        e = NULL;
    }
    if (slot)
        *slot = pp;
    return e;
}

/* --- operations -------------------------------------------------------------------------- */

int gw_shdict_get(gw_shdict_t *d, const char *key, size_t klen, gw_shdict_val_t *out, char *buf,
                  size_t *len)
{
    int rc = check_key(key, klen);
    if (rc)
        return rc;
    uint64_t h = hash_key(d->seed, key, klen);
    shard *s = shard_of(d, h);
    tclock tc = {d, 0, 0};
    pthread_mutex_lock(&s->lock);
    entry *e = find_live(s, &tc, h, key, klen, NULL);
    if (!e) {
        rc = GW_SHDICT_NOT_FOUND;
    } else if (e->vlen > *len) {
        *len = e->vlen;
        rc = GW_SHDICT_TOO_SMALL;
    } else {
        out->type = e->type;
        out->num = e->num;
        out->str = buf;
        out->len = e->vlen;
        if (e->vlen)
            memcpy(buf, e->data + klen, e->vlen);
        *len = e->vlen;
        lru_touch(s, e);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int store(gw_shdict_t *d, const char *key, size_t klen, const gw_shdict_val_t *v,
                 double ttl, int add)
{
    uint64_t ttl_ns;
    int rc = check_key(key, klen);
    if (!rc)
        rc = check_val(v);
    if (!rc)
        rc = ttl_to_ns(ttl, &ttl_ns);
    if (rc)
        return rc;
    size_t vlen = v->type == GW_SHDICT_TSTRING ? v->len : 0;
    uint64_t h = hash_key(d->seed, key, klen);
    shard *s = shard_of(d, h);
    if (charge_of(klen, vlen) > s->cap)
        return GW_SHDICT_NO_MEMORY;
    tclock tc = {d, 0, 0};
    pthread_mutex_lock(&s->lock);
    entry **pp;
    entry *e = find_live(s, &tc, h, key, klen, &pp);
    if (e && add) {
        rc = GW_SHDICT_EXISTS;
    } else if (e && e->vlen == vlen) { /* same size: overwrite in place */
        fill_value(e, v, ttl_ns, &tc);
        lru_touch(s, e);
    } else {
        if (e)
            remove_at(s, pp);
        rc = insert_new(s, &tc, h, key, klen, v, ttl_ns);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int gw_shdict_set(gw_shdict_t *d, const char *key, size_t klen, const gw_shdict_val_t *v,
                  double ttl)
{
    return store(d, key, klen, v, ttl, 0);
}

int gw_shdict_add(gw_shdict_t *d, const char *key, size_t klen, const gw_shdict_val_t *v,
                  double ttl)
{
    return store(d, key, klen, v, ttl, 1);
}

int gw_shdict_incr(gw_shdict_t *d, const char *key, size_t klen, double delta, int has_init,
                   double init, double init_ttl, double *out)
{
    uint64_t ttl_ns = 0;
    int rc = check_key(key, klen);
    if (!rc && has_init)
        rc = ttl_to_ns(init_ttl, &ttl_ns);
    if (rc)
        return rc;
    uint64_t h = hash_key(d->seed, key, klen);
    shard *s = shard_of(d, h);
    tclock tc = {d, 0, 0};
    pthread_mutex_lock(&s->lock);
    entry *e = find_live(s, &tc, h, key, klen, NULL);
    if (e && e->type != GW_SHDICT_TNUMBER) {
        rc = GW_SHDICT_NOT_NUMBER;
    } else if (e) {
        e->num += delta;
        *out = e->num;
        lru_touch(s, e);
    } else if (!has_init) {
        rc = GW_SHDICT_NOT_FOUND;
    } else if (charge_of(klen, 0) > s->cap) {
        rc = GW_SHDICT_NO_MEMORY;
    } else {
        gw_shdict_val_t v = {GW_SHDICT_TNUMBER, init + delta, NULL, 0};
        rc = insert_new(s, &tc, h, key, klen, &v, ttl_ns);
        if (!rc)
            *out = v.num;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* --- window_incr: several counters in one atomic step ----------------------------------- */

typedef struct {
    shard *locked[2 * GW_SHDICT_WINDOW_MAX];
    size_t n;
} shard_set;

/* Lock the distinct shards of all keys in ascending address order (the shards are one array,
 * so every caller agrees on the order: no deadlock). */
static void lock_shards(shard_set *ss)
{
    for (size_t i = 1; i < ss->n; i++) /* insertion sort, at most 16 entries */
        for (size_t j = i; j > 0 && ss->locked[j - 1] > ss->locked[j]; j--) {
            shard *t = ss->locked[j];
            ss->locked[j] = ss->locked[j - 1];
            ss->locked[j - 1] = t;
        }
    size_t m = 0;
    for (size_t i = 0; i < ss->n; i++)
        if (m == 0 || ss->locked[m - 1] != ss->locked[i])
            ss->locked[m++] = ss->locked[i];
    ss->n = m;
    for (size_t i = 0; i < m; i++)
        pthread_mutex_lock(&ss->locked[i]->lock);
}

static void unlock_shards(shard_set *ss)
{
    for (size_t i = ss->n; i-- > 0;)
        pthread_mutex_unlock(&ss->locked[i]->lock);
}

/* The number under key (0 when absent), or NOT_NUMBER. Shard locked. */
static int read_count(gw_shdict_t *d, tclock *tc, uint64_t h, const char *key, size_t klen,
                      double *out)
{
    entry *e = find_live(shard_of(d, h), tc, h, key, klen, NULL);
    if (e && e->type != GW_SHDICT_TNUMBER)
        return GW_SHDICT_NOT_NUMBER;
    *out = e ? e->num : 0;
    return 0;
}

/* Add 1 to key, creating it with ttl_ns. Shard locked. */
static int bump(gw_shdict_t *d, tclock *tc, uint64_t h, const char *key, size_t klen,
                uint64_t ttl_ns)
{
    shard *s = shard_of(d, h);
    entry *e = find_live(s, tc, h, key, klen, NULL);
    if (e) {
        e->num += 1;
        lru_touch(s, e);
        return 0;
    }
    if (charge_of(klen, 0) > s->cap)
        return GW_SHDICT_NO_MEMORY;
    gw_shdict_val_t v = {GW_SHDICT_TNUMBER, 1, NULL, 0};
    return insert_new(s, tc, h, key, klen, &v, ttl_ns);
}

static int window_check_args(const gw_shdict_window_t *w, size_t n, uint64_t *ttl_ns)
{
    if (n == 0 || n > GW_SHDICT_WINDOW_MAX)
        return GW_SHDICT_INVALID;
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(w[i].key, w[i].klen);
        if (!rc)
            rc = check_key(w[i].prev, w[i].plen);
        if (!rc)
            rc = ttl_to_ns(w[i].ttl, &ttl_ns[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int gw_shdict_window_incr(gw_shdict_t *d, gw_shdict_window_t *w, size_t n)
{
    uint64_t ttl_ns[GW_SHDICT_WINDOW_MAX], hk[GW_SHDICT_WINDOW_MAX], hp[GW_SHDICT_WINDOW_MAX];
    int rc = window_check_args(w, n, ttl_ns);
    if (rc)
        return rc;
    shard_set ss = {.n = 0};
    for (size_t i = 0; i < n; i++) {
        hk[i] = hash_key(d->seed, w[i].key, w[i].klen);
        hp[i] = hash_key(d->seed, w[i].prev, w[i].plen);
        ss.locked[ss.n++] = shard_of(d, hk[i]);
        ss.locked[ss.n++] = shard_of(d, hp[i]);
    }
    tclock tc = {d, 0, 0};
    lock_shards(&ss);
    int admit = 1;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = read_count(d, &tc, hk[i], w[i].key, w[i].klen, &w[i].cur_count);
        if (!rc)
            rc = read_count(d, &tc, hp[i], w[i].prev, w[i].plen, &w[i].prev_count);
        if (!rc && !(w[i].prev_count * w[i].weight + w[i].cur_count + 1 <= w[i].limit))
            admit = 0;
    }
    for (size_t i = 0; i < n && !rc && admit; i++)
        rc = bump(d, &tc, hk[i], w[i].key, w[i].klen, ttl_ns[i]);
    unlock_shards(&ss);
    return rc ? rc : admit;
}

int gw_shdict_delete(gw_shdict_t *d, const char *key, size_t klen)
{
    int rc = check_key(key, klen);
    if (rc)
        return rc;
    uint64_t h = hash_key(d->seed, key, klen);
    shard *s = shard_of(d, h);
    pthread_mutex_lock(&s->lock);
    entry **pp = find_slot(s, h, key, klen);
    if (*pp)
        remove_at(s, pp);
    else
        rc = GW_SHDICT_NOT_FOUND;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Visit one shard's matching keys; returns how many were reported. */
static size_t shard_keys(shard *s, tclock *tc, const char *prefix, size_t plen, size_t left,
                         gw_shdict_key_fn fn, void *ud)
{
    size_t n = 0;
    for (size_t b = 0; b < s->nbuckets && n < left; b++) {
        for (entry *e = s->buckets[b]; e && n < left; e = e->hnext) {
            if (e->klen < plen || (plen && memcmp(e->data, prefix, plen) != 0))
                continue;
            if (expired(tc, e))
                continue;
            fn((const char *)e->data, e->klen, ud);
            n++;
        }
    }
    return n;
}

size_t gw_shdict_keys(gw_shdict_t *d, const char *prefix, size_t plen, size_t max,
                      gw_shdict_key_fn fn, void *ud)
{
    size_t n = 0;
    tclock tc = {d, 0, 0};
    if (max == 0)
        max = SIZE_MAX;
    for (unsigned i = 0; i < d->nshards && n < max; i++) {
        shard *s = &d->shards[i];
        pthread_mutex_lock(&s->lock);
        n += shard_keys(s, &tc, prefix, plen, max - n, fn, ud);
        pthread_mutex_unlock(&s->lock);
    }
    return n;
}

static size_t shard_flush(shard *s, tclock *tc, size_t left)
{
    size_t n = 0;
    for (size_t b = 0; b < s->nbuckets && n < left; b++) {
        entry **pp = &s->buckets[b];
        while (*pp && n < left) {
            if (expired(tc, *pp)) {
                remove_at(s, pp);
                n++;
            } else {
                pp = &(*pp)->hnext;
            }
        }
    }
    return n;
}

size_t gw_shdict_flush_expired(gw_shdict_t *d, size_t max)
{
    size_t n = 0;
    tclock tc = {d, 0, 0};
    if (max == 0)
        max = SIZE_MAX;
    for (unsigned i = 0; i < d->nshards && n < max; i++) {
        shard *s = &d->shards[i];
        pthread_mutex_lock(&s->lock);
        n += shard_flush(s, &tc, max - n);
        pthread_mutex_unlock(&s->lock);
    }
    return n;
}

void gw_shdict_stats(gw_shdict_t *d, gw_shdict_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->capacity_bytes = d->capacity;
    for (unsigned i = 0; i < d->nshards; i++) {
        shard *s = &d->shards[i];
        pthread_mutex_lock(&s->lock);
        st->entries += s->count;
        st->used_bytes += s->used;
        st->evictions += s->evictions;
        pthread_mutex_unlock(&s->lock);
    }
}

const char *gw_shdict_strerror(int status)
{
    switch (status) {
    case GW_SHDICT_OK: return "ok";
    case GW_SHDICT_NOT_FOUND: return "not found";
    case GW_SHDICT_EXISTS: return "exists";
    case GW_SHDICT_NO_MEMORY: return "no memory";
    case GW_SHDICT_NOT_NUMBER: return "not a number";
    case GW_SHDICT_TOO_SMALL: return "buffer too small";
    case GW_SHDICT_BAD_KEY: return "bad key";
    case GW_SHDICT_INVALID: return "invalid argument";
    case GW_SHDICT_NO_DICT: return "no shared dict";
    default: return "unknown error";
    }
}

gw_shdict_t *gw_shdict_global(void)
{
    return atomic_load_explicit(&global_dict, memory_order_acquire);
}

void gw_shdict_set_global(gw_shdict_t *d)
{
    atomic_store_explicit(&global_dict, d, memory_order_release);
}
