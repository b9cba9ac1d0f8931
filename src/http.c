/*
 * pieces-gateway: HTTP/1.1 server connections on libuv + llhttp.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_http_server_*, gw_req_*, gw_resp_*. Uses: libuv, llhttp, ipaddr.
 * Never: calls into Lua, blocks the loop, or answers a pipelined request out of order.
 *
 * A connection handles one request at a time. When llhttp completes a message the parser is
 * paused; bytes that arrive meanwhile (pipelined requests) are kept in conn->pending and parsed
 * once the response is complete, by the flusher (never inside the answering handler). One timer
 * per connection covers the header timeout (from the first byte of a request head; 408), body
 * inactivity (408) and the keep-alive idle timeout.
 *
 * Lifetime rule (libuv's): connections are freed only in their close callbacks, and nothing
 * reachable from a caller is freed under it. A failed write only marks the connection dead;
 * the flusher (a check handle, run once per loop iteration after I/O) closes it, aborting an
 * unfinished request there. The listening socket is accepted by hand (accept4 gives the peer
 * address even for a client that has already reset).
 */
#include "http.h"

#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "freelist.h"
#include "gw.h"
#include "log.h"

enum { ST_IDLE, ST_HEAD, ST_BODY, ST_ACTIVE, ST_CLOSING };

struct gw_http_server_s {
    uv_loop_t *loop;
    uv_poll_t listener;      /* the listening socket; accept4 is ours (see on_listener) */
    uv_os_sock_t listen_fd;
    uv_timer_t accept_retry; /* accepting paused after EMFILE and the like */
    uint64_t accept_warn_due; /* loop ms before which accept failures are not logged again */
    gw_http_conf_t conf;
    llhttp_settings_t settings;
    size_t n_conns;
    size_t n_active;
    int draining;
    int listening;
    void (*on_drained)(void *ud);
    void *drain_ud;
    struct gw_conn_s *conns; /* intrusive list of open connections */
    uv_check_t flusher;      /* writes the chunks buffered during this loop iteration */
    uv_idle_t kick;          /* active while output is buffered: the loop must not block in
                                poll before the flusher ran (output made by a timer) */
    struct gw_conn_s *dirty; /* connections with buffered output */
};

struct gw_conn_s {
    uv_tcp_t tcp;
    uv_os_fd_t fd;       /* tcp's socket (try_send: no uv_fileno per chunk) */
    uv_timer_t timer;
    gw_http_server_t *srv;
    llhttp_t parser;
    gw_req_t *req;
    int state;
    int handles_open;
    int in_header_value; /* the last callback was a header value */
    int close_after;     /* close once the current response is written */
    int paused;          /* parser paused on a complete message */
    int reading;
    int pumping;         /* inside conn_pump */
    int pump_due;        /* pipelined bytes wait for the flusher to parse them */
    int eof;             /* the client half-closed */
    int dead;            /* a write failed: nothing more is read or written; the flusher closes
                            the connection (from the loop, where no handler is on the stack) */
    int limit_status;    /* 413 or 431 when a callback stopped the parser on a limit */
    const char *reject;  /* why a callback refused the request head (the 400's message) */
    const char *exec_begin; /* the start of the bytes llhttp_execute is parsing */
    int lf_ws;           /* the bytes parsed before end with a LF and zero or more SP/HT */
    uint64_t deadline;   /* loop ms when the current timeout expires; 0 = none */
    uint64_t timer_due;  /* when the uv timer fires; 0 = not running */
    gw_buf_t pending;
    size_t head_bytes;
    gw_ip_t peer;
    void (*drain_cb)(gw_req_t *r);
    size_t drain_low;
    gw_buf_t out;        /* chunked output not written yet (coalesced per loop iteration) */
    int dirty;
    struct gw_conn_s *dirty_next;
    struct gw_conn_s *next, *prev;
};

typedef struct {
    uv_write_t w;
    gw_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static atomic_size_t open_connections;
static atomic_uint_fast64_t next_req_id = 1;

size_t gw_http_open_connections(void) { return atomic_load(&open_connections); }


static void conn_close(gw_conn_t *c);
static void conn_pump(gw_conn_t *c);
static void conn_finish_request(gw_conn_t *c);
static void conn_continue(gw_conn_t *c);
static void start_reading(gw_conn_t *c);
static void on_write(uv_write_t *wr, int status);
static void mark_dirty(gw_conn_t *c);
static void conn_send(gw_conn_t *c, const char *a, size_t alen, const char *b, size_t blen);

/* ---------- timers ---------- */

/* One lazy timer per connection: arm_timer only moves the deadline, and restarts the uv timer
 * only when the deadline comes earlier than the timer's due time; a timer that fires early
 * re-arms itself for the remainder. This keeps timer calls off the per-request path. */
static void on_timer(uv_timer_t *t)
{
    gw_conn_t *c = t->data;
    c->timer_due = 0;
    if (!c->deadline)
        return;
    uint64_t now = uv_now(t->loop);
    if (now < c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    c->deadline = 0;
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        if (c->req) {
            c->close_after = 1;
            gw_resp_send_error(c->req, 408, "request_timeout", "Request timeout",
                               "timeout_error");
            return;
        }
    }
    if (c->state == ST_IDLE)
        conn_close(c);
}

static void arm_timer(gw_conn_t *c, double seconds)
{
    if (seconds <= 0) {
        c->deadline = 0;
        return;
    }
    uint64_t ms = (uint64_t)(seconds * 1000.0);
    c->deadline = uv_now(c->timer.loop) + ms;
    if (c->timer_due == 0 || c->timer_due > c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

/* ---------- requests ---------- */

/* Requests come from a per-thread free list (a zeroed block per request, no malloc). */
static __thread gw_freelist_t req_pool;

void gw_http_pools_drain(void) { gw_freelist_drain(&req_pool, sizeof(gw_req_t)); }

static void http_pools_at_exit(void)
{
    gw_http_pools_drain();
    gw_buf_cache_drain();
}
GW_FREELIST_OWNER(http_pools, http_pools_at_exit)

static gw_req_t *req_new(gw_conn_t *c)
{
    http_pools_arm();
    gw_req_t *r = gw_freelist_get(&req_pool, sizeof(*r));
    if (!r)
        r = gw_calloc(1, sizeof(*r)); /* out of memory: gw_calloc reports it and aborts */
    r->conn = c;
    r->id = atomic_fetch_add(&next_req_id, 1);
    r->start_ns = gw_now_ns();
    gw_buf_init(&r->head);
    gw_buf_prime(&r->head); /* url and headers: warm storage, no growth by reallocs */
    gw_buf_init(&r->body);
    gw_buf_init(&r->resp_headers);
    r->query = "";
    r->peer = c->peer;
    gw_ip_format(&c->peer, r->peer_ip, sizeof(r->peer_ip));
    return r;
}

static void req_free(gw_req_t *r)
{
    if (r->data && r->data_free)
        r->data_free(r->data);
    gw_buf_recycle(&r->head);
    gw_buf_recycle(&r->body);
    gw_buf_dispose(&r->resp_headers);
    gw_buf_dispose(&r->answer_body);
    free(r->answer_ctype);
    free(r->headers);
    free(r->path);
    free(r->log_model);
    gw_freelist_put(&req_pool, r, sizeof(*r));
}

void gw_req_free(gw_req_t *r) { req_free(r); }

/* After on_complete: free the request unless the handler kept it (then it only leaves the
 * connection). */
static void req_release(gw_req_t *r)
{
    if (r->held) {
        r->conn = NULL;
        return;
    }
    req_free(r);
}

const char *gw_req_url(const gw_req_t *r, size_t *len)
{
    *len = r->url_len;
    return r->head.data ? r->head.data : "";
}

const char *gw_req_header(const gw_req_t *r, const char *name, size_t nlen, size_t *vlen)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        const gw_header_t *h = &r->headers[i];
        if (h->name_len == nlen && strncasecmp(r->head.data + h->name_off, name, nlen) == 0) {
            *vlen = h->value_len;
            return r->head.data + h->value_off;
        }
    }
    return NULL;
}

void gw_req_set_path(gw_req_t *r, const char *path, size_t len)
{
    char *p = gw_strndup(path, len);
    free(r->path);
    r->path = p;
    r->path_len = len;
}

/* ---------- llhttp callbacks ---------- */

static int head_limit(gw_conn_t *c, size_t add)
{
    c->head_bytes += add;
    if (c->head_bytes > c->srv->conf.max_header_size) {
        c->limit_status = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    gw_conn_t *c = p->data;
    c->req = req_new(c);
    c->head_bytes = 0;
    c->in_header_value = 0;
    if (c->state == ST_IDLE) {
        c->state = ST_HEAD;
        arm_timer(c, c->srv->conf.header_timeout);
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    gw_conn_t *c = p->data;
    if (head_limit(c, len))
        return HPE_USER;
    gw_buf_append(&c->req->head, at, len);
    c->req->url_len += len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    gw_conn_t *c = p->data;
    gw_req_t *r = c->req;
    if (head_limit(c, len + 4))
        return HPE_USER;
    if (r->n_headers == 0 || c->in_header_value) {
        if (r->n_headers == r->cap_headers) {
            r->cap_headers = r->cap_headers ? r->cap_headers * 2 : 8;
            r->headers = gw_realloc(r->headers, r->cap_headers * sizeof(gw_header_t));
        }
        gw_header_t *h = &r->headers[r->n_headers++];
        memset(h, 0, sizeof(*h));
        h->name_off = r->head.len;
        c->in_header_value = 0;
    }
    gw_buf_append(&r->head, at, len);
    r->headers[r->n_headers - 1].name_len += len;
    return 0;
}

/* RFC 9110 5.1: a field name is a token (RFC 9112 5.1: no whitespace before the colon).
 * llhttp 8.1 lets SP through ("X A: b", "X-A : b"), and an empty name (": b"); an intermediary
 * that reads such a name differently is a request-smuggling vector, so they are refused. */
static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int on_header_field_complete(llhttp_t *p)
{
    gw_conn_t *c = p->data;
    gw_req_t *r = c->req;
    /* no on_header_field since the last value: the name was empty */
    const gw_header_t *h =
        c->in_header_value || !r->n_headers ? NULL : &r->headers[r->n_headers - 1];
    int ok = h && h->name_len > 0;
    for (size_t i = 0; ok && i < h->name_len; i++)
        ok = is_tchar((unsigned char)r->head.data[h->name_off + i]);
    if (ok)
        return 0;
    c->reject = "invalid header name";
    return HPE_USER;
}

/* RFC 9112 5.2: a line folded into a field value (obs-fold: a line end followed by SP or HT)
 * is refused with 400. llhttp 8.1 accepts it, as a further value span or, right after the
 * colon, as plain whitespace. Looking back from a value span's first byte over SP/HT meets a LF
 * only for a fold; at the start of this read, the bytes parsed before tell (c->lf_ws). A value
 * continued from the previous read is no fold: that read ended inside the value. */
static int folded(const gw_conn_t *c, const char *at)
{
    const char *q = at;
    while (q > c->exec_begin && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    return q == c->exec_begin ? c->lf_ws : q[-1] == '\n';
}

/* After a parse: whether the parsed bytes (with those before) end in LF, SP/HT*. */
static void track_tail(gw_conn_t *c, const char *data, const char *end)
{
    while (end > data && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end > data)
        c->lf_ws = end[-1] == '\n';
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    gw_conn_t *c = p->data;
    gw_req_t *r = c->req;
    if (head_limit(c, len))
        return HPE_USER;
    if (len && folded(c, at)) { /* (an empty value's span starts on the next line) */
        c->reject = "folded header line (obs-fold)";
        return HPE_USER;
    }
    gw_header_t *h = &r->headers[r->n_headers - 1];
    if (!c->in_header_value) {
        c->in_header_value = 1;
        h->value_off = r->head.len;
    }
    gw_buf_append(&r->head, at, len);
    h->value_len += len;
    return 0;
}

static void split_url(gw_req_t *r)
{
    const char *url = r->head.data ? r->head.data : "";
    size_t n = r->url_len;
    /* absolute-form: http://host/path */
    if (n > 7 && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)) {
        const char *s = memchr(url + 8, '/', n - 8);
        size_t off = s ? (size_t)(s - url) : n;
        url += off;
        n -= off;
    }
    const char *q = memchr(url, '?', n);
    size_t plen = q ? (size_t)(q - url) : n;
    if (q) {
        r->query = q + 1;
        r->query_len = n - plen - 1;
    }
    gw_req_set_path(r, plen ? url : "/", plen ? plen : 1);
}

static int on_headers_complete(llhttp_t *p)
{
    gw_conn_t *c = p->data;
    gw_req_t *r = c->req;
    r->method = p->method;
    r->method_name = llhttp_method_name((llhttp_method_t)p->method);
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->head_only = p->method == HTTP_HEAD;
    split_url(r);
    if (r->url_len == 0 || (r->head.data[0] != '/' && r->head.data[0] != '*' &&
                            strncasecmp(r->head.data, "http", 4) != 0)) {
        llhttp_set_error_reason(p, "invalid request target");
        return HPE_USER;
    }
    c->state = ST_BODY;
    arm_timer(c, c->srv->conf.header_timeout);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->conf.max_body_size) {
        c->limit_status = 413;
        return HPE_USER;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
        gw_buf_prime(&r->body);
        gw_buf_reserve(&r->body, (size_t)p->content_length); /* one allocation at most */
    }
    size_t vl;
    const char *ex = gw_req_header(r, "Expect", 6, &vl);
    if (ex && vl == 12 && strncasecmp(ex, "100-continue", 12) == 0 && r->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_send(c, cont, sizeof(cont) - 1, NULL, 0);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    gw_conn_t *c = p->data;
    if (c->req->body.len + len > c->srv->conf.max_body_size) {
        c->limit_status = 413;
        return HPE_USER;
    }
    gw_buf_append(&c->req->body, at, len);
    arm_timer(c, c->srv->conf.header_timeout);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    gw_conn_t *c = p->data;
    c->req->keep_alive = llhttp_should_keep_alive(p);
    c->state = ST_ACTIVE;
    c->deadline = 0;
    return HPE_PAUSED;
}

/* ---------- writing ---------- */

/* A producer waiting for the client (gw_resp_on_drain) resumes once the queue is low. */
static void check_drain(gw_conn_t *c)
{
    if (c->drain_cb && c->req && !c->req->finished && c->state != ST_CLOSING && !c->dead &&
        c->tcp.write_queue_size + c->out.len <= c->drain_low) {
        void (*cb)(gw_req_t *) = c->drain_cb;
        c->drain_cb = NULL;
        cb(c->req);
    }
}

/* A write failed (the client reset or went away). The caller may be a handler in the middle
 * of gw_resp_send or gw_resp_end, holding the request: nothing is freed and no callback runs
 * here. The connection stops reading and writing and is closed by the flusher, in this loop
 * iteration's check phase (an unfinished request is aborted there). */
static void conn_fail(gw_conn_t *c)
{
    if (c->dead || c->state == ST_CLOSING)
        return;
    c->dead = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    gw_buf_reset(&c->out);
    mark_dirty(c);
}

static void on_write(uv_write_t *wr, int status)
{
    write_req_t *w = (write_req_t *)wr;
    gw_conn_t *c = w->conn;
    free(w);
    if (status == UV_ECANCELED || c->state == ST_CLOSING)
        return;
    if (status < 0) {
        conn_fail(c);
        return;
    }
    check_drain(c);
}

/* One non-blocking send of a then b, as uv_try_write would write(2)/writev(2) them: send(2)
 * and sendmsg(2) skip the VFS write path (fsnotify, the file position lock) that a socket
 * does not need, ~0.1-0.2 us of kernel time per call here, and the loopback write is most
 * of what a streamed chunk costs. Bytes taken, UV_EAGAIN, or another negative libuv error. */
static ssize_t try_send(gw_conn_t *c, const char *a, size_t alen, const char *b, size_t blen)
{
    uv_os_fd_t fd = c->fd;
    ssize_t n;
    do {
        if (!blen) {
            n = send(fd, a, alen, MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
            n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : uv_translate_sys_error(errno);
}

/* Write a then b (either may be empty), copying what the kernel does not take at once. A
 * failure marks the connection dead (conn_fail) and never frees anything. */
static void conn_send(gw_conn_t *c, const char *a, size_t alen, const char *b, size_t blen)
{
    if (c->state == ST_CLOSING || c->dead)
        return;
    /* Fast path: write straight from the caller's buffers when nothing is queued (the public
     * write_queue_size field: no libuv call per chunk). */
    if (c->tcp.write_queue_size == 0) {
        ssize_t n = try_send(c, a, alen, b, blen);
        if (n == (ssize_t)(alen + blen))
            return;
        if (n < 0 && n != UV_EAGAIN) {
            conn_fail(c);
            return;
        }
        if (n > 0) {
            size_t done = (size_t)n;
            if (done >= alen) {
                b += done - alen;
                blen -= done - alen;
                alen = 0;
            } else {
                a += done;
                alen -= done;
            }
        }
    }
    write_req_t *w = gw_malloc(sizeof(*w) + alen + blen);
    w->conn = c;
    w->len = alen + blen;
    memcpy(w->data, a, alen);
    if (blen)
        memcpy(w->data + alen, b, blen);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(w);
        conn_fail(c);
    }
}

/* A response's bytes (counted for the access log). */
static void conn_write(gw_conn_t *c, const char *a, size_t alen, const char *b, size_t blen)
{
    if (c->req && c->state != ST_CLOSING && !c->dead)
        c->req->bytes_sent += alen + blen;
    conn_send(c, a, alen, b, blen);
}

size_t gw_resp_queued(const gw_req_t *r)
{
    return r->conn->tcp.write_queue_size + r->conn->out.len;
}

/* Chunked responses: bytes are appended to c->out and written once per loop iteration (by the
 * server's check handle, after the I/O callbacks ran), so the chunks produced from one
 * upstream read leave in one write; the last chunk is written at once with the response end. */
static void conn_flush(gw_conn_t *c)
{
    if (!c->out.len)
        return;
    /* what the kernel does not take is copied (conn_send): the buffer is reused for the next
     * chunk, and freed when the response ends */
    conn_write(c, c->out.data, c->out.len, NULL, 0);
    gw_buf_reset(&c->out);
    check_drain(c);
}

static void on_kick(uv_idle_t *h) { GW_UNUSED(h); }

static void mark_dirty(gw_conn_t *c)
{
    if (c->dirty)
        return;
    c->dirty = 1;
    c->dirty_next = c->srv->dirty;
    if (!c->srv->dirty)
        uv_idle_start(&c->srv->kick, on_kick);
    c->srv->dirty = c;
}

static void unmark_dirty(gw_conn_t *c)
{
    if (!c->dirty)
        return;
    for (gw_conn_t **p = &c->srv->dirty; *p; p = &(*p)->dirty_next)
        if (*p == c) {
            *p = c->dirty_next;
            break;
        }
    c->dirty = 0;
}

static void on_flush(uv_check_t *h)
{
    gw_http_server_t *s = h->data;
    while (s->dirty) {
        gw_conn_t *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = 0;
        if (c->dead) {
            conn_close(c);
            continue;
        }
        if (c->state == ST_CLOSING)
            continue;
        conn_flush(c);
        if (c->pump_due) {
            c->pump_due = 0;
            conn_continue(c);
        }
    }
    uv_idle_stop(&s->kick);
}

void gw_resp_on_drain(gw_req_t *r, void (*cb)(gw_req_t *r), size_t low_water)
{
    r->conn->drain_cb = cb;
    r->conn->drain_low = low_water;
}

const char *gw_http_status_text(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static const char cors_headers[] = "Access-Control-Allow-Origin: *\r\n"
                                   "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                                   "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                                   "Access-Control-Allow-Credentials: true\r\n"
                                   "Access-Control-Max-Age: 3600\r\n";

/* "Date: ...\r\n", cached per thread per second. */
static const char *date_header(void)
{
    static __thread time_t last;
    static __thread char cached[64];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        last = now;
    }
    return cached;
}

/* A string literal into the head, without strlen. */
#define HEAD_LIT(h, lit) gw_buf_append((h), (lit), sizeof(lit) - 1)

static void build_head(gw_req_t *r, gw_buf_t *h, int status, const char *ctype, long long clen)
{
    gw_conn_t *c = r->conn;
    if (c->srv->draining || !r->keep_alive)
        c->close_after = 1;
    gw_buf_reserve(h, 512 + r->resp_headers.len);
    HEAD_LIT(h, "HTTP/1.1 ");
    gw_buf_put_uint(h, (unsigned long long)status);
    gw_buf_putc(h, ' ');
    gw_buf_puts(h, gw_http_status_text(status));
    HEAD_LIT(h, "\r\n");
    gw_buf_puts(h, date_header());
    if (ctype) {
        HEAD_LIT(h, "Content-Type: ");
        gw_buf_puts(h, ctype);
        HEAD_LIT(h, "\r\n");
    }
    if (clen >= 0) {
        HEAD_LIT(h, "Content-Length: ");
        gw_buf_put_uint(h, (unsigned long long)clen);
        HEAD_LIT(h, "\r\n");
    }
    else if (status != 204 && status != 304 && r->chunked)
        HEAD_LIT(h, "Transfer-Encoding: chunked\r\n");
    gw_buf_append(h, cors_headers, sizeof(cors_headers) - 1);
    if (c->close_after)
        HEAD_LIT(h, "Connection: close\r\n");
    else if (r->http_minor == 0)
        HEAD_LIT(h, "Connection: keep-alive\r\n");
    if (r->resp_headers.len)
        gw_buf_append(h, r->resp_headers.data, r->resp_headers.len);
    HEAD_LIT(h, "\r\n");
}

void gw_resp_add_header(gw_req_t *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
    /* Header injection guard: CR/LF never reach the wire. */
    for (size_t i = 0; i < nlen; i++)
        if (name[i] == '\r' || name[i] == '\n' || name[i] == ':')
            return;
    for (size_t i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n')
            return;
    gw_buf_t *b = &r->resp_headers; /* one reserve, not four appends (policies add several) */
    gw_buf_reserve(b, nlen + vlen + 4);
    char *p = b->data + b->len;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    if (vlen)
        memcpy(p, value, vlen);
    p += vlen;
    *p++ = '\r';
    *p++ = '\n';
    *p = '\0';
    b->len += nlen + vlen + 4;
}

void gw_resp_send(gw_req_t *r, int status, const char *ctype, const char *body, size_t len)
{
    if (r->started)
        return;
    r->started = 1;
    r->status = status;
    int no_body = status == 204 || status == 304;
    gw_buf_t h;
    gw_buf_init(&h);
    build_head(r, &h, status, no_body ? NULL : ctype, no_body ? -1 : (long long)len);
    int send_body = !r->head_only && !no_body;
    conn_write(r->conn, h.data, h.len, body, send_body ? len : 0);
    gw_buf_dispose(&h);
    r->finished = 1;
    conn_finish_request(r->conn);
}

void gw_openai_error_json(gw_buf_t *out, const char *message, size_t mlen, const char *type,
                          size_t tlen, const char *code, size_t clen)
{
    gw_buf_puts(out, "{\"error\":{\"message\":\"");
    gw_buf_json_escape(out, message ? message : "", message ? mlen : 0);
    gw_buf_puts(out, "\",\"type\":\"");
    if (type && tlen)
        gw_buf_json_escape(out, type, tlen);
    else
        gw_buf_puts(out, "error");
    gw_buf_puts(out, "\",\"code\":\"");
    gw_buf_json_escape(out, code ? code : "", code ? clen : 0);
    gw_buf_puts(out, "\"}}");
}

void gw_resp_send_error(gw_req_t *r, int status, const char *code, const char *message,
                        const char *type)
{
    const gw_http_conf_t *conf = &r->conn->srv->conf;
    gw_buf_t b;
    gw_buf_init(&b);
    if (conf->error_body && r->path)
        conf->error_body(r, &b, status, code, message, type, conf->ud);
    else
        gw_openai_error_json(&b, message, strlen(message), type, type ? strlen(type) : 0, code,
                             strlen(code));
    gw_resp_send(r, status, "application/json", b.data, b.len);
    gw_buf_dispose(&b);
}

void gw_resp_start(gw_req_t *r, int status, const char *ctype)
{
    if (r->started)
        return;
    r->started = 1;
    /* HTTP/1.0 has no chunked coding (RFC 9112 6.1): the body ends with the connection. */
    r->chunked = r->http_major > 1 || (r->http_major == 1 && r->http_minor >= 1);
    if (!r->chunked)
        r->conn->close_after = 1;
    r->status = status;
    gw_buf_prime(&r->conn->out); /* a warm buffer for the stream's chunks */
    build_head(r, &r->conn->out, status, ctype, -1);
    mark_dirty(r->conn);
}

void gw_resp_write(gw_req_t *r, const char *data, size_t len)
{
    if (!r->started || r->finished || len == 0 || r->head_only || r->conn->state == ST_CLOSING ||
        r->conn->dead)
        return;
    if (!r->chunked) {
        gw_buf_append(&r->conn->out, data, len);
        mark_dirty(r->conn);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    char size[20];
    size_t i = sizeof(size);
    size[--i] = '\n';
    size[--i] = '\r';
    for (size_t v = len; v; v >>= 4)
        size[--i] = hex[v & 15];
    gw_buf_t *out = &r->conn->out;
    size_t n = sizeof(size) - i;
    gw_buf_reserve(out, n + len + 2);
    char *d = out->data + out->len;
    memcpy(d, size + i, n);
    memcpy(d + n, data, len);
    memcpy(d + n + len, "\r\n", 2);
    out->len += n + len + 2;
    out->data[out->len] = '\0';
    mark_dirty(r->conn);
}

void gw_resp_end(gw_req_t *r)
{
    if (!r->started || r->finished)
        return;
    r->finished = 1;
    gw_conn_t *c = r->conn;
    if (!r->head_only && r->chunked)
        gw_buf_append(&c->out, "0\r\n\r\n", 5);
    unmark_dirty(c);
    conn_flush(c);
    gw_buf_recycle(&c->out); /* a kept-alive connection holds no buffer (the next stream of
                                this thread reuses it) */
    conn_finish_request(c);
}

/* ---------- connection lifecycle ---------- */

static void on_handle_closed(uv_handle_t *h)
{
    gw_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    gw_http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    atomic_fetch_sub(&open_connections, 1);
    unmark_dirty(c);
    gw_buf_dispose(&c->pending);
    gw_buf_recycle(&c->out);
    free(c);
    if (s->draining && s->n_conns == 0 && s->on_drained) {
        void (*cb)(void *) = s->on_drained;
        s->on_drained = NULL;
        cb(s->drain_ud);
    }
}

static void close_handles(gw_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->timer)) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Close now. An unfinished request is aborted (its handler is told) and logged as 499. */
static void conn_close(gw_conn_t *c)
{
    if (c->state == ST_CLOSING) {
        close_handles(c);
        return;
    }
    int was_active = c->state == ST_ACTIVE;
    c->state = ST_CLOSING;
    gw_req_t *r = c->req;
    c->req = NULL;
    if (r) {
        if (was_active && !r->finished) {
            if (r->on_abort)
                r->on_abort(r);
            if (r->status == 0)
                r->status = 499; /* client closed request (nginx convention, for the log) */
            if (c->srv->conf.on_complete)
                c->srv->conf.on_complete(r, c->srv->conf.ud);
        }
        req_release(r);
    }
    close_handles(c);
}

/* Lingering close (as nginx): after our FIN the connection stays open, discarding what the
 * client still sends, until the client closes or the linger timer fires. Closing at once with
 * unread bytes would make the kernel send a reset that can destroy the response (a 413 to a
 * client still uploading its body). */
static void on_shutdown(uv_shutdown_t *sh, int status)
{
    gw_conn_t *c = sh->data;
    free(sh);
    if (status < 0 || !c->reading)
        close_handles(c);
}

static void on_linger_timer(uv_timer_t *t) { close_handles(t->data); }

/* Close after the queued writes are flushed (bounded by a linger timer). */
static void conn_close_graceful(gw_conn_t *c)
{
    if (c->state == ST_CLOSING)
        return;
    if (c->req) {
        req_free(c->req);
        c->req = NULL;
    }
    c->state = ST_CLOSING;
    c->deadline = 0;
    c->timer_due = 1;
    uv_timer_start(&c->timer, on_linger_timer, 5000, 0);
    uv_shutdown_t *sh = gw_malloc(sizeof(*sh));
    sh->data = c;
    if (uv_shutdown(sh, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sh);
        close_handles(c);
    }
}

static void protocol_error(gw_conn_t *c, int status, const char *code, const char *msg)
{
    if (!c->req)
        c->req = req_new(c);
    gw_req_t *r = c->req;
    if (!r->method_name)
        r->method_name = "-";
    r->keep_alive = 0;
    c->close_after = 1;
    c->state = ST_ACTIVE;
    gw_resp_send_error(r, status, code, msg, "error");
}

static void conn_finish_request(gw_conn_t *c)
{
    gw_req_t *r = c->req;
    if (!r)
        return;
    if (c->srv->conf.on_complete)
        c->srv->conf.on_complete(r, c->srv->conf.ud);
    c->drain_cb = NULL;
    if (c->dead) {
        conn_close(c); /* the request is finished: released without an abort */
        return;
    }
    c->req = NULL;
    req_release(r);
    if (c->close_after || c->srv->draining) {
        conn_close_graceful(c);
        return;
    }
    c->state = ST_IDLE;
    arm_timer(c, c->srv->conf.keepalive_timeout);
    if (c->paused) {
        c->paused = 0;
        llhttp_resume(&c->parser);
    }
    if (c->pending.len) {
        /* The next pipelined request is parsed by the flusher, from the loop: not inside the
         * handler that just answered (it may be deep in an upstream library's callback). */
        c->pump_due = 1;
        mark_dirty(c);
        return;
    }
    conn_continue(c);
}

/* Parse the pipelined bytes, then read again (or, after the client's EOF, close once no
 * request is left). */
static void conn_continue(gw_conn_t *c)
{
    conn_pump(c);
    if (c->state == ST_CLOSING || c->dead || c->reading)
        return;
    if (!c->eof)
        start_reading(c);
    else if (c->state != ST_ACTIVE)
        conn_close_graceful(c);
}

static void map_parse_error(gw_conn_t *c, llhttp_errno_t err)
{
    const char *reason = c->reject ? c->reject : llhttp_get_error_reason(&c->parser);
    if (c->limit_status == 431)
        protocol_error(c, 431, "header_too_large", "Request header fields too large");
    else if (c->limit_status == 413)
        protocol_error(c, 413, "body_too_large", "Request body too large");
    else {
        char msg[256];
        snprintf(msg, sizeof(msg), "Bad request: %s", reason ? reason : llhttp_errno_name(err));
        protocol_error(c, 400, "invalid_request", msg);
    }
}

/* Feed bytes to the parser; a complete request is dispatched, the bytes after it are kept in
 * c->pending (they are parsed once the response is complete, by conn_pump). */
static void conn_parse(gw_conn_t *c, const char *data, size_t len)
{
    c->exec_begin = data;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    c->exec_begin = NULL;
    if (err == HPE_OK)
        track_tail(c, data, data + len);
    if (err == HPE_OK || c->dead) /* dead: the interim 100 failed; the flusher closes */
        return;
    if (err == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        track_tail(c, data, data + used);
        c->paused = 1;
        if (used < len)
            gw_buf_append(&c->pending, data + used, len - used);
        c->srv->conf.on_request(c->req, c->srv->conf.ud);
        return;
    }
    map_parse_error(c, err);
}

/* Parse buffered (pipelined) bytes while the connection is idle. Re-entrant calls (a request
 * answered synchronously from inside the loop) return at once; the outer loop continues. */
static void conn_pump(gw_conn_t *c)
{
    if (c->pumping)
        return;
    c->pumping = 1;
    while (c->pending.len && c->state != ST_CLOSING && c->state != ST_ACTIVE && !c->paused &&
           !c->dead) {
        gw_buf_t data = c->pending;
        gw_buf_init(&c->pending);
        conn_parse(c, data.data, data.len);
        if (c->pending.len == 0 || c->state == ST_CLOSING) {
            gw_buf_dispose(&data);
            continue;
        }
        gw_buf_dispose(&data);
    }
    c->pumping = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static __thread char slab[65536];
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn_t *c = st->data;
    if (c->state == ST_CLOSING) { /* lingering: discard, close on the client's EOF */
        if (nread < 0)
            close_handles(c);
        return;
    }
    if (nread < 0) {
        /* EOF while idle with pipelined requests buffered: answer them, then close. */
        if (nread == UV_EOF && c->state != ST_ACTIVE && c->pending.len) {
            c->eof = 1;
            c->close_after = 1;
            uv_read_stop(st);
            c->reading = 0;
            conn_pump(c);
            return;
        }
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->state == ST_ACTIVE || c->paused || c->pending.len) {
        gw_buf_append(&c->pending, buf->base, (size_t)nread);
        /* Bound what a pipelining client can make us hold. */
        if (c->pending.len > c->srv->conf.max_header_size + c->srv->conf.max_body_size) {
            uv_read_stop(st);
            c->reading = 0;
        }
        conn_pump(c);
        return;
    }
    c->pumping = 1;
    conn_parse(c, buf->base, (size_t)nread);
    c->pumping = 0;
    conn_pump(c);
}

static void start_reading(gw_conn_t *c)
{
    c->reading = 1;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* The peer's address as the accept call returned it. */
static void peer_from_sockaddr(const struct sockaddr_storage *ss, gw_ip_t *out)
{
    char txt[GW_IP_TEXT_MAX];
    memset(out, 0, sizeof(*out));
    out->family = 4;
    if (ss->ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)ss, txt, sizeof(txt));
    else if (ss->ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)ss, txt, sizeof(txt));
    else
        return;
    gw_ip_parse(txt, strlen(txt), out);
}

/* A connection on an accepted socket (counted in open_connections by the caller). */
static void conn_open(gw_http_server_t *s, int fd, const struct sockaddr_storage *ss)
{
    gw_conn_t *c = gw_calloc(1, sizeof(*c));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    c->state = ST_IDLE;
    peer_from_sockaddr(ss, &c->peer);
    c->fd = fd;
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd); /* not the handle's */
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    arm_timer(c, s->conf.keepalive_timeout);
    start_reading(c);
}

static void on_listener(uv_poll_t *h, int status, int events);

static void on_accept_retry(uv_timer_t *t)
{
    gw_http_server_t *s = t->data;
    if (s->listening)
        uv_poll_start(&s->listener, UV_READABLE, on_listener);
}

/* Out of descriptors or memory: the pending connection stays queued and the listener would
 * wake the loop at once again, so accepting pauses for 100 ms (logged at most every 10 s). */
static void accept_pause(gw_http_server_t *s, int err)
{
    uint64_t now = uv_now(s->loop);
    if (now >= s->accept_warn_due) {
        s->accept_warn_due = now + 10000;
        gw_warn("accept: %s; new connections wait", strerror(err));
    }
    uv_poll_stop(&s->listener);
    uv_timer_start(&s->accept_retry, on_accept_retry, 100, 0);
}

/* Accepting here instead of uv_listen/uv_accept: accept4 returns the peer's address even when
 * the client has already reset the connection, while getpeername afterwards fails (ENOTCONN)
 * and the access log said IP=0.0.0.0. A bounded batch per wake-up keeps the loop fair. */
static void on_listener(uv_poll_t *h, int status, int events)
{
    GW_UNUSED(events);
    gw_http_server_t *s = h->data;
    for (int i = 0; i < 128 && status == 0 && s->listening; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                accept_pause(s, e);
                return;
            }
            continue; /* the pending connection's own error (ECONNABORTED, EPROTO, ...) */
        }
        size_t total = atomic_fetch_add(&open_connections, 1) + 1;
        if (total > s->conf.max_connections) {
            atomic_fetch_sub(&open_connections, 1);
            close(fd);
            continue;
        }
        conn_open(s, fd, &ss);
    }
}

static int bind_reuseport(const char *host, int port, int *out_fd, char **err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    int rc = family == AF_INET6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                                : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        *err = gw_sprintf("invalid listen address %s", host);
        return GW_EINVAL;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = gw_sprintf("socket: %s", strerror(errno));
        return GW_ERROR;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    socklen_t sl = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        *err = gw_sprintf("cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return GW_ERROR;
    }
    *out_fd = fd;
    return GW_OK;
}

static void on_listener_closed(uv_handle_t *h)
{
    gw_http_server_t *s = h->data;
    close(s->listen_fd);
}

static void close_listener(gw_http_server_t *s)
{
    if (!s->listening)
        return;
    s->listening = 0;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    uv_close((uv_handle_t *)&s->accept_retry, NULL);
}

/* Everything but the listener. */
static void server_init(gw_http_server_t *s, uv_loop_t *loop, const gw_http_conf_t *conf)
{
    s->loop = loop;
    s->conf = *conf;
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_field_complete = on_header_field_complete;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    uv_check_init(loop, &s->flusher);
    s->flusher.data = s;
    uv_check_start(&s->flusher, on_flush);
    uv_unref((uv_handle_t *)&s->flusher);
    uv_idle_init(loop, &s->kick);
    uv_unref((uv_handle_t *)&s->kick);
}

int gw_http_server_start(uv_loop_t *loop, const char *host, int port, const gw_http_conf_t *conf,
                         gw_http_server_t **out, char **err)
{
    int fd;
    if (bind_reuseport(host, port, &fd, err) != 0)
        return GW_ERROR;
    gw_http_server_t *s = gw_calloc(1, sizeof(*s));
    int rc = listen(fd, 1024) != 0 ? -errno : uv_poll_init_socket(loop, &s->listener, fd);
    if (rc != 0) { /* (a failed uv_poll_init_socket leaves no handle behind) */
        *err = gw_sprintf("cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        close(fd);
        free(s);
        return GW_ERROR;
    }
    server_init(s, loop, conf);
    s->listen_fd = fd;
    s->listener.data = s;
    uv_timer_init(loop, &s->accept_retry);
    s->accept_retry.data = s;
    s->listening = 1;
    uv_poll_start(&s->listener, UV_READABLE, on_listener);
    *out = s;
    return GW_OK;
}

gw_http_server_t *gw_http_server_new(uv_loop_t *loop, const gw_http_conf_t *conf)
{
    gw_http_server_t *s = gw_calloc(1, sizeof(*s));
    server_init(s, loop, conf);
    return s;
}

void gw_http_server_adopt(gw_http_server_t *s, int fd, const struct sockaddr_storage *peer)
{
    struct sockaddr_storage none = {.ss_family = AF_UNSPEC};
    atomic_fetch_add(&open_connections, 1);
    conn_open(s, fd, peer ? peer : &none);
}

size_t gw_http_server_connections(const gw_http_server_t *s) { return s->n_conns; }

void gw_http_server_drain(gw_http_server_t *s, void (*on_drained)(void *ud), void *ud)
{
    s->draining = 1;
    s->on_drained = on_drained;
    s->drain_ud = ud;
    close_listener(s);
    for (gw_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == ST_IDLE)
            conn_close(c);
        else
            c->close_after = 1;
    }
    if (s->n_conns == 0 && s->on_drained) {
        s->on_drained = NULL;
        on_drained(ud);
    }
}

void gw_http_server_free(gw_http_server_t *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->flusher)) {
        uv_close((uv_handle_t *)&s->flusher, NULL);
        uv_close((uv_handle_t *)&s->kick, NULL);
    }
    s->draining = 1;
    s->on_drained = NULL;
    for (gw_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    close_listener(s);
    /* Connections free themselves in their close callbacks; the server struct must outlive
     * them, so the owner frees it after the loop has run the close callbacks. */
}

void gw_http_server_release(gw_http_server_t *s) { free(s); }
