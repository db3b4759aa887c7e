# herken — plain Makefile with pkg-config.
#
#   make                 static + shared library, herken CLI, herken-bench
#   make test            build and run the Criterion suite
#   make SANITIZE=address|undefined|thread test
#   make deps            install missing Debian packages (apt-get)
#   make bench           the benchmark suite (long)
#   make run             the main job (see README)
#   make install         PREFIX=/usr/local DESTDIR=
#
# Only the per-ISA kernel files (*_avx2.c, *_avx512.c, ...) get ISA flags;
# everything else builds for the baseline of the target architecture.

VERSION := $(shell sed -n 's/^\#define HK_VERSION_STRING "\(.*\)"/\1/p' core/herken.h)
SOVERSION := $(shell sed -n 's/^\#define HK_VERSION_MAJOR \([0-9]*\)/\1/p' core/herken.h)

CROSS ?=
CC := $(CROSS)gcc
CXX := $(CROSS)g++
AR := $(CROSS)ar
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1)

SANITIZE ?=
ifeq ($(FUZZ),1)
CC := clang
BUILD := build/fuzz
OPT := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
else ifeq ($(SANITIZE),)
BUILD := build/release
OPT := -O2
else
BUILD := build/$(SANITIZE)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE)
ifeq ($(SANITIZE),undefined)
OPT += -fno-sanitize-recover=undefined
endif
endif

# Libraries the library links (oneDNN ships no .pc on Debian 12).
LIB_PKGS := hwloc liburing libturbojpeg libpng libsodium openblas libavformat libavcodec libswscale libavutil
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIB_PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(LIB_PKGS) 2>/dev/null)
LIB_LIBS := $(PKG_LIBS) -ldnnl -lpthread -lm

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# Include paths per target: the library sees core/, simd/ and io/ only; the
# CLI sees the public header only ($(BUILD)/include holds a copy of
# core/herken.h and nothing else, as an installed herken would); the
# benchmarks see bench/ plus the internals they name (core/ for herken.h,
# internal.h and pipeline/pipeline.h; simd/ for the kernel table); the
# tests see everything they test.
LIB_INC := -Icore -Isimd -Iio -DHK_BUILDING_LIBRARY
CLI_INC := -I$(BUILD)/include -Itools/cli
BENCH_INC := -Ibench -Icore -Isimd
TEST_INC := -Icore -Isimd -Iio -Ibench -Itools/cli -Itests
CFLAGS ?=
CFLAGS += -std=c11 -g $(OPT) $(WARN) -fPIC -fvisibility=hidden $(PKG_CFLAGS)
CXXFLAGS += -std=c++17 -g $(OPT) -Wall -Wextra -Wno-unused-parameter -fPIC -fopenmp
LDFLAGS += $(if $(SANITIZE),-fsanitize=$(SANITIZE))

ifeq ($(ARCH),x86_64)
CPPFLAGS += -DHK_ARCH_X86=1
ARCH_EXCLUDE := %_neon.c %_i8mm.c
else ifeq ($(ARCH),aarch64)
CPPFLAGS += -DHK_ARCH_ARM64=1
ARCH_EXCLUDE := %_avx2.c %_avxvnni.c %_avx512.c %_avx512vnni.c %_avx512bf16.c %_amx.c
else
ARCH_EXCLUDE := %_neon.c %_i8mm.c %_avx2.c %_avxvnni.c %_avx512.c %_avx512vnni.c %_avx512bf16.c %_amx.c
endif

LIB_SRC := $(filter-out $(ARCH_EXCLUDE),$(sort $(wildcard core/*.c core/*/*.c simd/*.c io/*.c)))
CLI_SRC := $(sort $(wildcard tools/cli/*.c))
BENCH_SRC := $(filter-out $(ARCH_EXCLUDE),$(sort $(wildcard bench/*.c)))
BENCH_CXX := $(sort $(wildcard bench/*.cpp))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz_*.c))
# Criterion's runner cannot start under ThreadSanitizer (Snaipe/Criterion
# #274), so threaded code is checked by plain drivers tests/tsan_*.c
# (main() returning non-zero on failure), run by `make SANITIZE=thread test`.
TSAN_SRC := $(sort $(wildcard tests/tsan_*.c))
TSAN_BIN := $(TSAN_SRC:tests/%.c=$(BUILD)/tsan/%)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# Score calibrations shipped with the models (core/calib/*.calib, text) are
# compiled into the library as strings (core/calib.c parses them).
CALIB_FILES := $(sort $(wildcard core/calib/*.calib))
LIB_OBJ += $(BUILD)/obj/gen/calib_builtin.o
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/obj/%.o) $(BENCH_CXX:%.cpp=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

ISA_avx2 := -mavx2 -mfma -mf16c
ISA_avxvnni := $(ISA_avx2) -mavxvnni
ISA_avx512 := $(ISA_avx2) -mavx512f -mavx512bw -mavx512vl -mavx512dq
ISA_avx512vnni := $(ISA_avx512) -mavx512vnni
ISA_avx512bf16 := $(ISA_avx512) -mavx512bf16
ISA_amx := $(ISA_avx512vnni) -mamx-tile -mamx-int8
ISA_neon := -march=armv8.2-a+dotprod+fp16
ISA_i8mm := -march=armv8.2-a+dotprod+fp16+i8mm

LIBA := $(BUILD)/libherken.a
LIBSO := $(BUILD)/libherken.so.$(VERSION)
CLI := $(BUILD)/herken
DEMO_VIDEO := $(BUILD)/herken-demo-video
BENCH := $(BUILD)/herken-bench
COST := $(BUILD)/herken-cost
TESTS := $(BUILD)/herken-tests

.PHONY: all lib test check-header readme-sample bench-check bench-check-quick bench-baseline deps bench run install uninstall install-test clean fuzz models datasets
all: lib $(if $(CLI_SRC),$(CLI) $(DEMO_VIDEO)) $(if $(BENCH_SRC)$(BENCH_CXX),$(BENCH) $(COST))
lib: $(LIBA) $(LIBSO)

$(LIB_OBJ): INC = $(LIB_INC)
$(CLI_OBJ): INC = $(CLI_INC)
$(BENCH_OBJ): INC = $(BENCH_INC)
$(TEST_OBJ): INC = $(TEST_INC)
$(CLI_OBJ): $(BUILD)/include/herken.h

$(BUILD)/include/herken.h: core/herken.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC) $(CFLAGS) $(ISAFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(INC) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_avx2.o: ISAFLAGS = $(ISA_avx2)
$(BUILD)/obj/%_avxvnni.o: ISAFLAGS = $(ISA_avxvnni)
$(BUILD)/obj/%_avx512.o: ISAFLAGS = $(ISA_avx512)
$(BUILD)/obj/%_avx512vnni.o: ISAFLAGS = $(ISA_avx512vnni)
$(BUILD)/obj/%_avx512bf16.o: ISAFLAGS = $(ISA_avx512bf16)
$(BUILD)/obj/%_amx.o: ISAFLAGS = $(ISA_amx)
$(BUILD)/obj/%_neon.o: ISAFLAGS = $(ISA_neon)
$(BUILD)/obj/%_i8mm.o: ISAFLAGS = $(ISA_i8mm)

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBSO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libherken.so.$(SOVERSION) $(LDFLAGS) -o $@ $^ $(LIB_LIBS)
	ln -sf libherken.so.$(VERSION) $(BUILD)/libherken.so.$(SOVERSION)
	ln -sf libherken.so.$(VERSION) $(BUILD)/libherken.so

$(CLI): $(CLI_OBJ) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBA) $(LIB_LIBS)

# make run's second act: a video made from the demo photos (tools/demo/video.c).
$(BUILD)/obj/tools/demo/video.o: INC = $(CLI_INC)
$(BUILD)/obj/tools/demo/video.o: $(BUILD)/include/herken.h
$(DEMO_VIDEO): $(BUILD)/obj/tools/demo/video.o $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LIB_LIBS)

# The benchmark links the C++ peers (FAISS, hnswlib) through bench/*.cpp.
$(BENCH): $(BENCH_OBJ) $(LIBA)
	$(CXX) $(LDFLAGS) -o $@ $(BENCH_OBJ) $(LIBA) $(LIB_LIBS) -lfaiss -fopenmp

# `herken-bench check` counts instructions under valgrind in herken-cost:
# herken-bench's own objects, linked without FFmpeg. libavcodec loads
# libjxl and libhwy, whose load-time constructor executes RDTSCP; valgrind
# 3.19 cannot decode RDTSCP when the host CPU hides it (the AMD EPYC VM the
# suite is developed on does) and the child died of SIGILL before main. No
# check workload opens a video.
$(BUILD)/obj/bench/cost/video_none.o: INC = $(LIB_INC)
COST_LIBS := $(shell $(PKG_CONFIG) --libs $(filter-out libav% libsw%,$(LIB_PKGS)) 2>/dev/null) -ldnnl -lpthread -lm
$(COST): $(BENCH_OBJ) $(BUILD)/obj/bench/cost/video_none.o $(filter-out %/video_ffmpeg.o,$(LIB_OBJ))
	$(CXX) $(LDFLAGS) -o $@ $^ $(COST_LIBS) -lfaiss -fopenmp

# The protocol maths live with the benchmarks (bench/calibrate.c); the tests check them.
# --wrap: the power-loss test (tests/test_crash_store.c) sees every fsync
# and fdatasync of the library and keeps only what was synced.
TEST_BENCH_OBJ := $(BUILD)/obj/bench/calibrate.o
$(TESTS): $(TEST_OBJ) $(TEST_BENCH_OBJ) $(LIBA)
	$(CC) $(LDFLAGS) -Wl,--wrap=fsync -Wl,--wrap=fdatasync -o $@ $(TEST_OBJ) $(TEST_BENCH_OBJ) $(LIBA) $(LIB_LIBS) $(shell $(PKG_CONFIG) --libs criterion)

# The public header must compile on its own as strict C11 (and as C++).
check-header:
	@mkdir -p $(BUILD)
	printf '#include "herken.h"\nint main(void){return hk_version_number() < 0;}\n' > $(BUILD)/hdr.c
	$(CC) -std=c11 -pedantic -Wall -Wextra -Werror -Icore -fsyntax-only $(BUILD)/hdr.c
	$(CXX) -x c++ -std=c++11 -pedantic -Wall -Wextra -Werror -Icore -fsyntax-only $(BUILD)/hdr.c

# HERKEN_SHARED: where ../shared lives (tests skip what needs it when absent).
# LeakSanitizer: ignore leaks inside Criterion itself (tests/lsan.supp).
export LSAN_OPTIONS := suppressions=$(abspath tests/lsan.supp):print_suppressions=0

HERKEN_SHARED ?= $(abspath $(if $(wildcard ../shared),../shared,))
export HERKEN_SHARED

# The README's C sample must compile and run against the library.
readme-sample: $(LIBA)
	@mkdir -p $(BUILD)
	sed -n '/^```c$$/,/^```$$/p' README.md | sed '1d;$$d' > $(BUILD)/readme_sample.c
	$(CC) -std=c11 -Wall -Wextra -Werror $(OPT) -Icore $(LDFLAGS) -o $(BUILD)/readme_sample \
	    $(BUILD)/readme_sample.c $(LIBA) $(LIB_LIBS)
	$(BUILD)/readme_sample

ifeq ($(SANITIZE),thread)
test: check-header readme-sample all $(TSAN_BIN)
	@set -e; for t in $(TSAN_BIN); do echo "== $$t"; HERKEN_BUILD=$(BUILD) $$t; done
else
test: check-header readme-sample $(TESTS) all
	@bash tools/fetch-models.sh || echo "make test: models unavailable, the model tests will skip"
	HERKEN_MODELS=$${HERKEN_MODELS:-$(abspath .cache/models)} HERKEN_BUILD=$(BUILD) $(TESTS) --jobs 2
	$(if $(SANITIZE),@echo "install test: not run under SANITIZE (the installed library is a release build)",@bash tests/install.sh)
endif

$(BUILD)/tsan/%: tests/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_INC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBA) $(LIB_LIBS)

# Crash-consistency stress for the durable gallery: 1000 SIGKILL trials,
# 300 simulated power losses (4 writer threads, unsynced writes dropped),
# hostile files (missing, swapped, symlinked, FIFO) on 100 random galleries,
# and a cut at every length of each file (HERKEN_CRASH_TRIALS,
# HERKEN_POWERLOSS_TRIALS, HERKEN_FAULT_TRIALS override).
.PHONY: stress
stress: $(TESTS)
	HERKEN_CRASH_TRIALS=$${HERKEN_CRASH_TRIALS:-1000} $(TESTS) --filter 'crash/sigkill*'
	HERKEN_POWERLOSS_TRIALS=$${HERKEN_POWERLOSS_TRIALS:-300} $(TESTS) --filter 'crash/powerloss*'
	HERKEN_FAULT_TRIALS=$${HERKEN_FAULT_TRIALS:-100} $(TESTS) --filter 'crash/faults*'
	$(TESTS) --filter 'crash/truncate*'

bench: $(BENCH)
	$(BENCH) search --n 100000,1000000 --dim 128,192,512 --batch 1,64 --threads 1,2

run:
	@bash tools/run-demo.sh

# Performance-regression check: instruction counts under callgrind against
# the committed bench/baseline.json (see README, "Regression check").
bench-check: $(BENCH) $(COST)
	@bash tools/fetch-models.sh || echo "bench-check: models unavailable, the model workloads will skip"
	$(BENCH) check --baseline bench/baseline.json

# The CI gate (.ci/run): the same check without the slow workloads
# (about 2 CPU-minutes instead of 7; see README, "Regression check").
bench-check-quick: $(BENCH) $(COST)
	@bash tools/fetch-models.sh || echo "bench-check-quick: models unavailable, the model workloads will skip"
	$(BENCH) check --baseline bench/baseline.json --quick

bench-baseline: $(BENCH) $(COST)
	@bash tools/fetch-models.sh || echo "bench-baseline: models unavailable, the model workloads will skip"
	$(BENCH) check --baseline bench/baseline.json --update

deps:
	@bash tools/deps.sh

models:
	@bash tools/fetch-models.sh

# Locate and verify the data sets by checksum (never downloads or copies).
datasets:
	@bash datasets/verify.sh

# Fuzz harnesses (libFuzzer): `make fuzz` builds the library with clang and
# ASan/UBSan into build/fuzz and links each tests/fuzz_*.c against it.
# Run e.g. build/fuzz/fuzz_tflite -runs=1000000 tests/corpus/tflite
fuzz:
	$(MAKE) FUZZ=1 build/fuzz/stamp
build/fuzz/stamp: $(FUZZ_SRC:tests/%.c=build/fuzz/%)
	@touch $@
build/fuzz/%: tests/%.c $(LIBA)
	$(CC) $(CPPFLAGS) $(TEST_INC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIBA) $(LIB_LIBS)

# `make install PREFIX=... [DESTDIR=...]`: the library, header, CLI, a
# herken.pc that carries PREFIX, and the pinned models (the table
# core/models.def names them; tools/fetch-models.sh verifies them first) in
# $(PREFIX)/share/herken/models, where the installed library looks by
# default. The installed library and CLI are linked in $(BUILD)/install
# with core/models.c compiled for PREFIX; the build tree's own are untouched.
MODEL_FILES := $(shell awk -F'"' '/^HK_MODEL_ROW/ { print $$4 }' core/models.def)
MODELS_SRC := $(or $(HERKEN_MODELS),.cache/models)
INST := $(BUILD)/install
MODELS_OBJ := $(BUILD)/obj/core/models.o

install: lib $(CLI)
	@bash tools/fetch-models.sh
	@mkdir -p $(INST)
	$(CC) $(CPPFLAGS) $(LIB_INC) $(CFLAGS) '-DHK_PREFIX="$(PREFIX)"' -c core/models.c -o $(INST)/models.o
	cp $(LIBA) $(INST)/libherken.a
	$(AR) rs $(INST)/libherken.a $(INST)/models.o
	$(CC) -shared -Wl,-soname,libherken.so.$(SOVERSION) $(LDFLAGS) -o $(INST)/libherken.so.$(VERSION) \
	    $(filter-out $(MODELS_OBJ),$(LIB_OBJ)) $(INST)/models.o $(LIB_LIBS)
	$(CC) $(LDFLAGS) -o $(INST)/herken $(CLI_OBJ) $(INST)/libherken.a $(LIB_LIBS)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@PRIVATE_REQUIRES@|$(LIB_PKGS)|g' tools/herken.pc.in > $(INST)/herken.pc
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/share/herken/models
	install -m 644 $(INST)/libherken.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(INST)/libherken.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libherken.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libherken.so.$(SOVERSION)
	ln -sf libherken.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libherken.so
	install -m 644 core/herken.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(INST)/herken.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(INST)/herken $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(addprefix $(MODELS_SRC)/,$(MODEL_FILES)) $(DESTDIR)$(PREFIX)/share/herken/models/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libherken.* $(DESTDIR)$(PREFIX)/include/herken.h \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/herken.pc $(DESTDIR)$(PREFIX)/bin/herken \
	    $(addprefix $(DESTDIR)$(PREFIX)/share/herken/models/,$(MODEL_FILES))
	-rmdir $(DESTDIR)$(PREFIX)/share/herken/models $(DESTDIR)$(PREFIX)/share/herken

# The install test: make install into a temporary prefix, then a program
# built with that prefix's pkg-config, run from another directory, creates
# an engine from the installed models (tests/install.sh).
install-test: lib $(CLI)
	@bash tests/install.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/obj/tools/demo/video.d

$(BUILD)/gen/calib_builtin.c: $(CALIB_FILES) Makefile
	@mkdir -p $(dir $@)
	{ echo '/* generated by the Makefile from the files core/calib/NAME.calib */'; \
	  echo 'const char *const hk__calib_builtin[];'; \
	  echo 'const char *const hk__calib_builtin[] = {'; \
	  for f in $(CALIB_FILES); do \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; echo ','; \
	  done; echo '0};'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/calib_builtin.o: $(BUILD)/gen/calib_builtin.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
