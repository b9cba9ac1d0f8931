/*
 * pieces-gateway: integration tests of the gRPC client and pool against the grpc-js mock.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Run through spec/c/run-with-mock.sh, which starts spec/e2e/mock/server.js and exports its
 * addresses (GW_MOCK_*). The mock is an independent gRPC implementation (grpc-js over Node's
 * http2); scenarios are picked by the model string (spec/e2e/mock/scripts.js). Every test
 * builds its own loop and pool, and ends with the pool closed and uv_loop_close() == 0, so a
 * leaked handle fails the test (and the ASan variant catches leaked memory).
 * Usage: test_grpc_integration [test-name-substring]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "gw_pieces.h"
#include "gw_test.h"
#include "gw_upstream.h"

static const char *only;

/* ---- harness ------------------------------------------------------------------------------ */

typedef struct {
    int vertex;
    int done, nmsg, n204, pause_after;
    size_t bytes;
    int64_t last_code;
    gw_grpc_result_t res;
    char msg[512];
    char text[8192];
    size_t tlen;
    gw_grpc_call_t *call;
    int cancel_after;
    uint64_t t_close;
} rec_t;

static int closed_flag;
static uv_loop_t *g_loop;

static void on_msg(gw_grpc_call_t *c, const uint8_t *m, size_t n, void *ud)
{
    rec_t *r = ud;
    gw_pieces_reply_t rep;
    int rc = r->vertex ? gw_pieces_vertex_decode(m, n, &rep) : gw_pieces_gpt_decode(m, n, &rep);
    CHECK_EQ_INT(rc, 0);
    CHECK(!r->done);
    r->nmsg++;
    r->last_code = rep.code;
    r->n204 += rep.code == 204;
    if (rep.has_text) {
        r->bytes += rep.text_len;
        size_t k = rep.text_len < sizeof(r->text) - 1 - r->tlen ? rep.text_len
                                                               : sizeof(r->text) - 1 - r->tlen;
        memcpy(r->text + r->tlen, rep.text, k);
        r->tlen += k;
        r->text[r->tlen] = '\0';
    }
    gw_pieces_reply_free(&rep);
    if (r->pause_after && r->nmsg == r->pause_after)
        gw_grpc_call_pause(c, 1);
    if (r->cancel_after && r->nmsg == r->cancel_after) {
        gw_grpc_call_cancel(c);
        r->done = 2; /* cancelled: no on_close may follow */
    }
}

static void on_close(gw_grpc_call_t *c, const gw_grpc_result_t *res, void *ud)
{
    rec_t *r = ud;
    (void)c;
    CHECK(!r->done);
    r->done = 1;
    r->res = *res;
    snprintf(r->msg, sizeof(r->msg), "%s", res->message);
    r->res.message = r->msg;
    r->t_close = uv_now(g_loop);
}

static const gw_grpc_handler_t handler = {on_msg, on_close};

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag reaches want (or, with want < 0, until pred says so) or timeout. */
static int run_until(uv_loop_t *loop, int (*pred)(void *), void *arg, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uint64_t end = uv_now(loop) + timeout_ms;
    int ok = 0;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_wake, 5, 5);
    while (!(ok = pred(arg)) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

typedef struct {
    rec_t *r;
    int n;
} recs_t;

static int all_done(void *p)
{
    recs_t *rs = p;
    for (int i = 0; i < rs->n; i++)
        if (!rs->r[i].done)
            return 0;
    return 1;
}

static int never(void *p)
{
    (void)p;
    return 0;
}

static void sleep_loop(uv_loop_t *loop, uint64_t ms)
{
    run_until(loop, never, NULL, ms);
}

static void on_pool_closed(void *ud)
{
    *(int *)ud = 1;
}

static int flag_set(void *p)
{
    return *(int *)p;
}

static gw_upstream_t *pool(uv_loop_t *loop, const char *addr, const char *ca, int min, int max)
{
    gw_upstream_conf_t conf = {0};
    gw_upstream_t *u = NULL;
    char *err = NULL;
    conf.address = addr;
    conf.ca_file = ca;
    conf.min_conns = min;
    conf.max_conns = max;
    int rc = gw_upstream_new(loop, &conf, &u, &err);
    if (rc != 0)
        fprintf(stderr, "gw_upstream_new(%s): %s\n", addr, err ? err : "?");
    free(err);
    CHECK_EQ_INT(rc, 0);
    return u;
}

static gw_upstream_t *pool_conf(uv_loop_t *loop, gw_upstream_conf_t *conf)
{
    gw_upstream_t *u = NULL;
    char *err = NULL;
    int rc = gw_upstream_new(loop, conf, &u, &err);
    if (rc != 0)
        fprintf(stderr, "gw_upstream_new: %s\n", err ? err : "?");
    free(err);
    CHECK_EQ_INT(rc, 0);
    return u;
}

static void close_pool(uv_loop_t *loop, gw_upstream_t *u)
{
    closed_flag = 0;
    gw_upstream_close(u, on_pool_closed, &closed_flag);
    CHECK(run_until(loop, flag_set, &closed_flag, 5000));
}

static void loop_done(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    int rc = uv_loop_close(loop);
    if (rc != 0)
        uv_print_all_handles(loop, stderr);
    CHECK_EQ_INT(rc, 0);
}

static const char *h2c(void)
{
    static char b[128];
    snprintf(b, sizeof(b), "http://%s", getenv("GW_MOCK_H2C"));
    return b;
}

/* Starts one call with a GPT (or Vertex) request for model. */
static void start(gw_upstream_t *u, rec_t *r, int vertex, int stream, const char *model,
                  uint64_t timeout_ms)
{
    uint8_t *req;
    size_t n;
    const char *dlg = "user:hi;\r\n";
    gw_pieces_msg_t m = {1, dlg, strlen(dlg)};
    const char *path = vertex ? (stream ? GW_PIECES_VERTEX_STREAM : GW_PIECES_VERTEX_PREDICT)
                              : (stream ? GW_PIECES_GPT_STREAM : GW_PIECES_GPT_PREDICT);
    r->vertex = vertex;
    if (vertex)
        CHECK_EQ_INT(gw_pieces_vertex_encode(model, dlg, strlen(dlg), "system:x;\r\n", 11, &req,
                                             &n), 0);
    else
        CHECK_EQ_INT(gw_pieces_gpt_encode(model, &m, 1, 1, 0.5, 0, 0, &req, &n), 0);
    CHECK_EQ_INT(gw_grpc_call_start(u, path, req, n, timeout_ms, &handler, r, &r->call), 0);
    free(req);
}

/* Reads the mock's event log and finds a line holding all the given fragments. */
static int mock_event(const char *a, const char *b, const char *c)
{
    FILE *f = fopen(getenv("GW_MOCK_EVENTS"), "r");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    if (!f)
        return 0;
    while (!found && getline(&line, &cap, f) > 0)
        found = strstr(line, a) && (!b || strstr(line, b)) && (!c || strstr(line, c));
    free(line);
    fclose(f);
    return found;
}

/* Largest "bytes" of a progress event of the request whose model is given (via its id). */
static long mock_progress(const char *model)
{
    FILE *f = fopen(getenv("GW_MOCK_EVENTS"), "r");
    char *line = NULL, want[64] = "";
    size_t cap = 0;
    long best = -1;
    if (!f)
        return -1;
    while (getline(&line, &cap, f) > 0) {
        char *p;
        if (strstr(line, "\"event\":\"request\"") && strstr(line, model) &&
            (p = strstr(line, "\"id\":")))
            snprintf(want, sizeof(want), "\"id\":%ld,", strtol(p + 5, NULL, 10));
        if (*want && strstr(line, "\"event\":\"progress\"") && strstr(line, want) &&
            (p = strstr(line, "\"bytes\":")))
            if (strtol(p + 8, NULL, 10) > best)
                best = strtol(p + 8, NULL, 10);
    }
    free(line);
    fclose(f);
    return best;
}

static int wait_event(uv_loop_t *loop, const char *a, const char *b, uint64_t ms)
{
    for (uint64_t waited = 0; waited < ms; waited += 20) {
        if (mock_event(a, b, NULL))
            return 1;
        sleep_loop(loop, 20);
    }
    return 0;
}

#define BEGIN(name)                                                                            \
    if (only && !strstr(#name, only))                                                          \
        return;                                                                                \
    uv_loop_t loop_;                                                                           \
    uv_loop_t *loop = &loop_;                                                                  \
    uv_loop_init(loop);                                                                        \
    g_loop = loop

/* ---- tests ---------------------------------------------------------------------------------- */

TEST(h2c_unary_and_stream_both_services)
{
    BEGIN(h2c_unary_and_stream_both_services);
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 2);
    rec_t r[4] = {{0}};
    recs_t rs = {r, 4};
    start(u, &r[0], 0, 0, "echo#gu", 0);
    start(u, &r[1], 0, 1, "chunks-5-5#gs", 0);
    start(u, &r[2], 1, 0, "echo#vu", 0);
    start(u, &r[3], 1, 1, "chunks-4-5#vs", 0);
    CHECK(run_until(loop, all_done, &rs, 5000));
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(r[i].res.kind, GW_GRPC_OK_STATUS);
        CHECK_EQ_INT(r[i].res.grpc_status, 0);
        CHECK_EQ_INT(r[i].res.http_status, 200);
    }
    CHECK_EQ_INT(r[0].nmsg, 1);
    CHECK_EQ_STR(r[0].text, "Hello, world");
    CHECK_EQ_INT(r[0].last_code, 200);
    CHECK_EQ_INT(r[1].nmsg, 6);
    CHECK_EQ_STR(r[1].text, "c0 c1 c2 c3 c4 ");
    CHECK_EQ_INT(r[1].n204, 1);
    CHECK_EQ_STR(r[2].text, "Hello, world");
    CHECK_EQ_INT(r[3].nmsg, 5);
    CHECK_EQ_STR(r[3].text, "c0 c1 c2 c3 ");
    /* what the independent server saw on the wire */
    CHECK(mock_event("\"model\":\"echo#gu\"", "\"user-agent\":\"dart-grpc/2.0.0\"", NULL));
    CHECK(mock_event("\"model\":\"echo#gu\"", "\"te\":\"trailers\"", NULL));
    CHECK(mock_event("\"model\":\"echo#gu\"", "\"content-type\":\"application/grpc\"", NULL));
    CHECK(mock_event("\"model\":\"echo#gu\"", "\":scheme\":\"http\"", NULL));
    CHECK(mock_event("\"model\":\"echo#gu\"", "\"temperature\":0.5", NULL));
    CHECK(mock_event("\"model\":\"echo#vu\"", "\"rules\":\"system:x;\\r\\n\"", NULL));
    CHECK(mock_event("\"model\":\"chunks-4-5#vs\"",
                     "\":path\":\"/runtime.aot.machine_learning.parents.vertex."
                     "VertexInferenceService/PredictWithStream\"", NULL));
    CHECK(!mock_event("\"model\":\"echo#gu\"", "grpc-timeout", NULL));
    close_pool(loop, u);
    loop_done(loop);
}

TEST(grpc_status_errors)
{
    BEGIN(grpc_status_errors);
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 1);
    rec_t r[5] = {{0}};
    recs_t rs = {r, 5};
    start(u, &r[0], 0, 1, "status-13-boom: 100% sure ünïcode", 0); /* trailers-only */
    start(u, &r[1], 0, 1, "status-after-8", 0);
    start(u, &r[2], 1, 0, "status-14", 0);              /* unary, trailers-only */
    start(u, &r[3], 0, 1, "code-439", 0);
    CHECK_EQ_INT(gw_grpc_call_start(u, "/no.Such/Method", (const uint8_t *)"", 0, 0, &handler,
                                    &r[4], NULL), 0);
    CHECK(run_until(loop, all_done, &rs, 5000));
    CHECK_EQ_INT(r[0].res.kind, GW_GRPC_ERR_STATUS);
    CHECK_EQ_INT(r[0].res.grpc_status, 13);
    CHECK_EQ_STR(r[0].msg, "boom: 100% sure ünïcode"); /* grpc-message percent-decoded */
    CHECK_EQ_INT(r[0].nmsg, 0);
    CHECK_EQ_INT(r[1].res.kind, GW_GRPC_ERR_STATUS);
    CHECK_EQ_INT(r[1].res.grpc_status, 8);
    CHECK_EQ_INT(r[1].nmsg, 1);
    CHECK_EQ_STR(r[1].text, "partial");
    CHECK_EQ_INT(r[2].res.grpc_status, 14);
    CHECK_EQ_INT(r[3].res.kind, GW_GRPC_OK_STATUS);
    CHECK_EQ_INT(r[3].last_code, 439);
    CHECK_EQ_INT(r[3].tlen, 0);
    CHECK_EQ_INT(r[4].res.kind, GW_GRPC_ERR_STATUS);
    CHECK_EQ_INT(r[4].res.grpc_status, 12); /* UNIMPLEMENTED */
    close_pool(loop, u);
    loop_done(loop);
}

TEST(rst_stream_and_http_status)
{
    BEGIN(rst_stream_and_http_status);
    char raw[128];
    snprintf(raw, sizeof(raw), "http://%s", getenv("GW_MOCK_RAW"));
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 1), *u503 = pool(loop, raw, NULL, 0, 1);
    gw_upstream_conf_t small = {0};
    small.address = h2c();
    small.max_message = 1000;
    gw_upstream_t *usmall = pool_conf(loop, &small);
    rec_t r[5] = {{0}};
    recs_t rs = {r, 5};
    gw_upstream_counters_t k;
    start(u, &r[0], 1, 1, "rst", 0);
    start(u, &r[1], 0, 1, "no-end", 0);
    start(u503, &r[2], 0, 1, "x", 0);
    CHECK_EQ_INT(gw_grpc_call_start(u503, "/x.Refuse/Me", NULL, 0, 0, &handler, &r[3], NULL), 0);
    start(usmall, &r[4], 0, 1, "big-5000000#too-big", 0);
    CHECK(run_until(loop, all_done, &rs, 5000));
    CHECK_EQ_INT(r[3].res.kind, GW_GRPC_ERR_REFUSED);
    CHECK_EQ_INT(r[3].res.grpc_status, 14);
    gw_upstream_counters(u503, &k);
    CHECK_EQ_INT(k.calls_retried, 2); /* refused streams are retried twice, then reported */
    CHECK_EQ_INT(r[4].res.kind, GW_GRPC_ERR_PROTOCOL);
    CHECK_EQ_INT(r[4].res.grpc_status, 13);
    CHECK(strstr(r[4].msg, "larger than the limit") != NULL);
    CHECK(wait_event(loop, "\"event\":\"cancel\"", "\"model\":\"big-5000000#too-big\"", 2000));
    CHECK_EQ_INT(r[0].res.kind, GW_GRPC_ERR_RESET);
    CHECK_EQ_INT(r[0].res.grpc_status, 13);
    CHECK(strstr(r[0].msg, "RST_STREAM") != NULL);
    CHECK_EQ_INT(r[0].nmsg, 1);
    CHECK_EQ_INT(r[1].res.kind, GW_GRPC_OK_STATUS);
    CHECK_EQ_INT(r[1].n204, 0);
    CHECK_EQ_INT(r[2].res.kind, GW_GRPC_ERR_HTTP);
    if (r[2].res.kind != GW_GRPC_ERR_HTTP)
        fprintf(stderr, "  503 case: %s: %s\n", gw_grpc_error_name(r[2].res.kind), r[2].msg);
    CHECK_EQ_INT(r[2].res.http_status, 503);
    CHECK_EQ_INT(r[2].res.grpc_status, 14);
    close_pool(loop, u);
    close_pool(loop, u503);
    close_pool(loop, usmall);
    loop_done(loop);
}

TEST(deadline_and_cancel_reach_the_mock)
{
    BEGIN(deadline_and_cancel_reach_the_mock);
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 1);
    rec_t r[3] = {{0}};
    recs_t rs = {r, 3};
    uint64_t t0 = uv_now(loop);
    start(u, &r[0], 0, 1, "hang#deadline", 300);
    start(u, &r[1], 0, 1, "chunks-50-20#cancel", 0);
    r[1].cancel_after = 2;
    start(u, &r[2], 1, 0, "slow-100#unary-deadline", 5000);
    CHECK(run_until(loop, all_done, &rs, 5000));
    /* grpc-js enforces the grpc-timeout we sent too: whichever side fires first, the call
     * ends as DEADLINE_EXCEEDED at the deadline */
    CHECK(r[0].res.kind == GW_GRPC_ERR_TIMEOUT || r[0].res.kind == GW_GRPC_ERR_STATUS);
    CHECK_EQ_INT(r[0].res.grpc_status, 4);
    CHECK(r[0].t_close - t0 >= 290 && r[0].t_close - t0 < 1500);
    CHECK_EQ_INT(r[1].done, 2);
    CHECK_EQ_INT(r[1].nmsg, 2);
    CHECK_EQ_INT(r[2].res.kind, GW_GRPC_OK_STATUS);
    /* the server saw both cancellations and the deadline header */
    if (r[0].res.kind == GW_GRPC_ERR_TIMEOUT)
        CHECK(wait_event(loop, "\"event\":\"cancel\"", "\"model\":\"hang#deadline\"", 2000));
    CHECK(wait_event(loop, "\"event\":\"cancel\"", "\"model\":\"chunks-50-20#cancel\"", 2000));
    CHECK(mock_event("\"model\":\"hang#deadline\"", "\"grpc-timeout\":\"", NULL));
    CHECK(mock_event("\"model\":\"slow-100#unary-deadline\"", "\"grpc-timeout\":\"", NULL));
    /* no callback after cancel, even though the mock kept sending for a while */
    sleep_loop(loop, 100);
    CHECK_EQ_INT(r[1].nmsg, 2);
    close_pool(loop, u);
    loop_done(loop);
}

static void tls_case(uv_loop_t *loop, const char *host, const char *ca, int insecure, int want)
{
    char addr[128];
    gw_upstream_conf_t conf = {0};
    rec_t r = {0};
    recs_t rs = {&r, 1};
    snprintf(addr, sizeof(addr), "https://%s:%s", host, getenv("GW_MOCK_TLS_PORT"));
    conf.address = addr;
    conf.ca_file = ca;
    conf.insecure = insecure;
    conf.min_conns = 0;
    conf.max_conns = 1;
    gw_upstream_t *u = pool_conf(loop, &conf);
    start(u, &r, 0, 1, "chunks-2-1#tls", 0);
    CHECK(run_until(loop, all_done, &rs, 5000));
    CHECK_EQ_INT(r.res.kind, want);
    if ((int)r.res.kind != want)
        fprintf(stderr, "  %s: %s\n", addr, r.msg);
    if (want == GW_GRPC_OK_STATUS)
        CHECK_EQ_STR(r.text, "c0 c1 ");
    else
        CHECK(strstr(r.msg, "certificate verify failed") != NULL);
    close_pool(loop, u);
}

TEST(tls_verification)
{
    BEGIN(tls_verification);
    tls_case(loop, "localhost", getenv("GW_MOCK_CA"), 0, GW_GRPC_OK_STATUS);
    tls_case(loop, "127.0.0.1", getenv("GW_MOCK_CA"), 0, GW_GRPC_OK_STATUS); /* IP SAN */
    tls_case(loop, "localhost", getenv("GW_MOCK_OTHER_CA"), 0, GW_GRPC_ERR_TLS);
    tls_case(loop, "localhost", NULL, 0, GW_GRPC_ERR_TLS); /* system CAs do not know it */
    tls_case(loop, "localhost", getenv("GW_MOCK_OTHER_CA"), 1, GW_GRPC_OK_STATUS);
    CHECK(mock_event("\"model\":\"chunks-2-1#tls\"", "\":scheme\":\"https\"", NULL));
    loop_done(loop);
}

TEST(connect_and_dns_failures)
{
    BEGIN(connect_and_dns_failures);
    gw_upstream_t *u1 = pool(loop, "http://127.0.0.1:1", NULL, 0, 1);
    gw_upstream_t *u2 = pool(loop, "http://no-such-host.invalid:50051", NULL, 0, 1);
    rec_t r[3] = {{0}};
    recs_t rs = {r, 3};
    start(u1, &r[0], 0, 1, "x", 0);
    start(u1, &r[1], 0, 0, "y", 0); /* queued behind the same failing connect */
    start(u2, &r[2], 0, 1, "x", 0);
    CHECK(run_until(loop, all_done, &rs, 8000));
    CHECK_EQ_INT(r[0].res.kind, GW_GRPC_ERR_CONNECT);
    CHECK_EQ_INT(r[0].res.grpc_status, 14);
    CHECK_EQ_INT(r[1].res.kind, GW_GRPC_ERR_CONNECT);
    CHECK_EQ_INT(r[2].res.kind, GW_GRPC_ERR_DNS);
    close_pool(loop, u1);
    close_pool(loop, u2);
    loop_done(loop);
}

static int stats_buffered(gw_upstream_t *u)
{
    char js[2048];
    CHECK(gw_upstream_stats_json(u, js, sizeof(js)) > 0);
    const char *p = strstr(js, "\"buffered\":");
    return p ? atoi(p + 11) : -1;
}

TEST(pause_bounds_memory_then_resume_delivers_all)
{
    BEGIN(pause_bounds_memory_then_resume_delivers_all);
    const long total = 50L * 1000 * 1000;
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 1);
    rec_t r = {0};
    recs_t rs = {&r, 1};
    char model[64];
    snprintf(model, sizeof(model), "big-%ld", total);
    r.pause_after = 3;
    start(u, &r, 0, 1, model, 0);
    sleep_loop(loop, 1500);
    CHECK_EQ_INT(r.nmsg, 3);
    CHECK(!r.done);
    int buffered = stats_buffered(u);
    long sent = mock_progress(model);
    fprintf(stderr, "  paused: %d bytes buffered here, mock wrote %ld of %ld\n", buffered, sent,
            total);
    CHECK(buffered >= 0 && buffered <= 1048576 + 16384 * 2);
    CHECK(sent < 4L * 1048576); /* the mock is stopped by flow control, not by its own pace */
    gw_grpc_call_pause(r.call, 0);
    CHECK(run_until(loop, all_done, &rs, 60000));
    CHECK_EQ_INT(r.res.kind, GW_GRPC_OK_STATUS);
    CHECK_EQ_INT(r.bytes, total);
    CHECK_EQ_INT(r.n204, 1);
    close_pool(loop, u);
    loop_done(loop);
}

TEST(paused_stream_does_not_stall_its_connection)
{
    BEGIN(paused_stream_does_not_stall_its_connection);
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 1); /* everything on one connection */
    rec_t a = {0}, r[3] = {{0}};
    recs_t rs = {r, 2}, rd = {&r[2], 1};
    a.pause_after = 1;
    start(u, &a, 0, 1, "big-20000000#paused", 0);
    sleep_loop(loop, 800);
    CHECK(stats_buffered(u) > 512 * 1024); /* a holds about one stream window */
    /* 3 MB > the 1 MiB connection window: only completes if a's bytes do not hold it */
    start(u, &r[0], 0, 1, "big-3000000#neighbour", 0);
    start(u, &r[1], 1, 1, "chunks-3-1#neighbour", 0);
    CHECK(run_until(loop, all_done, &rs, 10000));
    CHECK_EQ_INT(r[0].res.kind, GW_GRPC_OK_STATUS);
    CHECK_EQ_INT(r[0].bytes, 3000000);
    CHECK_EQ_INT(r[1].res.kind, GW_GRPC_OK_STATUS);
    CHECK(!a.done && a.nmsg == 1);
    gw_grpc_call_cancel(a.call); /* drops its buffer, RST to the mock */
    CHECK_EQ_INT(stats_buffered(u), 0);
    CHECK(wait_event(loop, "\"event\":\"cancel\"", "\"model\":\"big-20000000#paused\"", 2000));
    start(u, &r[2], 0, 1, "big-3000000#after-cancel", 0);
    CHECK(run_until(loop, all_done, &rd, 10000));
    CHECK_EQ_INT(r[2].res.kind, GW_GRPC_OK_STATUS);
    CHECK_EQ_INT(r[2].bytes, 3000000);
    gw_upstream_counters_t k;
    gw_upstream_counters(u, &k);
    CHECK_EQ_INT(k.conns_opened, 1);
    close_pool(loop, u);
    loop_done(loop);
}

TEST(goaway_drains_without_failures)
{
    BEGIN(goaway_drains_without_failures);
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 4);
    enum { N = 12 };
    rec_t r[N] = {{0}};
    recs_t rs = {r, N};
    gw_upstream_counters_t k;
    for (int i = 0; i < N / 2; i++)
        start(u, &r[i], 0, 1, "goaway-300", 0);
    sleep_loop(loop, 120); /* GOAWAY has arrived; the first streams are still running */
    for (int i = N / 2; i < N; i++)
        start(u, &r[i], i % 2, 1, "chunks-3-10#after-goaway", 0);
    CHECK(run_until(loop, all_done, &rs, 8000));
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(r[i].res.kind, GW_GRPC_OK_STATUS);
        if (r[i].res.kind != GW_GRPC_OK_STATUS)
            fprintf(stderr, "  call %d: %s: %s\n", i, gw_grpc_error_name(r[i].res.kind), r[i].msg);
    }
    CHECK_EQ_STR(r[0].text, "before after");
    gw_upstream_counters(u, &k);
    CHECK(k.goaways >= 1);
    CHECK(k.conns_opened >= 2);
    close_pool(loop, u);
    loop_done(loop);
}

typedef struct {
    gw_upstream_t *u;
    int want;
} conns_want_t;

static int conns_are(void *p)
{
    conns_want_t *w = p;
    gw_upstream_counters_t k;
    gw_upstream_counters(w->u, &k);
    return k.connections == w->want;
}

TEST(pool_grows_to_max_and_shrinks_to_min)
{
    BEGIN(pool_grows_to_max_and_shrinks_to_min);
    char addr[128];
    gw_upstream_conf_t conf = {0};
    enum { N = 8 };
    rec_t r[N] = {{0}};
    recs_t rs = {r, N};
    int peak = 0;
    snprintf(addr, sizeof(addr), "http://%s", getenv("GW_MOCK_LIMITED")); /* 2 streams/conn */
    conf.address = addr;
    conf.min_conns = 1;
    conf.max_conns = 3;
    conf.scale_interval = 0.5;
    gw_upstream_t *u = pool_conf(loop, &conf);
    for (int i = 0; i < N; i++)
        start(u, &r[i], 0, 1, "slow-400", 0);
    uint64_t t_end = uv_now(loop) + 5000, t_dbg = 0;
    while (!all_done(&rs) && uv_now(loop) < t_end) {
        gw_upstream_counters_t k;
        gw_upstream_counters(u, &k);
        if (getenv("GW_DEBUG") && uv_now(loop) - t_dbg > 300) {
            char js[1024];
            gw_upstream_stats_json(u, js, sizeof(js));
            fprintf(stderr, "%s\n", js);
            t_dbg = uv_now(loop);
        }
        if (k.connections > peak)
            peak = k.connections;
        CHECK(k.connections <= 3);
        CHECK(k.streams <= 6);
        sleep_loop(loop, 5);
    }
    CHECK(all_done(&rs));
    CHECK_EQ_INT(peak, 3);
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(r[i].res.kind, GW_GRPC_OK_STATUS);
    char js[2048];
    CHECK(gw_upstream_stats_json(u, js, sizeof(js)) > 0);
    CHECK(strstr(js, "\"max_streams\":2") != NULL);
    conns_want_t w = {u, 1};
    CHECK(run_until(loop, conns_are, &w, 3000)); /* idle extras closed after scale_interval */
    close_pool(loop, u);
    loop_done(loop);
}

TEST(ping_timeout_on_hung_peer)
{
    BEGIN(ping_timeout_on_hung_peer);
    char addr[128];
    gw_upstream_conf_t conf = {0};
    rec_t r = {0};
    recs_t rs = {&r, 1};
    snprintf(addr, sizeof(addr), "http://%s", getenv("GW_MOCK_BLACKHOLE"));
    conf.address = addr;
    conf.min_conns = 1;
    conf.max_conns = 1;
    conf.ping_interval = 0.2;
    conf.ping_timeout = 0.3;
    gw_upstream_t *u = pool_conf(loop, &conf);
    uint64_t t0 = uv_now(loop);
    start(u, &r, 0, 1, "x", 0);
    CHECK(run_until(loop, all_done, &rs, 3000));
    CHECK_EQ_INT(r.res.kind, GW_GRPC_ERR_PING_TIMEOUT);
    CHECK_EQ_INT(r.res.grpc_status, 14);
    CHECK(r.t_close - t0 >= 450 && r.t_close - t0 < 1500);
    close_pool(loop, u);
    loop_done(loop);
}

TEST(close_pool_with_open_calls)
{
    BEGIN(close_pool_with_open_calls);
    gw_upstream_t *u = pool(loop, h2c(), NULL, 2, 2);
    rec_t r[3] = {{0}};
    start(u, &r[0], 0, 1, "hang#close", 0);
    start(u, &r[1], 0, 1, "hang#close2", 2000);
    r[2].pause_after = 1;
    start(u, &r[2], 0, 1, "chunks-5-1#close", 0);
    sleep_loop(loop, 200);
    closed_flag = 0;
    gw_upstream_close(u, on_pool_closed, &closed_flag);
    CHECK_EQ_INT(gw_grpc_call_start(u, "/x/y", NULL, 0, 0, &handler, &r[0], NULL), -ESHUTDOWN);
    CHECK(run_until(loop, flag_set, &closed_flag, 5000));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(r[i].res.kind, GW_GRPC_ERR_CLOSED);
    loop_done(loop);
}

TEST(many_concurrent_streams)
{
    BEGIN(many_concurrent_streams);
    enum { N = 300 };
    gw_upstream_t *u = pool(loop, h2c(), NULL, 1, 2);
    rec_t *r = calloc(N, sizeof(*r));
    recs_t rs = {r, N};
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    for (int i = 0; i < N; i++)
        start(u, &r[i], i % 2, i % 3 != 0, "chunks-20-0#many", 10000);
    CHECK(run_until(loop, all_done, &rs, 20000));
    getrusage(RUSAGE_SELF, &ru1);
    double us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                 ru0.ru_stime.tv_sec) * 1e6 +
                (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                 ru0.ru_stime.tv_usec);
    fprintf(stderr, "  %d calls (2/3 of them 20-chunk streams): %.1f us CPU per call, client side"
            " incl. decoding\n", N, us / N);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += r[i].res.kind == GW_GRPC_OK_STATUS && (i % 3 == 0 ? r[i].nmsg == 1 : r[i].nmsg == 21);
    CHECK_EQ_INT(ok, N);
    free(r);
    close_pool(loop, u);
    loop_done(loop);
}

int main(int argc, char **argv)
{
    if (!getenv("GW_MOCK_H2C")) {
        fprintf(stderr, "run me through spec/c/run-with-mock.sh\n");
        return 2;
    }
    only = argc > 1 ? argv[1] : NULL;
    setvbuf(stdout, NULL, _IONBF, 0);
    RUN(h2c_unary_and_stream_both_services);
    RUN(grpc_status_errors);
    RUN(rst_stream_and_http_status);
    RUN(deadline_and_cancel_reach_the_mock);
    RUN(tls_verification);
    RUN(connect_and_dns_failures);
    RUN(pause_bounds_memory_then_resume_delivers_all);
    RUN(paused_stream_does_not_stall_its_connection);
    RUN(goaway_drains_without_failures);
    RUN(pool_grows_to_max_and_shrinks_to_min);
    RUN(ping_timeout_on_hung_peer);
    RUN(close_pool_with_open_calls);
    RUN(many_concurrent_streams);
    return TEST_REPORT();
}
