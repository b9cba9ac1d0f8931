/*
 * pieces-gateway: small helpers of the backend interface: event names, chat targets.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_finish_name, gw_be_class_name, gw_chat_target_*. Uses: gw_buf.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "gw.h"

const char *gw_finish_name(gw_finish_t f)
{
    static const char *names[] = {"none",       "stop",           "length",
                                  "tool_calls", "content_filter", "function_call"};
    return (unsigned)f < GW_ARRAY_SIZE(names) ? names[f] : "stop";
}

const char *gw_be_class_name(gw_be_class_t c)
{
    static const char *names[] = {"ok", "unreachable", "timeout", "bad_answer", "refused"};
    return (unsigned)c < GW_ARRAY_SIZE(names) ? names[c] : "bad_answer";
}

void gw_chat_target_init(gw_chat_target_t *t)
{
    memset(t, 0, sizeof(*t));
    gw_buf_init(&t->text);
}

void gw_chat_target_dispose(gw_chat_target_t *t)
{
    free(t->model);
    free(t->encoding);
    free(t->parts);
    gw_buf_dispose(&t->text);
    memset(t, 0, sizeof(*t));
}

void gw_chat_target_add_part(gw_chat_target_t *t, int kind, const char *text, size_t len)
{
    if (t->n_parts == t->cap_parts) {
        t->cap_parts = t->cap_parts ? t->cap_parts * 2 : 4;
        t->parts = gw_realloc(t->parts, t->cap_parts * sizeof(*t->parts));
    }
    t->parts[t->n_parts].kind = kind;
    t->parts[t->n_parts].off = t->text.len;
    t->parts[t->n_parts].len = len;
    t->n_parts++;
    gw_buf_append(&t->text, text, len);
}
