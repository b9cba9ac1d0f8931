/*
 * pieces-gateway: the OpenAI Responses ingress format (response objects and stream events).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ingress_responses ("responses"). Uses: gw_buf.
 * Only choice 0 is shown. Its text (and refusal text) is one `message` output item with one
 * `output_text` part; each tool call is a `function_call` item. Item ids derive from the
 * response id (resp_<hex> -> msg_<hex>, fc_<hex>_<n>).
 * Stream: response.created, response.in_progress; per item output_item.added (+
 * content_part.added for the message), output_text.delta / function_call_arguments.delta,
 * and when it ends (a call when the next call starts, the message at the end)
 * output_text.done + content_part.done / function_call_arguments.done, output_item.done;
 * then response.completed (response.incomplete when the answer hit max_output_tokens) with
 * the whole response and usage, or response.failed after a failure. Every event carries
 * sequence_number. The done events and the final response repeat the whole output, so the
 * format keeps the stream's text and calls (as the client's SDK does).
 * The gateway stores nothing: every response says "store":false. The request's parameters the
 * response object echoes (instructions, tools, text, ...) come ready-made from the route phase
 * (gw_out_t.fields, policies/responses.lua).
 */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "ingress.h"

/* The echoed request parameters when the route phase gave none (OpenAI's defaults). */
#define DEFAULT_FIELDS                                                                           \
    "\"instructions\":null,\"max_output_tokens\":null,\"parallel_tool_calls\":true,"            \
    "\"temperature\":1,\"text\":{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\","      \
    "\"tools\":[],\"top_p\":1,\"metadata\":{},\"user\":null"

typedef struct {
    unsigned long long seq;
    gw_choice_t acc; /* stream: the text and calls so far */
    int *tool_at;    /* output index of each call of acc */
    int n_items;     /* output items opened */
    int msg_at;      /* output index of the message item + 1; 0 = none yet */
    int cur;         /* acc.tools index of the open call + 1; 0 = none */
} resp_state_t;

static const char *hex_of(const gw_out_t *o)
{
    return strncmp(o->id, "resp_", 5) == 0 ? o->id + 5 : o->id;
}

static void put_usage(gw_buf_t *b, const gw_answer_t *a)
{
    long long p = a->prompt_tokens > 0 ? a->prompt_tokens : 0;
    long long c = a->completion_tokens > 0 ? a->completion_tokens : 0;
    gw_buf_puts(b, "{\"input_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)p);
    gw_buf_puts(b, ",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)c);
    gw_buf_puts(b, ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":");
    gw_buf_put_uint(b, (unsigned long long)(p + c));
    gw_buf_putc(b, '}');
}

static void put_msg_id(gw_buf_t *out, const gw_out_t *o)
{
    gw_buf_puts(out, "\"msg_");
    gw_buf_puts(out, hex_of(o));
    gw_buf_putc(out, '"');
}

static void put_call_id(gw_buf_t *out, const gw_out_t *o, size_t k)
{
    gw_buf_puts(out, "\"fc_");
    gw_buf_puts(out, hex_of(o));
    gw_buf_putc(out, '_');
    gw_buf_put_uint(out, k);
    gw_buf_putc(out, '"');
}

static void put_text_part(gw_buf_t *out, const gw_buf_t *text)
{
    gw_buf_puts(out, "{\"type\":\"output_text\",\"text\":");
    gw_buf_json_str(out, text->data, text->len);
    gw_buf_puts(out, ",\"annotations\":[],\"logprobs\":[]}");
}

static void put_message(gw_buf_t *out, const gw_out_t *o, const gw_buf_t *text, int done)
{
    gw_buf_puts(out, "{\"id\":");
    put_msg_id(out, o);
    gw_buf_puts(out, done ? ",\"type\":\"message\",\"status\":\"completed\""
                          : ",\"type\":\"message\",\"status\":\"in_progress\"");
    gw_buf_puts(out, ",\"role\":\"assistant\",\"content\":[");
    if (done)
        put_text_part(out, text);
    gw_buf_puts(out, "]}");
}

static void put_call(gw_buf_t *out, const gw_out_t *o, size_t k, const gw_tool_acc_t *t, int done)
{
    gw_buf_puts(out, "{\"id\":");
    put_call_id(out, o, k);
    gw_buf_puts(out, done ? ",\"type\":\"function_call\",\"status\":\"completed\""
                          : ",\"type\":\"function_call\",\"status\":\"in_progress\"");
    gw_buf_puts(out, ",\"call_id\":");
    gw_buf_json_str(out, t->id.data, t->id.len);
    gw_buf_puts(out, ",\"name\":");
    gw_buf_json_str(out, t->name.data, t->name.len);
    gw_buf_puts(out, ",\"arguments\":");
    gw_buf_json_str(out, done ? t->args.data : "", done ? t->args.len : 0);
    gw_buf_putc(out, '}');
}

/* The message text of a choice: its text, else its refusal. */
static const gw_buf_t *message_text(const gw_choice_t *c)
{
    return c->text.len || !c->refusal.len ? &c->text : &c->refusal;
}

/* The output array: msg_at / tool_at give each item's place (NULL tool_at: message first). */
static void put_output(gw_buf_t *out, const gw_out_t *o, const gw_choice_t *c, int msg_at,
                       const int *tool_at)
{
    size_t n = c->n_tools + (msg_at ? 1 : 0);
    gw_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            gw_buf_putc(out, ',');
        if (msg_at && (int)i == msg_at - 1) {
            put_message(out, o, message_text(c), 1);
            continue;
        }
        for (size_t k = 0; k < c->n_tools; k++)
            if ((tool_at ? tool_at[k] : (int)k + (msg_at ? 1 : 0)) == (int)i)
                put_call(out, o, k, &c->tools[k], 1);
    }
    gw_buf_putc(out, ']');
}

/* The response object. c/a NULL: nothing yet (in_progress); e: the failure. */
static void put_response(gw_buf_t *out, const gw_out_t *o, const char *status,
                         const gw_choice_t *c, int msg_at, const int *tool_at,
                         const gw_answer_t *a, const gw_out_error_t *e)
{
    gw_buf_puts(out, "{\"id\":\"");
    gw_buf_puts(out, o->id);
    gw_buf_puts(out, "\",\"object\":\"response\",\"created_at\":");
    gw_buf_put_uint(out, o->created);
    gw_buf_puts(out, ",\"status\":\"");
    gw_buf_puts(out, status);
    gw_buf_puts(out, "\",\"error\":");
    if (e) {
        gw_buf_puts(out, "{\"code\":\"server_error\",\"message\":");
        gw_buf_json_str(out, e->message, e->message ? strlen(e->message) : 0);
        gw_buf_putc(out, '}');
    } else {
        gw_buf_puts(out, "null");
    }
    gw_buf_puts(out, strcmp(status, "incomplete") == 0
                         ? ",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}"
                         : ",\"incomplete_details\":null");
    gw_buf_puts(out, ",\"model\":");
    gw_buf_json_str(out, o->model, strlen(o->model));
    gw_buf_puts(out, ",\"output\":");
    if (c)
        put_output(out, o, c, msg_at, tool_at);
    else
        gw_buf_puts(out, "[]");
    gw_buf_puts(out, ",\"previous_response_id\":null,\"store\":false,"
                     "\"truncation\":\"disabled\",");
    if (o->fields)
        gw_buf_append(out, o->fields, o->fields_len);
    else
        gw_buf_puts(out, DEFAULT_FIELDS);
    gw_buf_puts(out, ",\"usage\":");
    if (a)
        put_usage(out, a);
    else
        gw_buf_puts(out, "null");
    gw_buf_putc(out, '}');
}

static const char *final_status(const gw_answer_t *a)
{
    return a->n_choices && a->choices[0].finish == GW_FINISH_LENGTH ? "incomplete" : "completed";
}

/* ---------- stream ---------- */

static void event(resp_state_t *s, gw_buf_t *out, const char *name)
{
    gw_buf_puts(out, "event: ");
    gw_buf_puts(out, name);
    gw_buf_puts(out, "\ndata: {\"type\":\"");
    gw_buf_puts(out, name);
    gw_buf_puts(out, "\",\"sequence_number\":");
    gw_buf_put_uint(out, s->seq++);
}

static void item_ref(gw_buf_t *out, const gw_out_t *o, int at, long k)
{
    gw_buf_puts(out, ",\"item_id\":");
    if (k < 0)
        put_msg_id(out, o);
    else
        put_call_id(out, o, (size_t)k);
    gw_buf_puts(out, ",\"output_index\":");
    gw_buf_put_uint(out, (unsigned long long)at);
}

static void resp_open(gw_out_t *o, gw_buf_t *out)
{
    resp_state_t *s = o->state;
    event(s, out, "response.created");
    gw_buf_puts(out, ",\"response\":");
    put_response(out, o, "in_progress", NULL, 0, NULL, NULL, NULL);
    gw_buf_puts(out, "}\n\n");
    event(s, out, "response.in_progress");
    gw_buf_puts(out, ",\"response\":");
    put_response(out, o, "in_progress", NULL, 0, NULL, NULL, NULL);
    gw_buf_puts(out, "}\n\n");
}

static void call_done(gw_out_t *o, resp_state_t *s, gw_buf_t *out)
{
    if (!s->cur)
        return;
    size_t k = (size_t)s->cur - 1;
    const gw_tool_acc_t *t = &s->acc.tools[k];
    s->cur = 0;
    event(s, out, "response.function_call_arguments.done");
    item_ref(out, o, s->tool_at[k], (long)k);
    gw_buf_puts(out, ",\"name\":");
    gw_buf_json_str(out, t->name.data, t->name.len);
    gw_buf_puts(out, ",\"arguments\":");
    gw_buf_json_str(out, t->args.data, t->args.len);
    gw_buf_puts(out, "}\n\n");
    event(s, out, "response.output_item.done");
    gw_buf_puts(out, ",\"output_index\":");
    gw_buf_put_uint(out, (unsigned long long)s->tool_at[k]);
    gw_buf_puts(out, ",\"item\":");
    put_call(out, o, k, t, 1);
    gw_buf_puts(out, "}\n\n");
}

static void message_done(gw_out_t *o, resp_state_t *s, gw_buf_t *out)
{
    const gw_buf_t *text = &s->acc.text;
    int at = s->msg_at - 1;
    if (!s->msg_at)
        return;
    event(s, out, "response.output_text.done");
    item_ref(out, o, at, -1);
    gw_buf_puts(out, ",\"content_index\":0,\"text\":");
    gw_buf_json_str(out, text->data, text->len);
    gw_buf_puts(out, ",\"logprobs\":[]}\n\n");
    event(s, out, "response.content_part.done");
    item_ref(out, o, at, -1);
    gw_buf_puts(out, ",\"content_index\":0,\"part\":");
    put_text_part(out, text);
    gw_buf_puts(out, "}\n\n");
    event(s, out, "response.output_item.done");
    gw_buf_puts(out, ",\"output_index\":");
    gw_buf_put_uint(out, (unsigned long long)at);
    gw_buf_puts(out, ",\"item\":");
    put_message(out, o, text, 1);
    gw_buf_puts(out, "}\n\n");
}

static void text_delta(gw_out_t *o, resp_state_t *s, gw_buf_t *out, const gw_llm_event_t *ev)
{
    if (!s->msg_at) {
        s->msg_at = ++s->n_items;
        event(s, out, "response.output_item.added");
        gw_buf_puts(out, ",\"output_index\":");
        gw_buf_put_uint(out, (unsigned long long)(s->msg_at - 1));
        gw_buf_puts(out, ",\"item\":");
        put_message(out, o, NULL, 0);
        gw_buf_puts(out, "}\n\n");
        event(s, out, "response.content_part.added");
        item_ref(out, o, s->msg_at - 1, -1);
        gw_buf_puts(out, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\","
                         "\"annotations\":[],\"logprobs\":[]}}\n\n");
    }
    gw_buf_append(&s->acc.text, ev->text, ev->len);
    event(s, out, "response.output_text.delta");
    item_ref(out, o, s->msg_at - 1, -1);
    gw_buf_puts(out, ",\"content_index\":0,\"delta\":");
    gw_buf_json_str(out, ev->text, ev->len);
    gw_buf_puts(out, ",\"logprobs\":[]}\n\n");
}

static void call_start(gw_out_t *o, resp_state_t *s, gw_buf_t *out, const gw_llm_event_t *ev)
{
    gw_choice_t *c = &s->acc;
    call_done(o, s, out);
    c->tools = gw_realloc(c->tools, (c->n_tools + 1) * sizeof(*c->tools));
    s->tool_at = gw_realloc(s->tool_at, (c->n_tools + 1) * sizeof(*s->tool_at));
    gw_tool_acc_t *t = &c->tools[c->n_tools];
    memset(t, 0, sizeof(*t));
    t->index = ev->tool.index;
    gw_buf_append(&t->id, ev->tool.id ? ev->tool.id : "", ev->tool.id ? ev->tool.id_len : 0);
    gw_buf_append(&t->name, ev->tool.name ? ev->tool.name : "",
                  ev->tool.name ? ev->tool.name_len : 0);
    s->tool_at[c->n_tools] = s->n_items++;
    s->cur = (int)++c->n_tools;
    event(s, out, "response.output_item.added");
    gw_buf_puts(out, ",\"output_index\":");
    gw_buf_put_uint(out, (unsigned long long)s->tool_at[s->cur - 1]);
    gw_buf_puts(out, ",\"item\":");
    put_call(out, o, (size_t)s->cur - 1, t, 0);
    gw_buf_puts(out, "}\n\n");
}

static void resp_delta(gw_out_t *o, gw_buf_t *out, const gw_out_delta_t *d)
{
    resp_state_t *s = o->state;
    const gw_llm_event_t *ev = d->ev;
    if (d->choice != 0)
        return;
    if (d->type != GW_EV_TOOL_CALL)
        return text_delta(o, s, out, ev);
    if (!s->cur || s->acc.tools[s->cur - 1].index != ev->tool.index || ev->tool.id)
        call_start(o, s, out, ev);
    if (!ev->len)
        return;
    gw_tool_acc_t *t = &s->acc.tools[s->cur - 1];
    gw_buf_append(&t->args, ev->text, ev->len);
    event(s, out, "response.function_call_arguments.delta");
    item_ref(out, o, s->tool_at[s->cur - 1], s->cur - 1);
    gw_buf_puts(out, ",\"delta\":");
    gw_buf_json_str(out, ev->text, ev->len);
    gw_buf_puts(out, "}\n\n");
}

static void resp_close(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a)
{
    resp_state_t *s = o->state;
    const char *status = final_status(a);
    call_done(o, s, out);
    message_done(o, s, out);
    event(s, out, strcmp(status, "completed") == 0 ? "response.completed" : "response.incomplete");
    gw_buf_puts(out, ",\"response\":");
    put_response(out, o, status, &s->acc, s->msg_at, s->tool_at, a, NULL);
    gw_buf_puts(out, "}\n\n");
}

static void resp_error(gw_out_t *o, gw_buf_t *out, const gw_out_error_t *e)
{
    resp_state_t *s = o->state;
    event(s, out, "response.failed");
    gw_buf_puts(out, ",\"response\":");
    put_response(out, o, "failed", &s->acc, s->msg_at, s->tool_at, NULL, e);
    gw_buf_puts(out, "}\n\n");
}

static void resp_dispose(gw_out_t *o)
{
    resp_state_t *s = o->state;
    gw_buf_dispose(&s->acc.text);
    gw_buf_dispose(&s->acc.refusal);
    for (size_t k = 0; k < s->acc.n_tools; k++) {
        gw_buf_dispose(&s->acc.tools[k].id);
        gw_buf_dispose(&s->acc.tools[k].name);
        gw_buf_dispose(&s->acc.tools[k].args);
    }
    free(s->acc.tools);
    free(s->tool_at);
}

/* ---------- non-stream ---------- */

static void resp_answer(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a)
{
    static const gw_choice_t none;
    const gw_choice_t *c = a->n_choices ? &a->choices[0] : &none;
    int msg = c->text.len || c->refusal.len || !c->n_tools;
    put_response(out, o, final_status(a), c, msg, NULL, a, NULL);
}

static void resp_error_body(gw_buf_t *out, const gw_out_error_t *e)
{
    gw_ingress_chat.error_body(out, e);
}

const gw_ingress_t gw_ingress_responses = {
    .name = "responses",
    .id_prefix = "resp_",
    .state_size = sizeof(resp_state_t),
    .dispose = resp_dispose,
    .open = resp_open,
    .delta = resp_delta,
    .close = resp_close,
    .error = resp_error,
    .answer = resp_answer,
    .error_body = resp_error_body,
};
