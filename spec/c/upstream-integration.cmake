# pieces-gateway: the upstream integration driver, run against the grpc-js mock through
# spec/c/run-with-mock.sh (plain and ASan+UBSan variants, like gw_c_test).
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
set(variants plain)
if(GW_SANITIZERS)
    list(APPEND variants _asan)
endif()
foreach(v ${variants})
    if(v STREQUAL "plain")
        set(v "")
    endif()
    set(t test_grpc_integration${v})
    add_executable(${t} ${PROJECT_SOURCE_DIR}/spec/c/test_grpc_integration.c)
    target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/spec/c)
    target_link_libraries(${t} PRIVATE gw_upstream${v})
    if(v STREQUAL "_asan")
        target_compile_options(${t} PRIVATE ${GW_SAN_FLAGS} -O1)
        target_link_options(${t} PRIVATE ${GW_SAN_FLAGS})
    endif()
    add_test(NAME ${t} COMMAND sh ${PROJECT_SOURCE_DIR}/spec/c/run-with-mock.sh $<TARGET_FILE:${t}>
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set(labels integration upstream)
    if(v STREQUAL "_asan")
        list(APPEND labels asan)
        set_tests_properties(${t} PROPERTIES ENVIRONMENT
            "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
    endif()
    set_tests_properties(${t} PROPERTIES LABELS "${labels}" TIMEOUT 300)
endforeach()

# The mock itself, checked with a stock grpc-js client and raw node:http2.
find_program(NODE_BIN NAMES node nodejs)
if(NODE_BIN)
    add_test(NAME upstream_mock_selftest
        COMMAND sh -c "scripts/npm-ci.sh spec/e2e && ${NODE_BIN} --test spec/e2e/mock/"
        WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(upstream_mock_selftest PROPERTIES LABELS "integration;upstream" TIMEOUT 120)
endif()
