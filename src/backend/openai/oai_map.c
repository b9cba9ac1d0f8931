/*
 * pieces-gateway: OpenAI chat-completions JSON to backend events (see oai_map.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_oai_map_*, gw_oai_error_message, gw_oai_finish_parse. Uses: json.c.
 * Must never: emit anything for an invalid document, or read past its end.
 */
#include "oai_map.h"

#include <errno.h>
#include <string.h>

#include "backend/json.h"

void gw_oai_map_init(gw_oai_map_t *m)
{
    memset(m, 0, sizeof(*m));
    gw_buf_init(&m->text);
    gw_buf_init(&m->id);
    gw_buf_init(&m->name);
}

void gw_oai_map_dispose(gw_oai_map_t *m)
{
    gw_buf_dispose(&m->text);
    gw_buf_dispose(&m->id);
    gw_buf_dispose(&m->name);
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
    gw_oai_emit_cb emit;
    void *ud;
    int choice;
    int answer; /* message.* instead of delta.* */
} ctx_t;

static int emit(ctx_t *c, gw_llm_event_t *ev)
{
    ev->choice = c->choice;
    return c->emit(c->ud, ev);
}

/* A string or null member value into buf (reset first). 1 = string, 0 = null. */
static int opt_string(gw_json_t *j, gw_buf_t *buf)
{
    int rc = gw_json_null(j);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    gw_buf_reset(buf);
    return gw_json_string(j, buf) == 0 ? 1 : -EBADMSG;
}

static int text_event(ctx_t *c, gw_json_t *j, gw_ev_type_t type)
{
    int rc = opt_string(j, &c->m->text);
    if (rc <= 0 || c->m->text.len == 0)
        return rc < 0 ? rc : 0;
    gw_llm_event_t ev = {.type = type, .text = c->m->text.data, .len = c->m->text.len};
    return emit(c, &ev);
}

static int tool_function(ctx_t *c, gw_json_t *j, int *has_name)
{
    gw_json_str_t k;
    int rc;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (gw_json_key_is(&k, "name"))
            rc = (*has_name = opt_string(j, &c->m->name)) < 0 ? -EBADMSG : 0;
        else if (gw_json_key_is(&k, "arguments"))
            rc = opt_string(j, &c->m->text) < 0 ? -EBADMSG : 0;
        else
            rc = gw_json_skip(j);
        if (rc != 0)
            return rc;
    }
    return rc;
}

static int tool_call(ctx_t *c, gw_json_t *j, int position)
{
    gw_json_str_t k;
    long long index = position;
    int rc, has_id = 0, has_name = 0;
    gw_buf_reset(&c->m->text);
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (gw_json_key_is(&k, "index"))
            rc = gw_json_int(j, &index) == 0 && index >= 0 && index < 1 << 20 ? 0 : -EBADMSG;
        else if (gw_json_key_is(&k, "id"))
            rc = (has_id = opt_string(j, &c->m->id)) < 0 ? -EBADMSG : 0;
        else if (gw_json_key_is(&k, "function"))
            rc = tool_function(c, j, &has_name);
        else
            rc = gw_json_skip(j);
        if (rc != 0)
            return rc;
    }
    if (rc != 0)
        return rc;
    gw_llm_event_t ev = {.type = GW_EV_TOOL_CALL,
                         .text = c->m->text.data ? c->m->text.data : "",
                         .len = c->m->text.len};
    ev.tool.index = (int)index;
    if (has_id == 1)
        ev.tool.id = c->m->id.data ? c->m->id.data : "", ev.tool.id_len = c->m->id.len;
    if (has_name == 1)
        ev.tool.name = c->m->name.data ? c->m->name.data : "", ev.tool.name_len = c->m->name.len;
    return emit(c, &ev);
}

static int tool_calls(ctx_t *c, gw_json_t *j)
{
    int rc, pos = 0;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_array_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_array_next(j)) > 0)
        if ((rc = tool_call(c, j, pos++)) != 0)
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
        if (gw_json_key_is(&k, "content"))
            rc = text_event(c, j, GW_EV_TEXT);
        else if (gw_json_key_is(&k, "refusal"))
            rc = text_event(c, j, GW_EV_REFUSAL);
        else if (gw_json_key_is(&k, "tool_calls"))
            rc = tool_calls(c, j);
        else
            rc = gw_json_skip(j);
        if (rc != 0)
            return rc;
    }
    return rc;
}

static int finish_reason(ctx_t *c, gw_json_t *j)
{
    int rc = opt_string(j, &c->m->text);
    if (rc <= 0)
        return rc;
    gw_llm_event_t ev = {.type = GW_EV_FINISH,
                         .finish = gw_oai_finish_parse(c->m->text.data, c->m->text.len)};
    return emit(c, &ev);
}

/* The choice's "index", wherever it is among the members (the document is valid). */
static int choice_index(gw_json_t j, int position)
{
    gw_json_str_t k;
    long long index;
    if (gw_json_object_begin(&j) != 0)
        return position;
    while (gw_json_object_next(&j, &k) > 0) {
        if (gw_json_key_is(&k, "index"))
            return gw_json_int(&j, &index) == 0 && index >= 0 && index < 1 << 20 ? (int)index : -1;
        if (gw_json_skip(&j) != 0)
            break;
    }
    return position;
}

static int choice(ctx_t *c, gw_json_t *j, int position)
{
    gw_json_str_t k;
    int rc;
    if ((c->choice = choice_index(*j, position)) < 0 || gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        if (gw_json_key_is(&k, c->answer ? "message" : "delta"))
            rc = message(c, j);
        else if (gw_json_key_is(&k, "finish_reason"))
            rc = finish_reason(c, j);
        else
            rc = gw_json_skip(j);
        if (rc != 0)
            return rc;
    }
    return rc;
}

static int choices(ctx_t *c, gw_json_t *j)
{
    int rc, pos = 0;
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_array_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_array_next(j)) > 0)
        if ((rc = choice(c, j, pos++)) != 0)
            return rc;
    return rc;
}

static int usage(ctx_t *c, gw_json_t *j)
{
    gw_json_str_t k;
    int rc;
    gw_llm_event_t ev = {.type = GW_EV_USAGE};
    if (gw_json_null(j) == 1)
        return 0;
    if (gw_json_object_begin(j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        long long *dst = gw_json_key_is(&k, "prompt_tokens")       ? &ev.prompt_tokens
                         : gw_json_key_is(&k, "completion_tokens") ? &ev.completion_tokens
                                                                   : NULL;
        if (dst && gw_json_peek(j) == GW_JSON_NUMBER && gw_json_int(j, dst) == 0)
            continue;
        if ((rc = gw_json_skip(j)) != 0)
            return rc;
    }
    if (rc != 0)
        return rc;
    c->choice = 0;
    return emit(c, &ev);
}

/* Validates the document; *is_error when it has a top-level "error" member. */
static int validate(const char *json, size_t n, int *is_error)
{
    gw_json_t j;
    gw_json_str_t k;
    int rc;
    *is_error = 0;
    gw_json_init(&j, json, n);
    if (gw_json_object_begin(&j) != 0)
        return -EBADMSG;
    while ((rc = gw_json_object_next(&j, &k)) > 0) {
        if (gw_json_key_is(&k, "error") && gw_json_peek(&j) != GW_JSON_NULL)
            *is_error = 1;
        if ((rc = gw_json_skip(&j)) != 0)
            return rc;
    }
    return rc == 0 ? gw_json_end(&j) : rc;
}

static int error_event(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb cb, void *ud)
{
    gw_buf_reset(&m->text);
    if (gw_oai_error_message(json, n, &m->text) != 0 || m->text.len == 0)
        gw_buf_puts(&m->text, "the upstream sent an error without a message");
    gw_llm_event_t ev = {.type = GW_EV_ERROR};
    ev.error.cls = GW_BE_BAD_ANSWER;
    ev.error.retry_after = -1;
    ev.error.message = m->text.data;
    return cb(ud, &ev);
}

static int map(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb cb, void *ud, int answer)
{
    int is_error, rc = validate(json, n, &is_error);
    if (rc != 0)
        return rc;
    if (is_error)
        return error_event(m, json, n, cb, ud);
    if (!m->head_sent) {
        m->head_sent = 1;
        gw_llm_event_t head = {.type = GW_EV_HEAD};
        if ((rc = cb(ud, &head)) != 0)
            return rc;
    }
    ctx_t c = {m, cb, ud, 0, answer};
    gw_json_t j;
    gw_json_str_t k;
    gw_json_init(&j, json, n);
    gw_json_object_begin(&j);
    while ((rc = gw_json_object_next(&j, &k)) > 0) {
        if (gw_json_key_is(&k, "choices"))
            rc = choices(&c, &j);
        else if (gw_json_key_is(&k, "usage"))
            rc = usage(&c, &j);
        else
            rc = gw_json_skip(&j);
        if (rc != 0)
            return rc;
    }
    return rc;
}

int gw_oai_map_chunk(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb emit, void *ud)
{
    return map(m, json, n, emit, ud, 0);
}

int gw_oai_map_answer(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb emit, void *ud)
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
        if (!found && gw_json_key_is(&k, "message") && gw_json_peek(j) == GW_JSON_STRING) {
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
        if (gw_json_key_is(&k, "error") && gw_json_peek(&j) != GW_JSON_NULL)
            return message_of(&j, out) == 0 ? 0 : -EBADMSG;
        if (gw_json_key_is(&k, "message") && gw_json_peek(&j) == GW_JSON_STRING) {
            out->len = start;
            if (gw_json_string(&j, out) == 0)
                return 0;
        }
        if (gw_json_skip(&j) != 0)
            return -EBADMSG;
    }
    return -EBADMSG;
}
