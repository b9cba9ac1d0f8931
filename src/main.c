/*
 * pieces-gateway: process entry point (everything else lives in the core library).
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#include "master.h"

int main(int argc, char **argv) { return gw_master_main(argc, argv); }
