# The two entry points: `make demo` and `make test`. Both install missing Debian packages first.
# `make stress` runs the stress tier (tests/stress/run) in $(BUILD) and in an ASan build.
# `make docs` writes the HTML API reference to $(BUILD)/docs/html (Doxygen; warnings fail it).
BUILD ?= build
ASAN_BUILD ?= build-ci-asan
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= 2

.PHONY: all deps configure asan-configure build test stress demo bench docs clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The ASan+UBSan build, for `make stress` and .ci/run's sanitizer step. Line tables only (-g1):
# reports keep each frame's file and line; full debug information made the sanitizer builds a
# quarter slower to compile. MPI is left out: Open MPI's own allocations would swamp the leak
# checker.
asan-configure:
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -Wno-dev -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1 \
	  -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DMPROC_SANITIZE=address,undefined -DMPROC_WERROR=ON -DMPROC_BENCH=OFF \
	  -DMPROC_MPI=OFF >/dev/null

# Builds only what the tier runs.
stress: configure asan-configure
	@cmake --build $(BUILD) -j $(JOBS) --target mproc_stress
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target mproc_stress
	tests/stress/run $(BUILD) $(ASAN_BUILD)

demo: build
	$(BUILD)/tools/mproc/mproc demo

bench: build
	bench/run_all $(BUILD)

# Needs no build: Doxygen reads the headers. The output directory is set here so that it follows BUILD.
docs: deps
	@mkdir -p $(BUILD)/docs
	@{ cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $(BUILD)/docs"; } | doxygen -
	@echo "API reference: $(BUILD)/docs/html/index.html"

clean:
	rm -rf $(BUILD)
