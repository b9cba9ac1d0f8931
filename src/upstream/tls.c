/*
 * pieces-gateway: the TLS transport vtable (OpenSSL over memory BIOs).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: the client SSL_CTX (TLS >= 1.2, ALPN h2, system or given CAs), per-connection
 *   SSL with SNI (names only, never IP literals, RFC 6066) and host-name or IP verification.
 * Uses: OpenSSL 3 with memory BIOs; the socket stays with transport.c.
 * Must never: skip verification unless the pool was created with insecure; leave a stale
 *   entry in the thread's OpenSSL error queue (other connections share it).
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_upstream.h"
#include "transport.h"

typedef struct {
    SSL *ssl;
    int hs_done;
} tls_t;

static const unsigned char ALPN_H2[] = {2, 'h', '2'};

int gw_tls_ctx_new(const char *ca_file, int insecure, SSL_CTX **out, char **err)
{
    char buf[300];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx)
        goto fail_ssl;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_alpn_protos(ctx, ALPN_H2, sizeof(ALPN_H2)) != 0)
        goto fail_ssl;
    if (ca_file && *ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
            goto fail_ssl;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto fail_ssl;
    }
    SSL_CTX_set_verify(ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    *out = ctx;
    return 0;

fail_ssl:
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    ERR_clear_error();
    SSL_CTX_free(ctx);
    if (err) {
        size_t n = strlen(buf) + (ca_file ? strlen(ca_file) : 0) + 64;
        *err = malloc(n);
        if (*err)
            snprintf(*err, n, "TLS setup failed%s%s: %s", ca_file && *ca_file ? " loading " : "",
                     ca_file && *ca_file ? ca_file : "", buf);
    }
    return -EINVAL;
}

/* Moves what OpenSSL wrote into the write BIO to the transport's out buffer. */
static int drain_wbio(gw_transport_t *t)
{
    tls_t *s = t->impl;
    BIO *wbio = SSL_get_wbio(s->ssl);
    size_t pending;
    while ((pending = BIO_ctrl_pending(wbio)) > 0) {
        if (gw_transport_out_reserve(t, pending) != 0)
            return -ENOMEM;
        int n = BIO_read(wbio, t->out + t->out_len, (int)pending);
        if (n <= 0)
            break;
        t->out_len += (size_t)n;
    }
    return 0;
}

static void fail_tls(gw_transport_t *t, const char *what)
{
    tls_t *s = t->impl;
    char buf[256];
    long vr = SSL_get_verify_result(s->ssl);
    unsigned long e = ERR_get_error();

    if (vr != X509_V_OK)
        gw_transport_fail(t, GW_GRPC_ERR_TLS, "TLS %s with %s:%d: certificate verify failed: %s",
                          what, t->host, t->port, X509_verify_cert_error_string(vr));
    else {
        ERR_error_string_n(e, buf, sizeof(buf));
        gw_transport_fail(t, GW_GRPC_ERR_TLS, "TLS %s with %s:%d failed: %s", what, t->host,
                          t->port, e ? buf : "unexpected end of handshake");
    }
    ERR_clear_error();
}

static int handshake(gw_transport_t *t)
{
    tls_t *s = t->impl;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    int rc;

    ERR_clear_error();
    rc = SSL_do_handshake(s->ssl);
    drain_wbio(t);
    gw_transport_flush(t);
    if (rc != 1) {
        int e = SSL_get_error(s->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        fail_tls(t, "handshake");
        return -EPROTO;
    }
    SSL_get0_alpn_selected(s->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        gw_transport_fail(t, GW_GRPC_ERR_TLS, "TLS with %s:%d: server did not select h2 (ALPN)",
                          t->host, t->port);
        return -EPROTO;
    }
    s->hs_done = 1;
    t->ready = 1;
    t->ev->on_ready(t);
    return 0;
}

static int setup_verification(gw_transport_t *t, SSL *ssl)
{
    if (!t->is_ip && SSL_set_tlsext_host_name(ssl, t->host) != 1)
        return -1;
    if (t->insecure)
        return 0;
    if (t->is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->host) == 1 ? 0 : -1;
    return SSL_set1_host(ssl, t->host) == 1 ? 0 : -1;
}

static int tls_connect(gw_transport_t *t)
{
    tls_t *s = calloc(1, sizeof(*s));
    BIO *rbio = NULL, *wbio = NULL;

    if (!s)
        goto fail;
    t->impl = s;
    s->ssl = SSL_new(t->ssl_ctx);
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (!s->ssl || !rbio || !wbio)
        goto fail;
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(s->ssl, rbio, wbio);
    rbio = wbio = NULL;
    if (setup_verification(t, s->ssl) != 0)
        goto fail;
    SSL_set_connect_state(s->ssl);
    return handshake(t);

fail:
    BIO_free(rbio);
    BIO_free(wbio);
    gw_transport_fail(t, GW_GRPC_ERR_TLS, "TLS setup for %s failed", t->host);
    ERR_clear_error();
    return -ENOMEM;
}

static int tls_read(gw_transport_t *t, const uint8_t *p, size_t n)
{
    tls_t *s = t->impl;
    uint8_t buf[16384];

    if (BIO_write(SSL_get_rbio(s->ssl), p, (int)n) != (int)n) {
        gw_transport_fail(t, GW_GRPC_ERR_NOMEM, "TLS buffer allocation failed");
        return -ENOMEM;
    }
    if (!s->hs_done && (handshake(t) != 0 || !s->hs_done))
        return 0;
    while (!t->closing && !t->failed) {
        ERR_clear_error();
        int r = SSL_read(s->ssl, buf, sizeof(buf));
        if (r > 0) {
            t->ev->on_data(t, buf, (size_t)r);
            continue;
        }
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN)
            gw_transport_fail(t, GW_GRPC_ERR_EOF, "connection closed by peer (TLS close_notify)");
        else
            fail_tls(t, "read");
        return -EPROTO;
    }
    if (!t->closing && !t->failed) {
        drain_wbio(t); /* TLS 1.3 key updates, alerts */
        if (t->out_len)
            gw_transport_flush(t);
    }
    return 0;
}

static int tls_write(gw_transport_t *t, const uint8_t *p, size_t n)
{
    tls_t *s = t->impl;
    if (!s || !s->hs_done)
        return -ENOTCONN;
    while (n > 0) {
        ERR_clear_error();
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int r = SSL_write(s->ssl, p, chunk);
        if (r <= 0) {
            fail_tls(t, "write");
            return -EPROTO;
        }
        p += r;
        n -= (size_t)r;
    }
    return drain_wbio(t);
}

static void tls_close(gw_transport_t *t)
{
    tls_t *s = t->impl;
    if (!s)
        return;
    SSL_free(s->ssl);
    free(s);
    t->impl = NULL;
}

const gw_transport_vt_t gw_transport_tls = {"tls", tls_connect, tls_read, tls_write, tls_close};
