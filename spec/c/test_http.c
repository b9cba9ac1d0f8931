/*
 * pieces-gateway: unit tests for the HTTP/1.1 server glue (src/http.c) over real sockets:
 * pipelining order, chunked bodies, HEAD, Expect: 100-continue, limits and malformed input.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "gw.h"
#include "gw_test.h"
#include "http.h"

static int port;
static uv_loop_t loop;
static uv_async_t stop_async;
static gw_http_server_t *server;
static uv_sem_t ready;
static int completed;
static int in_send; /* a handler is inside gw_resp_send */
static int nested;  /* on_request ran inside another request's gw_resp_send */

static void answer(gw_req_t *req)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s %.*s body=%zu", req->method_name, (int)req->path_len,
                     req->path, req->body.len);
    gw_resp_add_header(req, "X-Test", 6, "1\r\nInjected: yes", 16); /* must be refused */
    in_send++;
    gw_resp_send(req, 200, "text/plain", body, (size_t)n);
    in_send--;
}

/* /async/...: answered from a timer, as a handler waiting for an upstream would. */
static void on_timer_closed(uv_handle_t *h) { free(h); }

static void on_async_timer(uv_timer_t *t)
{
    if (t->data)
        answer(t->data);
    uv_close((uv_handle_t *)t, on_timer_closed);
}

static void on_abort(gw_req_t *req)
{
    ((uv_timer_t *)req->data)->data = NULL;
    req->data = NULL;
}

static void on_request(gw_req_t *req, void *ud)
{
    GW_UNUSED(ud);
    if (in_send)
        nested++;
    if (req->path_len == 7 && memcmp(req->path, "/stream", 7) == 0) {
        gw_resp_start(req, 200, "text/plain");
        gw_resp_write(req, "hello ", 6);
        gw_resp_write(req, "world", 5);
        gw_resp_end(req);
        return;
    }
    if (req->path_len < 7 || memcmp(req->path, "/async/", 7) != 0) {
        answer(req);
        return;
    }
    uv_timer_t *t = gw_calloc(1, sizeof(*t));
    uv_timer_init(&loop, t);
    t->data = req;
    req->data = t;
    req->on_abort = on_abort;
    uv_timer_start(t, on_async_timer, 5, 0);
}

static void on_complete(gw_req_t *req, void *ud)
{
    GW_UNUSED(req);
    GW_UNUSED(ud);
    completed++;
}

static void on_stop(uv_async_t *a)
{
    gw_http_server_free(server);
    uv_close((uv_handle_t *)a, NULL);
}

static void server_thread(void *arg)
{
    GW_UNUSED(arg);
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, on_stop);
    gw_http_conf_t conf = {.max_connections = 100,
                           .max_header_size = 2048,
                           .max_body_size = 1000,
                           .header_timeout = 1,
                           .keepalive_timeout = 5,
                           .on_request = on_request,
                           .on_complete = on_complete};
    char *err = NULL;
    for (port = 20000 + (getpid() % 20000);; port++) {
        if (gw_http_server_start(&loop, "127.0.0.1", port, &conf, &server, &err) == 0)
            break;
        free(err);
        err = NULL;
    }
    uv_sem_post(&ready);
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_http_server_release(server);
    uv_loop_close(&loop);
}

/* Send raw bytes (in two writes, split at `split`, when 0 < split < len), read until the
 * server closes (expect_close) or, after a half-close, until it answered and closed. */
static char *exchange_split(const char *data, size_t len, size_t split, int expect_close)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return gw_strdup("");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    size_t first = split > 0 && split < len ? split : len;
    if (write(fd, data, first) != (ssize_t)first)
        return gw_strdup("");
    if (first < len) {
        usleep(20000); /* most of the time, the server reads the two parts separately */
        if (write(fd, data + first, len - first) != (ssize_t)(len - first))
            return gw_strdup("");
    }
    if (!expect_close)
        shutdown(fd, SHUT_WR);
    char *out = gw_calloc(1, 65536);
    size_t got = 0;
    ssize_t n;
    while (got < 65535 && (n = read(fd, out + got, 65535 - got)) > 0)
        got += (size_t)n;
    close(fd);
    return out;
}

static char *exchange(const char *data, size_t len, int expect_close)
{
    return exchange_split(data, len, 0, expect_close);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

TEST(simple_and_cors)
{
    char *r = exchange("GET /a?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 51, 1);
    CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(r, "GET /a body=0") != NULL);
    CHECK(strstr(r, "Access-Control-Allow-Origin: *\r\n") != NULL);
    CHECK(strstr(r, "Connection: close\r\n") != NULL);
    CHECK(strstr(r, "Injected") == NULL);
    free(r);
}

TEST(pipelined_in_order)
{
    const char req[] = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
    char *r = exchange(req, sizeof(req) - 1, 0);
    char *a = strstr(r, "GET /1"), *b = strstr(r, "POST /2 body=3"), *c = strstr(r, "GET /3");
    CHECK(a && b && c && a < b && b < c);
    CHECK_EQ_INT(count(r, "HTTP/1.1 200"), 3);
    free(r);
}

/* A request answered later (from a timer) with pipelined requests behind it: they are parsed
 * from the loop, never inside the answering handler's gw_resp_send. */
TEST(pipelined_behind_async)
{
    const char req[] = "GET /async/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /async/3 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "BREW /4 HTTP/1.1\r\nHost: x\r\n\r\n";
    char *r = exchange(req, sizeof(req) - 1, 1);
    char *a = strstr(r, "GET /async/1"), *b = strstr(r, "GET /2"), *c = strstr(r, "GET /async/3");
    char *d = strstr(r, "HTTP/1.1 400 ");
    CHECK(a && b && c && d && a < b && b < c && c < d);
    CHECK_EQ_INT(count(r, "HTTP/1.1 200"), 3);
    CHECK_EQ_INT(nested, 0);
    free(r);
}

/* A streamed answer is chunked for HTTP/1.1; HTTP/1.0 knows no chunked coding (RFC 9112 6.1):
 * the raw body, ended by closing the connection. */
TEST(streamed_answer_framing)
{
    const char req[] = "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *r = exchange(req, sizeof(req) - 1, 1);
    CHECK(strstr(r, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(r, "\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n") != NULL);
    free(r);
    const char old[] = "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    r = exchange(old, sizeof(old) - 1, 1);
    CHECK(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
    CHECK(strstr(r, "Transfer-Encoding") == NULL);
    CHECK(strstr(r, "Connection: close\r\n") != NULL);
    const char *body = strstr(r, "\r\n\r\n");
    CHECK(body && strcmp(body + 4, "hello world") == 0);
    free(r);
}

TEST(chunked_body)
{
    const char req[] = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    char *r = exchange(req, sizeof(req) - 1, 1);
    CHECK(strstr(r, "POST /c body=11") != NULL);
    free(r);
}

TEST(head_has_no_body)
{
    char *r = exchange("HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 48, 1);
    CHECK(strstr(r, "Content-Length: 14\r\n") != NULL);
    CHECK(strstr(r, "HEAD /h") == NULL);
    free(r);
}

TEST(expect_continue)
{
    const char req[] = "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
                       "Connection: close\r\n\r\nhi";
    char *r = exchange(req, sizeof(req) - 1, 1);
    CHECK(strncmp(r, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    CHECK(strstr(r, "POST /e body=2") != NULL);
    free(r);
}

TEST(limits)
{
    char big[4096];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 3000);
    memcpy(big + n + 3000, "\r\n\r\n", 4);
    char *r = exchange(big, (size_t)n + 3004, 1);
    CHECK(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
    free(r);
    const char cl[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    r = exchange(cl, sizeof(cl) - 1, 1);
    if (strncmp(r, "HTTP/1.1 413 ", 13) != 0)
        fprintf(stderr, "413 case got: %.80s\n", r);
    CHECK(strncmp(r, "HTTP/1.1 413 ", 13) == 0);
    CHECK(strstr(r, "\"code\":\"body_too_large\"") != NULL);
    free(r);
    char chunked[2048];
    n = snprintf(chunked, sizeof(chunked),
                 "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n");
    memset(chunked + n, 'b', 1000);
    memcpy(chunked + n + 1000, "\r\n1\r\nb\r\n0\r\n\r\n", 13);
    r = exchange(chunked, (size_t)n + 1013, 1);
    CHECK(strncmp(r, "HTTP/1.1 413 ", 13) == 0);
    free(r);
}

TEST(malformed)
{
    const char *bad[] = {
        "BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n"),
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    };
    size_t lens[] = {0, 0, 0, 0, 36, 0, 0};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        size_t len = lens[i] ? lens[i] : strlen(bad[i]);
        char *r = exchange(bad[i], len, 1);
        CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
        CHECK(strstr(r, "Connection: close") != NULL);
        if (strncmp(r, "HTTP/1.1 400 ", 13) != 0)
            fprintf(stderr, "case %zu got: %.60s\n", i, r);
        free(r);
    }
}

/* Issue 8 item 5: whitespace in or before a header name, an empty name and folded lines are
 * 400 (RFC 9112 5.1, 5.2); each split into two reads around the interesting byte as well. */
static void check_head(const char *head, int want, const char *why)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "%s\r\nConnection: close\r\n\r\n", head);
    const char *mark = strstr(head, "\r\n ") ? strstr(head, "\r\n ")
                     : strstr(head, "\r\n\t") ? strstr(head, "\r\n\t")
                     : strrchr(head, ':');
    size_t at = mark ? (size_t)(mark - head) : 20;
    for (size_t split = 0; split < 7; split++) {
        size_t cut = split ? at - 3 + split : 0;
        char *r = exchange_split(req, (size_t)n, cut, 1);
        int got = strncmp(r, "HTTP/1.1 ", 9) == 0 ? atoi(r + 9) : 0;
        if (got != want || (why && !strstr(r, why)))
            fprintf(stderr, "%s (split at %zu): got %.60s\n", head, cut, r);
        CHECK_EQ_INT(got, want);
        free(r);
    }
}

TEST(header_names_and_folding)
{
    const char *bad_name[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nX A: b",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A : b",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A  : b",
        "GET / HTTP/1.1\r\nHost: x\r\n: b",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad_name); i++)
        check_head(bad_name[i], 400, i == 4 ? NULL : "invalid header name"); /* 4: llhttp too */
    const char *folded[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A:\r\n c",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: \r\n  c",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n ",
        "GET / HTTP/1.1\r\nHost: x\r\n X-A: b",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(folded); i++)
        check_head(folded[i], 400, "obs-fold");
    /* llhttp itself refuses these (whitespace before the first header, a tab in a name) */
    check_head("GET / HTTP/1.1\r\n X-A: b", 400, NULL);
    check_head("GET / HTTP/1.1\r\nX-A\t: b", 400, NULL);
    const char *good[] = {
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: b c",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A:b",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A:\tb \t",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A:   b  c  ",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A:\r\nX-B: c",
        "GET / HTTP/1.1\r\nHost: x\r\nX-!#$%&'*+.^_`|~09: b",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(good); i++)
        check_head(good[i], 200, NULL);
    /* trailers of a chunked body are header lines too */
    const char trailer[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "1\r\na\r\n0\r\nT A: b\r\n\r\n";
    char *r = exchange(trailer, sizeof(trailer) - 1, 1);
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    free(r);
    const char tfold[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1\r\na\r\n0\r\nT: a\r\n b\r\n\r\n";
    r = exchange(tfold, sizeof(tfold) - 1, 1);
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    free(r);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Out of descriptors, the server must not spin on the listener (the pending connection keeps
 * it readable): it pauses accepting and takes the connection once a descriptor is free. A
 * spinning loop uses a good part of a core even on a loaded machine; a paused one next to
 * nothing. */
TEST(accept_pauses_when_out_of_fds)
{
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    int probe = open("/dev/null", O_RDONLY);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe + 48;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int fill[64], n = 0, fd;
    while (n < 64 && (fd = open("/dev/null", O_RDONLY)) >= 0)
        fill[n++] = fd;
    CHECK(n > 2 && n < 64);
    close(fill[--n]); /* room for the client's socket only */
    int cl = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(cl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    CHECK(connect(cl, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    const char req[] = "GET /fds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(write(cl, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
    double cpu0 = cpu_seconds();
    usleep(1000000);
    double spent = cpu_seconds() - cpu0;
    if (spent >= 0.05)
        fprintf(stderr, "the server used %.3f s of CPU while out of descriptors\n", spent);
    CHECK(spent < 0.05);
    while (n > 0)
        close(fill[--n]);
    char buf[512] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(buf) - 1 && (r = read(cl, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)r;
    close(cl);
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    CHECK(strstr(buf, "GET /fds body=0") != NULL);
}

TEST(header_timeout)
{
    char *r = exchange("GET / HTTP/1.1\r\nHost: x\r\n", 25, 1);
    CHECK(strncmp(r, "HTTP/1.1 408 ", 13) == 0);
    free(r);
}

int main(void)
{
    uv_sem_init(&ready, 0);
    uv_thread_t t;
    uv_thread_create(&t, server_thread, NULL);
    uv_sem_wait(&ready);
    RUN(accept_pauses_when_out_of_fds); /* first: no server-side socket of a test still closing */
    RUN(simple_and_cors);
    RUN(pipelined_in_order);
    RUN(pipelined_behind_async);
    RUN(streamed_answer_framing);
    RUN(chunked_body);
    RUN(head_has_no_body);
    RUN(expect_continue);
    RUN(limits);
    RUN(malformed);
    RUN(header_names_and_folding);
    RUN(header_timeout);
    uv_async_send(&stop_async);
    uv_thread_join(&t);
    CHECK(completed > 10);
    return TEST_REPORT();
}
