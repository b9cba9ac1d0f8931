/*
 * pieces-gateway: libFuzzer driver for the Pieces message codec (src/upstream/pieces.c).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Byte 0 picks the mode, the rest is its input:
 *   0 / 1  a GPT / Vertex reply message: gw_pieces_*_decode (read in place, or protobuf-c into
 *          one arena per reply when the in-place walk leaves the reply to it) must agree
 *          with protobuf-c's own unpacker on the default allocator (accept and reject the same
 *          bytes; same code, text, id, time), and decoding protobuf-c's re-packing of it must
 *          give the same fields again (when protobuf-c accepts its own re-packing);
 *   2 / 3  a GPT / Vertex request built from the bytes: gw_pieces_*_encode (a hand-written
 *          proto3 writer) must produce bytes that protobuf-c unpacks to the same fields.
 * Any disagreement traps; ASan/UBSan catch memory errors in the arena and the writer.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.pb-c.h"
#include "gw_pieces.h"
#include "vertex.pb-c.h"

#define CHECK(c)                                                                               \
    do {                                                                                       \
        if (!(c))                                                                              \
            __builtin_trap();                                                                  \
    } while (0)

typedef Runtime__Aot__MachineLearning__Parents__Gpt__Response GptResponse;
typedef Runtime__Aot__MachineLearning__Parents__Gpt__Request GptRequest;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Response VxResponse;
typedef Runtime__Aot__MachineLearning__Parents__Vertex__Requests VxRequests;

/* What a reply must decode to, read from protobuf-c's unpacked message. */
typedef struct {
    int64_t code;
    const char *text, *id;
    uint64_t time;
} expect_t;

/* ours (pointer + length, not NUL-terminated) against protobuf-c's C string */
static int same_text(const char *s, size_t len, const char *want)
{
    return (!s && !want) || (s && want && len == strlen(want) && memcmp(s, want, len) == 0 &&
                             !memchr(s, 0, len));
}

static void check_reply(const gw_pieces_reply_t *r, const expect_t *e)
{
    CHECK(r->code == e->code);
    CHECK(r->has_text == (e->text != NULL));
    CHECK(same_text(r->text, r->text_len, e->text));
    CHECK(same_text(r->id, r->id_len, e->id));
    CHECK(r->id || r->id_len == 0);
    CHECK(r->time == e->time);
}

static void gpt_expect(const GptResponse *m, expect_t *e)
{
    memset(e, 0, sizeof(*e));
    e->code = (int64_t)m->response_code;
    if (!m->body)
        return;
    e->id = m->body->id && m->body->id[0] ? m->body->id : NULL;
    e->time = m->body->time;
    if (m->body->message_warpper && m->body->message_warpper->message)
        e->text = m->body->message_warpper->message->message;
}

static void vx_expect(const VxResponse *m, expect_t *e)
{
    memset(e, 0, sizeof(*e));
    e->code = m->response_code;
    if (m->args && m->args->args && m->args->args->args)
        e->text = m->args->args->args->message;
}

typedef int (*decode_fn)(const uint8_t *, size_t, gw_pieces_reply_t *);

/* Ours against protobuf-c on the same bytes; then both on protobuf-c's re-packing. */
static void reply_case(const ProtobufCMessageDescriptor *desc, decode_fn decode,
                       void (*expect)(const void *, expect_t *), const uint8_t *p, size_t n)
{
    gw_pieces_reply_t r;
    expect_t e;
    ProtobufCMessage *ref = protobuf_c_message_unpack(desc, NULL, n, p);
    int rc = decode(p, n, &r);
    CHECK(rc == 0 || rc == -EBADMSG);
    CHECK((rc == 0) == (ref != NULL));
    if (!ref) {
        CHECK(r.priv == NULL && r.text == NULL && r.code == 0);
        gw_pieces_reply_free(&r);
        return;
    }
    expect(ref, &e);
    check_reply(&r, &e);
    gw_pieces_reply_free(&r);
    CHECK(r.priv == NULL && r.text == NULL);

    /* The re-packing: the same fields again. protobuf-c accepts an overlong tag of field 0
     * as an unknown field but packs it as a plain 0 it then rejects; both decoders must still
     * agree on it. */
    size_t rn = protobuf_c_message_get_packed_size(ref);
    uint8_t *re = malloc(rn ? rn : 1);
    CHECK(protobuf_c_message_pack(ref, re) == rn);
    ProtobufCMessage *ref2 = protobuf_c_message_unpack(desc, NULL, rn, re);
    rc = decode(re, rn, &r);
    CHECK((rc == 0) == (ref2 != NULL));
    if (rc == 0)
        check_reply(&r, &e);
    gw_pieces_reply_free(&r);
    free(re);
    if (ref2)
        protobuf_c_message_free_unpacked(ref2, NULL);
    protobuf_c_message_free_unpacked(ref, NULL);
}

static void gpt_expect_v(const void *m, expect_t *e) { gpt_expect(m, e); }
static void vx_expect_v(const void *m, expect_t *e) { vx_expect(m, e); }

/* ---- requests ---------------------------------------------------------------------------- */

/* Cuts the input at 0xff bytes: the pieces become the strings of a request. */
typedef struct {
    const char *s[16];
    size_t len[16];
    size_t n;
} pieces_t;

static void cut(const uint8_t *p, size_t n, pieces_t *out)
{
    size_t start = 0;
    out->n = 0;
    for (size_t i = 0; i <= n && out->n < 16; i++) {
        if (i == n || p[i] == 0xff) {
            out->s[out->n] = (const char *)p + start;
            out->len[out->n++] = i - start;
            start = i + 1;
        }
    }
}

/* protobuf-c's strings are C strings: compare up to the first NUL of ours. */
static int same_prefix(const char *ref, const char *ours, size_t len)
{
    size_t n = strnlen(ours, len);
    return strlen(ref) == n && memcmp(ref, ours, n) == 0;
}

/* A proto3 double is on the wire unless it is +0.0; protobuf-c gives 0 when it is absent. */
static int same_double(double got, int has, double want)
{
    if (!has || (want == 0.0 && !signbit(want)))
        want = 0.0;
    return memcmp(&got, &want, sizeof(got)) == 0;
}

static char *model_of(const pieces_t *pc)
{
    char *m = malloc(pc->len[0] + 1);
    memcpy(m, pc->s[0], pc->len[0]);
    m[pc->len[0]] = '\0';
    return m; /* a C string: stops at its first NUL, like the caller's model name */
}

static void gpt_request_case(const uint8_t *p, size_t n)
{
    double temp = 0, top = 0;
    int flags = 0;
    if (n >= 17) {
        memcpy(&temp, p, 8);
        memcpy(&top, p + 8, 8);
        flags = p[16];
        p += 17, n -= 17;
    }
    pieces_t pc;
    cut(p, n, &pc);
    char *model = model_of(&pc);
    gw_pieces_msg_t m[15];
    size_t nm = pc.n - 1;
    for (size_t i = 0; i < nm; i++) {
        m[i].role = pc.len[i + 1] ? (uint8_t)pc.s[i + 1][0] % 3 : 0;
        m[i].text = pc.s[i + 1];
        m[i].len = pc.len[i + 1];
    }
    uint8_t *out;
    size_t olen;
    CHECK(gw_pieces_gpt_encode(model, m, nm, flags & 1, temp, flags & 2, top, &out, &olen) == 0);
    GptRequest *ref = runtime__aot__machine_learning__parents__gpt__request__unpack(NULL, olen, out);
    CHECK(ref != NULL);
    CHECK(strcmp(ref->models, model) == 0);
    CHECK(ref->n_messages == nm);
    for (size_t i = 0; i < nm; i++) {
        CHECK(ref->messages[i]->role == (uint64_t)m[i].role);
        CHECK(same_prefix(ref->messages[i]->message, m[i].text, m[i].len));
    }
    CHECK(same_double(ref->temperature, flags & 1, temp));
    CHECK(same_double(ref->top_p, flags & 2, top));
    runtime__aot__machine_learning__parents__gpt__request__free_unpacked(ref, NULL);
    free(out);
    free(model);
}

static void vertex_request_case(const uint8_t *p, size_t n)
{
    pieces_t pc;
    cut(p, n, &pc);
    char *model = model_of(&pc);
    const char *msg = pc.n > 1 ? pc.s[1] : NULL, *rules = pc.n > 2 ? pc.s[2] : NULL;
    size_t mlen = pc.n > 1 ? pc.len[1] : 0, rlen = pc.n > 2 ? pc.len[2] : 0;
    uint8_t *out;
    size_t olen;
    CHECK(gw_pieces_vertex_encode(model, msg, mlen, rules, rlen, &out, &olen) == 0);
    VxRequests *ref =
        runtime__aot__machine_learning__parents__vertex__requests__unpack(NULL, olen, out);
    CHECK(ref != NULL);
    CHECK(strcmp(ref->models, model) == 0);
    CHECK(ref->args && ref->args->messages && ref->args->messages->unknown == 1);
    CHECK(same_prefix(ref->args->messages->message, msg ? msg : "", mlen));
    CHECK(same_prefix(ref->args->rules, rules ? rules : "", rlen));
    runtime__aot__machine_learning__parents__vertex__requests__free_unpacked(ref, NULL);
    free(out);
    free(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0:
        reply_case(&runtime__aot__machine_learning__parents__gpt__response__descriptor,
                   gw_pieces_gpt_decode, gpt_expect_v, p, n);
        break;
    case 1:
        reply_case(&runtime__aot__machine_learning__parents__vertex__response__descriptor,
                   gw_pieces_vertex_decode, vx_expect_v, p, n);
        break;
    case 2:
        gpt_request_case(p, n);
        break;
    default:
        vertex_request_case(p, n);
        break;
    }
    return 0;
}
