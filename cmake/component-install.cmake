# pieces-gateway: the install test (the Docker image's build steps, minus Docker).
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# spec/install/install_test.sh lints the Dockerfile, .dockerignore and docker-compose.yml, runs
# scripts/install-deps.sh runtime, configures the release build with scripts/build.sh, installs
# the built binary with scripts/install-gateway.sh into a temp prefix and runs it there with the
# Dockerfile's ENV and CMD (hot reload of an edited policy included).

if(GW_TESTS)
    add_test(NAME install_layout
        COMMAND ${PROJECT_SOURCE_DIR}/spec/install/install_test.sh $<TARGET_FILE:pieces-gateway>
        WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(install_layout PROPERTIES LABELS install TIMEOUT 120)
endif()
