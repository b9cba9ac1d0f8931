/*
 * pieces-gateway: a growable byte buffer.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * gw_buf_t is embedded (init/dispose). Not thread-safe; owned by whoever embeds it.
 * The data is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} gw_buf_t;

void gw_buf_init(gw_buf_t *b);
void gw_buf_dispose(gw_buf_t *b);
void gw_buf_reset(gw_buf_t *b);
void gw_buf_reserve(gw_buf_t *b, size_t extra);
void gw_buf_append(gw_buf_t *b, const void *p, size_t n);
void gw_buf_puts(gw_buf_t *b, const char *s);
void gw_buf_putc(gw_buf_t *b, char c);
void gw_buf_printf(gw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gw_buf_vprintf(gw_buf_t *b, const char *fmt, va_list ap);
/* Append an unsigned integer in decimal (no printf). */
void gw_buf_put_uint(gw_buf_t *b, unsigned long long v);
/* Length (1..4) of the well-formed UTF-8 sequence at s[0..n), n >= 1, or 0 when it is not one
 * (overlong, a surrogate, above U+10FFFF, a stray continuation byte, or cut short by n). */
size_t gw_utf8_seq(const unsigned char *s, size_t n);
/* Append s as the inside of a JSON string (quotes not added); invalid UTF-8 becomes U+FFFD. */
void gw_buf_json_escape(gw_buf_t *b, const char *s, size_t n);
/* Append s as a quoted JSON string (gw_buf_json_escape inside quotes); NULL is "". */
void gw_buf_json_str(gw_buf_t *b, const char *s, size_t n);
/* Drop the first n bytes. */
void gw_buf_consume(gw_buf_t *b, size_t n);
/* Take ownership of the data (caller frees); the buffer is reset to empty. */
char *gw_buf_steal(gw_buf_t *b, size_t *len);

/* A per-thread cache of spare buffer storage, for buffers that live as long as one response
 * (a connection's output, a stream's event scratch): gw_buf_recycle is gw_buf_dispose that
 * keeps the storage (up to GW_BUF_CACHE_MAX bytes, GW_BUF_CACHE_N buffers per thread) for the
 * next gw_buf_prime, which gives an empty buffer without storage a cached one (any size; a
 * buffer that has storage is left as it is). An idle owner holds nothing. gw_buf_cache_drain
 * frees the thread's cache (run when a thread that served HTTP or chat ends). */
#define GW_BUF_CACHE_MAX 16384
#define GW_BUF_CACHE_N 32
void gw_buf_recycle(gw_buf_t *b);
void gw_buf_prime(gw_buf_t *b);
void gw_buf_cache_drain(void);

#endif
