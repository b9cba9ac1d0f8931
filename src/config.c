/*
 * pieces-gateway: configuration helpers that need no Lua.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 *
 * Provides: gw_config_dispose. Uses: libc. (gateway.lua itself is evaluated by lua/gw/config.lua.)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "gw.h"

void gw_config_dispose(gw_config_t *c)
{
    free(c->config_path);
    free(c->listen_host);
    free(c->api_prefix);
    free(c->policies_dir);
    free(c->assets_dir);
    free(c->log_file);
    gw_cidr_list_free(&c->trusted_proxies);
    free(c->store.host);
    free(c->store.user);
    if (c->store.password) /* a secret: do not leave it in freed memory */
        memset(c->store.password, 0, strlen(c->store.password));
    free(c->store.password);
    gw_cidr_list_free(&c->metrics.allow);
    free(c->upstream.gpt);
    free(c->upstream.vertex);
    free(c->upstream.ca_file);
    for (size_t i = 0; i < c->n_backends; i++) {
        gw_backend_conf_t *b = &c->backends[i];
        free(b->name);
        free(b->base_url);
        if (b->api_key)
            memset(b->api_key, 0, strlen(b->api_key));
        free(b->api_key);
        free(b->ca_file);
        for (size_t h = 0; h < b->n_headers; h++) {
            free(b->header_names[h]);
            free(b->header_values[h]);
        }
        free(b->header_names);
        free(b->header_values);
    }
    free(c->backends);
    memset(c, 0, sizeof(*c));
}
