# pieces-gateway: the upstream integration driver, run against the grpc-js mock through
# spec/c/run-with-mock.sh (plain and ASan+UBSan variants, like gw_c_test).
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
gw_c_test(test_grpc_integration SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_grpc_integration.c
    LIBS gw_upstream WRAPPER sh ${PROJECT_SOURCE_DIR}/spec/c/run-with-mock.sh
    LABELS integration upstream TIMEOUT 300)

# The mock itself, checked with a stock grpc-js client and raw node:http2.
find_program(NODE_BIN NAMES node nodejs)
if(NODE_BIN)
    add_test(NAME upstream_mock_selftest
        COMMAND ${NODE_BIN} --test spec/e2e/mock/
        WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(upstream_mock_selftest PROPERTIES LABELS "integration;upstream" TIMEOUT 120)
endif()
