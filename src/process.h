/*
 * pieces-gateway: process-wide services used by workers and the Lua seam.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The main thread owns signals, reload coordination, request metrics and file persistence.
 * Every function here is thread-safe.
 */
#ifndef GW_PROCESS_H
#define GW_PROCESS_H

#include <stddef.h>
#include <uv.h>

#include "config.h"

/* Metrics (fixed 1 s / 60 s buckets, as the seed). */
void gw_metrics_count(int api);
void gw_metrics_json(char *buf, size_t cap);
void gw_metrics_tick_second(void);
void gw_metrics_tick_minute(void);

/* Queue an atomic write of data to path (temp file, fsync, rename) on the main thread's work
 * queue; the latest content for a path wins. Copies data. 0 or GW_EAGAIN if not running. */
int gw_persist(const char *path, size_t plen, const char *data, size_t dlen);
/* The persistence thread: started before the policies load, stopped (after writing what is
 * still queued) at exit. */
int gw_persist_start(void);
void gw_persist_stop(void);
/* Synchronous atomic write (used by the persistence worker and tests). 0 or GW_ERROR. */
int gw_write_file_atomic(const char *path, const char *data, size_t len, char **err);

/* Ask all workers to reload their policies (asynchronous). */
void gw_request_reload(const char *why);
/* Reload bookkeeping, shown by /admin/policies. */
void gw_reload_record(int worker_id, int ok, const char *error);
int gw_status_json(char *buf, size_t cap);
/* The configuration version of the status (1 at start, +1 per applied reload). */
unsigned long gw_config_version(void);
/* The loaded policy names (comma-separated) and worker count shown by /admin/policies. */
void gw_status_set_policies(const char *names, int workers);

/* A worker's loop has ended (called from the worker thread). */
void gw_process_worker_exited(int id);

/* Process-wide resources shared by the workers (shared dictionary, tokenizers), created
 * before the workers start and released after they stopped. 0 or GW_ERROR with *err. */
int gw_process_init(const gw_config_t *cfg, char **err);
void gw_process_shutdown(void);
/* Periodic housekeeping, run by the main thread every second. */
void gw_process_tick(void);


#endif
