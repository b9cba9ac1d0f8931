/*
 * pieces-gateway: the chat engine: one chat call through an ordered list of backends.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The Lua route phase decides everything about a request (the model name to echo, the ingress
 * format, the ordered targets with their upstream model names, prompt token counts and, for
 * backends without a JSON body, prompt parts) and records it through gw_ffi_chat_* into the
 * request's gw_chat_params_t. gw_chat_start then runs attempts on the backends (src/backend/)
 * and answers in the ingress format (src/ingress.h). Retries, fallback, timeouts, usage, SSE
 * framing and the error mapping live in chat.c, once for every backend and format. Everything
 * runs on the request's worker loop.
 */
#ifndef GW_CHAT_H
#define GW_CHAT_H

#include <stddef.h>
#include <uv.h>

#include "backend/backend.h"
#include "buf.h"
#include "chat_stop.h"
#include "config.h"
#include "http.h"

#define GW_CHAT_MAX_TARGETS 8
#define GW_CHAT_MAX_ATTEMPTS 32

/* What one attempt did (for the breaker in Lua, the log and metrics). */
enum { GW_ATTEMPT_NEXT_NONE = 0, GW_ATTEMPT_NEXT_RETRY = 1, GW_ATTEMPT_NEXT_FALLBACK = 2 };
#define GW_ATTEMPT_CANCELLED 5 /* result: the client went away (after the GW_BE_* values) */

typedef struct {
    char backend[32];
    int result; /* GW_BE_OK, GW_BE_UNREACHABLE .. GW_BE_REFUSED, GW_ATTEMPT_CANCELLED */
    int status; /* upstream HTTP status when it had one */
    int next;   /* GW_ATTEMPT_NEXT_* */
} gw_chat_attempt_t;

typedef struct gw_chat_params_s {
    char *echo;    /* the model name the client sent */
    char *ingress; /* ingress format name ("chat") */
    int stream;
    int include_usage;
    char *fields; /* gw_out_t.fields (NULL: none) */
    size_t fields_len;
    char *body; /* the OpenAI body for HTTP backends; NULL = the request's */
    size_t body_len;
    char *stops[GW_STOP_MAX]; /* stop sequences the engine applies (gw_stop_t), or none */
    size_t n_stops;
    gw_chat_target_t targets[GW_CHAT_MAX_TARGETS];
    size_t n_targets;
    gw_chat_attempt_t attempts[GW_CHAT_MAX_ATTEMPTS];
    size_t n_attempts;
    struct chat_s *run; /* the running call, if any */
} gw_chat_params_t;

typedef struct {
    uv_loop_t *loop;
    const gw_config_t *cfg;
    gw_backends_t backends;
} gw_chat_env_t;

/* The request's chat parameters (created on first use when create is set; owned by req). */
gw_chat_params_t *gw_chat_params(gw_req_t *req, int create);
/* Run the attempts and answer the request. Requires params with at least one target. */
void gw_chat_start(gw_chat_env_t *env, gw_req_t *req);

/* Frees this thread's pools of chat state (also run by itself when the thread ends, see
 * freelist.h). */
void gw_chat_pools_drain(void);

#endif
