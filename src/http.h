/*
 * pieces-gateway: the HTTP/1.1 server side (libuv + llhttp).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * One gw_http_server_t per worker loop; not thread-safe (everything runs on that loop).
 * The server parses requests (keep-alive, pipelining answered in order, chunked bodies,
 * Expect: 100-continue), enforces the limits (431, 413, 408, 400, max connections) and hands
 * each complete request to on_request. The handler answers with gw_resp_send (whole body) or
 * gw_resp_start/gw_resp_write/gw_resp_end (chunked). When the response is complete the server
 * calls on_complete (log phase, access log) and frees the request.
 *
 * Lifetime: a gw_req_t belongs to the server. If the client goes away while a request is being
 * handled, req->on_abort is called once (the handler cancels its work and must not touch the
 * request afterwards) and the request is freed. on_complete may keep the request beyond its
 * connection (a log phase that waits for I/O): it sets req->held, the server detaches it
 * (req->conn becomes NULL: nothing can be sent any more) and the handler frees it later with
 * gw_req_free.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "ipaddr.h"

typedef struct gw_http_server_s gw_http_server_t;
typedef struct gw_conn_s gw_conn_t;
typedef struct gw_req_s gw_req_t;

typedef struct {
    size_t name_off, name_len, value_off, value_len; /* offsets into req->head */
} gw_header_t;

/* Where the usage numbers of an answer came from. */
enum { GW_USAGE_NONE = 0, GW_USAGE_UPSTREAM = 1, GW_USAGE_TOKENIZER = 2 };

/* What a request did, recorded by its handlers while it runs and read once when it completes
 * (access log, metrics). Plain values owned by the request; strings are copied in (truncated
 * to the array size), so nothing here outlives or borrows from a VM or a backend. */
typedef struct {
    char route[32];              /* matched route name ("chat", "models", ...); "" = none */
    char backend[32];            /* backend that served the LLM call; "" = none */
    char model[64];              /* metrics label: the catalog model the client's model name
                                    resolved to ("other": none); "" = not set */
    char ingress[16];            /* ingress format ("chat", "messages", "responses"); "" */
    int llm;                     /* 1 if this request made an LLM call */
    int stream;                  /* the client asked for a stream */
    int usage_source;            /* GW_USAGE_* */
    long long prompt_tokens, completion_tokens;
    uint64_t first_token_ns;     /* monotonic ns of the first content byte sent; 0 = none */
    int attempts;                /* upstream attempts made (retries and fallbacks included) */
} gw_req_stats_t;

struct gw_req_s {
    gw_conn_t *conn;
    uint64_t id;                 /* unique per process */
    uint64_t start_ns;
    int method;                  /* llhttp_method_t */
    const char *method_name;     /* static string */
    int http_major, http_minor;
    int keep_alive;
    int head_only;               /* HEAD: no body is sent */
    gw_buf_t head;               /* url + header names/values, concatenated */
    size_t url_len;              /* the url is head[0..url_len) */
    gw_header_t *headers;
    size_t n_headers, cap_headers;
    char *path;                  /* current path (owned; rewrites replace it) */
    size_t path_len;
    const char *query;           /* points into head, without '?'; "" if none */
    size_t query_len;
    gw_buf_t body;
    gw_ip_t peer;
    char peer_ip[GW_IP_TEXT_MAX];
    char client_ip[GW_IP_TEXT_MAX];

    /* response */
    int status;
    gw_buf_t resp_headers;       /* extra "Name: value\r\n" lines added by policies/handlers */
    int started;                 /* response head written */
    int finished;
    int chunked;                 /* gw_resp_start to an HTTP/1.1 client (1.0: close-delimited) */
    uint64_t bytes_sent;
    char *log_model;             /* for the access log (owned) */
    gw_req_stats_t stats;        /* for the access log and the metrics */

    /* handler state: data is freed with data_free when the request is freed */
    void *data;
    void (*data_free)(void *data);
    void (*on_abort)(gw_req_t *req);
    void *vm;                    /* the Lua VM this request runs on (refcounted by the host) */
    void *wait;                  /* a Lua phase suspended on I/O (lua_host.c), or NULL */
    int held;                    /* set by on_complete: the handler frees it (gw_req_free) */
    /* An answer recorded by Lua (sent by C once the Lua call has returned). */
    int answered;
    int answer_status;
    char *answer_ctype;
    gw_buf_t answer_body;
};

typedef struct {
    size_t max_connections;      /* per process */
    size_t max_header_size;
    size_t max_body_size;
    double header_timeout;       /* seconds */
    double keepalive_timeout;
    const gw_cidr_list_t *trusted_proxies;
    void (*on_request)(gw_req_t *req, void *ud);
    void (*on_complete)(gw_req_t *req, void *ud);
    /* Optional: the JSON body of an error the gateway makes (gw_resp_send_error: the HTTP
     * layer's 408/413/400, the worker's and the routes' 404/405...) in the API shape of the
     * request's path (default: gw_openai_error_json). */
    void (*error_body)(const gw_req_t *req, gw_buf_t *out, int status, const char *code,
                       const char *message, const char *type, void *ud);
    void *ud;
} gw_http_conf_t;

/* Listen on host:port with SO_REUSEPORT. 0, or negative with *err (caller frees). */
int gw_http_server_start(uv_loop_t *loop, const char *host, int port, const gw_http_conf_t *conf,
                         gw_http_server_t **out, char **err);
/* A server without a listener (tests, fuzz drivers): connections come from
 * gw_http_server_adopt. Free it as any server (gw_http_server_free, then _release). */
gw_http_server_t *gw_http_server_new(uv_loop_t *loop, const gw_http_conf_t *conf);
/* Serve the connected stream socket fd (a TCP socket or one end of a socketpair); the server
 * owns fd from now on. peer (may be NULL: 0.0.0.0) is its address for the request's peer. */
struct sockaddr_storage;
void gw_http_server_adopt(gw_http_server_t *s, int fd, const struct sockaddr_storage *peer);
/* Connections open, closing ones included (0 once every close callback ran). */
size_t gw_http_server_connections(const gw_http_server_t *s);
/* Stop accepting; close idle connections; active requests finish with Connection: close.
 * on_drained is called (once) when no connection is left. */
void gw_http_server_drain(gw_http_server_t *s, void (*on_drained)(void *ud), void *ud);
/* Close everything at once (after drain or at exit) and free the server. */
void gw_http_server_free(gw_http_server_t *s);
/* Free the struct itself, once the loop has run the close callbacks of gw_http_server_free. */
void gw_http_server_release(gw_http_server_t *s);

/* Frees this thread's pool of request structs (also run by itself when the thread ends,
 * see freelist.h). */
void gw_http_pools_drain(void);

/* Free a request kept by on_complete (req->held). */
void gw_req_free(gw_req_t *r);

/* Request accessors. */
const char *gw_req_header(const gw_req_t *r, const char *name, size_t nlen, size_t *vlen);
void gw_req_set_path(gw_req_t *r, const char *path, size_t len);
const char *gw_req_url(const gw_req_t *r, size_t *len);

/* Response. Headers added with gw_resp_add_header go out with whatever response is sent. */
void gw_resp_add_header(gw_req_t *r, const char *name, size_t nlen, const char *value, size_t vlen);
void gw_resp_send(gw_req_t *r, int status, const char *content_type, const char *body, size_t len);
/* An error answer in the shape gw_http_conf_t.error_body gives (OpenAI's by default). */
void gw_resp_send_error(gw_req_t *r, int status, const char *code, const char *message,
                        const char *type);
/* {"error":{"message":..,"type":..,"code":..}}: the OpenAI error envelope, built here and
 * nowhere else (the C handlers, the chat engine's formats, Lua's r.resp:error, the host's 500).
 * type "" or NULL is "error"; invalid UTF-8 becomes U+FFFD. Appended to out. */
void gw_openai_error_json(gw_buf_t *out, const char *message, size_t mlen, const char *type,
                          size_t tlen, const char *code, size_t clen);
void gw_resp_start(gw_req_t *r, int status, const char *content_type);
void gw_resp_write(gw_req_t *r, const char *data, size_t len);
void gw_resp_end(gw_req_t *r);
/* Open client connections of the process (all servers). */
size_t gw_http_open_connections(void);
/* Bytes queued on the client socket and not yet written (for backpressure). */
size_t gw_resp_queued(const gw_req_t *r);
/* Called when the client socket's write queue drains below the low-water mark. */
void gw_resp_on_drain(gw_req_t *r, void (*cb)(gw_req_t *r), size_t low_water);
const char *gw_http_status_text(int status);

#endif
