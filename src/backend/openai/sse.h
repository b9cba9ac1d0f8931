/*
 * pieces-gateway: an incremental parser of server-sent events (the upstream side).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The event-stream format of the WHATWG HTML standard (9.2.6): lines end in CRLF, LF or CR
 * (a CRLF may be split between two reads), ':' lines are comments, "data" lines of one event
 * are joined by LF, "event" names the event, a blank line dispatches it (an event without a
 * data line is not dispatched); "id", "retry" and unknown fields are ignored, a leading BOM is
 * skipped. Feed it whatever the socket delivered: events split across reads and several events
 * per read give the same events as one read of the whole stream.
 *
 * Memory is bounded: the parser keeps at most one incomplete line and one event's data, and a
 * line or an event larger than max_event fails with -EMSGSIZE. Embedded struct; one parser per
 * upstream stream; not thread-safe.
 */
#ifndef GW_SSE_H
#define GW_SSE_H

#include <stddef.h>

#include "buf.h"

#define GW_SSE_EVENT_MAX 32 /* longest "event:" name kept (longer ones are cut) */

/* One dispatched event; data is valid during the callback only (not NUL-terminated). Return 0
 * to go on, anything else to stop: gw_sse_feed returns that value at once (the callback may
 * then have freed the parser's owner; a stopped parser may only be disposed). */
typedef int (*gw_sse_cb)(void *ud, const char *event, size_t elen, const char *data, size_t dlen);

typedef struct {
    gw_buf_t line; /* the start of a line that continues in the next read */
    gw_buf_t data; /* the data lines of the current event */
    char event[GW_SSE_EVENT_MAX];
    size_t event_len;
    size_t max_event;
    unsigned has_data : 1, skip_lf : 1, bom_checked : 1, failed : 1;
} gw_sse_parser_t;

void gw_sse_init(gw_sse_parser_t *p, size_t max_event);
void gw_sse_dispose(gw_sse_parser_t *p);
/* Parses n more bytes. 0; -EMSGSIZE (and every later call fails the same); or the callback's
 * non-zero return. */
int gw_sse_feed(gw_sse_parser_t *p, const char *buf, size_t n, gw_sse_cb cb, void *ud);
/* Bytes held for an incomplete line or event (0 between events: nothing is lost at EOF). */
size_t gw_sse_pending(const gw_sse_parser_t *p);

#endif
