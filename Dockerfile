# pieces-gateway: the container image (Debian 12). Every build step is a script that
# `make test` runs (spec/install/install_test.sh, which also reads this file's ENV, CMD,
# HEALTHCHECK and chown/chmod lines, so the test and the image cannot drift apart).
# Copyright (C) 2026 pieces-gateway authors
# This program is free software: you can redistribute it and/or modify it under the terms of
# the GNU General Public License as published by the Free Software Foundation, either version 3
# of the License, or (at your option) any later version. See LICENSE.
#
#   docker build -t pieces-gateway .
#   docker run -p 8787:8787 -v "$PWD/policies:/app/policies:ro" -v gw-data:/app/data pieces-gateway

# ---- build stage: the same install script as the README, then the release build ----
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh build
COPY . .
RUN scripts/build.sh /src/build
RUN scripts/install-gateway.sh /src/build /out

# ---- runtime stage: shared libraries, curl for the health check, a non-root user ----
FROM debian:12-slim
LABEL org.opencontainers.image.title="pieces-gateway" \
      org.opencontainers.image.description="OpenAI-compatible API gateway for Pieces OS (C + LuaJIT)" \
      org.opencontainers.image.licenses="GPL-3.0-or-later"
COPY scripts/install-deps.sh /tmp/scripts/install-deps.sh
RUN /tmp/scripts/install-deps.sh runtime && rm -rf /var/lib/apt/lists/* /tmp/scripts
RUN useradd -u 1001 -g 0 -M -d /app -s /usr/sbin/nologin pieces
COPY --from=build /out /app
RUN chown 1001:0 /app/data /app/logs && chmod 0775 /app/data /app/logs

ENV TZ=Asia/Shanghai
ENV PORT=8787
ENV API_PREFIX=/v1
ENV POLICIES_DIR=/app/policies
ENV ASSETS_DIR=/app/assets
ENV BLACKLIST_FILE=/app/data/blacklist.txt
ENV LOG_FILE=/app/logs/pieces-gateway.log
ENV MIN_POOL_SIZE=5
ENV MAX_POOL_SIZE=20
ENV SCALE_INTERVAL=30

USER 1001
WORKDIR /app
EXPOSE 8787
VOLUME ["/app/data", "/app/logs"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:${PORT:-8787}/ping || exit 1
CMD ["/app/pieces-gateway", "-c", "/app/gateway.lua"]
