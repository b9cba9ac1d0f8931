/*
 * pieces-gateway: unit tests for gw_random_bytes, with getrandom(2) and open(2) made to fail
 * through the linker (-Wl,--wrap=getrandom,--wrap=open, see cmake/tests.cmake): a kernel
 * without getrandom (or a seccomp filter refusing it) must not turn ids into a constant.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "gw.h"
#include "gw_ffi.h"
#include "gw_test.h"

enum { GR_REAL, GR_FAIL, GR_SHORT };
static int getrandom_mode;
static int open_fails;
static int getrandom_calls, open_calls;

ssize_t __real_getrandom(void *buf, size_t n, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags);
int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);

ssize_t __wrap_getrandom(void *buf, size_t n, unsigned flags)
{
    getrandom_calls++;
    if (getrandom_mode == GR_FAIL) {
        errno = ENOSYS;
        return -1;
    }
    if (getrandom_mode == GR_SHORT && n > 3) /* a short read (signal, early boot) */
        n = 3;
    return __real_getrandom(buf, n, flags);
}

int __wrap_open(const char *path, int flags, ...)
{
    va_list ap;
    int mode;
    open_calls++;
    if (open_fails) {
        errno = EACCES;
        return -1;
    }
    va_start(ap, flags);
    mode = va_arg(ap, int);
    va_end(ap);
    return __real_open(path, flags, mode);
}

/* Two draws differ and neither is one repeated byte (the old fallback filled 0x5a). */
static int looks_random(void)
{
    unsigned char a[32], b[32];
    int same = 1;
    memset(a, 0x5a, sizeof(a));
    memset(b, 0x5a, sizeof(b));
    if (gw_random_bytes(a, sizeof(a)) != GW_OK || gw_random_bytes(b, sizeof(b)) != GW_OK)
        return 0;
    for (size_t i = 1; i < sizeof(a); i++)
        same &= a[i] == a[0];
    return !same && memcmp(a, b, sizeof(a)) != 0;
}

static void reset(int mode, int fail_open)
{
    getrandom_mode = mode;
    open_fails = fail_open;
    getrandom_calls = open_calls = 0;
}

TEST(getrandom_is_used)
{
    reset(GR_REAL, 0);
    CHECK(looks_random());
    CHECK(getrandom_calls > 0);
    CHECK_EQ_INT(open_calls, 0);
}

TEST(short_getrandom_reads_are_completed)
{
    reset(GR_SHORT, 0);
    CHECK(looks_random());
    CHECK(getrandom_calls >= 2 * 11); /* 32 bytes, 3 at a time, twice */
    CHECK_EQ_INT(open_calls, 0);
}

TEST(without_getrandom_dev_urandom_is_read)
{
    reset(GR_FAIL, 0);
    CHECK(looks_random());
    CHECK(open_calls >= 2);
    unsigned char big[100000]; /* more than one read() may return */
    CHECK_EQ_INT(gw_random_bytes(big, sizeof(big)), GW_OK);
    /* the FFI entry point (Lua's host.random_bytes) takes the same path */
    unsigned char k[16] = {0};
    CHECK_EQ_INT(gw_ffi_random_bytes(k, sizeof(k)), GW_OK);
}

TEST(no_source_at_all_is_an_error_not_a_pattern)
{
    unsigned char buf[16];
    reset(GR_FAIL, 1);
    CHECK_EQ_INT(gw_random_bytes(buf, sizeof(buf)), GW_ERROR);
    CHECK_EQ_INT(gw_ffi_random_bytes(buf, sizeof(buf)), GW_ERROR);
    reset(GR_REAL, 0);
    CHECK_EQ_INT(gw_random_bytes(buf, 0), GW_OK);
}

int main(void)
{
    RUN(getrandom_is_used);
    RUN(short_getrandom_reads_are_completed);
    RUN(without_getrandom_dev_urandom_is_read);
    RUN(no_source_at_all_is_an_error_not_a_pattern);
    return TEST_REPORT();
}
