/*
 * pieces-gateway: per-thread free lists of fixed-size blocks (request structs, chat state).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Why: a streamed chat completion allocated a few large structs per stream (the chat
 * parameters are ~2.8 KiB); glibc serves a request of 1 KiB or more only after
 * malloc_consolidate has walked the fast bins, a few thousand instructions per stream. A list
 * of freed blocks per thread gives them back zeroed (calloc's contract) for a memset.
 *
 * Use: one `static __thread gw_freelist_t` per block type and size (a list holds blocks of
 * exactly one size: the caller passes the same size every time); blocks come and go on the
 * thread that owns the list (the worker's loop). At most GW_FREELIST_MAX blocks are kept; the
 * rest go back to malloc. gw_freelist_drain frees the kept blocks. Each module exports one
 * drain call for its lists and declares GW_FREELIST_OWNER(name, drain): name_arm(), called
 * before a thread's first use, has drain run when that thread ends (a pthread key
 * destructor) or, on the main thread, at exit (atexit, before LeakSanitizer looks: it takes
 * no thread-local storage for a root). No block outlives its thread. Under AddressSanitizer a
 * kept block is poisoned: a use after free of a pooled block is still reported.
 */
#ifndef GW_FREELIST_H
#define GW_FREELIST_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define GW_FL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_FL_ASAN 1
#endif
#endif
#ifdef GW_FL_ASAN
#include <sanitizer/asan_interface.h>
#define GW_FL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define GW_FL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define GW_FL_POISON(p, n) ((void)(p), (void)(n))
#define GW_FL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define GW_FREELIST_MAX 64

/* Defines static name_arm(): drain (void drain(void), freeing the calling thread's lists)
 * then runs when the arming thread ends, or at exit for the main thread. One TLS test per
 * call once armed. */
#define GW_FREELIST_OWNER(name, drain)                                                         \
    static pthread_key_t name##_key_;                                                          \
    static pthread_once_t name##_once_ = PTHREAD_ONCE_INIT;                                    \
    static __thread int name##_armed_;                                                         \
    static void name##_thread_end_(void *v)                                                    \
    {                                                                                          \
        (void)v;                                                                               \
        drain();                                                                               \
    }                                                                                          \
    static void name##_init_(void)                                                             \
    {                                                                                          \
        pthread_key_create(&name##_key_, name##_thread_end_);                                  \
        atexit(drain);                                                                         \
    }                                                                                          \
    static inline void name##_arm(void)                                                        \
    {                                                                                          \
        if (name##_armed_)                                                                     \
            return;                                                                            \
        name##_armed_ = 1;                                                                     \
        pthread_once(&name##_once_, name##_init_);                                             \
        pthread_setspecific(name##_key_, (void *)1);                                           \
    }

typedef struct {
    void *head; /* the first kept block; its first word links the next */
    unsigned n;
} gw_freelist_t;

/* A zeroed block of `size` bytes (>= sizeof(void *)), or NULL when calloc fails (libc only:
 * the upstream library uses it too). */
static inline void *gw_freelist_get(gw_freelist_t *fl, size_t size)
{
    void *p = fl->head;
    if (!p)
        return calloc(1, size);
    GW_FL_UNPOISON(p, size);
    fl->head = *(void **)p;
    fl->n--;
    memset(p, 0, size);
    return p;
}

/* Gives a block from gw_freelist_get back (NULL is ignored). */
static inline void gw_freelist_put(gw_freelist_t *fl, void *p, size_t size)
{
    if (!p)
        return;
    if (fl->n >= GW_FREELIST_MAX) {
        free(p);
        return;
    }
    *(void **)p = fl->head;
    fl->head = p;
    fl->n++;
    GW_FL_POISON(p, size);
}

/* Frees every kept block. */
static inline void gw_freelist_drain(gw_freelist_t *fl, size_t size)
{
    while (fl->head) {
        void *p = fl->head;
        GW_FL_UNPOISON(p, size);
        fl->head = *(void **)p;
        free(p);
    }
    fl->n = 0;
}

#endif
