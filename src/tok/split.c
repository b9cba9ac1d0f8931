/*
 * pieces-gateway: hand-written pre-tokenisers, the split regexes spelled out for ASCII text.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: tok_split_cl100k, tok_split_o200k, tok_split_claude. Uses: nothing (a byte table).
 * Each answers the question the piece loop asks the regex (registry.c's PAT_*): which match
 * does the pattern find at pos of s[0..n)? It decides that by reading bytes from pos on, and
 * gives up (TOK_SPLIT_REGEX) as soon as it has read a non-ASCII byte: a match decided by ASCII
 * bytes alone never depends on the Unicode tables, so there the answer is the regex's; at any
 * other piece start the regex answers from the same subject. The patterns have no lookbehind,
 * so a match at pos depends on s[pos..n) only, and mixing the two per piece cannot move a
 * split. In partial mode (the streaming counter), reading past n answers TOK_SPLIT_MORE: an
 * answer that never looked there reads the same bytes, and so is the same, whatever text is
 * appended later, i.e. the piece is final.
 * ASCII classes as the compiled patterns see them (PCRE2, UTF + UCP, \s rewritten to Unicode
 * White_Space): \p{L} = A-Z a-z (A-Z is Lu, a-z is Ll; no ASCII is Lt/Lm/Lo/M), \p{N} = 0-9,
 * \s = \t \n \v \f \r and space (not 0x1C-0x1F: they are not White_Space), everything else
 * (punctuation, other controls, NUL, DEL) is [^\s\p{L}\p{N}]. Case-insensitive contractions
 * also match U+017F (long s) and U+212A (Kelvin): non-ASCII, so the regex's.
 * Must never: read s[n] or beyond, or answer TOK_SPLIT_OK for a match that read a byte >= 0x80.
 * spec/c/test_tok_split.c and spec/fuzz/tok_split.c check every answer against the regex.
 */
#include "tok_internal.h"

enum {
    C_UP = 1,      /* A-Z */
    C_LO = 2,      /* a-z */
    C_L = C_UP | C_LO,
    C_N = 4,       /* 0-9 */
    C_WS = 8,      /* \t \n \v \f \r space */
    C_NL = 16,     /* \r \n */
    C_O = 32,      /* not \s, \p{L}, \p{N} */
    C_SLASH = 64,  /* '/' (also C_O) */
    C_END = 128,   /* past the text (not a byte class) */
};

/* Classes of the bytes; 0 for the non-ASCII ones (never used: reading one gives up). */
#define CLASS_OF(b)                                                                                \
    ((b) >= 0x80                                     ? 0                                         \
     : (b) == '\n' || (b) == '\r'                    ? C_WS | C_NL                               \
     : ((b) >= '\t' && (b) <= '\r') || (b) == ' '     ? C_WS                                      \
     : (b) >= '0' && (b) <= '9'                      ? C_N                                       \
     : (b) >= 'A' && (b) <= 'Z'                      ? C_UP                                      \
     : (b) >= 'a' && (b) <= 'z'                      ? C_LO                                      \
     : (b) == '/'                                    ? C_O | C_SLASH                             \
                                                     : C_O)
#define CLS4(b) CLASS_OF(b), CLASS_OF((b) + 1), CLASS_OF((b) + 2), CLASS_OF((b) + 3)
#define CLS16(b) CLS4(b), CLS4((b) + 4), CLS4((b) + 8), CLS4((b) + 12)
#define CLS64(b) CLS16(b), CLS16((b) + 16), CLS16((b) + 32), CLS16((b) + 48)
static const uint8_t CLS[256] = {CLS64(0), CLS64(64), CLS64(128), CLS64(192)};

typedef struct {
    const uint8_t *s;
    size_t n;
    int partial;
    int stop; /* TOK_SPLIT_OK while every byte read was ASCII and inside the text */
} scan_t;

/* The class of s[i], noting a read past the text (partial only) or of a non-ASCII byte. After
 * that the caller's answer is thrown away, so it may go on with class 0 or C_END. */
static inline unsigned look(scan_t *x, size_t i)
{
    if (i >= x->n) {
        if (x->partial)
            x->stop = TOK_SPLIT_MORE;
        return C_END;
    }
    uint8_t b = x->s[i];
    if (b & 0x80)
        x->stop = TOK_SPLIT_REGEX;
    return CLS[b];
}

/* The end of the run of class mask starting at i (a non-ASCII byte, class 0, ends it). */
static inline size_t run(scan_t *x, size_t i, unsigned mask)
{
    while (i < x->n && (CLS[x->s[i]] & mask))
        i++;
    (void)look(x, i); /* what ended it: the end of the text, or maybe a non-ASCII byte */
    return i;
}

/* Length of the contraction 's 't 're 've 'm 'll 'd at i (s[i] == '\''), 0 if none; with
 * fold, letters in either case. */
static inline size_t contraction(scan_t *x, size_t i, int fold)
{
    unsigned f = fold ? 0x20 : 0;
    (void)look(x, i + 1);
    unsigned a = i + 1 < x->n ? (x->s[i + 1] | f) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (a != 'r' && a != 'v' && a != 'l')
        return 0;
    (void)look(x, i + 2);
    unsigned b = i + 2 < x->n ? (x->s[i + 2] | f) : 0;
    return b == (a == 'l' ? 'l' : 'e') ? 3 : 0;
}

/* \p{N}{1,3} at pos (a digit). */
static inline size_t digits3(scan_t *x, size_t pos)
{
    size_t e = pos + 1;
    while (e < pos + 3 && (look(x, e) & C_N))
        e++;
    return e;
}

/* At pos, a white-space byte, once the letter and punctuation alternatives failed: with nl,
 * \s*[\r\n]+ (the run up to its last \r or \n), then \s+(?!\S) (the run, less its last
 * character unless the text ends there), then \s+. */
static inline size_t spaces(scan_t *x, size_t pos, int nl)
{
    size_t w = run(x, pos, C_WS);
    for (size_t j = w; nl && j > pos; j--) {
        if (CLS[x->s[j - 1]] & C_NL)
            return j;
    }
    if ((look(x, w) & C_END) || w - pos == 1)
        return w;
    return w - 1;
}

/* ' ?[^\s\p{L}\p{N}]+' then tail* at pos, or pos if it does not match there. */
static inline size_t punct(scan_t *x, size_t pos, unsigned tail)
{
    size_t p = pos + (x->s[pos] == ' ' && (look(x, pos + 1) & C_O));
    if (!(look(x, p) & C_O))
        return pos;
    return run(x, run(x, p + 1, C_O), tail);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t cl100k(scan_t *x, size_t pos)
{
    unsigned c0 = look(x, pos);
    if (x->s[pos] == '\'') {
        size_t k = contraction(x, pos, 1);
        if (k)
            return pos + k;
    }
    if (c0 & C_L)
        return run(x, pos + 1, C_L);
    if (!(c0 & (C_N | C_NL)) && (look(x, pos + 1) & C_L))
        return run(x, pos + 2, C_L);
    if (c0 & C_N)
        return digits3(x, pos);
    size_t e = punct(x, pos, C_NL);
    return e > pos ? e : spaces(x, pos, 1);
}

/* [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?|
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?|
 * \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * In ASCII the two letter alternatives are one: upper* lower* (not empty), as the classes are
 * disjoint there (backing off an upper-case letter never makes room for a lower-case one). */
static size_t o200k(scan_t *x, size_t pos)
{
    unsigned c0 = look(x, pos);
    size_t p = pos;
    if (!(c0 & (C_L | C_N | C_NL)) && (look(x, pos + 1) & C_L))
        p = pos + 1;
    if (look(x, p) & C_L) {
        size_t e = run(x, run(x, p, C_UP), C_LO);
        if (e < x->n && x->s[e] == '\'')
            e += contraction(x, e, 1);
        return e;
    }
    if (c0 & C_N)
        return digits3(x, pos);
    size_t e = punct(x, pos, C_NL | C_SLASH);
    return e > pos ? e : spaces(x, pos, 1);
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t claude(scan_t *x, size_t pos)
{
    unsigned c = look(x, pos);
    size_t p = pos;
    if (x->s[pos] == '\'') {
        size_t k = contraction(x, pos, 0);
        if (k)
            return pos + k;
    }
    if (x->s[pos] == ' ') {
        unsigned c1 = look(x, pos + 1);
        if (c1 & (C_L | C_N | C_O)) {
            p = pos + 1;
            c = c1;
        }
    }
    if (c & C_L)
        return run(x, p + 1, C_L);
    if (c & C_N)
        return run(x, p + 1, C_N);
    if (c & C_O)
        return run(x, p + 1, C_O);
    return spaces(x, pos, 0);
}

typedef size_t (*pattern_fn)(scan_t *x, size_t pos);

static inline int split(pattern_fn f, const uint8_t *s, size_t n, size_t pos, int partial,
                        size_t *end)
{
    if (s[pos] & 0x80)
        return TOK_SPLIT_REGEX;
    scan_t x = {s, n, partial, TOK_SPLIT_OK};
    size_t e = f(&x, pos);
    if (x.stop != TOK_SPLIT_OK)
        return x.stop;
    *end = e;
    return TOK_SPLIT_OK;
}

int tok_split_cl100k(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end)
{
    return split(cl100k, s, n, pos, partial, end);
}

int tok_split_o200k(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end)
{
    return split(o200k, s, n, pos, partial, end);
}

int tok_split_claude(const uint8_t *s, size_t n, size_t pos, int partial, size_t *end)
{
    return split(claude, s, n, pos, partial, end);
}
