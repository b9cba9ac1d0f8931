# pieces-gateway: the two commands (make run, make test) and a few helpers.
# Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
BUILD   ?= build
JOBS    ?= $(shell nproc)
CONFIG  ?= gateway.lua
CMAKE_FLAGS ?=

.PHONY: all deps build run test e2e-deps bench clean format fuzz fuzz-merge policy-test

# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="tokenizer ..."]: every libFuzzer driver of
# cmake/fuzz.cmake, built with clang in build-fuzz, run FUZZ_SECONDS each (scripts/fuzz.sh).
# make fuzz-merge: minimise the committed corpora, folding in what make fuzz found.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

all: build

deps:
	@scripts/install-deps.sh build test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/pieces-gateway -c $(CONFIG)

e2e-deps:
	@scripts/npm-ci.sh spec/e2e

test: build e2e-deps
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

# Busted specs of an operator's own policies (a directory outside this repository), against the
# fake host: make policy-test POLICIES=/path/to/policies [SPECS=/path/to/specs]
policy-test:
	@[ -n "$(POLICIES)" ] || { echo "usage: make policy-test POLICIES=/path [SPECS=/path]" >&2; exit 2; }
	@scripts/policy-test.sh "$(POLICIES)" $(if $(SPECS),"$(SPECS)")

bench: build
	@scripts/install-deps.sh bench
	@bench/run-all.sh

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" JOBS=$(JOBS) scripts/fuzz.sh run

fuzz-merge: deps
	@FUZZ_TARGETS="$(FUZZ_TARGETS)" JOBS=$(JOBS) scripts/fuzz.sh merge

clean:
	rm -rf $(BUILD)
