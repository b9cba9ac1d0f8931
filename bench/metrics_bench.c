/*
 * pieces-gateway: micro-benchmark of the metrics: CPU per request and per stream of the
 * recording hooks, and CPU of one scrape with 20 models x all families.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Not a test. Build and run:
 *   cmake --build build --target metrics_bench && taskset -c 0 build/metrics_bench
 * Prints the median, min and max of REPS repetitions (thread CPU time):
 *   request   gw_metrics_request_done of a plain request (GET /v1/models 200): 2 series
 *   stream    what a streamed chat completion records: gw_metrics_llm_start, one attempt,
 *             gw_metrics_request_done with usage, TTFT and TPOT (12 series updates)
 * each as the difference to the same loop with METRICS=off (pairs run back to back), and
 *   scrape    gw_metrics_render with 20 catalog models recorded by 3 threads (shards), every
 *             built-in family populated
 * The end-to-end cost with the Lua side included is measured by bench/policy_chain.sh and
 * bench/stream.sh (gateway with and without METRICS=off).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "http.h"
#include "metrics.h"
#include "metrics_hooks.h"

#define REPS 9

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, const char *unit)
{
    qsort(v, REPS, sizeof(*v), cmp);
    printf("  %-8s median %8.1f   min %8.1f   max %8.1f   %s (%d runs)\n", what, v[REPS / 2],
           v[0], v[REPS - 1], unit, REPS);
}

static char models[20][32];

static void fill_stream(gw_req_t *r, int model, int stream, int status)
{
    memset(&r->stats, 0, sizeof(r->stats));
    r->method_name = "POST";
    r->status = status;
    r->start_ns = gw_now_ns() - 200000000;
    snprintf(r->stats.route, sizeof(r->stats.route), "chat");
    gw_metrics_llm_start(r, "pieces", stream);
    snprintf(r->stats.model, sizeof(r->stats.model), "%s", models[model]);
    r->stats.attempts = 1;
    r->stats.first_token_ns = r->start_ns + 40000000;
    r->stats.prompt_tokens = 25;
    r->stats.completion_tokens = 20;
    r->stats.usage_source = GW_USAGE_TOKENIZER;
    gw_metrics_upstream_attempt("pieces", status == 200 ? GW_UP_OK : GW_UP_BAD_ANSWER);
}

static double per_op(int stream_path, long n)
{
    gw_req_t *r = gw_calloc(1, sizeof(*r));
    double t0 = cpu_ns();
    for (long i = 0; i < n; i++) {
        if (stream_path) {
            fill_stream(r, (int)(i % 20), 1, 200);
        } else {
            memset(&r->stats, 0, sizeof(r->stats));
            r->method_name = "GET";
            r->status = 200;
            r->start_ns = gw_now_ns() - 50000;
            snprintf(r->stats.route, sizeof(r->stats.route), "models");
        }
        gw_metrics_request_done(r);
    }
    double t = (cpu_ns() - t0) / (double)n;
    free(r);
    return t;
}

/* everything a busy gateway has: 20 models x stream x 3 statuses, routes, upstream, policies */
static void *populate(void *arg)
{
    (void)arg;
    gw_req_t *r = gw_calloc(1, sizeof(*r));
    static const int statuses[] = {200, 502, 499};
    for (int m = 0; m < 20; m++)
        for (int s = 0; s < 2; s++)
            for (int k = 0; k < 3; k++)
                for (int rep = 0; rep < 50; rep++) {
                    fill_stream(r, m, s, statuses[k]);
                    gw_metrics_request_done(r);
                }
    static const char *routes[] = {"health", "ping", "models", "tokenize", "admin", "other"};
    static const int codes[] = {200, 401, 404, 429};
    for (size_t i = 0; i < GW_ARRAY_SIZE(routes); i++)
        for (size_t k = 0; k < GW_ARRAY_SIZE(codes); k++) {
            memset(&r->stats, 0, sizeof(r->stats));
            snprintf(r->stats.route, sizeof(r->stats.route), "%s", routes[i]);
            r->method_name = "GET";
            r->status = codes[k];
            gw_metrics_request_done(r);
        }
    for (int i = 0; i < GW_UP_RESULT_COUNT; i++)
        gw_metrics_upstream_attempt("pieces", (gw_up_result_t)i);
    gw_metrics_upstream_conns("pieces", "ready", 5);
    gw_metrics_upstream_conns("pieces", "connecting", 0);
    gw_metrics_breaker_open("pieces", 0);
    gw_metrics_policy_error("chat", "route");
    gw_metrics_reload(1);
    static const char *rules[] = {"default", "strict", "burst"};
    for (int i = 0; i < 3; i++) {
        gw_mlabel_t l[1] = {gw_metrics_label(rules[i], strlen(rules[i]))};
        gw_metrics_add(GW_MF_RATELIMIT_REJECTIONS, l, 1);
    }
    gw_mlabel_t mode[1] = {gw_metrics_label("single", 6)};
    gw_metrics_add(GW_MF_BANS_ADDED, mode, 1);
    gw_metrics_set(GW_MF_BANS_ACTIVE, NULL, 12);
    free(r);
    return NULL;
}

int main(void)
{
    gw_metrics_init(1);
    for (int i = 0; i < 20; i++) {
        snprintf(models[i], sizeof(models[i]), "model-%02d-%s", i, i % 2 ? "mini" : "large");
        gw_metrics_catalog_add(models[i], strlen(models[i]));
    }
    double v[REPS], off[REPS];
    printf("metrics micro-benchmark (thread CPU time; %s)\n", gw_version);
    per_op(0, 200000); /* warm: series exist */
    per_op(1, 200000);
    for (int path = 0; path < 2; path++) {
        for (int i = 0; i < REPS; i++) { /* interleaved on / off pairs */
            gw_metrics_init(1);
            v[i] = per_op(path, 500000);
            gw_metrics_init(0);
            off[i] = per_op(path, 500000);
            v[i] -= off[i];
        }
        report(path ? "stream" : "request", v, "ns (on - METRICS=off, per pair)");
        report("  off", off, "ns (the loop itself: stats filled, METRICS=off)");
    }
    gw_metrics_init(1);

    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, populate, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    populate(NULL);
    gw_buf_t b;
    gw_buf_init(&b);
    size_t bytes = 0, lines = 0;
    for (int i = 0; i < REPS; i++) {
        double best = 1e18;
        for (int k = 0; k < 20; k++) { /* the min of 20 scrapes: one undisturbed run */
            gw_buf_reset(&b);
            double t0 = cpu_ns();
            gw_metrics_render(&b);
            double d = (cpu_ns() - t0) / 1e3;
            best = d < best ? d : best;
        }
        v[i] = best;
    }
    bytes = b.len;
    for (size_t i = 0; i < b.len; i++)
        lines += b.data[i] == '\n';
    report("scrape", v, "us");
    printf("  scrape output: %zu bytes, %zu lines, 3 shards, 20 models\n", bytes, lines);
    if (getenv("METRICS_BENCH_DUMP"))
        fwrite(b.data, 1, b.len, stdout);
    gw_buf_dispose(&b);
    return 0;
}
