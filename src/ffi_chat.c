/*
 * pieces-gateway: the gw_ffi_* functions of the route phase (chat parameters) and of the
 * tokenizer.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_ffi_chat_*, gw_ffi_tok_count. Uses: chat (parameters), ingress (format names),
 * tok.
 * Never: starts I/O (the C core starts the upstream call after the route phase returned).
 */
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gw.h"
#include "gw_ffi.h"
#include "gw_pieces.h"
#include "gw_tok.h"
#include "ingress.h"
#include "worker.h"

_Static_assert(GW_SAME(GW_BE_OK, GW_FFI_ATTEMPT_OK) &&
                   GW_SAME(GW_BE_UNREACHABLE, GW_FFI_ATTEMPT_UNREACHABLE) &&
                   GW_SAME(GW_BE_TIMEOUT, GW_FFI_ATTEMPT_TIMEOUT) &&
                   GW_SAME(GW_BE_BAD_ANSWER, GW_FFI_ATTEMPT_BAD_ANSWER) &&
                   GW_SAME(GW_BE_REFUSED, GW_FFI_ATTEMPT_REFUSED) &&
                   GW_SAME(GW_ATTEMPT_CANCELLED, GW_FFI_ATTEMPT_CANCELLED) &&
                   GW_SAME(GW_ATTEMPT_NEXT_NONE, GW_FFI_NEXT_NONE) &&
                   GW_SAME(GW_ATTEMPT_NEXT_RETRY, GW_FFI_NEXT_RETRY) &&
                   GW_SAME(GW_ATTEMPT_NEXT_FALLBACK, GW_FFI_NEXT_FALLBACK) &&
                   GW_SAME(GW_PIECES_GPT, GW_FFI_PIECES_GPT) &&
                   GW_SAME(GW_PIECES_VERTEX, GW_FFI_PIECES_VERTEX),
               "chat attempt values and Pieces variants vs gw_ffi.h");

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

int gw_ffi_chat_begin(void *req, const char *echo, size_t elen, const char *ingress,
                      size_t ilen, int stream, int include_usage)
{
    gw_chat_params_t *p = gw_chat_params(req, 1);
    if (!p || p->echo)
        return GW_ESTATE;
    char name[16];
    if (ilen == 0 || ilen >= sizeof(name))
        return GW_EINVAL;
    memcpy(name, ingress, ilen);
    name[ilen] = '\0';
    if (!gw_ingress_find(name))
        return GW_EINVAL;
    p->echo = gw_strndup(echo, elen);
    p->ingress = gw_strdup(name);
    p->stream = stream;
    p->include_usage = include_usage;
    return GW_OK;
}

int gw_ffi_chat_target(void *req, const char *backend, size_t blen, const char *model,
                       size_t mlen, const char *enc, size_t enclen, long long prompt_tokens,
                       long long completion_offset, int variant)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || !p->echo)
        return GW_ESTATE;
    if (blen == 0 || blen >= sizeof(p->targets[0].backend) || mlen == 0)
        return GW_EINVAL;
    if (p->n_targets >= GW_CHAT_MAX_TARGETS)
        return GW_EAGAIN;
    gw_chat_target_t *t = &p->targets[p->n_targets++];
    gw_chat_target_init(t);
    memcpy(t->backend, backend, blen);
    t->backend[blen] = '\0';
    t->model = gw_strndup(model, mlen);
    t->encoding = gw_strndup(enc, enclen);
    t->prompt_tokens = prompt_tokens;
    t->completion_offset = completion_offset;
    t->variant = variant;
    return GW_OK;
}

static gw_chat_target_t *last_target(void *req)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    return p && p->n_targets ? &p->targets[p->n_targets - 1] : NULL;
}

int gw_ffi_chat_sampling(void *req, int has_temperature, double temperature, int has_top_p,
                         double top_p)
{
    gw_chat_target_t *t = last_target(req);
    if (!t)
        return GW_ESTATE;
    t->has_temperature = has_temperature;
    t->temperature = temperature;
    t->has_top_p = has_top_p;
    t->top_p = top_p;
    return GW_OK;
}

int gw_ffi_chat_part(void *req, int kind, const char *text, size_t len)
{
    gw_chat_target_t *t = last_target(req);
    if (!t)
        return GW_ESTATE;
    gw_chat_target_add_part(t, kind, text, len);
    return GW_OK;
}

int gw_ffi_chat_body(void *req, const char *body, size_t len)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || !p->echo)
        return GW_ESTATE;
    free(p->body);
    p->body = gw_strndup(body, len);
    p->body_len = len;
    return GW_OK;
}

int gw_ffi_chat_fields(void *req, const char *json, size_t len)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || !p->echo)
        return GW_ESTATE;
    if (len == 0 || memchr(json, '\0', len))
        return GW_EINVAL;
    free(p->fields);
    p->fields = gw_strndup(json, len);
    p->fields_len = len;
    return GW_OK;
}

int gw_ffi_chat_stop(void *req, const char *seq, size_t len)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || !p->echo)
        return GW_ESTATE;
    if (len == 0 || len > GW_STOP_MAX_LEN || memchr(seq, '\0', len))
        return GW_EINVAL;
    if (p->n_stops >= GW_STOP_MAX)
        return GW_EAGAIN;
    p->stops[p->n_stops++] = gw_strndup(seq, len);
    return GW_OK;
}

int gw_ffi_chat_attempt(void *req, int i, const char **backend, size_t *blen, int *result,
                        int *status, int *next)
{
    gw_chat_params_t *p = gw_chat_params(req, 0);
    if (!p || i < 0 || (size_t)i >= p->n_attempts)
        return GW_ENOENT;
    const gw_chat_attempt_t *a = &p->attempts[i];
    *backend = a->backend;
    *blen = strlen(a->backend);
    *result = a->result;
    *status = a->status;
    *next = a->next;
    return GW_OK;
}

int gw_ffi_backends_json(void *req, char *buf, size_t cap)
{
    gw_buf_t b;
    GW_UNUSED(req); /* the request's worker is the calling thread's */
    gw_buf_init(&b);
    gw_worker_backends_json(&b);
    size_t n = b.len;
    if (cap > n) {
        memcpy(buf, b.data, n);
        buf[n] = '\0';
    }
    gw_buf_dispose(&b);
    return (int)n;
}

int gw_ffi_req_routed(void *req)
{
    return gw_worker_route_phase(req);
}
