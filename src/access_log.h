/*
 * pieces-gateway: access log lines.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Text (default, the seed's line):
 *   <date> <time> POST /v1/chat/completions model=gpt-4o IP=1.2.3.4 Status=200 Duration=12ms
 * JSON (ACCESS_LOG_FORMAT=json), one object per line, no prefix, every key always present:
 *   {"time":"<RFC 3339 UTC, ms>","client_ip":..,"method":..,"uri":..,"route":..,"status":N,
 *    "duration_ms":F,"model":..,"backend":..,"stream":B,"prompt_tokens":N,
 *    "completion_tokens":N,"usage_source":"tokenizer"|"upstream","ttft_ms":F,"attempts":N}
 * (null where a value does not apply: no model, not an LLM request, no usage, no token sent).
 * Thread-safe (one write per line).
 */
#ifndef GW_ACCESS_LOG_H
#define GW_ACCESS_LOG_H

#include "http.h"

/* Logs req (complete: status and stats final) unless access logging is off. */
void gw_access_log(const gw_req_t *req, int json);

#endif
