/*
 * pieces-gateway: the metrics scrape: merge every shard, write the text exposition format.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_metrics_render, gw_metrics_read. Uses: metrics.c (shards, registry), http (open
 * connections), process (config version). Never: holds a shard's lock longer than it takes
 * to copy that shard (formatting happens after every lock is released).
 *
 * Output (https://prometheus.io/docs/instrumenting/exposition_formats/, version 0.0.4): every
 * family in registration order with # HELP and # TYPE, its series sorted by label values;
 * histograms as cumulative _bucket{le=...} lines, +Inf, _sum and _count. A family without
 * labels and without samples shows 0 (a histogram: empty buckets).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "metrics_int.h"
#include "process.h"

size_t gw_http_open_connections(void);

typedef struct {
    mkey_t key;
    int family;
    size_t off;  /* first value in merge_t.vals */
    double seq;  /* gauges merged by "last": the sequence of the value kept */
} mrow_t;

typedef struct {
    mrow_t *rows;
    size_t n, cap;
    size_t *slots; /* row index + 1, open addressing */
    size_t scap;
    double *vals;
    size_t nv, vcap;
} merge_t;

static uint64_t row_hash(const mkey_t *k)
{
    uint64_t h = (k->k0 ^ (k->k1 * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

static void merge_grow(merge_t *m)
{
    size_t scap = m->scap ? m->scap * 2 : 256;
    size_t *slots = gw_calloc(scap, sizeof(*slots));
    for (size_t i = 0; i < m->n; i++) {
        size_t j = row_hash(&m->rows[i].key) & (scap - 1);
        while (slots[j])
            j = (j + 1) & (scap - 1);
        slots[j] = i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->scap = scap;
}

/* The row of key (created with zero values), and whether it was new. */
static mrow_t *merge_row(merge_t *m, const mkey_t *k, int family, int *created)
{
    if ((m->n + 1) * 2 > m->scap)
        merge_grow(m);
    size_t j = row_hash(k) & (m->scap - 1);
    for (; m->slots[j]; j = (j + 1) & (m->scap - 1)) {
        mrow_t *r = &m->rows[m->slots[j] - 1];
        if (r->key.k0 == k->k0 && r->key.k1 == k->k1) {
            *created = 0;
            return r;
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->rows = gw_realloc(m->rows, m->cap * sizeof(*m->rows));
    }
    int nv = gw_mfamilies[family].n_values;
    if (m->nv + (size_t)nv > m->vcap) {
        m->vcap = (m->vcap + (size_t)nv) * 2;
        m->vals = gw_realloc(m->vals, m->vcap * sizeof(*m->vals));
    }
    mrow_t *r = &m->rows[m->n];
    *r = (mrow_t){*k, family, m->nv, -1};
    memset(m->vals + m->nv, 0, (size_t)nv * sizeof(double));
    m->nv += (size_t)nv;
    m->slots[j] = ++m->n;
    *created = 1;
    return r;
}

static void merge_series(merge_t *m, mseries_t *e)
{
    const mfamily_t *f = &gw_mfamilies[e->family];
    int created;
    mrow_t *r = merge_row(m, &e->key, e->family, &created);
    double *v = m->vals + r->off;
    if (f->type != GW_MT_GAUGE || f->agg == GW_MA_SUM) {
        for (int i = 0; i < f->n_values; i++)
            v[i] += atomic_load_explicit(&e->v[i], memory_order_relaxed);
        return;
    }
    double x = atomic_load_explicit(&e->v[0], memory_order_relaxed);
    double seq = atomic_load_explicit(&e->v[1], memory_order_relaxed);
    if (f->agg == GW_MA_MAX && (created || x > v[0]))
        v[0] = x;
    if (f->agg == GW_MA_LAST && seq > r->seq) { /* never set: seq 0, still beats -1 */
        v[0] = x;
        r->seq = seq;
    }
}

static void merge_shard(mseries_t *const *slots, size_t cap, void *ud)
{
    for (size_t i = 0; i < cap; i++)
        if (slots[i])
            merge_series(ud, slots[i]);
}

static void merge_dispose(merge_t *m)
{
    free(m->rows);
    free(m->slots);
    free(m->vals);
}

/* ---------- order ---------- */

static int cmp_rows(const void *pa, const void *pb)
{
    const mrow_t *a = pa, *b = pb;
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int n = gw_mfamilies[a->family].n_labels;
    gw_mlabel_t la[GW_METRICS_MAX_LABELS], lb[GW_METRICS_MAX_LABELS];
    gw_metrics_key_labels(&a->key, la, n);
    gw_metrics_key_labels(&b->key, lb, n);
    for (int i = 0; i < n; i++) {
        if (la[i] == lb[i])
            continue;
        int c = strcmp(gw_metrics_label_text(la[i]), gw_metrics_label_text(lb[i]));
        if (c)
            return c;
    }
    return 0;
}

/* ---------- text ---------- */

static void put_num(gw_buf_t *b, double v)
{
    if (isnan(v))
        return gw_buf_puts(b, "NaN");
    if (isinf(v))
        return gw_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        if (v < 0)
            gw_buf_putc(b, '-');
        return gw_buf_put_uint(b, (unsigned long long)fabs(v));
    }
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    gw_buf_puts(b, tmp);
}

/* HELP text: \ and newline escaped; label values: also ". */
static void put_escaped(gw_buf_t *b, const char *s, int quote)
{
    size_t n = strcspn(s, quote ? "\\\n\"" : "\\\n");
    gw_buf_append(b, s, n); /* the common case: nothing to escape */
    for (s += n; *s; s++) {
        if (*s == '\\')
            gw_buf_puts(b, "\\\\");
        else if (*s == '\n')
            gw_buf_puts(b, "\\n");
        else if (quote && *s == '"')
            gw_buf_puts(b, "\\\"");
        else
            gw_buf_putc(b, *s);
    }
}

/* a="x",b="y" (no braces) into out: written once per series, reused by its lines. */
static void label_set(gw_buf_t *out, const mfamily_t *f, const gw_mlabel_t *l)
{
    gw_buf_reset(out);
    for (int i = 0; i < f->n_labels; i++) {
        if (i)
            gw_buf_putc(out, ',');
        gw_buf_puts(out, f->label_names[i]);
        gw_buf_puts(out, "=\"");
        put_escaped(out, gw_metrics_label_text(l[i]), 1);
        gw_buf_putc(out, '"');
    }
}

/* name<suffix>{labels[,le="<le>"]} value */
static void put_sample(gw_buf_t *b, const mfamily_t *f, const char *suffix, const gw_buf_t *ls,
                       const char *le, double v)
{
    gw_buf_puts(b, f->name);
    gw_buf_puts(b, suffix);
    if (ls->len || le) {
        gw_buf_putc(b, '{');
        gw_buf_append(b, ls->data, ls->len);
        if (le) {
            gw_buf_puts(b, ls->len ? ",le=\"" : "le=\"");
            gw_buf_puts(b, le);
            gw_buf_putc(b, '"');
        }
        gw_buf_putc(b, '}');
    }
    gw_buf_putc(b, ' ');
    put_num(b, v);
    gw_buf_putc(b, '\n');
}

/* The le="..." texts of a family's buckets (+Inf last). */
typedef struct {
    char text[GW_METRICS_MAX_BUCKETS + 1][32];
} bounds_t;

static void bounds_of(const mfamily_t *f, bounds_t *out)
{
    gw_buf_t t;
    gw_buf_init(&t);
    for (int i = 0; i < f->n_buckets; i++) {
        gw_buf_reset(&t);
        put_num(&t, f->buckets[i]);
        snprintf(out->text[i], sizeof(out->text[i]), "%s", t.data);
    }
    snprintf(out->text[f->n_buckets], sizeof(out->text[0]), "+Inf");
    gw_buf_dispose(&t);
}

static void put_series(gw_buf_t *b, const mfamily_t *f, const gw_buf_t *ls, const bounds_t *bd,
                       const double *v)
{
    if (f->type != GW_MT_HISTOGRAM)
        return put_sample(b, f, "", ls, NULL, v[0]);
    double cum = 0;
    for (int i = 0; i <= f->n_buckets; i++) {
        cum += v[i];
        put_sample(b, f, "_bucket", ls, bd->text[i], cum);
    }
    put_sample(b, f, "_sum", ls, NULL, v[f->n_buckets + 1]);
    put_sample(b, f, "_count", ls, NULL, cum);
}

static double resident_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (fp) {
        if (fscanf(fp, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(fp);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static void put_computed(gw_buf_t *b, int id, const mfamily_t *f, gw_buf_t *ls)
{
    gw_mlabel_t l[1] = {0};
    double v = 0;
    switch (id) {
    case GW_MF_HTTP_CONNECTIONS: v = (double)gw_http_open_connections(); break;
    case GW_MF_CONFIG_VERSION: v = (double)gw_config_version(); break;
    case GW_MF_BUILD_INFO:
        l[0] = gw_metrics_label(gw_version, strlen(gw_version));
        v = 1;
        break;
    case GW_MF_PROCESS_START: v = gw_metrics_start_time; break;
    case GW_MF_PROCESS_RSS: v = resident_bytes(); break;
    default: return;
    }
    label_set(ls, f, l);
    put_sample(b, f, "", ls, NULL, v);
}

static void put_family_head(gw_buf_t *b, const mfamily_t *f)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    gw_buf_puts(b, "# HELP ");
    gw_buf_puts(b, f->name);
    gw_buf_putc(b, ' ');
    put_escaped(b, f->help, 0);
    gw_buf_puts(b, "\n# TYPE ");
    gw_buf_puts(b, f->name);
    gw_buf_putc(b, ' ');
    gw_buf_puts(b, types[f->type]);
    gw_buf_putc(b, '\n');
}

void gw_metrics_render(gw_buf_t *out)
{
    merge_t m;
    memset(&m, 0, sizeof(m));
    gw_metrics_each_shard(merge_shard, &m);
    if (m.n) /* no rows: m.rows is NULL, and qsort's array must not be (clang's UBSan) */
        qsort(m.rows, m.n, sizeof(*m.rows), cmp_rows);
    int nf = atomic_load_explicit(&gw_mfamily_count, memory_order_acquire);
    double zeros[GW_METRICS_MAX_BUCKETS + 2] = {0};
    gw_buf_t ls;
    gw_buf_init(&ls);
    bounds_t bd;
    size_t r = 0;
    for (int id = 0; id < nf; id++) {
        const mfamily_t *f = &gw_mfamilies[id];
        put_family_head(out, f);
        if (f->computed) {
            put_computed(out, id, f, &ls);
            continue;
        }
        if (f->type == GW_MT_HISTOGRAM)
            bounds_of(f, &bd);
        size_t first = r;
        for (; r < m.n && m.rows[r].family == id; r++) {
            gw_mlabel_t l[GW_METRICS_MAX_LABELS];
            gw_metrics_key_labels(&m.rows[r].key, l, f->n_labels);
            label_set(&ls, f, l);
            put_series(out, f, &ls, &bd, m.vals + m.rows[r].off);
        }
        if (r == first && f->n_labels == 0) {
            gw_buf_reset(&ls);
            put_series(out, f, &ls, &bd, zeros);
        }
    }
    gw_buf_dispose(&ls);
    merge_dispose(&m);
}

/* ---------- one value (tests) ---------- */

typedef struct {
    mkey_t key;
    int family;
    merge_t m;
} read_t;

static void read_shard(mseries_t *const *slots, size_t cap, void *ud)
{
    read_t *rd = ud;
    for (size_t i = 0; i < cap; i++)
        if (slots[i] && slots[i]->key.k0 == rd->key.k0 && slots[i]->key.k1 == rd->key.k1)
            merge_series(&rd->m, slots[i]);
}

double gw_metrics_read(int family, const gw_mlabel_t *labels)
{
    int nl = gw_metrics_family_labels(family);
    if (nl < 0)
        return 0;
    read_t rd;
    memset(&rd, 0, sizeof(rd));
    rd.key = gw_metrics_make_key(family, labels, nl);
    gw_metrics_each_shard(read_shard, &rd);
    double v = 0;
    if (rd.m.n) {
        const mfamily_t *f = &gw_mfamilies[family];
        const double *x = rd.m.vals;
        if (f->type == GW_MT_HISTOGRAM)
            for (int i = 0; i <= f->n_buckets; i++)
                v += x[i];
        else
            v = x[0];
    }
    merge_dispose(&rd.m);
    return v;
}
