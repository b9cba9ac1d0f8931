/*
 * pieces-gateway: the differential oracle of the hand-written splitters (src/tok/split.c)
 * against the split regexes, shared by spec/c/test_tok_split.c and spec/fuzz/tok_split.c.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_TOK_SPLIT_ORACLE_H
#define GW_TOK_SPLIT_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "tok/tok_internal.h"

typedef struct {
    size_t inputs;      /* texts checked */
    size_t positions;   /* (text, position) pairs asked of both */
    size_t fast;        /* ... answered by the splitter (complete text) */
    size_t fallback;    /* ... handed to the regex (a non-ASCII byte was read) */
    size_t fast_final;  /* partial: answers the splitter gave as final, checked on text + ext */
    size_t more;        /* partial: answered "needs more text" */
    size_t pieces;      /* pieces of the whole-text encodings compared */
} tok_split_stats_t;

/* Checks t->split against t's regex on the valid UTF-8 s[0..n), continued by the valid UTF-8
 * ext[0..ext_len) (s[n] must start a character of s + ext):
 *  - at every character start pos of s: the splitter's answer on the complete text s is the
 *    regex's match at pos, or a hand-over to the regex (only if it read a non-ASCII byte:
 *    never at a pure-ASCII text), never "more";
 *  - in partial mode: an answer is the regex's match at pos both on s and on s + ext (a final
 *    piece stays final), and the splitter says "more" only where the regex (PCRE2_PARTIAL_HARD)
 *    cannot commit the piece either (the stream keeps no more text than before);
 *  - tok_encode_pieces() with the splitter and with the regex alone: the same ids for s and
 *    for s + ext; in partial mode on s, the splitter's ids extend the regex's and are a prefix
 *    of the ids of s + ext.
 * 0, or -1 with a description (encoding, position, both answers, the text escaped) in
 * why[0..why_len). md: a match data of the caller's (not shared between threads). */
int tok_split_oracle(const gw_tok_t *t, const uint8_t *s, size_t n, const uint8_t *ext,
                     size_t ext_len, pcre2_match_data *md, tok_split_stats_t *st, char *why,
                     size_t why_len);

#endif
