/*
 * pieces-gateway: the backend interface: one vtable for every upstream that serves chat calls.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * A backend (gw_backend_t) is one configured upstream on one worker loop: its connection pools
 * and whatever it needs to turn a normalised chat request into upstream bytes and the upstream's
 * answer into events. The chat engine (src/chat.c) owns retries, fallback, timeouts, usage, SSE
 * and error mapping; a backend only says what happened, in order:
 *
 *   HEAD  (the answer started; after it the engine commits to this attempt)
 *   TEXT / REFUSAL / TOOL_CALL / FINISH / USAGE   (any number, any order)
 *   END   (complete)  or  ERROR  (with a class)   -- exactly one of them, the last event
 *
 * An ERROR may come before HEAD (nothing reached the client: the engine may retry or fall
 * back) or after it (the engine ends the client's stream with an error event).
 *
 * Layout follows the upstream transport vtable (src/upstream/transport.h) and wrk's struct
 * sock: a const vtable per backend type, embedded as the first member of each implementation.
 * Implementations live in their own folders: src/backend/pieces/ (gRPC GPT + Vertex) and
 * src/backend/openai/ (OpenAI-compatible HTTP/1.1 + HTTP/2).
 *
 * Threading: a backend and its calls belong to one loop; every function runs on that loop's
 * thread. No function calls the event callback synchronously: events run from the loop.
 */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"

/* ---- events -------------------------------------------------------------------------------- */

typedef enum {
    GW_EV_HEAD = 1,  /* the answer started (Pieces: first data message; HTTP: first chunk) */
    GW_EV_TEXT,      /* a content delta of choice `choice` */
    GW_EV_REFUSAL,   /* a refusal delta of choice `choice` */
    GW_EV_TOOL_CALL, /* a tool-call delta (tool.index; id/name when first seen; args fragment) */
    GW_EV_FINISH,    /* the finish reason of choice `choice` */
    GW_EV_USAGE,     /* the upstream's token counts */
    GW_EV_END,       /* the answer is complete; last event */
    GW_EV_ERROR,     /* the call failed; last event */
} gw_ev_type_t;

typedef enum {
    GW_FINISH_NONE = 0,
    GW_FINISH_STOP,
    GW_FINISH_LENGTH,
    GW_FINISH_TOOL_CALLS,
    GW_FINISH_CONTENT_FILTER,
    GW_FINISH_FUNCTION_CALL,
} gw_finish_t;

/* Failure classes. They decide retries, fallback, the breaker and the client's status:
 * UNREACHABLE -> 503, TIMEOUT -> 504, BAD_ANSWER -> 502, REFUSED -> the upstream's 4xx. */
typedef enum {
    GW_BE_OK = 0,
    GW_BE_UNREACHABLE, /* DNS, connect, TLS, reset or closed before an answer, pool closed */
    GW_BE_TIMEOUT,     /* connect timeout, the call's deadline */
    GW_BE_BAD_ANSWER,  /* 5xx, protocol errors, garbage, an error object, a cut stream */
    GW_BE_REFUSED,     /* the upstream refused the request: 4xx (429 with Retry-After) */
} gw_be_class_t;

#define GW_EV_F_NO_ROLE 1u /* TEXT: never carries the assistant role (Pieces Vertex end frame) */

/* One event. Strings are borrowed for the duration of the callback only; they are UTF-8 from
 * the upstream (the output side escapes and repairs them). */
typedef struct {
    gw_ev_type_t type;
    int choice;       /* choice index (n > 1); 0 otherwise */
    unsigned flags;   /* GW_EV_F_* */
    uint64_t created; /* HEAD/TEXT: upstream's unix time for it, 0 = unknown */
    const char *text; /* TEXT/REFUSAL: the delta; TOOL_CALL: arguments fragment;
                         HEAD: the upstream's answer id to show (NULL: the gateway's) */
    size_t len;
    struct {
        int index;
        const char *id, *name; /* NULL when this delta does not carry them */
        size_t id_len, name_len;
    } tool;                                     /* TOOL_CALL */
    gw_finish_t finish;                         /* FINISH */
    long long prompt_tokens, completion_tokens; /* USAGE */
    struct {
        gw_be_class_t cls;
        int status;          /* upstream HTTP status, 0 = none */
        int retryable;       /* the backend's opinion: worth another attempt */
        double retry_after;  /* seconds from the upstream's Retry-After; < 0 = none */
        const char *message; /* upstream's message or the transport error (NUL-ended) */
    } error;                 /* ERROR */
} gw_llm_event_t;

typedef void (*gw_backend_cb)(void *ud, const gw_llm_event_t *ev);

/* ---- the normalised request ------------------------------------------------------------- */

/* A backend-defined piece of prompt text (Pieces: GPT role blocks, Vertex message/rules). */
typedef struct {
    int kind;
    size_t off, len; /* into gw_chat_target_t.text */
} gw_chat_part_t;

/* One backend to try, in the order the route phase chose. Owned by the request's chat
 * parameters (src/chat.h); strings are NUL-terminated copies. */
typedef struct {
    char backend[32];            /* configured backend name */
    char *model;                 /* the upstream's model name */
    char *encoding;              /* tokenizer of the completion count ("" = none) */
    long long prompt_tokens;     /* the gateway's count of this target's prompt */
    long long completion_offset; /* added to the tokenizer's completion count (Vertex: 3) */
    int variant;                 /* backend-defined (Pieces: GW_PIECES_GPT / _VERTEX) */
    int has_temperature, has_top_p;
    double temperature, top_p; /* sampling sent by backends without a body (Pieces GPT) */
    gw_buf_t text;             /* the parts' bytes */
    gw_chat_part_t *parts;
    size_t n_parts, cap_parts;
} gw_chat_target_t;

/* The client's request as every backend sees it (borrowed from the request for the call). */
typedef struct {
    const char *echo;  /* the model name the client sent (shown in every answer) */
    int stream;        /* the client asked for a stream */
    int include_usage; /* stream_options.include_usage */
    const char *body;  /* an OpenAI chat-completions JSON body; HTTP backends pass */
    size_t body_len;   /* its fields through (model and stream options replaced) */
} gw_chat_request_t;

/* ---- the vtable -------------------------------------------------------------------------- */

typedef struct gw_backend_s gw_backend_t;
typedef struct gw_backend_call_s gw_backend_call_t; /* implementation-defined */

typedef struct {
    const char *type; /* "pieces", "openai" */
    int sends_usage;  /* answers normally carry the upstream's usage (the engine then defers
                         its own count until it knows) */
    /* Starts one attempt. timeout_ms: the attempt's deadline, 0 = none (then only the
     * engine's limits apply). rq and t are borrowed until END/ERROR or cancel. Returns 0 with
     * the call in *out, or a negative errno (and no event is ever delivered for it). */
    int (*start)(gw_backend_t *b, const gw_chat_request_t *rq, const gw_chat_target_t *t,
                 uint64_t timeout_ms, gw_backend_cb cb, void *ud, gw_backend_call_t **out);
    /* Stops the call at once (the upstream sees a cancel/close); no event follows. Allowed
     * inside the call's own callback except for END and ERROR (the call is gone after them). */
    void (*cancel)(gw_backend_call_t *c);
    /* Backpressure: while paused the backend stops reading from the upstream (at most one
     * read buffer or one flow-control window more arrives); resuming continues from the loop. */
    void (*pause)(gw_backend_call_t *c, int paused);
    /* Appends this backend's pool state as one JSON object (no secrets). */
    void (*stats_json)(gw_backend_t *b, gw_buf_t *out);
    /* Closes the pools: open calls end with ERROR (UNREACHABLE), then the backend frees itself
     * once its handles closed. Call once, from the loop. */
    void (*close)(gw_backend_t *b);
    /* Reports this backend's connections by state (e.g. "connecting", "ready"), one
     * emit(ud, state, n) per state, for the gateway_upstream_connections gauge. */
    void (*conn_states)(gw_backend_t *b, void (*emit)(void *ud, const char *state, int n),
                        void *ud);
} gw_backend_vt_t;

struct gw_backend_s {
    const gw_backend_vt_t *vt;
    char name[32];
    int type; /* GW_BACKEND_* (config.h) */
};

/* ---- the set of a worker's backends ---------------------------------------------------- */

typedef struct {
    gw_backend_t **list;
    size_t n;
} gw_backends_t;

/* Creates every backend of cfg on loop. 0, or negative with *err (caller frees); on failure
 * the backends created so far are closed. */
int gw_backends_open(uv_loop_t *loop, const gw_config_t *cfg, gw_backends_t *out, char **err);
void gw_backends_close(gw_backends_t *set);
gw_backend_t *gw_backends_find(const gw_backends_t *set, const char *name);

/* Implementations. */
int gw_backend_pieces_new(uv_loop_t *loop, const gw_config_t *cfg, const gw_backend_conf_t *bc,
                          gw_backend_t **out, char **err);
int gw_backend_openai_new(uv_loop_t *loop, const gw_config_t *cfg, const gw_backend_conf_t *bc,
                          gw_backend_t **out, char **err);

/* Static names for logs, metrics and Lua ("stop", "length", ...; "unreachable", ...). */
const char *gw_finish_name(gw_finish_t f);
const char *gw_be_class_name(gw_be_class_t c);

/* Target helpers (the FFI seam fills targets; chat.c frees them). */
void gw_chat_target_init(gw_chat_target_t *t);
void gw_chat_target_dispose(gw_chat_target_t *t);
void gw_chat_target_add_part(gw_chat_target_t *t, int kind, const char *text, size_t len);

#endif
