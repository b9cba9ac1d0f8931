/*
 * pieces-gateway: a fixed-count HTTP/1.1 keep-alive load client for the deterministic benchmarks.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * nreq -n TOTAL [-c CONNS] [-H 'Name: value']... [-p PATH] HOST PORT
 *
 * Opens CONNS keep-alive connections (all before the first request), then sends exactly TOTAL
 * GET requests in a closed loop (one outstanding request per connection, no pipelining) and
 * waits for every response: so a server traced over the run saw exactly TOTAL requests, which
 * wrk (fixed duration, in-flight requests dropped at the end) cannot promise. Responses must
 * carry Content-Length (chunked bodies are read too). Prints one line:
 *   requests=N seconds=S non2xx=K
 * and exits 1 when any response was not 2xx or a connection failed. Built by bench/lib/common.sh
 * (cc -O2) into the bench temp dir; it is not part of the gateway.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define BUF_CAP (1 << 20)

typedef struct {
    int fd;
    char *buf;
    size_t len;
} conn_t;

static char req_text[8192];
static size_t req_len;
static long sent, done, total, non2xx;

static void die(const char *what)
{
    fprintf(stderr, "nreq: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("HOST must be an IPv4 address");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_one(conn_t *c)
{
    size_t off = 0;
    while (off < req_len) {
        ssize_t n = write(c->fd, req_text + off, req_len - off);
        if (n <= 0)
            die("write");
        off += (size_t)n;
    }
    sent++;
}

/* Length of the chunked body starting at p (n bytes), or -1 while incomplete. */
static long chunked_len(const char *p, size_t n)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, n - off, "\r\n", 2);
        if (!eol)
            return -1;
        unsigned long sz = strtoul(p + off, NULL, 16);
        off = (size_t)(eol - p) + 2 + sz + 2;
        if (off > n)
            return -1;
        if (sz == 0)
            return (long)off;
    }
}

/* Bytes of the complete response at the start of c->buf, or 0 while incomplete. */
static size_t complete_len(conn_t *c)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4;
    const char *cl = memmem(c->buf, head, "\r\nContent-Length:", 17);
    if (!cl)
        cl = memmem(c->buf, head, "\r\ncontent-length:", 17);
    if (cl) {
        size_t body = strtoul(cl + 17, NULL, 10);
        return c->len >= head + body ? head + body : 0;
    }
    if (memmem(c->buf, head, "chunked", 7)) {
        long b = chunked_len(c->buf + head, c->len - head);
        return b < 0 ? 0 : head + (size_t)b;
    }
    errno = 0;
    die("a response without Content-Length or chunked body");
    return 0;
}

static void on_readable(conn_t *c)
{
    ssize_t n = read(c->fd, c->buf + c->len, BUF_CAP - c->len);
    if (n <= 0) {
        errno = n == 0 ? 0 : errno;
        die(n == 0 ? "the server closed a connection" : "read");
    }
    c->len += (size_t)n;
    size_t r;
    while ((r = complete_len(c)) > 0) {
        if (c->len < 12 || c->buf[9] != '2')
            non2xx++;
        memmove(c->buf, c->buf + r, c->len - r);
        c->len -= r;
        done++;
        if (sent < total)
            send_one(c);
    }
    if (c->len == BUF_CAP) {
        errno = 0;
        die("a response larger than 1 MiB");
    }
}

/* Connects all n connections (before the clock starts); returns the epoll fd. */
static int open_conns(conn_t *cs, int n, const char *host, int port)
{
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        cs[i].fd = connect_to(host, port);
        cs[i].buf = malloc(BUF_CAP);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        if (!cs[i].buf || epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
            die("epoll_ctl");
    }
    return ep;
}

/* Until every response arrived (each one sends the connection's next request). */
static void run(int ep)
{
    struct epoll_event evs[256];
    while (done < total) {
        int n = epoll_wait(ep, evs, 256, 60000);
        if (n == 0) {
            errno = 0;
            die("no response for 60 s");
        }
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++)
            on_readable(evs[i].data.ptr);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: nreq -n TOTAL [-c CONNS] [-H 'Name: value']... [-p PATH] HOST PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int conns = 64, opt;
    const char *path = "/";
    char headers[4096] = "";
    while ((opt = getopt(argc, argv, "n:c:H:p:")) != -1) {
        if (opt == 'n')
            total = atol(optarg);
        else if (opt == 'c')
            conns = atoi(optarg);
        else if (opt == 'p')
            path = optarg;
        else if (opt == 'H' && strlen(headers) + strlen(optarg) + 3 < sizeof(headers))
            strcat(strcat(headers, optarg), "\r\n");
        else
            usage();
    }
    if (optind + 2 != argc || total <= 0 || conns <= 0 || conns > MAX_CONNS)
        usage();
    const char *host = argv[optind];
    int port = atoi(argv[optind + 1]);
    req_len =
        (size_t)snprintf(req_text, sizeof(req_text), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n",
                         path, host, port, headers);
    if (conns > total)
        conns = (int)total;
    static conn_t cs[MAX_CONNS];
    int ep = open_conns(cs, conns, host, port);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < conns; i++)
        send_one(&cs[i]);
    run(ep);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("requests=%ld seconds=%.3f non2xx=%ld\n", done,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, non2xx);
    for (int i = 0; i < conns; i++)
        close(cs[i].fd);
    return non2xx ? 1 : 0;
}
