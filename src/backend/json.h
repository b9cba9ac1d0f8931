/*
 * pieces-gateway: a small pull scanner for JSON (RFC 8259), for the per-chunk path.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The caller walks a document with a cursor: peek at the next value's type, enter objects and
 * arrays member by member, decode the strings and numbers it wants and skip the rest (skipped
 * values are still validated, nesting is limited to GW_JSON_MAX_DEPTH). Nothing is allocated
 * except what decoded strings append to the caller's buffer. The input need not be
 * NUL-terminated and is never read past its end. Pure functions over the cursor; thread-safe.
 *
 *   gw_json_t j; gw_json_init(&j, p, n);
 *   if (gw_json_object_begin(&j) != 0) ...;
 *   while ((rc = gw_json_object_next(&j, &key)) > 0) {
 *       if (gw_json_key_is(&key, "model")) gw_json_string(&j, &buf); else gw_json_skip(&j);
 *   }
 *   rc == 0 && gw_json_end(&j) == 0   -> the whole document was valid
 *
 * Status: 0 (or a positive count where documented), -EBADMSG for anything that is not JSON
 * or not the expected type, -ERANGE for a number that does not fit.
 */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stddef.h>

#include "buf.h"

#define GW_JSON_MAX_DEPTH 64

typedef enum {
    GW_JSON_NONE = 0, /* end of input or a byte that cannot start a value */
    GW_JSON_OBJECT,
    GW_JSON_ARRAY,
    GW_JSON_STRING,
    GW_JSON_NUMBER,
    GW_JSON_TRUE,
    GW_JSON_FALSE,
    GW_JSON_NULL,
} gw_json_type_t;

typedef struct {
    const char *p, *end;
    const char *start; /* the document, for offsets */
    int depth;
    int first; /* the next member/element is the first of its container */
} gw_json_t;

/* A string as it appears in the input: the bytes between the quotes, escapes not decoded. */
typedef struct {
    const char *p;
    size_t len;
    int escaped; /* it contains a backslash */
} gw_json_str_t;

void gw_json_init(gw_json_t *j, const char *p, size_t n);
/* Type of the next value (whitespace skipped), without consuming it. */
gw_json_type_t gw_json_peek(gw_json_t *j);
/* Skips one value of any type, validating it. */
int gw_json_skip(gw_json_t *j);
/* Consumes '{' / '['. */
int gw_json_object_begin(gw_json_t *j);
int gw_json_array_begin(gw_json_t *j);
/* Next member: 1 with the key and the cursor on its value, 0 at the closing '}' (consumed). */
int gw_json_object_next(gw_json_t *j, gw_json_str_t *key);
/* Next element: 1 with the cursor on it, 0 at the closing ']' (consumed). */
int gw_json_array_next(gw_json_t *j);
/* Whether a key equals the NUL-terminated ASCII name, escapes decoded ("\u006dodel" is
 * "model"), so a key cannot be disguised from a check. */
int gw_json_key_is(const gw_json_str_t *key, const char *name);
int gw_json_key_eq_escaped(const gw_json_str_t *key, const char *name, size_t n);
/* The same for a name of known length (the common unescaped case inline). */
static inline int gw_json_key_eq(const gw_json_str_t *key, const char *name, size_t n)
{
    if (!key->escaped)
        return key->len == n && __builtin_memcmp(key->p, name, n) == 0;
    return gw_json_key_eq_escaped(key, name, n);
}
#define GW_JSON_KEY(key, lit) gw_json_key_eq((key), (lit), sizeof(lit) - 1)
/* A string value, decoded (\uXXXX pairs to UTF-8; a lone surrogate becomes U+FFFD), appended
 * to out. */
int gw_json_string(gw_json_t *j, gw_buf_t *out);
/* A string value, raw (no decoding). */
int gw_json_string_raw(gw_json_t *j, gw_json_str_t *out);
/* Decodes the escapes of a raw string into out (a lone surrogate escape becomes U+FFFD). */
int gw_json_unescape(const gw_json_str_t *s, gw_buf_t *out);
/* The same into `out`, which has room for s->len bytes (decoding never lengthens a string):
 * the length written, or -EBADMSG when `strict` and an escape is a lone surrogate. */
long gw_json_unescape_into(const gw_json_str_t *s, char *out, int strict);
/* An integer number value (no fraction or exponent). */
int gw_json_int(gw_json_t *j, long long *out);
/* true/false value. */
int gw_json_bool(gw_json_t *j, int *out);
/* Consumes a null value when the next value is null: 1 if it was, 0 if not. */
int gw_json_null(gw_json_t *j);
/* Only whitespace remains. */
int gw_json_end(gw_json_t *j);
/* Offset of the cursor from the start of the document (whitespace skipped). */
size_t gw_json_offset(gw_json_t *j);

#endif
