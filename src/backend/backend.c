/*
 * pieces-gateway: the set of a worker's backends (created from the configuration).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_backends_open/close/find. Uses: the implementations' constructors.
 * Adding a backend type: a folder under src/backend/, a GW_BACKEND_* value in config.h, a line
 * in the table below and the type name in lua/gw/config.lua.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "gw.h"

typedef int (*ctor_t)(uv_loop_t *, const gw_config_t *, const gw_backend_conf_t *, gw_backend_t **,
                      char **);

static const struct {
    int type;
    ctor_t make;
} types[] = {
    {GW_BACKEND_PIECES, gw_backend_pieces_new},
    {GW_BACKEND_OPENAI, gw_backend_openai_new},
};

static ctor_t ctor_of(int type)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(types); i++)
        if (types[i].type == type)
            return types[i].make;
    return NULL;
}

int gw_backends_open(uv_loop_t *loop, const gw_config_t *cfg, gw_backends_t *out, char **err)
{
    out->list = gw_calloc(cfg->n_backends + 1, sizeof(*out->list));
    out->n = 0;
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const gw_backend_conf_t *bc = &cfg->backends[i];
        ctor_t make = ctor_of(bc->type);
        if (!make) {
            *err = gw_sprintf("backend %s: unknown type %d", bc->name, bc->type);
            gw_backends_close(out);
            return -EINVAL;
        }
        if (make(loop, cfg, bc, &out->list[out->n], err) != 0) {
            gw_backends_close(out);
            return -EINVAL;
        }
        out->n++;
    }
    return 0;
}

void gw_backends_close(gw_backends_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        set->list[i]->vt->close(set->list[i]);
    free(set->list);
    set->list = NULL;
    set->n = 0;
}

gw_backend_t *gw_backends_find(const gw_backends_t *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->list[i]->name, name) == 0)
            return set->list[i];
    return NULL;
}
