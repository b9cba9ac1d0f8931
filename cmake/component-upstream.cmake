# pieces-gateway: the upstream component: protos (protoc-c at build time), the gRPC client on
# nghttp2 + libuv + OpenSSL, the Pieces codec, and their tests.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.

find_program(PROTOC_C NAMES protoc-c REQUIRED)
set(GW_PROTO_GEN ${CMAKE_BINARY_DIR}/gen/proto)
set(GW_PROTO_C "")
foreach(p gpt vertex)
    set(src ${PROJECT_SOURCE_DIR}/proto/${p}.proto)
    set(outs ${GW_PROTO_GEN}/${p}.pb-c.c ${GW_PROTO_GEN}/${p}.pb-c.h)
    add_custom_command(OUTPUT ${outs}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${GW_PROTO_GEN}
        COMMAND ${PROTOC_C} --c_out=${GW_PROTO_GEN} -I${PROJECT_SOURCE_DIR}/proto ${src}
        DEPENDS ${src} VERBATIM)
    list(APPEND GW_PROTO_C ${GW_PROTO_GEN}/${p}.pb-c.c)
endforeach()
set_source_files_properties(${GW_PROTO_C} PROPERTIES COMPILE_OPTIONS "-w")

file(GLOB GW_UPSTREAM_SOURCES ${PROJECT_SOURCE_DIR}/src/upstream/*.c)
list(SORT GW_UPSTREAM_SOURCES)
gw_library(gw_upstream SOURCES ${GW_UPSTREAM_SOURCES} ${GW_PROTO_C}
    LIBS PkgConfig::NGHTTP2 PkgConfig::PROTOBUFC PkgConfig::OPENSSL PkgConfig::LIBUV
    INCLUDES ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/src/upstream ${GW_PROTO_GEN})

if(GW_TESTS)
    gw_c_test(test_pieces SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_pieces.c LIBS gw_upstream)
    gw_c_test(test_grpc_frame SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_grpc_frame.c
        LIBS gw_upstream)
    include(${PROJECT_SOURCE_DIR}/spec/c/upstream-integration.cmake OPTIONAL)
endif()
