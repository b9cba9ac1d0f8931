/*
 * pieces-gateway: the text rule for every string the gateway forwards upstream.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Protobuf `string` fields must hold valid UTF-8, and a JSON request body is decoded into them.
 * Pure function; thread-safe.
 */
#ifndef GW_JSONTEXT_H
#define GW_JSONTEXT_H

#include <stddef.h>

/* Checks the raw text of a JSON document, without parsing its structure (the JSON decoder
 * checks the syntax): every byte sequence must be well-formed UTF-8 (no overlong form, no
 * surrogate U+D800..U+DFFF, nothing above U+10FFFF, no stray continuation byte, no sequence cut
 * short), and every \uXXXX escape of a UTF-16 surrogate must be a high one followed at once by
 * an escaped low one (an escaped backslash, "\\ud800", is plain text). Returns 0 when the text
 * is clean; GW_EINVAL with *at (if at is not NULL) the offset of the first offending byte: the
 * first byte of an ill-formed sequence, or the backslash of a lone surrogate escape. */
int gw_json_text_check(const char *text, size_t n, size_t *at);

#endif
