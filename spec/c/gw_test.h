/*
 * pieces-gateway: a minimal unit-test harness for the C tests under spec/c.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Usage: TEST(name) { CHECK(cond); CHECK_EQ_INT(a, b); CHECK_EQ_STR(a, b); } and
 * int main(void) { RUN(name); ...; return TEST_REPORT(); }
 */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* GW_TEST_ASAN: 1 in an AddressSanitizer build (gcc or clang), where tests scale work down. */
#if defined(__SANITIZE_ADDRESS__)
#define GW_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_TEST_ASAN 1
#endif
#endif
#ifndef GW_TEST_ASAN
#define GW_TEST_ASAN 0
#endif

/* xorshift64: the deterministic generator of the tests' random inputs (*state != 0). */
static inline uint64_t gw_test_rng(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static int gw_test_failures;
static int gw_test_checks;

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                                                  \
    do {                                                                                           \
        int before_ = gw_test_failures;                                                            \
        test_##name();                                                                             \
        printf("%s %s\n", gw_test_failures == before_ ? "ok  " : "FAIL", #name);                   \
    } while (0)
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        gw_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            gw_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        gw_test_checks++;                                                                          \
        if (a_ != b_) {                                                                            \
            gw_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    a_, b_);                                                                       \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        gw_test_checks++;                                                                          \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            gw_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                   \
        }                                                                                          \
    } while (0)
#define TEST_REPORT()                                                                              \
    (printf("%d checks, %d failures\n", gw_test_checks, gw_test_failures), gw_test_failures != 0)

#endif
