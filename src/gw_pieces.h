/*
 * pieces-gateway: the Pieces OS message codec (GPT and Vertex inference services).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Encodes the upstream requests and decodes the replies of seed-behavior.md §7. The request
 * text (the flattened dialog, built by the caller per §8.1/§8.2) is taken as pointer+length
 * and may hold any bytes, NUL included. Pure functions, no global state, thread-safe.
 */
#ifndef GW_PIECES_H
#define GW_PIECES_H

#include <stddef.h>
#include <stdint.h>

#define GW_PIECES_GPT_SERVICE "/runtime.aot.machine_learning.parents.gpt.GPTInferenceService"
#define GW_PIECES_VERTEX_SERVICE                                                               \
    "/runtime.aot.machine_learning.parents.vertex.VertexInferenceService"
#define GW_PIECES_GPT_PREDICT GW_PIECES_GPT_SERVICE "/Predict"
#define GW_PIECES_GPT_STREAM GW_PIECES_GPT_SERVICE "/PredictWithStream"
#define GW_PIECES_VERTEX_PREDICT GW_PIECES_VERTEX_SERVICE "/Predict"
#define GW_PIECES_VERTEX_STREAM GW_PIECES_VERTEX_SERVICE "/PredictWithStream"

/* The two services (a chat target's variant). */
enum { GW_PIECES_GPT = 0, GW_PIECES_VERTEX = 1 };

#define GW_PIECES_CODE_DATA 200 /* response_code of a data frame */
#define GW_PIECES_CODE_END 204  /* response_code of the final frame */

/* One GPT message: role 0 = system block, 1 = dialog block; text borrowed. */
typedef struct {
    int role;
    const char *text;
    size_t len;
} gw_pieces_msg_t;

/* Serializes a gpt.Request{models, messages, temperature, top_p} (proto3: zero values and
 * absent parameters are not written). *out is malloc'ed, caller frees. 0 or -ENOMEM/-EINVAL. */
int gw_pieces_gpt_encode(const char *model, const gw_pieces_msg_t *msgs, size_t n,
                         int has_temperature, double temperature, int has_top_p, double top_p,
                         uint8_t **out, size_t *out_len);

/* Serializes a vertex.Requests{models, args{messages{unknown: 1, message}, rules}}.
 * *out is malloc'ed, caller frees. 0 or -ENOMEM/-EINVAL. */
int gw_pieces_vertex_encode(const char *model, const char *message, size_t mlen,
                            const char *rules, size_t rlen, uint8_t **out, size_t *out_len);

/* A decoded reply. has_text is 0 when a node on the text path is missing (seed: "invalid
 * response structure"); text is then NULL. text/id are NOT NUL-terminated: they point into
 * buf (the usual case: no allocation) or into priv, and stay valid while both buf and the
 * reply live. id is NULL for Vertex or when absent or empty, time 0 likewise. text_len and
 * id_len stop at the first NUL byte, as protobuf-c's C strings do. Free with
 * gw_pieces_reply_free (also safe on a zeroed struct). */
typedef struct {
    int64_t code;
    const char *text;
    size_t text_len;
    int has_text;
    const char *id;
    size_t id_len;
    uint64_t time;
    void *priv;
} gw_pieces_reply_t;

/* Decode one reply message (without the gRPC prefix): accepts and rejects exactly what
 * protobuf-c's unpacker does, with the same field values. Returns 0, -EBADMSG for malformed
 * protobuf, -ENOMEM. On error *out is zeroed and nothing needs freeing. */
int gw_pieces_gpt_decode(const uint8_t *buf, size_t len, gw_pieces_reply_t *out);    /* text at body(4).message_warpper(4).message(2).message(2) */
int gw_pieces_vertex_decode(const uint8_t *buf, size_t len, gw_pieces_reply_t *out); /* text at args(4).args(1).args(2).message(2) */
void gw_pieces_reply_free(gw_pieces_reply_t *r);

#endif
