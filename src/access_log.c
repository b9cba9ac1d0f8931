/*
 * pieces-gateway: the access log line of a completed request (the seed's text, or JSON).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_access_log. Uses: log, http (the request and its stats record).
 * Never: logs a request header (API keys travel in them) or anything from the body.
 */
#include "access_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "gw.h"
#include "log.h"

static const char *client_of(const gw_req_t *req)
{
    return req->client_ip[0] ? req->client_ip : req->peer_ip;
}

/* " Ingress=<format>" for the Anthropic and Responses paths; "" for chat completions and
 * everything else, so the seed's line stays as it was. */
static void ingress_suffix(const gw_req_t *req, char *out, size_t cap)
{
    const char *in = req->stats.ingress;
    if (in[0] && strcmp(in, "chat") != 0)
        snprintf(out, cap, " Ingress=%s", in);
    else
        out[0] = '\0';
}

static void text_line(const gw_req_t *req, uint64_t now)
{
    char dur[48], ing[32];
    gw_log_format_duration(dur, sizeof(dur), now - req->start_ns);
    ingress_suffix(req, ing, sizeof(ing));
    size_t ul;
    const char *uri = gw_req_url(req, &ul);
    const char *method = req->method_name ? req->method_name : "-";
    if (req->log_model && req->stats.llm && req->stats.backend[0])
        gw_log(GW_LOG_ACCESS,
               "%s %.*s model=%s IP=%s Status=%d Duration=%s Backend=%s Usage=%s%s", method,
               (int)ul, uri, req->log_model, client_of(req), req->status, dur, req->stats.backend,
               req->stats.usage_source == GW_USAGE_UPSTREAM ? "upstream" : "tokenizer", ing);
    else if (req->log_model)
        gw_log(GW_LOG_ACCESS, "%s %.*s model=%s IP=%s Status=%d Duration=%s%s", method, (int)ul,
               uri, req->log_model, client_of(req), req->status, dur, ing);
    else
        gw_log(GW_LOG_ACCESS, "%s %.*s IP=%s Status=%d Duration=%s%s", method, (int)ul, uri,
               client_of(req), req->status, dur, ing);
}

static void put_str(gw_buf_t *b, const char *key, const char *v, size_t n)
{
    gw_buf_printf(b, ",\"%s\":", key);
    if (!v) {
        gw_buf_puts(b, "null");
        return;
    }
    gw_buf_json_str(b, v, n);
}

static void put_cstr(gw_buf_t *b, const char *key, const char *v)
{
    put_str(b, key, v && *v ? v : NULL, v ? strlen(v) : 0);
}

/* "2026-01-02T03:04:05.678Z" */
static void put_time(gw_buf_t *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[40];
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    gw_buf_printf(b, "{\"time\":\"%s.%03dZ\"", t, (int)(ts.tv_nsec / 1000000));
}

static const char *usage_name(int source)
{
    return source == GW_USAGE_UPSTREAM ? "upstream" : source == GW_USAGE_TOKENIZER ? "tokenizer"
                                                                                   : NULL;
}

static void json_llm(gw_buf_t *b, const gw_req_t *req)
{
    const gw_req_stats_t *st = &req->stats;
    if (!st->llm) {
        gw_buf_puts(b, ",\"backend\":null,\"stream\":null,\"prompt_tokens\":null,"
                       "\"completion_tokens\":null,\"usage_source\":null,\"ttft_ms\":null,"
                       "\"attempts\":null}");
        return;
    }
    put_cstr(b, "backend", st->backend);
    gw_buf_printf(b, ",\"stream\":%s", st->stream ? "true" : "false");
    if (st->usage_source != GW_USAGE_NONE)
        gw_buf_printf(b, ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld", st->prompt_tokens,
                      st->completion_tokens);
    else
        gw_buf_puts(b, ",\"prompt_tokens\":null,\"completion_tokens\":null");
    put_cstr(b, "usage_source", usage_name(st->usage_source));
    if (st->first_token_ns >= req->start_ns && st->first_token_ns)
        gw_buf_printf(b, ",\"ttft_ms\":%.3f", (double)(st->first_token_ns - req->start_ns) / 1e6);
    else
        gw_buf_puts(b, ",\"ttft_ms\":null");
    gw_buf_printf(b, ",\"attempts\":%d}", st->attempts);
}

static void json_line(const gw_req_t *req, uint64_t now)
{
    gw_buf_t b;
    gw_buf_init(&b);
    put_time(&b);
    put_cstr(&b, "client_ip", client_of(req));
    put_cstr(&b, "method", req->method_name);
    size_t ul;
    const char *uri = gw_req_url(req, &ul);
    put_str(&b, "uri", uri, ul);
    put_cstr(&b, "route", req->stats.route);
    put_cstr(&b, "ingress", req->stats.ingress);
    gw_buf_printf(&b, ",\"status\":%d,\"duration_ms\":%.3f", req->status,
                  (double)(now - req->start_ns) / 1e6);
    put_cstr(&b, "model", req->log_model);
    json_llm(&b, req);
    gw_log_access_raw(b.data, b.len);
    gw_buf_dispose(&b);
}

void gw_access_log(const gw_req_t *req, int json)
{
    if (!gw_log_access_enabled())
        return;
    uint64_t now = gw_now_ns();
    if (now < req->start_ns)
        now = req->start_ns;
    if (json)
        json_line(req, now);
    else
        text_line(req, now);
}
