/*
 * pieces-gateway: the shared dictionary, a hash table shared by all worker threads.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Keys are byte strings (binary safe, 1..GW_SHDICT_KEY_MAX bytes). Values are numbers (double)
 * or byte strings, copied in on store and copied out on read: the dictionary never hands out a
 * pointer into its own memory. Each key may carry a TTL (monotonic clock; expired keys are
 * invisible at once and reclaimed lazily on access, by a small sweep on every store, and by
 * gw_shdict_flush_expired). Memory is bounded: capacity_bytes is split evenly across the
 * shards, each shard evicts its least recently used keys when a store would exceed its share.
 *
 * Thread-safety: every function except gw_shdict_new/free/set_clock may be called from any
 * thread at any time. Each call takes one shard mutex at a time (keys/flush visit the shards
 * one after another, so they are not a snapshot across shards), except gw_shdict_window_incr,
 * which holds the locks of the shards its keys live in, taken in ascending shard order.
 *
 * This header is Lua-free; the Lua binding lives in src/ffi_shdict.c and lua/gw/shared.lua.
 */
#ifndef GW_SHDICT_H
#define GW_SHDICT_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes: 0 on success, one of these on failure. */
/* Negative errno values, as everywhere in the C tree (src/gw.h). */
#define GW_SHDICT_OK 0
#define GW_SHDICT_NOT_FOUND (-ENOENT)      /* no such key (or it expired) */
#define GW_SHDICT_EXISTS (-EEXIST)         /* add: the key is present */
#define GW_SHDICT_NO_MEMORY (-ENOMEM)      /* larger than a shard's share, or malloc failed */
#define GW_SHDICT_NOT_NUMBER (-EDOM)       /* incr on a string value */
#define GW_SHDICT_TOO_SMALL (-ENOBUFS)     /* the caller's buffer is too small; *len says how much */
#define GW_SHDICT_BAD_KEY (-EKEYREJECTED)  /* empty key, or longer than GW_SHDICT_KEY_MAX */
#define GW_SHDICT_INVALID (-EINVAL)        /* bad argument: value type, negative or NaN ttl */
#define GW_SHDICT_NO_DICT (-ENODEV)        /* FFI layer: no process-wide dictionary installed */

/* Value types (stable numbers: the FFI layer and lua/gw/shared.lua use them). */
#define GW_SHDICT_TNUMBER 1
#define GW_SHDICT_TSTRING 2

#define GW_SHDICT_KEY_MAX 65535
#define GW_SHDICT_DEFAULT_SHARDS 64

typedef struct gw_shdict gw_shdict_t;

/* A monotonic clock in nanoseconds. The default is CLOCK_MONOTONIC; tests inject their own. */
typedef uint64_t (*gw_shdict_clock_fn)(void *ud);

/* A value going in (str borrowed for the duration of the call) or a type+number coming out. */
typedef struct {
    int type;        /* GW_SHDICT_TNUMBER or GW_SHDICT_TSTRING */
    double num;      /* TNUMBER */
    const char *str; /* TSTRING: borrowed, need not be NUL-terminated; may be NULL if len == 0 */
    size_t len;      /* TSTRING: byte length */
} gw_shdict_val_t;

/* Statistics, for tests and metrics. */
typedef struct {
    size_t entries;    /* live + not yet reclaimed expired entries */
    size_t used_bytes; /* bytes charged against the capacity (entry headers + keys + values) */
    size_t capacity_bytes;
    uint64_t evictions; /* unexpired entries dropped by LRU to make room */
} gw_shdict_stats_t;

/*
 * Create a dictionary of at most capacity_bytes (charged per entry: a fixed header of about
 * 64 bytes plus key and value bytes; the bucket arrays are not charged). shards is rounded up
 * to a power of two (0 = GW_SHDICT_DEFAULT_SHARDS, at most 4096), then halved while a shard
 * would get less than 4 KiB. The largest storable entry is capacity_bytes / shards. The default
 * clock is CLOCK_MONOTONIC_COARSE: TTLs are precise to a kernel tick (1-4 ms).
 * Returns NULL on allocation failure or capacity_bytes == 0.
 * The caller frees with gw_shdict_free once no other thread uses it.
 */
gw_shdict_t *gw_shdict_new(size_t capacity_bytes, unsigned shards);
void gw_shdict_free(gw_shdict_t *d);

/* Replace the clock (tests). Not thread-safe: call before the dictionary is shared. */
void gw_shdict_set_clock(gw_shdict_t *d, gw_shdict_clock_fn fn, void *ud);

/*
 * Look up key. On success *out gets the type (and num for numbers). For strings the bytes are
 * copied into buf, whose capacity is *len on entry; *len is set to the value's length. If the
 * string does not fit, returns GW_SHDICT_TOO_SMALL with *len = the needed size and nothing is
 * copied (retry with a bigger buffer: the value may change between the two calls). out->str is
 * set to buf. A hit marks the key most recently used. GW_SHDICT_NOT_FOUND if absent/expired.
 */
int gw_shdict_get(gw_shdict_t *d, const char *key, size_t klen, gw_shdict_val_t *out, char *buf,
                  size_t *len);

/*
 * Store v under key, replacing any previous value and TTL. ttl in seconds: 0 = no expiry,
 * negative or NaN = GW_SHDICT_INVALID, >= ~31 years = no expiry. May evict least recently used
 * keys of the same shard. On GW_SHDICT_NO_MEMORY because malloc failed the old value is gone
 * (as in OpenResty); when the entry can never fit (larger than a shard) nothing changes.
 */
int gw_shdict_set(gw_shdict_t *d, const char *key, size_t klen, const gw_shdict_val_t *v,
                  double ttl);

/* As gw_shdict_set, but GW_SHDICT_EXISTS (and no change) if key is present and unexpired. */
int gw_shdict_add(gw_shdict_t *d, const char *key, size_t klen, const gw_shdict_val_t *v,
                  double ttl);

/*
 * Atomically add delta to the number under key; the result goes to *out. An existing key keeps
 * its TTL. A missing key: if has_init, it is created as init + delta with init_ttl (same rules
 * as set's ttl); otherwise GW_SHDICT_NOT_FOUND. GW_SHDICT_NOT_NUMBER for a string value.
 */
int gw_shdict_incr(gw_shdict_t *d, const char *key, size_t klen, double delta, int has_init,
                   double init, double init_ttl, double *out);

/* One rule of gw_shdict_window_incr: a sliding-window counter. */
typedef struct {
    const char *key;   /* the current window's counter (borrowed): incremented by 1 */
    size_t klen;
    const char *prev;  /* the previous window's counter (borrowed): only read */
    size_t plen;
    double weight;     /* the weight of the previous count (the unelapsed fraction) */
    double limit;      /* the rule passes when prev * weight + cur + 1 <= limit */
    double ttl;        /* seconds, for a counter this call creates (as set's ttl) */
    double cur_count;  /* out: the current counter before this call (0 when absent) */
    double prev_count; /* out: the previous counter (0 when absent) */
} gw_shdict_window_t;

#define GW_SHDICT_WINDOW_MAX 8 /* rules per call */

/*
 * Check-and-increment of several sliding-window counters as one atomic step: every rule's two
 * counters are read (into cur_count/prev_count); when every rule passes, every rule's key is
 * incremented by 1 (a missing key is created with its ttl; an existing one keeps its TTL) and
 * the result is 1; when any rule fails, nothing changes and the result is 0. Concurrent calls
 * from any number of threads admit exactly what one caller at a time would. Negative status:
 * GW_SHDICT_INVALID (n is 0 or above GW_SHDICT_WINDOW_MAX, a bad ttl), GW_SHDICT_BAD_KEY,
 * GW_SHDICT_NOT_NUMBER (a counter holds a string; nothing changed), GW_SHDICT_NO_MEMORY (a
 * counter could not be created; the rules before it were incremented).
 */
int gw_shdict_window_incr(gw_shdict_t *d, gw_shdict_window_t *w, size_t n);

/* Remove key. 0 if it was present (even if expired), GW_SHDICT_NOT_FOUND otherwise. */
int gw_shdict_delete(gw_shdict_t *d, const char *key, size_t klen);

/*
 * Call fn(key, klen, ud) for unexpired keys starting with prefix (plen may be 0), at most max
 * times (0 = no limit). fn runs with a shard lock held: it must copy what it needs and must not
 * call into the dictionary. Order is unspecified. Returns the number of calls made.
 */
typedef void (*gw_shdict_key_fn)(const char *key, size_t klen, void *ud);
size_t gw_shdict_keys(gw_shdict_t *d, const char *prefix, size_t plen, size_t max,
                      gw_shdict_key_fn fn, void *ud);

/* Reclaim up to max expired entries (0 = all). Returns how many were freed. */
size_t gw_shdict_flush_expired(gw_shdict_t *d, size_t max);

/* Totals over all shards (each shard read under its lock; not a global snapshot). */
void gw_shdict_stats(gw_shdict_t *d, gw_shdict_stats_t *st);

/* A static, human-readable message for a status code. */
const char *gw_shdict_strerror(int status);

/*
 * The process-wide instance used by the FFI layer. Installed once at start-up by the main
 * thread (before workers start) and removed only after they stopped; the dictionary remains
 * owned by whoever created it. Lua VM reloads do not touch it.
 */
gw_shdict_t *gw_shdict_global(void);
void gw_shdict_set_global(gw_shdict_t *d);

#endif
