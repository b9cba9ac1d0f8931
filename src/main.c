/*
 * pieces-gateway: process entry point (placeholder while the core lands).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include <stdio.h>
extern const char *gw_version;
int main(void) { printf("pieces-gateway %s\n", gw_version); return 0; }
