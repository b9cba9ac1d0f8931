/*
 * pieces-gateway: the shared store: Redis clients (hiredis + its libuv adapter) behind
 * host.shared, and the process-wide mirror of the replicated maps.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * A gw_store_t is one Redis connection owned by one loop (a worker's, or the main thread's for
 * the mirror) and used only from it. It connects in the background, authenticates (AUTH),
 * selects the database (SELECT), loads the server-side scripts (SCRIPT LOAD) and reconnects
 * with a back-off (50 ms doubling to 1 s) whenever the connection fails. Every command has a
 * deadline (SHARED_STORE_TIMEOUT_MS): its callback runs exactly once, with the reply, or with
 * GW_STORE_TIMEOUT / GW_STORE_DOWN. Until the connection is ready (connected, authenticated,
 * scripts loaded), gw_store_send fails at once: the caller falls back without waiting.
 *
 * Process-wide accounting (thread-safe): calls, errors, timeouts, the last error, and the
 * degraded state (some client failing). A degraded period is logged once when it starts and
 * once when it ends. Nothing here ever logs the password.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "gw_ffi.h"

/* SHARED_STORE_ON_ERROR */
enum { GW_STORE_OPEN = 0, GW_STORE_CLOSED = 1, GW_STORE_LOCAL = 2 };

/* The status a command's callback gets (besides a reply, which may be a Redis error reply). */
enum { GW_STORE_OK = 0, GW_STORE_TIMEOUT = -1, GW_STORE_DOWN = -2 };

/* Server-side scripts (store.c), loaded at connect, sent with EVALSHA; the numbers are the
 * seam's (gw_ffi.h), Lua names them. */
enum {
    GW_SCRIPT_WINDOW = GW_FFI_SCRIPT_WINDOW,   /* rate limit: the rules' check and increment */
    GW_SCRIPT_INCR = GW_FFI_SCRIPT_INCR,       /* incr(key, delta, init, ttl), shdict semantics */
    GW_SCRIPT_KEYS = GW_FFI_SCRIPT_KEYS,       /* keys(prefix, max) through SCAN */
    GW_SCRIPT_MAP_ADD = GW_FFI_SCRIPT_MAP_ADD, /* HSETNX + PUBLISH */
    GW_SCRIPT_MAP_DEL = GW_FFI_SCRIPT_MAP_DEL, /* HDEL + PUBLISH */
    GW_SCRIPT_COUNT
};
#define GW_SCRIPT_EVAL GW_FFI_SCRIPT_EVAL /* flag: send the script's body (EVAL: after NOSCRIPT) */

typedef struct gw_store_s gw_store_t;
typedef struct gw_store_op_s gw_store_op_t;
struct redisReply;

/* reply is borrowed for the duration of the call (NULL unless status is GW_STORE_OK). */
typedef void (*gw_store_cb)(int status, struct redisReply *reply, void *ud);
/* A subscriber's messages: the channel's payload (borrowed). */
typedef void (*gw_store_msg_cb)(const char *msg, size_t len, void *ud);

typedef struct {
    const char *name;        /* for logs: "worker 0", "mirror" */
    const char *subscribe;   /* non-NULL: a subscriber connection for this channel */
    gw_store_msg_cb on_message;
    void (*on_ready)(void *ud); /* after each successful (re)connect and handshake */
    void *ud;
} gw_store_opts_t;

/* "open" / "closed" / "local" -> GW_STORE_*; anything else (NULL included) is GW_STORE_LOCAL. */
int gw_store_mode(const char *name);
const char *gw_store_mode_name(int mode);

/* A client of cfg->store on loop (cfg and opts strings must outlive it); connects at once. */
gw_store_t *gw_store_new(uv_loop_t *loop, const gw_config_t *cfg, const gw_store_opts_t *opts);
/* Close: pending commands complete with GW_STORE_DOWN now; the memory goes once the loop ran
 * the handles' close callbacks. */
void gw_store_close(gw_store_t *s);
int gw_store_ready(const gw_store_t *s);

/* Send a command (argv borrowed for the call only). NULL when the store is not ready (cb never
 * runs); otherwise cb runs exactly once, later (never from inside this call). */
gw_store_op_t *gw_store_send(gw_store_t *s, int argc, const char **argv, const size_t *lens,
                             gw_store_cb cb, void *ud);
/* Send EVALSHA <sha of script> argv... (or EVAL <body> with GW_SCRIPT_EVAL, or while the sha is
 * not known yet). argc <= 60. As gw_store_send. */
gw_store_op_t *gw_store_eval(gw_store_t *s, int script, int argc, const char **argv,
                             const size_t *lens, gw_store_cb cb, void *ud);
/* A command built in place, without an argv: gw_store_cmd_begin (script < 0: a plain command
 * of argc arguments; else EVALSHA <sha> (or EVAL <body>) and then argc arguments), exactly argc
 * gw_store_cmd_arg / _arg2 (the concatenation a + c as one argument) / _int, then
 * gw_store_cmd_send (as gw_store_send). begin: GW_OK, or GW_EAGAIN when the store is not ready
 * (then nothing else may be called). Nothing may run on s in between. */
int gw_store_cmd_begin(gw_store_t *s, int script, int argc);
void gw_store_cmd_arg(gw_store_t *s, const char *a, size_t n);
void gw_store_cmd_arg2(gw_store_t *s, const char *a, size_t an, const char *c, size_t cn);
void gw_store_cmd_int(gw_store_t *s, long long v);
void gw_store_cmd_hex(gw_store_t *s, long long v); /* [-]lower-case hex digits, no 0x */
gw_store_op_t *gw_store_cmd_send(gw_store_t *s, gw_store_cb cb, void *ud);
/* The op's callback will not run (its reply is dropped). Only before the callback ran. */
void gw_store_cancel(gw_store_op_t *op);

/* The store this thread's requests use (a worker sets it before its VM loads), or NULL. */
gw_store_t *gw_store_thread(void);
void gw_store_set_thread(gw_store_t *s);

/* Process-wide accounting, from any thread: set once at start-up, before any client. */
void gw_store_global_init(const gw_config_t *cfg);
/* Appends "store":{...} state (no password) to b. */
void gw_store_status_json(gw_buf_t *b);
/* A command answered with a Redis error the caller counts as a failure (e.g. WRONGTYPE). */
void gw_store_note_error(gw_store_t *s, const char *msg);

/* ---- replicated maps (store_mirror.c): the main thread keeps the local copies ---- */

/* Start the mirror on the main loop (Redis store only): a subscriber and a command connection;
 * on each change notice (and after every reconnect) a watched map is re-read from Redis
 * (HGETALL) into the local dictionary keys "map:<map>:<field>", bumping "map:<map>". */
int gw_mirror_start(uv_loop_t *loop, const gw_config_t *cfg);
void gw_mirror_stop(void);
/* Watch map (its copy is kept in sync from now on). Thread-safe; idempotent. */
void gw_mirror_watch(const char *map, size_t len);
/* Queue a change made locally for Redis (op 1 add, 0 delete), sent in order by the mirror's
 * connection; kept (and re-applied to the local copy on a resync) until Redis acknowledged it.
 * Thread-safe. GW_EAGAIN when the queue is full (100000 changes). */
int gw_mirror_push(int add, const char *map, size_t mlen, const char *field, size_t flen,
                   const char *value, size_t vlen);

#endif
