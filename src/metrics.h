/*
 * pieces-gateway: Prometheus metrics: per-thread counters, gauges and histograms merged when
 * GET /metrics is scraped.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Model. A family (name, help, type, label names, histogram buckets) is registered once per
 * process: the built-in ones by gw_metrics_init, policy ones through the Lua host
 * (host.metrics). A series is a family plus one value per label; label values are interned
 * into small ids (gw_metrics_label) once, so a series key is a pair of 64-bit words.
 *
 * Storage. Every thread that records gets its own shard (created on first use, kept until
 * gw_metrics_shutdown): a hash table of its series. Only the owning thread writes a shard's
 * values, with plain (relaxed atomic) loads and stores: no lock and no locked instruction on
 * the request path. The shard's mutex is taken by the owner only to insert a new series, and
 * by the scraper while it copies the shard. A scrape (gw_metrics_render) sums counters and
 * histograms over all shards, merges gauges by the family's aggregation (sum, max or the
 * value set last) and writes the text exposition format 0.0.4.
 *
 * Bounds. At most GW_METRICS_MAX_LABEL_IDS distinct label values per process and
 * max_series series per family (default 1000 for policy families); beyond them the value
 * becomes "other" (every label "other" for a family over its series cap), so a misbehaving
 * label can not grow memory without bound. Model labels only take names added with
 * gw_metrics_catalog_add ("other" otherwise).
 *
 * Thread-safety: every function is thread-safe. Recording functions are no-ops when metrics
 * are disabled (gw_metrics_init(0)).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define GW_METRICS_MAX_LABELS 7
#define GW_METRICS_MAX_FAMILIES 256
#define GW_METRICS_MAX_BUCKETS 30
#define GW_METRICS_MAX_LABEL_IDS 8192
#define GW_METRICS_NAME_MAX 100       /* metric and label names, bytes */
#define GW_METRICS_VALUE_MAX 128      /* label values, bytes */

typedef uint16_t gw_mlabel_t;
/* Label values with fixed ids (interned first, in this order), so the request path does not
 * look them up: "", "other", "true", "false", "prompt", "completion", "tokenizer",
 * "upstream", the methods, the upstream attempt results (metrics_hooks.h order), and every
 * status "100".."599" (GW_ML_STATUS). */
enum {
    GW_ML_EMPTY,
    GW_ML_OTHER,
    GW_ML_TRUE,
    GW_ML_FALSE,
    GW_ML_PROMPT,
    GW_ML_COMPLETION,
    GW_ML_TOKENIZER,
    GW_ML_UPSTREAM,
    GW_ML_GET,
    GW_ML_HEAD,
    GW_ML_POST,
    GW_ML_PUT,
    GW_ML_DELETE,
    GW_ML_OPTIONS,
    GW_ML_PATCH,
    GW_ML_RESULT_FIRST, /* 7 results: ok, retry, fallback, unreachable, timeout, ... */
    GW_ML_STATUS_FIRST = GW_ML_RESULT_FIRST + 7,
    GW_ML_RESERVED = GW_ML_STATUS_FIRST + 500
};
#define GW_ML_STATUS(s) ((gw_mlabel_t)(GW_ML_STATUS_FIRST + (s) - 100))

typedef enum { GW_MT_COUNTER, GW_MT_GAUGE, GW_MT_HISTOGRAM } gw_mtype_t;
typedef enum { GW_MA_SUM, GW_MA_MAX, GW_MA_LAST } gw_magg_t;

/* A family definition. Strings are copied by gw_metrics_register. */
typedef struct {
    const char *name;
    const char *help;
    gw_mtype_t type;
    gw_magg_t agg;          /* gauges: how per-thread values merge; counters/histograms sum */
    const char *labels;     /* label names, comma-separated; "" = none */
    const double *buckets;  /* histograms: ascending upper bounds (+Inf is implicit) */
    int n_buckets;
    int computed;           /* built-in: the value is computed at scrape time, not stored */
    int max_series;         /* 0 = the default (1000; 20000 for built-in families) */
} gw_mfamily_def_t;

/* The built-in families, in exposition order (their ids). */
enum {
    GW_MF_HTTP_REQUESTS,
    GW_MF_HTTP_DURATION,
    GW_MF_HTTP_CONNECTIONS,
    GW_MF_LLM_REQUESTS,
    GW_MF_LLM_TTFT,
    GW_MF_LLM_DURATION,
    GW_MF_LLM_TPOT,
    GW_MF_LLM_TOKENS,
    GW_MF_LLM_USAGE_SOURCE,
    GW_MF_LLM_ACTIVE_STREAMS,
    GW_MF_UPSTREAM_ATTEMPTS,
    GW_MF_UPSTREAM_CONNECTIONS,
    GW_MF_UPSTREAM_BREAKER_OPEN,
    GW_MF_RATELIMIT_REJECTIONS,
    GW_MF_BANS_ACTIVE,
    GW_MF_BANS_ADDED,
    GW_MF_POLICY_ERRORS,
    GW_MF_RELOADS,
    GW_MF_CONFIG_VERSION,
    GW_MF_BUILD_INFO,
    GW_MF_PROCESS_START,
    GW_MF_PROCESS_RSS,
    GW_MF_BUILTIN_COUNT
};

/* Registers the built-in families and sets whether anything is recorded. Call once before
 * the workers start (a second call only changes `enabled`). */
void gw_metrics_init(int enabled);
int gw_metrics_enabled(void);
/* Frees every shard, family and label (tests; after all threads stopped recording). */
void gw_metrics_shutdown(void);

/* Registers a family, or finds the one registered under that name before: the id (>= 0).
 * A name already registered with another type, label names, buckets or aggregation, a bad
 * name, a counter without "_total", too many labels or buckets, or a full registry: negative,
 * with *err (caller frees). */
int gw_metrics_register(const gw_mfamily_def_t *def, char **err);
/* Number of label names of a family (-1 for an unknown id). */
int gw_metrics_family_labels(int family);

/* The id of a label value (interned for the process lifetime). Values that are too long, not
 * UTF-8, or beyond the id capacity become GW_ML_OTHER. */
gw_mlabel_t gw_metrics_label(const char *s, size_t n);
/* The text of a label id (borrowed, NUL-terminated, valid until gw_metrics_shutdown). */
const char *gw_metrics_label_text(gw_mlabel_t id);
/* Adds a model name to the catalog that bounds the model label. */
void gw_metrics_catalog_add(const char *name, size_t n);
/* The model label of a name: the name when it is in the catalog, "other" otherwise
 * ("" stays empty). */
gw_mlabel_t gw_metrics_model_label(const char *name, size_t n);

/* Record into the calling thread's shard; labels has one id per label name of the family.
 * add: counters (v >= 0) and gauges; set: gauges; observe: histograms. A call that does not
 * fit the family's type is ignored. */
void gw_metrics_add(int family, const gw_mlabel_t *labels, double v);
void gw_metrics_set(int family, const gw_mlabel_t *labels, double v);
void gw_metrics_observe(int family, const gw_mlabel_t *labels, double v);

/* Value-level reads for tests: the merged value of one series (counter or gauge), or the
 * count of a histogram series; 0 when absent. */
double gw_metrics_read(int family, const gw_mlabel_t *labels);

/* Appends the whole exposition (text format 0.0.4) to out. */
void gw_metrics_render(gw_buf_t *out);

#endif
