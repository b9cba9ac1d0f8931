/*
 * pieces-gateway: libFuzzer driver for the HTTP/1.1 server side (src/http.c), in process.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The real connection code runs on a libuv loop; each input is one client connection, one end
 * of an AF_UNIX socketpair handed to the server with gw_http_server_adopt (the server's send
 * buffer is small, so answers queue and the backpressure paths run). The input is a script of
 * one-byte operations, op = byte >> 5, arg = byte & 31:
 *   0 SEND       the next arg+1 input bytes, in one write, the loop not run (so that a RESET
 *                next lands before the server read them: the answer's write then fails)
 *   1 SEND_LONG  the next (arg+1)*32 input bytes in one write, then one loop iteration
 *   2 RUN        arg+1 loop iterations (answers from timers, streams, drain callbacks)
 *   3 READ       read up to (arg+1)*256 bytes of the answers (31: all there is)
 *   4 HALF_CLOSE shutdown(SHUT_WR) of the client
 *   5 RESET      the client closes (with unread answers the server's read gets ECONNRESET,
 *                its writes EPIPE); the script ends
 *   6 SEND_SPLIT the rest of the input in writes of arg+1 bytes, a loop iteration after each
 *                (at most 16 writes: the last one takes what is left)
 *   7 TEMPLATE   one of 32 canned requests (valid, pipelined, chunked, 100-continue, HEAD,
 *                HTTP/1.0, malformed, over the limits), to reach deep states quickly
 * Then the client reads everything until the server is quiet, closes, and the loop runs until
 * the connection is gone.
 *
 * The handler answers by the path's second byte: 'c' a chunked stream from a timer, honouring
 * gw_resp_on_drain; 's' a chunked answer written at once; 'd' a whole answer from a timer;
 * 'e' an error answer; 'n' 204; 'x' an error from a timer; anything else a whole answer at
 * once, whose size comes from the third byte (up to 16 KiB). Every body starts "#<seq>:".
 *
 * Checked (abort on failure), besides ASan/UBSan/LSan: every dispatched request gets exactly
 * one on_complete; the connection and every handler timer are gone at the end; the bytes the
 * client got parse as HTTP/1.1 responses (llhttp), bodies in request order, and, when the
 * client neither reset nor half-closed, it got one answer per completed request, each whole
 * (the server takes a half-close for the client going away, as nginx does). (With a HEAD
 * request in the script the byte stream cannot be parsed without knowing which answer has no
 * body: then only the counts are checked.)
 */
#include <errno.h>
#include <llhttp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"

static uv_loop_t loop;
static gw_http_server_t *srv;

/* ---------- per input state ---------- */

static struct {
    int client;            /* our end of the socketpair, -1 once closed */
    unsigned seq;          /* requests dispatched */
    unsigned completed;    /* on_complete calls for dispatched requests */
    unsigned answered;     /* on_complete calls with a real status (not 499), errors included */
    unsigned jobs;         /* handler jobs alive (their timers not closed yet) */
    int saw_head;
    int reset, half_closed, eof;
    llhttp_t rp;           /* the client's response parser */
    unsigned responses;    /* complete final (non-1xx) responses */
    long last_seq;
    char body_start[16];
    size_t body_len;
} st;

typedef struct {
    gw_req_t *req;         /* NULL once the request is gone (aborted or finished) */
    uv_timer_t timer;
    int timer_on;
    unsigned seq;
    int mode;
    int chunks_left;
    size_t chunk;
    int dispatched_counted;
} job_t;

static void fail(const char *what)
{
    fprintf(stderr, "http_server fuzz: %s (seq %u, completed %u, answered %u, responses %u)\n",
            what, st.seq, st.completed, st.answered, st.responses);
    abort();
}

/* ---------- the handler ---------- */

static void on_job_closed(uv_handle_t *h)
{
    free(h->data);
    st.jobs--;
}

/* data_free: the request is being freed. */
static void job_release(void *data)
{
    job_t *j = data;
    j->req = NULL;
    if (j->timer_on) {
        uv_timer_stop(&j->timer);
        uv_close((uv_handle_t *)&j->timer, on_job_closed);
    } else {
        free(j);
        st.jobs--;
    }
}

static void job_abort(gw_req_t *req)
{
    job_t *j = req->data;
    if (j->timer_on)
        uv_timer_stop(&j->timer);
}

static size_t body_of(const job_t *j, char *buf, size_t size)
{
    int n = snprintf(buf, 32, "#%u:", j->seq);
    size_t len = (size_t)n;
    for (; len < size; len++)
        buf[len] = (char)('a' + len % 26);
    return len;
}

static void send_whole(job_t *j, size_t size)
{
    char *buf = malloc(size + 32);
    size_t len = body_of(j, buf, size);
    gw_resp_add_header(j->req, "X-Seq", 5, buf + 1, (size_t)(strchr(buf, ':') - buf - 1));
    gw_resp_add_header(j->req, "X-Bad", 5, "a\r\nInjected: 1", 14); /* refused by the server */
    gw_resp_send(j->req, 200, "text/plain", buf, len);
    free(buf);
}

static void stream_step(job_t *j);

static void on_drained(gw_req_t *req) { stream_step(req->data); }

static void on_job_timer(uv_timer_t *t);

/* One chunk per timer tick; waits for the drain callback when the client does not read. */
static void stream_step(job_t *j)
{
    if (j->chunks_left == 0) {
        gw_resp_end(j->req); /* frees the request (and so j->req is NULL) */
        return;
    }
    j->chunks_left--;
    char buf[2048 + 64];
    gw_resp_write(j->req, buf, body_of(j, buf, j->chunk));
    if (gw_resp_queued(j->req) > 8192) {
        gw_resp_on_drain(j->req, on_drained, 1024);
        return;
    }
    uv_timer_start(&j->timer, on_job_timer, 0, 0);
}

static void on_job_timer(uv_timer_t *t)
{
    job_t *j = t->data;
    if (!j->req)
        return;
    switch (j->mode) {
    case 'c':
        stream_step(j);
        return;
    case 'x':
        gw_resp_send_error(j->req, 503, "busy", "Later \"please\"\n", "error");
        return;
    default:
        send_whole(j, 100);
    }
}

static void start_timer(job_t *j)
{
    uv_timer_init(&loop, &j->timer);
    j->timer.data = j;
    j->timer_on = 1;
    uv_timer_start(&j->timer, on_job_timer, 0, 0);
}

static void on_request(gw_req_t *req, void *ud)
{
    (void)ud;
    job_t *j = calloc(1, sizeof(*j));
    st.jobs++;
    j->req = req;
    j->seq = ++st.seq;
    j->mode = req->path_len > 1 ? req->path[1] : 'a';
    unsigned arg = req->path_len > 2 ? (unsigned char)req->path[2] : 0;
    req->data = j;
    req->data_free = job_release;
    req->on_abort = job_abort;
    if (req->head_only)
        st.saw_head = 1;
    char buf[96];
    switch (j->mode) {
    case 'c':
        j->chunks_left = (int)(arg & 7) + 1;
        j->chunk = ((arg >> 3) & 31) * 64 + 16;
        gw_resp_start(req, 200, "text/event-stream");
        start_timer(j);
        return;
    case 's':
        gw_resp_start(req, 200, "text/plain");
        gw_resp_write(req, buf, body_of(j, buf, 40));
        gw_resp_write(req, "", 0);
        gw_resp_write(req, "tail", 4);
        gw_resp_end(req);
        return;
    case 'd':
    case 'x':
        start_timer(j);
        return;
    case 'e':
        gw_resp_send_error(req, 400 + (int)(arg % 30), "bad", "no \xff UTF-8 here", NULL);
        return;
    case 'n':
        gw_resp_send(req, arg & 1 ? 204 : 304, "text/plain", "ignored", 7);
        return;
    default:
        send_whole(j, (size_t)(arg & 31) * 512 + 8);
    }
}

static void on_complete(gw_req_t *req, void *ud)
{
    (void)ud;
    job_t *j = req->data;
    if (req->status != 499)
        st.answered++;
    if (req->head_only) /* also an error answer to a HEAD request: it has no body either */
        st.saw_head = 1;
    if (!j)
        return; /* a protocol error answer (400, 408, 413, 431): never dispatched */
    if (j->dispatched_counted)
        fail("on_complete called twice for one request");
    j->dispatched_counted = 1;
    st.completed++;
}

/* ---------- the client ---------- */

static int rp_on_body(llhttp_t *p, const char *at, size_t len)
{
    (void)p;
    while (len-- && st.body_len < sizeof(st.body_start) - 1)
        st.body_start[st.body_len++] = *at++;
    return 0;
}

static int rp_on_message_complete(llhttp_t *p)
{
    if (p->status_code >= 200)
        st.responses++;
    st.body_start[st.body_len] = 0;
    if (st.body_start[0] == '#') {
        long n = strtol(st.body_start + 1, NULL, 10);
        if (n <= st.last_seq)
            fail("answers out of request order");
        st.last_seq = n;
    }
    st.body_len = 0;
    return 0;
}

static llhttp_settings_t rp_settings;

static void client_got(const char *data, size_t len)
{
    if (st.saw_head)
        return;
    llhttp_errno_t e = llhttp_execute(&st.rp, data, len);
    if (e != HPE_OK) {
        fprintf(stderr, "http_server fuzz: bad answer bytes: %s (%s)\n", llhttp_errno_name(e),
                llhttp_get_error_reason(&st.rp));
        fail("the server sent something that is not HTTP/1.1");
    }
}

/* Read up to max bytes (or all there is); returns how many. */
static size_t client_read(size_t max)
{
    char buf[4096];
    size_t total = 0;
    while (st.client >= 0 && total < max) {
        size_t want = max - total < sizeof(buf) ? max - total : sizeof(buf);
        ssize_t n = read(st.client, buf, want);
        if (n == 0 && !st.eof) { /* a body without a length ends here */
            st.eof = 1;
            /* (after a half-close, the server takes the client for gone, as nginx does, and
             * may cut an answer) */
            if (!st.half_closed && !st.saw_head && llhttp_finish(&st.rp) != HPE_OK)
                fail("the answers end in the middle of one");
        }
        if (n <= 0)
            break;
        client_got(buf, (size_t)n);
        total += (size_t)n;
    }
    return total;
}

static void client_send(const uint8_t *p, size_t n, int run)
{
    if (st.client < 0 || st.half_closed || n == 0)
        return;
    (void)!write(st.client, p, n); /* EAGAIN/EPIPE: the rest is lost, as on a real network */
    if (run)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void client_close(void)
{
    if (st.client >= 0)
        close(st.client);
    st.client = -1;
}

static const char *const TEMPLATES[32] = {
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /a? HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /c9 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /c\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /s HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /d HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /e HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /n HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    "POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
    "abc",
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\n\r\n",
    "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /a HTTP/1.0\r\n\r\n",
    "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "BREW / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nX A: b\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET /",
    "a HTTP/1.1\r\nHo",
    "st: x\r\n\r\n",
    "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "3\r\nabc\r\n",
    "0\r\nT: v\r\n\r\n",
    "GET * HTTP/1.1\r\n\r\n",
    "GET http://h/a?q HTTP/1.1\r\nHost: h\r\n\r\n",
    "\r\n",
};

static void run_script(const uint8_t *data, size_t size)
{
    size_t i = 0;
    while (i < size && st.client >= 0) {
        uint8_t op = data[i] >> 5, arg = data[i] & 31;
        i++;
        size_t n;
        switch (op) {
        case 0:
        case 1:
            n = op == 0 ? (size_t)arg + 1 : ((size_t)arg + 1) * 32;
            n = n < size - i ? n : size - i;
            client_send(data + i, n, op == 1);
            i += n;
            break;
        case 2:
            for (int k = 0; k <= arg; k++)
                uv_run(&loop, UV_RUN_NOWAIT);
            break;
        case 3:
            client_read(arg == 31 ? SIZE_MAX : ((size_t)arg + 1) * 256);
            break;
        case 4:
            if (!st.half_closed)
                shutdown(st.client, SHUT_WR);
            st.half_closed = 1;
            uv_run(&loop, UV_RUN_NOWAIT);
            break;
        case 5:
            client_close();
            st.reset = 1;
            break;
        case 6:
            for (int piece = 0; i < size; i += n, piece++) {
                n = piece < 15 && (size_t)arg + 1 < size - i ? (size_t)arg + 1 : size - i;
                client_send(data + i, n, 1);
            }
            break;
        default:
            client_send((const uint8_t *)TEMPLATES[arg], strlen(TEMPLATES[arg]), 1);
        }
    }
}

/* Read until the server has been quiet for a while (its timers and streams are done). */
static void drain_answers(void)
{
    int quiet = 0;
    for (int k = 0; k < 20000 && quiet < 2; k++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        size_t got = client_read(SIZE_MAX);
        quiet = got == 0 && st.jobs == 0 ? quiet + 1 : 0;
    }
}

static void finish(void)
{
    if (st.client >= 0) {
        drain_answers();
        if (!st.half_closed && st.answered != st.responses && !st.saw_head)
            fail("a completed request's answer did not arrive");
        client_close();
    }
    for (int k = 0; k < 20000 && (gw_http_server_connections(srv) || st.jobs); k++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (gw_http_server_connections(srv))
        fail("the connection is still open after the client went away");
    if (st.jobs)
        fail("a handler job outlived its request");
    if (st.completed != st.seq)
        fail("a dispatched request never completed");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    gw_http_conf_t conf = {.max_connections = 16,
                           .max_header_size = 1024,
                           .max_body_size = 1024,
                           .header_timeout = 3600, /* timers must not fire mid-input */
                           .keepalive_timeout = 3600,
                           .on_request = on_request,
                           .on_complete = on_complete};
    srv = gw_http_server_new(&loop, &conf);
    llhttp_settings_init(&rp_settings);
    rp_settings.on_body = rp_on_body;
    rp_settings.on_message_complete = rp_on_message_complete;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fail("socketpair");
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    memset(&st, 0, sizeof(st));
    st.client = sv[1];
    llhttp_init(&st.rp, HTTP_RESPONSE, &rp_settings);
    gw_http_server_adopt(srv, sv[0], NULL);
    run_script(data, size);
    finish();
    return 0;
}
