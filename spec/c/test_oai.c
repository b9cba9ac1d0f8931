/*
 * pieces-gateway: unit tests of the OpenAI backend's codecs: the JSON scanner, the SSE parser
 * and the chunk/answer mapping.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/json.h"
#include "backend/openai/oai_map.h"
#include "backend/openai/sse.h"
#include "gw_test.h"

/* ---- JSON ---------------------------------------------------------------------------------- */

static int valid(const char *s)
{
    gw_json_t j;
    gw_json_init(&j, s, strlen(s));
    return gw_json_skip(&j) == 0 && gw_json_end(&j) == 0;
}

TEST(json_grammar)
{
    CHECK(valid("{}"));
    CHECK(valid(" [1, -0, 2.5e-3, true, false, null, \"x\", {\"a\": []}] "));
    CHECK(valid("\"\\u00e9\\n\\/\""));
    CHECK(!valid("[1,]"));
    CHECK(!valid("{\"a\":1,}"));
    CHECK(!valid("{,\"a\":1}"));
    CHECK(!valid("01"));
    CHECK(!valid("1."));
    CHECK(!valid("\"a\x01\""));
    CHECK(!valid("\"\\x\""));
    CHECK(!valid("\"\\u12\""));
    CHECK(!valid("{\"a\" 1}"));
    CHECK(!valid("[1] x"));
    CHECK(!valid("tru"));
    CHECK(!valid(""));
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    gw_json_t j;
    gw_json_init(&j, deep, 200);
    CHECK(gw_json_skip(&j) != 0); /* deeper than GW_JSON_MAX_DEPTH */
    gw_json_init(&j, deep + 40, 120);
    CHECK(gw_json_skip(&j) == 0 && gw_json_end(&j) == 0);
}

TEST(json_values)
{
    const char *s = "{\"\\u006dodel\": \"a\\ud83d\\ude00b\\ud800\", \"n\": -9223372036854775808,"
                    " \"big\": 9223372036854775808, \"f\": 1.5}";
    gw_json_t j;
    gw_json_str_t k;
    gw_buf_t b;
    gw_buf_init(&b);
    gw_json_init(&j, s, strlen(s));
    CHECK(gw_json_object_begin(&j) == 0);
    CHECK(gw_json_object_next(&j, &k) == 1);
    CHECK(k.escaped && gw_json_key_is(&k, "model") && !gw_json_key_is(&k, "mode"));
    CHECK(gw_json_string(&j, &b) == 0);
    CHECK_EQ_STR(b.data, "a\xF0\x9F\x98\x80" "b\xEF\xBF\xBD");
    long long v = 0;
    CHECK(gw_json_object_next(&j, &k) == 1 && gw_json_int(&j, &v) == 0);
    CHECK(v == (-9223372036854775807LL - 1));
    CHECK(gw_json_object_next(&j, &k) == 1 && gw_json_int(&j, &v) == -ERANGE);
    gw_json_init(&j, "1.5", 3);
    CHECK(gw_json_int(&j, &v) == -EBADMSG);
    gw_buf_dispose(&b);
}

/* ---- SSE ----------------------------------------------------------------------------------- */

typedef struct {
    gw_buf_t out;
    int stop_after;
    int n;
} sink_t;

static int on_sse(void *ud, const char *ev, size_t elen, const char *d, size_t dlen)
{
    sink_t *s = ud;
    gw_buf_append(&s->out, ev, elen);
    gw_buf_putc(&s->out, '|');
    gw_buf_append(&s->out, d, dlen);
    gw_buf_putc(&s->out, '#');
    return ++s->n == s->stop_after ? 7 : 0;
}

/* Parses text in pieces of `step` bytes; returns the events as "event|data#...". */
static char *parse_steps(const char *text, size_t n, size_t step, size_t max, int *rc)
{
    gw_sse_parser_t p;
    sink_t s = {{0}, 0, 0};
    gw_buf_init(&s.out);
    gw_sse_init(&p, max);
    *rc = 0;
    for (size_t i = 0; i < n && *rc == 0; i += step)
        *rc = gw_sse_feed(&p, text + i, i + step > n ? n - i : step, on_sse, &s);
    gw_sse_dispose(&p);
    gw_buf_putc(&s.out, '\0');
    return gw_buf_steal(&s.out, NULL);
}

TEST(sse_events_any_split)
{
    const char *text = "\xEF\xBB\xBF: hello\r\ndata: {\"a\":1}\r\n\r\n"
                       "event: x\ndata:two\ndata:  lines\n\n"
                       "data\n\n"
                       "id: 5\nretry: 10\nfoo: bar\n\n"
                       ":c\rdata: cr\r\rdata: [DONE]\n\ndata: tail";
    const char *want = "|{\"a\":1}#x|two\n lines#|#|cr#|[DONE]#";
    int rc;
    for (size_t step = 1; step <= strlen(text); step++) {
        char *got = parse_steps(text, strlen(text), step, 0, &rc);
        CHECK(rc == 0);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "step %zu: %s\n", step, got);
            CHECK(0);
        }
        free(got);
    }
    gw_sse_parser_t p;
    gw_sse_init(&p, 0);
    sink_t s = {{0}, 0, 0};
    gw_buf_init(&s.out);
    CHECK(gw_sse_feed(&p, "data: a\n\ndata: b", 16, on_sse, &s) == 0);
    CHECK(gw_sse_pending(&p) > 0); /* an event cut by EOF is visible */
    CHECK(gw_sse_feed(&p, "\n\n", 2, on_sse, &s) == 0);
    CHECK(gw_sse_pending(&p) == 0);
    gw_buf_dispose(&s.out);
    gw_sse_dispose(&p);
}

TEST(sse_bounds_and_stop)
{
    int rc;
    char *got = parse_steps("data: 0123456789\n\n", 18, 3, 8, &rc);
    CHECK(rc == -EMSGSIZE);
    free(got);
    got = parse_steps("data: 0123\ndata: 4567\n\n", 24, 24, 8, &rc);
    CHECK(rc == -EMSGSIZE);
    free(got);
    got = parse_steps("data: 0123\n\ndata: 45\n\n", 22, 5, 12, &rc);
    CHECK(rc == 0);
    CHECK_EQ_STR(got, "|0123#|45#");
    free(got);
    gw_sse_parser_t p;
    sink_t s = {{0}, 1, 0};
    gw_buf_init(&s.out);
    gw_sse_init(&p, 0);
    CHECK(gw_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, on_sse, &s) == 7);
    CHECK(s.n == 1);
    gw_sse_dispose(&p);
    gw_buf_dispose(&s.out);
}

/* ---- mapping ------------------------------------------------------------------------------- */

static int on_ev(void *ud, const gw_llm_event_t *e)
{
    gw_buf_t *b = ud;
    switch (e->type) {
    case GW_EV_HEAD: gw_buf_puts(b, "H;"); break;
    case GW_EV_TEXT: gw_buf_printf(b, "T%d:%.*s;", e->choice, (int)e->len, e->text); break;
    case GW_EV_REFUSAL: gw_buf_printf(b, "R%d:%.*s;", e->choice, (int)e->len, e->text); break;
    case GW_EV_TOOL_CALL:
        gw_buf_printf(b, "C%d.%d:%.*s/%.*s/%.*s;", e->choice, e->tool.index,
                      e->tool.id ? (int)e->tool.id_len : 1, e->tool.id ? e->tool.id : "-",
                      e->tool.name ? (int)e->tool.name_len : 1, e->tool.name ? e->tool.name : "-",
                      (int)e->len, e->text);
        break;
    case GW_EV_FINISH: gw_buf_printf(b, "F%d:%s;", e->choice, gw_finish_name(e->finish)); break;
    case GW_EV_USAGE:
        gw_buf_printf(b, "U:%lld/%lld;", e->prompt_tokens, e->completion_tokens);
        break;
    case GW_EV_ERROR: gw_buf_printf(b, "E:%s;", e->error.message); break;
    default: gw_buf_puts(b, "?;"); break;
    }
    return 0;
}

static char *map_all(const char **docs, size_t n, int answer, int *rc)
{
    gw_oai_map_t m;
    gw_buf_t b;
    gw_buf_init(&b);
    gw_oai_map_init(&m);
    *rc = 0;
    for (size_t i = 0; i < n && *rc == 0; i++)
        *rc = answer ? gw_oai_map_answer(&m, docs[i], strlen(docs[i]), on_ev, &b)
                     : gw_oai_map_chunk(&m, docs[i], strlen(docs[i]), on_ev, &b);
    gw_oai_map_dispose(&m);
    gw_buf_putc(&b, '\0');
    return gw_buf_steal(&b, NULL);
}

TEST(map_stream_chunks)
{
    const char *docs[] = {
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"},\"finish_reason\":null}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"He\\\"llo\"},\"index\":1}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"{\\\"a\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"no\"},\"finish_reason\":"
        "\"content_filter\"}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,"
        "\"total_tokens\":13,\"prompt_tokens_details\":{\"cached_tokens\":0}}}",
    };
    int rc;
    char *got = map_all(docs, 7, 0, &rc);
    CHECK(rc == 0);
    CHECK_EQ_STR(got, "H;T1:He\"llo;C0.0:call_1/f/;C0.0:-/-/{\"a;R0:no;F0:content_filter;"
                      "F0:tool_calls;U:9/4;");
    free(got);
}

TEST(map_errors_and_invalid)
{
    const char *err[] = {"{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}"};
    int rc;
    char *got = map_all(err, 1, 0, &rc);
    CHECK(rc == 0);
    CHECK_EQ_STR(got, "E:overloaded;");
    free(got);
    const char *bad[] = {"{\"choices\":[{\"delta\":{\"content\":\"x\"}}]", "[1]",
                         "{\"choices\":[{\"delta\":{\"content\":5}}]}",
                         "{\"choices\":[{\"index\":-1,\"delta\":{}}]}"};
    for (int i = 0; i < 4; i++) {
        got = map_all(&bad[i], 1, 0, &rc);
        CHECK(rc == -EBADMSG);
        CHECK(i >= 2 || strcmp(got, "") == 0); /* nothing emitted for invalid JSON */
        free(got);
    }
    gw_buf_t b;
    gw_buf_init(&b);
    const char *body = "{\"error\":{\"message\":\"Invalid key\",\"code\":\"x\"}}";
    CHECK(gw_oai_error_message(body, strlen(body), &b) == 0);
    CHECK_EQ_STR(b.data, "Invalid key");
    gw_buf_reset(&b);
    CHECK(gw_oai_error_message("{\"error\":\"plain\"}", 17, &b) == 0);
    CHECK_EQ_STR(b.data, "plain");
    gw_buf_reset(&b);
    CHECK(gw_oai_error_message("<html>", 6, &b) == -EBADMSG);
    gw_buf_dispose(&b);
}

TEST(map_answer)
{
    const char *docs[] = {
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{}\"}},{\"id\":"
        "\"c2\",\"type\":\"function\",\"function\":{\"name\":\"put\",\"arguments\":\"[]\"}}]},"
        "\"finish_reason\":\"tool_calls\"},{\"index\":1,\"message\":{\"content\":\"Two\"},"
        "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}"};
    int rc;
    char *got = map_all(docs, 1, 1, &rc);
    CHECK(rc == 0);
    CHECK_EQ_STR(got, "H;C0.0:c1/get/{};C0.1:c2/put/[];F0:tool_calls;T1:Two;F1:length;U:1/2;");
    free(got);
}

int main(void)
{
    RUN(json_grammar);
    RUN(json_values);
    RUN(sse_events_any_split);
    RUN(sse_bounds_and_stop);
    RUN(map_stream_chunks);
    RUN(map_errors_and_invalid);
    RUN(map_answer);
    return TEST_REPORT();
}
