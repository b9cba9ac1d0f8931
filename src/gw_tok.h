/*
 * pieces-gateway: the exact byte-level BPE tokenizer (cl100k_base, o200k_base, Claude).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Token ids equal the references exactly: npm tiktoken@1.0.22 encode_ordinary() for
 * cl100k_base and o200k_base (special-token strings such as "<|endoftext|>" are plain text),
 * and @anthropic-ai/tokenizer@0.0.4 for "claude" (NFKC first, then the five specials <EOT>,
 * <META>, <META_START>, <META_END>, <SOS> count as one token each, as its countTokens() does).
 *
 * Input is UTF-8. Invalid UTF-8 never fails: each maximal invalid subsequence is replaced by
 * U+FFFD before tokenizing (the WHATWG TextDecoder rule, what the JS references see).
 *
 * Status values are 0 or a negative errno: -EINVAL (bad argument / unknown encoding),
 * -ENOMEM, -EIO (asset missing, unreadable or corrupt), -E2BIG (text over 4 GiB).
 */
#ifndef GW_TOK_H
#define GW_TOK_H
#include <stddef.h>
#include <stdint.h>

/* One encoding (vocabulary + split regex + specials). Immutable after load; every function
 * taking a const gw_tok_t * may be called concurrently from any number of threads. */
typedef struct gw_tok_s gw_tok_t;

/* Returned by gw_tok_count() and gw_tok_stream_finish() when the count cannot be computed
 * (allocation failure, NULL argument). Never a real count. */
#define GW_TOK_COUNT_ERROR ((size_t)-1)

/* Loads cl100k_base, o200k_base and claude from "<assets_dir>/<name>.tiktoken", checking each
 * file's SHA-256 against "<assets_dir>/SHA256SUMS" before parsing it. Idempotent and
 * thread-safe: the first successful call loads, later calls return 0 at once (whatever the
 * directory). Returns 0 or a negative errno; on failure nothing stays loaded and, if err is not
 * NULL, *err is set to a malloc'd message naming the offending file (caller frees). */
int gw_tok_load_all(const char *assets_dir, char **err);

/* The loaded encoding called name ("cl100k_base", "o200k_base", "claude"), or NULL if the name
 * is unknown or nothing is loaded. Borrowed: valid until gw_tok_unload_all(). Thread-safe. */
const gw_tok_t *gw_tok_get(const char *name);

/* The encoding's name (static string). Thread-safe. */
const char *gw_tok_name(const gw_tok_t *t);

/* Encodes text[0..len) (UTF-8, NUL bytes allowed) into token ids. On success *ids is a
 * malloc'd array of *n ids (NULL when *n is 0), the caller frees it with free(). On failure
 * returns a negative errno and sets *ids = NULL, *n = 0. Thread-safe. */
int gw_tok_encode(const gw_tok_t *t, const char *text, size_t len, uint32_t **ids, size_t *n);

/* The number of tokens gw_tok_encode() would produce, without building the id array.
 * GW_TOK_COUNT_ERROR on allocation failure or t == NULL. Thread-safe. */
size_t gw_tok_count(const gw_tok_t *t, const char *text, size_t len);

/* A streaming counter: feed the text in chunks split anywhere (even inside a UTF-8 sequence, a
 * word, a whitespace run or a Claude special token), then finish() returns exactly
 * gw_tok_count() of the concatenation. Memory stays bounded by the longest pre-token piece
 * (plus the NFKC segment for Claude), not by the whole text: only the unfinished tail is kept.
 * One stream belongs to one user at a time (not thread-safe itself); many streams may run
 * concurrently on the same encoding. */
typedef struct gw_tok_stream_s gw_tok_stream_t;

/* A new stream on encoding t, or NULL (t NULL or out of memory). Free with
 * gw_tok_stream_free(). */
gw_tok_stream_t *gw_tok_stream_new(const gw_tok_t *t);

/* Adds chunk[0..len) to the stream. 0, or a negative errno (-ENOMEM; -EINVAL after finish or
 * after an earlier failure: the stream is then unusable and finish() reports an error). */
int gw_tok_stream_feed(gw_tok_stream_t *s, const char *chunk, size_t len);

/* Ends the stream and returns the exact token count of everything fed, or
 * GW_TOK_COUNT_ERROR if a feed failed. The stream cannot be fed afterwards; calling finish()
 * again returns the same count. */
size_t gw_tok_stream_finish(gw_tok_stream_t *s);

/* Frees the stream (NULL is fine). */
void gw_tok_stream_free(gw_tok_stream_t *s);

/* Frees every loaded encoding (tests, leak checks). Not safe while any thread still uses an
 * encoding or a stream; afterwards gw_tok_load_all() may load again. */
void gw_tok_unload_all(void);

#endif
