/*
 * pieces-gateway: the Anthropic Messages ingress format (message objects and stream events).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ingress_anthropic ("messages"), gw_anthropic_error_type. Uses: gw_buf, the JSON
 * scanner (tool arguments must be an object to become a tool_use input).
 * Only choice 0 is shown (the Messages API has one). Text and refusal deltas are text blocks,
 * each tool call a tool_use block; a block is stopped when the next one starts.
 * Stream, with `event:` lines as Anthropic sends them:
 *   message_start (usage.input_tokens: the gateway's prompt count), then per block
 *   content_block_start [ping after the first] content_block_delta (text_delta |
 *   input_json_delta)* content_block_stop, then message_delta (stop_reason, usage with
 *   input_tokens and output_tokens: the final numbers) and message_stop; a failure after the
 *   start is one `error` event.
 * stop_reason: stop -> end_turn (stop_sequence when one of the request's stop_sequences ended
 * the text: the engine applies them, chat_stop.h, and names it in stop_sequence), length ->
 * max_tokens, tool_calls -> tool_use, content_filter -> refusal.
 */
#include <string.h>

#include "backend/json.h"
#include "ingress.h"

enum { BLOCK_NONE = 0, BLOCK_TEXT, BLOCK_TOOL };

typedef struct {
    int kind;  /* the open block */
    int index; /* its index */
    int started; /* blocks started so far */
    int tool;  /* the open tool block's upstream tool index */
    int ping_sent;
} anth_state_t;

const char *gw_anthropic_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status < 500 ? "invalid_request_error" : "api_error";
    }
}

static const char *stop_reason(gw_finish_t f, const gw_answer_t *a)
{
    if (a->stop_sequence)
        return "stop_sequence";
    switch (f) {
    case GW_FINISH_LENGTH: return "max_tokens";
    case GW_FINISH_TOOL_CALLS:
    case GW_FINISH_FUNCTION_CALL: return "tool_use";
    case GW_FINISH_CONTENT_FILTER: return "refusal";
    default: return "end_turn";
    }
}

static void put_stop_sequence(gw_buf_t *b, const gw_answer_t *a)
{
    gw_buf_puts(b, "\"stop_sequence\":");
    if (a->stop_sequence)
        gw_buf_json_str(b, a->stop_sequence, strlen(a->stop_sequence));
    else
        gw_buf_puts(b, "null");
}

static void put_usage(gw_buf_t *b, long long in, long long out)
{
    gw_buf_puts(b, "\"usage\":{\"input_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)(in > 0 ? in : 0));
    gw_buf_puts(b, ",\"output_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)(out > 0 ? out : 0));
    gw_buf_putc(b, '}');
}

static void event(gw_buf_t *out, const char *name)
{
    gw_buf_puts(out, "event: ");
    gw_buf_puts(out, name);
    gw_buf_puts(out, "\ndata: {\"type\":\"");
    gw_buf_puts(out, name);
    gw_buf_puts(out, "\"");
}

/* The message object's fields before "content" (non-stream and message_start). */
static void put_message_head(gw_buf_t *out, const gw_out_t *o)
{
    gw_buf_puts(out, "{\"id\":\"");
    gw_buf_puts(out, o->id);
    gw_buf_puts(out, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    gw_buf_json_str(out, o->model, strlen(o->model));
}

static void anth_open(gw_out_t *o, gw_buf_t *out)
{
    event(out, "message_start");
    gw_buf_puts(out, ",\"message\":");
    put_message_head(out, o);
    gw_buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
    put_usage(out, o->prompt_tokens, 0);
    gw_buf_puts(out, "}}\n\n");
}

static void block_stop(anth_state_t *s, gw_buf_t *out)
{
    if (s->kind == BLOCK_NONE)
        return;
    event(out, "content_block_stop");
    gw_buf_puts(out, ",\"index\":");
    gw_buf_put_uint(out, (unsigned long long)s->index);
    gw_buf_puts(out, "}\n\n");
    s->kind = BLOCK_NONE;
}

static void block_start(anth_state_t *s, gw_buf_t *out, const gw_llm_event_t *ev, int kind)
{
    block_stop(s, out);
    s->index = s->started++;
    s->kind = kind;
    event(out, "content_block_start");
    gw_buf_puts(out, ",\"index\":");
    gw_buf_put_uint(out, (unsigned long long)s->index);
    if (kind == BLOCK_TEXT) {
        gw_buf_puts(out, ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    } else {
        s->tool = ev->tool.index;
        gw_buf_puts(out, ",\"content_block\":{\"type\":\"tool_use\",\"id\":");
        gw_buf_json_str(out, ev->tool.id, ev->tool.id_len);
        gw_buf_puts(out, ",\"name\":");
        gw_buf_json_str(out, ev->tool.name, ev->tool.name_len);
        gw_buf_puts(out, ",\"input\":{}}}\n\n");
    }
    if (!s->ping_sent) {
        s->ping_sent = 1;
        gw_buf_puts(out, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}

static void anth_delta(gw_out_t *o, gw_buf_t *out, const gw_out_delta_t *d)
{
    anth_state_t *s = o->state;
    const gw_llm_event_t *ev = d->ev;
    if (d->choice != 0)
        return;
    if (d->type == GW_EV_TOOL_CALL) {
        if (s->kind != BLOCK_TOOL || s->tool != ev->tool.index || ev->tool.id)
            block_start(s, out, ev, BLOCK_TOOL);
        if (!ev->len)
            return;
        event(out, "content_block_delta");
        gw_buf_puts(out, ",\"index\":");
        gw_buf_put_uint(out, (unsigned long long)s->index);
        gw_buf_puts(out, ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":");
    } else {
        if (s->kind != BLOCK_TEXT)
            block_start(s, out, ev, BLOCK_TEXT);
        event(out, "content_block_delta");
        gw_buf_puts(out, ",\"index\":");
        gw_buf_put_uint(out, (unsigned long long)s->index);
        gw_buf_puts(out, ",\"delta\":{\"type\":\"text_delta\",\"text\":");
    }
    gw_buf_json_str(out, ev->text, ev->len);
    gw_buf_puts(out, "}}\n\n");
}

static void anth_close(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a)
{
    anth_state_t *s = o->state;
    gw_finish_t f = a->n_choices ? a->choices[0].finish : GW_FINISH_NONE;
    block_stop(s, out);
    event(out, "message_delta");
    gw_buf_puts(out, ",\"delta\":{\"stop_reason\":\"");
    gw_buf_puts(out, stop_reason(f, a));
    gw_buf_puts(out, "\",");
    put_stop_sequence(out, a);
    gw_buf_puts(out, "},");
    put_usage(out, a->prompt_tokens, a->completion_tokens);
    gw_buf_puts(out, "}\n\n");
    gw_buf_puts(out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

static void put_error(gw_buf_t *out, const gw_out_error_t *e)
{
    gw_buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
    gw_buf_puts(out, gw_anthropic_error_type(e->status));
    gw_buf_puts(out, "\",\"message\":");
    gw_buf_json_str(out, e->message, e->message ? strlen(e->message) : 0);
    gw_buf_puts(out, "}}");
}

static void anth_error(gw_out_t *o, gw_buf_t *out, const gw_out_error_t *e)
{
    (void)o;
    gw_buf_puts(out, "event: error\ndata: ");
    put_error(out, e);
    gw_buf_puts(out, "\n\n");
}

/* A tool's arguments as the tool_use input: the JSON object the upstream sent, else {}. */
static void put_input(gw_buf_t *out, const gw_buf_t *args)
{
    gw_json_t j;
    if (args->len) {
        gw_json_init(&j, args->data, args->len);
        if (gw_json_peek(&j) == GW_JSON_OBJECT && gw_json_skip(&j) == 0 && gw_json_end(&j) == 0) {
            gw_buf_append(out, args->data, args->len);
            return;
        }
    }
    gw_buf_puts(out, "{}");
}

static void anth_answer(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a)
{
    const gw_choice_t *c = a->n_choices ? &a->choices[0] : NULL;
    int n = 0;
    put_message_head(out, o);
    gw_buf_puts(out, ",\"content\":[");
    if (c && (c->text.len || c->refusal.len || !c->n_tools)) {
        const gw_buf_t *t = c->text.len || !c->refusal.len ? &c->text : &c->refusal;
        gw_buf_puts(out, "{\"type\":\"text\",\"text\":");
        gw_buf_json_str(out, t->data, t->len);
        gw_buf_putc(out, '}');
        n++;
    }
    for (size_t i = 0; c && i < c->n_tools; i++) {
        const gw_tool_acc_t *k = &c->tools[i];
        gw_buf_puts(out, n++ ? ",{\"type\":\"tool_use\",\"id\":" : "{\"type\":\"tool_use\",\"id\":");
        gw_buf_json_str(out, k->id.data, k->id.len);
        gw_buf_puts(out, ",\"name\":");
        gw_buf_json_str(out, k->name.data, k->name.len);
        gw_buf_puts(out, ",\"input\":");
        put_input(out, &k->args);
        gw_buf_putc(out, '}');
    }
    gw_buf_puts(out, "],\"stop_reason\":\"");
    gw_buf_puts(out, stop_reason(c ? c->finish : GW_FINISH_NONE, a));
    gw_buf_puts(out, "\",");
    put_stop_sequence(out, a);
    gw_buf_putc(out, ',');
    put_usage(out, a->prompt_tokens, a->completion_tokens);
    gw_buf_putc(out, '}');
}

const gw_ingress_t gw_ingress_anthropic = {
    .name = "messages",
    .id_prefix = "msg_",
    .state_size = sizeof(anth_state_t),
    .open = anth_open,
    .delta = anth_delta,
    .close = anth_close,
    .error = anth_error,
    .answer = anth_answer,
    .error_body = put_error,
};
