/*
 * pieces-gateway: the OpenAI backend (HTTP client, SSE, mapping) against the Node mock
 * (spec/e2e/mock/openai.js), run by spec/c/run-with-openai-mock.sh.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Covers: HTTP/1.1 keep-alive reuse, stream and non-stream answers, tool calls, error classes
 * (429 with Retry-After, 5xx, malformed SSE, reset, stall, connection refused, connect
 * timeout), TLS with h2 by ALPN (right CA, wrong CA), cancel, pause/resume.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "backend/backend.h"
#include "backend/openai/httpc.h"
#include "gw.h"
#include "gw_test.h"

static uv_loop_t loop;

typedef struct {
    gw_buf_t log;
    int done, heads, texts;
    gw_be_class_t cls;
    int status, retryable;
    double retry_after;
    gw_backend_t *b;
    gw_backend_call_t *call;
    int cancel_after_head;
    int pause_on_head;
} rec_t;

static void on_event(void *ud, const gw_llm_event_t *e)
{
    rec_t *r = ud;
    switch (e->type) {
    case GW_EV_HEAD:
        r->heads++;
        gw_buf_puts(&r->log, "H;");
        if (r->cancel_after_head) {
            r->b->vt->cancel(r->call);
            r->done = 1;
        }
        if (r->pause_on_head)
            r->b->vt->pause(r->call, 1);
        break;
    case GW_EV_TEXT:
        r->texts++;
        if (r->texts < 50)
            gw_buf_printf(&r->log, "T:%.*s;", (int)e->len, e->text);
        break;
    case GW_EV_TOOL_CALL:
        gw_buf_printf(&r->log, "C%d:%.*s/%.*s/%.*s;", e->tool.index,
                      e->tool.id ? (int)e->tool.id_len : 0, e->tool.id ? e->tool.id : "",
                      e->tool.name ? (int)e->tool.name_len : 0, e->tool.name ? e->tool.name : "",
                      (int)e->len, e->text);
        break;
    case GW_EV_FINISH: gw_buf_printf(&r->log, "F:%s;", gw_finish_name(e->finish)); break;
    case GW_EV_USAGE:
        gw_buf_printf(&r->log, "U:%lld/%lld;", e->prompt_tokens, e->completion_tokens);
        break;
    case GW_EV_END: gw_buf_puts(&r->log, "END"); r->done = 1; break;
    case GW_EV_ERROR:
        gw_buf_printf(&r->log, "ERR:%s", gw_be_class_name(e->error.cls));
        r->cls = e->error.cls;
        r->status = e->error.status;
        r->retryable = e->error.retryable;
        r->retry_after = e->error.retry_after;
        r->done = 1;
        fprintf(stderr, "  (error: %s)\n", e->error.message);
        break;
    default: break;
    }
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until the call is over or ms pass. */
static void run_until(rec_t *r, int ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_tick, 10, 10);
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (!r->done && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static gw_backend_t *backend(const char *url, const char *ca, int insecure, const char **hdrs)
{
    gw_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.upstream.connect_timeout = 0.5;
    gw_backend_conf_t bc = {.name = "openai", .type = GW_BACKEND_OPENAI, .base_url = (char *)url,
                            .api_key = "sk-test-key", .ca_file = (char *)ca,
                            .insecure = insecure};
    char *names[4], *values[4];
    for (; hdrs && hdrs[2 * bc.n_headers]; bc.n_headers++) {
        names[bc.n_headers] = (char *)hdrs[2 * bc.n_headers];
        values[bc.n_headers] = (char *)hdrs[2 * bc.n_headers + 1];
    }
    bc.header_names = names;
    bc.header_values = values;
    gw_backend_t *b = NULL;
    char *err = NULL;
    if (gw_backend_openai_new(&loop, &cfg, &bc, &b, &err) != 0) {
        fprintf(stderr, "backend: %s\n", err);
        free(err);
        return NULL;
    }
    return b;
}

static void call(gw_backend_t *b, rec_t *r, const char *model, int stream, uint64_t timeout)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"model\":\"public\",\"messages\":[{\"role\":\"user\","
                                 "\"content\":\"hi\"}],\"temperature\":0.5}");
    gw_chat_request_t rq = {"public", stream, 0, body, strlen(body)};
    gw_chat_target_t t;
    gw_chat_target_init(&t);
    snprintf(t.backend, sizeof(t.backend), "openai");
    t.model = gw_strdup(model);
    r->b = b;
    gw_buf_init(&r->log);
    CHECK(b->vt->start(b, &rq, &t, timeout, on_event, r, &r->call) == 0);
    run_until(r, 5000);
    gw_chat_target_dispose(&t);
    gw_buf_putc(&r->log, '\0');
}

static void close_backend(gw_backend_t *b)
{
    b->vt->close(b);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static const char *HELLO = "H;T:Hello;T:,;T: world;F:stop;U:17/5;END";

TEST(plain_keepalive_stream_and_answer)
{
    gw_backend_t *b = backend(getenv("GW_OAI_HTTP"), NULL, 0, NULL);
    CHECK(b != NULL);
    if (!b)
        return;
    for (int i = 0; i < 3; i++) {
        rec_t r = {0};
        call(b, &r, "m", 1, 0);
        CHECK_EQ_STR(r.log.data, HELLO);
        gw_buf_dispose(&r.log);
        rec_t a = {0};
        call(b, &a, "m", 0, 5000);
        CHECK_EQ_STR(a.log.data, "H;T:Hello, world;F:stop;U:17/5;END");
        gw_buf_dispose(&a.log);
    }
    rec_t s = {0};
    call(b, &s, "split", 1, 0);
    CHECK_EQ_STR(s.log.data, HELLO);
    gw_buf_dispose(&s.log);
    rec_t t = {0};
    call(b, &t, "tools", 1, 0);
    CHECK_EQ_STR(t.log.data, "H;C0:call_mock1/get_weather/;C0://{\"ci;C0://ty\": \"Pa;"
                             "C0://ris\"};F:tool_calls;U:17/5;END");
    gw_buf_dispose(&t.log);
    gw_httpc_counters_t k;
    gw_buf_t st;
    gw_buf_init(&st);
    b->vt->stats_json(b, &st);
    /* 8 requests on at most 2 connections: a stream's connection is busy until its final
     * chunk arrives, just after [DONE], so the next request may open a second one */
    if (!strstr(st.data, "\"opened\":1,") && !strstr(st.data, "\"opened\":2,")) {
        fprintf(stderr, "stats: %s\n", st.data);
        CHECK(0);
    }
    CHECK(strstr(st.data, "sk-test") == NULL);
    gw_buf_dispose(&st);
    (void)k;
    close_backend(b);
}

TEST(error_classes)
{
    gw_backend_t *b = backend(getenv("GW_OAI_HTTP"), NULL, 0, NULL);
    if (!b)
        return;
    rec_t r = {0};
    call(b, &r, "status-429", 1, 0);
    CHECK(r.cls == GW_BE_REFUSED && r.status == 429 && r.retry_after == 7 && r.heads == 0);
    gw_buf_dispose(&r.log);
    rec_t s = {0};
    call(b, &s, "status-503", 0, 0);
    CHECK(s.cls == GW_BE_BAD_ANSWER && s.status == 503 && s.retryable);
    gw_buf_dispose(&s.log);
    rec_t m = {0};
    call(b, &m, "malformed", 1, 0);
    CHECK_EQ_STR(m.log.data, "H;ERR:bad_answer");
    gw_buf_dispose(&m.log);
    rec_t x = {0};
    call(b, &x, "reset", 1, 0);
    CHECK_EQ_STR(x.log.data, "H;T:Hello;ERR:bad_answer");
    gw_buf_dispose(&x.log);
    rec_t y = {0};
    call(b, &y, "reset", 0, 0);
    CHECK(y.cls == GW_BE_UNREACHABLE && y.heads == 0);
    gw_buf_dispose(&y.log);
    rec_t e = {0};
    call(b, &e, "error-mid", 1, 0);
    CHECK_EQ_STR(e.log.data, "H;ERR:bad_answer");
    gw_buf_dispose(&e.log);
    rec_t z = {0};
    call(b, &z, "stall", 0, 300);
    CHECK(z.cls == GW_BE_TIMEOUT);
    gw_buf_dispose(&z.log);
    rec_t ok = {0}; /* the pool still works after all that */
    call(b, &ok, "m", 1, 0);
    CHECK_EQ_STR(ok.log.data, HELLO);
    gw_buf_dispose(&ok.log);
    close_backend(b);
    gw_backend_t *dead = backend("http://127.0.0.1:1/v1", NULL, 0, NULL);
    rec_t d = {0};
    call(dead, &d, "m", 1, 0);
    CHECK(d.cls == GW_BE_UNREACHABLE && d.retryable);
    gw_buf_dispose(&d.log);
    close_backend(dead);
    gw_backend_t *bh = backend(getenv("GW_OAI_BLACKHOLE"), NULL, 1, NULL);
    rec_t h = {0};
    uint64_t t0 = uv_now(&loop);
    call(bh, &h, "m", 1, 0);
    CHECK(h.cls == GW_BE_TIMEOUT);
    /* the connect timeout (0.5 s) ended it: a stream has no deadline (generous on a loaded box) */
    CHECK(uv_now(&loop) - t0 < 4000);
    gw_buf_dispose(&h.log);
    close_backend(bh);
}

TEST(tls_h2_and_verification)
{
    gw_backend_t *b = backend(getenv("GW_OAI_HTTPS"), getenv("GW_OAI_CA"), 0, NULL);
    if (!b)
        return;
    for (int i = 0; i < 2; i++) {
        rec_t r = {0};
        call(b, &r, "m", 1, 0);
        CHECK_EQ_STR(r.log.data, HELLO);
        gw_buf_dispose(&r.log);
        rec_t a = {0};
        call(b, &a, "n2", 0, 5000);
        CHECK_EQ_STR(a.log.data, "H;T:One;F:stop;T:Two;F:length;U:17/5;END");
        gw_buf_dispose(&a.log);
    }
    gw_buf_t st;
    gw_buf_init(&st);
    b->vt->stats_json(b, &st);
    CHECK(strstr(st.data, "\"h2\":1,") != NULL);
    gw_buf_dispose(&st);
    close_backend(b);
    gw_backend_t *w = backend(getenv("GW_OAI_HTTPS"), getenv("GW_OAI_OTHER_CA"), 0, NULL);
    rec_t r = {0};
    call(w, &r, "m", 1, 0);
    CHECK(r.cls == GW_BE_UNREACHABLE && !r.retryable);
    gw_buf_dispose(&r.log);
    close_backend(w);
    gw_backend_t *in = backend(getenv("GW_OAI_HTTPS"), getenv("GW_OAI_OTHER_CA"), 1, NULL);
    rec_t i = {0};
    call(in, &i, "m", 1, 0);
    CHECK_EQ_STR(i.log.data, HELLO);
    gw_buf_dispose(&i.log);
    close_backend(in);
}

TEST(cancel_and_pause)
{
    for (int tls = 0; tls < 2; tls++) {
        const char *h[] = {"x-mock-total", "2000000", NULL};
        gw_backend_t *b = tls ? backend(getenv("GW_OAI_HTTPS"), getenv("GW_OAI_CA"), 0, h)
                              : backend(getenv("GW_OAI_HTTP"), NULL, 0, h);
        if (!b)
            return;
        rec_t c = {0};
        c.cancel_after_head = 1;
        call(b, &c, "stall", 1, 0);
        CHECK_EQ_STR(c.log.data, "H;");
        gw_buf_dispose(&c.log);
        rec_t p = {0};
        p.pause_on_head = 1;
        p.b = b;
        gw_buf_init(&p.log);
        const char *body = "{\"model\":\"x\"}";
        gw_chat_request_t rq = {"x", 1, 0, body, strlen(body)};
        gw_chat_target_t t;
        gw_chat_target_init(&t);
        t.model = gw_strdup("big");
        CHECK(b->vt->start(b, &rq, &t, 0, on_event, &p, &p.call) == 0);
        run_until(&p, 400);
        int paused_texts = p.texts;
        CHECK(!p.done);
        CHECK(paused_texts < 40); /* 2 MB would be 122 events: reading stopped */
        b->vt->pause(p.call, 0);
        run_until(&p, 5000);
        CHECK(p.done && strstr(p.log.data, "END") != NULL);
        CHECK(p.texts >= 122);
        gw_chat_target_dispose(&t);
        gw_buf_dispose(&p.log);
        close_backend(b);
    }
}

int main(void)
{
    uv_loop_init(&loop);
    if (!getenv("GW_OAI_HTTP")) {
        fprintf(stderr, "run through spec/c/run-with-openai-mock.sh\n");
        return 1;
    }
    RUN(plain_keepalive_stream_and_answer);
    RUN(error_classes);
    RUN(tls_h2_and_verification);
    RUN(cancel_and_pause);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return TEST_REPORT();
}
