/*
 * pieces-gateway: the tokenizer tests' shared start-up (the vocabularies of assets/).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_TEST_TOK_H
#define GW_TEST_TOK_H

#include <stdio.h>
#include <stdlib.h>

#include "gw_tok.h"

/* Loads every vocabulary under assets/ (the tests run from the source root): 0, or 1 after
 * printing why (a test main returns it). */
static inline int gw_test_load_vocab(void)
{
    char *err = NULL;
    if (gw_tok_load_all("assets", &err) == 0)
        return 0;
    fprintf(stderr, "load: %s\n", err ? err : "?");
    free(err);
    return 1;
}

#endif
