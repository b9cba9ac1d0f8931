/*
 * pieces-gateway: metrics storage: the family registry, interned label values and the
 * per-thread shards that record series.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_metrics_init/register/label/add/set/observe (metrics.h). Uses: pthreads, C11
 * atomics. Never: takes a lock or executes a locked instruction when recording into a series
 * that exists (only inserting a new series locks the thread's own shard), or lets a series
 * move or disappear while the process records (series live in per-shard arenas).
 *
 * The registry and the label table are append-only arrays published with release stores of
 * their counts, so readers never lock. Writers (new family, new label value) hold reg_lock.
 */
#include "metrics_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

/* ---------- built-in families ---------- */

static const double LAT[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30,
                             60, 120};
static const double TPOT[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
                              0.25, 0.5, 1};
#define B(a) a, (int)GW_ARRAY_SIZE(a)

/* One entry per line: spec/lua/contract_spec.lua reads this table. */
static const gw_mfamily_def_t builtins[GW_MF_BUILTIN_COUNT] = {
    {"gateway_http_requests_total", "HTTP requests answered, by route, method and status.",
     GW_MT_COUNTER, GW_MA_SUM, "route,method,status", NULL, 0, 0, 0},
    {"gateway_http_request_duration_seconds", "Time from request accepted to response done.",
     GW_MT_HISTOGRAM, GW_MA_SUM, "route", B(LAT), 0, 0},
    {"gateway_http_connections", "Open client connections.",
     GW_MT_GAUGE, GW_MA_SUM, "", NULL, 0, 1, 0},
    {"gateway_llm_requests_total", "LLM requests answered, by model, backend, stream, status.",
     GW_MT_COUNTER, GW_MA_SUM, "model,backend,stream,status", NULL, 0, 0, 0},
    {"gateway_llm_time_to_first_token_seconds", "Streams: request accepted to first content.",
     GW_MT_HISTOGRAM, GW_MA_SUM, "model,backend", B(LAT), 0, 0},
    {"gateway_llm_request_duration_seconds", "LLM requests: accepted to answer complete.",
     GW_MT_HISTOGRAM, GW_MA_SUM, "model,backend,stream", B(LAT), 0, 0},
    {"gateway_llm_time_per_output_token_seconds", "Streams: time per token after the first.",
     GW_MT_HISTOGRAM, GW_MA_SUM, "model,backend", B(TPOT), 0, 0},
    {"gateway_llm_tokens_total", "Tokens in the usage sent to clients, by type.",
     GW_MT_COUNTER, GW_MA_SUM, "model,backend,type", NULL, 0, 0, 0},
    {"gateway_llm_usage_source_total", "Answers with usage, by where the numbers came from.",
     GW_MT_COUNTER, GW_MA_SUM, "source", NULL, 0, 0, 0},
    {"gateway_llm_active_streams", "LLM streams in progress.",
     GW_MT_GAUGE, GW_MA_SUM, "", NULL, 0, 0, 0},
    {"gateway_upstream_attempts_total", "Upstream attempts, by backend and result.",
     GW_MT_COUNTER, GW_MA_SUM, "backend,result", NULL, 0, 0, 0},
    {"gateway_upstream_connections", "Upstream connections, by backend and state.",
     GW_MT_GAUGE, GW_MA_SUM, "backend,state", NULL, 0, 0, 0},
    {"gateway_upstream_breaker_open", "1 while the circuit breaker of a backend is open.",
     GW_MT_GAUGE, GW_MA_LAST, "backend", NULL, 0, 0, 0},
    {"gateway_ratelimit_rejections_total", "Requests rejected by a rate limit rule.",
     GW_MT_COUNTER, GW_MA_SUM, "rule", NULL, 0, 0, 0},
    {"gateway_bans_active", "IPs and subnets banned.",
     GW_MT_GAUGE, GW_MA_LAST, "", NULL, 0, 0, 0},
    {"gateway_bans_added_total", "Automatic bans, by blacklist mode.",
     GW_MT_COUNTER, GW_MA_SUM, "mode", NULL, 0, 0, 0},
    {"gateway_policy_errors_total", "Errors raised by policies, by policy and phase.",
     GW_MT_COUNTER, GW_MA_SUM, "policy,phase", NULL, 0, 0, 0},
    {"gateway_reloads_total", "Policy reloads, by result.",
     GW_MT_COUNTER, GW_MA_SUM, "result", NULL, 0, 0, 0},
    {"gateway_config_version", "Configuration version (1 at start, +1 per reload).",
     GW_MT_GAUGE, GW_MA_SUM, "", NULL, 0, 1, 0},
    {"gateway_build_info", "Always 1; the version of the running binary as a label.",
     GW_MT_GAUGE, GW_MA_SUM, "version", NULL, 0, 1, 0},
    {"process_start_time_seconds", "Start time of the process since the Unix epoch.",
     GW_MT_GAUGE, GW_MA_SUM, "", NULL, 0, 1, 0},
    {"process_resident_memory_bytes", "Resident memory size in bytes.",
     GW_MT_GAUGE, GW_MA_SUM, "", NULL, 0, 1, 0},
};

/* ---------- global state ---------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int metrics_on;
static int initialised;
double gw_metrics_start_time;

mfamily_t gw_mfamilies[GW_METRICS_MAX_FAMILIES];
atomic_int gw_mfamily_count;

/* label values: id -> text; slots: open addressing over the hash, id + 1 (0 = empty) */
#define LABEL_SLOTS (2 * GW_METRICS_MAX_LABEL_IDS)
static char *label_text[GW_METRICS_MAX_LABEL_IDS];
static uint32_t label_len[GW_METRICS_MAX_LABEL_IDS];
static atomic_uint label_slot[LABEL_SLOTS];
static atomic_int label_count;
static atomic_uchar catalog[GW_METRICS_MAX_LABEL_IDS];

static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static mshard_t *shards;
static __thread mshard_t *my_shard;
static atomic_ullong gw_mset_seq; /* order of gauge sets, for the "last" aggregation */

int gw_metrics_enabled(void) { return atomic_load_explicit(&metrics_on, memory_order_relaxed); }

/* ---------- label values ---------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int find_label(const char *s, size_t n, uint32_t h, size_t *slot)
{
    for (size_t i = h & (LABEL_SLOTS - 1);; i = (i + 1) & (LABEL_SLOTS - 1)) {
        unsigned v = atomic_load_explicit(&label_slot[i], memory_order_acquire);
        if (v == 0) {
            *slot = i;
            return -1;
        }
        if (label_len[v - 1] == n && memcmp(label_text[v - 1], s, n) == 0)
            return (int)v - 1;
    }
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n || c == 0 || (k == 2 && c < 0xc2) || (k == 4 && c > 0xf4))
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

static int insert_label_locked(const char *s, size_t n, uint32_t h)
{
    size_t slot;
    int id = find_label(s, n, h, &slot);
    if (id >= 0)
        return id;
    id = atomic_load_explicit(&label_count, memory_order_relaxed);
    if (id >= GW_METRICS_MAX_LABEL_IDS)
        return GW_ML_OTHER;
    label_text[id] = gw_strndup(s, n);
    label_len[id] = (uint32_t)n;
    atomic_store_explicit(&label_count, id + 1, memory_order_release);
    atomic_store_explicit(&label_slot[slot], (unsigned)id + 1, memory_order_release);
    return id;
}

/* The values with fixed ids (metrics.h), in id order. */
static void reserve_locked(void)
{
    static const char *fixed[] = {"",       "other",   "true",       "false",       "prompt",
                                  "completion", "tokenizer", "upstream", "GET",     "HEAD",
                                  "POST",   "PUT",     "DELETE",     "OPTIONS",     "PATCH",
                                  "ok",     "retry",   "fallback",   "unreachable", "timeout",
                                  "bad_answer", "refused"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(fixed); i++)
        insert_label_locked(fixed[i], strlen(fixed[i]), hash_bytes(fixed[i], strlen(fixed[i])));
    char st[12];
    for (int code = 100; code < 600; code++) {
        snprintf(st, sizeof(st), "%d", code);
        insert_label_locked(st, 3, hash_bytes(st, 3));
    }
}

static gw_mlabel_t add_label(const char *s, size_t n, uint32_t h)
{
    pthread_mutex_lock(&reg_lock);
    if (atomic_load_explicit(&label_count, memory_order_relaxed) == 0)
        reserve_locked();
    int id = insert_label_locked(s, n, h);
    pthread_mutex_unlock(&reg_lock);
    return (gw_mlabel_t)id;
}

gw_mlabel_t gw_metrics_label(const char *s, size_t n)
{
    uint32_t h = hash_bytes(s, n);
    size_t slot;
    int id = find_label(s, n, h, &slot);
    if (id >= 0)
        return (gw_mlabel_t)id;
    if (n > GW_METRICS_VALUE_MAX || !valid_utf8((const unsigned char *)s, n))
        return GW_ML_OTHER;
    return add_label(s, n, h);
}

const char *gw_metrics_label_text(gw_mlabel_t id)
{
    if ((int)id >= atomic_load_explicit(&label_count, memory_order_acquire))
        return "other";
    return label_text[id];
}

void gw_metrics_catalog_add(const char *name, size_t n)
{
    gw_mlabel_t id = gw_metrics_label(name, n);
    if (id != GW_ML_OTHER && id != GW_ML_EMPTY)
        atomic_store_explicit(&catalog[id], 1, memory_order_relaxed);
}

gw_mlabel_t gw_metrics_model_label(const char *name, size_t n)
{
    if (n == 0)
        return GW_ML_EMPTY;
    gw_mlabel_t id = gw_metrics_label(name, n);
    return atomic_load_explicit(&catalog[id], memory_order_relaxed) ? id : GW_ML_OTHER;
}

/* ---------- the family registry ---------- */

static int valid_name(const char *s, size_t n, int colon)
{
    if (n == 0 || n > GW_METRICS_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return 0;
    }
    return 1;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Splits def->labels into f; a message on a bad list. */
static const char *parse_labels(const char *list, mfamily_t *f)
{
    f->n_labels = 0;
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (f->n_labels == GW_METRICS_MAX_LABELS)
            return "too many labels (at most 7)";
        if (!valid_name(p, n, 0) || (n >= 2 && p[0] == '_' && p[1] == '_') ||
            (n == 2 && memcmp(p, "le", 2) == 0))
            return "invalid label name (letters, digits and _; not le or __*)";
        memcpy(f->label_names[f->n_labels], p, n);
        f->label_names[f->n_labels][n] = '\0';
        for (int i = 0; i < f->n_labels; i++)
            if (strcmp(f->label_names[i], f->label_names[f->n_labels]) == 0)
                return "label names repeat";
        f->n_labels++;
        p += n + (e ? 1 : 0);
    }
    return NULL;
}

static const char *check_def(const gw_mfamily_def_t *d, mfamily_t *f)
{
    if (!d->name || !valid_name(d->name, strlen(d->name), 1))
        return "invalid metric name (letters, digits, _ and :, not starting with a digit)";
    if (d->type == GW_MT_COUNTER && !has_suffix(d->name, "_total"))
        return "a counter's name must end with _total";
    if (d->type != GW_MT_COUNTER && has_suffix(d->name, "_total"))
        return "only counters end with _total";
    if (d->type == GW_MT_HISTOGRAM &&
        (has_suffix(d->name, "_bucket") || has_suffix(d->name, "_count") ||
         has_suffix(d->name, "_sum")))
        return "a histogram's name must not end with _bucket, _count or _sum";
    const char *m = parse_labels(d->labels, f);
    if (m)
        return m;
    if (d->type != GW_MT_HISTOGRAM)
        return d->n_buckets ? "only histograms have buckets" : NULL;
    if (d->n_buckets < 1 || d->n_buckets > GW_METRICS_MAX_BUCKETS)
        return "a histogram needs 1 to 30 buckets";
    for (int i = 0; i < d->n_buckets; i++)
        if (!isfinite(d->buckets[i]) || (i > 0 && d->buckets[i] <= d->buckets[i - 1]))
            return "buckets must be finite and strictly increasing";
    for (int i = 0; i < f->n_labels; i++)
        if (strcmp(f->label_names[i], "le") == 0)
            return "a histogram can not have a label le";
    return NULL;
}

static int same_def(const mfamily_t *a, const mfamily_t *b)
{
    if (a->type != b->type || a->agg != b->agg || a->n_labels != b->n_labels ||
        a->n_buckets != b->n_buckets)
        return 0;
    for (int i = 0; i < a->n_labels; i++)
        if (strcmp(a->label_names[i], b->label_names[i]) != 0)
            return 0;
    for (int i = 0; i < a->n_buckets; i++)
        if (a->buckets[i] != b->buckets[i])
            return 0;
    return 1;
}

static int find_family(const char *name)
{
    int n = atomic_load_explicit(&gw_mfamily_count, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(gw_mfamilies[i].name, name) == 0)
            return i;
    return -1;
}

/* Everything of a family but its strings (so a definition can be compared first). */
static void init_family(mfamily_t *f, const gw_mfamily_def_t *d)
{
    f->type = d->type;
    f->agg = d->type == GW_MT_GAUGE ? d->agg : GW_MA_SUM;
    f->n_buckets = d->type == GW_MT_HISTOGRAM ? d->n_buckets : 0;
    for (int i = 0; i < f->n_buckets; i++)
        f->buckets[i] = d->buckets[i];
    f->computed = d->computed;
    f->max_series = d->max_series > 0 ? d->max_series : 1000;
    f->n_values = f->type == GW_MT_HISTOGRAM ? f->n_buckets + 2 : f->type == GW_MT_GAUGE ? 2 : 1;
}

static int register_locked(const gw_mfamily_def_t *def, char **err)
{
    mfamily_t f;
    memset(&f, 0, sizeof(f));
    const char *m = check_def(def, &f);
    if (m) {
        *err = gw_sprintf("metric %s: %s", def->name ? def->name : "(no name)", m);
        return GW_EINVAL;
    }
    init_family(&f, def);
    int id = find_family(def->name);
    if (id >= 0) {
        if (same_def(&gw_mfamilies[id], &f))
            return id;
        *err = gw_sprintf("metric %s is already registered with another type, labels, buckets "
                          "or aggregation (a change needs a restart)",
                          def->name);
        return GW_EEXIST;
    }
    id = atomic_load_explicit(&gw_mfamily_count, memory_order_relaxed);
    if (id >= GW_METRICS_MAX_FAMILIES) {
        *err = gw_sprintf("metric %s: too many metric families (at most %d)", def->name,
                          GW_METRICS_MAX_FAMILIES);
        return GW_EAGAIN;
    }
    f.name = gw_strdup(def->name);
    f.help = gw_strdup(def->help ? def->help : "");
    gw_mfamilies[id] = f;
    atomic_store_explicit(&gw_mfamily_count, id + 1, memory_order_release);
    return id;
}

int gw_metrics_register(const gw_mfamily_def_t *def, char **err)
{
    pthread_mutex_lock(&reg_lock);
    int rc = register_locked(def, err);
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

int gw_metrics_family_labels(int family)
{
    if (family < 0 || family >= atomic_load_explicit(&gw_mfamily_count, memory_order_acquire))
        return -1;
    return gw_mfamilies[family].n_labels;
}

void gw_metrics_init(int enabled)
{
    atomic_store(&metrics_on, enabled ? 1 : 0);
    pthread_mutex_lock(&reg_lock);
    int first = !initialised;
    initialised = 1;
    pthread_mutex_unlock(&reg_lock);
    if (!first)
        return;
    gw_metrics_start_time = gw_wall_time();
    gw_metrics_label("other", 5); /* the first insert reserves the fixed ids */
    for (int i = 0; i < GW_MF_BUILTIN_COUNT; i++) {
        gw_mfamily_def_t d = builtins[i];
        d.max_series = 20000;
        char *err = NULL;
        if (gw_metrics_register(&d, &err) != i) {
            fprintf(stderr, "pieces-gateway: built-in metric: %s\n", err ? err : "bad id");
            abort();
        }
    }
}

/* ---------- shards ---------- */

static uint64_t key_hash(const mkey_t *k)
{
    uint64_t h = k->k0 * 0x9E3779B97F4A7C15ull ^ (k->k1 + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static mshard_t *shard_new(void)
{
    mshard_t *s = gw_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->cap = 64;
    s->slots = gw_calloc(s->cap, sizeof(*s->slots));
    pthread_mutex_lock(&shards_lock);
    s->next = shards;
    shards = s;
    pthread_mutex_unlock(&shards_lock);
    return s;
}

static inline mshard_t *shard(void)
{
    mshard_t *s = my_shard;
    if (__builtin_expect(s == NULL, 0))
        s = my_shard = shard_new();
    return s;
}

static void *arena_alloc(mshard_t *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > s->arena_left) {
        size_t size = n + 16 > 16384 ? n + 16 : 16384;
        char *chunk = gw_calloc(1, size);
        *(char **)chunk = s->chunks;
        s->chunks = chunk;
        s->arena = chunk + 16;
        s->arena_left = size - 16;
    }
    void *p = s->arena;
    s->arena += n;
    s->arena_left -= n;
    return p;
}

static void grow(mshard_t *s)
{
    size_t cap = s->cap * 2;
    mseries_t **slots = gw_calloc(cap, sizeof(*slots));
    for (size_t i = 0; i < s->cap; i++) {
        mseries_t *e = s->slots[i];
        if (!e)
            continue;
        size_t j = key_hash(&e->key) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
}

mkey_t gw_metrics_make_key(int family, const gw_mlabel_t *l, int n)
{
    gw_mlabel_t v[GW_METRICS_MAX_LABELS] = {0};
    if (n > 0)
        memcpy(v, l, (size_t)n * sizeof(*l));
    return (mkey_t){(uint64_t)(uint16_t)family | (uint64_t)v[0] << 16 | (uint64_t)v[1] << 32 |
                        (uint64_t)v[2] << 48,
                    (uint64_t)v[3] | (uint64_t)v[4] << 16 | (uint64_t)v[5] << 32 |
                        (uint64_t)v[6] << 48};
}

static mseries_t *insert(mshard_t *s, const mkey_t *k, int family)
{
    mfamily_t *f = &gw_mfamilies[family];
    pthread_mutex_lock(&s->lock);
    if ((s->n + 1) * 2 > s->cap)
        grow(s);
    mseries_t *e = arena_alloc(s, sizeof(*e) + (size_t)f->n_values * sizeof(e->v[0]));
    e->key = *k;
    e->family = family;
    size_t j = key_hash(k) & (s->cap - 1);
    while (s->slots[j])
        j = (j + 1) & (s->cap - 1);
    s->slots[j] = e;
    s->n++;
    pthread_mutex_unlock(&s->lock);
    return e;
}

static mseries_t *find(mshard_t *s, int family, const gw_mlabel_t *labels, int n)
{
    mkey_t k = gw_metrics_make_key(family, labels, n);
    for (size_t i = key_hash(&k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        mseries_t *e = s->slots[i];
        if (!e)
            break;
        if (e->key.k0 == k.k0 && e->key.k1 == k.k1)
            return e;
    }
    mfamily_t *f = &gw_mfamilies[family];
    if (atomic_fetch_add_explicit(&f->n_series, 1, memory_order_relaxed) >= f->max_series) {
        atomic_fetch_sub_explicit(&f->n_series, 1, memory_order_relaxed);
        gw_mlabel_t other[GW_METRICS_MAX_LABELS];
        int all_other = 1;
        for (int i = 0; i < n; i++) {
            all_other &= labels[i] == GW_ML_OTHER;
            other[i] = GW_ML_OTHER;
        }
        if (!all_other)
            return find(s, family, other, n);
    }
    return insert(s, &k, family);
}

/* The family behind an id, or NULL (metrics off, unknown id, computed at scrape time). */
static mfamily_t *family_of(int family)
{
    if (!gw_metrics_enabled() || family < 0 ||
        family >= atomic_load_explicit(&gw_mfamily_count, memory_order_acquire))
        return NULL;
    mfamily_t *f = &gw_mfamilies[family];
    return f->computed ? NULL : f;
}

static inline void bump(_Atomic double *p, double v)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void gw_metrics_add(int family, const gw_mlabel_t *labels, double v)
{
    mfamily_t *f = family_of(family);
    if (!f || !isfinite(v) || f->type == GW_MT_HISTOGRAM || (f->type == GW_MT_COUNTER && v < 0))
        return; /* counters only go up */
    bump(&find(shard(), family, labels, f->n_labels)->v[0], v);
}

void gw_metrics_set(int family, const gw_mlabel_t *labels, double v)
{
    mfamily_t *f = family_of(family);
    if (!f || f->type != GW_MT_GAUGE || isnan(v))
        return;
    mseries_t *e = find(shard(), family, labels, f->n_labels);
    atomic_store_explicit(&e->v[0], v, memory_order_relaxed);
    if (f->agg == GW_MA_LAST) /* rare (a gauge set from a policy): a locked increment is fine */
        atomic_store_explicit(&e->v[1], (double)(atomic_fetch_add(&gw_mset_seq, 1) + 1),
                              memory_order_relaxed);
}

void gw_metrics_observe(int family, const gw_mlabel_t *labels, double v)
{
    mfamily_t *f = family_of(family);
    if (!f || f->type != GW_MT_HISTOGRAM || isnan(v))
        return;
    mseries_t *e = find(shard(), family, labels, f->n_labels);
    int i = 0;
    while (i < f->n_buckets && v > f->buckets[i])
        i++;
    bump(&e->v[i], 1);
    bump(&e->v[f->n_buckets + 1], v);
}

/* ---------- reading (scrape) ---------- */

void gw_metrics_each_shard(void (*fn)(mseries_t *const *slots, size_t cap, void *ud), void *ud)
{
    pthread_mutex_lock(&shards_lock);
    for (mshard_t *s = shards; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        fn(s->slots, s->cap, ud);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&shards_lock);
}

void gw_metrics_key_labels(const mkey_t *k, gw_mlabel_t *out, int n)
{
    uint64_t w[2] = {k->k0, k->k1};
    for (int i = 0; i < n; i++) {
        int pos = i + 1;
        out[i] = (gw_mlabel_t)(w[pos / 4] >> (16 * (pos % 4)));
    }
}

void gw_metrics_shutdown(void)
{
    pthread_mutex_lock(&shards_lock);
    for (mshard_t *s = shards, *next; s; s = next) {
        next = s->next;
        for (char *c = s->chunks, *cn; c; c = cn) {
            cn = *(char **)c;
            free(c);
        }
        free(s->slots);
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
    shards = NULL;
    my_shard = NULL; /* other threads' pointers are stale: they must have stopped */
    pthread_mutex_unlock(&shards_lock);
    pthread_mutex_lock(&reg_lock);
    int nf = atomic_load(&gw_mfamily_count);
    for (int i = 0; i < nf; i++) {
        free(gw_mfamilies[i].name);
        free(gw_mfamilies[i].help);
    }
    memset(gw_mfamilies, 0, sizeof(gw_mfamilies));
    atomic_store(&gw_mfamily_count, 0);
    int nl = atomic_load(&label_count);
    for (int i = 0; i < nl; i++)
        free(label_text[i]);
    memset(label_slot, 0, sizeof(label_slot));
    memset(catalog, 0, sizeof(catalog));
    atomic_store(&label_count, 0);
    initialised = 0;
    pthread_mutex_unlock(&reg_lock);
}
