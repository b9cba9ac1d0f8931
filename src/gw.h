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

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Status convention of the whole C tree (as libuv's): 0 on success, a negative errno value on
 * failure, one meaning per value (the shared dictionary, the upstream, the backends and the
 * seam use the same numbers; src/gw_ffi.h's block names them for Lua). The GW_E* names are
 * the ones this code base uses most. */
#define GW_OK 0
#define GW_ERROR (-EIO)      /* generic failure, see the err message */
#define GW_ENOMEM (-ENOMEM)  /* allocation failed */
#define GW_EINVAL (-EINVAL)  /* invalid argument or value */
#define GW_ENOENT (-ENOENT)  /* not found */
#define GW_EEXIST (-EEXIST)  /* already exists */
#define GW_EAGAIN (-EAGAIN)  /* try again later (queue full, buffer too small) */
#define GW_ESTATE (-EPERM)   /* not allowed in the current state */

#define GW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GW_MAX(a, b) ((a) > (b) ? (a) : (b))
#define GW_UNUSED(x) (void)(x)
/* Two constants of different enums (or an enum and a macro) are the same number. */
#define GW_SAME(a, b) ((int)(a) == (int)(b))

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
