/*
 * pieces-gateway: the OpenAI-compatible HTTP backend (chat completions over HTTP/1.1 or h2).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_backend_openai_new and its vtable. Uses: httpc (pool), oai_body (request),
 *   sse + oai_map (answers), backend.h events.
 *
 * One call = one POST {base path}/chat/completions with Authorization: Bearer <key> (when a
 * key is configured), the backend's static headers and the client's body rewritten by
 * gw_oai_body_build. Answers:
 *   2xx stream     SSE parsed incrementally; each chunk mapped to events; "[DONE]" ends it.
 *                  A clean end without [DONE] is an END only after a finish_reason; otherwise
 *                  (and for every reset or drop) an ERROR: a cut stream is never a normal end.
 *   2xx non-stream the JSON answer (at most MAX_ANSWER bytes) mapped at the end. A stream
 *                  request answered with JSON is mapped the same way.
 *   429            REFUSED with the upstream's Retry-After; other 4xx REFUSED with the status;
 *   5xx / other    BAD_ANSWER (500, 502, 503, 504 retryable); the message is the upstream's
 *                  error message (or the start of its body).
 * Must never: put the key (or any request header) in an event, a log line or stats; the
 *   upstream's own error text is scrubbed of the key too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/backend.h"
#include "gw.h"
#include "httpc.h"
#include "log.h"
#include "oai_body.h"
#include "oai_map.h"
#include "sse.h"

#define MAX_ANSWER (16u << 20) /* a non-stream answer */
#define MAX_ERROR_BODY 65536
#define MAX_EVENT (4u << 20) /* one SSE event */

typedef struct {
    gw_backend_t base;
    gw_httpc_t *http;
    char *chat_path;
    char *key; /* for scrubbing upstream messages */
    gw_httpc_header_t *hdrs;
    size_t n_hdrs;
    int calls;
    int closed;
} oai_t;

struct gw_backend_call_s {
    oai_t *b;
    gw_httpc_req_t *req;
    gw_backend_cb cb;
    void *ud;
    int stream, sse, status;
    double retry_after;
    gw_sse_parser_t parser;
    gw_oai_map_t map;
    gw_buf_t body;
    int depth; /* nesting of httpc callbacks on the stack */
    unsigned dead : 1, done : 1, saw_done : 1, saw_finish : 1, too_big : 1;
};

typedef struct gw_backend_call_s call_t;

static void backend_release(oai_t *b)
{
    if (!b->closed || b->calls > 0)
        return;
    free(b->chat_path);
    free(b->key);
    free(b->hdrs);
    free(b);
}

static void call_free(call_t *c)
{
    oai_t *b = c->b;
    gw_sse_dispose(&c->parser);
    gw_oai_map_dispose(&c->map);
    gw_buf_dispose(&c->body);
    free(c);
    b->calls--;
    backend_release(b);
}

/* After an httpc callback returns: a call that ended or was cancelled goes. */
static void leave(call_t *c)
{
    if (--c->depth == 0 && c->dead)
        call_free(c);
}

/* Replaces every copy of the key in msg (NUL-terminated, in place) by "[redacted]". */
static void scrub(const oai_t *b, char *msg, size_t cap)
{
    size_t kl = b->key ? strlen(b->key) : 0;
    char *hit;
    if (kl < 4)
        return;
    while ((hit = strstr(msg, b->key))) {
        const char *rest = hit + kl;
        size_t tail = strlen(rest) + 1;
        if ((size_t)(hit - msg) + 10 + tail > cap)
            tail = cap - (size_t)(hit - msg) - 10;
        memmove(hit + 10, rest, tail);
        memcpy(hit, "[redacted]", 10);
        msg[cap - 1] = '\0';
    }
}

/* The last event: the call is over for the engine (no cancel may follow). */
static void finish_error(call_t *c, gw_be_class_t cls, int status, int retryable, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

static void finish_error(call_t *c, gw_be_class_t cls, int status, int retryable, const char *fmt,
                         ...)
{
    char msg[512];
    va_list ap;
    if (c->done || c->dead)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    scrub(c->b, msg, sizeof(msg));
    if (c->req) {
        gw_httpc_cancel(c->req); /* inside its own callback: allowed */
        c->req = NULL;
    }
    c->done = c->dead = 1;
    gw_llm_event_t ev = {.type = GW_EV_ERROR};
    ev.error.cls = cls;
    ev.error.status = status;
    ev.error.retryable = retryable;
    ev.error.retry_after = c->retry_after;
    ev.error.message = msg;
    c->cb(c->ud, &ev);
}

static void finish_end(call_t *c)
{
    if (c->done || c->dead)
        return;
    if (c->req) {
        gw_httpc_discard(c->req); /* the rest (the final chunk) keeps the connection */
        c->req = NULL;
    }
    c->done = c->dead = 1;
    gw_llm_event_t ev = {.type = GW_EV_END};
    c->cb(c->ud, &ev);
}

/* Mapped events go to the engine; non-zero stops the mapping (cancelled or over). */
static int on_mapped(void *ud, const gw_llm_event_t *ev)
{
    call_t *c = ud;
    if (ev->type == GW_EV_ERROR) {
        finish_error(c, GW_BE_BAD_ANSWER, c->status, 0, "Upstream error: %s", ev->error.message);
        return 1;
    }
    if (ev->type == GW_EV_FINISH)
        c->saw_finish = 1;
    c->cb(c->ud, ev);
    return c->dead;
}

static int on_sse_event(void *ud, const char *event, size_t elen, const char *data, size_t dlen)
{
    call_t *c = ud;
    (void)event, (void)elen;
    if (dlen == 6 && memcmp(data, "[DONE]", 6) == 0) {
        c->saw_done = 1;
        finish_end(c);
        return 1;
    }
    int rc = gw_oai_map_chunk(&c->map, data, dlen, on_mapped, c);
    if (rc == -EBADMSG)
        finish_error(c, GW_BE_BAD_ANSWER, c->status, 0,
                     "Bad upstream answer: a malformed stream chunk");
    return c->dead;
}

static void on_head(void *ud, const gw_httpc_head_t *h)
{
    call_t *c = ud;
    c->status = h->status;
    c->retry_after = h->retry_after;
    c->sse = c->stream && h->status / 100 == 2 &&
             strncasecmp(h->content_type, "text/event-stream", 17) == 0;
}

static void on_body(void *ud, const char *p, size_t n)
{
    call_t *c = ud;
    c->depth++;
    if (c->sse) {
        int rc = gw_sse_feed(&c->parser, p, n, on_sse_event, c);
        if (rc == -EMSGSIZE)
            finish_error(c, GW_BE_BAD_ANSWER, c->status, 0,
                         "Bad upstream answer: a stream event larger than %u bytes", MAX_EVENT);
    } else {
        size_t cap = c->status / 100 == 2 ? MAX_ANSWER : MAX_ERROR_BODY;
        if (c->body.len + n > cap) {
            c->too_big = 1;
            n = cap - c->body.len;
        }
        gw_buf_append(&c->body, p, n);
        if (c->too_big && c->status / 100 == 2)
            finish_error(c, GW_BE_BAD_ANSWER, c->status, 0,
                         "Bad upstream answer: larger than %u bytes", MAX_ANSWER);
    }
    leave(c);
}

static void refused(call_t *c)
{
    gw_buf_t m;
    gw_buf_init(&m);
    if (gw_oai_error_message(c->body.data, c->body.len, &m) != 0 || m.len == 0) {
        gw_buf_reset(&m); /* not OpenAI's shape: the start of the body, printable bytes only */
        for (size_t i = 0; i < GW_MIN(c->body.len, 200); i++) {
            unsigned char ch = (unsigned char)c->body.data[i];
            gw_buf_putc(&m, ch >= 0x20 && ch < 0x7f ? (char)ch : ' ');
        }
    }
    int st = c->status;
    const char *text = m.data ? m.data : "";
    if (st / 100 == 4)
        finish_error(c, GW_BE_REFUSED, st, 0, "Upstream answered HTTP %d: %s", st,
                     *text ? text : "no detail");
    else
        finish_error(c, GW_BE_BAD_ANSWER, st, st == 500 || st == 502 || st == 503 || st == 504,
                     "Upstream error (HTTP %d): %s", st, *text ? text : "no detail");
    gw_buf_dispose(&m);
}

static void on_end(void *ud)
{
    call_t *c = ud;
    c->req = NULL; /* httpc frees it after this callback */
    c->depth++;
    if (c->status / 100 != 2) {
        refused(c);
    } else if (c->sse) {
        if (c->saw_finish && gw_sse_pending(&c->parser) == 0)
            finish_end(c);
        else
            finish_error(c, GW_BE_BAD_ANSWER, c->status, 0,
                         c->map.head_sent ? "Upstream ended the stream before it was complete"
                                          : "Upstream ended the stream without a response");
    } else {
        int rc =
            gw_oai_map_answer(&c->map, c->body.data ? c->body.data : "", c->body.len, on_mapped, c);
        if (rc == -EBADMSG)
            finish_error(c, GW_BE_BAD_ANSWER, c->status, 0,
                         "Bad upstream answer: not a chat completion (invalid JSON)");
        else if (rc == 0)
            finish_end(c);
    }
    c->dead = 1;
    leave(c);
}

static void on_error(void *ud, int kind, const char *msg)
{
    call_t *c = ud;
    c->req = NULL;
    c->depth++;
    gw_be_class_t cls = kind == GW_HTTPC_TIMEOUT      ? GW_BE_TIMEOUT
                        : kind == GW_HTTPC_BAD_ANSWER ? GW_BE_BAD_ANSWER
                                                      : GW_BE_UNREACHABLE;
    int retryable = cls == GW_BE_UNREACHABLE && !strstr(msg, "certificate");
    finish_error(c, cls, 0, retryable, "%s: %s",
                 cls == GW_BE_TIMEOUT ? "Upstream timed out"
                 : cls == GW_BE_BAD_ANSWER
                     ? "Upstream ended the call before the answer was complete"
                     : "Upstream unavailable",
                 msg);
    c->dead = 1;
    leave(c);
}

static void on_head_cb(void *ud, const gw_httpc_head_t *h)
{
    call_t *c = ud;
    c->depth++;
    on_head(c, h);
    leave(c);
}

static const gw_httpc_handler_t handler = {on_head_cb, on_body, on_end, on_error};

/* ---- vtable ---------------------------------------------------------------------------- */

static int oai_start(gw_backend_t *base, const gw_chat_request_t *rq, const gw_chat_target_t *t,
                     uint64_t timeout_ms, gw_backend_cb cb, void *ud, gw_backend_call_t **out)
{
    oai_t *b = (oai_t *)base;
    gw_buf_t body;
    gw_buf_init(&body);
    if (b->closed)
        return -ESHUTDOWN;
    if (gw_oai_body_build(rq->body, rq->body_len, t->model, rq->stream, &body) != 0) {
        gw_buf_dispose(&body);
        return -EINVAL;
    }
    call_t *c = gw_calloc(1, sizeof(*c));
    c->b = b;
    c->cb = cb;
    c->ud = ud;
    c->stream = rq->stream;
    c->retry_after = -1;
    gw_sse_init(&c->parser, MAX_EVENT);
    gw_oai_map_init(&c->map);
    gw_buf_init(&c->body);
    int rc = gw_httpc_request(b->http, "POST", b->chat_path, b->hdrs, b->n_hdrs, body.data,
                              body.len, timeout_ms, &handler, c, &c->req);
    gw_buf_dispose(&body);
    b->calls++;
    if (rc != 0) {
        call_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void oai_cancel(gw_backend_call_t *c)
{
    if (!c || c->dead)
        return;
    if (c->req)
        gw_httpc_cancel(c->req);
    c->req = NULL;
    c->dead = 1;
    if (c->depth == 0)
        call_free(c);
}

static void oai_pause(gw_backend_call_t *c, int paused)
{
    if (c && !c->dead && c->req)
        gw_httpc_pause(c->req, paused);
}

static void oai_stats(gw_backend_t *base, gw_buf_t *out)
{
    gw_httpc_stats_json(((oai_t *)base)->http, out);
}

static void oai_close(gw_backend_t *base)
{
    oai_t *b = (oai_t *)base;
    gw_httpc_close(b->http);
    b->closed = 1;
    backend_release(b);
}

static void oai_conn_states(gw_backend_t *base, void (*emit)(void *, const char *, int),
                            void *ud)
{
    gw_httpc_counters_t c;
    gw_httpc_counters(((oai_t *)base)->http, &c);
    emit(ud, "idle", c.idle);
    emit(ud, "active", c.connections - c.idle);
}

static const gw_backend_vt_t oai_vt = {"openai",  1,         oai_start, oai_cancel,
                                       oai_pause, oai_stats, oai_close, oai_conn_states};

/* ---- construction ------------------------------------------------------------------------- */

/* "https://host[:port][/prefix]" -> origin and the chat path. */
static int split_url(const char *url, char **origin, char **chat_path, char **err)
{
    const char *s = strstr(url, "://");
    if (!s || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        *err = gw_sprintf("OPENAI_BASE_URL must start with http:// or https:// (got '%s')", url);
        return -EINVAL;
    }
    if (strpbrk(url, "?#\r\n ")) {
        *err = gw_strdup("OPENAI_BASE_URL must not contain a query, a fragment or spaces");
        return -EINVAL;
    }
    const char *slash = strchr(s + 3, '/');
    size_t olen = slash ? (size_t)(slash - url) : strlen(url);
    size_t plen = slash ? strlen(slash) : 0;
    while (plen && slash[plen - 1] == '/')
        plen--;
    *origin = gw_strndup(url, olen);
    *chat_path = gw_sprintf("%.*s/chat/completions", (int)plen, slash ? slash : "");
    return 0;
}

static void build_headers(oai_t *b, const gw_backend_conf_t *bc)
{
    size_t n = 2 + (bc->api_key && *bc->api_key ? 1 : 0) + bc->n_headers, i = 0, bytes = 0;
    char *auth = bc->api_key && *bc->api_key ? gw_sprintf("Bearer %s", bc->api_key) : NULL;
    gw_httpc_header_t tmp[n];
    tmp[i++] = (gw_httpc_header_t){"content-type", "application/json"};
    tmp[i++] = (gw_httpc_header_t){"accept", "application/json, text/event-stream"};
    if (auth)
        tmp[i++] = (gw_httpc_header_t){"authorization", auth};
    for (size_t k = 0; k < bc->n_headers; k++)
        tmp[i++] = (gw_httpc_header_t){bc->header_names[k], bc->header_values[k]};
    for (i = 0; i < n; i++)
        bytes += strlen(tmp[i].name) + strlen(tmp[i].value) + 2;
    b->hdrs = gw_malloc(n * sizeof(*b->hdrs) + bytes);
    char *s = (char *)(b->hdrs + n);
    for (i = 0; i < n; i++) {
        size_t a = strlen(tmp[i].name) + 1, v = strlen(tmp[i].value) + 1;
        char *name = memcpy(s, tmp[i].name, a);
        for (char *q = name; *q; q++)
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q); /* h2 wants lower case */
        b->hdrs[i].name = name;
        b->hdrs[i].value = memcpy(s + a, tmp[i].value, v);
        s += a + v;
    }
    b->n_hdrs = n;
    free(auth);
}

int gw_backend_openai_new(uv_loop_t *loop, const gw_config_t *cfg, const gw_backend_conf_t *bc,
                          gw_backend_t **out, char **err)
{
    char *origin = NULL, *path = NULL;
    if (!bc->base_url || !*bc->base_url) {
        *err = gw_sprintf("backend %s: base_url is empty", bc->name);
        return -EINVAL;
    }
    if (split_url(bc->base_url, &origin, &path, err) != 0)
        return -EINVAL;
    gw_httpc_conf_t hc = {.origin = origin,
                          .ca_file = bc->ca_file,
                          .insecure = bc->insecure,
                          .connect_timeout = cfg->upstream.connect_timeout,
                          .max_idle = bc->max_idle};
    oai_t *b = gw_calloc(1, sizeof(*b));
    char *e = NULL;
    if (gw_httpc_new(loop, &hc, &b->http, &e) != 0) {
        *err = gw_sprintf("backend %s: %s", bc->name, e ? e : "invalid");
        free(e);
        free(origin);
        free(path);
        free(b);
        return -EINVAL;
    }
    free(origin);
    b->base.vt = &oai_vt;
    b->base.type = GW_BACKEND_OPENAI;
    snprintf(b->base.name, sizeof(b->base.name), "%s", bc->name);
    b->chat_path = path;
    b->key = bc->api_key && *bc->api_key ? gw_strdup(bc->api_key) : NULL;
    build_headers(b, bc);
    *out = &b->base;
    return 0;
}
