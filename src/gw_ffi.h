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
 * buffers; return an int status (0 ok, negative GW_E* on failure) unless noted; never call
 * back into Lua. The text between GW_FFI_BEGIN and GW_FFI_END must be parsable by LuaJIT's
 * ffi.cdef: the ffi.cdef blocks of the lua/gw modules are checked against it by a test.
 */
#ifndef GW_FFI_H
#define GW_FFI_H
#include <stddef.h>
#include <stdint.h>

/* GW_FFI_BEGIN */

/* --- request (core) --- */
int gw_ffi_req_str(void *req, int what, const char **p, size_t *len);
int gw_ffi_req_header(void *req, const char *name, size_t nlen, const char **p, size_t *len);
int gw_ffi_req_set_path(void *req, const char *p, size_t len);
int gw_ffi_req_set_log_model(void *req, const char *p, size_t len);
int gw_ffi_resp_header(void *req, const char *n, size_t nl, const char *v, size_t vl);
int gw_ffi_resp_answer(void *req, int status, const char *ctype, size_t ctlen, const char *body,
                       size_t blen);
int gw_ffi_resp_status(void *req);
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
/* The process-wide dictionary (src/shdict.h). Status: 0, or negative GW_SHDICT_*. Value type
 * 1 = number (num), 2 = string (bytes). get copies a string into buf (capacity *len) and sets
 * *len to its length; -5 (too small) sets *len to the size needed: retry with a bigger buf.
 * keys writes each key as a 2-byte little-endian length then its bytes, sets *len to the bytes
 * written and returns the number of keys (max 0 = no limit); -5 as for get. */
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

/* --- tokenizer --- */
long long gw_ffi_tok_count(const char *enc, size_t elen, const char *text, size_t tlen);

/* --- chat completions (route phase) --- */
int gw_ffi_chat_begin(void *req, int service, const char *model, size_t mlen, const char *echo,
                      size_t elen, const char *enc, size_t enclen, int stream, int include_usage,
                      long long prompt_tokens);
int gw_ffi_chat_sampling(void *req, int has_temperature, double temperature, int has_top_p,
                         double top_p);
int gw_ffi_chat_message(void *req, int role, const char *text, size_t len);
int gw_ffi_chat_vertex(void *req, const char *message, size_t mlen, const char *rules,
                       size_t rlen);

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
