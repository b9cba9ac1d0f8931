/*
 * pieces-gateway: the Pieces OS backend (GPT and Vertex inference services over gRPC).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_backend_pieces_new and its vtable. Uses: the gRPC pool (gw_upstream.h, one pool
 *   per service), the Pieces codec (gw_pieces.h).
 *
 * A target's variant picks the service (GW_PIECES_GPT: parts are the role-0/role-1 blocks,
 * GW_PIECES_VERTEX: part 0 the message, part 1 the rules); its sampling goes to GPT. Events:
 *   HEAD  at the first reply message with a data code (200, 0) or the end code (204); it
 *         carries the GPT reply time as `created` and, for GPT Predict, the reply id;
 *   TEXT  per reply text (the text of a Vertex 204 frame never carries the role);
 *   END   stream: the 204 frame (the call is cancelled there: whatever the upstream does
 *         after it, e.g. Vertex's RST_STREAM, cannot change a complete answer) or grpc-status
 *         0; unary: grpc-status 0;
 *   ERROR anything else. The end rule: after the answer started, an RST_STREAM (any code,
 *         either service), GOAWAY, a closed connection or any other status is a truncation.
 * Classes: CONNECT/DNS/TLS/REFUSED/CLOSED and UNAVAILABLE -> UNREACHABLE; deadline, PING
 * timeout, DEADLINE_EXCEEDED -> TIMEOUT; the rest BAD_ANSWER. retryable follows the seed's
 * transient rule (connect, DNS, reset, refused, ping timeout; statuses 2, 4, 8, 13, 14) and
 * only while no reply message came. Messages are the client-facing texts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "gw.h"
#include "gw_pieces.h"
#include "gw_upstream.h"

typedef struct {
    gw_backend_t base;
    gw_upstream_t *gpt, *vertex;
    int closed;
    int calls;
} pieces_t;

struct gw_backend_call_s {
    pieces_t *b;
    gw_grpc_call_t *call;
    gw_backend_cb cb;
    void *ud;
    int variant, stream;
    char *fail_msg;
    unsigned got_message : 1, in_cb : 1, dead : 1;
};

typedef struct gw_backend_call_s call_t;

static void call_free(call_t *c)
{
    pieces_t *b = c->b;
    free(c->fail_msg);
    free(c);
    if (--b->calls == 0 && b->closed)
        free(b);
}

static void emit(call_t *c, gw_llm_event_t *ev)
{
    c->in_cb = 1;
    c->cb(c->ud, ev);
    c->in_cb = 0;
}

static void emit_error(call_t *c, gw_be_class_t cls, int retryable, const char *msg)
{
    gw_llm_event_t ev = {.type = GW_EV_ERROR};
    ev.error.cls = cls;
    ev.error.retryable = retryable && !c->got_message;
    ev.error.retry_after = -1;
    ev.error.message = msg;
    emit(c, &ev);
}

/* The last event from inside on_message: stop the gRPC call (no callback follows). */
static void end_here(call_t *c, const char *error)
{
    gw_grpc_call_t *call = c->call;
    c->call = NULL;
    gw_grpc_call_cancel(call);
    if (error)
        emit_error(c, GW_BE_BAD_ANSWER, 0, error);
    else
        emit(c, &(gw_llm_event_t){.type = GW_EV_END});
    c->dead = 1;
}

static int decode(const call_t *c, const uint8_t *msg, size_t len, gw_pieces_reply_t *r)
{
    return c->variant == GW_PIECES_GPT ? gw_pieces_gpt_decode(msg, len, r)
                                       : gw_pieces_vertex_decode(msg, len, r);
}

static void head(call_t *c, const gw_pieces_reply_t *r)
{
    if (c->got_message)
        return;
    c->got_message = 1;
    gw_llm_event_t ev = {.type = GW_EV_HEAD};
    if (c->variant == GW_PIECES_GPT) {
        ev.created = r->time;
        if (!c->stream && r->id) {
            ev.text = r->id;
            ev.len = r->id_len;
        }
    }
    emit(c, &ev);
}

static void text(call_t *c, const gw_pieces_reply_t *r, unsigned flags)
{
    if (c->dead || !r->has_text || !r->text_len)
        return;
    gw_llm_event_t ev = {.type = GW_EV_TEXT, .flags = flags, .text = r->text, .len = r->text_len};
    emit(c, &ev);
}

static void on_reply(call_t *c, const gw_pieces_reply_t *r)
{
    char m[96];
    int data = r->code == GW_PIECES_CODE_DATA || r->code == 0;
    if (!data && r->code != GW_PIECES_CODE_END) {
        snprintf(m, sizeof(m), "Upstream answered with response code %" PRId64, r->code);
        if (c->stream)
            end_here(c, m);
        else if (!c->fail_msg)
            c->fail_msg = gw_strdup(m);
        return;
    }
    head(c, r);
    if (c->dead)
        return;
    if (c->stream && r->code == GW_PIECES_CODE_END) {
        text(c, r, c->variant == GW_PIECES_VERTEX ? GW_EV_F_NO_ROLE : 0);
        if (!c->dead)
            end_here(c, NULL);
        return;
    }
    text(c, r, 0);
}

static void on_message(gw_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    call_t *c = ud;
    gw_pieces_reply_t r;
    (void)call;
    if (c->fail_msg)
        return;
    if (decode(c, msg, len, &r) != 0) {
        if (c->stream && c->got_message)
            end_here(c, "Upstream sent an invalid response");
        else
            c->fail_msg = gw_strdup("Upstream sent an invalid response");
    } else {
        on_reply(c, &r);
        gw_pieces_reply_free(&r);
    }
    if (c->dead) {
        if (c->call) /* cancelled by the engine inside an event */
            gw_grpc_call_cancel(c->call);
        call_free(c);
    }
}

static int transient(const gw_grpc_result_t *res)
{
    switch (res->kind) {
    case GW_GRPC_ERR_CONNECT:
    case GW_GRPC_ERR_DNS:
    case GW_GRPC_ERR_RESET:
    case GW_GRPC_ERR_REFUSED:
    case GW_GRPC_ERR_PING_TIMEOUT: return 1;
    case GW_GRPC_ERR_STATUS:
        return res->grpc_status == 14 || res->grpc_status == 8 || res->grpc_status == 13 ||
               res->grpc_status == 2 || res->grpc_status == 4;
    default: return 0;
    }
}

static void fail_with(call_t *c, const gw_grpc_result_t *res)
{
    char m[512];
    const char *d = res->message && *res->message ? res->message : "no detail";
    int retry = transient(res);
    switch (res->kind) {
    case GW_GRPC_ERR_CONNECT:
    case GW_GRPC_ERR_DNS:
    case GW_GRPC_ERR_TLS:
    case GW_GRPC_ERR_REFUSED:
    case GW_GRPC_ERR_CLOSED:
        snprintf(m, sizeof(m), "Upstream unavailable: %s", d);
        return emit_error(c, GW_BE_UNREACHABLE, retry, m);
    case GW_GRPC_ERR_TIMEOUT:
    case GW_GRPC_ERR_PING_TIMEOUT:
        snprintf(m, sizeof(m), "Upstream timed out: %s", d);
        return emit_error(c, GW_BE_TIMEOUT, retry, m);
    case GW_GRPC_ERR_STATUS:
        if (res->grpc_status == 14 || res->grpc_status == 4) {
            snprintf(m, sizeof(m), "Upstream %s: %s",
                     res->grpc_status == 14 ? "unavailable" : "timed out", d);
            return emit_error(c, res->grpc_status == 14 ? GW_BE_UNREACHABLE : GW_BE_TIMEOUT, retry,
                              m);
        }
        snprintf(m, sizeof(m), "Upstream error (gRPC status %d): %s", res->grpc_status, d);
        return emit_error(c, GW_BE_BAD_ANSWER, retry, m);
    case GW_GRPC_ERR_RESET:
    case GW_GRPC_ERR_EOF:
        snprintf(m, sizeof(m), "Upstream ended the call before the answer was complete: %s", d);
        return emit_error(c, c->got_message ? GW_BE_BAD_ANSWER : GW_BE_UNREACHABLE, retry, m);
    default:
        snprintf(m, sizeof(m), "Bad upstream answer: %s", d);
        return emit_error(c, GW_BE_BAD_ANSWER, retry, m);
    }
}

static void on_close(gw_grpc_call_t *call, const gw_grpc_result_t *res, void *ud)
{
    call_t *c = ud;
    (void)call;
    c->call = NULL;
    if (c->fail_msg)
        emit_error(c, GW_BE_BAD_ANSWER, 0, c->fail_msg);
    else if (res->kind == GW_GRPC_OK_STATUS)
        emit(c, &(gw_llm_event_t){.type = GW_EV_END}); /* the engine checks for an answer */
    else
        fail_with(c, res);
    call_free(c);
}

static const gw_grpc_handler_t handler = {on_message, on_close};

static int encode(const gw_chat_target_t *t, uint8_t **out, size_t *len)
{
    const char *base = t->text.data ? t->text.data : "";
    if (t->variant == GW_PIECES_VERTEX) {
        const gw_chat_part_t *m = t->n_parts > 0 ? &t->parts[0] : NULL;
        const gw_chat_part_t *r = t->n_parts > 1 ? &t->parts[1] : NULL;
        return gw_pieces_vertex_encode(t->model, m ? base + m->off : "", m ? m->len : 0,
                                       r ? base + r->off : "", r ? r->len : 0, out, len);
    }
    gw_pieces_msg_t few[16] = {{0}}; /* the usual conversation: no allocation */
    gw_pieces_msg_t *msgs = t->n_parts <= 16 ? few : gw_calloc(t->n_parts, sizeof(*msgs));
    for (size_t i = 0; i < t->n_parts; i++) {
        msgs[i].role = t->parts[i].kind;
        msgs[i].text = base + t->parts[i].off;
        msgs[i].len = t->parts[i].len;
    }
    int rc = gw_pieces_gpt_encode(t->model, msgs, t->n_parts, t->has_temperature, t->temperature,
                                  t->has_top_p, t->top_p, out, len);
    if (msgs != few)
        free(msgs);
    return rc;
}

static int pieces_start(gw_backend_t *base, const gw_chat_request_t *rq, const gw_chat_target_t *t,
                        uint64_t timeout_ms, gw_backend_cb cb, void *ud, gw_backend_call_t **out)
{
    pieces_t *b = (pieces_t *)base;
    uint8_t *pb = NULL;
    size_t pb_len = 0;
    const char *path;
    gw_upstream_t *u = t->variant == GW_PIECES_VERTEX ? b->vertex : b->gpt;
    if (b->closed || !u)
        return -ESHUTDOWN;
    if (t->variant == GW_PIECES_VERTEX)
        path = rq->stream ? GW_PIECES_VERTEX_STREAM : GW_PIECES_VERTEX_PREDICT;
    else
        path = rq->stream ? GW_PIECES_GPT_STREAM : GW_PIECES_GPT_PREDICT;
    if (encode(t, &pb, &pb_len) != 0)
        return -EINVAL;
    call_t *c = gw_calloc(1, sizeof(*c));
    c->b = b;
    c->cb = cb;
    c->ud = ud;
    c->variant = t->variant;
    c->stream = rq->stream;
    int rc = gw_grpc_call_start(u, path, pb, pb_len, timeout_ms, &handler, c, &c->call);
    free(pb);
    if (rc != 0) {
        free(c);
        return rc;
    }
    b->calls++;
    *out = c;
    return 0;
}

static void pieces_cancel(gw_backend_call_t *c)
{
    if (!c || c->dead)
        return;
    c->dead = 1;
    if (c->call)
        gw_grpc_call_cancel(c->call);
    c->call = NULL;
    if (!c->in_cb)
        call_free(c);
}

static void pieces_pause(gw_backend_call_t *c, int paused)
{
    if (c && !c->dead && c->call)
        gw_grpc_call_pause(c->call, paused);
}

static void put_pool(gw_buf_t *out, const char *name, gw_upstream_t *u)
{
    char stats[4096];
    int n = u ? gw_upstream_stats_json(u, stats, sizeof(stats)) : -1;
    gw_buf_printf(out, "\"%s\":%s", name, n > 0 && (size_t)n < sizeof(stats) ? stats : "null");
}

static void pieces_stats(gw_backend_t *base, gw_buf_t *out)
{
    pieces_t *b = (pieces_t *)base;
    gw_buf_putc(out, '{');
    put_pool(out, "gpt", b->gpt);
    gw_buf_putc(out, ',');
    put_pool(out, "vertex", b->vertex);
    gw_buf_putc(out, '}');
}

static void pieces_close(gw_backend_t *base)
{
    pieces_t *b = (pieces_t *)base;
    if (b->gpt)
        gw_upstream_close(b->gpt, NULL, NULL);
    if (b->vertex)
        gw_upstream_close(b->vertex, NULL, NULL);
    b->gpt = b->vertex = NULL;
    b->closed = 1;
    if (b->calls == 0)
        free(b);
}

static void pieces_conn_states(gw_backend_t *base, void (*emit)(void *, const char *, int),
                               void *ud)
{
    pieces_t *b = (pieces_t *)base;
    int connecting = 0, ready = 0;
    gw_upstream_t *pools[2] = {b->gpt, b->vertex};
    for (size_t i = 0; i < 2; i++) {
        if (!pools[i])
            continue;
        gw_upstream_counters_t c;
        gw_upstream_counters(pools[i], &c);
        ready += c.ready;
        connecting += c.connections - c.ready;
    }
    emit(ud, "connecting", connecting);
    emit(ud, "ready", ready);
}

static const gw_backend_vt_t pieces_vt = {"pieces",     0,           pieces_start,
                                          pieces_cancel, pieces_pause, pieces_stats,
                                          pieces_close,  pieces_conn_states};

static int new_pool(uv_loop_t *loop, const gw_config_t *cfg, const gw_backend_conf_t *bc,
                    const char *address, gw_upstream_t **out, char **err)
{
    const char *ca = bc->ca_file && *bc->ca_file ? bc->ca_file : cfg->upstream.ca_file;
    gw_upstream_conf_t uc = {
        .address = address,
        .ca_file = ca,
        .insecure = cfg->upstream.insecure || bc->insecure,
        .min_conns = cfg->upstream.min_pool_size,
        .max_conns = cfg->upstream.max_pool_size,
        .scale_interval = cfg->upstream.scale_interval,
        .connect_timeout = cfg->upstream.connect_timeout,
    };
    char *e = NULL;
    if (gw_upstream_new(loop, &uc, out, &e) != 0) {
        *err = gw_sprintf("upstream %s: %s", address, e ? e : "invalid");
        free(e);
        return -EINVAL;
    }
    return 0;
}

int gw_backend_pieces_new(uv_loop_t *loop, const gw_config_t *cfg, const gw_backend_conf_t *bc,
                          gw_backend_t **out, char **err)
{
    pieces_t *b = gw_calloc(1, sizeof(*b));
    b->base.vt = &pieces_vt;
    b->base.type = GW_BACKEND_PIECES;
    snprintf(b->base.name, sizeof(b->base.name), "%s", bc->name);
    if (new_pool(loop, cfg, bc, cfg->upstream.gpt, &b->gpt, err) != 0 ||
        new_pool(loop, cfg, bc, cfg->upstream.vertex, &b->vertex, err) != 0) {
        pieces_close(&b->base);
        return -EINVAL;
    }
    *out = &b->base;
    return 0;
}
