/*
 * pieces-gateway: version strings, set at build time.
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include "gw.h"
const char *gw_version = GW_VERSION;
const char *gw_build_time = GW_BUILD_TIME;
