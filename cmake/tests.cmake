# pieces-gateway: the core's tests (components register theirs in cmake/component-*.cmake).
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.

gw_c_test(test_core SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_core.c LIBS gw_core LABELS core)
gw_c_test(test_http SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_http.c LIBS gw_core LABELS core)
gw_c_test(test_metrics SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_metrics.c LIBS gw_core LABELS core)
gw_c_test(test_stop SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_stop.c LIBS gw_core LABELS core)
gw_c_test(test_jsontext SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_jsontext.c LIBS gw_core
          LABELS core)
gw_c_test(test_lua_json SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_lua_json.c LIBS gw_core
          LABELS core)
# getrandom(2) and open(2) fail on demand through the linker (see the test's header).
gw_c_test(test_random SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_random.c LIBS gw_core LABELS core)
foreach(t test_random test_random_asan)
    if(TARGET ${t})
        target_link_options(${t} PRIVATE -Wl,--wrap=getrandom -Wl,--wrap=open)
    endif()
endforeach()

find_program(BUSTED busted)
find_program(LUACHECK luacheck)
find_program(NODE node)

if(BUSTED)
    add_test(NAME busted COMMAND ${BUSTED} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(busted PROPERTIES LABELS lua)
    # the operator command of the README: specs of policies outside the repository
    add_test(NAME policy_test COMMAND bash ${PROJECT_SOURCE_DIR}/spec/operator/policy_test.sh)
    set_tests_properties(policy_test PROPERTIES LABELS lua TIMEOUT 120)
endif()
if(LUACHECK)
    add_test(NAME luacheck COMMAND ${LUACHECK} --quiet lua policies spec gateway.lua
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(luacheck PROPERTIES LABELS lua)
endif()

# End-to-end: one ctest entry per spec/e2e/*.test.js file, against the built binary.
if(NODE)
    file(GLOB GW_E2E_TESTS ${PROJECT_SOURCE_DIR}/spec/e2e/*.test.js)
    list(SORT GW_E2E_TESTS)
    foreach(t ${GW_E2E_TESTS})
        get_filename_component(n ${t} NAME_WE)
        add_test(NAME e2e_${n} COMMAND ${NODE} --test --test-reporter=spec ${t}
                 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
        set_tests_properties(e2e_${n} PROPERTIES LABELS e2e TIMEOUT 300 ENVIRONMENT
            "GW_BIN=$<TARGET_FILE:pieces-gateway>;GW_BIN_ASAN=$<$<TARGET_EXISTS:pieces-gateway-asan>:$<TARGET_FILE:pieces-gateway-asan>>;GW_ROOT=${PROJECT_SOURCE_DIR}")
    endforeach()
    # The same suites against the ASan+UBSan build of the binary (leaks and UB fail the test).
    if(TARGET pieces-gateway-asan)
        foreach(n core chat upstream_faults metrics ingress)
            add_test(NAME e2e_${n}_asan
                     COMMAND ${NODE} --test --test-reporter=spec ${PROJECT_SOURCE_DIR}/spec/e2e/${n}.test.js
                     WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
            set_tests_properties(e2e_${n}_asan PROPERTIES LABELS "e2e;asan" TIMEOUT 400 ENVIRONMENT
                "GW_BIN=$<TARGET_FILE:pieces-gateway-asan>;GW_ROOT=${PROJECT_SOURCE_DIR};ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=4:halt_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
        endforeach()
    endif()
endif()
gw_c_test(test_oai SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_oai.c LIBS gw_core LABELS backend)
gw_c_test(test_openai_integration SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_openai_integration.c
    LIBS gw_core WRAPPER sh ${PROJECT_SOURCE_DIR}/spec/c/run-with-openai-mock.sh
    LABELS integration backend TIMEOUT 120)
