/*
 * pieces-gateway: the OpenAI chat-completions ingress format (chat.completion[.chunk]).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ingress_chat, gw_ingress_find. Uses: gw_buf, the error envelope (http.h).
 * Stream: one chunk per delta ({"role":"assistant"} with the first delta of a choice; content,
 *   refusal or tool_calls as OpenAI sends them), then one chunk per choice with its
 *   finish_reason (the last one carries usage unless the client asked for the usage chunk),
 *   the usage chunk with "choices":[] when asked, "data: [DONE]". An error is one
 *   {"error":{..}} event. Non-stream: one chat.completion with message.content (null when the
 *   answer is only tool calls or a refusal), refusal, tool_calls, finish_reason and usage.
 * The per-chunk path uses no printf: the chunk head (id, object, created, model) is built
 * once per stream.
 */
#include <string.h>

#include "http.h"
#include "ingress.h"

/* The start of a chunk with a text delta of choice 0 after the first one (most chunks). */
#define CONTENT0 "\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
#define DELTA_END "\"},\"finish_reason\":null}]}\n\n"

typedef struct {
    char head[256]; /* data: {"id":..,"object":..,"created":..,"model":.., (when it fits) */
    size_t head_len;
    size_t content0_len; /* head + CONTENT0 fits in head[] (then it is there, after head_len) */
} chat_state_t;

#define PUT_LIT(b, s) gw_buf_append((b), (s), sizeof(s) - 1)

static void error_json(gw_buf_t *out, const gw_out_error_t *e)
{
    gw_openai_error_json(out, e->message, e->message ? strlen(e->message) : 0, e->type,
                         e->type ? strlen(e->type) : 0, e->code, e->code ? strlen(e->code) : 0);
}

static void put_head(gw_buf_t *b, const gw_out_t *o, const char *object)
{
    gw_buf_puts(b, "{\"id\":\"");
    gw_buf_puts(b, o->id);
    gw_buf_puts(b, "\",\"object\":\"");
    gw_buf_puts(b, object);
    gw_buf_puts(b, "\",\"created\":");
    gw_buf_put_uint(b, o->created);
    gw_buf_puts(b, ",\"model\":\"");
    gw_buf_json_escape(b, o->model, strlen(o->model));
    gw_buf_puts(b, "\",");
}

static void chunk_head(gw_out_t *o, gw_buf_t *out)
{
    chat_state_t *s = o->state;
    if (s->head_len) {
        gw_buf_append(out, s->head, s->head_len);
        return;
    }
    gw_buf_puts(out, "data: ");
    put_head(out, o, "chat.completion.chunk");
}

static void put_usage(gw_buf_t *b, const gw_answer_t *a)
{
    long long p = a->prompt_tokens > 0 ? a->prompt_tokens : 0;
    long long c = a->completion_tokens > 0 ? a->completion_tokens : 0;
    gw_buf_puts(b, "\"usage\":{\"prompt_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)p);
    gw_buf_puts(b, ",\"completion_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)c);
    gw_buf_puts(b, ",\"total_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)(p + c));
    gw_buf_putc(b, '}');
}

/* Nothing is written at open: the head is built at the end of out (no buffer of its own),
 * kept in the state, and cut off again. */
static void chat_open(gw_out_t *o, gw_buf_t *out)
{
    chat_state_t *s = o->state;
    size_t at = out->len, n;
    PUT_LIT(out, "data: ");
    put_head(out, o, "chat.completion.chunk");
    n = out->len - at;
    if (n < sizeof(s->head)) {
        memcpy(s->head, out->data + at, n);
        s->head_len = n;
    }
    out->len = at;
    out->data[at] = '\0';
    if (s->head_len && s->head_len + sizeof(CONTENT0) - 1 <= sizeof(s->head)) {
        memcpy(s->head + s->head_len, CONTENT0, sizeof(CONTENT0) - 1);
        s->content0_len = s->head_len + sizeof(CONTENT0) - 1;
    }
}

static void put_tool_delta(gw_buf_t *out, const gw_llm_event_t *e)
{
    gw_buf_puts(out, "\"tool_calls\":[{\"index\":");
    gw_buf_put_uint(out, (unsigned long long)(e->tool.index > 0 ? e->tool.index : 0));
    if (e->tool.id) {
        gw_buf_puts(out, ",\"id\":");
        gw_buf_json_str(out, e->tool.id, e->tool.id_len);
        gw_buf_puts(out, ",\"type\":\"function\"");
    }
    gw_buf_puts(out, ",\"function\":{");
    if (e->tool.name) {
        gw_buf_puts(out, "\"name\":");
        gw_buf_json_str(out, e->tool.name, e->tool.name_len);
        gw_buf_putc(out, ',');
    }
    gw_buf_puts(out, "\"arguments\":");
    gw_buf_json_str(out, e->text, e->len);
    gw_buf_puts(out, "}}]");
}

static void chat_delta(gw_out_t *o, gw_buf_t *out, const gw_out_delta_t *d)
{
    const chat_state_t *s = o->state;
    if (d->choice == 0 && !d->role && d->type == GW_EV_TEXT && s->content0_len) {
        gw_buf_reserve(out, s->content0_len + d->ev->len + sizeof(DELTA_END));
        gw_buf_append(out, s->head, s->content0_len);
        gw_buf_json_escape(out, d->ev->text, d->ev->len);
        PUT_LIT(out, DELTA_END);
        return;
    }
    chunk_head(o, out);
    gw_buf_puts(out, "\"choices\":[{\"index\":");
    gw_buf_put_uint(out, (unsigned long long)d->choice);
    gw_buf_puts(out, ",\"delta\":{");
    if (d->role)
        gw_buf_puts(out, "\"role\":\"assistant\",");
    if (d->type == GW_EV_TOOL_CALL) {
        put_tool_delta(out, d->ev);
        PUT_LIT(out, "},\"finish_reason\":null}]}\n\n");
    } else {
        gw_buf_puts(out, d->type == GW_EV_REFUSAL ? "\"refusal\":\"" : "\"content\":\"");
        gw_buf_json_escape(out, d->ev->text, d->ev->len);
        PUT_LIT(out, DELTA_END);
    }
}

static void chat_close(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a)
{
    size_t n = a->n_choices ? a->n_choices : 1;
    for (size_t i = 0; i < n; i++) {
        gw_finish_t f = a->n_choices ? a->choices[i].finish : GW_FINISH_NONE;
        chunk_head(o, out);
        gw_buf_puts(out, "\"choices\":[{\"index\":");
        gw_buf_put_uint(out, i);
        gw_buf_puts(out, ",\"delta\":{},\"finish_reason\":\"");
        gw_buf_puts(out, gw_finish_name(f == GW_FINISH_NONE ? GW_FINISH_STOP : f));
        gw_buf_puts(out, "\"}]");
        if (!o->include_usage && i + 1 == n) {
            gw_buf_putc(out, ',');
            put_usage(out, a);
        }
        gw_buf_puts(out, "}\n\n");
    }
    if (o->include_usage) {
        chunk_head(o, out);
        gw_buf_puts(out, "\"choices\":[],");
        put_usage(out, a);
        gw_buf_puts(out, "}\n\n");
    }
    gw_buf_puts(out, "data: [DONE]\n\n");
}

static void chat_error(gw_out_t *o, gw_buf_t *out, const gw_out_error_t *e)
{
    (void)o;
    gw_buf_puts(out, "data: ");
    error_json(out, e);
    gw_buf_puts(out, "\n\n");
}

static void put_tools(gw_buf_t *out, const gw_choice_t *c)
{
    gw_buf_puts(out, ",\"tool_calls\":[");
    for (size_t t = 0; t < c->n_tools; t++) {
        const gw_tool_acc_t *k = &c->tools[t];
        gw_buf_puts(out, t ? ",{\"id\":" : "{\"id\":");
        gw_buf_json_str(out, k->id.data, k->id.len);
        gw_buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
        gw_buf_json_str(out, k->name.data, k->name.len);
        gw_buf_puts(out, ",\"arguments\":");
        gw_buf_json_str(out, k->args.data, k->args.len);
        gw_buf_puts(out, "}}");
    }
    gw_buf_putc(out, ']');
}

static void chat_answer(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a)
{
    put_head(out, o, "chat.completion");
    gw_buf_puts(out, "\"choices\":[");
    for (size_t i = 0; i < a->n_choices; i++) {
        const gw_choice_t *c = &a->choices[i];
        gw_buf_puts(out, i ? ",{\"index\":" : "{\"index\":");
        gw_buf_put_uint(out, i);
        gw_buf_puts(out, ",\"message\":{\"role\":\"assistant\",\"content\":");
        if (c->text.len || (!c->n_tools && !c->refusal.len))
            gw_buf_json_str(out, c->text.data, c->text.len);
        else
            gw_buf_puts(out, "null");
        if (c->refusal.len) {
            gw_buf_puts(out, ",\"refusal\":");
            gw_buf_json_str(out, c->refusal.data, c->refusal.len);
        }
        if (c->n_tools)
            put_tools(out, c);
        gw_buf_puts(out, "},\"finish_reason\":\"");
        gw_buf_puts(out, gw_finish_name(c->finish == GW_FINISH_NONE ? GW_FINISH_STOP : c->finish));
        gw_buf_puts(out, "\"}");
    }
    gw_buf_puts(out, "],");
    put_usage(out, a);
    gw_buf_putc(out, '}');
}

static void chat_error_body(gw_buf_t *out, const gw_out_error_t *e)
{
    error_json(out, e);
}

const gw_ingress_t gw_ingress_chat = {
    .name = "chat",
    .id_prefix = "chatcmpl-",
    .upstream_id = 1,
    .state_size = sizeof(chat_state_t),
    .open = chat_open,
    .delta = chat_delta,
    .close = chat_close,
    .error = chat_error,
    .answer = chat_answer,
    .error_body = chat_error_body,
};

const gw_ingress_t *gw_ingress_find(const char *name)
{
    static const gw_ingress_t *const all[] = {&gw_ingress_chat, &gw_ingress_anthropic,
                                              &gw_ingress_responses};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}
