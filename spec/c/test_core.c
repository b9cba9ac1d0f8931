/*
 * pieces-gateway: unit tests for the Lua-free core helpers: buffers, .env and value parsing,
 * IP/CIDR handling and client-IP resolution, duration formatting, atomic file writes, file_info.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "env.h"
#include "freelist.h"
#include "gw.h"
#include "gw_ffi.h"
#include "gw_test.h"
#include "ipaddr.h"
#include "log.h"
#include "process.h"

TEST(buf_basics)
{
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_puts(&b, "abc");
    gw_buf_printf(&b, "-%d-", 42);
    CHECK_EQ_STR(b.data, "abc-42-");
    gw_buf_consume(&b, 2);
    CHECK_EQ_STR(b.data, "c-42-");
    for (int i = 0; i < 1000; i++)
        gw_buf_putc(&b, 'x');
    CHECK_EQ_INT(b.len, 1005);
    size_t n;
    char *s = gw_buf_steal(&b, &n);
    CHECK_EQ_INT(n, 1005);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
    gw_buf_dispose(&b);
}

/* Spare storage: recycle keeps small buffers for prime, drops large ones; prime leaves a
 * buffer that has storage alone; the cache is bounded and drains. */
TEST(buf_recycle_prime)
{
    gw_buf_t a, b, big;
    gw_buf_init(&a);
    gw_buf_init(&b);
    gw_buf_init(&big);
    gw_buf_puts(&a, "hello");
    char *storage = a.data;
    size_t cap = a.cap;
    gw_buf_recycle(&a);
    CHECK(a.data == NULL && a.len == 0 && a.cap == 0);
    gw_buf_prime(&b);
    CHECK(b.data == storage && b.cap == cap && b.len == 0 && b.data[0] == '\0');
    gw_buf_puts(&b, "x");
    gw_buf_prime(&b); /* has storage: unchanged */
    CHECK(b.data == storage && b.len == 1);
    gw_buf_reserve(&big, GW_BUF_CACHE_MAX + 1);
    gw_buf_recycle(&big); /* too large to keep: freed */
    gw_buf_init(&a);
    gw_buf_prime(&a);
    CHECK(a.data == NULL); /* nothing cached (b holds the one buffer) */
    gw_buf_t many[GW_BUF_CACHE_N + 4];
    for (size_t i = 0; i < GW_ARRAY_SIZE(many); i++) {
        gw_buf_init(&many[i]);
        gw_buf_putc(&many[i], 'y');
        gw_buf_recycle(&many[i]); /* beyond GW_BUF_CACHE_N: freed */
    }
    gw_buf_dispose(&b);
    gw_buf_cache_drain();
    gw_buf_prime(&a);
    CHECK(a.data == NULL);
}

/* A free list gives blocks back zeroed, keeps at most GW_FREELIST_MAX, and drains. */
TEST(freelist_reuse)
{
    gw_freelist_t fl = {0};
    unsigned char *p = gw_freelist_get(&fl, 100);
    CHECK(p != NULL);
    memset(p, 0xab, 100);
    gw_freelist_put(&fl, p, 100);
    CHECK_EQ_INT(fl.n, 1);
    unsigned char *q = gw_freelist_get(&fl, 100);
    CHECK(q == p && fl.n == 0);
    for (int i = 0; i < 100; i++)
        CHECK(q[i] == 0);
    void *blocks[GW_FREELIST_MAX + 3];
    blocks[0] = q;
    for (size_t i = 1; i < GW_ARRAY_SIZE(blocks); i++)
        blocks[i] = gw_freelist_get(&fl, 100);
    for (size_t i = 0; i < GW_ARRAY_SIZE(blocks); i++)
        gw_freelist_put(&fl, blocks[i], 100);
    CHECK_EQ_INT(fl.n, GW_FREELIST_MAX);
    gw_freelist_drain(&fl, 100);
    CHECK(fl.head == NULL && fl.n == 0);
    gw_freelist_put(&fl, NULL, 100);
    CHECK_EQ_INT(fl.n, 0);
}

TEST(buf_json_escape)
{
    gw_buf_t b;
    gw_buf_init(&b);
    const char in[] = "a\"b\\c\n\t\x01 \xE4\xB8\xAD \xFF\xC3";
    gw_buf_json_escape(&b, in, sizeof(in) - 1);
    CHECK_EQ_STR(b.data, "a\\\"b\\\\c\\n\\t\\u0001 \xE4\xB8\xAD \xEF\xBF\xBD\xEF\xBF\xBD");
    gw_buf_reset(&b);
    /* overlong encoding and a surrogate are invalid UTF-8 */
    gw_buf_json_escape(&b, "\xC0\xAF\xED\xA0\x80", 5);
    CHECK(strstr(b.data, "\xC0") == NULL && strstr(b.data, "\xED\xA0") == NULL);
    gw_buf_dispose(&b);
}

TEST(parse_values)
{
    long long i;
    double d;
    int b;
    CHECK(gw_parse_int("8787", &i) == 0 && i == 8787);
    CHECK(gw_parse_int("-5", &i) == 0 && i == -5);
    CHECK(gw_parse_int(" 12", &i) != 0); /* raw value, not trimmed (as the seed) */
    CHECK(gw_parse_int("12abc", &i) != 0);
    CHECK(gw_parse_int("", &i) != 0);
    CHECK(gw_parse_int("99999999999999999999999", &i) != 0);
    CHECK(gw_parse_num("1.5", &d) == 0 && d == 1.5);
    CHECK(gw_parse_num("0x10", &d) != 0);
    CHECK(gw_parse_num("inf", &d) != 0);
    const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (int k = 0; k < 6; k++) {
        CHECK(gw_parse_bool(yes[k], &b) == 0 && b == 1);
        CHECK(gw_parse_bool(no[k], &b) == 0 && b == 0);
    }
    CHECK(gw_parse_bool("yes", &b) != 0);
    CHECK(gw_parse_bool("tRUE", &b) != 0);
}

TEST(dotenv)
{
    char path[] = "/tmp/gw-test-env-XXXXXX";
    int fd = mkstemp(path);
    const char text[] = "# comment\n"
                        "GWT_A=one\n"
                        "export GWT_B = two words  # trailing comment\n"
                        "GWT_C=\"quoted \\\"x\\\"\\nline\"\n"
                        "GWT_D='single # not a comment'\n"
                        "GWT_REAL=from-file\n"
                        "\n"
                        "this line is bad\n"
                        "GWT_E=\n";
    CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
    close(fd);
    setenv("GWT_REAL", "from-env", 1);
    char *err = NULL;
    int rc = gw_env_load_dotenv(path, &err);
    CHECK_EQ_INT(rc, GW_ERROR); /* one bad line: reported with its line number */
    CHECK(err && strstr(err, ":8:") != NULL);
    free(err);
    CHECK_EQ_STR(getenv("GWT_A"), "one");
    CHECK_EQ_STR(getenv("GWT_B"), "two words");
    CHECK_EQ_STR(getenv("GWT_C"), "quoted \"x\"\nline");
    CHECK_EQ_STR(getenv("GWT_D"), "single # not a comment");
    CHECK_EQ_STR(getenv("GWT_REAL"), "from-env"); /* the real environment wins */
    CHECK(gw_env_raw("GWT_E") == NULL);           /* empty counts as unset */
    CHECK_EQ_INT(gw_env_load_dotenv("/nonexistent/.env", NULL), GW_ENOENT);
    unlink(path);
}

static void norm(const char *in, const char *want)
{
    gw_ip_t ip;
    char out[GW_IP_TEXT_MAX];
    int rc = gw_ip_parse(in, strlen(in), &ip);
    if (!want) {
        CHECK(rc != 0);
        return;
    }
    CHECK(rc == 0);
    gw_ip_format(&ip, out, sizeof(out));
    CHECK_EQ_STR(out, want);
}

TEST(ip_normalize)
{
    norm("1.2.3.4", "1.2.3.4");
    norm("0.0.0.0", "0.0.0.0");
    norm("255.255.255.255", "255.255.255.255");
    norm("100.9.10.199", "100.9.10.199");
    norm("::ffff:10.200.0.99", "10.200.0.99");
    norm(" 10.0.0.1 ", "10.0.0.1");
    norm("2001:DB8:0:0:0:0:0:1", "2001:db8::1");
    norm("::ffff:192.168.1.2", "192.168.1.2");
    norm("::1", "::1");
    norm("1.2.3", NULL);
    norm("1.2.3.4.5", NULL);
    norm("256.1.1.1", NULL);
    norm("garbage", NULL);
    norm("", NULL);
    norm("fe80::1%eth0", NULL);
    /* found by spec/fuzz/ipaddr.c: inet_pton stopped at an embedded NUL, so "::\0junk" and
     * "1.2.3.4\0x" were taken for addresses */
    gw_ip_t ip;
    CHECK(gw_ip_parse("::\0junk", 7, &ip) == GW_EINVAL);
    CHECK(gw_ip_parse("1.2.3.4\0x", 9, &ip) == GW_EINVAL);
    CHECK(gw_ip_parse("1.2.3.4\0", 8, &ip) == GW_EINVAL);
    gw_cidr_t c;
    CHECK(gw_cidr_parse("10.0.0.0\0/8", 11, &c) == GW_EINVAL);
    CHECK(gw_cidr_parse("10.0.0.0/8\0\0", 12, &c) == GW_EINVAL);
    CHECK(gw_cidr_parse("10.0.0.0/8", 10, &c) == GW_OK);
}

TEST(cidr)
{
    gw_cidr_t c;
    gw_ip_t ip;
    CHECK(gw_cidr_parse("10.0.0.0/8", 10, &c) == 0);
    gw_ip_parse("10.200.3.4", 10, &ip);
    CHECK(gw_cidr_contains(&c, &ip));
    gw_ip_parse("11.0.0.1", 8, &ip);
    CHECK(!gw_cidr_contains(&c, &ip));
    CHECK(gw_cidr_parse("1.2.3.77/24", 11, &c) == 0); /* host bits masked */
    gw_ip_parse("1.2.3.1", 7, &ip);
    CHECK(gw_cidr_contains(&c, &ip));
    CHECK(gw_cidr_parse("2001:db8::/32", 13, &c) == 0);
    gw_ip_parse("2001:db8:ffff::1", 16, &ip);
    CHECK(gw_cidr_contains(&c, &ip));
    gw_ip_parse("1.2.3.4", 7, &ip);
    CHECK(!gw_cidr_contains(&c, &ip)); /* family mismatch */
    CHECK(gw_cidr_parse("1.2.3.4/33", 10, &c) != 0);
    CHECK(gw_cidr_parse("1.2.3.4/", 8, &c) != 0);
    CHECK(gw_cidr_parse("1.2.3.4/-1", 10, &c) != 0);
    CHECK(gw_cidr_parse("::/0", 4, &c) == 0 && c.prefix == 0);
    gw_cidr_list_t l;
    const char *bad[] = {"10.0.0.0/8", "nope"};
    char *err = NULL;
    CHECK(gw_cidr_list_parse(bad, 2, &l, &err) != 0);
    CHECK(err && strstr(err, "'nope'"));
    free(err);
}

/* Copy the JSON string value of "key" found in line into out ("" for null); 0 if absent. */
static int json_str(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    const char *p = strstr(line, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    out[0] = '\0';
    if (*p != '"')
        return 1; /* null */
    size_t n = 0;
    for (p++; *p && *p != '"' && n + 1 < cap; p++)
        out[n++] = *p;
    out[n] = '\0';
    return 1;
}

/* The vectors shared with the Lua implementation (spec/fixtures/client_ip.json). */
TEST(client_ip_shared_vectors)
{
    FILE *f = fopen("spec/fixtures/client_ip.json", "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        char name[256], peer[64], xff[256], xri[256], want[64];
        if (!json_str(line, "peer", peer, sizeof(peer)))
            continue;
        json_str(line, "name", name, sizeof(name));
        int has_xff = strstr(line, "\"xff\": null") == NULL;
        int has_xri = strstr(line, "\"x_real_ip\": null") == NULL;
        json_str(line, "xff", xff, sizeof(xff));
        json_str(line, "x_real_ip", xri, sizeof(xri));
        json_str(line, "expected", want, sizeof(want));
        const char *items[16];
        char tbuf[512];
        size_t nt = 0;
        const char *t = strstr(line, "\"trusted\": [");
        snprintf(tbuf, sizeof(tbuf), "%s", t ? t + 12 : "]");
        for (char *q = tbuf; *q && *q != ']' && nt < 16; q++)
            if (*q == '"') {
                items[nt++] = q + 1;
                q = strchr(q + 1, '"');
                *q = '\0';
            }
        gw_cidr_list_t trusted;
        CHECK(gw_cidr_list_parse(items, nt, &trusted, NULL) == 0);
        gw_ip_t p;
        CHECK(gw_ip_parse(peer, strlen(peer), &p) == 0);
        char out[GW_IP_TEXT_MAX];
        gw_client_ip(&p, has_xff ? xff : NULL, has_xff ? strlen(xff) : 0, has_xri ? xri : NULL,
                     has_xri ? strlen(xri) : 0, &trusted, out, sizeof(out));
        if (strcmp(out, want) != 0)
            fprintf(stderr, "vector '%s': got %s\n", name, out);
        CHECK_EQ_STR(out, want);
        gw_cidr_list_free(&trusted);
        n++;
    }
    fclose(f);
    CHECK(n >= 20);
}

TEST(secure_equal)
{
    CHECK(gw_ffi_secure_equal("abc", 3, "abc", 3) == 1);
    CHECK(gw_ffi_secure_equal("abd", 3, "abc", 3) == 0);
    CHECK(gw_ffi_secure_equal("ab", 2, "abc", 3) == 0);
    CHECK(gw_ffi_secure_equal("abcabc", 6, "abc", 3) == 0);
    CHECK(gw_ffi_secure_equal("", 0, "abc", 3) == 0);
    CHECK(gw_ffi_secure_equal("", 0, "", 0) == 1);
    CHECK(gw_ffi_secure_equal("a", 1, "", 0) == 0);
}

TEST(durations)
{
    char b[48];
    gw_log_format_duration(b, sizeof(b), 850000000ull);
    CHECK_EQ_STR(b, "850ms");
    gw_log_format_duration(b, sizeof(b), 1234567000ull);
    CHECK_EQ_STR(b, "1.234567s");
    gw_log_format_duration(b, sizeof(b), 12300ull);
    CHECK_EQ_STR(b, "12.3µs");
    gw_log_format_duration(b, sizeof(b), 999ull);
    CHECK_EQ_STR(b, "999ns");
    gw_log_format_duration(b, sizeof(b), 61500000000ull);
    CHECK_EQ_STR(b, "1m1.5s");
}

TEST(atomic_write)
{
    char dir[] = "/tmp/gw-test-dir-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = gw_sprintf("%s/ban.txt", dir);
    char *err = NULL;
    CHECK(gw_write_file_atomic(path, "one\n", 4, &err) == 0);
    CHECK(gw_write_file_atomic(path, "two\n", 4, &err) == 0);
    FILE *f = fopen(path, "r");
    char line[16] = "";
    CHECK(f && fgets(line, sizeof(line), f));
    CHECK_EQ_STR(line, "two\n");
    if (f)
        fclose(f);
    char *bad = gw_sprintf("%s/missing/ban.txt", dir);
    CHECK(gw_write_file_atomic(bad, "x", 1, &err) != 0);
    CHECK(err && strstr(err, "missing"));
    free(err);
    unlink(path);
    rmdir(dir);
    free(path);
    free(bad);
}

TEST(file_info)
{
    char dir[] = "/tmp/gw-test-dir-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = gw_sprintf("%s/ban.txt", dir);
    char *err = NULL;
    CHECK(gw_write_file_atomic(path, "12345", 5, &err) == 0);
    struct timespec times[2] = {{1700000000, 250000000}, {1700000000, 250000000}};
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
    long long size = -1;
    double mtime = -1;
    CHECK(gw_ffi_file_info(path, strlen(path), &size, &mtime) == GW_OK);
    CHECK(size == 5);
    CHECK(mtime == 1700000000.25);
    /* the length counts, not a NUL: "<dir>/ban.txtXYZ" cut to the path */
    char *longer = gw_sprintf("%sXYZ", path);
    CHECK(gw_ffi_file_info(longer, strlen(path), &size, &mtime) == GW_OK);
    CHECK(gw_ffi_file_info(longer, strlen(longer), &size, &mtime) == GW_ENOENT);
    CHECK(gw_ffi_file_info(dir, strlen(dir), &size, &mtime) == GW_EINVAL);
    CHECK(gw_ffi_file_info("", 0, &size, &mtime) == GW_EINVAL);
    CHECK(gw_ffi_file_info("/tmp\0x", 6, &size, &mtime) == GW_EINVAL);
    char *under_file = gw_sprintf("%s/x", path);
    CHECK(gw_ffi_file_info(under_file, strlen(under_file), &size, &mtime) == GW_ENOENT);
    unlink(path);
    rmdir(dir);
    free(path);
    free(longer);
    free(under_file);
}

int main(void)
{
    RUN(buf_basics);
    RUN(buf_json_escape);
    RUN(buf_recycle_prime);
    RUN(freelist_reuse);
    RUN(parse_values);
    RUN(dotenv);
    RUN(ip_normalize);
    RUN(cidr);
    RUN(client_ip_shared_vectors);
    RUN(secure_equal);
    RUN(durations);
    RUN(atomic_write);
    RUN(file_info);
    return TEST_REPORT();
}
