/*
 * pieces-gateway: the upstream request body of the OpenAI backend (see oai_body.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_OAI_BODY_H
#define GW_OAI_BODY_H

#include <stddef.h>

#include "buf.h"

/* Appends to out the client's chat-completions body (a JSON object; NULL = {}) with model set
 * to `model`, stream to `stream` and, for streams, stream_options.include_usage true.
 * 0, or -EBADMSG when body is not one valid JSON object (out then holds garbage). Pure;
 * thread-safe. */
int gw_oai_body_build(const char *body, size_t n, const char *model, int stream, gw_buf_t *out);

#endif
