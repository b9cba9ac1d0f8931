/*
 * pieces-gateway: tests of src/lua_json.c (gw.json_c) against lua-cjson.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * What it takes must decode exactly as lua-cjson decodes it (spec/c/lua_json_diff.h); what is
 * outside strict RFC 8259 (or deeper than GW_LUA_JSON_DEPTH) it must decline, so that
 * lua-cjson answers it, error message included.
 */
#include <stdio.h>
#include <string.h>

#include "gw_test.h"
#include "lua_json_diff.h"

static lua_State *L;

static int diff(const char *s) { return json_diff(L, s, strlen(s)); }

static char *nested(int depth)
{
    static char buf[512];
    int n = 0;
    for (int i = 0; i < depth; i++) /* {"k":[{"k":[...1...]}]} */
        n += sprintf(buf + n, "%s", i % 2 ? "[" : "{\"k\":");
    buf[n++] = '1';
    for (int i = depth - 1; i >= 0; i--)
        buf[n++] = i % 2 ? ']' : '}';
    buf[n] = '\0';
    return buf;
}

TEST(takes_json_as_lua_cjson_reads_it)
{
    const char *ok[] = {
        ("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
         "\"stream\":true}"),
        "{\"a\":1,\"a\":2,\"a\":{\"b\":null}}", /* the last duplicate wins */
        "[0,-0,0.5,-1.25e-3,1E400,-1e-400,12345678901234567890,1e+2,7E-1]",
        "[\"\\u00e9\\ud83d\\ude00\\u20ac\\n\\t\\\"\\\\\\/\\b\\f\\r\",\"\\u0000x\",\"\\uABCD\"]",
        " \t\r\n{ \"a\" : [ ] , \"b\" : { } , \"c\" : [ null , false , true ] } \n",
        "\"top\"", "1", "null", "false", "[]", "{}", "\"\"",
        "[\"caf\xc3\xa9\",\"\xf0\x9f\x98\x80\"]", /* raw UTF-8 as it is */
        "{\"1\":\"string key\",\"2\":[1,[2,[3]]]}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = diff(ok[i]);
        if (rc != 1)
            fprintf(stderr, "not taken (%d): %s\n", rc, ok[i]);
        CHECK_EQ_INT(rc, 1);
    }
    CHECK_EQ_INT(diff(nested(GW_LUA_JSON_DEPTH)), 1);
}

TEST(declines_what_is_not_strict_json)
{
    const char *no[] = {
        "", "   ", "[01]", "[0x10]", "[1.]", "[.5]", "[+1]", "[-]", "[1e]", "[1e+]",
        "[Infinity]", "[-Infinity]", "[NaN]", "[inf]", "[tru]", "[nul]", "[1,]", "{\"a\" 1}",
        "{\"a\":1,}", "{a:1}", "[1] x", "[1]]", "[1", "{\"a\":", "\"open", "[\"a\tb\"]",
        "[\"\\x\"]", "[\"\\u12\"]", "[\"\\u12g4\"]", "[\"\\ud800\"]", "[\"\\udc00\"]",
        "[\"\\ud800\\u0041\"]", "[1 2]", "{\"a\":1 \"b\":2}", "[1]\x01",
        "[1000000000000000000000000000000000000000000000000000000000000000000000]",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        int rc = diff(no[i]);
        if (rc != 0)
            fprintf(stderr, "not declined (%d): %s\n", rc, no[i]);
        CHECK_EQ_INT(rc, 0);
    }
    CHECK_EQ_INT(json_diff(L, "[\"a\0b\"]", 7), 0); /* a NUL byte: lua-cjson ends there */
    CHECK_EQ_INT(json_diff(L, "[1]\0", 4), 0);
    CHECK_EQ_INT(diff(nested(GW_LUA_JSON_DEPTH + 1)), 0);
}

TEST(big_containers)
{
    static char buf[200000];
    int n = sprintf(buf, "[");
    for (int i = 0; i < 10000; i++) /* more members than the Lua stack holds: declined */
        n += sprintf(buf + n, "%s{\"i\":%d}", i ? "," : "", i);
    sprintf(buf + n, "]");
    int rc = diff(buf);
    CHECK(rc == 1 || rc == 0);
    n = sprintf(buf, "{");
    for (int i = 0; i < 2000; i++)
        n += sprintf(buf + n, "%s\"k%d\":\"%d\"", i ? "," : "", i % 1500, i);
    sprintf(buf + n, "}");
    CHECK_EQ_INT(diff(buf), 1);
    CHECK_EQ_INT(lua_gettop(L), 2); /* nothing left on the stack */
}

int main(void)
{
    L = json_diff_new();
    CHECK(L != NULL);
    if (!L)
        return 1;
    RUN(takes_json_as_lua_cjson_reads_it);
    RUN(declines_what_is_not_strict_json);
    RUN(big_containers);
    lua_close(L);
    return TEST_REPORT();
}
