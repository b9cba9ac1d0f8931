/*
 * pieces-gateway: OpenAI chat-completions JSON to backend events (see oai_map.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_oai_map_*, gw_oai_error_message, gw_oai_finish_parse. Uses: json.c.
 * One pass per document (this is the per-chunk path): strings are decoded into the arena,
 * events queued; a choice's events get their index when the choice ends (OpenAI sends
 * "index" first, but it may come anywhere). Only a document that is valid to its end has its
 * events emitted.
 * Must never: emit anything for an invalid document, or read past its end.
 */
#include "oai_map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/json.h"
#include "gw.h"

#define NONE SIZE_MAX

void gw_oai_map_init(gw_oai_map_t *m)
{
    memset(m, 0, sizeof(*m));
    gw_buf_init(&m->arena);
}

void gw_oai_map_dispose(gw_oai_map_t *m)
{
    gw_buf_dispose(&m->arena);
    free(m->ev);
    memset(m, 0, sizeof(*m));
}

gw_finish_t gw_oai_finish_parse(const char *s, size_t n)
{
    static const struct {
        const char *name;
        gw_finish_t f;
    } names[] = {{"stop", GW_FINISH_STOP},
                 {"length", GW_FINISH_LENGTH},
                 {"tool_calls", GW_FINISH_TOOL_CALLS},
                 {"content_filter", GW_FINISH_CONTENT_FILTER},
                 {"function_call", GW_FINISH_FUNCTION_CALL}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0)
            return names[i].f;
    return GW_FINISH_STOP;
}

typedef struct {
    gw_oai_map_t *m;
    int answer;     /* message.* instead of delta.* */
    size_t error;   /* arena offset of the error message, NONE; or NONE - 1: an error without */
    size_t error_len;
} ctx_t;

static gw_oai_pending_t *push(ctx_t *c, gw_ev_type_t type)
{
    gw_oai_map_t *m = c->m;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->ev = gw_realloc(m->ev, m->cap * sizeof(*m->ev));
    }
    gw_oai_pending_t *p = &m->ev[m->n++];
    memset(&p->ev, 0, sizeof(p->ev));
    p->ev.type = type;
    p->text = p->id = p->name = NONE;
    return p;
}

/* A string value decoded into the arena: 1 with its offset and length, 0 for null. */
static int arena_string(ctx_t *c, gw_json_t *j, size_t *off, size_t *len)
{
    int rc = gw_json_null(j);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    *off = c->m->arena.len;
    if (gw_json_string(j, &c->m->arena) != 0)
        return -EBADMSG;
    *len = c->m->arena.len - *off;
    return 1;
}

static int text_event(ctx_t *c, gw_json_t *j, gw_ev_type_t type)
{
    size_t off, len;
    int rc = arena_string(c, j, &off, &len);
    if (rc <= 0 || len == 0)
        return rc < 0 ? rc : 0;
    gw_oai_pending_t *p = push(c, type);
    p->text = off;
    p->ev.len = len;
    return 0;
}

static int tool_function(ctx_t *c, gw_json_t *j, gw_oai_pending_t *p)
{
    gw_json_str_t k;
    size_t off, len;
    int rc;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (GW_JSON_KEY(&k, "name")) {
            if ((rc = arena_string(c, j, &off, &len)) < 0)
                return rc;
            if (rc == 1)
                p->name = off, p->ev.tool.name_len = len;
        } else if (GW_JSON_KEY(&k, "arguments")) {
            if ((rc = arena_string(c, j, &off, &len)) < 0)
                return rc;
            if (rc == 1)
                p->text = off, p->ev.len = len;
        } else if ((rc = gw_json_skip(j)) != 0) {
            return rc;
        }
    }
    return rc;
}

static int tool_call(ctx_t *c, gw_json_t *j, int position)
{
    gw_json_str_t k;
    long long index = position;
    size_t off, len;
    int rc;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    size_t at = c->m->n;
    push(c, GW_EV_TOOL_CALL);
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        gw_oai_pending_t *p = &c->m->ev[at]; /* (push may move the array: re-read) */
        if (GW_JSON_KEY(&k, "index")) {
            rc = gw_json_int(j, &index) == 0 && index >= 0 && index < 1 << 20 ? 0 : -EBADMSG;
        } else if (GW_JSON_KEY(&k, "id")) {
            if ((rc = arena_string(c, j, &off, &len)) == 1)
                p->id = off, p->ev.tool.id_len = len;
            rc = rc < 0 ? rc : 0;
        } else if (GW_JSON_KEY(&k, "function")) {
            rc = tool_function(c, j, p);
        } else {
            rc = gw_json_skip(j);
        }
        if (rc != 0)
            return rc;
    }
    c->m->ev[at].ev.tool.index = (int)index;
    return rc;
}

/* null, or an array whose elements each(c, j, position) reads */
static int array_of(ctx_t *c, gw_json_t *j, int (*each)(ctx_t *, gw_json_t *, int))
{
    int rc, pos = 0;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_array_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_array_next(j)) > 0)
        if ((rc = each(c, j, pos++)) != 0)
            return rc;
    return rc;
}

/* delta (stream) or message (answer) */
static int message(ctx_t *c, gw_json_t *j)
{
    gw_json_str_t k;
    int rc;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (GW_JSON_KEY(&k, "content"))
            rc = text_event(c, j, GW_EV_TEXT);
        else if (GW_JSON_KEY(&k, "refusal"))
            rc = text_event(c, j, GW_EV_REFUSAL);
        else if (GW_JSON_KEY(&k, "tool_calls"))
            rc = array_of(c, j, tool_call);
        else
            rc = gw_json_skip(j);
        if (rc != 0)
            return rc;
    }
    return rc;
}

static int finish_reason(ctx_t *c, gw_json_t *j)
{
    size_t off, len;
    int rc = arena_string(c, j, &off, &len);
    if (rc <= 0)
        return rc;
    gw_oai_pending_t *p = push(c, GW_EV_FINISH);
    p->ev.finish = gw_oai_finish_parse(c->m->arena.data + off, len);
    c->m->arena.len = off; /* the name is not needed any more */
    return 0;
}

static int choice(ctx_t *c, gw_json_t *j, int position)
{
    gw_json_str_t k;
    long long index = position;
    size_t first = c->m->n;
    int rc;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (GW_JSON_KEY(&k, "index"))
            rc = gw_json_int(j, &index) == 0 && index >= 0 && index < 1 << 20 ? 0 : -EBADMSG;
        else if (c->answer ? GW_JSON_KEY(&k, "message") : GW_JSON_KEY(&k, "delta"))
            rc = message(c, j);
        else if (GW_JSON_KEY(&k, "finish_reason"))
            rc = finish_reason(c, j);
        else
            rc = gw_json_skip(j);
        if (rc != 0)
            return rc;
    }
    for (size_t i = first; i < c->m->n; i++)
        c->m->ev[i].ev.choice = (int)index;
    return rc;
}

static int usage(ctx_t *c, gw_json_t *j)
{
    gw_json_str_t k;
    long long prompt = 0, completion = 0;
    int rc;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        long long *dst = GW_JSON_KEY(&k, "prompt_tokens")       ? &prompt
                         : GW_JSON_KEY(&k, "completion_tokens") ? &completion
                                                                : NULL;
        if (dst && gw_json_peek(j) == GW_JSON_NUMBER && gw_json_int(j, dst) == 0)
            continue;
        if ((rc = gw_json_skip(j)) != 0)
            return rc;
    }
    if (rc != 0)
        return rc;
    gw_oai_pending_t *p = push(c, GW_EV_USAGE);
    p->ev.prompt_tokens = prompt;
    p->ev.completion_tokens = completion;
    return 0;
}

static int message_of(gw_json_t *j, gw_buf_t *out);

static int top_member(ctx_t *c, gw_json_t *j, const gw_json_str_t *k)
{
    if (GW_JSON_KEY(k, "choices"))
        return array_of(c, j, choice);
    if (GW_JSON_KEY(k, "usage"))
        return usage(c, j);
    if (GW_JSON_KEY(k, "error") && gw_json_peek(j) != GW_JSON_NULL) {
        size_t off = c->m->arena.len;
        gw_json_t probe = *j;
        if (message_of(&probe, &c->m->arena) == 0 && c->m->arena.len > off) {
            c->error = off;
            c->error_len = c->m->arena.len - off;
        } else {
            c->m->arena.len = off;
            if (c->error == NONE)
                c->error = NONE - 1;
        }
    }
    return gw_json_skip(j);
}

static int emit_all(gw_oai_map_t *m, const ctx_t *c, gw_oai_emit_cb cb, void *ud)
{
    const char *base = m->arena.data ? m->arena.data : "";
    int rc;
    if (c->error != NONE) {
        gw_llm_event_t ev = {.type = GW_EV_ERROR};
        ev.error.cls = GW_BE_BAD_ANSWER;
        ev.error.retry_after = -1;
        ev.error.message = "the upstream sent an error without a message";
        if (c->error != NONE - 1) { /* a NUL-terminated copy at the end of the arena */
            gw_buf_reserve(&m->arena, c->error_len + 1);
            char *dst = m->arena.data + m->arena.len;
            memcpy(dst, m->arena.data + c->error, c->error_len);
            dst[c->error_len] = '\0';
            ev.error.message = dst;
        }
        return cb(ud, &ev);
    }
    if (!m->head_sent) {
        m->head_sent = 1;
        gw_llm_event_t head = {.type = GW_EV_HEAD};
        if ((rc = cb(ud, &head)) != 0)
            return rc;
    }
    for (size_t i = 0; i < m->n; i++) {
        gw_oai_pending_t *p = &m->ev[i];
        p->ev.text = p->text == NONE ? "" : base + p->text;
        p->ev.tool.id = p->id == NONE ? NULL : base + p->id;
        p->ev.tool.name = p->name == NONE ? NULL : base + p->name;
        if ((rc = cb(ud, &p->ev)) != 0)
            return rc;
    }
    return 0;
}

static int map(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb cb, void *ud,
               int answer)
{
    ctx_t c = {m, answer, NONE, 0};
    gw_json_t j;
    gw_json_str_t k;
    int rc;
    gw_buf_reset(&m->arena);
    m->n = 0;
    gw_json_init(&j, json, n);
    if (gw_json_object_begin(&j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(&j, &k)) > 0)
        if ((rc = top_member(&c, &j, &k)) != 0)
            return -EBADMSG;
    if (rc != 0 || gw_json_end(&j) != 0)
        return -EBADMSG;
    rc = emit_all(m, &c, cb, ud);
    if (m->arena.cap > 65536)
        gw_buf_dispose(&m->arena); /* a large answer: do not keep its memory for the stream */
    return rc;
}

int gw_oai_map_chunk(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb emit,
                     void *ud)
{
    return map(m, json, n, emit, ud, 0);
}

int gw_oai_map_answer(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb emit,
                      void *ud)
{
    return map(m, json, n, emit, ud, 1);
}

static int message_of(gw_json_t *j, gw_buf_t *out)
{
    gw_json_str_t k;
    int rc, found = 0;
    if (gw_json_peek(j) == GW_JSON_STRING)
        return gw_json_string(j, out);
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (!found && GW_JSON_KEY(&k, "message") && gw_json_peek(j) == GW_JSON_STRING) {
            if ((rc = gw_json_string(j, out)) != 0)
                return rc;
            found = 1;
        } else if ((rc = gw_json_skip(j)) != 0) {
            return rc;
        }
    }
    return rc == 0 && found ? 0 : -EBADMSG;
}

int gw_oai_error_message(const char *json, size_t n, gw_buf_t *out)
{
    gw_json_t j;
    gw_json_str_t k;
    int rc;
    size_t start = out->len;
    gw_json_init(&j, json, n);
    if (gw_json_object_begin(&j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(&j, &k)) > 0) {
        if (GW_JSON_KEY(&k, "error") && gw_json_peek(&j) != GW_JSON_NULL)
            return message_of(&j, out) == 0 ? 0 : -EBADMSG;
        if (GW_JSON_KEY(&k, "message") && gw_json_peek(&j) == GW_JSON_STRING) {
            out->len = start;
            if (gw_json_string(&j, out) == 0)
                return 0;
        }
        if (gw_json_skip(&j) != 0)
            return -EBADMSG;
    }
    return -EBADMSG;
}
