/*
 * pieces-gateway: unit tests of the gRPC wire helpers (src/upstream/grpc_frame.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"
#include "gw_test.h"

/* Builds a stream of prefixed messages of the given lengths; message i is filled with 'a'+i. */
static uint8_t *build(const size_t *lens, size_t n, size_t *total)
{
    size_t t = 0, o = 0;
    for (size_t i = 0; i < n; i++)
        t += GW_GRPC_PREFIX + lens[i];
    uint8_t *b = malloc(t + 1);
    for (size_t i = 0; i < n; i++) {
        gw_grpc_frame_prefix(b + o, (uint32_t)lens[i]);
        memset(b + o + GW_GRPC_PREFIX, 'a' + (int)i, lens[i]);
        o += GW_GRPC_PREFIX + lens[i];
    }
    *total = t;
    return b;
}

/* Feeds the stream in pieces of `step` bytes and checks every message comes out whole. */
static void feed_in_steps(size_t step)
{
    size_t lens[] = {3, 0, 70000, 1, 5, 0, 16384};
    size_t n = sizeof(lens) / sizeof(lens[0]), total, got = 0;
    uint8_t *b = build(lens, n, &total);
    gw_grpc_deframer_t d;

    gw_grpc_deframer_init(&d, 1 << 20);
    for (size_t o = 0; o < total; o += step) {
        size_t k = total - o < step ? total - o : step;
        const uint8_t *msg;
        size_t len, wire;
        int rc;
        CHECK_EQ_INT(gw_grpc_deframer_feed(&d, b + o, k), 0);
        while ((rc = gw_grpc_deframer_next(&d, &msg, &len, &wire)) == 1) {
            CHECK(got < n);
            if (got >= n)
                break;
            CHECK_EQ_INT(len, lens[got]);
            CHECK_EQ_INT(wire, len + GW_GRPC_PREFIX);
            for (size_t i = 0; i < len; i++)
                if (msg[i] != 'a' + (int)got) {
                    CHECK(!"payload corrupted");
                    break;
                }
            got++;
        }
        CHECK_EQ_INT(rc, 0);
    }
    CHECK_EQ_INT(got, n);
    CHECK_EQ_INT(gw_grpc_deframer_pending(&d), 0);
    gw_grpc_deframer_dispose(&d);
    free(b);
}

TEST(messages_span_frames_and_share_frames)
{
    feed_in_steps(1);      /* every message spans many "frames" */
    feed_in_steps(7);
    feed_in_steps(16384);  /* typical DATA frame size: several small messages per frame */
    feed_in_steps(1 << 20);/* everything in one go */
}

TEST(zero_length_message)
{
    gw_grpc_deframer_t d;
    const uint8_t z[5] = {0, 0, 0, 0, 0}, *msg;
    size_t len, wire;
    gw_grpc_deframer_init(&d, 100);
    CHECK_EQ_INT(gw_grpc_deframer_feed(&d, z, 5), 0);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 1);
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_INT(wire, 5);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 0);
    gw_grpc_deframer_dispose(&d);
}

TEST(oversized_prefix_rejected_without_allocating)
{
    gw_grpc_deframer_t d;
    const uint8_t big[5] = {0, 0xff, 0xff, 0xff, 0xff}, *msg;
    const uint8_t edge[5] = {0, 0, 0, 0, 101};
    size_t len, wire;
    gw_grpc_deframer_init(&d, 100);
    CHECK_EQ_INT(gw_grpc_deframer_feed(&d, big, 5), 0);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), -EMSGSIZE);
    CHECK(d.cap < 4096);
    gw_grpc_deframer_dispose(&d);
    gw_grpc_deframer_init(&d, 100);
    CHECK_EQ_INT(gw_grpc_deframer_feed(&d, edge, 5), 0);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), -EMSGSIZE);
    gw_grpc_deframer_dispose(&d);
}

TEST(compressed_or_bad_flag_rejected)
{
    gw_grpc_deframer_t d;
    const uint8_t comp[6] = {1, 0, 0, 0, 1, 'x'}, bad[6] = {7, 0, 0, 0, 1, 'x'}, *msg;
    size_t len, wire;
    gw_grpc_deframer_init(&d, 100);
    gw_grpc_deframer_feed(&d, comp, 6);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), -EPROTO);
    gw_grpc_deframer_dispose(&d);
    gw_grpc_deframer_init(&d, 100);
    gw_grpc_deframer_feed(&d, bad, 6);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), -EPROTO);
    gw_grpc_deframer_dispose(&d);
}

TEST(partial_stays_buffered)
{
    gw_grpc_deframer_t d;
    const uint8_t part[7] = {0, 0, 0, 0, 4, 'a', 'b'}, rest[2] = {'c', 'd'}, *msg;
    size_t len, wire;
    gw_grpc_deframer_init(&d, 100);
    gw_grpc_deframer_feed(&d, part, 7);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 0);
    CHECK_EQ_INT(gw_grpc_deframer_pending(&d), 7);
    gw_grpc_deframer_feed(&d, rest, 2);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 1);
    CHECK(len == 4 && memcmp(msg, "abcd", 4) == 0);
    gw_grpc_deframer_dispose(&d);
}

/* A call that ends without DATA (trailers-only) asks a deframer that never allocated: its
 * buffer is NULL and nothing may be computed from it (clang's UBSan: "applying zero offset to
 * null pointer"). The same after release. */
TEST(empty_deframer_has_no_message)
{
    gw_grpc_deframer_t d;
    const uint8_t one[6] = {0, 0, 0, 0, 1, 'x'}, *msg;
    size_t len, wire;
    gw_grpc_deframer_init(&d, 100);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 0);
    CHECK_EQ_INT(gw_grpc_deframer_pending(&d), 0);
    gw_grpc_deframer_feed(&d, one, 0); /* an empty DATA frame allocates nothing */
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 0);
    gw_grpc_deframer_feed(&d, one, 6);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 1);
    gw_grpc_deframer_release(&d);
    CHECK(d.buf == NULL);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 0);
    gw_grpc_deframer_dispose(&d);
    CHECK_EQ_INT(gw_grpc_deframer_next(&d, &msg, &len, &wire), 0);
}

TEST(timeout_format)
{
    char b[16];
    CHECK_EQ_INT(gw_grpc_timeout_format(1, b, sizeof(b)), 2);
    CHECK_EQ_STR(b, "1m");
    gw_grpc_timeout_format(30000, b, sizeof(b));
    CHECK_EQ_STR(b, "30000m");
    gw_grpc_timeout_format(99999999, b, sizeof(b));
    CHECK_EQ_STR(b, "99999999m");
    gw_grpc_timeout_format(100000000, b, sizeof(b)); /* 8-digit limit: switch to seconds */
    CHECK_EQ_STR(b, "100000S");
    gw_grpc_timeout_format(100000001, b, sizeof(b)); /* rounded up, never shorter */
    CHECK_EQ_STR(b, "100001S");
    gw_grpc_timeout_format(UINT64_MAX, b, sizeof(b));
    CHECK_EQ_STR(b, "99999999H");
    CHECK_EQ_INT(gw_grpc_timeout_format(30000, b, 3), -ENOSPC);
}

TEST(percent_decode)
{
    char out[64];
    const char *in = "bad%20request%3A%E2%9C%93 100%";
    size_t n = gw_grpc_percent_decode(in, strlen(in), out);
    CHECK_EQ_STR(out, "bad request:\xe2\x9c\x93 100%");
    CHECK_EQ_INT(n, strlen(out));
    gw_grpc_percent_decode("%zz%4", 5, out);
    CHECK_EQ_STR(out, "%zz%4");
}

TEST(status_mapping)
{
    CHECK_EQ_INT(gw_grpc_status_from_http(503), 14);
    CHECK_EQ_INT(gw_grpc_status_from_http(404), 12);
    CHECK_EQ_INT(gw_grpc_status_from_http(500), 2);
    CHECK_EQ_INT(gw_grpc_status_from_h2(0x2), 13);
    CHECK_EQ_INT(gw_grpc_status_from_h2(0x7), 14);
    CHECK_EQ_INT(gw_grpc_status_from_h2(0x8), 1);
}

TEST(address_parsing)
{
    gw_upstream_addr_t a;
    const char *err = NULL;
    CHECK_EQ_INT(gw_upstream_addr_parse("example.com:443", &a, &err), 0);
    CHECK(a.tls && a.port == 443 && !a.is_ip);
    CHECK_EQ_STR(a.host, "example.com");
    CHECK_EQ_STR(a.authority, "example.com:443");
    CHECK_EQ_INT(gw_upstream_addr_parse("https://svc.run.app", &a, &err), 0);
    CHECK(a.tls && a.port == 443);
    CHECK_EQ_STR(a.authority, "svc.run.app:443");
    CHECK_EQ_INT(gw_upstream_addr_parse("http://127.0.0.1:50051/", &a, &err), 0);
    CHECK(!a.tls && a.port == 50051 && a.is_ip);
    CHECK_EQ_STR(a.host, "127.0.0.1");
    CHECK_EQ_INT(gw_upstream_addr_parse("http://localhost", &a, &err), 0);
    CHECK(a.port == 80);
    CHECK_EQ_INT(gw_upstream_addr_parse("[::1]:8443", &a, &err), 0);
    CHECK(a.tls && a.port == 8443 && a.is_ip);
    CHECK_EQ_STR(a.host, "::1");
    CHECK_EQ_STR(a.authority, "[::1]:8443");
    CHECK_EQ_INT(gw_upstream_addr_parse("http://[2001:db8::1]", &a, &err), 0);
    CHECK(!a.tls && a.port == 80);
    CHECK_EQ_STR(a.authority, "[2001:db8::1]:80");

    CHECK_EQ_INT(gw_upstream_addr_parse("::1:443", &a, &err), -EINVAL);
    CHECK(err && strstr(err, "brackets"));
    CHECK_EQ_INT(gw_upstream_addr_parse("[::1", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("[zz::1]:1", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("host:0", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("host:65536", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("host:12ab", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("grpc://host:1", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("http://host:1/path", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse("", &a, &err), -EINVAL);
    CHECK_EQ_INT(gw_upstream_addr_parse(":443", &a, &err), -EINVAL);
}

int main(void)
{
    RUN(messages_span_frames_and_share_frames);
    RUN(zero_length_message);
    RUN(oversized_prefix_rejected_without_allocating);
    RUN(compressed_or_bad_flag_rejected);
    RUN(partial_stays_buffered);
    RUN(empty_deframer_has_no_message);
    RUN(timeout_format);
    RUN(percent_decode);
    RUN(status_mapping);
    RUN(address_parsing);
    return TEST_REPORT();
}
