/*
 * pieces-gateway: the gw_ffi_* functions of host.metrics (policy metrics) and of the
 * per-request stats the host fills (route, model label).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ffi_metrics_*, gw_ffi_req_set_stat. Uses: metrics.h, http (stats record).
 * Never: trusts a length or an id from Lua without checking it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_ffi.h"
#include "http.h"
#include "metrics.h"

enum { FFI_COUNTER, FFI_GAUGE, FFI_HISTOGRAM };
enum { OP_ADD, OP_SET, OP_OBSERVE };
enum { STAT_ROUTE, STAT_MODEL };

static void put_err(char *err, size_t cap, const char *msg)
{
    if (err && cap)
        snprintf(err, cap, "%s", msg);
}

/* A NUL-terminated copy of p[0..n) into buf, or NULL when it does not fit or holds a NUL. */
static char *cstr(char *buf, size_t cap, const char *p, size_t n)
{
    if (n >= cap || (n && memchr(p, '\0', n)))
        return NULL;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

int gw_ffi_metrics_family(const char *name, size_t nlen, const char *help, size_t hlen, int type,
                          int agg, const char *labels, size_t llen, const double *buckets,
                          int nbuckets, char *err, size_t errcap)
{
    char nb[GW_METRICS_NAME_MAX + 1], lb[GW_METRICS_MAX_LABELS * (GW_METRICS_NAME_MAX + 1)];
    char hb[1024];
    gw_mfamily_def_t d = {0};
    d.name = cstr(nb, sizeof(nb), name, nlen);
    d.help = cstr(hb, sizeof(hb), help, hlen);
    d.labels = cstr(lb, sizeof(lb), labels, llen);
    if (!d.name || !d.help || !d.labels) {
        put_err(err, errcap, !d.name   ? "invalid metric name (at most 100 characters)"
                             : !d.help ? "help text too long (at most 1023 bytes)"
                                       : "invalid label names");
        return GW_EINVAL;
    }
    if (type < FFI_COUNTER || type > FFI_HISTOGRAM || agg < GW_MA_SUM || agg > GW_MA_LAST ||
        nbuckets < 0 || nbuckets > GW_METRICS_MAX_BUCKETS) {
        put_err(err, errcap, "invalid type, aggregation or bucket count");
        return GW_EINVAL;
    }
    d.type = type == FFI_COUNTER ? GW_MT_COUNTER : type == FFI_GAUGE ? GW_MT_GAUGE
                                                                     : GW_MT_HISTOGRAM;
    d.agg = (gw_magg_t)agg;
    d.buckets = buckets;
    d.n_buckets = nbuckets;
    char *e = NULL;
    int id = gw_metrics_register(&d, &e);
    if (id < 0)
        put_err(err, errcap, e ? e : "cannot register the metric");
    free(e);
    return id;
}

int gw_ffi_metrics_label(const char *value, size_t len)
{
    return (int)gw_metrics_label(value, len);
}

int gw_ffi_metrics_update(int family, int op, const uint16_t *labels, int n, double value)
{
    if (gw_metrics_family_labels(family) != n || n < 0 || n > GW_METRICS_MAX_LABELS)
        return GW_EINVAL;
    gw_mlabel_t l[GW_METRICS_MAX_LABELS];
    for (int i = 0; i < n; i++)
        l[i] = labels[i] < GW_METRICS_MAX_LABEL_IDS ? labels[i] : GW_ML_OTHER;
    switch (op) {
    case OP_ADD: gw_metrics_add(family, l, value); return GW_OK;
    case OP_SET: gw_metrics_set(family, l, value); return GW_OK;
    case OP_OBSERVE: gw_metrics_observe(family, l, value); return GW_OK;
    default: return GW_EINVAL;
    }
}

int gw_ffi_metrics_catalog(const char *name, size_t len)
{
    gw_metrics_catalog_add(name, len);
    return GW_OK;
}

int gw_ffi_req_set_stat(void *req, int field, const char *p, size_t len)
{
    gw_req_stats_t *st = &((gw_req_t *)req)->stats;
    char *dst = field == STAT_ROUTE ? st->route : field == STAT_MODEL ? st->model : NULL;
    size_t cap = field == STAT_ROUTE ? sizeof(st->route) : sizeof(st->model);
    if (!dst || memchr(p, '\0', len))
        return GW_EINVAL;
    size_t n = len < cap ? len : cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return GW_OK;
}
