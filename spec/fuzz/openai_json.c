/*
 * pieces-gateway: libFuzzer driver for the OpenAI answer/chunk mapping
 * (src/backend/openai/oai_map.c) and the JSON scanner under it (src/backend/json.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The input is mapped as a stream chunk and as a whole answer, and its error message is read.
 * Checked: a document the scanner rejects emits no event; a document it accepts maps without
 * -EBADMSG only if it is an object; HEAD comes at most once and first; every string an event
 * carries is readable for its length (ASan) and survives JSON escaping.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/json.h"
#include "backend/openai/oai_map.h"

typedef struct {
    int events, heads;
    gw_buf_t esc;
} sink_t;

static void touch(sink_t *s, const char *p, size_t n)
{
    if (!p)
        return;
    gw_buf_reset(&s->esc);
    gw_buf_json_escape(&s->esc, p, n);
}

static int on_event(void *ud, const gw_llm_event_t *e)
{
    sink_t *s = ud;
    if (e->type == GW_EV_HEAD) {
        if (s->heads++ || s->events)
            abort();
    }
    s->events++;
    touch(s, e->text, e->len);
    if (e->type == GW_EV_TOOL_CALL) {
        touch(s, e->tool.id, e->tool.id_len);
        touch(s, e->tool.name, e->tool.name_len);
    }
    if (e->type == GW_EV_ERROR && (!e->error.message || e->error.cls != GW_BE_BAD_ANSWER))
        abort();
    return 0;
}

static int doc_valid(const uint8_t *p, size_t n)
{
    gw_json_t j;
    gw_json_init(&j, (const char *)p, n);
    return gw_json_peek(&j) == GW_JSON_OBJECT && gw_json_skip(&j) == 0 && gw_json_end(&j) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int valid = doc_valid(data, size);
    for (int answer = 0; answer < 2; answer++) {
        sink_t s = {0, 0, {0}};
        gw_oai_map_t m;
        gw_buf_init(&s.esc);
        gw_oai_map_init(&m);
        int rc = answer ? gw_oai_map_answer(&m, (const char *)data, size, on_event, &s)
                        : gw_oai_map_chunk(&m, (const char *)data, size, on_event, &s);
        if (!valid && (rc == 0 || s.events))
            abort();
        gw_oai_map_dispose(&m);
        gw_buf_dispose(&s.esc);
    }
    gw_buf_t msg;
    gw_buf_init(&msg);
    gw_oai_error_message((const char *)data, size, &msg);
    gw_buf_dispose(&msg);
    return 0;
}
