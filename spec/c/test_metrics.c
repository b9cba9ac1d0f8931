/*
 * pieces-gateway: unit tests of the metrics (src/metrics*.c): registry rules, label bounds,
 * per-thread shards merged at scrape time, gauge aggregations, the exposition text, the
 * per-request hooks.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_test.h"
#include "http.h"
#include "metrics.h"
#include "metrics_hooks.h"

static gw_mlabel_t L(const char *s) { return gw_metrics_label(s, strlen(s)); }

static void fresh(int enabled)
{
    gw_metrics_shutdown();
    gw_metrics_init(enabled);
}

static char *render(void)
{
    gw_buf_t b;
    gw_buf_init(&b);
    gw_metrics_render(&b);
    size_t n;
    return gw_buf_steal(&b, &n);
}

/* The value of the exposition line "<prefix> <value>", or NAN. */
static double line_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

static int reg(const char *name, gw_mtype_t type, const char *labels, char **err)
{
    gw_mfamily_def_t d = {name, "help", type, GW_MA_SUM, labels, NULL, 0, 0, 0};
    static const double b[] = {1, 2, 5};
    if (type == GW_MT_HISTOGRAM) {
        d.buckets = b;
        d.n_buckets = 3;
    }
    *err = NULL;
    return gw_metrics_register(&d, err);
}

static int bad(const char *name, gw_mtype_t type, const char *labels, const char *want)
{
    char *err = NULL;
    int rc = reg(name, type, labels, &err);
    int ok = rc < 0 && err && strstr(err, want);
    if (!ok)
        fprintf(stderr, "  %s: rc %d err %s (want %s)\n", name, rc, err ? err : "-", want);
    free(err);
    return ok;
}

TEST(registry)
{
    fresh(1);
    char *err = NULL;
    CHECK_EQ_INT(reg("gateway_http_requests_total", GW_MT_COUNTER, "route,method,status", &err),
                 GW_MF_HTTP_REQUESTS);
    int id = reg("my_things_total", GW_MT_COUNTER, "a,b", &err);
    CHECK(id >= GW_MF_BUILTIN_COUNT);
    CHECK_EQ_INT(reg("my_things_total", GW_MT_COUNTER, "a,b", &err), id);
    CHECK_EQ_INT(gw_metrics_family_labels(id), 2);
    CHECK(bad("my_things_total", GW_MT_COUNTER, "a", "already registered"));
    CHECK(bad("gateway_http_requests_total", GW_MT_COUNTER, "route", "already registered"));
    CHECK(bad("1x_total", GW_MT_COUNTER, "", "invalid metric name"));
    CHECK(bad("x-y_total", GW_MT_COUNTER, "", "invalid metric name"));
    CHECK(bad("things", GW_MT_COUNTER, "", "must end with _total"));
    CHECK(bad("things_total", GW_MT_GAUGE, "", "only counters"));
    CHECK(bad("lat_bucket", GW_MT_HISTOGRAM, "", "must not end with _bucket"));
    CHECK(bad("lat_seconds", GW_MT_HISTOGRAM, "le", "invalid label name"));
    CHECK(bad("g1", GW_MT_GAUGE, "__x", "invalid label name"));
    CHECK(bad("g2", GW_MT_GAUGE, "a,a", "repeat"));
    CHECK(bad("g3", GW_MT_GAUGE, "a,b,c,d,e,f,g,h", "too many labels"));
    CHECK(bad("g4", GW_MT_GAUGE, "a b", "invalid label name"));
    gw_mfamily_def_t h = {"h_seconds", "x", GW_MT_HISTOGRAM, GW_MA_SUM, "", NULL, 0, 0, 0};
    static const double down[] = {2, 1};
    h.buckets = down;
    h.n_buckets = 2;
    CHECK(gw_metrics_register(&h, &err) < 0 && strstr(err, "strictly increasing"));
    free(err);
    h.n_buckets = 0;
    CHECK(gw_metrics_register(&h, &err) < 0 && strstr(err, "1 to 30 buckets"));
    free(err);
}

TEST(labels)
{
    fresh(1);
    CHECK_EQ_INT(L(""), GW_ML_EMPTY);
    CHECK_EQ_INT(L("other"), GW_ML_OTHER);
    CHECK_EQ_INT(L("true"), GW_ML_TRUE);
    CHECK_EQ_INT(L("completion"), GW_ML_COMPLETION);
    CHECK_EQ_INT(L("PATCH"), GW_ML_PATCH);
    CHECK_EQ_INT(L("ok"), GW_ML_RESULT_FIRST + GW_UP_OK);
    CHECK_EQ_INT(L("refused"), GW_ML_RESULT_FIRST + GW_UP_REFUSED);
    CHECK_EQ_INT(L("100"), GW_ML_STATUS(100));
    CHECK_EQ_INT(L("404"), GW_ML_STATUS(404));
    CHECK_EQ_INT(L("599"), GW_ML_STATUS(599));
    CHECK_EQ_INT(GW_ML_RESERVED, GW_ML_STATUS(599) + 1);
    gw_mlabel_t a = L("alpha");
    CHECK(a > GW_ML_OTHER);
    CHECK_EQ_INT(L("alpha"), a);
    CHECK_EQ_STR(gw_metrics_label_text(a), "alpha");
    char long_value[200];
    memset(long_value, 'x', sizeof(long_value));
    CHECK_EQ_INT(gw_metrics_label(long_value, 129), GW_ML_OTHER);
    CHECK(gw_metrics_label(long_value, 128) != GW_ML_OTHER);
    CHECK_EQ_INT(gw_metrics_label("\xff\xfe", 2), GW_ML_OTHER);
    CHECK_EQ_INT(gw_metrics_label("a\0b", 3), GW_ML_OTHER);
    CHECK(L("caf\xc3\xa9") != GW_ML_OTHER);
    /* the model label: only catalog names */
    CHECK_EQ_INT(gw_metrics_model_label("gpt-9", 5), GW_ML_OTHER);
    gw_metrics_catalog_add("gpt-9", 5);
    CHECK_EQ_INT(gw_metrics_model_label("gpt-9", 5), L("gpt-9"));
    CHECK_EQ_INT(gw_metrics_model_label("", 0), GW_ML_EMPTY);
}

TEST(label_capacity)
{
    fresh(1);
    char s[32];
    int others = 0;
    for (int i = 0; i < GW_METRICS_MAX_LABEL_IDS + 10; i++) {
        int n = snprintf(s, sizeof(s), "v%d", i);
        others += gw_metrics_label(s, (size_t)n) == GW_ML_OTHER;
    }
    CHECK_EQ_INT(others, 10 + GW_ML_RESERVED); /* the fixed ids are taken first */
    CHECK_EQ_STR(gw_metrics_label_text(L("v5")), "v5");
}

TEST(values)
{
    fresh(1);
    char *err = NULL;
    int c = reg("c_total", GW_MT_COUNTER, "k", &err);
    int g = reg("g", GW_MT_GAUGE, "", &err);
    int h = reg("h_seconds", GW_MT_HISTOGRAM, "", &err);
    gw_mlabel_t k[1] = {L("x")};
    gw_metrics_add(c, k, 1);
    gw_metrics_add(c, k, 2.5);
    gw_metrics_add(c, k, -1);  /* counters never go down */
    gw_metrics_add(c, k, NAN); /* ignored */
    gw_metrics_set(c, k, 100); /* not a gauge: ignored */
    CHECK(gw_metrics_read(c, k) == 3.5);
    gw_metrics_add(g, NULL, 5);
    gw_metrics_add(g, NULL, -7);
    CHECK(gw_metrics_read(g, NULL) == -2);
    gw_metrics_set(g, NULL, 42);
    CHECK(gw_metrics_read(g, NULL) == 42);
    gw_metrics_observe(h, NULL, 0.5);
    gw_metrics_observe(h, NULL, 3);
    gw_metrics_observe(h, NULL, 1000);
    gw_metrics_add(h, NULL, 1); /* not a counter: ignored */
    CHECK(gw_metrics_read(h, NULL) == 3);
    char *text = render();
    CHECK(line_value(text, "c_total{k=\"x\"}") == 3.5);
    CHECK(line_value(text, "h_seconds_bucket{le=\"1\"}") == 1);
    CHECK(line_value(text, "h_seconds_bucket{le=\"2\"}") == 1);
    CHECK(line_value(text, "h_seconds_bucket{le=\"5\"}") == 2);
    CHECK(line_value(text, "h_seconds_bucket{le=\"+Inf\"}") == 3);
    CHECK(line_value(text, "h_seconds_sum") == 1003.5);
    CHECK(line_value(text, "h_seconds_count") == 3);
    CHECK(strstr(text, "# HELP c_total help\n# TYPE c_total counter\n") != NULL);
    CHECK(strstr(text, "# TYPE h_seconds histogram\n") != NULL);
    free(text);
}

TEST(disabled)
{
    fresh(0);
    gw_mlabel_t l[1] = {L("x")};
    gw_metrics_add(GW_MF_RATELIMIT_REJECTIONS, l, 1);
    CHECK(gw_metrics_read(GW_MF_RATELIMIT_REJECTIONS, l) == 0);
    fresh(1);
    gw_metrics_add(GW_MF_RATELIMIT_REJECTIONS, l, 1);
    CHECK(gw_metrics_read(GW_MF_RATELIMIT_REJECTIONS, l) == 1);
}

TEST(escaping_and_empty_families)
{
    fresh(1);
    gw_mfamily_def_t d = {"esc_total", "a \\ b\nc \"q\"", GW_MT_COUNTER, GW_MA_SUM, "v",
                          NULL, 0, 0, 0};
    char *err = NULL;
    int id = gw_metrics_register(&d, &err);
    gw_mlabel_t l[1] = {L("a\"b\\c\nd")};
    gw_metrics_add(id, l, 1);
    char *text = render();
    CHECK(strstr(text, "# HELP esc_total a \\\\ b\\nc \"q\"\n") != NULL);
    CHECK(line_value(text, "esc_total{v=\"a\\\"b\\\\c\\nd\"}") == 1);
    /* families without labels and samples show 0; labelled ones only their head */
    CHECK(line_value(text, "gateway_llm_active_streams") == 0);
    CHECK(line_value(text, "gateway_bans_active") == 0);
    CHECK(strstr(text, "# TYPE gateway_llm_requests_total counter\n# HELP") != NULL);
    CHECK(line_value(text, "gateway_config_version") >= 1);
    CHECK(line_value(text, "process_resident_memory_bytes") > 1e5);
    char build[64];
    snprintf(build, sizeof(build), "gateway_build_info{version=\"%s\"}", gw_version);
    CHECK(line_value(text, build) == 1);
    free(text);
}

TEST(series_cap)
{
    fresh(1);
    gw_mfamily_def_t d = {"capped_total", "x", GW_MT_COUNTER, GW_MA_SUM, "a,b", NULL, 0, 0, 3};
    char *err = NULL;
    int id = gw_metrics_register(&d, &err);
    char v[16];
    for (int i = 0; i < 6; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        gw_mlabel_t l[2] = {L(v), L("y")};
        gw_metrics_add(id, l, 1);
    }
    gw_mlabel_t first[2] = {L("v0"), L("y")}, other[2] = {GW_ML_OTHER, GW_ML_OTHER};
    CHECK(gw_metrics_read(id, first) == 1);
    CHECK(gw_metrics_read(id, other) == 3); /* v3, v4, v5 */
}

/* ---------- threads: shards merged at scrape time ---------- */

#define THREADS 4
#define INCS 100000

typedef struct {
    int index, counter, gsum, gmax, glast;
    pthread_mutex_t *turn_lock;
    pthread_cond_t *turn_cond;
    int *turn;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    gw_mlabel_t k[1] = {L("shared")};
    for (int i = 0; i < INCS; i++) {
        gw_metrics_add(a->counter, k, 1);
        gw_metrics_observe(GW_MF_HTTP_DURATION, k, 0.001 * (i % 7));
    }
    gw_metrics_set(a->gsum, NULL, a->index + 1);
    gw_metrics_set(a->gmax, NULL, a->index == 2 ? 50 : a->index);
    /* the "last" gauge is set in thread order: thread 3 sets it last */
    pthread_mutex_lock(a->turn_lock);
    while (*a->turn != a->index)
        pthread_cond_wait(a->turn_cond, a->turn_lock);
    gw_metrics_set(a->glast, NULL, 100 + a->index);
    (*a->turn)++;
    pthread_cond_broadcast(a->turn_cond);
    pthread_mutex_unlock(a->turn_lock);
    return NULL;
}

TEST(threads_merge)
{
    fresh(1);
    char *err = NULL;
    gw_mfamily_def_t g = {"gs", "x", GW_MT_GAUGE, GW_MA_SUM, "", NULL, 0, 0, 0};
    int gsum = gw_metrics_register(&g, &err);
    g.name = "gm";
    g.agg = GW_MA_MAX;
    int gmax = gw_metrics_register(&g, &err);
    g.name = "gl";
    g.agg = GW_MA_LAST;
    int glast = gw_metrics_register(&g, &err);
    int counter = reg("n_total", GW_MT_COUNTER, "k", &err);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int turn = 0;
    pthread_t t[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){i, counter, gsum, gmax, glast, &lock, &cond, &turn};
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    int scrapes = 0; /* scrape while the threads write: never a torn table */
    while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) < THREADS && scrapes < 200) {
        free(render());
        scrapes++;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    gw_mlabel_t k[1] = {L("shared")};
    CHECK(gw_metrics_read(counter, k) == THREADS * INCS);
    CHECK(gw_metrics_read(GW_MF_HTTP_DURATION, k) == THREADS * INCS);
    CHECK(gw_metrics_read(gsum, NULL) == 1 + 2 + 3 + 4);
    CHECK(gw_metrics_read(gmax, NULL) == 50);
    CHECK(gw_metrics_read(glast, NULL) == 103);
    char *text = render();
    CHECK(line_value(text, "n_total{k=\"shared\"}") == THREADS * INCS);
    CHECK(line_value(text, "gateway_http_request_duration_seconds_count{route=\"shared\"}") ==
          THREADS * INCS);
    CHECK(line_value(text, "gl") == 103);
    free(text);
}

/* ---------- the per-request hooks ---------- */

static gw_req_t *request(const char *method, const char *route, int status)
{
    gw_req_t *r = gw_calloc(1, sizeof(*r));
    r->method_name = method;
    r->status = status;
    r->start_ns = gw_now_ns() - 50000000; /* 50 ms ago */
    snprintf(r->stats.route, sizeof(r->stats.route), "%s", route);
    return r;
}

TEST(request_hooks)
{
    fresh(1);
    gw_metrics_catalog_add("gpt-4o", 6);
    gw_req_t *r = request("POST", "chat", 0);
    gw_metrics_llm_start(r, "pieces", 1);
    CHECK(gw_metrics_read(GW_MF_LLM_ACTIVE_STREAMS, NULL) == 1);
    CHECK_EQ_STR(r->stats.backend, "pieces");
    snprintf(r->stats.model, sizeof(r->stats.model), "gpt-4o");
    r->stats.first_token_ns = r->start_ns + 10000000; /* 10 ms */
    r->stats.prompt_tokens = 8;
    r->stats.completion_tokens = 21;
    r->stats.usage_source = GW_USAGE_TOKENIZER;
    r->stats.attempts = 1;
    r->status = 200;
    gw_metrics_upstream_attempt("pieces", GW_UP_OK);
    gw_metrics_request_done(r);
    CHECK(gw_metrics_read(GW_MF_LLM_ACTIVE_STREAMS, NULL) == 0);
    gw_mlabel_t llm[4] = {L("gpt-4o"), L("pieces"), L("true"), L("200")};
    CHECK(gw_metrics_read(GW_MF_LLM_REQUESTS, llm) == 1);
    CHECK(gw_metrics_read(GW_MF_LLM_TTFT, llm) == 1);
    CHECK(gw_metrics_read(GW_MF_LLM_TPOT, llm) == 1);
    CHECK(gw_metrics_read(GW_MF_LLM_DURATION, llm) == 1);
    gw_mlabel_t tok[3] = {L("gpt-4o"), L("pieces"), L("prompt")};
    CHECK(gw_metrics_read(GW_MF_LLM_TOKENS, tok) == 8);
    tok[2] = L("completion");
    CHECK(gw_metrics_read(GW_MF_LLM_TOKENS, tok) == 21);
    gw_mlabel_t src[1] = {L("tokenizer")};
    CHECK(gw_metrics_read(GW_MF_LLM_USAGE_SOURCE, src) == 1);
    gw_mlabel_t http[3] = {L("chat"), L("POST"), L("200")};
    CHECK(gw_metrics_read(GW_MF_HTTP_REQUESTS, http) == 1);
    gw_mlabel_t att[2] = {L("pieces"), L("ok")};
    CHECK(gw_metrics_read(GW_MF_UPSTREAM_ATTEMPTS, att) == 1);
    char *text = render();
    /* 10 ms TTFT: not in the 5 ms bucket, in the 10 ms one */
    CHECK(line_value(text, "gateway_llm_time_to_first_token_seconds_bucket{model=\"gpt-4o\","
                           "backend=\"pieces\",le=\"0.005\"}") == 0);
    CHECK(line_value(text, "gateway_llm_time_to_first_token_seconds_bucket{model=\"gpt-4o\","
                           "backend=\"pieces\",le=\"0.01\"}") == 1);
    free(text);
    free(r);

    /* a model outside the catalog, no usage, an unknown method, a non-stream */
    r = request("BREW", "chat", 0);
    gw_metrics_llm_start(r, "pieces", 0);
    snprintf(r->stats.model, sizeof(r->stats.model), "my-own-model");
    r->status = 502;
    gw_metrics_request_done(r);
    gw_mlabel_t other[4] = {GW_ML_OTHER, L("pieces"), L("false"), L("502")};
    CHECK(gw_metrics_read(GW_MF_LLM_REQUESTS, other) == 1);
    CHECK(gw_metrics_read(GW_MF_LLM_TTFT, other) == 0);
    gw_mlabel_t brew[3] = {L("chat"), GW_ML_OTHER, L("502")};
    CHECK(gw_metrics_read(GW_MF_HTTP_REQUESTS, brew) == 1);
    free(r);

    gw_metrics_policy_error("faulty", "access");
    gw_mlabel_t pe[2] = {L("faulty"), L("access")};
    CHECK(gw_metrics_read(GW_MF_POLICY_ERRORS, pe) == 1);
    gw_metrics_reload(1);
    gw_metrics_reload(0);
    gw_mlabel_t ok[1] = {L("ok")}, er[1] = {L("error")};
    CHECK(gw_metrics_read(GW_MF_RELOADS, ok) == 1 && gw_metrics_read(GW_MF_RELOADS, er) == 1);
    gw_metrics_breaker_open("pieces", 1);
    gw_mlabel_t be[1] = {L("pieces")};
    CHECK(gw_metrics_read(GW_MF_UPSTREAM_BREAKER_OPEN, be) == 1);
}

int main(void)
{
    RUN(registry);
    RUN(labels);
    RUN(label_capacity);
    RUN(values);
    RUN(disabled);
    RUN(escaping_and_empty_families);
    RUN(series_cap);
    RUN(threads_merge);
    RUN(request_hooks);
    gw_metrics_shutdown();
    return TEST_REPORT();
}
