# pieces-gateway: CMake helpers.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# gw_library(NAME SOURCES ... [LIBS ...] [INCLUDES ...])
#   Builds the static library NAME and, when GW_SANITIZERS is ON, NAME_asan compiled with
#   AddressSanitizer + UndefinedBehaviorSanitizer (linked to the _asan variants of LIBS that
#   are our own libraries).
# gw_c_test(NAME SOURCES ... [LIBS ...] [ARGS ...] [LABELS ...] [WRAPPER cmd...] [TIMEOUT s])
#   Builds a C test executable and registers it with ctest (run through WRAPPER when given,
#   e.g. a script that starts a mock server first), plus NAME_asan when GW_SANITIZERS is ON.
#   Tests get the label "unit" unless a WRAPPER is given. The sanitizer variant also gets a
#   clang-built twin NAME_clang when GW_CLANG_TESTS is on (see cmake/clang-tests.cmake).
# Fuzz mode (-DGW_FUZZ=ON, clang, its own build dir; `make fuzz` configures build-fuzz): the
#   whole build is one variant, every library instrumented for libFuzzer + ASan + UBSan, no
#   tests; cmake/fuzz.cmake then builds the drivers.

set(GW_SAN_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
set(GW_SAN_ENV "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
set(GW_OWN_LIBS "" CACHE INTERNAL "")
set_property(GLOBAL PROPERTY GW_SANITIZED_TARGETS "")

if(GW_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "GW_FUZZ=ON needs clang (libFuzzer): configure a separate build "
            "directory with -DCMAKE_C_COMPILER=clang, as `make fuzz` does")
    endif()
    set(GW_SANITIZERS OFF)
    set(GW_TESTS OFF)
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=address,undefined)
endif()

# The clang twins of the sanitizer tests: AUTO = on when the main build is gcc with sanitizers
# and tests (what `make test` configures); they are built by a nested clang build in
# <build>/clang and run by this build's ctest.
set(GW_CLANG_TESTS AUTO CACHE STRING "Also build the sanitizer tests with clang (AUTO, ON, OFF)")
set(GW_CLANG_DIR ${CMAKE_BINARY_DIR}/clang)
set(GW_CLANG_BIN ${GW_CLANG_DIR}/bin)
if(GW_CLANG_TESTS STREQUAL "AUTO")
    if(GW_SANITIZERS AND GW_TESTS AND NOT GW_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "GNU")
        set(GW_CLANG_TESTS ON)
    else()
        set(GW_CLANG_TESTS OFF)
    endif()
endif()
if(GW_FUZZ)
    set(GW_CLANG_TESTS OFF)
endif()
if(GW_CLANG_TESTS)
    find_program(GW_CLANG NAMES clang-14 clang)
    set(probe ${CMAKE_BINARY_DIR}/CMakeFiles/gw_clang_probe)
    file(WRITE ${probe}.c "int main(void) { return 0; }\n")
    if(GW_CLANG)
        execute_process(COMMAND ${GW_CLANG} ${GW_SAN_FLAGS} ${probe}.c -o ${probe}
            RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
    endif()
    if(NOT GW_CLANG OR NOT probe_rc EQUAL 0)
        message(FATAL_ERROR "GW_CLANG_TESTS: no clang that links -fsanitize=address,undefined "
            "(install clang-14 and libclang-rt-14-dev: scripts/install-deps.sh test), or "
            "configure with -DGW_CLANG_TESTS=OFF")
    endif()
endif()

# Registers test NAME running TARGET under the sanitizers (ENVIRONMENT halts on any report),
# plus its clang twin NAME_clang when GW_CLANG_TESTS is on, and lists TARGET among the ones the
# nested clang build builds (gw_sanitized_tests).
function(_gw_san_test name target)
    cmake_parse_arguments(A "" "TIMEOUT" "ARGS;LABELS;WRAPPER" ${ARGN})
    set_property(GLOBAL APPEND PROPERTY GW_SANITIZED_TARGETS ${target})
    set(tests ${name})
    add_test(NAME ${name} COMMAND ${A_WRAPPER} $<TARGET_FILE:${target}> ${A_ARGS}
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    if(GW_CLANG_TESTS)
        string(REGEX REPLACE "_asan$" "" twin ${name})
        add_test(NAME ${twin}_clang COMMAND ${A_WRAPPER} ${GW_CLANG_BIN}/${target} ${A_ARGS}
                 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
        set_tests_properties(${twin}_clang PROPERTIES LABELS "${A_LABELS};clang")
        list(APPEND tests ${twin}_clang)
    endif()
    set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}")
    set_tests_properties(${tests} PROPERTIES ENVIRONMENT "${GW_SAN_ENV}")
    if(A_TIMEOUT)
        set_tests_properties(${tests} PROPERTIES TIMEOUT ${A_TIMEOUT})
    endif()
endfunction()

function(_gw_map_libs out suffix)
    set(res "")
    foreach(l ${ARGN})
        list(FIND GW_OWN_LIBS ${l} idx)
        if(idx GREATER -1)
            list(APPEND res ${l}${suffix})
        else()
            list(APPEND res ${l})
        endif()
    endforeach()
    set(${out} ${res} PARENT_SCOPE)
endfunction()

function(gw_library name)
    cmake_parse_arguments(A "" "" "SOURCES;LIBS;INCLUDES;DEFINES" ${ARGN})
    set(GW_OWN_LIBS ${GW_OWN_LIBS} ${name} CACHE INTERNAL "")
    set(variants plain)
    if(GW_SANITIZERS)
        list(APPEND variants _asan)
    endif()
    foreach(v ${variants})
        if(v STREQUAL "plain")
            set(v "")
        endif()
        add_library(${name}${v} STATIC ${A_SOURCES})
        target_include_directories(${name}${v} PUBLIC ${A_INCLUDES})
        target_compile_definitions(${name}${v} PUBLIC ${A_DEFINES})
        _gw_map_libs(libs "${v}" ${A_LIBS})
        target_link_libraries(${name}${v} PUBLIC ${libs})
        if(v STREQUAL "_asan")
            target_compile_options(${name}${v} PRIVATE ${GW_SAN_FLAGS} -O1)
            target_link_options(${name}${v} INTERFACE ${GW_SAN_FLAGS})
        endif()
    endforeach()
endfunction()

function(gw_c_test name)
    cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;LIBS;ARGS;LABELS;WRAPPER" ${ARGN})
    set(variants plain)
    if(GW_SANITIZERS)
        list(APPEND variants _asan)
    endif()
    foreach(v ${variants})
        if(v STREQUAL "plain")
            set(v "")
        endif()
        add_executable(${name}${v} ${A_SOURCES})
        target_include_directories(${name}${v} PRIVATE ${PROJECT_SOURCE_DIR}/spec/c)
        _gw_map_libs(libs "${v}" ${A_LIBS})
        target_link_libraries(${name}${v} PRIVATE ${libs})
        if(v STREQUAL "_asan")
            target_compile_options(${name}${v} PRIVATE ${GW_SAN_FLAGS} -O1)
            target_link_options(${name}${v} PRIVATE ${GW_SAN_FLAGS})
        endif()
        if(A_WRAPPER)
            set(labels ${A_LABELS})
        else()
            set(labels unit ${A_LABELS})
        endif()
        if(v STREQUAL "_asan")
            _gw_san_test(${name}${v} ${name}${v} WRAPPER ${A_WRAPPER} ARGS ${A_ARGS}
                LABELS ${labels} asan TIMEOUT ${A_TIMEOUT})
            continue()
        endif()
        add_test(NAME ${name}${v} COMMAND ${A_WRAPPER} $<TARGET_FILE:${name}${v}> ${A_ARGS}
                 WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
        if(A_TIMEOUT)
            set_tests_properties(${name}${v} PROPERTIES TIMEOUT ${A_TIMEOUT})
        endif()
        set_tests_properties(${name}${v} PROPERTIES LABELS "${labels}")
    endforeach()
endfunction()
