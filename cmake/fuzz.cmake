# pieces-gateway: the libFuzzer drivers under spec/fuzz/ (one line per driver at the end).
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# gw_fuzz_target(NAME SOURCES ... [LIBS ...] [EXPORTS])
#   NAME's driver defines LLVMFuzzerTestOneInput (and optionally LLVMFuzzerInitialize); its
#   committed, minimised corpus is spec/fuzz/corpus/NAME/, its optional dictionary
#   spec/fuzz/NAME.dict. SOURCES are relative to the project root or absolute; LIBS are our
#   libraries (gw_core, gw_tok, ...) and imported ones. Drivers are compiled with
#   GW_SOURCE_DIR="<project root>" (to find assets/ and fixtures) and spec/fuzz on the include
#   path. EXPORTS: for drivers that run Lua policies, our LIBS are linked whole and their
#   symbols exported, as for the binary (LuaJIT's ffi.C looks gw_ffi_* up in the executable).
#   Fuzz mode (GW_FUZZ, clang; `make fuzz`): the executable NAME, linked with
#     -fsanitize=fuzzer,address,undefined, every library built with fuzzer-no-link
#     instrumentation (cmake/gw.cmake); target gw_fuzz builds all drivers and
#     <build>/fuzz-targets.txt lists their names for scripts/fuzz.sh.
#   Normal build with tests: NAME_replay = the driver + spec/fuzz/replay_main.c (no libFuzzer),
#     ASan+UBSan and the _asan libraries when GW_SANITIZERS is on, and the ctest entry
#     fuzz_replay_NAME (label fuzz) that feeds every corpus file to it once; any sanitizer
#     report or leak fails it. With GW_CLANG_TESTS also fuzz_replay_NAME_clang.

set_property(GLOBAL PROPERTY GW_FUZZ_TARGETS "")
if(GW_FUZZ)
    add_custom_target(gw_fuzz)
endif()

function(gw_fuzz_target name)
    cmake_parse_arguments(A "EXPORTS" "" "SOURCES;LIBS" ${ARGN})
    if(NOT A_SOURCES)
        message(FATAL_ERROR "gw_fuzz_target(${name}): SOURCES missing")
    endif()
    set(srcs "")
    foreach(s ${A_SOURCES})
        if(NOT IS_ABSOLUTE ${s})
            set(s ${PROJECT_SOURCE_DIR}/${s})
        endif()
        list(APPEND srcs ${s})
    endforeach()
    set(corpus ${PROJECT_SOURCE_DIR}/spec/fuzz/corpus/${name})
    if(NOT IS_DIRECTORY ${corpus})
        message(FATAL_ERROR "gw_fuzz_target(${name}): no seed corpus ${corpus}")
    endif()
    set_property(GLOBAL APPEND PROPERTY GW_FUZZ_TARGETS ${name})
    if(GW_FUZZ)
        set(exe ${name})
        add_executable(${exe} ${srcs})
        set(libs ${A_LIBS})
        target_compile_options(${exe} PRIVATE -fsanitize=fuzzer)
        target_link_options(${exe} PRIVATE -fsanitize=fuzzer)
        add_dependencies(gw_fuzz ${exe})
    elseif(GW_TESTS)
        set(exe ${name}_replay)
        add_executable(${exe} ${srcs} ${PROJECT_SOURCE_DIR}/spec/fuzz/replay_main.c)
        if(GW_SANITIZERS)
            _gw_map_libs(libs _asan ${A_LIBS})
            target_compile_options(${exe} PRIVATE ${GW_SAN_FLAGS} -O1)
            target_link_options(${exe} PRIVATE ${GW_SAN_FLAGS})
        else()
            set(libs ${A_LIBS})
        endif()
        _gw_san_test(fuzz_replay_${name} ${exe} ARGS ${corpus} LABELS fuzz TIMEOUT 300)
    else()
        return()
    endif()
    if(A_EXPORTS)
        set(whole "")
        foreach(l ${libs})
            string(REGEX REPLACE "_asan$" "" base ${l})
            if(base IN_LIST GW_OWN_LIBS)
                set(l "$<LINK_LIBRARY:WHOLE_ARCHIVE,${l}>")
            endif()
            list(APPEND whole ${l})
        endforeach()
        set(libs ${whole})
        set_target_properties(${exe} PROPERTIES ENABLE_EXPORTS ON)
    endif()
    target_link_libraries(${exe} PRIVATE ${libs})
    target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR}/spec/fuzz)
    target_compile_definitions(${exe} PRIVATE GW_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endfunction()

# ---- the drivers (one line each) ----
gw_fuzz_target(tokenizer SOURCES spec/fuzz/tokenizer.c LIBS gw_tok)
gw_fuzz_target(tok_split SOURCES spec/fuzz/tok_split.c spec/c/tok_split_oracle.c LIBS gw_tok)
gw_fuzz_target(http_server SOURCES spec/fuzz/http_server.c LIBS gw_core)
gw_fuzz_target(env_config SOURCES spec/fuzz/env_config.c LIBS gw_core)
gw_fuzz_target(ipaddr SOURCES spec/fuzz/ipaddr.c LIBS gw_core)
gw_fuzz_target(json_text SOURCES spec/fuzz/json_text.c LIBS gw_core gw_tok)
gw_fuzz_target(grpc_deframer SOURCES spec/fuzz/grpc_deframer.c LIBS gw_upstream)
gw_fuzz_target(pieces_reply SOURCES spec/fuzz/pieces_reply.c LIBS gw_upstream)
gw_fuzz_target(openai_sse SOURCES spec/fuzz/openai_sse.c LIBS gw_core)
gw_fuzz_target(openai_json SOURCES spec/fuzz/openai_json.c LIBS gw_core)
gw_fuzz_target(lua_json SOURCES spec/fuzz/lua_json.c LIBS gw_core)

# The list scripts/fuzz.sh runs (`make fuzz`, `make fuzz-merge`).
get_property(GW_FUZZ_NAMES GLOBAL PROPERTY GW_FUZZ_TARGETS)
string(REPLACE ";" "\n" GW_FUZZ_LIST "${GW_FUZZ_NAMES}")
file(WRITE ${CMAKE_BINARY_DIR}/fuzz-targets.txt "${GW_FUZZ_LIST}\n")
