/*
 * pieces-gateway: chat completions: upstream calls, retries, SSE, usage.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_chat_params, gw_chat_start. Uses: upstream (gRPC pool), pieces (codec), tok,
 * http. Never: writes to a request after it was answered or aborted, keeps a whole stream in
 * memory, or retries once bytes were sent to the client.
 *
 * Lifecycle of a chat_t: created by gw_chat_start, attached to the request (params->run and
 * req->on_abort). It ends in exactly one of: answered (finish_*), client gone (on_abort). Both
 * detach it from the request, cancel the upstream call and close its timers; the struct is
 * freed in the last timer close callback.
 *
 * Status mapping of upstream failures (no bytes sent yet): unreachable (connect, DNS, TLS,
 * refused, UNAVAILABLE) -> 503; timeouts (deadline, DEADLINE_EXCEEDED, ping) -> 504; any other
 * bad answer (other gRPC statuses, bad frames, response codes other than 200/204, empty text)
 * -> 502. Once the SSE stream has started, a failure is one SSE error event and the end.
 *
 * The end rule (complete answer vs truncation; on_close and on_stream_message apply it):
 *  - a stream is complete when its 204 end frame arrives, or when the call ends with
 *    grpc-status 0 (the gRPC end, with or without a 204 before it). At the 204 the answer is
 *    finished and the call cancelled, so whatever the upstream does after it -- the Vertex
 *    service's habit of an RST_STREAM after its last message (seed-behavior §8.5), a GOAWAY,
 *    a closed connection -- cannot change it;
 *  - a non-stream answer (unary Predict) is complete only with grpc-status 0;
 *  - anything else after the answer started is a truncation, reported as one: RST_STREAM (any
 *    code, either service, with or without text before it), GOAWAY and a closed connection,
 *    TCP EOF or reset, an end inside a gRPC message, any other status. A stream gets one SSE
 *    error event (no finish_reason "stop", no usage, no [DONE]); a non-stream request gets
 *    the error status, never the partial text.
 */
#include "chat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "gw_pieces.h"
#include "gw_tok.h"
#include "gw_upstream.h"
#include "log.h"
#include "metrics_hooks.h"

#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)

typedef struct chat_s {
    gw_chat_env_t *env;
    gw_req_t *req;
    gw_chat_params_t *p;
    uint8_t *pb;
    size_t pb_len;
    gw_grpc_call_t *call;
    int attempt, max_attempts;
    uint64_t deadline; /* loop ms for TIMEOUT (non-stream), 0 = none */
    uv_timer_t retry_timer, limit_timer;
    int handles_open;
    int released;
    gw_buf_t text;     /* non-stream: the reply text */
    char *up_id;
    char id[40];
    uint64_t created;  /* one value for every chunk of the answer (see note_time) */
    int started;       /* SSE head sent */
    int role_sent;
    int saw_text;
    int got_message;
    int paused;
    gw_tok_stream_t *tok;
    char *fail_msg;    /* a bad answer seen in on_message (502) */
    gw_buf_t scratch;  /* one SSE event being built (reused) */
} chat_t;

/* ---------- parameters (filled by the FFI seam) ---------- */

static void params_free(void *data)
{
    gw_chat_params_t *p = data;
    free(p->model);
    free(p->echo);
    free(p->encoding);
    gw_buf_dispose(&p->text);
    free(p->msgs);
    free(p);
}

gw_chat_params_t *gw_chat_params(gw_req_t *req, int create)
{
    if (req->data && req->data_free == params_free)
        return req->data;
    if (!create || req->data)
        return NULL;
    gw_chat_params_t *p = gw_calloc(1, sizeof(*p));
    gw_buf_init(&p->text);
    req->data = p;
    req->data_free = params_free;
    return p;
}

/* ---------- small helpers ---------- */

/* chatcmpl-<28 hex>; random bytes come from a per-thread pool refilled from the kernel's
 * CSPRNG. GW_ERROR when there is no random source at all (never a fixed id). */
static int random_id(char *out)
{
    static const char hex[] = "0123456789abcdef";
    static __thread unsigned char pool[256];
    static __thread size_t avail;
    unsigned char r[14];
    if (avail < sizeof(r)) {
        if (gw_random_bytes(pool, sizeof(pool)) != GW_OK)
            return GW_ERROR;
        avail = sizeof(pool);
    }
    memcpy(r, pool + sizeof(pool) - avail, sizeof(r));
    avail -= sizeof(r);
    memcpy(out, "chatcmpl-", 9);
    for (int i = 0; i < 14; i++) {
        out[9 + 2 * i] = hex[r[i] >> 4];
        out[10 + 2 * i] = hex[r[i] & 15];
    }
    out[37] = '\0';
    return GW_OK;
}

static uint64_t now_s(void) { return (uint64_t)time(NULL); }

static const gw_tok_t *encoding(const chat_t *c) { return gw_tok_get(c->p->encoding); }

static long long completion_tokens(const chat_t *c, size_t counted)
{
    if (counted == GW_TOK_COUNT_ERROR)
        return 0;
    return (long long)counted + (c->p->service == GW_CHAT_VERTEX ? 3 : 0);
}

static void put_usage(gw_buf_t *b, long long prompt, long long completion)
{
    gw_buf_printf(b, "\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                     "\"total_tokens\":%lld}",
                  prompt, completion, prompt + completion);
}

/* {"id":..,"object":..,"created":..,"model":.., — the head of every answer (no printf: it is
 * on the per-chunk path) */
static void put_head(gw_buf_t *b, const chat_t *c, const char *object)
{
    gw_buf_puts(b, "{\"id\":\"");
    gw_buf_puts(b, c->id);
    gw_buf_puts(b, "\",\"object\":\"");
    gw_buf_puts(b, object);
    gw_buf_puts(b, "\",\"created\":");
    gw_buf_put_uint(b, c->created);
    gw_buf_puts(b, ",\"model\":\"");
    gw_buf_json_escape(b, c->p->echo, strlen(c->p->echo));
    gw_buf_puts(b, "\",");
}

/* ---------- lifetime ---------- */

static void on_timer_closed(uv_handle_t *h)
{
    chat_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    free(c->pb);
    free(c->up_id);
    free(c->fail_msg);
    gw_buf_dispose(&c->text);
    gw_buf_dispose(&c->scratch);
    if (c->tok)
        gw_tok_stream_free(c->tok);
    free(c);
}

/* Detach from the request, stop the upstream call and the timers; freed when they closed. */
static void release(chat_t *c)
{
    if (c->released)
        return;
    c->released = 1;
    if (c->req) {
        c->req->on_abort = NULL;
        c->p->run = NULL;
        c->req = NULL;
    }
    if (c->call) {
        gw_grpc_call_t *call = c->call;
        c->call = NULL;
        gw_grpc_call_cancel(call);
    }
    uv_close((uv_handle_t *)&c->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->limit_timer, on_timer_closed);
}

static void on_abort(gw_req_t *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (p && p->run)
        release(p->run);
}

/* ---------- answers ---------- */

/* What the answer means for the metrics (req->stats, the attempt's result): usage when
 * completion >= 0; the attempt's result from the status (200 ok, 503 unreachable, 504 timeout,
 * 502 bad answer). */
static void stats_end(chat_t *c, int status, long long completion)
{
    gw_req_stats_t *st = &c->req->stats;
    if (completion >= 0) {
        st->prompt_tokens = c->p->prompt_tokens;
        st->completion_tokens = completion;
        st->usage_source = GW_USAGE_TOKENIZER;
    }
    if (c->attempt > 0 && status != 500)
        gw_metrics_upstream_attempt("pieces", status == 200   ? GW_UP_OK
                                              : status == 503 ? GW_UP_UNREACHABLE
                                              : status == 504 ? GW_UP_TIMEOUT
                                                              : GW_UP_BAD_ANSWER);
}

static void finish_error(chat_t *c, int status, const char *code, const char *type,
                         const char *msg)
{
    gw_req_t *req = c->req;
    if (!req)
        return;
    stats_end(c, status, -1);
    if (c->started) {
        gw_buf_t b;
        gw_buf_init(&b);
        gw_buf_puts(&b, "data: {\"error\":{\"message\":\"");
        gw_buf_json_escape(&b, msg, strlen(msg));
        gw_buf_printf(&b, "\",\"type\":\"%s\",\"code\":\"%s\"}}\n\n", type, code);
        release(c);
        gw_resp_write(req, b.data, b.len);
        gw_buf_dispose(&b);
        gw_resp_end(req);
        return;
    }
    release(c);
    gw_resp_send_error(req, status, code, msg, type);
}

static void finish_json(chat_t *c)
{
    gw_req_t *req = c->req;
    const gw_tok_t *t = encoding(c);
    long long completion = completion_tokens(c, t ? gw_tok_count(t, c->text.data, c->text.len)
                                                  : GW_TOK_COUNT_ERROR);
    stats_end(c, 200, completion);
    req->stats.first_token_ns = gw_now_ns();
    if (c->up_id && c->p->service == GW_CHAT_GPT)
        snprintf(c->id, sizeof(c->id), "%.39s", c->up_id);
    gw_buf_t b;
    gw_buf_init(&b);
    put_head(&b, c, "chat.completion");
    gw_buf_puts(&b, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
    gw_buf_json_escape(&b, c->text.data ? c->text.data : "", c->text.len);
    gw_buf_puts(&b, "\"},\"finish_reason\":\"stop\"}],");
    put_usage(&b, c->p->prompt_tokens, completion);
    gw_buf_putc(&b, '}');
    release(c);
    gw_resp_send(req, 200, "application/json", b.data, b.len);
    gw_buf_dispose(&b);
}

static void sse_start(chat_t *c)
{
    if (c->started)
        return;
    c->started = 1;
    gw_resp_add_header(c->req, "Cache-Control", 13, "no-cache", 8);
    gw_resp_start(c->req, 200, "text/event-stream");
}

static void on_drain(gw_req_t *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    chat_t *c = p ? p->run : NULL;
    if (c && c->call && c->paused) {
        c->paused = 0;
        gw_grpc_call_pause(c->call, 0);
    }
}

static void sse_content(chat_t *c, const char *text, size_t len, int role)
{
    sse_start(c);
    gw_buf_t *b = &c->scratch;
    gw_buf_reset(b);
    gw_buf_puts(b, "data: ");
    put_head(b, c, "chat.completion.chunk");
    gw_buf_puts(b, "\"choices\":[{\"index\":0,\"delta\":{");
    if (role && !c->role_sent)
        gw_buf_puts(b, "\"role\":\"assistant\",");
    c->role_sent = 1;
    gw_buf_puts(b, "\"content\":\"");
    gw_buf_json_escape(b, text, len);
    gw_buf_puts(b, "\"},\"finish_reason\":null}]}\n\n");
    if (!c->req->stats.first_token_ns)
        c->req->stats.first_token_ns = gw_now_ns();
    gw_resp_write(c->req, b->data, b->len);
    if (c->tok)
        gw_tok_stream_feed(c->tok, text, len);
    c->saw_text = 1;
    if (c->call && !c->paused && gw_resp_queued(c->req) > HIGH_WATER) {
        c->paused = 1;
        gw_grpc_call_pause(c->call, 1);
        gw_resp_on_drain(c->req, on_drain, LOW_WATER);
    }
}

static void sse_finish(chat_t *c)
{
    gw_req_t *req = c->req;
    sse_start(c);
    long long completion =
        completion_tokens(c, c->tok ? gw_tok_stream_finish(c->tok) : GW_TOK_COUNT_ERROR);
    stats_end(c, 200, completion);
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_puts(&b, "data: ");
    put_head(&b, c, "chat.completion.chunk");
    gw_buf_puts(&b, "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]");
    if (!c->p->include_usage) {
        gw_buf_putc(&b, ',');
        put_usage(&b, c->p->prompt_tokens, completion);
    }
    gw_buf_puts(&b, "}\n\n");
    if (c->p->include_usage) {
        gw_buf_puts(&b, "data: ");
        put_head(&b, c, "chat.completion.chunk");
        gw_buf_puts(&b, "\"choices\":[],");
        put_usage(&b, c->p->prompt_tokens, completion);
        gw_buf_puts(&b, "}\n\n");
    }
    gw_buf_puts(&b, "data: [DONE]\n\n");
    release(c);
    gw_resp_write(req, b.data, b.len);
    gw_buf_dispose(&b);
    gw_resp_end(req);
}

/* ---------- upstream callbacks ---------- */

static int decode(const chat_t *c, const uint8_t *msg, size_t len, gw_pieces_reply_t *r)
{
    return c->p->service == GW_CHAT_GPT ? gw_pieces_gpt_decode(msg, len, r)
                                        : gw_pieces_vertex_decode(msg, len, r);
}

static void bad_answer(chat_t *c, const char *msg)
{
    if (!c->fail_msg)
        c->fail_msg = gw_strdup(msg);
}

/* One `created` per answer, the same in every chunk and in stream and non-stream mode: the
 * upstream time (seed: Body.time) of the answer's first GPT reply message when it has one,
 * else the time the request came. Vertex replies carry no time. */
static void note_time(chat_t *c, const gw_pieces_reply_t *r)
{
    if (!c->got_message && c->p->service == GW_CHAT_GPT && r->time)
        c->created = r->time;
}

/* The end rule, stream half (see the top of the file): the 204 frame completes the answer. */
static int reply_completes_stream(const gw_pieces_reply_t *r)
{
    return r->code == GW_PIECES_CODE_END;
}

/* The end rule, call half: only grpc-status 0 completes an answer once it has started. */
static int call_end_completes(const gw_grpc_result_t *res)
{
    return res->kind == GW_GRPC_OK_STATUS;
}

static void on_stream_message(chat_t *c, const gw_pieces_reply_t *r)
{
    if (reply_completes_stream(r)) {
        if (r->has_text && r->text_len)
            sse_content(c, r->text, r->text_len, c->p->service == GW_CHAT_GPT);
        sse_finish(c);
        return;
    }
    if (r->code != GW_PIECES_CODE_DATA && r->code != 0) {
        char m[96];
        snprintf(m, sizeof(m), "Upstream answered with response code %" PRId64, r->code);
        finish_error(c, 502, "bad_gateway", "error", m);
        return;
    }
    sse_start(c);
    if (r->has_text && r->text_len)
        sse_content(c, r->text, r->text_len, 1);
}

static void on_message(gw_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    chat_t *c = ud;
    GW_UNUSED(call);
    if (!c->req || c->fail_msg)
        return;
    gw_pieces_reply_t r;
    if (decode(c, msg, len, &r) != 0) {
        bad_answer(c, "Upstream sent an invalid response");
        if (c->started)
            finish_error(c, 502, "bad_gateway", "error", c->fail_msg);
        return;
    }
    note_time(c, &r);
    c->got_message = 1;
    if (c->p->stream) {
        on_stream_message(c, &r);
    } else if (r.code != GW_PIECES_CODE_DATA && r.code != 0 && r.code != GW_PIECES_CODE_END) {
        char m[96];
        snprintf(m, sizeof(m), "Upstream answered with response code %" PRId64, r.code);
        bad_answer(c, m);
    } else {
        if (r.has_text)
            gw_buf_append(&c->text, r.text, r.text_len);
        if (r.id && !c->up_id)
            c->up_id = gw_strdup(r.id);
    }
    gw_pieces_reply_free(&r);
}

static int transient(const gw_grpc_result_t *res)
{
    switch (res->kind) {
    case GW_GRPC_ERR_CONNECT:
    case GW_GRPC_ERR_DNS:
    case GW_GRPC_ERR_RESET:
    case GW_GRPC_ERR_EOF:
    case GW_GRPC_ERR_REFUSED:
    case GW_GRPC_ERR_PING_TIMEOUT:
        return 1;
    case GW_GRPC_ERR_STATUS:
        return res->grpc_status == 14 || res->grpc_status == 8 || res->grpc_status == 13 ||
               res->grpc_status == 2 || res->grpc_status == 4;
    default:
        return 0;
    }
}

static void fail_with(chat_t *c, const gw_grpc_result_t *res)
{
    char m[512];
    const char *detail = res->message && *res->message ? res->message : "no detail";
    switch (res->kind) {
    case GW_GRPC_ERR_CONNECT:
    case GW_GRPC_ERR_DNS:
    case GW_GRPC_ERR_TLS:
    case GW_GRPC_ERR_REFUSED:
    case GW_GRPC_ERR_CLOSED:
        snprintf(m, sizeof(m), "Upstream unavailable: %s", detail);
        return finish_error(c, 503, "service_unavailable", "error", m);
    case GW_GRPC_ERR_TIMEOUT:
    case GW_GRPC_ERR_PING_TIMEOUT:
        snprintf(m, sizeof(m), "Upstream timed out: %s", detail);
        return finish_error(c, 504, "gateway_timeout", "timeout_error", m);
    case GW_GRPC_ERR_STATUS:
        if (res->grpc_status == 14) {
            snprintf(m, sizeof(m), "Upstream unavailable: %s", detail);
            return finish_error(c, 503, "service_unavailable", "error", m);
        }
        if (res->grpc_status == 4) {
            snprintf(m, sizeof(m), "Upstream timed out: %s", detail);
            return finish_error(c, 504, "gateway_timeout", "timeout_error", m);
        }
        snprintf(m, sizeof(m), "Upstream error (gRPC status %d): %s", res->grpc_status, detail);
        return finish_error(c, 502, "bad_gateway", "error", m);
    case GW_GRPC_ERR_RESET:
    case GW_GRPC_ERR_EOF:
        snprintf(m, sizeof(m), "Upstream ended the call before the answer was complete: %s",
                 detail);
        return finish_error(c, 502, "bad_gateway", "error", m);
    default:
        snprintf(m, sizeof(m), "Bad upstream answer: %s", detail);
        return finish_error(c, 502, "bad_gateway", "error", m);
    }
}

static void attempt(chat_t *c);

static void on_retry_timer(uv_timer_t *t) { attempt(t->data); }

/* Retry a transient failure if attempts and time remain. 1 if a retry was scheduled. */
static int maybe_retry(chat_t *c, const gw_grpc_result_t *res)
{
    if (c->started || c->got_message || !transient(res) || c->attempt >= c->max_attempts)
        return 0;
    uint64_t backoff = 1000ull << (c->attempt - 1 < 16 ? c->attempt - 1 : 16);
    uint64_t now = uv_now(c->env->loop);
    if (c->deadline && now + backoff >= c->deadline)
        return 0;
    gw_metrics_upstream_attempt("pieces", GW_UP_RETRY);
    gw_debug("upstream attempt %d failed (%s), retrying in %" PRIu64 " ms", c->attempt,
             res->message ? res->message : "?", backoff);
    uv_timer_start(&c->retry_timer, on_retry_timer, backoff, 0);
    return 1;
}

static void on_close(gw_grpc_call_t *call, const gw_grpc_result_t *res, void *ud)
{
    chat_t *c = ud;
    GW_UNUSED(call);
    c->call = NULL;
    if (!c->req)
        return;
    if (c->fail_msg)
        return finish_error(c, 502, "bad_gateway", "error", c->fail_msg);
    if (c->p->stream && c->started) {
        if (call_end_completes(res))
            return sse_finish(c);
        return fail_with(c, res); /* truncated: one SSE error event */
    }
    if (call_end_completes(res)) {
        if (c->p->stream)
            return finish_error(c, 502, "bad_gateway", "error",
                                "Upstream ended the stream without a response");
        if (!c->got_message || c->text.len == 0)
            return finish_error(c, 502, "bad_gateway", "error",
                                "Upstream returned an empty response");
        return finish_json(c);
    }
    if (maybe_retry(c, res))
        return;
    fail_with(c, res);
}

static const gw_grpc_handler_t handler = {on_message, on_close};

static void attempt(chat_t *c)
{
    if (!c->req)
        return;
    c->req->stats.attempts = ++c->attempt;
    uint64_t timeout = 0;
    if (c->deadline) {
        uint64_t now = uv_now(c->env->loop);
        if (now >= c->deadline)
            return finish_error(c, 504, "gateway_timeout", "timeout_error",
                                "Upstream timed out: TIMEOUT exceeded");
        timeout = c->deadline - now;
    }
    gw_upstream_t *u = c->p->service == GW_CHAT_GPT ? c->env->gpt : c->env->vertex;
    const char *path;
    if (c->p->service == GW_CHAT_GPT)
        path = c->p->stream ? GW_PIECES_GPT_STREAM : GW_PIECES_GPT_PREDICT;
    else
        path = c->p->stream ? GW_PIECES_VERTEX_STREAM : GW_PIECES_VERTEX_PREDICT;
    gw_buf_reset(&c->text);
    if (!u || gw_grpc_call_start(u, path, c->pb, c->pb_len, timeout, &handler, c, &c->call) != 0) {
        c->call = NULL;
        gw_grpc_result_t res = {GW_GRPC_ERR_CONNECT, 14, "cannot start the upstream call", 0};
        if (!maybe_retry(c, &res))
            fail_with(c, &res);
    }
}

static void on_limit(uv_timer_t *t)
{
    chat_t *c = t->data;
    if (c->p->stream)
        finish_error(c, 504, "stream_timeout", "timeout_error", "Stream timeout");
    else
        finish_error(c, 504, "request_timeout", "timeout_error", "Request timeout");
}

static int encode(const gw_chat_params_t *p, uint8_t **out, size_t *len)
{
    if (p->service == GW_CHAT_VERTEX) {
        const char *t = p->text.data ? p->text.data : "";
        return gw_pieces_vertex_encode(p->model, t, p->v_message_len, t + p->v_message_len,
                                       p->v_rules_len, out, len);
    }
    gw_pieces_msg_t *m = gw_calloc(p->n_msgs + 1, sizeof(*m));
    for (size_t i = 0; i < p->n_msgs; i++) {
        m[i].role = p->msgs[i].role;
        m[i].text = p->text.data + p->msgs[i].off;
        m[i].len = p->msgs[i].len;
    }
    int rc = gw_pieces_gpt_encode(p->model, m, p->n_msgs, p->has_temperature, p->temperature,
                                  p->has_top_p, p->top_p, out, len);
    free(m);
    return rc;
}

void gw_chat_start(gw_chat_env_t *env, gw_req_t *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    chat_t *c = gw_calloc(1, sizeof(*c));
    c->env = env;
    c->req = req;
    c->p = p;
    gw_buf_init(&c->text);
    gw_buf_init(&c->scratch);
    uv_timer_init(env->loop, &c->retry_timer);
    uv_timer_init(env->loop, &c->limit_timer);
    c->retry_timer.data = c->limit_timer.data = c;
    c->handles_open = 2;
    c->created = now_s();
    p->run = c;
    req->on_abort = on_abort;
    gw_metrics_llm_start(req, "pieces", p->stream);
    if (random_id(c->id) != GW_OK) {
        gw_error("chat: no random source (getrandom and /dev/urandom both failed)");
        return finish_error(c, 500, "internal_error", "error", "Cannot generate a response id");
    }
    if (encode(p, &c->pb, &c->pb_len) != 0)
        return finish_error(c, 500, "internal_error", "error", "Cannot encode the request");
    const gw_config_t *cfg = env->cfg;
    c->max_attempts = cfg->upstream.max_retries > 0 ? cfg->upstream.max_retries : 1;
    double limit = p->stream ? cfg->stream_timeout : cfg->request_timeout;
    if (limit > 0)
        uv_timer_start(&c->limit_timer, on_limit, (uint64_t)(limit * 1000), 0);
    if (!p->stream && cfg->upstream.timeout > 0)
        c->deadline = uv_now(env->loop) + (uint64_t)(cfg->upstream.timeout * 1000);
    if (p->stream) {
        const gw_tok_t *t = encoding(c);
        c->tok = t ? gw_tok_stream_new(t) : NULL;
    }
    attempt(c);
}
