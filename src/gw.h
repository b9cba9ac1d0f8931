/*
 * pieces-gateway: definitions shared by every C module (status codes, small helpers).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

/* Status convention: 0 on success, a negative GW_E* on failure. */
#define GW_OK 0
#define GW_ERROR (-1)    /* generic failure, see the err message */
#define GW_ENOMEM (-2)   /* allocation failed */
#define GW_EINVAL (-3)   /* invalid argument or value */
#define GW_ENOENT (-4)   /* not found */
#define GW_EEXIST (-5)   /* already exists */
#define GW_EAGAIN (-6)   /* try again later (queue full, buffer too small) */
#define GW_ESTATE (-7)   /* not allowed in the current state */

#define GW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GW_MAX(a, b) ((a) > (b) ? (a) : (b))
#define GW_UNUSED(x) (void)(x)

extern const char *gw_version;
extern const char *gw_build_time;

/* Allocation wrappers that abort on out-of-memory (Redis style: a gateway that cannot allocate
 * a few bytes cannot do anything useful, and scattering NULL checks hides real bugs). */
void *gw_malloc(size_t n);
void *gw_calloc(size_t n, size_t size);
void *gw_realloc(void *p, size_t n);
char *gw_strndup(const char *s, size_t n);
char *gw_strdup(const char *s);
/* printf into a new string; caller frees. */
char *gw_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic clock in nanoseconds / wall clock in seconds. Thread-safe. */
uint64_t gw_now_ns(void);
double gw_wall_time(void);

/* Fills out with n bytes from the kernel's CSPRNG: getrandom(2), or /dev/urandom when that
 * fails. GW_OK, or GW_ERROR when neither source works (out is then unusable: never fall back
 * to a fixed pattern). Thread-safe. */
int gw_random_bytes(void *out, size_t n);

#endif
