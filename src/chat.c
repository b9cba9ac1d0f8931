/*
 * pieces-gateway: the chat engine: attempts, retries, fallback, timeouts, usage, answers.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_chat_params, gw_chat_start. Uses: the backends (src/backend/backend.h), the
 * ingress formats (ingress.h), tok, http.
 * Never: writes to a request after it was answered or aborted, keeps a whole stream in memory,
 * or retries / falls back once bytes were sent to the client.
 *
 * Lifecycle of a chat_t: created by gw_chat_start, attached to the request (params->run and
 * req->on_abort). It ends in exactly one of: answered (finish_*), client gone (on_abort). Both
 * detach it from the request, cancel the backend call and close its timers; the struct is
 * freed in the last timer close callback.
 *
 * Attempts: the route phase's targets are tried in order. A failed attempt (ERROR before the
 * answer started, or an END without an answer) is retried on the same target while the
 * backend calls it retryable, attempts remain (MAX_RETRIES per target) and the backoff (1 s,
 * 2 s, ...) fits in TIMEOUT (non-stream; each target gets its own TIMEOUT, REQUEST_TIMEOUT
 * bounds the whole request); then the next target is tried at once (fallback),
 * unless the upstream refused the request itself (4xx other than 429: the client's problem,
 * passed through). A stream commits at its first answer event (HEAD): after it a failure is
 * one error event in the stream. Each attempt's outcome is recorded for the log phase
 * (breaker) and the metrics.
 *
 * Client status of a failure: UNREACHABLE 503, TIMEOUT 504, BAD_ANSWER 502, REFUSED the
 * upstream's 4xx as `upstream_error` (429 with the upstream's Retry-After).
 *
 * Usage: the upstream's numbers when it sent them, else the route phase's prompt count and the
 * tokenizer's count of the completion (plus the target's completion offset). A backend that
 * sends usage gets its stream text kept (up to DEFER_MAX bytes) instead of tokenized chunk by
 * chunk, so the tokenizer only runs when the numbers do not come.
 */
#include "chat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "freelist.h"
#include "gw.h"
#include "gw_tok.h"
#include "ingress.h"
#include "log.h"
#include "metrics_hooks.h"

#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)
#define DEFER_MAX 8192 /* stream text kept untokenized (per stream memory vs CPU) */
#define MAX_CHOICES 128
#define STATE_INLINE 512 /* a format's state up to this size lives in chat_t */

typedef struct chat_s {
    gw_chat_env_t *env;
    gw_req_t *req;
    gw_chat_params_t *p;
    const gw_ingress_t *fmt;
    gw_out_t out;
    gw_chat_request_t rq;
    size_t ti;               /* the current target */
    int tries, max_attempts; /* attempts on the current target */
    gw_backend_t *b;
    gw_backend_call_t *call;
    uint64_t deadline; /* loop ms for TIMEOUT (non-stream), 0 = none */
    uv_timer_t retry_timer, limit_timer;
    int handles_open;
    int released;
    char id[48];
    char *up_id;
    int started; /* stream: the SSE head was sent */
    int head;    /* this attempt's answer began */
    int paused;
    gw_answer_t ans;
    int has_usage;
    long long up_prompt, up_completion;
    gw_tok_stream_t *tok;
    gw_buf_t deferred; /* stream text not tokenized yet (backends that send usage) */
    int deferring;
    gw_buf_t scratch; /* the event being written (reused) */
    gw_stop_t stop;   /* the request's stop sequences over choice 0's text */
    gw_buf_t shown;   /* what of a text delta the stop matcher lets through (reused) */
    max_align_t state_mem[STATE_INLINE / sizeof(max_align_t)]; /* out.state when it fits */
} chat_t;

/* Per-thread free lists (freelist.h): a stream's parameters and engine state are large
 * enough (~2.8 KiB, ~1.5 KiB) that malloc would consolidate its fast bins for each. */
static __thread gw_freelist_t params_pool, chat_pool;

void gw_chat_pools_drain(void)
{
    gw_freelist_drain(&params_pool, sizeof(gw_chat_params_t));
    gw_freelist_drain(&chat_pool, sizeof(chat_t));
}

static void chat_pools_at_exit(void)
{
    gw_chat_pools_drain();
    gw_buf_cache_drain();
}
GW_FREELIST_OWNER(chat_pools, chat_pools_at_exit)

/* s into dst[cap] (truncated, NUL-ended): the stats' name fields, without printf */
static void copy_name(char *dst, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ---------- parameters (filled by the FFI seam) ---------- */

static void params_free(void *data)
{
    gw_chat_params_t *p = data;
    free(p->echo);
    free(p->ingress);
    free(p->fields);
    free(p->body);
    for (size_t i = 0; i < p->n_stops; i++)
        free(p->stops[i]);
    for (size_t i = 0; i < p->n_targets; i++)
        gw_chat_target_dispose(&p->targets[i]);
    gw_freelist_put(&params_pool, p, sizeof(*p));
}

gw_chat_params_t *gw_chat_params(gw_req_t *req, int create)
{
    if (req->data && req->data_free == params_free)
        return req->data;
    if (!create || req->data)
        return NULL;
    chat_pools_arm();
    gw_chat_params_t *p = gw_freelist_get(&params_pool, sizeof(*p));
    if (!p)
        p = gw_calloc(1, sizeof(*p)); /* out of memory: gw_calloc reports it and aborts */
    req->data = p;
    req->data_free = params_free;
    return p;
}

/* ---------- small helpers ---------- */

/* <prefix><28 hex>; random bytes come from a per-thread pool refilled from the kernel's
 * CSPRNG. GW_ERROR when there is no random source at all (never a fixed id). */
static int random_id(char *out, size_t cap, const char *prefix)
{
    static const char hex[] = "0123456789abcdef";
    static __thread unsigned char pool[256];
    static __thread size_t avail;
    unsigned char r[14];
    size_t pl = strlen(prefix);
    if (avail < sizeof(r)) {
        if (gw_random_bytes(pool, sizeof(pool)) != GW_OK)
            return GW_ERROR;
        avail = sizeof(pool);
    }
    memcpy(r, pool + sizeof(pool) - avail, sizeof(r));
    avail -= sizeof(r);
    if (pl + 29 > cap)
        pl = cap - 29;
    memcpy(out, prefix, pl);
    for (int i = 0; i < 14; i++) {
        out[pl + 2 * i] = hex[r[i] >> 4];
        out[pl + 1 + 2 * i] = hex[r[i] & 15];
    }
    out[pl + 28] = '\0';
    return GW_OK;
}

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static gw_chat_target_t *target(chat_t *c)
{
    return &c->p->targets[c->ti];
}

static void answer_dispose(gw_answer_t *a)
{
    for (size_t i = 0; i < a->n_choices; i++) {
        gw_choice_t *ch = &a->choices[i];
        gw_buf_dispose(&ch->text);
        gw_buf_dispose(&ch->refusal);
        for (size_t t = 0; t < ch->n_tools; t++) {
            gw_buf_dispose(&ch->tools[t].id);
            gw_buf_dispose(&ch->tools[t].name);
            gw_buf_dispose(&ch->tools[t].args);
        }
        free(ch->tools);
    }
    free(a->choices);
    memset(a, 0, sizeof(*a));
}

static gw_choice_t *choice(chat_t *c, int i)
{
    gw_answer_t *a = &c->ans;
    if (i < 0 || i >= MAX_CHOICES)
        return NULL;
    if ((size_t)i >= a->n_choices) {
        a->choices = gw_realloc(a->choices, (size_t)(i + 1) * sizeof(*a->choices));
        memset(a->choices + a->n_choices, 0, (size_t)(i + 1 - a->n_choices) * sizeof(gw_choice_t));
        a->n_choices = (size_t)i + 1;
    }
    return &a->choices[i];
}

static gw_tool_acc_t *tool(gw_choice_t *ch, int index)
{
    for (size_t t = 0; t < ch->n_tools; t++)
        if (ch->tools[t].index == index)
            return &ch->tools[t];
    if (ch->n_tools >= MAX_CHOICES)
        return NULL;
    ch->tools = gw_realloc(ch->tools, (ch->n_tools + 1) * sizeof(*ch->tools));
    gw_tool_acc_t *k = &ch->tools[ch->n_tools++];
    memset(k, 0, sizeof(*k));
    k->index = index;
    return k;
}

/* gateway_upstream_attempts_total's result of an attempt that ended with class `result`. */
static gw_up_result_t up_result(int result)
{
    switch (result) {
    case GW_BE_OK: return GW_UP_OK;
    case GW_BE_UNREACHABLE: return GW_UP_UNREACHABLE;
    case GW_BE_TIMEOUT: return GW_UP_TIMEOUT;
    case GW_BE_REFUSED: return GW_UP_REFUSED;
    default: return GW_UP_BAD_ANSWER;
    }
}

/* Each attempt counts once by its class in the metrics (a cancelled one, the client gone, not
 * at all); a retry or fallback decision after it counts once more (mark_next). */
static void record_attempt(chat_t *c, int result, int status)
{
    gw_chat_params_t *p = c->p;
    if (result != GW_ATTEMPT_CANCELLED)
        gw_metrics_upstream_attempt(target(c)->backend, up_result(result));
    if (p->n_attempts >= GW_CHAT_MAX_ATTEMPTS)
        return;
    gw_chat_attempt_t *a = &p->attempts[p->n_attempts++];
    memcpy(a->backend, target(c)->backend, sizeof(a->backend)); /* same size, NUL-ended */
    a->result = result;
    a->status = status;
    a->next = GW_ATTEMPT_NEXT_NONE;
    if (c->req)
        c->req->stats.attempts = (int)p->n_attempts;
}

static void mark_next(chat_t *c, int next)
{
    gw_metrics_upstream_attempt(target(c)->backend,
                                next == GW_ATTEMPT_NEXT_RETRY ? GW_UP_RETRY : GW_UP_FALLBACK);
    if (c->p->n_attempts)
        c->p->attempts[c->p->n_attempts - 1].next = next;
}

/* ---------- lifetime ---------- */

static void on_timer_closed(uv_handle_t *h)
{
    chat_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    free(c->up_id);
    answer_dispose(&c->ans);
    gw_buf_dispose(&c->deferred);
    gw_buf_recycle(&c->scratch);
    gw_buf_dispose(&c->shown);
    gw_stop_dispose(&c->stop);
    if (c->fmt->dispose)
        c->fmt->dispose(&c->out);
    if (c->out.state != (void *)c->state_mem)
        free(c->out.state);
    if (c->tok)
        gw_tok_stream_free(c->tok);
    gw_freelist_put(&chat_pool, c, sizeof(*c));
}

static void cancel_call(chat_t *c)
{
    if (!c->call)
        return;
    gw_backend_call_t *call = c->call;
    c->call = NULL;
    c->b->vt->cancel(call);
}

/* Detach from the request, stop the backend call and the timers; freed when they closed. */
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
    cancel_call(c);
    uv_close((uv_handle_t *)&c->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->limit_timer, on_timer_closed);
}

static void on_abort(gw_req_t *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    chat_t *c = p ? p->run : NULL;
    if (!c)
        return;
    if (c->call)
        record_attempt(c, GW_ATTEMPT_CANCELLED, 0);
    release(c);
}

/* ---------- usage ---------- */

static void tok_feed(chat_t *c, const char *p, size_t n)
{
    if (!n)
        return;
    if (c->deferring && c->deferred.len + n <= DEFER_MAX) {
        gw_buf_append(&c->deferred, p, n);
        return;
    }
    if (!c->tok) {
        const gw_tok_t *t = gw_tok_get(target(c)->encoding ? target(c)->encoding : "");
        if (!t)
            return;
        c->tok = gw_tok_stream_new(t);
    }
    if (c->deferring) { /* too much to keep: count as it comes from now on */
        c->deferring = 0;
        gw_tok_stream_feed(c->tok, c->deferred.data, c->deferred.len);
        gw_buf_dispose(&c->deferred);
    }
    gw_tok_stream_feed(c->tok, p, n);
}

static size_t count_answer(chat_t *c)
{
    const gw_tok_t *t = gw_tok_get(target(c)->encoding ? target(c)->encoding : "");
    size_t total = 0;
    if (!t)
        return GW_TOK_COUNT_ERROR;
    for (size_t i = 0; i < c->ans.n_choices; i++) {
        gw_choice_t *ch = &c->ans.choices[i];
        const gw_buf_t *parts[2] = {&ch->text, &ch->refusal};
        for (int k = 0; k < 2; k++)
            if (parts[k]->len)
                total += gw_tok_count(t, parts[k]->data, parts[k]->len);
        for (size_t j = 0; j < ch->n_tools; j++)
            total += gw_tok_count(t, ch->tools[j].name.data ? ch->tools[j].name.data : "",
                                  ch->tools[j].name.len) +
                     gw_tok_count(t, ch->tools[j].args.data ? ch->tools[j].args.data : "",
                                  ch->tools[j].args.len);
    }
    return total;
}

static void fill_usage(chat_t *c)
{
    gw_answer_t *a = &c->ans;
    gw_req_stats_t *st = &c->req->stats;
    if (c->has_usage) {
        a->prompt_tokens = c->up_prompt;
        a->completion_tokens = c->up_completion;
        st->usage_source = GW_USAGE_UPSTREAM;
    } else {
        size_t n;
        if (!c->rq.stream) {
            n = count_answer(c);
        } else {
            if (c->deferring && c->deferred.len) {
                c->deferring = 0;
                tok_feed(c, c->deferred.data, c->deferred.len);
            }
            n = c->tok ? gw_tok_stream_finish(c->tok) : 0;
        }
        a->prompt_tokens = target(c)->prompt_tokens;
        a->completion_tokens =
            n == GW_TOK_COUNT_ERROR ? 0 : (long long)n + target(c)->completion_offset;
        st->usage_source = GW_USAGE_TOKENIZER;
    }
    st->prompt_tokens = a->prompt_tokens;
    st->completion_tokens = a->completion_tokens;
    copy_name(st->backend, sizeof(st->backend), target(c)->backend);
}

/* ---------- answers ---------- */

static void client_error(chat_t *c, int status, const char *code, const char *type, const char *msg,
                         double retry_after)
{
    gw_req_t *req = c->req;
    gw_out_error_t e = {status, code, type, msg};
    gw_buf_t b;
    if (!req)
        return;
    gw_buf_init(&b);
    if (c->started) {
        c->fmt->error(&c->out, &b, &e);
        release(c);
        gw_resp_write(req, b.data, b.len);
        gw_resp_end(req);
    } else {
        release(c);
        if (retry_after >= 0) {
            char v[24];
            int n = snprintf(v, sizeof(v), "%.0f", retry_after);
            gw_resp_add_header(req, "Retry-After", 11, v, (size_t)n);
        }
        c->fmt->error_body(&b, &e);
        gw_resp_send(req, status, "application/json", b.data, b.len);
    }
    gw_buf_dispose(&b);
}

/* The client's view of a backend failure. */
static void fail_event(chat_t *c, const gw_llm_event_t *ev)
{
    const char *msg = ev->error.message ? ev->error.message : "Bad upstream answer";
    switch (ev->error.cls) {
    case GW_BE_UNREACHABLE: return client_error(c, 503, "service_unavailable", "error", msg, -1);
    case GW_BE_TIMEOUT: return client_error(c, 504, "gateway_timeout", "timeout_error", msg, -1);
    case GW_BE_REFUSED: {
        int st = ev->error.status >= 400 && ev->error.status < 500 ? ev->error.status : 502;
        return client_error(c, st, "upstream_error", "error", msg,
                            st == 429 ? ev->error.retry_after : -1);
    }
    default: return client_error(c, 502, "bad_gateway", "error", msg, -1);
    }
}

static void finish_json(chat_t *c)
{
    gw_req_t *req = c->req;
    gw_buf_t b;
    fill_usage(c);
    if (c->up_id && c->fmt->upstream_id)
        snprintf(c->id, sizeof(c->id), "%.47s", c->up_id);
    gw_buf_init(&b);
    c->fmt->answer(&c->out, &b, &c->ans);
    req->stats.first_token_ns = gw_now_ns();
    release(c);
    gw_resp_send(req, 200, "application/json", b.data, b.len);
    gw_buf_dispose(&b);
}

static void finish_stream(chat_t *c)
{
    gw_req_t *req = c->req;
    gw_buf_t *b = &c->scratch;
    fill_usage(c);
    gw_buf_reset(b);
    c->fmt->close(&c->out, b, &c->ans);
    gw_buf_t out = *b; /* release() keeps the scratch buffer alive until the timers close */
    release(c);
    gw_resp_write(req, out.data, out.len);
    gw_resp_end(req);
}

static void on_drain(gw_req_t *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    chat_t *c = p ? p->run : NULL;
    if (c && c->call && c->paused) {
        c->paused = 0;
        c->b->vt->pause(c->call, 0);
    }
}

static void write_scratch(chat_t *c)
{
    gw_resp_write(c->req, c->scratch.data, c->scratch.len);
    if (c->call && !c->paused && gw_resp_queued(c->req) > HIGH_WATER) {
        c->paused = 1;
        c->b->vt->pause(c->call, 1);
        gw_resp_on_drain(c->req, on_drain, LOW_WATER);
    }
}

/* ---------- backend events ---------- */

static void on_head(chat_t *c, const gw_llm_event_t *ev)
{
    c->head = 1;
    if (ev->created)
        c->out.created = ev->created;
    if (ev->text && ev->len && !c->up_id)
        c->up_id = gw_strndup(ev->text, ev->len);
    if (!c->rq.stream || c->started)
        return;
    c->started = 1;
    c->out.prompt_tokens = target(c)->prompt_tokens;
    gw_resp_add_header(c->req, "Cache-Control", 13, "no-cache", 8);
    gw_resp_start(c->req, 200, "text/event-stream");
    gw_buf_reset(&c->scratch);
    c->fmt->open(&c->out, &c->scratch);
    if (c->scratch.len)
        write_scratch(c);
}

static void accumulate(gw_choice_t *ch, const gw_llm_event_t *ev)
{
    if (ev->type == GW_EV_TEXT) {
        gw_buf_append(&ch->text, ev->text, ev->len);
    } else if (ev->type == GW_EV_REFUSAL) {
        gw_buf_append(&ch->refusal, ev->text, ev->len);
    } else {
        gw_tool_acc_t *k = tool(ch, ev->tool.index);
        if (!k)
            return;
        if (ev->tool.id && !k->id.len)
            gw_buf_append(&k->id, ev->tool.id, ev->tool.id_len);
        if (ev->tool.name && !k->name.len)
            gw_buf_append(&k->name, ev->tool.name, ev->tool.name_len);
        gw_buf_append(&k->args, ev->text, ev->len);
    }
}

/* One delta to the answer (non-stream) or to the client (stream). */
static void deliver(chat_t *c, gw_choice_t *ch, const gw_llm_event_t *ev)
{
    if (!c->rq.stream) {
        accumulate(ch, ev);
        return;
    }
    gw_out_delta_t d = {ev->type, ev->choice, !ch->role_sent && !(ev->flags & GW_EV_F_NO_ROLE), ev};
    ch->role_sent = 1;
    gw_buf_reset(&c->scratch);
    c->fmt->delta(&c->out, &c->scratch, &d);
    if (!c->req->stats.first_token_ns)
        c->req->stats.first_token_ns = gw_now_ns();
    tok_feed(c, ev->text, ev->len);
    if (ev->type == GW_EV_TOOL_CALL && ev->tool.name)
        tok_feed(c, ev->tool.name, ev->tool.name_len);
    write_scratch(c);
}

/* Choice 0's text through the stop matcher: what it lets through is delivered; a match ends
 * the answer there (finish stop, the sequence for the format), the upstream call cancelled. */
static void stop_filter(chat_t *c, gw_choice_t *ch, const gw_llm_event_t *ev)
{
    gw_buf_reset(&c->shown);
    int which = gw_stop_feed(&c->stop, ev->text, ev->len, &c->shown);
    if (c->shown.len) {
        gw_llm_event_t part = *ev;
        part.text = c->shown.data;
        part.len = c->shown.len;
        deliver(c, ch, &part);
    }
    if (which < 0 || !c->req)
        return;
    ch->finish = GW_FINISH_STOP;
    c->ans.stop_sequence = c->p->stops[which];
    record_attempt(c, GW_BE_OK, 0);
    cancel_call(c); /* allowed inside a delta's callback; no event follows */
    if (c->rq.stream)
        finish_stream(c);
    else
        finish_json(c);
}

/* The answer ended without a stop sequence: the text the matcher held back. */
static void stop_flush(chat_t *c)
{
    if (!gw_stop_active(&c->stop) || !c->ans.n_choices)
        return;
    gw_buf_reset(&c->shown);
    gw_stop_flush(&c->stop, &c->shown);
    if (c->shown.len)
        deliver(c, &c->ans.choices[0], &(gw_llm_event_t){.type = GW_EV_TEXT,
                                                         .text = c->shown.data,
                                                         .len = c->shown.len});
}

static void on_delta(chat_t *c, const gw_llm_event_t *ev)
{
    gw_choice_t *ch;
    if (!c->head)
        on_head(c, &(gw_llm_event_t){.type = GW_EV_HEAD});
    if (!(ch = choice(c, ev->choice)))
        return;
    if (ev->type == GW_EV_TEXT && ev->choice == 0 && gw_stop_active(&c->stop))
        return stop_filter(c, ch, ev);
    deliver(c, ch, ev);
}

static void attempt(chat_t *c);

static void on_retry_timer(uv_timer_t *t)
{
    attempt(t->data);
}

/* Another attempt on the same target. 1 if one was scheduled. */
static int maybe_retry(chat_t *c, const gw_llm_event_t *ev)
{
    if (c->started || !ev->error.retryable || c->tries >= c->max_attempts)
        return 0;
    uint64_t backoff = 1000ull << (c->tries - 1 < 16 ? c->tries - 1 : 16);
    uint64_t now = uv_now(c->env->loop);
    if (c->deadline && now + backoff >= c->deadline)
        return 0;
    gw_debug("upstream %s attempt %d failed (%s), retrying in %" PRIu64 " ms", target(c)->backend,
             c->tries, ev->error.message ? ev->error.message : "?", backoff);
    mark_next(c, GW_ATTEMPT_NEXT_RETRY);
    uv_timer_start(&c->retry_timer, on_retry_timer, backoff, 0);
    return 1;
}

/* The next target, at once. 1 if there was one. */
static int maybe_fallback(chat_t *c, const gw_llm_event_t *ev)
{
    if (c->started || c->ti + 1 >= c->p->n_targets)
        return 0;
    if (ev->error.cls == GW_BE_REFUSED && ev->error.status != 429)
        return 0; /* the upstream refused the request itself: tell the client */
    gw_debug("upstream %s failed (%s), falling back to %s", target(c)->backend,
             ev->error.message ? ev->error.message : "?", c->p->targets[c->ti + 1].backend);
    mark_next(c, GW_ATTEMPT_NEXT_FALLBACK);
    c->ti++;
    c->tries = 0;
    if (c->deadline) /* each backend gets TIMEOUT for its attempts (REQUEST_TIMEOUT bounds all) */
        c->deadline = uv_now(c->env->loop) + (uint64_t)(c->env->cfg->upstream.timeout * 1000);
    attempt(c);
    return 1;
}

static void on_error(chat_t *c, const gw_llm_event_t *ev)
{
    record_attempt(c, ev->error.cls ? ev->error.cls : GW_BE_BAD_ANSWER, ev->error.status);
    if (c->started || (!maybe_retry(c, ev) && !maybe_fallback(c, ev)))
        fail_event(c, ev);
}

static int has_answer(const gw_answer_t *a)
{
    for (size_t i = 0; i < a->n_choices; i++)
        if (a->choices[i].text.len || a->choices[i].refusal.len || a->choices[i].n_tools)
            return 1;
    return 0;
}

static void on_end(chat_t *c)
{
    stop_flush(c);
    if (c->rq.stream ? !c->head : !has_answer(&c->ans)) {
        gw_llm_event_t ev = {.type = GW_EV_ERROR};
        ev.error.cls = GW_BE_BAD_ANSWER;
        ev.error.retry_after = -1;
        ev.error.message = c->rq.stream ? "Upstream ended the stream without a response"
                                        : "Upstream returned an empty response";
        return on_error(c, &ev);
    }
    record_attempt(c, GW_BE_OK, 0);
    if (c->rq.stream)
        finish_stream(c);
    else
        finish_json(c);
}

static void on_event(void *ud, const gw_llm_event_t *ev)
{
    chat_t *c = ud;
    if (!c->req)
        return;
    switch (ev->type) {
    case GW_EV_HEAD: on_head(c, ev); break;
    case GW_EV_TEXT:
    case GW_EV_REFUSAL:
    case GW_EV_TOOL_CALL: on_delta(c, ev); break;
    case GW_EV_FINISH: {
        gw_choice_t *ch = choice(c, ev->choice);
        if (ch)
            ch->finish = ev->finish;
        break;
    }
    case GW_EV_USAGE:
        c->has_usage = 1;
        c->up_prompt = ev->prompt_tokens;
        c->up_completion = ev->completion_tokens;
        break;
    case GW_EV_END:
        c->call = NULL;
        on_end(c);
        break;
    case GW_EV_ERROR:
        c->call = NULL;
        on_error(c, ev);
        break;
    }
}

/* ---------- attempts ---------- */

/* Drops what a failed attempt left (nothing of it reached the client). */
static void attempt_reset(chat_t *c)
{
    answer_dispose(&c->ans);
    free(c->up_id);
    c->up_id = NULL;
    c->head = c->has_usage = 0;
    gw_buf_reset(&c->deferred);
    gw_stop_reset(&c->stop);
    if (c->tok)
        gw_tok_stream_free(c->tok);
    c->tok = NULL;
}

static void attempt(chat_t *c)
{
    gw_chat_params_t *p = c->p;
    gw_backend_t *b = NULL;
    if (!c->req)
        return;
    while (c->ti < p->n_targets && !(b = gw_backends_find(&c->env->backends, target(c)->backend)))
        c->ti++; /* the route phase names a backend this worker does not have */
    if (!b)
        return client_error(c, 503, "service_unavailable", "error",
                            "No configured backend serves this model", -1);
    uint64_t timeout = 0;
    if (c->deadline) {
        uint64_t now = uv_now(c->env->loop);
        if (now >= c->deadline)
            return client_error(c, 504, "gateway_timeout", "timeout_error",
                                "Upstream timed out: TIMEOUT exceeded", -1);
        timeout = c->deadline - now;
    }
    attempt_reset(c);
    c->tries++;
    c->b = b;
    copy_name(c->req->stats.backend, sizeof(c->req->stats.backend), target(c)->backend);
    c->deferring = b->vt->sends_usage;
    int rc = b->vt->start(b, &c->rq, target(c), timeout, on_event, c, &c->call);
    if (rc != 0) {
        c->call = NULL;
        gw_llm_event_t ev = {.type = GW_EV_ERROR};
        ev.error.cls = rc == -EINVAL ? GW_BE_BAD_ANSWER : GW_BE_UNREACHABLE;
        ev.error.retryable = rc != -EINVAL;
        ev.error.retry_after = -1;
        ev.error.message = rc == -EINVAL ? "Cannot encode the upstream request"
                                         : "Upstream unavailable: cannot start the upstream call";
        on_error(c, &ev);
    }
}

static void on_limit(uv_timer_t *t)
{
    chat_t *c = t->data;
    if (c->call)
        record_attempt(c, GW_BE_TIMEOUT, 0);
    if (c->rq.stream)
        client_error(c, 504, "stream_timeout", "timeout_error", "Stream timeout", -1);
    else
        client_error(c, 504, "request_timeout", "timeout_error", "Request timeout", -1);
}

static chat_t *chat_new(gw_chat_env_t *env, gw_req_t *req, gw_chat_params_t *p)
{
    chat_t *c = gw_freelist_get(&chat_pool, sizeof(*c));
    if (!c)
        c = gw_calloc(1, sizeof(*c)); /* out of memory: gw_calloc reports it and aborts */
    c->env = env;
    c->req = req;
    c->p = p;
    c->fmt = gw_ingress_find(p->ingress ? p->ingress : "chat");
    if (!c->fmt)
        c->fmt = &gw_ingress_chat;
    c->out.state = c->fmt->state_size <= sizeof(c->state_mem)
                       ? (void *)c->state_mem
                       : gw_calloc(1, c->fmt->state_size);
    c->out.id = c->id;
    c->out.created = now_s();
    c->out.model = p->echo ? p->echo : "";
    c->out.include_usage = p->include_usage;
    c->out.fields = p->fields;
    c->out.fields_len = p->fields_len;
    c->rq.echo = c->out.model;
    c->rq.stream = p->stream;
    c->rq.include_usage = p->include_usage;
    c->rq.body = p->body ? p->body : req->body.data;
    c->rq.body_len = p->body ? p->body_len : req->body.len;
    gw_buf_init(&c->scratch);
    if (p->stream)
        gw_buf_prime(&c->scratch); /* a warm buffer for the stream's events */
    gw_buf_init(&c->deferred);
    gw_buf_init(&c->shown);
    gw_stop_init(&c->stop, p->stops, p->n_stops);
    uv_timer_init(env->loop, &c->retry_timer);
    uv_timer_init(env->loop, &c->limit_timer);
    c->retry_timer.data = c->limit_timer.data = c;
    c->handles_open = 2;
    p->run = c;
    req->on_abort = on_abort;
    return c;
}

void gw_chat_start(gw_chat_env_t *env, gw_req_t *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    chat_t *c = chat_new(env, req, p);
    const gw_config_t *cfg = env->cfg;
    gw_metrics_llm_start(req, p->n_targets ? p->targets[0].backend : "", p->stream);
    copy_name(req->stats.ingress, sizeof(req->stats.ingress), c->fmt->name);
    if (p->n_targets == 0)
        return client_error(c, 500, "internal_error", "error",
                            "The route phase produced no upstream request", -1);
    if (random_id(c->id, sizeof(c->id), c->fmt->id_prefix) != GW_OK) {
        gw_error("chat: no random source (getrandom and /dev/urandom both failed)");
        return client_error(c, 500, "internal_error", "error", "Cannot generate a response id",
                            -1);
    }
    c->max_attempts = cfg->upstream.max_retries > 0 ? cfg->upstream.max_retries : 1;
    double limit = p->stream ? cfg->stream_timeout : cfg->request_timeout;
    if (limit > 0)
        uv_timer_start(&c->limit_timer, on_limit, (uint64_t)(limit * 1000), 0);
    if (!p->stream && cfg->upstream.timeout > 0)
        c->deadline = uv_now(env->loop) + (uint64_t)(cfg->upstream.timeout * 1000);
    attempt(c);
}
