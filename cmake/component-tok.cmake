# pieces-gateway: the tokenizer component (gw_tok), its tests and its benchmark driver.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
file(GLOB GW_TOK_SOURCES ${PROJECT_SOURCE_DIR}/src/tok/*.c)
list(SORT GW_TOK_SOURCES)
gw_library(gw_tok SOURCES ${GW_TOK_SOURCES}
    LIBS PkgConfig::PCRE2 PkgConfig::UTF8PROC PkgConfig::OPENSSL Threads::Threads
    INCLUDES ${PROJECT_SOURCE_DIR}/src)

if(GW_TESTS)
    gw_c_test(test_tok SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_tok.c LIBS gw_tok)
    gw_c_test(test_tok_robust SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_tok_robust.c LIBS gw_tok)
    gw_c_test(test_tok_split SOURCES ${PROJECT_SOURCE_DIR}/spec/c/test_tok_split.c
        ${PROJECT_SOURCE_DIR}/spec/c/tok_split_oracle.c LIBS gw_tok)
endif()

# Benchmark driver (not a test): bench/tokenizer/run.sh runs it.
add_executable(bench_tok ${PROJECT_SOURCE_DIR}/bench/tokenizer/bench_tok.c)
target_link_libraries(bench_tok PRIVATE gw_tok)

# Fuzz build: no comparison tracing in the vocabulary hash probes (vocab.c, and bpe.c where
# they are inlined). Those compares are of hash words, useless to guide mutations, and tracing
# them made the tokenizer driver 4x slower; edge coverage stays.
if(GW_FUZZ)
    set_source_files_properties(${PROJECT_SOURCE_DIR}/src/tok/vocab.c
        ${PROJECT_SOURCE_DIR}/src/tok/bpe.c PROPERTIES COMPILE_OPTIONS -fno-sanitize-coverage=trace-cmp)
endif()
