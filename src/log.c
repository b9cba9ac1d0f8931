/*
 * pieces-gateway: logging to stdout/stderr and an optional append-only file.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_log*. Uses: write(2), localtime_r (cached per thread per second).
 * Never: buffers a line (a crash must not lose what was logged before it).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"

static atomic_int log_fd = -1;
/* Lines logged before the log file is known are kept and written to it when it opens, so the
 * start-up lines (version, generated ADMIN_KEY) reach the file too. Main thread only. */
static int capturing = 1;
static char *early;
static size_t early_len;
static atomic_int debug_on;
static atomic_int access_stdout = 1;

static void early_drop(void)
{
    capturing = 0;
    free(early);
    early = NULL;
    early_len = 0;
}

static void early_keep(const char *line, size_t n)
{
    if (!capturing || early_len + n > 65536)
        return;
    early = gw_realloc(early, early_len + n);
    memcpy(early + early_len, line, n);
    early_len += n;
}

static void write_all(int fd, const char *p, size_t n);

int gw_log_open_file(const char *path, char **err)
{
    int old = atomic_exchange(&log_fd, -1);
    if (old >= 0)
        close(old);
    if (!path || !*path) {
        early_drop();
        return GW_OK;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (err)
            *err = gw_sprintf("cannot open log file %s: %s", path, strerror(errno));
        return GW_ERROR;
    }
    if (early_len)
        write_all(fd, early, early_len);
    early_drop();
    atomic_store(&log_fd, fd);
    return GW_OK;
}

void gw_log_close(void)
{
    int old = atomic_exchange(&log_fd, -1);
    if (old >= 0)
        close(old);
}

void gw_log_set_debug(int on) { atomic_store(&debug_on, on); }
int gw_log_debug_enabled(void) { return atomic_load_explicit(&debug_on, memory_order_relaxed); }
void gw_log_set_access_stdout(int on) { atomic_store(&access_stdout, on); }

int gw_log_access_enabled(void)
{
    return atomic_load_explicit(&access_stdout, memory_order_relaxed) ||
           atomic_load_explicit(&log_fd, memory_order_relaxed) >= 0;
}

/* "YYYY/MM/DD HH:MM:SS " (20 bytes), cached per thread for the current second. */
static size_t timestamp(char *out)
{
    static __thread time_t last;
    static __thread char cached[32];
    time_t now = time(NULL);
    if (now != last || !cached[0]) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%Y/%m/%d %H:%M:%S ", &tm);
        last = now;
    }
    size_t n = strlen(cached);
    memcpy(out, cached, n);
    return n;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void emit(gw_log_level_t level, const char *msg, size_t len, int stamp)
{
    if (level == GW_LOG_DEBUG && !gw_log_debug_enabled())
        return;
    char stack[2048];
    size_t need = len + 64;
    char *line = need <= sizeof(stack) ? stack : gw_malloc(need);
    size_t n = stamp ? timestamp(line) : 0;
    static const char *tags[] = {"[debug] ", "", "[warn] ", "[error] ", ""};
    size_t tl = strlen(tags[level]);
    memcpy(line + n, tags[level], tl);
    n += tl;
    memcpy(line + n, msg, len);
    n += len;
    if (n == 0 || line[n - 1] != '\n')
        line[n++] = '\n';
    int to_stdout = level == GW_LOG_ACCESS ? atomic_load(&access_stdout)
                                           : (level == GW_LOG_INFO || level == GW_LOG_DEBUG);
    if (level == GW_LOG_WARN || level == GW_LOG_ERROR)
        write_all(2, line, n);
    else if (to_stdout)
        write_all(1, line, n);
    int fd = atomic_load(&log_fd);
    if (fd >= 0)
        write_all(fd, line, n);
    else if (capturing)
        early_keep(line, n);
    if (line != stack)
        free(line);
}

void gw_log_write(gw_log_level_t level, const char *msg, size_t len) { emit(level, msg, len, 1); }

void gw_log_access_raw(const char *line, size_t len) { emit(GW_LOG_ACCESS, line, len, 0); }

void gw_log(gw_log_level_t level, const char *fmt, ...)
{
    if (level == GW_LOG_DEBUG && !gw_log_debug_enabled())
        return;
    char buf[1536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(buf)) {
        gw_log_write(level, buf, (size_t)n);
        return;
    }
    char *big = gw_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    gw_log_write(level, big, (size_t)n);
    free(big);
}

/* Go's Duration.String() for durations under an hour (enough for request lines). */
void gw_log_format_duration(char *out, size_t cap, unsigned long long ns)
{
    const char *unit;
    unsigned long long div;
    if (ns == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (ns < 1000ull) {
        snprintf(out, cap, "%lluns", ns);
        return;
    }
    if (ns < 1000000ull) {
        unit = "µs";
        div = 1000ull;
    } else if (ns < 1000000000ull) {
        unit = "ms";
        div = 1000000ull;
    } else if (ns < 60000000000ull) {
        unit = "s";
        div = 1000000000ull;
    } else {
        unsigned long long m = ns / 60000000000ull;
        char rest[48];
        gw_log_format_duration(rest, sizeof(rest), ns % 60000000000ull);
        snprintf(out, cap, "%llum%s", m, strcmp(rest, "0s") == 0 ? "0s" : rest);
        return;
    }
    unsigned long long whole = ns / div, frac = ns % div;
    char fr[16] = "";
    if (frac) {
        int digits = div == 1000ull ? 3 : div == 1000000ull ? 6 : 9;
        snprintf(fr, sizeof(fr), ".%0*llu", digits, frac);
        size_t l = strlen(fr);
        while (l > 1 && fr[l - 1] == '0')
            fr[--l] = '\0';
    }
    snprintf(out, cap, "%llu%s%s", whole, fr, unit);
}
