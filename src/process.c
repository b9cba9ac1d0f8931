/*
 * pieces-gateway: process-wide services: metrics, atomic file persistence, reload bookkeeping.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_metrics_*, gw_persist, gw_write_file_atomic, gw_reload_record, gw_status_json.
 * Uses: pthreads, POSIX file calls. Never: blocks a worker on disk I/O (writes happen on the
 * persistence thread; a worker only copies the bytes into the queue).
 */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "gw.h"
#include "log.h"
#include "shdict.h"
#include "store.h"
#include "gw_tok.h"

/* ---------- metrics ---------- */

static atomic_ulong total_rps, total_rpm, api_rps, api_rpm;

void gw_metrics_count(int api)
{
    atomic_fetch_add_explicit(&total_rps, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_rpm, 1, memory_order_relaxed);
    if (api) {
        atomic_fetch_add_explicit(&api_rps, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&api_rpm, 1, memory_order_relaxed);
    }
}

void gw_metrics_tick_second(void)
{
    atomic_store(&total_rps, 0);
    atomic_store(&api_rps, 0);
}

void gw_metrics_tick_minute(void)
{
    atomic_store(&total_rpm, 0);
    atomic_store(&api_rpm, 0);
}

void gw_metrics_json(char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"total_rpm\":%lu,\"total_rps\":%lu,\"api_rpm\":%lu,\"api_rps\":%lu}",
             atomic_load(&total_rpm), atomic_load(&total_rps), atomic_load(&api_rpm),
             atomic_load(&api_rps));
}

/* ---------- atomic file writes ---------- */

int gw_write_file_atomic(const char *path, const char *data, size_t len, char **err)
{
    char *tmp = gw_sprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail_fd;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail_fd;
    if (close(fd) != 0) {
        fd = -1;
        goto fail_unlink;
    }
    if (rename(tmp, path) != 0)
        goto fail_unlink;
    /* Make the rename itself durable. */
    char *dircopy = gw_strdup(path);
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dircopy);
    free(tmp);
    return GW_OK;
fail_fd:
    close(fd);
fail_unlink:
    unlink(tmp);
fail:
    if (err)
        *err = gw_sprintf("cannot write %s: %s", path, strerror(errno));
    free(tmp);
    return GW_ERROR;
}

/* ---------- persistence thread ---------- */

typedef struct persist_item {
    char *path;
    char *data;
    size_t len;
    struct persist_item *next;
} persist_item_t;

static pthread_mutex_t pq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pq_cond = PTHREAD_COND_INITIALIZER;
static persist_item_t *pq_head;
static int pq_running, pq_stop;
static pthread_t pq_thread;

static void *persist_main(void *arg)
{
    GW_UNUSED(arg);
    pthread_mutex_lock(&pq_lock);
    for (;;) {
        while (!pq_head && !pq_stop)
            pthread_cond_wait(&pq_cond, &pq_lock);
        if (!pq_head && pq_stop)
            break;
        persist_item_t *it = pq_head;
        pq_head = it->next;
        pthread_mutex_unlock(&pq_lock);
        char *err = NULL;
        if (gw_write_file_atomic(it->path, it->data, it->len, &err) != 0) {
            gw_error("persistence: %s", err);
            free(err);
        }
        free(it->path);
        free(it->data);
        free(it);
        pthread_mutex_lock(&pq_lock);
    }
    pthread_mutex_unlock(&pq_lock);
    return NULL;
}

int gw_persist_start(void)
{
    pthread_mutex_lock(&pq_lock);
    pq_stop = 0;
    int rc = pthread_create(&pq_thread, NULL, persist_main, NULL);
    pq_running = rc == 0;
    pthread_mutex_unlock(&pq_lock);
    return rc == 0 ? GW_OK : GW_ERROR;
}

/* Write everything still queued, then stop the thread. */
void gw_persist_stop(void)
{
    pthread_mutex_lock(&pq_lock);
    if (!pq_running) {
        pthread_mutex_unlock(&pq_lock);
        return;
    }
    pq_stop = 1;
    pthread_cond_signal(&pq_cond);
    pthread_mutex_unlock(&pq_lock);
    pthread_join(pq_thread, NULL);
    pq_running = 0;
}

int gw_persist(const char *path, size_t plen, const char *data, size_t dlen)
{
    pthread_mutex_lock(&pq_lock);
    if (!pq_running || pq_stop) {
        pthread_mutex_unlock(&pq_lock);
        return GW_EAGAIN;
    }
    /* The latest content for a path replaces a queued older one. */
    for (persist_item_t *it = pq_head; it; it = it->next) {
        if (strlen(it->path) == plen && memcmp(it->path, path, plen) == 0) {
            free(it->data);
            it->data = gw_strndup(data, dlen);
            it->len = dlen;
            pthread_mutex_unlock(&pq_lock);
            return GW_OK;
        }
    }
    persist_item_t *it = gw_calloc(1, sizeof(*it));
    it->path = gw_strndup(path, plen);
    it->data = gw_strndup(data, dlen);
    it->len = dlen;
    persist_item_t **tail = &pq_head;
    while (*tail)
        tail = &(*tail)->next;
    *tail = it;
    pthread_cond_signal(&pq_cond);
    pthread_mutex_unlock(&pq_lock);
    return GW_OK;
}

/* ---------- reload bookkeeping ---------- */

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    unsigned long version;
    double at;
    int ok;
    char *error;
    char *policies; /* comma-separated */
    int workers;
} st = {1, 0, 1, NULL, NULL, 0};

void gw_status_set_policies(const char *names, int workers)
{
    pthread_mutex_lock(&st_lock);
    free(st.policies);
    st.policies = gw_strdup(names ? names : "");
    st.workers = workers;
    if (st.at == 0)
        st.at = gw_wall_time();
    pthread_mutex_unlock(&st_lock);
}

void gw_reload_record(int worker_id, int ok, const char *error)
{
    pthread_mutex_lock(&st_lock);
    st.at = gw_wall_time();
    if (ok && worker_id < 0)
        st.version++;
    if (!ok || worker_id < 0) {
        st.ok = ok;
        free(st.error);
        st.error = error ? gw_strdup(error) : NULL;
    }
    pthread_mutex_unlock(&st_lock);
}

unsigned long gw_config_version(void)
{
    pthread_mutex_lock(&st_lock);
    unsigned long v = st.version;
    pthread_mutex_unlock(&st_lock);
    return v;
}

int gw_status_json(char *buf, size_t cap)
{
    gw_buf_t b;
    gw_buf_init(&b);
    pthread_mutex_lock(&st_lock);
    gw_buf_puts(&b, "{\"policies\":[");
    const char *p = st.policies ? st.policies : "";
    int first = 1;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!first)
            gw_buf_putc(&b, ',');
        gw_buf_json_str(&b, p, n);
        first = 0;
        p += n + (e ? 1 : 0);
    }
    gw_buf_printf(&b, "],\"config_version\":%lu,\"workers\":%d,\"last_reload\":{\"at\":%.3f,"
                      "\"ok\":%s,\"error\":",
                  st.version, st.workers, st.at, st.ok ? "true" : "false");
    if (st.error) {
        gw_buf_json_str(&b, st.error, strlen(st.error));
        gw_buf_puts(&b, "},");
    } else
        gw_buf_puts(&b, "null},");
    gw_store_status_json(&b);
    gw_buf_putc(&b, '}');
    pthread_mutex_unlock(&st_lock);
    int n = (int)b.len;
    if ((size_t)n < cap)
        memcpy(buf, b.data, b.len + 1);
    gw_buf_dispose(&b);
    return n;
}

/* ---------- process-wide resources ---------- */

int gw_process_init(const gw_config_t *cfg, char **err)
{
    gw_shdict_t *d = gw_shdict_new(cfg->shared_dict_size, 0);
    if (!d) {
        *err = gw_sprintf("cannot create the shared dictionary (%zu bytes)",
                          cfg->shared_dict_size);
        return GW_ERROR;
    }
    gw_shdict_set_global(d);
    gw_store_global_init(cfg);
    uint64_t t0 = gw_now_ns();
    char *e = NULL;
    if (gw_tok_load_all(cfg->assets_dir, &e) != 0) {
        *err = gw_sprintf("Failed to initialize tokenizers: %s", e ? e : "unknown error");
        free(e);
        return GW_ERROR;
    }
    gw_debug("tokenizers loaded in %.1f ms", (double)(gw_now_ns() - t0) / 1e6);
    return GW_OK;
}

/* Called every second by the main thread: a bounded sweep of expired entries. */
void gw_process_tick(void)
{
    gw_shdict_t *d = gw_shdict_global();
    if (d)
        gw_shdict_flush_expired(d, 1000);
}

void gw_process_shutdown(void)
{
    gw_mirror_stop();
    gw_shdict_t *d = gw_shdict_global();
    gw_shdict_set_global(NULL);
    if (d)
        gw_shdict_free(d);
    gw_tok_unload_all();
}
