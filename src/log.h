/*
 * pieces-gateway: logging.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Lines are "YYYY/MM/DD HH:MM:SS <text>\n" in local time. Access and info lines go to stdout,
 * warnings and errors to stderr, debug lines (only with DEBUG=true) to stdout; with a log file
 * every line is also appended to it. Each line is one write(2) per sink, so lines from several
 * threads never interleave and each line is on disk (in the page cache) when the call returns.
 * Thread-safe.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>

typedef enum { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR, GW_LOG_ACCESS } gw_log_level_t;

/* Open (append, create 0644) the log file; NULL or "" closes it. 0 or GW_ERROR with *err. */
int gw_log_open_file(const char *path, char **err);
void gw_log_set_debug(int on);
int gw_log_debug_enabled(void);
/* Access log on stdout (default on); the log file always gets access lines. */
void gw_log_set_access_stdout(int on);
/* Whether an access line would go anywhere (callers skip formatting it otherwise). */
int gw_log_access_enabled(void);
void gw_log(gw_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gw_log_write(gw_log_level_t level, const char *msg, size_t len);
/* An access line without the timestamp prefix (JSON access lines carry their own time). */
void gw_log_access_raw(const char *line, size_t len);
void gw_log_close(void);

#define gw_debug(...) do { if (gw_log_debug_enabled()) gw_log(GW_LOG_DEBUG, __VA_ARGS__); } while (0)
#define gw_info(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define gw_warn(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_error(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)

/* Format a duration like Go's time.Duration.String(): "850ms", "1.234567s", "12.3µs". */
void gw_log_format_duration(char *out, size_t cap, unsigned long long ns);

#endif
