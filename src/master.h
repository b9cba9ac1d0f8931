/*
 * pieces-gateway: the program behind main().
 * Copyright (C) 2026 pieces-gateway authors
 *
 * This program is free software: you can redistribute it and/or modify it under the terms of
 * the GNU General Public License as published by the Free Software Foundation, either version 3
 * of the License, or (at your option) any later version. See LICENSE.
 */
#ifndef GW_MASTER_H
#define GW_MASTER_H

/* Parse arguments, start workers, run until SIGTERM/SIGINT. Returns the exit status. */
int gw_master_main(int argc, char **argv);

#endif
