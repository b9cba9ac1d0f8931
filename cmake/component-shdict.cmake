# pieces-gateway: the shared dictionary (gw_shdict), its tests and its bench.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
#
# The engine lives in src/shdict/ so that core.cmake's glob of src/*.c does not compile it a
# second time into gw_core; src/ffi_shdict.c (the FFI adapters) is part of gw_core, which links
# gw_shdict automatically.

gw_library(gw_shdict SOURCES ${PROJECT_SOURCE_DIR}/src/shdict/shdict.c
    LIBS Threads::Threads
    INCLUDES ${PROJECT_SOURCE_DIR}/src)

if(GW_TESTS)
    gw_c_test(test_shdict SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_shdict.c
        LIBS gw_shdict Threads::Threads LABELS shdict)

    # The Lua binding through real FFI: ffi.C must find gw_ffi_shdict_* in this executable.
    gw_c_test(test_shdict_lua
        SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_shdict_lua.c
                ${PROJECT_SOURCE_DIR}/src/ffi_shdict.c
        LIBS gw_shdict PkgConfig::LUAJIT Threads::Threads m dl
        ARGS spec/lua/shared_ffi.lua
        LABELS shdict lua)
    foreach(t test_shdict_lua test_shdict_lua_asan)
        if(TARGET ${t})
            target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/src)
            set_target_properties(${t} PROPERTIES ENABLE_EXPORTS ON)
            # The OpenResty LuaJIT we build against (GC64) runs clean under ASan/UBSan, so the
            # _asan variant is kept; if a LuaJIT without GC64 is ever used, its low-address
            # mmap can clash with ASan's shadow memory: drop the variant for this test then.
        endif()
    endforeach()
endif()

# Not a test: `cmake --build build --target shdict_bench && build/shdict_bench`.
add_executable(shdict_bench EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/bench/shdict_bench.c)
target_link_libraries(shdict_bench PRIVATE gw_shdict Threads::Threads)
target_compile_options(shdict_bench PRIVATE -O2)
