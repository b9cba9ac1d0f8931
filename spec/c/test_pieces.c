/*
 * pieces-gateway: unit tests of the Pieces message codec (src/upstream/pieces.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The encoder is checked byte for byte against protobuf-c's own packing of the same message
 * (an independent implementation), and the decoder against replies packed by protobuf-c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.pb-c.h"
#include "gw_pieces.h"
#include "gw_test.h"
#include "vertex.pb-c.h"

typedef Runtime__Aot__MachineLearning__Parents__Gpt__Message GptMessage;
typedef Runtime__Aot__MachineLearning__Parents__Gpt__Request GptRequest;
typedef Runtime__Aot__MachineLearning__Parents__Gpt__Response GptResponse;
typedef Runtime__Aot__MachineLearning__Parents__Gpt__Body GptBody;
typedef Runtime__Aot__MachineLearning__Parents__Gpt__MessageWarpper GptWarpper;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Requests VxRequests;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Args VxArgs;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Messages VxMessages;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Response VxResponse;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Args1 VxArgs1;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Args2 VxArgs2;

static int same_as_protobuf_c(const uint8_t *ours, size_t n, const ProtobufCMessage *ref)
{
    size_t rn = protobuf_c_message_get_packed_size(ref);
    uint8_t *rb = malloc(rn + 1);
    int ok;
    protobuf_c_message_pack(ref, rb);
    ok = rn == n && memcmp(rb, ours, n) == 0;
    if (!ok)
        fprintf(stderr, "encoding differs: ours %zu bytes, protobuf-c %zu bytes\n", n, rn);
    free(rb);
    return ok;
}

TEST(gpt_encode_matches_protobuf_c)
{
    const char *sys = "system:be brief;\r\n", *dlg = "user:hi;\r\nassistant:hello;\r\n";
    gw_pieces_msg_t m[2] = {{0, sys, strlen(sys)}, {1, dlg, strlen(dlg)}};
    uint8_t *out;
    size_t n;
    GptMessage rm[2] = {RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__MESSAGE__INIT,
                        RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__MESSAGE__INIT};
    GptMessage *rmp[2] = {&rm[0], &rm[1]};
    GptRequest req = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__REQUEST__INIT;

    rm[0].role = 0, rm[0].message = (char *)sys;
    rm[1].role = 1, rm[1].message = (char *)dlg;
    req.models = "gpt-4o", req.n_messages = 2, req.messages = rmp;
    req.temperature = 0.7, req.top_p = 0.9;
    CHECK_EQ_INT(gw_pieces_gpt_encode("gpt-4o", m, 2, 1, 0.7, 1, 0.9, &out, &n), 0);
    CHECK(same_as_protobuf_c(out, n, &req.base));
    free(out);

    /* absent parameters and zero values are not put on the wire */
    req.temperature = 0, req.top_p = 0;
    CHECK_EQ_INT(gw_pieces_gpt_encode("gpt-4o", m, 2, 0, 0.5, 1, 0.0, &out, &n), 0);
    CHECK(same_as_protobuf_c(out, n, &req.base));
    free(out);

    /* one dialog block only, empty model */
    req.models = "", req.n_messages = 1, req.messages = rmp + 1;
    CHECK_EQ_INT(gw_pieces_gpt_encode("", m + 1, 1, 0, 0, 0, 0, &out, &n), 0);
    CHECK(same_as_protobuf_c(out, n, &req.base));
    free(out);
}

TEST(gpt_encode_round_trip_with_nul_and_large_text)
{
    size_t big = 300000;
    char *text = malloc(big);
    uint8_t *out;
    size_t n;
    for (size_t i = 0; i < big; i++)
        text[i] = (char)('a' + i % 26);
    text[10] = '\0';
    gw_pieces_msg_t m = {1, text, big};
    CHECK_EQ_INT(gw_pieces_gpt_encode("m", &m, 1, 0, 0, 0, 0, &out, &n), 0);
    GptRequest *r = runtime__aot__machine_learning__parents__gpt__request__unpack(NULL, n, out);
    CHECK(r != NULL);
    if (r) {
        CHECK_EQ_INT(r->n_messages, 1);
        CHECK_EQ_INT(r->messages[0]->role, 1);
        CHECK_EQ_STR(r->models, "m");
        runtime__aot__machine_learning__parents__gpt__request__free_unpacked(r, NULL);
    }
    /* the bytes after the NUL are on the wire: the message field's length is the full size */
    CHECK(n > big);
    free(out);
    free(text);
    CHECK_EQ_INT(gw_pieces_gpt_encode("m", NULL, 1, 0, 0, 0, 0, &out, &n), -EINVAL);
}

TEST(gpt_encode_empty_message_kept)
{
    gw_pieces_msg_t m[2] = {{0, "", 0}, {1, "", 0}};
    uint8_t *out;
    size_t n;
    CHECK_EQ_INT(gw_pieces_gpt_encode("x", m, 2, 0, 0, 0, 0, &out, &n), 0);
    GptRequest *r = runtime__aot__machine_learning__parents__gpt__request__unpack(NULL, n, out);
    CHECK(r && r->n_messages == 2 && r->messages[1]->role == 1);
    if (r)
        runtime__aot__machine_learning__parents__gpt__request__free_unpacked(r, NULL);
    free(out);
}

TEST(vertex_encode_matches_protobuf_c)
{
    const char *msg = "user:hi\nthere;\r\nassistant:yo;\r\n", *rules = "system:be kind;\r\n";
    VxMessages vm = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__MESSAGES__INIT;
    VxArgs args = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__ARGS__INIT;
    VxRequests req = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__REQUESTS__INIT;
    uint8_t *out;
    size_t n;

    vm.unknown = 1, vm.message = (char *)msg;
    args.messages = &vm, args.rules = (char *)rules;
    req.models = "claude-3-5-sonnet@20240620", req.args = &args;
    CHECK_EQ_INT(gw_pieces_vertex_encode(req.models, msg, strlen(msg), rules, strlen(rules), &out,
                                         &n), 0);
    CHECK(same_as_protobuf_c(out, n, &req.base));
    free(out);
    args.rules = "";
    vm.message = "";
    CHECK_EQ_INT(gw_pieces_vertex_encode(req.models, "", 0, NULL, 0, &out, &n), 0);
    CHECK(same_as_protobuf_c(out, n, &req.base));
    free(out);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*n + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* gw_pieces_gpt_decode against protobuf-c's own unpacker of the same bytes: accepted by both
 * or by neither, and then the same code, text (up to its first NUL), id and time. */
static int gpt_agrees(const uint8_t *b, size_t n)
{
    gw_pieces_reply_t r;
    GptResponse *m = runtime__aot__machine_learning__parents__gpt__response__unpack(NULL, n, b);
    int rc = gw_pieces_gpt_decode(b, n, &r), ok;
    if (!m)
        return rc == -EBADMSG && r.priv == NULL && !r.has_text;
    const char *id = m->body && m->body->id[0] ? m->body->id : NULL;
    const char *text = m->body && m->body->message_warpper && m->body->message_warpper->message
                           ? m->body->message_warpper->message->message
                           : NULL;
    ok = rc == 0 && r.code == (int64_t)m->response_code && r.has_text == (text != NULL) &&
         (!text || (r.text_len == strlen(text) && memcmp(r.text, text, r.text_len) == 0)) &&
         (id ? r.id && r.id_len == strlen(id) && memcmp(r.id, id, r.id_len) == 0 : !r.id) &&
         r.time == (m->body ? m->body->time : 0);
    gw_pieces_reply_free(&r);
    runtime__aot__machine_learning__parents__gpt__response__free_unpacked(m, NULL);
    return ok;
}

/* The in-place reader leaves to protobuf-c what needs its rules, and gets the rest right. */
TEST(gpt_decode_agrees_with_protobuf_c)
{
    /* Body twice (protobuf-c merges them: id and text from the first, time from the second) */
    static const uint8_t twice[] = {0x10, 0xc8, 0x01, 0x22, 0x0d, 0x0a, 0x01, 'a', 0x22, 0x08,
                                    0x12, 0x06, 0x12, 0x04, 'h', 'i', '!', '?', 0x22, 0x02,
                                    0x18, 0x07};
    /* text with a NUL inside (a C string stops there), unknown fields of every wire type */
    static const uint8_t nul[] = {0x10, 0xc8, 0x01, 0x38, 0x05, 0x45, 1, 2, 3, 4, 0x49, 1, 2,
                                  3, 4, 5, 6, 7, 8, 0x1a, 0x01, 'x', 0x22, 0x0a, 0x22, 0x08,
                                  0x12, 0x06, 0x12, 0x04, 'a', 'b', 0x00, 'c'};
    /* Body.unknown (field 5, a message) malformed: protobuf-c rejects the whole reply */
    static const uint8_t bad_sub[] = {0x10, 0xc8, 0x01, 0x22, 0x04, 0x2a, 0x02, 0x08, 0x80};
    /* Body.unknown.arg1 as a string instead of a varint */
    static const uint8_t bad_kind[] = {0x22, 0x05, 0x2a, 0x03, 0x0a, 0x01, 'z'};
    /* a two-byte tag (field 16, unknown) and an overlong tag of field 2 */
    static const uint8_t long_tag[] = {0x80, 0x01, 0x05, 0x90, 0x00, 0xcc, 0x01};
    gw_pieces_reply_t r;

    CHECK(gpt_agrees(twice, sizeof(twice)));
    CHECK_EQ_INT(gw_pieces_gpt_decode(twice, sizeof(twice), &r), 0);
    CHECK(r.id_len == 1 && r.id[0] == 'a' && r.time == 7 && r.text_len == 4);
    gw_pieces_reply_free(&r);
    CHECK(gpt_agrees(nul, sizeof(nul)));
    CHECK_EQ_INT(gw_pieces_gpt_decode(nul, sizeof(nul), &r), 0);
    CHECK(r.has_text && r.text_len == 2 && r.priv == NULL);
    gw_pieces_reply_free(&r);
    CHECK(gpt_agrees(bad_sub, sizeof(bad_sub)));
    CHECK_EQ_INT(gw_pieces_gpt_decode(bad_sub, sizeof(bad_sub), &r), -EBADMSG);
    CHECK(gpt_agrees(bad_kind, sizeof(bad_kind)));
    CHECK_EQ_INT(gw_pieces_gpt_decode(bad_kind, sizeof(bad_kind), &r), -EBADMSG);
    CHECK(gpt_agrees(long_tag, sizeof(long_tag)));

    /* pseudo-random mutations of a real reply: both decoders always agree */
    static const uint8_t base[] = {0x10, 0xc8, 0x01, 0x22, 0x14, 0x0a, 0x02, 'i', 'd', 0x18,
                                   0x05, 0x22, 0x08, 0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 'o',
                                   'k', 0x2a, 0x02, 0x08, 0x01};
    uint8_t buf[sizeof(base) + 4];
    uint32_t x = 777;
    CHECK(gpt_agrees(base, sizeof(base)));
    for (int it = 0; it < 20000; it++) {
        size_t n = sizeof(base);
        memcpy(buf, base, n);
        for (int k = 0; k < 3; k++) {
            x = x * 1103515245u + 12345u;
            buf[(x >> 8) % n] = (uint8_t)(x >> 20);
        }
        x = x * 1103515245u + 12345u;
        n -= (x >> 12) % 4; /* sometimes cut short */
        CHECK(gpt_agrees(buf, n));
    }
}

/* The one-pass reader of the canonical layout (every known field once, in order, nothing
 * unknown: each streamed chunk) and its hand-over to the walk for anything else. */
TEST(gpt_decode_canonical_and_not)
{
    static const uint8_t canon[] = {0x10, 0xc8, 0x01, 0x22, 0x15, 0x0a, 0x02, 'i', 'd', 0x12,
                                    0x01, 'o', 0x18, 0x05, 0x22, 0x0a, 0x08, 0x01, 0x12, 0x06,
                                    0x08, 0x01, 0x12, 0x02, 'o', 'k'};
    /* the same with time before object, and with the message's text before its role */
    static const uint8_t swapped[] = {0x10, 0xc8, 0x01, 0x22, 0x15, 0x0a, 0x02, 'i', 'd', 0x18,
                                      0x05, 0x12, 0x01, 'o', 0x22, 0x0a, 0x08, 0x01, 0x12, 0x06,
                                      0x12, 0x02, 'o', 'k', 0x08, 0x01};
    /* the code twice (the last wins), and a text of another wire type (rejected) */
    static const uint8_t code2[] = {0x10, 0x01, 0x10, 0xc8, 0x01};
    static const uint8_t text_varint[] = {0x22, 0x06, 0x22, 0x04, 0x12, 0x02, 0x10, 0x01};
    gw_pieces_reply_t r;
    const uint8_t *all[] = {canon, swapped, code2, text_varint};
    size_t lens[] = {sizeof(canon), sizeof(swapped), sizeof(code2), sizeof(text_varint)};
    for (size_t i = 0; i < 4; i++)
        CHECK(gpt_agrees(all[i], lens[i]));
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ_INT(gw_pieces_gpt_decode(all[i], lens[i], &r), 0);
        CHECK(r.code == 200 && r.time == 5 && r.id_len == 2 && memcmp(r.id, "id", 2) == 0);
        CHECK(r.has_text && r.text_len == 2 && memcmp(r.text, "ok", 2) == 0 && !r.priv);
        gw_pieces_reply_free(&r);
    }
    CHECK_EQ_INT(gw_pieces_gpt_decode(code2, sizeof(code2), &r), 0);
    CHECK(r.code == 200 && !r.has_text);
    gw_pieces_reply_free(&r);
    CHECK_EQ_INT(gw_pieces_gpt_decode(text_varint, sizeof(text_varint), &r), -EBADMSG);

    /* pseudo-random mutations of the canonical reply: every prefix and byte flip agrees */
    uint8_t buf[sizeof(canon)];
    uint32_t x = 4242;
    for (size_t n = 0; n <= sizeof(canon); n++)
        CHECK(gpt_agrees(canon, n));
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, canon, sizeof(canon));
        x = x * 1103515245u + 12345u;
        buf[(x >> 8) % sizeof(canon)] = (uint8_t)(x >> 20);
        CHECK(gpt_agrees(buf, sizeof(canon)));
    }
}

TEST(gpt_decode)
{
    GptMessage msg = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__MESSAGE__INIT;
    GptWarpper w = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__MESSAGE_WARPPER__INIT;
    GptBody body = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__BODY__INIT;
    GptResponse resp = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__GPT__RESPONSE__INIT;
    gw_pieces_reply_t r;
    size_t n;
    uint8_t *b;

    msg.role = 1, msg.message = "Hello, wörld";
    w.arg1 = 1, w.message = &msg;
    body.id = "chatcmpl-x", body.object = "chat.completion", body.time = 1700000000;
    body.message_warpper = &w;
    resp.response_code = 200, resp.body = &body;
    b = pack(&resp.base, &n);
    CHECK_EQ_INT(gw_pieces_gpt_decode(b, n, &r), 0);
    CHECK_EQ_INT(r.code, 200);
    CHECK(r.has_text);
    CHECK_EQ_INT(r.text_len, strlen("Hello, wörld"));
    CHECK(r.text && memcmp(r.text, "Hello, wörld", r.text_len) == 0);
    CHECK(r.id && r.id_len == 10 && memcmp(r.id, "chatcmpl-x", 10) == 0);
    CHECK(r.priv == NULL); /* read in place: nothing allocated */
    CHECK_EQ_INT(r.time, 1700000000);
    gw_pieces_reply_free(&r);
    free(b);

    /* 204 without a body: no text, no error */
    resp.response_code = 204, resp.body = NULL;
    b = pack(&resp.base, &n);
    CHECK_EQ_INT(gw_pieces_gpt_decode(b, n, &r), 0);
    CHECK_EQ_INT(r.code, 204);
    CHECK(!r.has_text && r.text == NULL && r.id == NULL);
    gw_pieces_reply_free(&r);
    free(b);

    /* body without message_warpper: text path missing */
    resp.response_code = 200, resp.body = &body, body.message_warpper = NULL;
    b = pack(&resp.base, &n);
    CHECK_EQ_INT(gw_pieces_gpt_decode(b, n, &r), 0);
    CHECK(!r.has_text);
    gw_pieces_reply_free(&r);
    free(b);

    /* empty text is present but empty (seed: "empty response content", not "structure") */
    body.message_warpper = &w, msg.message = "";
    b = pack(&resp.base, &n);
    CHECK_EQ_INT(gw_pieces_gpt_decode(b, n, &r), 0);
    CHECK(r.has_text && r.text_len == 0);
    gw_pieces_reply_free(&r);
    free(b);

    /* an empty buffer is a valid all-defaults message */
    CHECK_EQ_INT(gw_pieces_gpt_decode((const uint8_t *)"", 0, &r), 0);
    CHECK(r.code == 0 && !r.has_text);
    gw_pieces_reply_free(&r);
}

TEST(vertex_decode)
{
    VxMessages m = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__MESSAGES__INIT;
    VxArgs2 a2 = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__ARGS2__INIT;
    VxArgs1 a1 = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__ARGS1__INIT;
    VxResponse resp = RUNTIME__AOT__MACHINE_LEARNING__PARENTS__VERTEX__RESPONSE__INIT;
    gw_pieces_reply_t r;
    size_t n;
    uint8_t *b;
    char big[20000];

    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    m.unknown = 3, m.message = big;
    a2.args = &m, a1.args = &a2;
    resp.response_code = 200, resp.args = &a1;
    b = pack(&resp.base, &n);
    CHECK_EQ_INT(gw_pieces_vertex_decode(b, n, &r), 0);
    CHECK_EQ_INT(r.code, 200);
    CHECK(r.has_text && r.text_len == sizeof(big) - 1);
    CHECK(r.id == NULL);
    gw_pieces_reply_free(&r);
    free(b);

    a1.args = NULL;
    resp.response_code = 439;
    b = pack(&resp.base, &n);
    CHECK_EQ_INT(gw_pieces_vertex_decode(b, n, &r), 0);
    CHECK_EQ_INT(r.code, 439);
    CHECK(!r.has_text);
    gw_pieces_reply_free(&r);
    free(b);
}

TEST(decode_malformed)
{
    static const uint8_t truncated_len[] = {0x22, 0x05, 0x0a};  /* body: 5 bytes announced, 1 */
    static const uint8_t bad_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff};
    static const uint8_t bad_wiretype[] = {0x27, 0x00};          /* field 4, wire type 7 */
    static const uint8_t wrong_type[] = {0x21, 1, 2, 3, 4, 5, 6, 7, 8}; /* field 4 as fixed64 */
    static const uint8_t huge_len[] = {0x22, 0xff, 0xff, 0xff, 0xff, 0x0f};
    gw_pieces_reply_t r;

    CHECK_EQ_INT(gw_pieces_gpt_decode(truncated_len, sizeof(truncated_len), &r), -EBADMSG);
    CHECK(r.priv == NULL && !r.has_text);
    CHECK_EQ_INT(gw_pieces_gpt_decode(bad_varint, sizeof(bad_varint), &r), -EBADMSG);
    CHECK_EQ_INT(gw_pieces_gpt_decode(bad_wiretype, sizeof(bad_wiretype), &r), -EBADMSG);
    CHECK_EQ_INT(gw_pieces_gpt_decode(wrong_type, sizeof(wrong_type), &r), -EBADMSG);
    CHECK_EQ_INT(gw_pieces_vertex_decode(huge_len, sizeof(huge_len), &r), -EBADMSG);
    CHECK_EQ_INT(gw_pieces_vertex_decode(truncated_len, sizeof(truncated_len), &r), -EBADMSG);
    gw_pieces_reply_free(&r); /* safe on the zeroed result */

    /* pseudo-random garbage never crashes (ASan variant watches memory) */
    uint32_t x = 12345;
    uint8_t buf[64];
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(x % sizeof(buf));
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        if (gw_pieces_gpt_decode(buf, n, &r) == 0)
            gw_pieces_reply_free(&r);
        if (gw_pieces_vertex_decode(buf, n, &r) == 0)
            gw_pieces_reply_free(&r);
    }
    CHECK(1);
}

int main(void)
{
    RUN(gpt_encode_matches_protobuf_c);
    RUN(gpt_encode_round_trip_with_nul_and_large_text);
    RUN(gpt_encode_empty_message_kept);
    RUN(vertex_encode_matches_protobuf_c);
    RUN(gpt_decode);
    RUN(gpt_decode_agrees_with_protobuf_c);
    RUN(gpt_decode_canonical_and_not);
    RUN(vertex_decode);
    RUN(decode_malformed);
    return TEST_REPORT();
}
