/*
 * pieces-gateway: the gw_ffi_* functions of the route phase (chat parameters) and of the
 * tokenizer.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ffi_chat_*, gw_ffi_tok_count. Uses: chat (parameters), tok.
 * Never: starts I/O (the C core starts the upstream call after the route phase returned).
 */
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gw.h"
#include "gw_ffi.h"
#include "gw_tok.h"

long long gw_ffi_tok_count(const char *enc, size_t elen, const char *text, size_t tlen)
{
    char name[32];
    if (elen == 0 || elen >= sizeof(name))
        return GW_EINVAL;
    memcpy(name, enc, elen);
    name[elen] = '\0';
    const gw_tok_t *t = gw_tok_get(name);
    if (!t)
        return GW_ENOENT;
    size_t n = gw_tok_count(t, text, tlen);
    return n == GW_TOK_COUNT_ERROR ? GW_ERROR : (long long)n;
}

int gw_ffi_chat_begin(void *req, int service, const char *model, size_t mlen, const char *echo,
                      size_t elen, const char *enc, size_t enclen, int stream, int include_usage,
                      long long prompt_tokens)
{
    if ((service != GW_CHAT_GPT && service != GW_CHAT_VERTEX) || mlen == 0)
        return GW_EINVAL;
    gw_chat_params_t *p = gw_chat_params(req, 1);
    if (!p || p->model)
        return GW_ESTATE;
    p->service = service;
    p->model = gw_strndup(model, mlen);
    p->echo = gw_strndup(echo, elen);
    p->encoding = gw_strndup(enc, enclen);
    p->stream = stream;
    p->include_usage = include_usage;
    p->prompt_tokens = prompt_tokens;
    return GW_OK;
}

int gw_ffi_chat_sampling(void *req, int has_temperature, double temperature, int has_top_p,
                         double top_p)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p)
        return GW_ESTATE;
    p->has_temperature = has_temperature;
    p->temperature = temperature;
    p->has_top_p = has_top_p;
    p->top_p = top_p;
    return GW_OK;
}

int gw_ffi_chat_message(void *req, int role, const char *text, size_t len)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || p->service != GW_CHAT_GPT)
        return GW_ESTATE;
    if (p->n_msgs == p->cap_msgs) {
        p->cap_msgs = p->cap_msgs ? p->cap_msgs * 2 : 4;
        p->msgs = gw_realloc(p->msgs, p->cap_msgs * sizeof(*p->msgs));
    }
    p->msgs[p->n_msgs].role = role;
    p->msgs[p->n_msgs].off = p->text.len;
    p->msgs[p->n_msgs].len = len;
    p->n_msgs++;
    gw_buf_append(&p->text, text, len);
    return GW_OK;
}

int gw_ffi_chat_vertex(void *req, const char *message, size_t mlen, const char *rules,
                       size_t rlen)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || p->service != GW_CHAT_VERTEX || p->vertex_set)
        return GW_ESTATE;
    gw_buf_append(&p->text, message, mlen);
    gw_buf_append(&p->text, rules, rlen);
    p->v_message_len = mlen;
    p->v_rules_len = rlen;
    p->vertex_set = 1;
    return GW_OK;
}
