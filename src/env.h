/*
 * pieces-gateway: environment variables, the .env file and value parsing.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * The seed's rules: a .env file in the working directory is read first and the real environment
 * wins; an empty value counts as unset; strings are trimmed; integers are parsed from the raw
 * value (no trimming); booleans accept 1 t T TRUE true True 0 f F FALSE false False.
 * gw_env_load_dotenv must run before any thread starts (it calls setenv); the getters are
 * thread-safe afterwards as long as nobody calls setenv.
 */
#ifndef GW_ENV_H
#define GW_ENV_H

#include <stddef.h>

#include "buf.h"

/* Read KEY=VALUE lines ("export " prefix, # comments, '..' and ".." quoting with \n \t \" \\
 * escapes in double quotes). Variables already set to a non-empty value are kept.
 * Returns the number of variables read, GW_ENOENT if the file does not exist, GW_ERROR with
 * *err naming file:line on a malformed line (the other lines are still applied). */
int gw_env_load_dotenv(const char *path, char **err);

/* One line of a .env file (its newline may be included): 1 for a KEY=VALUE line, with *key and
 * *klen the key (borrowed from line) and the value appended to val (the caller's buffer; on
 * GW_EINVAL it may hold a partial value); 0 for a blank or comment line; GW_EINVAL when the line
 * is malformed (no '=', an empty key or one outside [A-Za-z0-9_.], an unterminated quote).
 * Sets nothing in the environment. */
int gw_env_parse_line(const char *line, size_t n, const char **key, size_t *klen, gw_buf_t *val);

/* The raw value, or NULL when unset or empty. Borrowed from the environment. */
const char *gw_env_raw(const char *name);

/* Parsers: 0 on success, GW_EINVAL when the text is not a valid value. */
int gw_parse_int(const char *s, long long *out);   /* [+-]digits, nothing else */
int gw_parse_num(const char *s, double *out);      /* a finite decimal number */
int gw_parse_bool(const char *s, int *out);        /* Go's strconv.ParseBool set */
/* Trim ASCII whitespace: returns a pointer into s and the trimmed length. */
const char *gw_trim(const char *s, size_t len, size_t *out_len);

#endif
