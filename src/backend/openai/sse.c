/*
 * pieces-gateway: an incremental parser of server-sent events (see sse.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_sse_*. Uses: gw_buf.
 * The common case (a whole "data:" line and its blank line in one read) is dispatched straight
 * from the input without a copy; anything that spans reads goes through the two buffers.
 * Must never: hold more than max_event bytes, touch the parser after a callback asked to stop
 *   (the owner may be gone), or let the split points change the events.
 */
#include "sse.h"

#include <errno.h>
#include <string.h>

#define KEEP_CAP 16384 /* buffers larger than this are freed between events */

void gw_sse_init(gw_sse_parser_t *p, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    gw_buf_init(&p->line);
    gw_buf_init(&p->data);
    p->max_event = max_event ? max_event : 1u << 20;
}

void gw_sse_dispose(gw_sse_parser_t *p)
{
    gw_buf_dispose(&p->line);
    gw_buf_dispose(&p->data);
}

size_t gw_sse_pending(const gw_sse_parser_t *p)
{
    return p->line.len + p->data.len + p->has_data + p->event_len;
}

/* Data of the event being built that still points into the caller's input. */
typedef struct {
    const char *p;
    size_t len;
    int active;
} zc_t;

static void zc_flush(gw_sse_parser_t *p, zc_t *zc)
{
    if (!zc->active)
        return;
    gw_buf_append(&p->data, zc->p, zc->len);
    zc->active = 0;
}

static int dispatch(gw_sse_parser_t *p, zc_t *zc, gw_sse_cb cb, void *ud)
{
    if (!p->has_data) {
        p->event_len = 0;
        return 0;
    }
    char ev[GW_SSE_EVENT_MAX];
    size_t elen = p->event_len;
    memcpy(ev, p->event, elen);
    const char *d = zc->active ? zc->p : (p->data.data ? p->data.data : "");
    size_t dlen = zc->active ? zc->len : p->data.len;
    p->has_data = 0;
    p->event_len = 0;
    zc->active = 0;
    int rc = cb(ud, ev, elen, d, dlen);
    if (rc != 0)
        return rc; /* the owner may have freed p */
    if (p->data.cap > KEEP_CAP)
        gw_buf_dispose(&p->data);
    else
        gw_buf_reset(&p->data);
    return 0;
}

static int field_is(const char *f, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(f, name, n) == 0;
}

/* One complete line (without its end). in_input: it points into the caller's buffer. */
static int on_line(gw_sse_parser_t *p, const char *l, size_t n, int in_input, zc_t *zc,
                   gw_sse_cb cb, void *ud)
{
    if (!p->bom_checked) {
        p->bom_checked = 1;
        if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0)
            l += 3, n -= 3;
    }
    if (n == 0)
        return dispatch(p, zc, cb, ud);
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen && *v == ' ')
        v++, vlen--;
    if (field_is(l, flen, "data")) {
        size_t have = zc->active ? zc->len : p->data.len;
        if (have + vlen + 1 > p->max_event)
            return -EMSGSIZE;
        if (!p->has_data && in_input && p->data.len == 0) {
            zc->p = v, zc->len = vlen, zc->active = 1;
        } else {
            zc_flush(p, zc);
            if (p->has_data)
                gw_buf_putc(&p->data, '\n');
            gw_buf_append(&p->data, v, vlen);
        }
        p->has_data = 1;
    } else if (field_is(l, flen, "event")) {
        p->event_len = vlen < GW_SSE_EVENT_MAX ? vlen : GW_SSE_EVENT_MAX;
        memcpy(p->event, v, p->event_len);
    }
    return 0;
}

/* The first CR or LF (memchr for both: lines are long, CR-only line ends rare). */
static const char *line_end(const char *s, const char *e)
{
    const char *nl = memchr(s, '\n', (size_t)(e - s));
    const char *cr = memchr(s, '\r', (size_t)((nl ? nl : e) - s));
    return cr ? cr : nl;
}

/* The rest of the input holds no line end: keep it for the next read. */
static int keep_partial(gw_sse_parser_t *p, zc_t *zc, const char *s, size_t n)
{
    if (p->line.len + n > p->max_event)
        return -EMSGSIZE;
    zc_flush(p, zc);
    gw_buf_append(&p->line, s, n);
    return 0;
}

int gw_sse_feed(gw_sse_parser_t *p, const char *buf, size_t n, gw_sse_cb cb, void *ud)
{
    const char *s = buf, *e = buf + n;
    zc_t zc = {NULL, 0, 0};
    int rc = 0;

    if (p->failed)
        return -EMSGSIZE;
    if (p->skip_lf && s < e) {
        if (*s == '\n')
            s++;
        p->skip_lf = 0;
    }
    while (s < e) {
        const char *eol = line_end(s, e);
        if (!eol) {
            rc = keep_partial(p, &zc, s, (size_t)(e - s));
            break;
        }
        const char *next = eol + 1;
        if (*eol == '\r') {
            if (next < e && *next == '\n')
                next++;
            else if (next == e)
                p->skip_lf = 1;
        }
        if (p->line.len) {
            if (p->line.len + (size_t)(eol - s) > p->max_event) {
                rc = -EMSGSIZE;
                break;
            }
            gw_buf_append(&p->line, s, (size_t)(eol - s));
            rc = on_line(p, p->line.data, p->line.len, 0, &zc, cb, ud);
            if (rc == 0 || rc == -EMSGSIZE) {
                if (p->line.cap > KEEP_CAP)
                    gw_buf_dispose(&p->line);
                else
                    gw_buf_reset(&p->line);
            }
        } else {
            if ((size_t)(eol - s) > p->max_event) {
                rc = -EMSGSIZE;
                break;
            }
            rc = on_line(p, s, (size_t)(eol - s), 1, &zc, cb, ud);
        }
        if (rc != 0)
            break;
        s = next;
    }
    if (rc == -EMSGSIZE)
        p->failed = 1;
    else if (rc == 0)
        zc_flush(p, &zc); /* the event continues in the next read */
    return rc;
}
