/*
 * pieces-gateway: OpenAI chat-completions JSON (upstream answers and stream chunks) to
 * backend events.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * A chunk ("chat.completion.chunk") or an answer ("chat.completion") is read in one pass; its
 * events are kept until the whole document proved valid (nothing is emitted for a document
 * that is not valid JSON) and then emitted in document order: for each choice its content, refusal and tool-call deltas (message.* for an answer),
 * its finish_reason; the usage object. A document with an "error" member maps to one ERROR
 * event (class BAD_ANSWER, the upstream's message). The first document that is not an error
 * is preceded by one HEAD event. Fields the gateway does not interpret are skipped (still
 * validated). Ids, "created" and the upstream's model name are not used: the client sees the
 * gateway's id and the name it asked for.
 *
 * Embedded struct (scratch buffers reused between documents); one per upstream call; not
 * thread-safe.
 */
#ifndef GW_OAI_MAP_H
#define GW_OAI_MAP_H

#include <stddef.h>

#include "backend/backend.h"
#include "buf.h"

/* Return 0 to continue, non-zero to stop (the mapping returns that value at once). */
typedef int (*gw_oai_emit_cb)(void *ud, const gw_llm_event_t *ev);

/* An event waiting for the end of its document; strings are offsets into the arena. */
typedef struct {
    gw_llm_event_t ev;
    size_t text, id, name; /* offsets; SIZE_MAX = none */
} gw_oai_pending_t;

typedef struct {
    gw_buf_t arena;            /* the decoded strings of the document being read */
    gw_oai_pending_t *ev;
    size_t n, cap;
    int head_sent;
} gw_oai_map_t;

void gw_oai_map_init(gw_oai_map_t *m);
void gw_oai_map_dispose(gw_oai_map_t *m);
/* One stream chunk (the data of one SSE event, "[DONE]" excluded). 0, -EBADMSG (not JSON,
 * not an object, or a field of the wrong type) or emit's non-zero return. */
int gw_oai_map_chunk(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb emit, void *ud);
/* A whole non-stream answer. Same returns. */
int gw_oai_map_answer(gw_oai_map_t *m, const char *json, size_t n, gw_oai_emit_cb emit, void *ud);
/* The message of an error body ({"error":{"message":..}}, {"error":".."} or {"message":..}),
 * appended to out. 0, or -EBADMSG when there is none. */
int gw_oai_error_message(const char *json, size_t n, gw_buf_t *out);
/* "stop" -> GW_FINISH_STOP etc.; unknown names -> GW_FINISH_STOP. */
gw_finish_t gw_oai_finish_parse(const char *s, size_t n);

#endif
