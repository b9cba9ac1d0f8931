/*
 * pieces-gateway: Redis clients for the shared store (see src/store.h for the contract).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_store_* (one connection per gw_store_t, on its owner's loop), the server-side
 *           scripts, the process-wide accounting and degraded-period log lines.
 * Uses:     hiredis 0.14 async API and its libuv adapter, libuv timers, pthreads.
 * Never:    blocks the loop (except hiredis' own name resolution of SHARED_STORE's host when it
 *           (re)connects), runs a callback from inside gw_store_send, logs the password, or
 *           leaves a command without an answer: every op ends by reply, deadline or
 *           disconnect.
 *
 * Deadlines: all commands of a connection share one timeout and go out in order, so their
 * deadlines are ordered too. The ops form a FIFO in send order (Redis answers in that order);
 * next_due points at the first op whose deadline did not pass yet, and one lazy timer per
 * connection fires for it. A timed-out op stays in the FIFO (its reply must still be read) but
 * its callback already ran. If the oldest unanswered command is STALE_MS old, the connection is
 * considered dead and replaced.
 */
#include "store.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define STALE_MS 5000          /* no answer for this long: reconnect */
#define CONNECT_MIN_MS 500     /* connect + handshake deadline: 4 x the call timeout, within */
#define CONNECT_MAX_MS 3000    /* these bounds (a refused connect fails at once; this is for a
                                  host that answers nothing, or a very slow handshake) */
#define QUIET_MS 1000          /* a degraded client recovers after a success this long after
                                  its last failure (one log line per period, not per flap) */
#define MAX_ARGS 64
#define FREE_OPS_MAX 256       /* ops kept for reuse per connection (one per waiting request) */
#define FREE_REPLIES_MAX 512   /* reply objects kept for reuse per connection */

enum { ST_DOWN, ST_CONNECTING, ST_READY, ST_CLOSED };

struct gw_store_op_s {
    gw_store_op_t *next;
    gw_store_t *s;
    uint64_t deadline;         /* loop ms */
    gw_store_cb cb;            /* NULL once it ran, or cancelled */
    void *ud;
    int handshake;             /* part of the connect sequence: 1 + script index, or -1 */
};

struct gw_store_s {
    uv_loop_t *loop;
    const gw_config_t *cfg;
    gw_store_opts_t opts;
    redisAsyncContext *ac;
    int state;
    int handshake_left;
    gw_store_op_t *head, *tail; /* every op sent on ac, in send order */
    gw_store_op_t *next_due;    /* first op whose deadline has not passed */
    uv_timer_t deadline;
    uint64_t deadline_due;      /* when the deadline timer fires; 0 = not running */
    uv_timer_t retry;
    uv_check_t flusher;         /* writes this iteration's commands (see add_write) */
    uv_idle_t kick;
    int flush_due, flushing;
    unsigned backoff_ms;
    int handles_open;
    int degraded;
    uint64_t last_failure;      /* loop ms */
    int counted_ready;
    char sha[GW_SCRIPT_COUNT][41];
    gw_store_op_t *free_ops;    /* answered ops, for reuse (a malloc/free less per call) */
    int n_free_ops;
    struct reply_node *free_replies; /* see "reply objects" */
    int n_free_replies;
    gw_buf_t cmd;               /* the command being formatted (see format_cmd) */
};

/* ---------- scripts ---------- */

/* KEYS: cur_1, prev_1, ..., cur_n, prev_n. ARGV per rule: the weight as two integers m (hex),
 * e (weight = m * 2^e exactly, see ffi_store.c: no decimal text of a double to make), limit,
 * ttl_ms. -> { admitted (1/0), cur_1, prev_1, ... } (the counts before the call). */
static const char SCRIPT_WINDOW[] =
    "local n = #KEYS / 2\n"
    "local v = redis.call('MGET', unpack(KEYS))\n"
    "local out = {1}\n"
    "for i = 1, n do\n"
    "  local cur, prev = tonumber(v[2*i-1]) or 0, tonumber(v[2*i]) or 0\n"
    "  local m = ARGV[4*i-3]\n"
    "  m = m:byte(1) == 45 and -tonumber(m:sub(2), 16) or tonumber(m, 16)\n"
    "  local w = math.ldexp(m, tonumber(ARGV[4*i-2]))\n"
    "  out[2*i], out[2*i+1] = cur, prev\n"
    "  if not (prev * w + cur + 1 <= tonumber(ARGV[4*i-1])) then\n"
    "    out[1] = 0\n"
    "  end\n"
    "end\n"
    "if out[1] == 1 then\n"
    "  for i = 1, n do\n"
    "    if redis.call('INCR', KEYS[2*i-1]) == 1 and tonumber(ARGV[4*i]) > 0 then\n"
    "      redis.call('PEXPIRE', KEYS[2*i-1], ARGV[4*i])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS[1]; ARGV: delta, has_init (0/1), init, ttl_ms. -> {1, value} | {0} not found |
 * {2} not a number. An existing key keeps its TTL (INCRBYFLOAT does not touch it). */
static const char SCRIPT_INCR[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then\n"
    "  if ARGV[2] == '0' then return {0} end\n"
    "  local s = string.format('%.17g', tonumber(ARGV[3]) + tonumber(ARGV[1]))\n"
    "  if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], s, 'PX', ARGV[4])\n"
    "  else redis.call('SET', KEYS[1], s) end\n"
    "  return {1, s}\n"
    "end\n"
    "if not tonumber(v) then return {2} end\n"
    "return {1, redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])}\n";

/* ARGV: a MATCH pattern, max (0 = all). -> the keys (SCAN inside the script). */
static const char SCRIPT_KEYS[] =
    "local cursor, out, seen, max = '0', {}, {}, tonumber(ARGV[2])\n"
    "repeat\n"
    "  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)\n"
    "  cursor = r[1]\n"
    "  for _, k in ipairs(r[2]) do\n"
    "    if max > 0 and #out >= max then return out end\n"
    "    if not seen[k] then seen[k] = true; out[#out + 1] = k end\n"
    "  end\n"
    "until cursor == '0'\n"
    "return out\n";

/* KEYS[1] the map's hash; ARGV: field, value, channel, map name. -> 1 added, 0 existed. */
static const char SCRIPT_MAP_ADD[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then\n"
    "  redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* KEYS[1] the map's hash; ARGV: field, channel, map name. -> 1 removed, 0 absent. */
static const char SCRIPT_MAP_DEL[] =
    "if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then\n"
    "  redis.call('PUBLISH', ARGV[2], ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

static const char *const scripts[GW_SCRIPT_COUNT] = {SCRIPT_WINDOW, SCRIPT_INCR, SCRIPT_KEYS,
                                                      SCRIPT_MAP_ADD, SCRIPT_MAP_DEL};

/* ---------- process-wide accounting ---------- */

static struct {
    pthread_mutex_t lock;
    int redis;
    char address[300];
    int db, on_error, timeout_ms;
    int clients, ready, degraded;
    double since;               /* wall time the current degraded period began */
    uint64_t period_failures;
    char last_error[200];
    atomic_ullong calls, errors, timeouts;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

static __thread gw_store_t *thread_store;

gw_store_t *gw_store_thread(void) { return thread_store; }
void gw_store_set_thread(gw_store_t *s) { thread_store = s; }

int gw_store_mode(const char *name)
{
    if (name && strcmp(name, "open") == 0)
        return GW_STORE_OPEN;
    if (name && strcmp(name, "closed") == 0)
        return GW_STORE_CLOSED;
    return GW_STORE_LOCAL;
}

const char *gw_store_mode_name(int mode)
{
    return mode == GW_STORE_OPEN ? "open" : mode == GW_STORE_CLOSED ? "closed" : "local";
}

void gw_store_global_init(const gw_config_t *cfg)
{
    pthread_mutex_lock(&G.lock);
    G.redis = cfg->store.redis;
    snprintf(G.address, sizeof(G.address), "%s%s%s:%d",
             cfg->store.host && strchr(cfg->store.host, ':') ? "[" : "",
             cfg->store.host ? cfg->store.host : "",
             cfg->store.host && strchr(cfg->store.host, ':') ? "]" : "", cfg->store.port);
    G.db = cfg->store.db;
    G.on_error = cfg->store.on_error;
    G.timeout_ms = cfg->store.timeout_ms;
    pthread_mutex_unlock(&G.lock);
}

/* A client starts or ends failing. The first to start a period logs it, the last to end it
 * logs the end. */
static void set_degraded(gw_store_t *s, int on, const char *why)
{
    if (s->degraded == on)
        return;
    s->degraded = on;
    pthread_mutex_lock(&G.lock);
    if (on && G.degraded++ == 0) {
        G.since = gw_wall_time();
        G.period_failures = 0;
        gw_warn("shared store %s degraded (%s: %s); SHARED_STORE_ON_ERROR=%s applies", G.address,
                s->opts.name, why, gw_store_mode_name(G.on_error));
    } else if (!on && --G.degraded == 0) {
        gw_info("shared store %s recovered after %.1f s (%llu failed calls)", G.address,
                gw_wall_time() - G.since, (unsigned long long)G.period_failures);
    }
    pthread_mutex_unlock(&G.lock);
}

static void failure(gw_store_t *s, const char *why, int timeout)
{
    atomic_fetch_add(timeout ? &G.timeouts : &G.errors, 1);
    pthread_mutex_lock(&G.lock);
    G.period_failures++;
    snprintf(G.last_error, sizeof(G.last_error), "%s: %s", s->opts.name, why);
    pthread_mutex_unlock(&G.lock);
    s->last_failure = uv_now(s->loop);
    set_degraded(s, 1, why);
}

static void success(gw_store_t *s)
{
    if (s->degraded && uv_now(s->loop) >= s->last_failure + QUIET_MS)
        set_degraded(s, 0, NULL);
}

static void set_ready(gw_store_t *s, int ready)
{
    if (s->counted_ready == ready)
        return;
    s->counted_ready = ready;
    pthread_mutex_lock(&G.lock);
    G.ready += ready ? 1 : -1;
    pthread_mutex_unlock(&G.lock);
}

void gw_store_note_error(gw_store_t *s, const char *msg) { failure(s, msg, 0); }

void gw_store_status_json(gw_buf_t *b)
{
    pthread_mutex_lock(&G.lock);
    if (!G.redis) {
        pthread_mutex_unlock(&G.lock);
        gw_buf_puts(b, "\"store\":{\"type\":\"local\"}");
        return;
    }
    gw_buf_printf(b, "\"store\":{\"type\":\"redis\",\"address\":\"");
    gw_buf_json_escape(b, G.address, strlen(G.address));
    gw_buf_printf(b, "\",\"db\":%d,\"on_error\":\"%s\",\"timeout_ms\":%d,\"connected\":%s,"
                     "\"clients\":%d,\"clients_connected\":%d,\"degraded\":%s,\"degraded_since\":",
                  G.db, gw_store_mode_name(G.on_error), G.timeout_ms,
                  G.clients > 0 && G.ready == G.clients ? "true" : "false", G.clients, G.ready,
                  G.degraded ? "true" : "false");
    if (G.degraded)
        gw_buf_printf(b, "%.3f", G.since);
    else
        gw_buf_puts(b, "null");
    gw_buf_printf(b, ",\"calls\":%llu,\"errors\":%llu,\"timeouts\":%llu,\"last_error\":",
                  (unsigned long long)atomic_load(&G.calls),
                  (unsigned long long)atomic_load(&G.errors),
                  (unsigned long long)atomic_load(&G.timeouts));
    if (G.last_error[0]) {
        gw_buf_json_str(b, G.last_error, strlen(G.last_error));
        gw_buf_putc(b, '}');
    } else
        gw_buf_puts(b, "null}");
    pthread_mutex_unlock(&G.lock);
}

/* ---------- reply objects ----------
 * hiredis' reader makes each reply element with calloc (and a string's text, an array's
 * element list with another malloc) and frees them after the callback: five allocations and
 * frees for the rate limiter's answer. These object functions (the reader's, per context) keep
 * the objects, with their text and element buffers, on the connection for reuse. The reply is
 * the same redisReply hiredis makes (the callers read it as before); a node knows its store. */

typedef struct reply_node {
    gw_store_t *s;
    struct reply_node *next;
    size_t text_cap;   /* bytes at r.str (for reuse) */
    size_t elem_cap;   /* pointers at r.element */
    redisReply r;
} reply_node;

#define NODE_OF(reply) ((reply_node *)((char *)(reply) - offsetof(reply_node, r)))

static reply_node *node_new(gw_store_t *s, const redisReadTask *task)
{
    reply_node *n = s->free_replies;
    if (n) {
        s->free_replies = n->next;
        s->n_free_replies--;
    } else {
        n = gw_calloc(1, sizeof(*n));
        n->s = s;
    }
    n->r.type = task->type;
    n->r.integer = 0;
    n->r.len = 0;
    n->r.elements = 0;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = &n->r;
    }
    return n;
}

static void node_dispose(reply_node *n)
{
    free(n->r.str);
    free(n->r.element);
    free(n);
}

static void reply_free(void *p)
{
    redisReply *r = p;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            reply_free(r->element[i]);
    reply_node *n = NODE_OF(r);
    gw_store_t *s = n->s;
    if (s->n_free_replies >= FREE_REPLIES_MAX || s->state == ST_CLOSED) {
        node_dispose(n);
        return;
    }
    n->next = s->free_replies;
    s->free_replies = n;
    s->n_free_replies++;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len)
{
    reply_node *n = node_new(task->privdata, task);
    if (n->text_cap < len + 1) {
        free(n->r.str);
        n->text_cap = GW_MAX(len + 1, 64);
        n->r.str = gw_malloc(n->text_cap);
    }
    memcpy(n->r.str, str, len);
    n->r.str[len] = '\0';
    n->r.len = len;
    return &n->r;
}

static void *reply_array(const redisReadTask *task, int elements)
{
    reply_node *n = node_new(task->privdata, task);
    size_t want = elements > 0 ? (size_t)elements : 0;
    if (n->elem_cap < want) {
        free(n->r.element);
        n->elem_cap = GW_MAX(want, 8);
        n->r.element = gw_malloc(n->elem_cap * sizeof(redisReply *));
    }
    if (want)
        memset(n->r.element, 0, want * sizeof(redisReply *));
    n->r.elements = want;
    return &n->r;
}

static void *reply_integer(const redisReadTask *task, long long value)
{
    reply_node *n = node_new(task->privdata, task);
    n->r.integer = value;
    return &n->r;
}

static void *reply_nil(const redisReadTask *task) { return &node_new(task->privdata, task)->r; }

static redisReplyObjectFunctions reply_fns = {reply_string, reply_array, reply_integer,
                                              reply_nil, reply_free};

static void free_replies(gw_store_t *s)
{
    while (s->free_replies) {
        reply_node *n = s->free_replies;
        s->free_replies = n->next;
        node_dispose(n);
    }
    s->n_free_replies = 0;
}

/* ---------- the op FIFO and deadlines ---------- */

static gw_store_op_t *op_new(gw_store_t *s)
{
    gw_store_op_t *op = s->free_ops;
    if (op) {
        s->free_ops = op->next;
        s->n_free_ops--;
        memset(op, 0, sizeof(*op));
    } else {
        op = gw_calloc(1, sizeof(*op));
    }
    op->s = s;
    return op;
}

static void op_free(gw_store_t *s, gw_store_op_t *op)
{
    if (s->n_free_ops >= FREE_OPS_MAX || s->state == ST_CLOSED) {
        free(op);
        return;
    }
    op->next = s->free_ops;
    s->free_ops = op;
    s->n_free_ops++;
}

static void on_deadline(uv_timer_t *t);
static void teardown(gw_store_t *s, const char *why);

static void arm_deadline(gw_store_t *s)
{
    gw_store_op_t *op = s->next_due;
    uint64_t due = op ? op->deadline : 0;
    if (s->head && (!due || s->head->deadline + STALE_MS < due))
        due = s->head->deadline + STALE_MS; /* the staleness check of a dead connection */
    if (!due || (s->deadline_due && s->deadline_due <= due) || s->state == ST_CLOSED)
        return;
    uint64_t now = uv_now(s->loop);
    s->deadline_due = due;
    uv_timer_start(&s->deadline, on_deadline, due > now ? due - now : 0, 0);
}

static void fifo_push(gw_store_t *s, gw_store_op_t *op)
{
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    if (!s->next_due)
        s->next_due = op;
    arm_deadline(s);
}

/* Unlink op (the FIFO's head when Redis answers in order). */
static void fifo_remove(gw_store_t *s, gw_store_op_t *op)
{
    gw_store_op_t **pp = &s->head, *prev = NULL;
    while (*pp && *pp != op) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = op->next;
    if (s->tail == op)
        s->tail = prev;
    if (s->next_due == op)
        s->next_due = op->next;
}

static void handshake_failed(gw_store_t *s, const char *why)
{
    if (s->state == ST_CONNECTING)
        teardown(s, why);
}

static void on_deadline(uv_timer_t *t)
{
    gw_store_t *s = t->data;
    s->deadline_due = 0;
    uint64_t now = uv_now(s->loop);
    /* a callback may close the store (a stopping worker's last request): check state first */
    while (s->state != ST_CLOSED && s->next_due && s->next_due->deadline <= now) {
        gw_store_op_t *op = s->next_due;
        s->next_due = op->next;
        if (op->handshake) {
            handshake_failed(s, "connect/handshake timed out");
            return; /* teardown answered every op */
        }
        gw_store_cb cb = op->cb;
        op->cb = NULL;
        if (cb) {
            failure(s, "timeout", 1);
            cb(GW_STORE_TIMEOUT, NULL, op->ud);
        }
    }
    if (s->state == ST_CLOSED)
        return;
    if (s->head && s->head->deadline + STALE_MS <= now) {
        teardown(s, "no answer for 5 s");
        return;
    }
    arm_deadline(s);
}

/* ---------- replies ---------- */

static int is_error(const redisReply *r) { return r && r->type == REDIS_REPLY_ERROR; }

static unsigned connect_ms(const gw_store_t *s)
{
    return GW_MAX(CONNECT_MIN_MS, GW_MIN(CONNECT_MAX_MS, 4 * s->cfg->store.timeout_ms));
}

static void became_ready(gw_store_t *s)
{
    gw_debug("shared store (%s): connected", s->opts.name);
    uv_timer_stop(&s->retry); /* the connect deadline */
    s->state = ST_READY;
    s->backoff_ms = BACKOFF_MIN_MS;
    set_ready(s, 1);
    set_degraded(s, 0, NULL);
    if (s->opts.on_ready)
        s->opts.on_ready(s->opts.ud);
}

static void handshake_reply(gw_store_t *s, gw_store_op_t *op, redisReply *r)
{
    if (!r || s->state != ST_CONNECTING)
        return;
    if (is_error(r)) {
        char why[200];
        snprintf(why, sizeof(why), "%s failed: %.150s",
                 op->handshake == -1 ? "AUTH/SELECT" : "SCRIPT LOAD", r->str);
        teardown(s, why);
        return;
    }
    if (op->handshake > 0 && r->type == REDIS_REPLY_STRING && r->len == 40)
        memcpy(s->sha[op->handshake - 1], r->str, 41);
    if (--s->handshake_left == 0)
        became_ready(s);
}

/* The connection of ac died (a NULL reply or callback): mark the store down once. */
static void lost(gw_store_t *s, redisAsyncContext *ac, const char *why);

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    gw_store_op_t *op = privdata;
    gw_store_t *s = op->s;
    redisReply *r = reply;
    fifo_remove(s, op);
    if (!r)
        lost(s, ac, ac->errstr[0] ? ac->errstr : "connection lost");
    if (op->handshake) {
        handshake_reply(s, op, r);
    } else if (op->cb) {
        gw_store_cb cb = op->cb;
        op->cb = NULL;
        if (!r && s->state != ST_CLOSED)
            failure(s, "connection lost", 0);
        else if (is_error(r) && strncmp(r->str, "NOSCRIPT", 8) != 0)
            failure(s, r->str, 0);
        else
            success(s);
        cb(r ? GW_STORE_OK : GW_STORE_DOWN, r, op->ud);
    }
    op_free(s, op);
    if (s->state != ST_CLOSED)
        arm_deadline(s);
}

/* Subscriber: confirmations and messages arrive here (reply NULL when the connection died). */
static void on_sub(redisAsyncContext *ac, void *reply, void *privdata)
{
    gw_store_t *s = privdata;
    redisReply *r = reply;
    if (!r) {
        lost(s, ac, "connection lost");
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "subscribe") == 0 && s->state == ST_CONNECTING) {
        if (--s->handshake_left == 0)
            became_ready(s);
    } else if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING &&
               s->opts.on_message) {
        s->opts.on_message(r->element[2]->str, r->element[2]->len, s->opts.ud);
    }
}

/* ---------- connection ---------- */

/* The libuv adapter of hiredis 0.14 (hiredis/adapters/libuv.h) attaches the context, dispatches
 * its poll events and cleans up; its four event functions are replaced, for two reasons:
 * - it calls uv_poll_start on every add/del, even when nothing changes (hiredis re-adds the
 *   read event after every read), and each uv_poll_start costs an epoll_ctl DEL + ADD: here
 *   the poll handle is touched only when its event mask really changes;
 * - it drops poll errors (status < 0), so a reset or refused connection never reached hiredis
 *   (libuv has stopped the handle by then): on_poll hands an error to hiredis as a read, and
 *   recv reports it (the context disconnects, or the connect fails).
 * And a connected context does not poll for "writable" at all: the commands of one loop
 * iteration go out in one write at its end (flusher, a check handle; kick, an idle handle, keeps
 * the loop from blocking in poll before it ran); only a write that could not finish waits for
 * the socket to become writable. */
static void on_poll(uv_poll_t *h, int status, int events)
{
    redisLibuvEvents *p = h->data;
    if (status < 0) {
        if (p->context)
            redisAsyncHandleRead(p->context);
        return;
    }
    redisLibuvPoll(h, status, events);
}

static void set_events(redisLibuvEvents *p, int events)
{
    if (events == p->events)
        return;
    p->events = events;
    if (events)
        uv_poll_start(&p->handle, events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void add_read(void *pd)
{
    redisLibuvEvents *p = pd;
    set_events(p, p->events | UV_READABLE);
}

static void del_read(void *pd)
{
    redisLibuvEvents *p = pd;
    set_events(p, p->events & ~UV_READABLE);
}

static void on_kick(uv_idle_t *h) { GW_UNUSED(h); }

static void on_flush(uv_check_t *h)
{
    gw_store_t *s = h->data;
    s->flush_due = 0;
    uv_check_stop(&s->flusher);
    uv_idle_stop(&s->kick);
    if (s->ac) {
        s->flushing = 1;
        redisAsyncHandleWrite(s->ac); /* may disconnect: then s->ac is NULL afterwards */
        s->flushing = 0;
    }
}

static void add_write(void *pd)
{
    redisLibuvEvents *p = pd;
    gw_store_t *s = p->context ? p->context->data : NULL;
    if (!s || s->flushing || !(p->context->c.flags & REDIS_CONNECTED)) {
        set_events(p, p->events | UV_WRITABLE); /* connecting, or the socket was full */
        return;
    }
    if (!s->flush_due) {
        s->flush_due = 1;
        uv_check_start(&s->flusher, on_flush);
        uv_idle_start(&s->kick, on_kick);
    }
}

static void del_write(void *pd)
{
    redisLibuvEvents *p = pd;
    set_events(p, p->events & ~UV_WRITABLE);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (redisLibuvAttach(ac, loop) != REDIS_OK)
        return REDIS_ERR;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->c.reader->fn = &reply_fns;
    ac->c.reader->privdata = ac->data; /* the store: each read task gets it */
    return REDIS_OK;
}

static void on_retry(uv_timer_t *t);
static void on_connect_deadline(uv_timer_t *t);

static void schedule_retry(gw_store_t *s)
{
    if (s->state == ST_CLOSED)
        return;
    uv_timer_start(&s->retry, on_retry, s->backoff_ms, 0);
    s->backoff_ms = GW_MIN(s->backoff_ms * 2, BACKOFF_MAX_MS);
}

static void lost(gw_store_t *s, redisAsyncContext *ac, const char *why)
{
    if (s->ac != ac || !ac)
        return;
    s->ac = NULL;
    int was = s->state;
    gw_debug("shared store (%s): connection lost: %s", s->opts.name, why);
    if (s->state != ST_CLOSED)
        s->state = ST_DOWN;
    set_ready(s, 0);
    if (was != ST_CLOSED) {
        failure(s, why, 0);
        schedule_retry(s);
    }
}

/* Drop the connection now (hiredis answers its pending commands with NULL). */
static void teardown(gw_store_t *s, const char *why)
{
    redisAsyncContext *ac = s->ac;
    lost(s, ac, why);
    if (ac)
        redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    gw_store_t *s = ac->data;
    if (status != REDIS_OK) /* hiredis frees ac after this call */
        lost(s, (redisAsyncContext *)ac, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    gw_store_t *s = ac->data;
    lost(s, (redisAsyncContext *)ac, status == REDIS_OK ? "disconnected" : ac->errstr);
}

static int send_handshake_op(gw_store_t *s, int kind, int argc, const char **argv,
                             const size_t *lens)
{
    gw_store_op_t *op = op_new(s);
    op->handshake = kind;
    op->deadline = uv_now(s->loop) + connect_ms(s);
    if (redisAsyncCommandArgv(s->ac, on_reply, op, argc, argv, lens) != REDIS_OK) {
        op_free(s, op);
        return GW_ERROR;
    }
    fifo_push(s, op);
    s->handshake_left++;
    return GW_OK;
}

static int send_handshake(gw_store_t *s)
{
    const gw_config_t *c = s->cfg;
    char db[16];
    int rc = 0;
    if (c->store.password) {
        const char *a[3] = {"AUTH", c->store.user ? c->store.user : c->store.password,
                            c->store.password};
        rc |= send_handshake_op(s, -1, c->store.user ? 3 : 2, a, NULL);
    }
    if (c->store.db != 0 && !s->opts.subscribe) {
        snprintf(db, sizeof(db), "%d", c->store.db);
        const char *a[2] = {"SELECT", db};
        rc |= send_handshake_op(s, -1, 2, a, NULL);
    }
    if (s->opts.subscribe) {
        const char *a[2] = {"SUBSCRIBE", s->opts.subscribe};
        if (redisAsyncCommandArgv(s->ac, on_sub, s, 2, a, NULL) != REDIS_OK)
            return GW_ERROR;
        s->handshake_left++;
        return rc;
    }
    for (int i = 0; i < GW_SCRIPT_COUNT; i++) {
        const char *a[3] = {"SCRIPT", "LOAD", scripts[i]};
        rc |= send_handshake_op(s, 1 + i, 3, a, NULL);
    }
    return rc;
}

static void connect_now(gw_store_t *s)
{
    const gw_config_t *c = s->cfg;
    gw_debug("shared store (%s): connecting", s->opts.name);
    redisAsyncContext *ac = redisAsyncConnect(c->store.host, c->store.port);
    if (!ac || ac->err) {
        failure(s, ac ? ac->errstr : "cannot connect", 0);
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(s);
        return;
    }
    ac->data = s;
    if (attach(ac, s->loop) != REDIS_OK) {
        failure(s, "cannot watch the socket", 0);
        redisAsyncFree(ac);
        schedule_retry(s);
        return;
    }
    redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    s->state = ST_CONNECTING;
    uv_update_time(s->loop); /* the deadlines count from now (name resolution blocked) */
    s->handshake_left = 0;
    memset(s->sha, 0, sizeof(s->sha));
    if (send_handshake(s) != 0)
        teardown(s, "cannot send the handshake");
    else
        uv_timer_start(&s->retry, on_connect_deadline, connect_ms(s), 0);
}

static void on_connect_deadline(uv_timer_t *t)
{
    gw_store_t *s = t->data;
    if (s->state == ST_CONNECTING)
        teardown(s, "connect timed out");
}

static void on_retry(uv_timer_t *t)
{
    gw_store_t *s = t->data;
    if (s->state == ST_DOWN)
        connect_now(s);
}

gw_store_t *gw_store_new(uv_loop_t *loop, const gw_config_t *cfg, const gw_store_opts_t *opts)
{
    gw_store_t *s = gw_calloc(1, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    s->opts = *opts;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->state = ST_DOWN;
    gw_buf_init(&s->cmd);
    uv_timer_init(loop, &s->deadline);
    uv_timer_init(loop, &s->retry);
    uv_check_init(loop, &s->flusher);
    uv_idle_init(loop, &s->kick);
    s->deadline.data = s->retry.data = s->flusher.data = s->kick.data = s;
    s->handles_open = 4;
    pthread_mutex_lock(&G.lock);
    G.clients++;
    pthread_mutex_unlock(&G.lock);
    /* connect once the loop runs: a worker loads its VM first, and the handshake's deadline
     * must not run out meanwhile */
    uv_timer_start(&s->retry, on_retry, 0, 0);
    return s;
}

static void on_closed(uv_handle_t *h)
{
    gw_store_t *s = h->data;
    if (--s->handles_open != 0)
        return;
    while (s->free_ops) {
        gw_store_op_t *op = s->free_ops;
        s->free_ops = op->next;
        free(op);
    }
    free_replies(s);
    gw_buf_dispose(&s->cmd);
    free(s);
}

void gw_store_close(gw_store_t *s)
{
    if (!s || s->state == ST_CLOSED)
        return;
    set_ready(s, 0);
    pthread_mutex_lock(&G.lock);
    G.clients--;
    if (s->degraded) /* closing is not recovering: no log line */
        G.degraded--;
    s->degraded = 0;
    pthread_mutex_unlock(&G.lock);
    s->state = ST_CLOSED;
    redisAsyncContext *ac = s->ac;
    s->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* pending ops: their callbacks run now with GW_STORE_DOWN */
    uv_close((uv_handle_t *)&s->deadline, on_closed);
    uv_close((uv_handle_t *)&s->retry, on_closed);
    uv_close((uv_handle_t *)&s->flusher, on_closed);
    uv_close((uv_handle_t *)&s->kick, on_closed);
}

int gw_store_ready(const gw_store_t *s) { return s && s->state == ST_READY; }

/* ---------- commands ---------- */

/* The unified request protocol (RESP), as redisFormatCommandArgv writes it, but without its
 * sds reallocations and format parsing, written in place into s->cmd: "*<argc>\r\n", then
 * "$<len>\r\n<arg>\r\n" per argument. */
static char *put_count(char *p, char tag, unsigned long long n)
{
    char tmp[24];
    int k = 0;
    do
        tmp[k++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    *p++ = tag;
    while (k > 0)
        *p++ = tmp[--k];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Only on a ready connection: while (re)connecting a call would wait for its timeout on a
 * connection that may never come; it falls back at once instead. */
static int can_send(const gw_store_t *s) { return s && s->state == ST_READY && s->ac; }

int gw_store_cmd_begin(gw_store_t *s, int script, int argc)
{
    int id = script & 0xff;
    if (!can_send(s) || argc < 0 || argc > MAX_ARGS - 2 || (script >= 0 && id >= GW_SCRIPT_COUNT))
        return GW_EAGAIN;
    gw_buf_t *b = &s->cmd;
    gw_buf_reset(b);
    gw_buf_reserve(b, 16);
    if (script < 0) {
        b->len = (size_t)(put_count(b->data, '*', (unsigned)argc) - b->data);
        return GW_OK;
    }
    b->len = (size_t)(put_count(b->data, '*', (unsigned)argc + 2) - b->data);
    if ((script & GW_SCRIPT_EVAL) || !s->sha[id][0]) {
        gw_store_cmd_arg(s, "EVAL", 4);
        gw_store_cmd_arg(s, scripts[id], strlen(scripts[id]));
    } else {
        gw_store_cmd_arg(s, "EVALSHA", 7);
        gw_store_cmd_arg(s, s->sha[id], 40);
    }
    return GW_OK;
}

void gw_store_cmd_arg2(gw_store_t *s, const char *a, size_t an, const char *c, size_t cn)
{
    gw_buf_t *b = &s->cmd;
    gw_buf_reserve(b, an + cn + 32);
    char *p = put_count(b->data + b->len, '$', an + cn);
    memcpy(p, a, an);
    memcpy(p + an, c, cn);
    p += an + cn;
    *p++ = '\r';
    *p++ = '\n';
    b->len = (size_t)(p - b->data);
}

void gw_store_cmd_arg(gw_store_t *s, const char *a, size_t n) { gw_store_cmd_arg2(s, a, n, "", 0); }

/* v in base 10 or 16 (lower-case digits) as one bulk-string argument; inlined into the two
 * callers, so the base is a constant there */
static inline void cmd_num(gw_store_t *s, long long v, unsigned base)
{
    static const char digit[] = "0123456789abcdef";
    char tmp[24];
    int k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[k++] = digit[u % base];
    while ((u /= base) != 0);
    if (v < 0)
        tmp[k++] = '-';
    gw_buf_t *b = &s->cmd;
    gw_buf_reserve(b, 32);
    char *p = put_count(b->data + b->len, '$', (unsigned)k);
    while (k > 0)
        *p++ = tmp[--k];
    *p++ = '\r';
    *p++ = '\n';
    b->len = (size_t)(p - b->data);
}

void gw_store_cmd_hex(gw_store_t *s, long long v) { cmd_num(s, v, 16); }

void gw_store_cmd_int(gw_store_t *s, long long v) { cmd_num(s, v, 10); }

gw_store_op_t *gw_store_cmd_send(gw_store_t *s, gw_store_cb cb, void *ud)
{
    if (!can_send(s))
        return NULL;
    gw_store_op_t *op = op_new(s);
    op->cb = cb;
    op->ud = ud;
    op->deadline = uv_now(s->loop) + (uint64_t)s->cfg->store.timeout_ms;
    if (redisAsyncFormattedCommand(s->ac, on_reply, op, s->cmd.data, s->cmd.len) != REDIS_OK) {
        op_free(s, op);
        return NULL;
    }
    atomic_fetch_add_explicit(&G.calls, 1, memory_order_relaxed);
    fifo_push(s, op);
    return op;
}

static gw_store_op_t *send_argv(gw_store_t *s, int script, int argc, const char **argv,
                                const size_t *lens, gw_store_cb cb, void *ud)
{
    if (gw_store_cmd_begin(s, script, argc) != GW_OK)
        return NULL;
    for (int i = 0; i < argc; i++)
        gw_store_cmd_arg(s, argv[i], lens ? lens[i] : strlen(argv[i]));
    return gw_store_cmd_send(s, cb, ud);
}

gw_store_op_t *gw_store_send(gw_store_t *s, int argc, const char **argv, const size_t *lens,
                             gw_store_cb cb, void *ud)
{
    return argc < 1 ? NULL : send_argv(s, -1, argc, argv, lens, cb, ud);
}

gw_store_op_t *gw_store_eval(gw_store_t *s, int script, int argc, const char **argv,
                             const size_t *lens, gw_store_cb cb, void *ud)
{
    return script < 0 ? NULL : send_argv(s, script, argc, argv, lens, cb, ud);
}

void gw_store_cancel(gw_store_op_t *op)
{
    if (op)
        op->cb = NULL;
}
