/*
 * pieces-gateway: unit tests of the stop-sequence matcher (src/chat_stop.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_stop.h"
#include "gw_test.h"

/* Feeds the pieces in order; returns the match index (or -1 after a flush) and what was shown,
 * each feed's output separated by '|'. */
static int run(char *const *seqs, size_t n, const char *const *pieces, char *shown, size_t cap)
{
    gw_stop_t s;
    gw_buf_t out, all;
    int which = -1;
    gw_stop_init(&s, seqs, n);
    gw_buf_init(&out);
    gw_buf_init(&all);
    for (size_t i = 0; pieces[i] && which < 0; i++) {
        gw_buf_reset(&out);
        which = gw_stop_feed(&s, pieces[i], strlen(pieces[i]), &out);
        if (i)
            gw_buf_putc(&all, '|');
        gw_buf_append(&all, out.data, out.len);
    }
    if (which < 0) {
        gw_buf_reset(&out);
        gw_stop_flush(&s, &out);
        gw_buf_putc(&all, '#');
        gw_buf_append(&all, out.data, out.len);
    }
    snprintf(shown, cap, "%s", all.data ? all.data : "");
    gw_buf_dispose(&out);
    gw_buf_dispose(&all);
    gw_stop_dispose(&s);
    return which;
}

TEST(no_match_holds_only_a_possible_prefix)
{
    char *seqs[] = {"END"};
    char got[256];
    CHECK_EQ_INT(run(seqs, 1, (const char *[]){"Hello", " wor", "ld", NULL}, got, sizeof(got)), -1);
    CHECK_EQ_STR(got, "Hel|lo w|or#ld"); /* two bytes (len - 1) held back each time */
}

TEST(match_inside_one_delta)
{
    char *seqs[] = {"STOP", "END"};
    char got[256];
    CHECK_EQ_INT(run(seqs, 2, (const char *[]){"one END two STOP", NULL}, got, sizeof(got)), 1);
    CHECK_EQ_STR(got, "one ");
}

TEST(match_across_deltas)
{
    char *seqs[] = {"</answer>"};
    char got[256];
    CHECK_EQ_INT(run(seqs, 1, (const char *[]){"42 </an", "sw", "er> more", NULL}, got,
                     sizeof(got)),
                 0);
    /* at most len - 1 = 8 bytes held: "42 </an" stays, "4" goes once 9 bytes are held */
    CHECK_EQ_STR(got, "|4|2 ");
}

TEST(earliest_wins_first_listed_on_a_tie)
{
    char *seqs[] = {"bc", "ab", "abc"};
    char got[256];
    CHECK_EQ_INT(run(seqs, 3, (const char *[]){"xxabc", NULL}, got, sizeof(got)), 1);
    CHECK_EQ_STR(got, "xx");
    char *tie[] = {"abc", "ab"};
    CHECK_EQ_INT(run(tie, 2, (const char *[]){"xxabc", NULL}, got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "xx");
}

TEST(never_splits_utf8)
{
    char *seqs[] = {"ZZZ"}; /* keeps 2 bytes; "é" is 2 bytes, "€" 3 */
    char got[256];
    CHECK_EQ_INT(run(seqs, 1, (const char *[]){"a\xc3\xa9", "\xe2\x82\xac", NULL}, got,
                     sizeof(got)),
                 -1);
    /* "aé" (3 bytes): showing 1 byte is fine; then "é€": cutting 2 bytes before the end would
     * split "€", so the cut moves back to its start */
    CHECK_EQ_STR(got, "a|\xc3\xa9#\xe2\x82\xac");
}

TEST(inactive_and_empty)
{
    gw_stop_t s;
    gw_stop_init(&s, NULL, 0);
    CHECK(!gw_stop_active(&s));
    gw_stop_dispose(&s);
    char *seqs[] = {"x"};
    char got[64];
    CHECK_EQ_INT(run(seqs, 1, (const char *[]){"", "ab", "", "cx", NULL}, got, sizeof(got)), 0);
    CHECK_EQ_STR(got, "|ab||c"); /* a one-byte sequence holds nothing back */
}

int main(void)
{
    RUN(no_match_holds_only_a_possible_prefix);
    RUN(match_inside_one_delta);
    RUN(match_across_deltas);
    RUN(earliest_wins_first_listed_on_a_tie);
    RUN(never_splits_utf8);
    RUN(inactive_and_empty);
    return TEST_REPORT();
}
