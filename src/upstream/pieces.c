/*
 * pieces-gateway: the Pieces OS message codec (see gw_pieces.h).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: request encoding and reply decoding for both services.
 * Uses: a direct proto3 writer for requests (the text is pointer+length and may hold NULs,
 *   which protobuf-c's C strings cannot carry; spec/c/test_pieces.c checks the bytes against
 *   protobuf-c's own packing); for replies a walker over the wire bytes that makes
 *   protobuf-c's checks and reads the few fields in place (no allocation: one per streamed
 *   chunk adds up), falling back to protobuf-c's own unpacker, into one per-reply arena, for
 *   anything whose outcome needs protobuf-c's rules (a known field given twice is merged, odd
 *   tags, malformed input: protobuf-c decides what is rejected). spec/fuzz/pieces_reply.c
 *   checks both paths against protobuf-c.
 * Must never: keep state between calls, or read past len.
 */
#include "gw_pieces.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.pb-c.h"
#include "vertex.pb-c.h"

/* ---- proto3 writer ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} wbuf_t;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(wbuf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

static void put_tag(wbuf_t *b, unsigned field, unsigned wt)
{
    put_varint(b, ((uint64_t)field << 3) | wt);
}

static void put_bytes(wbuf_t *b, unsigned field, const void *s, size_t n)
{
    if (n == 0)
        return; /* proto3: "" is not put on the wire */
    put_tag(b, field, WT_LEN);
    put_varint(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_double(wbuf_t *b, unsigned field, double d)
{
    uint64_t v;
    if (d == 0.0 && !signbit(d))
        return;
    memcpy(&v, &d, 8);
    put_tag(b, field, WT_I64);
    for (int i = 0; i < 8; i++)
        b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

/* Size of a length-delimited field (tag + length + payload), 0 when the payload is empty. */
static size_t len_field_size(unsigned field, size_t n)
{
    return n ? varint_size((uint64_t)field << 3) + varint_size(n) + n : 0;
}

static int wbuf_alloc(wbuf_t *b, size_t cap)
{
    b->p = malloc(cap ? cap : 1);
    b->len = 0;
    b->cap = cap;
    return b->p ? 0 : -ENOMEM;
}

static size_t gpt_msg_size(const gw_pieces_msg_t *m)
{
    size_t role = m->role ? 1 + varint_size((uint64_t)m->role) : 0;
    return role + len_field_size(2, m->len);
}

int gw_pieces_gpt_encode(const char *model, const gw_pieces_msg_t *msgs, size_t n,
                         int has_temperature, double temperature, int has_top_p, double top_p,
                         uint8_t **out, size_t *out_len)
{
    wbuf_t b;
    size_t mlen = model ? strlen(model) : 0, cap = len_field_size(1, mlen) + 18;

    if (!out || !out_len || (n && !msgs))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].role < 0 || (msgs[i].len && !msgs[i].text))
            return -EINVAL;
        cap += 1 + 10 + gpt_msg_size(&msgs[i]); /* an empty Message is still a field */
    }
    if (wbuf_alloc(&b, cap) != 0)
        return -ENOMEM;
    put_bytes(&b, 1, model, mlen);
    for (size_t i = 0; i < n; i++) {
        put_tag(&b, 2, WT_LEN);
        put_varint(&b, gpt_msg_size(&msgs[i]));
        if (msgs[i].role) {
            put_tag(&b, 1, WT_VARINT);
            put_varint(&b, (uint64_t)msgs[i].role);
        }
        put_bytes(&b, 2, msgs[i].text, msgs[i].len);
    }
    if (has_temperature)
        put_double(&b, 3, temperature);
    if (has_top_p)
        put_double(&b, 4, top_p);
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int gw_pieces_vertex_encode(const char *model, const char *message, size_t mlen,
                            const char *rules, size_t rlen, uint8_t **out, size_t *out_len)
{
    wbuf_t b;
    size_t modlen = model ? strlen(model) : 0;
    size_t msgs = 2 + len_field_size(2, mlen);            /* unknown: 1, message */
    size_t args = len_field_size(2, msgs) + len_field_size(3, rlen);
    size_t cap = len_field_size(1, modlen) + len_field_size(2, args);

    if (!out || !out_len || (mlen && !message) || (rlen && !rules))
        return -EINVAL;
    if (wbuf_alloc(&b, cap) != 0)
        return -ENOMEM;
    put_bytes(&b, 1, model, modlen);
    put_tag(&b, 2, WT_LEN);
    put_varint(&b, args);
    put_tag(&b, 2, WT_LEN);
    put_varint(&b, msgs);
    put_tag(&b, 1, WT_VARINT);
    put_varint(&b, 1);
    put_bytes(&b, 2, message, mlen);
    put_bytes(&b, 3, rules, rlen);
    *out = b.p;
    *out_len = b.len;
    return 0;
}

/* ---- reply decoding ------------------------------------------------------------------------ */

/* A bump arena for protobuf-c's unpacker: the whole reply is one block (plus overflow blocks
 * when the guess is short); free is a no-op, the arena goes at once. */
typedef struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    max_align_t data[];
} arena_blk_t;

typedef struct {
    ProtobufCAllocator pa;
    arena_blk_t *head;
    void *msg;
    const ProtobufCMessageDescriptor *desc;
} arena_t;

static arena_blk_t *blk_new(size_t cap)
{
    arena_blk_t *b = malloc(sizeof(*b) + cap);
    if (b) {
        b->next = NULL;
        b->used = 0;
        b->cap = cap;
    }
    return b;
}

static void *on_arena_alloc(void *ad, size_t size)
{
    arena_t *a = ad;
    size_t need = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    arena_blk_t *b = a->head;

    if (!b || b->cap - b->used < need) {
        arena_blk_t *nb = blk_new(need > 4096 ? need : 4096);
        if (!nb)
            return NULL;
        nb->next = b;
        a->head = b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    return p;
}

static void on_arena_free(void *ad, void *p)
{
    (void)ad;
    (void)p;
}

static void arena_destroy(arena_t *a)
{
    arena_blk_t *b = a->head;
    while (b) {
        arena_blk_t *n = b->next;
        free(b);
        b = n;
    }
}

static arena_t *arena_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                             size_t len, int *rc)
{
    /* The unpacked strings never exceed the input; structs add a few hundred bytes. */
    arena_blk_t *first = blk_new(sizeof(arena_t) + len * 2 + 1024);
    arena_t *a;

    *rc = -ENOMEM;
    if (!first)
        return NULL;
    a = (arena_t *)first->data;
    first->used = (sizeof(arena_t) + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    a->head = first;
    a->pa.alloc = on_arena_alloc;
    a->pa.free = on_arena_free;
    a->pa.allocator_data = a;
    a->desc = desc;
    a->msg = protobuf_c_message_unpack(desc, &a->pa, len, buf);
    if (!a->msg) {
        *rc = -EBADMSG;
        arena_destroy(a);
        return NULL;
    }
    *rc = 0;
    return a;
}

/* ---- reply decoding in place ------------------------------------------------------------ */

/* The reply schemas as protobuf-c checks them: per message its known fields, each a varint
 * (int64/uint64), a string or a sub-message. protobuf-c unpacks every known sub-message, so a
 * bad one anywhere rejects the reply; unknown fields are skipped (kept aside, never read). A
 * field the decoder reads names its slot. */
enum { K_VARINT, K_STRING, K_MSG };
enum { S_NONE, S_CODE, S_ID, S_TIME, S_BODY, S_TEXT_MSG, S_TEXT, S_MAX };

typedef struct schema_s schema_t;
typedef struct {
    uint8_t num, kind, slot;
    const schema_t *sub;
} field_t;
struct schema_s {
    uint8_t n;
    field_t f[5];
};

typedef struct {
    unsigned present; /* bit per slot */
    uint64_t v[S_MAX];
    const uint8_t *p[S_MAX];
    size_t len[S_MAX];
} slots_t;

enum { WALK_OK = 0, WALK_FALLBACK = 1 };

static const schema_t gpt_unknown = {3, {{1, K_VARINT, 0, NULL}, {2, K_VARINT, 0, NULL},
                                         {3, K_VARINT, 0, NULL}}};
static const schema_t gpt_message = {2, {{1, K_VARINT, 0, NULL}, {2, K_STRING, S_TEXT, NULL}}};
static const schema_t gpt_warpper = {2, {{1, K_VARINT, 0, NULL},
                                         {2, K_MSG, S_TEXT_MSG, &gpt_message}}};
static const schema_t gpt_body = {5, {{1, K_STRING, S_ID, NULL}, {2, K_STRING, 0, NULL},
                                      {3, K_VARINT, S_TIME, NULL}, {4, K_MSG, 0, &gpt_warpper},
                                      {5, K_MSG, 0, &gpt_unknown}}};
static const schema_t gpt_response = {2, {{2, K_VARINT, S_CODE, NULL},
                                          {4, K_MSG, S_BODY, &gpt_body}}};
static const schema_t vx_messages = {2, {{1, K_VARINT, 0, NULL}, {2, K_STRING, S_TEXT, NULL}}};
static const schema_t vx_args2 = {1, {{2, K_MSG, S_TEXT_MSG, &vx_messages}}};
static const schema_t vx_args1 = {1, {{1, K_MSG, 0, &vx_args2}}};
static const schema_t vx_response = {2, {{2, K_VARINT, S_CODE, NULL},
                                         {4, K_MSG, S_BODY, &vx_args1}}};

static const field_t *schema_field(const schema_t *s, unsigned num)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->f[i].num == num)
            return &s->f[i];
    return NULL;
}

/* Length of the varint at p (at most 10 bytes, protobuf-c's limit), 0 when unterminated. */
static size_t varint_len(const uint8_t *p, size_t n)
{
    if (n > 0 && !(p[0] & 0x80))
        return 1; /* the usual case */
    size_t max = n < 10 ? n : 10;
    for (size_t i = 0; i < max; i++)
        if (!(p[i] & 0x80))
            return i + 1;
    return 0;
}

static uint64_t varint_value(const uint8_t *p, size_t len)
{
    if (len == 1)
        return p[0];
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    return v;
}

/* The size of one field's value at p (wire type wt), with *off the start of a length-delimited
 * payload; 0 for anything protobuf-c would reject (or that we leave to it). */
static size_t value_size(unsigned wt, const uint8_t *p, size_t n, size_t *off)
{
    size_t hl, len;
    *off = 0;
    switch (wt) {
    case 0: return varint_len(p, n);
    case 1: return n >= 8 ? 8 : 0;
    case 5: return n >= 4 ? 4 : 0;
    case 2:
        hl = varint_len(p, n < 5 ? n : 5);
        if (!hl)
            return 0;
        len = (size_t)varint_value(p, hl);
        if (len > 0x7fffffff || len > n - hl)
            return 0;
        *off = hl;
        return hl + len;
    default: return 0;
    }
}

/* One known field's value, checked against its kind and recorded in its slot. */
static int walk(const schema_t *s, const uint8_t *p, size_t n, slots_t *out);

static int take_field(const field_t *f, unsigned wt, const uint8_t *v, size_t size, size_t off,
                      slots_t *out)
{
    if (f->kind == K_VARINT ? wt != 0 : wt != 2)
        return WALK_FALLBACK; /* protobuf-c rejects a wire type that does not fit the field */
    if (f->kind == K_MSG && walk(f->sub, v + off, size - off, out) != WALK_OK)
        return WALK_FALLBACK;
    if (f->slot) {
        out->present |= 1u << f->slot;
        out->v[f->slot] = f->kind == K_VARINT ? varint_value(v, size) : 0;
        out->p[f->slot] = v + off;
        out->len[f->slot] = size - off;
    }
    return WALK_OK;
}

/* Walks one message: WALK_OK when protobuf-c would accept it and every slot is read, else
 * WALK_FALLBACK (only one-byte tags; a known field may come once: a second one is merged
 * by protobuf-c's rules, which are left to it). */
static int walk(const schema_t *s, const uint8_t *p, size_t n, slots_t *out)
{
    unsigned seen = 0;
    while (n > 0) {
        unsigned tag = p[0], num = tag >> 3, wt = tag & 7;
        size_t off, size;
        if ((tag & 0x80) || num == 0)
            return WALK_FALLBACK;
        p++, n--;
        if (!(size = value_size(wt, p, n, &off)))
            return WALK_FALLBACK;
        const field_t *f = schema_field(s, num);
        if (f) {
            if (seen & (1u << num))
                return WALK_FALLBACK;
            seen |= 1u << num;
            if (take_field(f, wt, p, size, off, out) != WALK_OK)
                return WALK_FALLBACK;
        }
        p += size, n -= size;
    }
    return WALK_OK;
}

/* A string as protobuf-c's C string would read: up to its first NUL. */
static size_t z_len(const uint8_t *p, size_t n)
{
    const uint8_t *z = memchr(p, 0, n);
    return z ? (size_t)(z - p) : n;
}

static size_t c_len(const slots_t *sl, int slot)
{
    return z_len(sl->p[slot], sl->len[slot]);
}

/* ---- the canonical GPT reply in one pass -------------------------------------------------- */

/* What protobuf encoders write (and what every streamed chunk is): each known field at most
 * once, in field-number order, no unknown field. Read front to back, one switch on the tag
 * byte per field, no schema lookup; anything else (a field out of order, repeated, unknown,
 * of another wire type, malformed) is left to the schema walk, which decides as protobuf-c
 * would. The accepted inputs are a subset of the walk's, with the same result
 * (spec/fuzz/pieces_reply.c compares both against protobuf-c). */
typedef struct {
    const uint8_t *p, *end;
    unsigned last; /* the previous field's tag: tags must grow (no repeat, field order) */
} rd_t;

enum { RD_BAD = -1, RD_END = 0, RD_FIELD = 1 };

/* The next field: RD_FIELD with its tag and value (a varint in *v, a payload in *pl, *plen),
 * RD_END at the end, RD_BAD for a tag that is not the next in order, a long tag, another wire
 * type or a malformed value. One-byte varints and lengths (nearly all) take the short way. */
static inline int rd_next(rd_t *r, unsigned *tag, uint64_t *v, const uint8_t **pl, size_t *plen)
{
    const uint8_t *p = r->p;
    size_t n = (size_t)(r->end - p), off, size;
    if (n == 0)
        return RD_END;
    unsigned t = p[0], wt = t & 7;
    if (n < 2 || (t & 0x80) || t <= r->last || (wt != WT_VARINT && wt != WT_LEN))
        return RD_BAD;
    r->last = *tag = t;
    if (!(p[1] & 0x80)) {
        if (wt == WT_VARINT) {
            *v = p[1];
            r->p = p + 2;
            return RD_FIELD;
        }
        if (p[1] > n - 2)
            return RD_BAD;
        *pl = p + 2, *plen = p[1];
        r->p = p + 2 + p[1];
        return RD_FIELD;
    }
    if (!(size = value_size(wt, p + 1, n - 1, &off)))
        return RD_BAD;
    if (wt == WT_VARINT)
        *v = varint_value(p + 1, size);
    else
        *pl = p + 1 + off, *plen = size - off;
    r->p = p + 1 + size;
    return RD_FIELD;
}

/* MessageWarpper {1: arg1, 2: message} and Message {1: role, 2: text} have one shape: a
 * varint 1 and a length-delimited 2. 0 (*has2 and its payload) or WALK_FALLBACK. */
static int rd_pair(const uint8_t *p, size_t n, int *has2, const uint8_t **pl, size_t *plen)
{
    rd_t r = {p, p + n, 0};
    unsigned tag = 0;
    uint64_t v = 0;
    int rc;
    *has2 = 0;
    *pl = NULL, *plen = 0;
    while ((rc = rd_next(&r, &tag, &v, pl, plen)) == RD_FIELD) {
        if (tag == 0x12)
            *has2 = 1;
        else if (tag != 0x08)
            return WALK_FALLBACK;
    }
    return rc == RD_END ? 0 : WALK_FALLBACK;
}

/* Body {1: id, 2: object, 3: time, 4: message_warpper} (5, the Unknown message, goes to the
 * walk): 0 with the id, time and text in *out, or WALK_FALLBACK. */
static int gpt_fast_body(const uint8_t *p, size_t n, gw_pieces_reply_t *out)
{
    rd_t r = {p, p + n, 0};
    unsigned tag = 0;
    uint64_t v = 0, time = 0;
    const uint8_t *pl = NULL, *id = NULL, *wp = NULL, *msg = NULL, *text = NULL;
    size_t pn = 0, id_len = 0, wp_len = 0, msg_len = 0, text_len = 0;
    int rc, has_wp = 0, has_msg = 0, has_text = 0;
    while ((rc = rd_next(&r, &tag, &v, &pl, &pn)) == RD_FIELD) {
        switch (tag) {
        case 0x0a: id = pl, id_len = pn; break;
        case 0x12: break;
        case 0x18: time = v; break;
        case 0x22: wp = pl, wp_len = pn, has_wp = 1; break;
        default: return WALK_FALLBACK;
        }
    }
    if (rc != RD_END || (has_wp && rd_pair(wp, wp_len, &has_msg, &msg, &msg_len) != 0))
        return WALK_FALLBACK;
    if (has_wp && has_msg) {
        if (rd_pair(msg, msg_len, &has_text, &text, &text_len) != 0)
            return WALK_FALLBACK;
        out->has_text = 1; /* the Message is there: its text is "" when absent */
        out->text = has_text ? (const char *)text : "";
        out->text_len = has_text ? z_len(text, text_len) : 0;
    }
    out->time = time;
    if (id && (out->id_len = z_len(id, id_len)) > 0)
        out->id = (const char *)id;
    return 0;
}

/* Response {2: code, 4: body}: 0 with *out filled, or WALK_FALLBACK (then out is partly
 * written: the caller clears it). */
static int gpt_fast(const uint8_t *buf, size_t len, gw_pieces_reply_t *out)
{
    rd_t r = {buf, buf + len, 0};
    unsigned tag = 0;
    uint64_t v = 0, code = 0;
    const uint8_t *pl = NULL, *body = NULL;
    size_t pn = 0, body_len = 0;
    int rc;
    while ((rc = rd_next(&r, &tag, &v, &pl, &pn)) == RD_FIELD) {
        if (tag == 0x10)
            code = v;
        else if (tag == 0x22)
            body = pl, body_len = pn;
        else
            return WALK_FALLBACK;
    }
    if (rc != RD_END || (body && gpt_fast_body(body, body_len, out) != 0))
        return WALK_FALLBACK;
    out->code = (int64_t)code;
    return 0;
}

/* The reply from a walked message; 0, or WALK_FALLBACK when the walk gave up. */
static int decode_in_place(const schema_t *s, int gpt, const uint8_t *buf, size_t len,
                           gw_pieces_reply_t *out)
{
    slots_t sl;
    sl.present = 0;
    if (walk(s, buf, len, &sl) != WALK_OK)
        return WALK_FALLBACK;
#define HAS(x) (sl.present & (1u << (x)))
    out->code = HAS(S_CODE) ? (int64_t)sl.v[S_CODE] : 0;
    if (HAS(S_TEXT_MSG)) { /* the Message is there: its text is "" when absent */
        out->has_text = 1;
        out->text = HAS(S_TEXT) ? (const char *)sl.p[S_TEXT] : "";
        out->text_len = HAS(S_TEXT) ? c_len(&sl, S_TEXT) : 0;
    }
    if (gpt && HAS(S_BODY)) {
        out->time = HAS(S_TIME) ? sl.v[S_TIME] : 0;
        if (HAS(S_ID) && (out->id_len = c_len(&sl, S_ID)) > 0)
            out->id = (const char *)sl.p[S_ID];
    }
#undef HAS
    return 0;
}

static void set_text(gw_pieces_reply_t *out, const char *s)
{
    if (!s)
        return;
    out->has_text = 1;
    out->text = s;
    out->text_len = strlen(s);
}

int gw_pieces_gpt_decode(const uint8_t *buf, size_t len, gw_pieces_reply_t *out)
{
    int rc;
    arena_t *a;
    Runtime__Aot__MachineLearning__Parents__Gpt__Response *r;

    memset(out, 0, sizeof(*out));
    if (!buf && len)
        return -EINVAL;
    if (len && gpt_fast(buf, len, out) == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    if (decode_in_place(&gpt_response, 1, buf, len, out) == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    a = arena_unpack(&runtime__aot__machine_learning__parents__gpt__response__descriptor, buf,
                     len, &rc);
    if (!a)
        return rc;
    r = a->msg;
    out->priv = a;
    out->code = (int64_t)r->response_code;
    if (r->body) {
        if (r->body->id && r->body->id[0]) {
            out->id = r->body->id;
            out->id_len = strlen(r->body->id);
        }
        out->time = r->body->time;
        if (r->body->message_warpper && r->body->message_warpper->message)
            set_text(out, r->body->message_warpper->message->message);
    }
    return 0;
}

int gw_pieces_vertex_decode(const uint8_t *buf, size_t len, gw_pieces_reply_t *out)
{
    int rc;
    arena_t *a;
    Runtime__Aot__MachineLearning__Parents__Vertex__Response *r;

    memset(out, 0, sizeof(*out));
    if (!buf && len)
        return -EINVAL;
    if (decode_in_place(&vx_response, 0, buf, len, out) == 0)
        return 0;
    memset(out, 0, sizeof(*out));
    a = arena_unpack(&runtime__aot__machine_learning__parents__vertex__response__descriptor,
                     buf, len, &rc);
    if (!a)
        return rc;
    r = a->msg;
    out->priv = a;
    out->code = r->response_code;
    if (r->args && r->args->args && r->args->args->args)
        set_text(out, r->args->args->args->message);
    return 0;
}

void gw_pieces_reply_free(gw_pieces_reply_t *r)
{
    if (r && r->priv)
        arena_destroy(r->priv);
    if (r)
        memset(r, 0, sizeof(*r));
}
