/*
 * pieces-gateway: the core gw_ffi_* functions (request access, answers, host services).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: the request-path half of src/gw_ffi.h. Uses: http, log, env, process, jsontext.
 * Never: calls back into Lua, or sends on the socket while Lua is running (answers are
 * recorded in the request and sent by C after the Lua call returns).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "gw.h"
#include "gw_ffi.h"
#include "http.h"
#include "jsontext.h"
#include "log.h"
#include "process.h"

/* The C names and the seam's (src/gw_ffi.h) are one set of numbers. */
_Static_assert(GW_SAME(GW_OK, GW_FFI_OK) && GW_SAME(GW_ESTATE, GW_FFI_EPERM) &&
                   GW_SAME(GW_ENOENT, GW_FFI_ENOENT) && GW_SAME(GW_ERROR, GW_FFI_EIO) &&
                   GW_SAME(GW_EAGAIN, GW_FFI_EAGAIN) && GW_SAME(GW_ENOMEM, GW_FFI_ENOMEM) &&
                   GW_SAME(GW_EEXIST, GW_FFI_EEXIST) && GW_SAME(GW_EINVAL, GW_FFI_EINVAL),
               "gw.h statuses vs gw_ffi.h");
_Static_assert(GW_SAME(GW_LOG_DEBUG, GW_FFI_LOG_DEBUG) && GW_SAME(GW_LOG_INFO, GW_FFI_LOG_INFO) &&
                   GW_SAME(GW_LOG_WARN, GW_FFI_LOG_WARN) && GW_SAME(GW_LOG_ERROR, GW_FFI_LOG_ERROR),
               "log.h levels vs gw_ffi.h");

int gw_ffi_req_str(void *req, int what, const char **p, size_t *len)
{
    gw_req_t *r = req;
    switch (what) {
    case GW_FFI_REQ_METHOD:
        *p = r->method_name ? r->method_name : "";
        *len = strlen(*p);
        return GW_OK;
    case GW_FFI_REQ_PATH:
        *p = r->path ? r->path : "/";
        *len = r->path ? r->path_len : 1;
        return GW_OK;
    case GW_FFI_REQ_URI:
        *p = gw_req_url(r, len);
        return GW_OK;
    case GW_FFI_REQ_QUERY:
        *p = r->query;
        *len = r->query_len;
        return GW_OK;
    case GW_FFI_REQ_BODY:
        *p = r->body.data ? r->body.data : "";
        *len = r->body.len;
        return GW_OK;
    case GW_FFI_REQ_PEER_IP:
        *p = r->peer_ip;
        *len = strlen(r->peer_ip);
        return GW_OK;
    case GW_FFI_REQ_CLIENT_IP:
        *p = r->client_ip;
        *len = strlen(r->client_ip);
        return GW_OK;
    default:
        return GW_EINVAL;
    }
}

int gw_ffi_req_header(void *req, const char *name, size_t nlen, const char **p, size_t *len)
{
    *p = gw_req_header(req, name, nlen, len);
    return *p ? GW_OK : GW_ENOENT;
}

int gw_ffi_req_set_path(void *req, const char *p, size_t len)
{
    if (len == 0 || p[0] != '/')
        return GW_EINVAL;
    gw_req_set_path(req, p, len);
    return GW_OK;
}

int gw_ffi_req_set_log_model(void *req, const char *p, size_t len)
{
    gw_req_t *r = req;
    free(r->log_model);
    r->log_model = gw_strndup(p, len);
    return GW_OK;
}

int gw_ffi_resp_header(void *req, const char *n, size_t nl, const char *v, size_t vl)
{
    gw_req_t *r = req;
    if (r->started)
        return GW_ESTATE;
    gw_resp_add_header(r, n, nl, v, vl);
    return GW_OK;
}

int gw_ffi_resp_answer(void *req, int status, const char *ctype, size_t ctlen, const char *body,
                       size_t blen)
{
    gw_req_t *r = req;
    if (r->started || r->answered)
        return GW_ESTATE;
    if (status < 100 || status > 599)
        return GW_EINVAL;
    r->answered = 1;
    r->answer_status = status;
    free(r->answer_ctype);
    r->answer_ctype = ctlen ? gw_strndup(ctype, ctlen) : NULL;
    gw_buf_reset(&r->answer_body);
    gw_buf_append(&r->answer_body, body, blen);
    return GW_OK;
}

int gw_ffi_resp_error(void *req, int status, const char *code, size_t clen, const char *msg,
                      size_t mlen, const char *type, size_t tlen)
{
    gw_buf_t b;
    gw_buf_init(&b);
    gw_openai_error_json(&b, msg, mlen, type, tlen, code, clen);
    int rc = gw_ffi_resp_answer(req, status, "application/json", 16, b.data, b.len);
    gw_buf_dispose(&b);
    return rc;
}

int gw_ffi_resp_status(void *req)
{
    gw_req_t *r = req;
    return r->status ? r->status : r->answer_status;
}

double gw_ffi_now(void) { return gw_wall_time(); }

int gw_ffi_log(int level, const char *msg, size_t len)
{
    if (level < GW_LOG_DEBUG || level > GW_LOG_ERROR)
        return GW_EINVAL;
    gw_log_write((gw_log_level_t)level, msg, len);
    return GW_OK;
}

int gw_ffi_debug_enabled(void) { return gw_log_debug_enabled(); }

int gw_ffi_env(const char *name, const char **p, size_t *len)
{
    const char *v = gw_env_raw(name);
    if (!v)
        return GW_ENOENT;
    *p = v;
    *len = strlen(v);
    return GW_OK;
}

int gw_ffi_parse_int(const char *s, long long *out) { return gw_parse_int(s, out); }
int gw_ffi_parse_num(const char *s, double *out) { return gw_parse_num(s, out); }
int gw_ffi_parse_bool(const char *s, int *out) { return gw_parse_bool(s, out); }

int gw_ffi_random_bytes(unsigned char *buf, size_t n) { return gw_random_bytes(buf, n); }

/* 1 when equal. The time depends on the length of b (the secret) only, never on where the
 * bytes differ. */
int gw_ffi_secure_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Every byte of the secret b is read once; a (the client's token) is read cyclically,
     * its index wrapped without a division (the branch depends on alen, which the client
     * knows). */
    volatile unsigned char diff = alen != blen;
    size_t j = 0;
    for (size_t i = 0; i < blen; i++) {
        diff |= (unsigned char)(b[i] ^ (alen ? a[j] : 0));
        if (++j >= alen)
            j = 0;
    }
    return diff == 0;
}

int gw_ffi_persist(const char *path, size_t plen, const char *data, size_t dlen)
{
    return gw_persist(path, plen, data, dlen);
}

int gw_ffi_reload(void)
{
    gw_request_reload("admin request");
    return GW_OK;
}

int gw_ffi_status(char *buf, size_t cap) { return gw_status_json(buf, cap); }

int gw_ffi_file_info(const char *path, size_t plen, long long *size, double *mtime)
{
    char buf[PATH_MAX];
    if (plen == 0 || plen >= sizeof(buf) || memchr(path, '\0', plen))
        return GW_EINVAL;
    memcpy(buf, path, plen);
    buf[plen] = '\0';
    struct stat st;
    if (stat(buf, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? GW_ENOENT : GW_ERROR;
    if (!S_ISREG(st.st_mode))
        return GW_EINVAL;
    *size = (long long)st.st_size;
    *mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
    return GW_OK;
}

int gw_ffi_json_text_check(const char *s, size_t len, size_t *at)
{
    return gw_json_text_check(s, len, at);
}
