/*
 * pieces-gateway: the replicated maps of the Redis store (see src/store.h), kept by the main
 * thread: local copies in the shared dictionary, changes sent to Redis, change notices read.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_mirror_*. Uses: store.c (two connections on the main loop), shdict.h.
 * Never:    makes a worker wait: workers only append to the change queue (a mutex, a uv_async)
 *           and read the local copy; all Redis traffic of the maps runs on the main loop.
 *
 * Redis layout: map M is the hash "gw-map:M" (field -> value); every change publishes "M" on
 * the channel "gw-map:<db>". Locally, M is the dictionary keys "map:M:<field>" and the counter
 * "map:M" (bumped on every change, so a worker rebuilds its view only when it moved).
 * A resync (on a notice, after every reconnect, when a map is first watched) reads the hash
 * (HGETALL) and makes the local copy equal to it plus the changes still queued here, so a
 * change made on this instance is never undone by a resync that raced it.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"
#include "shdict.h"
#include "store.h"

#define QUEUE_MAX 100000
#define KEY_MAX 1024

typedef struct change_s {
    struct change_s *next;
    int add;
    int in_flight;   /* 1 on its way; -1 refused with NOSCRIPT: send with EVAL */
    char *map, *field, *value;
    size_t mlen, flen, vlen;
} change_t;

typedef struct {
    char *name;
    size_t len;
    int dirty;       /* needs a resync */
    int in_flight;   /* an HGETALL is on its way */
} watched_t;

static struct {
    pthread_mutex_t lock;
    change_t *head, *tail;
    size_t count;
    watched_t *maps;
    size_t n_maps, cap_maps;
    int running;
    uv_async_t async;
    gw_store_t *cmd, *sub;
    char channel[32];
} MR = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---------- the change queue (any thread) ---------- */

int gw_mirror_push(int add, const char *map, size_t mlen, const char *field, size_t flen,
                   const char *value, size_t vlen)
{
    pthread_mutex_lock(&MR.lock);
    if (MR.count >= QUEUE_MAX) {
        pthread_mutex_unlock(&MR.lock);
        gw_error("shared store: the map change queue is full; %.*s change dropped", (int)mlen,
                 map);
        return GW_EAGAIN;
    }
    change_t *c = gw_calloc(1, sizeof(*c));
    *c = (change_t){NULL, add, 0, gw_strndup(map, mlen), gw_strndup(field, flen),
                    gw_strndup(value, vlen), mlen, flen, vlen};
    if (MR.tail)
        MR.tail->next = c;
    else
        MR.head = c;
    MR.tail = c;
    MR.count++;
    int running = MR.running;
    pthread_mutex_unlock(&MR.lock);
    if (running)
        uv_async_send(&MR.async);
    return GW_OK;
}

static void change_free(change_t *c)
{
    free(c->map);
    free(c->field);
    free(c->value);
    free(c);
}

/* Remove c from the queue (lock held). */
static void unlink_change(change_t *c)
{
    change_t **pp = &MR.head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = c->next;
    if (MR.tail == c)
        MR.tail = prev;
    MR.count--;
}

void gw_mirror_watch(const char *map, size_t len)
{
    pthread_mutex_lock(&MR.lock);
    for (size_t i = 0; i < MR.n_maps; i++)
        if (MR.maps[i].len == len && memcmp(MR.maps[i].name, map, len) == 0) {
            pthread_mutex_unlock(&MR.lock);
            return;
        }
    if (MR.n_maps == MR.cap_maps) {
        MR.cap_maps = MR.cap_maps ? MR.cap_maps * 2 : 4;
        MR.maps = gw_realloc(MR.maps, MR.cap_maps * sizeof(*MR.maps));
    }
    MR.maps[MR.n_maps++] = (watched_t){gw_strndup(map, len), len, 1, 0};
    int running = MR.running;
    pthread_mutex_unlock(&MR.lock);
    if (running)
        uv_async_send(&MR.async);
}

/* ---------- sending changes (main thread) ---------- */

static void send_changes(void);

static void on_change_done(int status, struct redisReply *r, void *ud)
{
    change_t *c = ud;
    pthread_mutex_lock(&MR.lock);
    c->in_flight = 0;
    int resend = 0;
    if (status == GW_STORE_OK && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        c->in_flight = -1; /* send the script's body next time */
        resend = 1;
    } else if (status == GW_STORE_OK) {
        if (r->type == REDIS_REPLY_ERROR)
            gw_error("shared store: a %.*s change was refused: %s", (int)c->mlen, c->map, r->str);
        unlink_change(c);
        change_free(c);
    } else {
        resend = status == GW_STORE_TIMEOUT; /* down: resent once it reconnected */
    }
    pthread_mutex_unlock(&MR.lock);
    if (resend)
        send_changes();
}

static gw_store_op_t *send_change(change_t *c, int eval)
{
    char key[KEY_MAX];
    int kl = snprintf(key, sizeof(key), "gw-map:%.*s", (int)c->mlen, c->map);
    size_t cl = strlen(MR.channel);
    if (c->add) {
        const char *a[6] = {"1", key, c->field, c->value, MR.channel, c->map};
        size_t l[6] = {1, (size_t)kl, c->flen, c->vlen, cl, c->mlen};
        return gw_store_eval(MR.cmd, GW_SCRIPT_MAP_ADD | eval, 6, a, l, on_change_done, c);
    }
    const char *a[5] = {"1", key, c->field, MR.channel, c->map};
    size_t l[5] = {1, (size_t)kl, c->flen, cl, c->mlen};
    return gw_store_eval(MR.cmd, GW_SCRIPT_MAP_DEL | eval, 5, a, l, on_change_done, c);
}

/* Send every queued change not yet on its way, in order. */
static void send_changes(void)
{
    if (!gw_store_ready(MR.cmd))
        return;
    pthread_mutex_lock(&MR.lock);
    for (change_t *c = MR.head; c; c = c->next) {
        if (c->in_flight == 1)
            continue;
        if (!send_change(c, c->in_flight < 0 ? GW_SCRIPT_EVAL : 0))
            break;
        c->in_flight = 1;
    }
    pthread_mutex_unlock(&MR.lock);
}

/* ---------- resync (main thread) ---------- */

typedef struct {
    const char *p;
    size_t n;
} span_t;

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    int c = memcmp(x->p, y->p, GW_MIN(x->n, y->n));
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* The last queued change of map.field: -1 none, 0 delete, 1 add (lock held). */
static int queued(const char *map, size_t mlen, const char *field, size_t flen,
                  const change_t **out)
{
    int st = -1;
    for (const change_t *c = MR.head; c; c = c->next)
        if (c->mlen == mlen && c->flen == flen && memcmp(c->map, map, mlen) == 0 &&
            memcmp(c->field, field, flen) == 0) {
            st = c->add;
            *out = c;
        }
    return st;
}

static void collect_key(const char *key, size_t klen, void *ud)
{
    gw_buf_t *b = ud;
    gw_buf_append(b, (const char *)&klen, sizeof(klen));
    gw_buf_append(b, key, klen);
}

/* Set key to the string v unless it already holds it; 1 when it changed. */
static int put(gw_shdict_t *d, const char *key, size_t klen, const char *v, size_t vlen)
{
    char buf[4096];
    size_t len = sizeof(buf);
    gw_shdict_val_t cur;
    if (gw_shdict_get(d, key, klen, &cur, buf, &len) == 0 && cur.type == GW_SHDICT_TSTRING &&
        len == vlen && memcmp(buf, v, vlen) == 0)
        return 0;
    gw_shdict_val_t nv = {GW_SHDICT_TSTRING, 0, v, vlen};
    return gw_shdict_set(d, key, klen, &nv, 0) == 0;
}

/* Local keys of the map that Redis no longer has (and no queued add keeps) go. */
static int drop_stale(gw_shdict_t *d, const char *map, size_t mlen, const char *prefix,
                      size_t plen, span_t *fields, size_t nf)
{
    gw_buf_t keys;
    gw_buf_init(&keys);
    gw_shdict_keys(d, prefix, plen, 0, collect_key, &keys);
    int changed = 0;
    for (size_t off = 0; off < keys.len;) {
        size_t kl;
        memcpy(&kl, keys.data + off, sizeof(kl));
        const char *k = keys.data + off + sizeof(kl);
        off += sizeof(kl) + kl;
        span_t f = {k + plen, kl - plen}, *hit = NULL;
        if (nf)
            hit = bsearch(&f, fields, nf, sizeof(span_t), span_cmp);
        const change_t *c = NULL;
        if (!hit && queued(map, mlen, f.p, f.n, &c) != 1)
            changed |= gw_shdict_delete(d, k, kl) == 0;
    }
    gw_buf_dispose(&keys);
    return changed;
}

static void apply(const char *map, size_t mlen, const redisReply *r)
{
    gw_shdict_t *d = gw_shdict_global();
    if (!d || r->type != REDIS_REPLY_ARRAY)
        return;
    char key[KEY_MAX];
    int plen = snprintf(key, sizeof(key), "map:%.*s:", (int)mlen, map);
    size_t nf = r->elements / 2;
    span_t *fields = gw_calloc(nf ? nf : 1, sizeof(span_t));
    for (size_t i = 0; i < nf; i++)
        fields[i] = (span_t){r->element[2 * i]->str, r->element[2 * i]->len};
    qsort(fields, nf, sizeof(span_t), span_cmp);
    pthread_mutex_lock(&MR.lock);
    int changed = drop_stale(d, map, mlen, key, (size_t)plen, fields, nf);
    for (size_t i = 0; i < nf; i++) {
        const redisReply *f = r->element[2 * i], *v = r->element[2 * i + 1];
        if (f->len + (size_t)plen >= sizeof(key))
            continue;
        const change_t *c = NULL;
        int q = queued(map, mlen, f->str, f->len, &c);
        memcpy(key + plen, f->str, f->len);
        if (q == 0)
            changed |= gw_shdict_delete(d, key, plen + f->len) == 0;
        else
            changed |= put(d, key, plen + f->len, v->str, v->len);
    }
    /* queued adds Redis does not have yet */
    for (const change_t *c = MR.head; c; c = c->next) {
        if (!c->add || c->mlen != mlen || memcmp(c->map, map, mlen) != 0 ||
            c->flen + (size_t)plen >= sizeof(key))
            continue;
        memcpy(key + plen, c->field, c->flen);
        changed |= put(d, key, plen + c->flen, c->value, c->vlen);
    }
    pthread_mutex_unlock(&MR.lock);
    free(fields);
    if (changed) {
        double out;
        gw_shdict_incr(d, key, (size_t)plen - 1, 1, 1, 0, 0, &out); /* "map:M" */
    }
}

static void resync_dirty(void);

static void on_map_read(int status, struct redisReply *r, void *ud)
{
    size_t idx = (size_t)(uintptr_t)ud;
    pthread_mutex_lock(&MR.lock);
    watched_t *w = idx < MR.n_maps ? &MR.maps[idx] : NULL;
    char *name = w ? gw_strndup(w->name, w->len) : NULL;
    size_t len = w ? w->len : 0;
    if (w) {
        w->in_flight = 0;
        if (status != GW_STORE_OK || r->type != REDIS_REPLY_ARRAY)
            w->dirty = 1;
    }
    pthread_mutex_unlock(&MR.lock);
    if (name && status == GW_STORE_OK && r->type == REDIS_REPLY_ARRAY)
        apply(name, len, r);
    else if (name && status == GW_STORE_OK)
        gw_store_note_error(MR.cmd, r->type == REDIS_REPLY_ERROR ? r->str : "bad HGETALL answer");
    free(name);
    if (status == GW_STORE_OK)
        resync_dirty(); /* a notice that came meanwhile */
}

static void resync_dirty(void)
{
    if (!gw_store_ready(MR.cmd))
        return;
    pthread_mutex_lock(&MR.lock);
    for (size_t i = 0; i < MR.n_maps; i++) {
        watched_t *w = &MR.maps[i];
        if (!w->dirty || w->in_flight)
            continue;
        char key[KEY_MAX];
        int kl = snprintf(key, sizeof(key), "gw-map:%.*s", (int)w->len, w->name);
        const char *a[2] = {"HGETALL", key};
        size_t l[2] = {7, (size_t)kl};
        if (!gw_store_send(MR.cmd, 2, a, l, on_map_read, (void *)(uintptr_t)i))
            break;
        w->dirty = 0;
        w->in_flight = 1;
    }
    pthread_mutex_unlock(&MR.lock);
}

static void mark_all_dirty(void)
{
    pthread_mutex_lock(&MR.lock);
    for (size_t i = 0; i < MR.n_maps; i++)
        MR.maps[i].dirty = 1;
    pthread_mutex_unlock(&MR.lock);
}

/* ---------- events (main thread) ---------- */

static void on_message(const char *msg, size_t len, void *ud)
{
    GW_UNUSED(ud);
    pthread_mutex_lock(&MR.lock);
    for (size_t i = 0; i < MR.n_maps; i++)
        if (MR.maps[i].len == len && memcmp(MR.maps[i].name, msg, len) == 0)
            MR.maps[i].dirty = 1;
    pthread_mutex_unlock(&MR.lock);
    resync_dirty();
}

/* (Re)connected: changes made meanwhile go out first, then every map is read again. */
static void on_ready(void *ud)
{
    GW_UNUSED(ud);
    send_changes();
    mark_all_dirty();
    resync_dirty();
}

static void on_async(uv_async_t *a)
{
    GW_UNUSED(a);
    send_changes();
    resync_dirty();
}

int gw_mirror_start(uv_loop_t *loop, const gw_config_t *cfg)
{
    if (!cfg->store.redis || MR.running)
        return GW_OK;
    snprintf(MR.channel, sizeof(MR.channel), "gw-map:%d", cfg->store.db);
    uv_async_init(loop, &MR.async, on_async);
    gw_store_opts_t co = {.name = "mirror", .on_ready = on_ready};
    gw_store_opts_t so = {.name = "mirror subscriber", .subscribe = MR.channel,
                          .on_message = on_message, .on_ready = on_ready};
    MR.cmd = gw_store_new(loop, cfg, &co);
    MR.sub = gw_store_new(loop, cfg, &so);
    pthread_mutex_lock(&MR.lock);
    MR.running = 1;
    pthread_mutex_unlock(&MR.lock);
    return GW_OK;
}

void gw_mirror_stop(void)
{
    pthread_mutex_lock(&MR.lock);
    int running = MR.running;
    MR.running = 0;
    pthread_mutex_unlock(&MR.lock);
    if (running) { /* the loop still runs: it closes the handles */
        gw_store_close(MR.cmd);
        gw_store_close(MR.sub);
        MR.cmd = MR.sub = NULL;
        uv_close((uv_handle_t *)&MR.async, NULL);
        return;
    }
    pthread_mutex_lock(&MR.lock);
    while (MR.head) {
        change_t *c = MR.head;
        MR.head = c->next;
        change_free(c);
    }
    MR.tail = NULL;
    MR.count = 0;
    for (size_t i = 0; i < MR.n_maps; i++)
        free(MR.maps[i].name);
    free(MR.maps);
    MR.maps = NULL;
    MR.n_maps = MR.cap_maps = 0;
    pthread_mutex_unlock(&MR.lock);
}
