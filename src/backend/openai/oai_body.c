/*
 * pieces-gateway: the upstream request body of the OpenAI backend.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_oai_body_build. Uses: json.c.
 * The client's JSON object is copied member by member, byte for byte (numbers keep their
 * spelling, unknown fields pass unchanged), except the members the gateway owns: every "model",
 * "stream" and "stream_options" (keys compared with their escapes decoded, so neither a
 * duplicate nor a "\u006dodel" slips past), which are written once at the end: the upstream's
 * model name, the stream flag, and for streams stream_options with include_usage true (the
 * client's other stream options kept).
 */
#include <errno.h>
#include <string.h>

#include "backend/json.h"
#include "oai_body.h"

/* The members of the client's stream_options other than include_usage, comma-separated. */
static int stream_options_rest(gw_json_t *j, gw_buf_t *out)
{
    gw_json_str_t k;
    int rc;
    if (gw_json_peek(j) != GW_JSON_OBJECT)
        return gw_json_skip(j);
    gw_json_object_begin(j);
    while ((rc = gw_json_object_next(j, &k)) > 0) {
        size_t start = gw_json_offset(j);
        if ((rc = gw_json_skip(j)) != 0)
            return rc;
        if (gw_json_key_is(&k, "include_usage"))
            continue;
        gw_buf_putc(out, '"');
        gw_buf_append(out, k.p, k.len);
        gw_buf_puts(out, "\":");
        gw_buf_append(out, j->start + start, gw_json_offset(j) - start);
        gw_buf_putc(out, ',');
    }
    return rc;
}

int gw_oai_body_build(const char *body, size_t n, const char *model, int stream, gw_buf_t *out)
{
    gw_json_t j;
    gw_json_str_t k;
    gw_buf_t opts;
    int rc, first = 1;

    gw_json_init(&j, body ? body : "{}", body ? n : 2);
    if (gw_json_object_begin(&j) != 0)
        return -EBADMSG;
    gw_buf_init(&opts);
    gw_buf_reserve(out, n + 128);
    gw_buf_putc(out, '{');
    while ((rc = gw_json_object_next(&j, &k)) > 0) {
        if (gw_json_key_is(&k, "stream_options")) {
            gw_buf_reset(&opts);
            if ((rc = stream_options_rest(&j, &opts)) != 0)
                break;
            continue;
        }
        size_t start = gw_json_offset(&j);
        if ((rc = gw_json_skip(&j)) != 0)
            break;
        if (gw_json_key_is(&k, "model") || gw_json_key_is(&k, "stream"))
            continue;
        if (!first)
            gw_buf_putc(out, ',');
        first = 0;
        gw_buf_putc(out, '"');
        gw_buf_append(out, k.p, k.len);
        gw_buf_puts(out, "\":");
        gw_buf_append(out, j.start + start, gw_json_offset(&j) - start);
    }
    if (rc == 0)
        rc = gw_json_end(&j);
    if (rc != 0) {
        gw_buf_dispose(&opts);
        return -EBADMSG;
    }
    gw_buf_puts(out, first ? "\"model\":\"" : ",\"model\":\"");
    gw_buf_json_escape(out, model, strlen(model));
    gw_buf_puts(out, stream ? "\",\"stream\":true,\"stream_options\":{" : "\",\"stream\":false}");
    if (stream) {
        if (opts.len)
            gw_buf_append(out, opts.data, opts.len);
        gw_buf_puts(out, "\"include_usage\":true}}");
    }
    gw_buf_dispose(&opts);
    return 0;
}
