/*
 * pieces-gateway: metrics internals shared by the storage (metrics.c) and the scrape
 * (metrics_render.c). Not for other modules: they use metrics.h and metrics_hooks.h.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_METRICS_INT_H
#define GW_METRICS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "metrics.h"

/* A registered family: immutable once published (gw_mfamily_count), except n_series. */
typedef struct {
    char *name, *help;
    gw_mtype_t type;
    gw_magg_t agg;
    int n_labels;
    char label_names[GW_METRICS_MAX_LABELS][GW_METRICS_NAME_MAX + 1];
    int n_buckets;
    double buckets[GW_METRICS_MAX_BUCKETS];
    int computed;
    int max_series;
    int n_values;        /* doubles per series */
    atomic_int n_series; /* series created, summed over shards (for the cap) */
} mfamily_t;

/* Family id in the low 16 bits of k0, then the label ids, 16 bits each. */
typedef struct {
    uint64_t k0, k1;
} mkey_t;

/* One series of one shard. v: counter [value]; gauge [value, set sequence (agg "last")];
 * histogram [bucket counts (not cumulative) ..., +Inf count, sum]. */
typedef struct {
    mkey_t key;
    int family;
    _Atomic double v[];
} mseries_t;

typedef struct mshard_s {
    pthread_mutex_t lock; /* inserting a series (owner) and copying the shard (scrape) */
    mseries_t **slots;    /* open addressing on the key hash; load <= 1/2 */
    size_t cap, n;
    char *chunks;         /* arena chunks (first word: next chunk) */
    char *arena;
    size_t arena_left;
    struct mshard_s *next;
} mshard_t;

extern mfamily_t gw_mfamilies[GW_METRICS_MAX_FAMILIES];
extern atomic_int gw_mfamily_count;
extern double gw_metrics_start_time;

/* Calls fn for every shard with its slot array, holding that shard's lock. */
void gw_metrics_each_shard(void (*fn)(mseries_t *const *slots, size_t cap, void *ud), void *ud);
/* The key of a series, and the n label ids of a key. */
mkey_t gw_metrics_make_key(int family, const gw_mlabel_t *labels, int n);
void gw_metrics_key_labels(const mkey_t *k, gw_mlabel_t *out, int n);

#endif
