/*
 * pieces-gateway: POST {P}/chat/completions over the Pieces gRPC services.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The Lua route phase decides everything about a request (service, upstream model, the
 * flattened messages, prompt tokens) and records it through gw_ffi_chat_* into the request's
 * gw_chat_params_t. gw_chat_start then runs the upstream call(s) and answers: a chat.completion
 * JSON (non-stream, with retries) or an SSE stream of chat.completion.chunk events, with usage
 * from the tokenizer. Everything runs on the request's worker loop.
 */
#ifndef GW_CHAT_H
#define GW_CHAT_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "http.h"

struct gw_upstream_s;

enum { GW_CHAT_GPT = 0, GW_CHAT_VERTEX = 1 };

typedef struct {
    int role;
    size_t off, len; /* into text */
} gw_chat_msg_t;

typedef struct gw_chat_params_s {
    int service;
    char *model;      /* upstream model id */
    char *echo;       /* the model name the client sent (echoed in every response) */
    char *encoding;   /* tokenizer for the completion count */
    int stream;
    int include_usage;
    long long prompt_tokens;
    int has_temperature, has_top_p;
    double temperature, top_p;
    gw_buf_t text;    /* GPT message texts; Vertex: message then rules */
    gw_chat_msg_t *msgs;
    size_t n_msgs, cap_msgs;
    size_t v_message_len, v_rules_len;
    int vertex_set;
    struct chat_s *run; /* the running call, if any */
} gw_chat_params_t;

typedef struct {
    uv_loop_t *loop;
    const gw_config_t *cfg;
    struct gw_upstream_s *gpt;
    struct gw_upstream_s *vertex;
} gw_chat_env_t;

/* The request's chat parameters (created on first use when create is set; owned by req). */
gw_chat_params_t *gw_chat_params(gw_req_t *req, int create);
/* Run the upstream call and answer the request. Requires params with a model. */
void gw_chat_start(gw_chat_env_t *env, gw_req_t *req);

#endif
