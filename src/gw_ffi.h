/*
 * pieces-gateway: the C <-> Lua seam. Every function Lua calls on the request path is declared
 * here and nowhere else.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Rules (OpenResty style): plain scalar arguments, pointer+length strings, caller-provided
 * buffers; return an int status (0 ok, a negative GW_FFI_E* on failure) unless noted; never
 * call back into Lua. The constants Lua needs are the enums at the top of the block: the
 * host library reads them as ffi.C.GW_FFI_*, so no number is kept by hand on the Lua side. The text between GW_FFI_BEGIN and GW_FFI_END must be parsable by LuaJIT's
 * ffi.cdef: the ffi.cdef blocks of the lua/gw modules are checked against it by a test.
 */
#ifndef GW_FFI_H
#define GW_FFI_H
#include <stddef.h>
#include <stdint.h>

/* GW_FFI_BEGIN */

/* --- constants shared with Lua (ffi.C.GW_FFI_* in lua/gw; the C names equal them, see the
 * static asserts in src/ffi.c) --- */
/* Status: 0 or a negative errno (Linux numbers), one meaning per value in the whole tree. */
enum {
    GW_FFI_OK = 0,
    GW_FFI_EPERM = -1,         /* not allowed in the current state (GW_ESTATE) */
    GW_FFI_ENOENT = -2,        /* not found (GW_ENOENT, GW_SHDICT_NOT_FOUND) */
    GW_FFI_EIO = -5,           /* failure, see the message (GW_ERROR) */
    GW_FFI_EAGAIN = -11,       /* try again, too many (GW_EAGAIN) */
    GW_FFI_ENOMEM = -12,       /* no memory (GW_ENOMEM, GW_SHDICT_NO_MEMORY) */
    GW_FFI_EEXIST = -17,       /* exists (GW_EEXIST, GW_SHDICT_EXISTS) */
    GW_FFI_ENODEV = -19,       /* no shared dictionary (GW_SHDICT_NO_DICT) */
    GW_FFI_EINVAL = -22,       /* invalid argument (GW_EINVAL, GW_SHDICT_INVALID) */
    GW_FFI_EDOM = -33,         /* not a number (GW_SHDICT_NOT_NUMBER) */
    GW_FFI_ENOBUFS = -105,     /* the caller's buffer is too small (GW_SHDICT_TOO_SMALL) */
    GW_FFI_EKEYREJECTED = -129 /* empty or too long key (GW_SHDICT_BAD_KEY) */
};
/* gw_ffi_req_str's `what` */
enum {
    GW_FFI_REQ_METHOD = 0,
    GW_FFI_REQ_PATH = 1,
    GW_FFI_REQ_URI = 2,
    GW_FFI_REQ_QUERY = 3,
    GW_FFI_REQ_BODY = 4,
    GW_FFI_REQ_PEER_IP = 5,
    GW_FFI_REQ_CLIENT_IP = 6
};
/* gw_ffi_log's level (gw_log_level_t) */
enum { GW_FFI_LOG_DEBUG = 0, GW_FFI_LOG_INFO = 1, GW_FFI_LOG_WARN = 2, GW_FFI_LOG_ERROR = 3 };
/* shared dictionary value types (GW_SHDICT_T*) */
enum { GW_FFI_TNUMBER = 1, GW_FFI_TSTRING = 2 };
/* gw_ffi_chat_attempt's result (gw_be_class_t, GW_ATTEMPT_CANCELLED) and next */
enum {
    GW_FFI_ATTEMPT_OK = 0,
    GW_FFI_ATTEMPT_UNREACHABLE = 1,
    GW_FFI_ATTEMPT_TIMEOUT = 2,
    GW_FFI_ATTEMPT_BAD_ANSWER = 3,
    GW_FFI_ATTEMPT_REFUSED = 4,
    GW_FFI_ATTEMPT_CANCELLED = 5
};
enum { GW_FFI_NEXT_NONE = 0, GW_FFI_NEXT_RETRY = 1, GW_FFI_NEXT_FALLBACK = 2 };
/* a chat target's variant for the Pieces backend (gw_pieces.h) */
enum { GW_FFI_PIECES_GPT = 0, GW_FFI_PIECES_VERTEX = 1 };
/* gw_ffi_store_send's script (GW_SCRIPT_*; | GW_FFI_SCRIPT_EVAL: send the body) and the types
 * gw_ffi_store_reply answers (negative: there was no answer, or no such element) */
enum {
    GW_FFI_SCRIPT_WINDOW = 0,
    GW_FFI_SCRIPT_INCR = 1,
    GW_FFI_SCRIPT_KEYS = 2,
    GW_FFI_SCRIPT_MAP_ADD = 3,
    GW_FFI_SCRIPT_MAP_DEL = 4,
    GW_FFI_SCRIPT_EVAL = 256
};
enum {
    GW_FFI_REPLY_NONE = -3,
    GW_FFI_REPLY_DOWN = -2,
    GW_FFI_REPLY_TIMEOUT = -1,
    GW_FFI_REPLY_NIL = 0,
    GW_FFI_REPLY_INTEGER = 1,
    GW_FFI_REPLY_STRING = 2,
    GW_FFI_REPLY_ARRAY = 3,
    GW_FFI_REPLY_ERROR = 4,
    GW_FFI_REPLY_STATUS = 5
};

/* --- request (core) --- */
int gw_ffi_req_str(void *req, int what, const char **p, size_t *len);
int gw_ffi_req_header(void *req, const char *name, size_t nlen, const char **p, size_t *len);
int gw_ffi_req_set_path(void *req, const char *p, size_t len);
int gw_ffi_req_set_log_model(void *req, const char *p, size_t len);
int gw_ffi_resp_header(void *req, const char *n, size_t nl, const char *v, size_t vl);
int gw_ffi_resp_answer(void *req, int status, const char *ctype, size_t ctlen, const char *body,
                       size_t blen);
/* An answer with the OpenAI error envelope (gw_openai_error_json); status as resp_answer. */
int gw_ffi_resp_error(void *req, int status, const char *code, size_t clen, const char *msg,
                      size_t mlen, const char *type, size_t tlen);
int gw_ffi_resp_status(void *req);
/* 1 when the C router will run the route phase for req (its path and method as they are now:
 * POST {P}/chat/completions, {P}/tokenize; src/routes.c owns the table), else 0. */
int gw_ffi_req_routed(void *req);
double gw_ffi_now(void);
int gw_ffi_log(int level, const char *msg, size_t len);
int gw_ffi_debug_enabled(void);
int gw_ffi_env(const char *name, const char **p, size_t *len);
int gw_ffi_parse_int(const char *s, long long *out);
int gw_ffi_parse_num(const char *s, double *out);
int gw_ffi_parse_bool(const char *s, int *out);
int gw_ffi_random_bytes(unsigned char *buf, size_t n);
int gw_ffi_secure_equal(const char *a, size_t alen, const char *b, size_t blen);
int gw_ffi_persist(const char *path, size_t plen, const char *data, size_t dlen);
int gw_ffi_reload(void);
int gw_ffi_status(char *buf, size_t cap);
/* stat(2) of a regular file: its size and modification time (unix seconds with the fraction).
 * 0; GW_ENOENT when it does not exist; GW_EINVAL when it is not a regular file or the path is
 * empty, too long or holds a NUL; GW_ERROR otherwise (e.g. permission denied). */
int gw_ffi_file_info(const char *path, size_t plen, long long *size, double *mtime);

/* The text rule of JSON bodies (src/jsontext.h): 0 when every byte sequence is valid UTF-8 and
 * no \u escape is a lone surrogate; GW_EINVAL with *at the offset of the first offending byte. */
int gw_ffi_json_text_check(const char *s, size_t len, size_t *at);

/* --- shared dictionary --- */
/* The process-wide dictionary (src/shdict.h). Status: 0, or a negative GW_FFI_E* (the
 * GW_SHDICT_* of shdict.h). Value type GW_FFI_TNUMBER (num) or GW_FFI_TSTRING (bytes). get
 * copies a string into buf (capacity *len) and sets *len to its length; GW_FFI_ENOBUFS sets
 * *len to the size needed: retry with a bigger buf. keys writes each key as a 2-byte
 * little-endian length then its bytes, sets *len to the bytes written and returns the number
 * of keys (max 0 = no limit); GW_FFI_ENOBUFS as for get. */
int gw_ffi_shdict_get(const char *key, size_t key_len, int *type, double *num, char *buf,
                      size_t *len);
int gw_ffi_shdict_set(const char *key, size_t key_len, int type, double num, const char *str,
                      size_t str_len, double ttl);
int gw_ffi_shdict_add(const char *key, size_t key_len, int type, double num, const char *str,
                      size_t str_len, double ttl);
int gw_ffi_shdict_incr(const char *key, size_t key_len, double delta, int has_init,
                       double init, double ttl, double *out);
int gw_ffi_shdict_delete(const char *key, size_t key_len);
int gw_ffi_shdict_keys(const char *prefix, size_t prefix_len, int max, unsigned char *buf,
                       size_t *len);
/* Sliding-window check-and-increment of n rules as one atomic step (gw_shdict_window_incr):
 * keys holds 2n strings (each rule's current, then previous counter) with their lengths in
 * klens; args 3n numbers (weight, limit, ttl of each rule); counts gets 2n numbers (each rule's
 * current and previous count before the call). 1 admitted (every current counter + 1),
 * 0 rejected (nothing changed), or a negative GW_SHDICT_* status. */
int gw_ffi_shdict_window_incr(int n, const char **keys, const size_t *klens, const double *args,
                              double *counts);

/* --- shared store (Redis, src/store.h) --- */
/* Send a command for req on this worker's store connection. script < 0: argv is the whole
 * command; else a GW_FFI_SCRIPT_* number and argv follows EVALSHA <sha> (numkeys, keys, args).
 * 0: sent, and the calling phase must yield until the host resumes it, then read the answer
 * with gw_ffi_store_reply. GW_FFI_EAGAIN: the store is not ready, nothing was sent. req NULL:
 * no answer wanted (fire and forget). */
int gw_ffi_store_send(void *req, int script, int argc, const char **argv, const size_t *lens);
/* The rate limiter's script (GW_FFI_SCRIPT_WINDOW, | GW_FFI_SCRIPT_EVAL in flags: send the body)
 * for n rules (1..8), formatted here from the rules' values: keys[2i], keys[2i+1] the current
 * and previous window's key (without the store's "gw:" prefix), nums[3i..3i+2] weight, limit,
 * ttl (seconds). As gw_ffi_store_send otherwise (GW_FFI_EINVAL: bad n). */
int gw_ffi_store_window(void *req, int flags, int n, const char **keys, const size_t *klens,
                        const double *nums);
/* The answer the resumed phase waited for, valid until it yields again or returns. i = 0: the
 * reply, i >= 1: its i-th array element. Returns a GW_FFI_REPLY_*: INTEGER (*num), STRING,
 * ERROR, STATUS (*p, *len), ARRAY (*num = its size), NIL; TIMEOUT, DOWN (no answer), NONE. */
int gw_ffi_store_reply(int i, const char **p, size_t *len, double *num);
/* The same answer's array elements 1..max as numbers into out[0..max-1], in one call: returns
 * how many leading elements were integers (0..max; out[k] is set for those), or -1 when the
 * answer is not an array. */
int gw_ffi_store_reply_ints(double *out, int max);
/* Replicated maps with the Redis store: queue a local change for Redis (add 1 / delete 0; the
 * value is ignored for a delete). 0, or GW_EAGAIN when the queue is full. */
int gw_ffi_map_push(int add, const char *map, size_t mlen, const char *field, size_t flen,
                    const char *value, size_t vlen);
/* Keep this process's copy of map in sync with Redis from now on. */
int gw_ffi_map_watch(const char *map, size_t mlen);

/* --- tokenizer --- */
long long gw_ffi_tok_count(const char *enc, size_t elen, const char *text, size_t tlen);

/* --- chat (route phase; log phase for the attempts) --- */
/* Starts the request's chat parameters: the model name to echo, the ingress format ("chat"),
 * stream and stream_options.include_usage. Then one gw_ffi_chat_target per backend to try, in
 * order, each followed by its sampling and parts. */
int gw_ffi_chat_begin(void *req, const char *echo, size_t elen, const char *ingress,
                      size_t ilen, int stream, int include_usage);
int gw_ffi_chat_target(void *req, const char *backend, size_t blen, const char *model,
                       size_t mlen, const char *enc, size_t enclen, long long prompt_tokens,
                       long long completion_offset, int variant);
int gw_ffi_chat_sampling(void *req, int has_temperature, double temperature, int has_top_p,
                         double top_p);
int gw_ffi_chat_part(void *req, int kind, const char *text, size_t len);
/* The OpenAI-shaped body the HTTP backends send (default: the request's own body). */
int gw_ffi_chat_body(void *req, const char *body, size_t len);
/* JSON object members (no braces; the policy's encoder made them) the answer format splices
 * into its answer object as they are: the responses format's echoed request parameters. */
int gw_ffi_chat_fields(void *req, const char *json, size_t len);
/* One stop sequence the engine applies to the answer's text (1..256 bytes, no NUL; at most 16:
 * GW_EAGAIN past them). */
int gw_ffi_chat_stop(void *req, const char *seq, size_t len);
/* Attempt i (0-based) of the finished request: backend name, result (0 ok, 1 unreachable,
 * 2 timeout, 3 bad answer, 4 refused, 5 cancelled), upstream status, next (0 none, 1 retry,
 * 2 fallback). GW_ENOENT past the last one. */
int gw_ffi_chat_attempt(void *req, int i, const char **backend, size_t *blen, int *result,
                        int *status, int *next);
/* This worker's backends and their pool state as one JSON object into buf; returns the length
 * (retry with a bigger buf when it is >= cap). */
int gw_ffi_backends_json(void *req, char *buf, size_t cap);

/* --- metrics (host.metrics, lua/gw/metrics.lua) --- */
/* Registers a metric family, or finds the same one registered before: its id (>= 0); negative
 * with the reason in err (NUL-terminated, truncated to errcap). type 0 counter, 1 gauge,
 * 2 histogram; agg (gauges) 0 sum, 1 max, 2 last; labels: the label names joined by ",". */
int gw_ffi_metrics_family(const char *name, size_t nlen, const char *help, size_t hlen, int type,
                          int agg, const char *labels, size_t llen, const double *buckets,
                          int nbuckets, char *err, size_t errcap);
/* The id of a label value (>= 0; the id of "other" past the bounds). */
int gw_ffi_metrics_label(const char *value, size_t len);
/* op 0 add (counter, gauge), 1 set (gauge), 2 observe (histogram); labels: n ids, one per label
 * name of the family. 0, or GW_EINVAL for an unknown family or a wrong label count. */
int gw_ffi_metrics_update(int family, int op, const uint16_t *labels, int n, double value);
/* A model name of the catalog (bounds the model label of the LLM metrics). */
int gw_ffi_metrics_catalog(const char *name, size_t len);
/* A per-request stats string for the access log and metrics: field 0 route, 1 model label
 * (truncated to the record's size). 0, or GW_EINVAL for another field or a NUL byte. */
int gw_ffi_req_set_stat(void *req, int field, const char *p, size_t len);

/* GW_FFI_END */

#endif
