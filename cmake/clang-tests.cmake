# pieces-gateway: the clang twins of the sanitizer tests (clang's UBSan finds what gcc's misses,
# e.g. "applying zero offset to null pointer").
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# Every build gets the target gw_sanitized_tests: the ASan+UBSan C tests (NAME_asan) and the
# fuzz replays (NAME_replay), nothing else. With GW_CLANG_TESTS on (AUTO: a gcc build with
# sanitizers and tests, i.e. `make test`), this build also configures a nested build of the
# same sources with clang in <build>/clang and builds only that target there, as part of this
# build's "all"; cmake/gw.cmake has already registered each twin as NAME_clang with this
# build's ctest, so one ctest run (one summary) covers both compilers. The e2e suites and the
# binaries are not built twice.

add_custom_target(gw_sanitized_tests)
get_property(GW_SAN_TARGETS GLOBAL PROPERTY GW_SANITIZED_TARGETS)
if(GW_SAN_TARGETS)
    add_dependencies(gw_sanitized_tests ${GW_SAN_TARGETS})
endif()

if(GW_CLANG_TESTS)
    include(ExternalProject)
    # With make, $(MAKE) shares this build's job slots instead of starting -j N more jobs.
    if(CMAKE_GENERATOR MATCHES "Make")
        set(clang_build_cmd $(MAKE) gw_sanitized_tests)
    else()
        set(clang_build_cmd ${CMAKE_COMMAND} --build <BINARY_DIR> --target gw_sanitized_tests)
    endif()
    ExternalProject_Add(gw_clang_twins
        SOURCE_DIR ${PROJECT_SOURCE_DIR}
        BINARY_DIR ${GW_CLANG_DIR}
        PREFIX ${CMAKE_BINARY_DIR}/clang-ep
        CMAKE_ARGS
            -DCMAKE_C_COMPILER=${GW_CLANG}
            -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
            -DCMAKE_RUNTIME_OUTPUT_DIRECTORY=${GW_CLANG_BIN}
            -DGW_SANITIZERS=ON -DGW_TESTS=ON -DGW_FUZZ=OFF -DGW_CLANG_TESTS=OFF
            -DGW_LUA_FROM_DISK=${GW_LUA_FROM_DISK}
        BUILD_COMMAND ${clang_build_cmd}
        BUILD_ALWAYS ON
        CONFIGURE_HANDLED_BY_BUILD ON
        INSTALL_COMMAND ""
        TEST_COMMAND "")
endif()
