/*
 * pieces-gateway: ingress formats: how a chat answer is written for the client.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The chat engine (chat.c) turns every backend's events into one answer model and hands it to
 * the request's ingress format: OpenAI chat completions (ingress_chat.c) today; Anthropic
 * Messages and OpenAI Responses plug in as further gw_ingress_t values without touching the
 * engine. The engine owns the HTTP side (status, headers, when the stream starts, timeouts,
 * retries, usage numbers); a format only turns events into bytes:
 *
 *   stream:     open [delta]* close          or   open [delta]* error
 *               (open runs when the first answer event came; error when a failure follows)
 *   non-stream: answer (the whole accumulated answer)   or   error_body
 *
 * Every callback appends to `out` and must not fail. Formats keep per-answer state in
 * o->state (state_size bytes, zeroed by the engine; dispose, when set, frees what the format
 * allocated in it). Pure functions of their arguments and that state; thread-safe.
 *
 * Formats: chat completions (ingress_chat.c), Anthropic Messages "messages"
 * (ingress_anthropic.c), OpenAI Responses "responses" (ingress_responses.c). The last two keep
 * the gateway's id (their own prefix) and need the prompt count when the stream opens.
 */
#ifndef GW_INGRESS_H
#define GW_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "buf.h"

/* One tool call of an answer (non-stream), or the running state of one (stream). */
typedef struct {
    int index;
    gw_buf_t id, name, args;
} gw_tool_acc_t;

/* One choice of an answer. In stream mode only role_sent and finish are kept. */
typedef struct {
    gw_buf_t text, refusal;
    gw_tool_acc_t *tools;
    size_t n_tools;
    gw_finish_t finish;
    int role_sent;
} gw_choice_t;

typedef struct {
    gw_choice_t *choices;
    size_t n_choices;
    long long prompt_tokens, completion_tokens;
    const char *stop_sequence; /* the request's stop sequence that ended choice 0, or NULL */
} gw_answer_t;

/* What every callback may read. */
typedef struct {
    const char *id;    /* the answer's id (the format's prefix + 28 hex, or upstream's) */
    uint64_t created;  /* unix seconds, one value per answer */
    const char *model; /* the model name the client sent */
    int include_usage; /* the client asked for a usage chunk */
    long long prompt_tokens; /* the gateway's prompt count of the answering target (stream
                                open: the final count may still come from the upstream) */
    const char *fields; /* JSON object members (no braces) the format splices into its answer
                           object as they are (responses: the request's echoed parameters), or
                           NULL for the format's defaults */
    size_t fields_len;
    void *state;       /* the format's own (state_size bytes, zeroed) */
} gw_out_t;

/* A failure as the client sees it (status chosen by the engine). */
typedef struct {
    int status;
    const char *code, *type, *message;
} gw_out_error_t;

/* One delta of a stream. role: the format should announce the assistant role with it (first
 * delta of the choice). */
typedef struct {
    gw_ev_type_t type; /* GW_EV_TEXT, GW_EV_REFUSAL or GW_EV_TOOL_CALL */
    int choice;
    int role;
    const gw_llm_event_t *ev; /* the backend's event (text/len; tool.*) */
} gw_out_delta_t;

typedef struct {
    const char *name;      /* "chat" (the route phase's r.upstream.ingress) */
    const char *id_prefix; /* "chatcmpl-" */
    int upstream_id;       /* the upstream's answer id may replace the gateway's */
    size_t state_size;
    void (*dispose)(gw_out_t *o); /* optional: frees what the callbacks kept in o->state */
    /* stream */
    void (*open)(gw_out_t *o, gw_buf_t *out);
    void (*delta)(gw_out_t *o, gw_buf_t *out, const gw_out_delta_t *d);
    void (*close)(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a); /* finish + usage + end */
    void (*error)(gw_out_t *o, gw_buf_t *out, const gw_out_error_t *e);
    /* non-stream */
    void (*answer)(gw_out_t *o, gw_buf_t *out, const gw_answer_t *a);
    void (*error_body)(gw_buf_t *out, const gw_out_error_t *e);
} gw_ingress_t;

extern const gw_ingress_t gw_ingress_chat;
extern const gw_ingress_t gw_ingress_anthropic;
extern const gw_ingress_t gw_ingress_responses;

/* The format by name (NULL when unknown). */
const gw_ingress_t *gw_ingress_find(const char *name);

/* Anthropic's error type for an HTTP status (as lua/gw/errors.lua). */
const char *gw_anthropic_error_type(int status);

#endif
