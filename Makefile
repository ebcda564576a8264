# urt's build (GNU make).  `make help` lists the targets.

CC ?= cc
ASAN_CC ?= clang
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
# Optimisation and debug info may be overridden; the rest of the flags are
# what the code is written against and always apply.
CFLAGS ?= -O2 -g
LDFLAGS ?=
# V=1 shows the full compiler command lines.
V ?= 0

# The header is the one place the version is written; the soname follows its
# major number.  ('.' stands for '#', which make 4.3 and older disagree on.)
version_of = $(shell sed -n 's/^.define URT_VERSION_$(1) *\([0-9]*\).*/\1/p' include/urt.h)
MAJOR := $(call version_of,MAJOR)
VERSION := $(MAJOR).$(call version_of,MINOR).$(call version_of,PATCH)

URING_CFLAGS := $(shell pkg-config --cflags liburing 2>/dev/null)
URING_LIBS := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)

WARN := -Wall -Wextra -Werror
LIB_FLAGS = -std=gnu11 $(WARN) -fvisibility=hidden -fPIC -Iinclude -Isrc $(URING_CFLAGS)
# Tests may reach internals (-Isrc, and urt__* in the static library);
# examples are user programs and see only the public header.
TEST_FLAGS = -std=gnu11 $(WARN) -Iinclude -Isrc -Itests $(URING_CFLAGS)
TEST_LIBS = $(URING_LIBS) -lcmocka -lpthread
EXAMPLE_FLAGS = -std=gnu11 $(WARN) -Iinclude $(URING_CFLAGS)
EXAMPLE_LIBS = $(URING_LIBS) -lpthread
# -O1 keeps ASan's reports readable; stack-use-after-return stays off in the
# runtime options because fibers switch stacks under it.
ASAN_CFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer -O1 -g
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# ThreadSanitizer sees the worker threads of urt_to_thread; the thread tests
# run under it.  halt_on_error: the first race fails the binary where it
# happened.  Kernels with more than 28 bits of mmap randomisation place
# mappings where the TSan of gcc 12 and clang 14 cannot ("FATAL:
# ThreadSanitizer: unexpected memory mapping"): there the tests run with
# randomisation off (setarch -R, util-linux).
TSAN_CC ?= $(CC)
TSAN_CFLAGS = -fsanitize=thread -fno-omit-frame-pointer -O1 -g
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
TSAN_WRAP := $(shell [ "$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ] && \
                     echo setarch -R)
# Only errors make valgrind fail by default; leaks of every kind but "still
# reachable" must too.  Stray fds are found by scripts/run-tests.sh.
VALGRIND = valgrind --error-exitcode=99 --leak-check=full \
           --errors-for-leak-kinds=definite,indirect,possible --track-fds=yes
# Seconds one test binary may run before it counts as hung.
TEST_TIMEOUT ?= 120
# Test binaries run one at a time in the timing-sensitive tiers; under
# valgrind everything is slow anyway, and one binary per core halves the
# longest tier.
VALGRIND_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

LIB_SRCS := $(wildcard src/*.c) src/switch_x86_64.S
LIB_OBJS := $(patsubst src/%,build/obj/%.o,$(basename $(LIB_SRCS)))
ASAN_OBJS := $(patsubst build/obj/%,build/asan/obj/%,$(LIB_OBJS))
TSAN_OBJS := $(patsubst build/obj/%,build/tsan/obj/%,$(LIB_OBJS))
TEST_NAMES := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
TEST_BINS := $(TEST_NAMES:%=build/tests/%)
ASAN_TEST_BINS := $(TEST_NAMES:%=build/asan/tests/%)
# The tests whose code runs on more than one thread.
TSAN_TEST_BINS := $(filter build/tsan/tests/test_thread,$(TEST_NAMES:%=build/tsan/tests/%))
EXAMPLE_BINS := $(patsubst examples/%.c,build/examples/%,$(wildcard examples/*.c))
ASAN_EXAMPLE_BINS := $(patsubst build/%,build/asan/%,$(EXAMPLE_BINS))
# The echo server's load client: a test tool, not a cmocka test.
ECHO_CLIENT := build/tests/echo_client
# The tests of the I/O calls, the ones with paths that change with the kernel.
IO_TEST_BINS := $(filter $(addprefix build/tests/,test_io test_file test_net test_readahead test_timeout),$(TEST_BINS))

SONAME := liburt.so.$(MAJOR)
SHARED := build/liburt.so.$(VERSION)

ifeq ($(V),0)
Q := @
say = @printf '  %-5s %s\n' $(1) $(2);
else
Q :=
say :=
endif
# For the builds a target starts itself (each tier builds what it runs): -s
# keeps "Nothing to be done" out of the test output.  $(MAKE) must be written
# out in those recipes, not hidden in a variable, or the sub-make is not
# given the -j job slots.
SUB := --no-print-directory $(if $(filter 0,$(V)),-s)

.PHONY: all lib help install uninstall clean tests asan-tests tsan-tests examples asan-examples run \
        bench test check test-unit test-asan test-tsan test-kernels test-valgrind test-symbols \
        test-examples test-faults test-difftest test-bench asan valgrind-test \
        stress stress-faults stress-difftest FORCE
.DELETE_ON_ERROR:

all: lib

lib: build/liburt.a $(SHARED) build/$(SONAME) build/liburt.so build/urt.pc

help:
	@echo 'make [all]       build/liburt.a, build/liburt.so.$(VERSION) (+ symlinks), build/urt.pc'
	@echo 'make test        every test tier in order: $(TIERS); one line per tier at the end'
	@echo 'make test-unit   tests/test_*.c built with $$(CC), run   (also: tests = build only)'
	@echo 'make test-asan   same tests and library built with clang ASan+UBSan, run  (alias: asan)'
	@echo 'make test-tsan   the thread tests and library built with ThreadSanitizer, run'
	@echo 'make test-kernels   I/O tests again with URT_KERNEL=5.6 and =5.10 (older kernels'"'"' paths)'
	@echo 'make test-valgrind  unit test binaries (URT_TEST_SMALL=1) and examples under valgrind  (alias: valgrind-test)'
	@echo 'make test-symbols   liburt.so and liburt.a define nothing outside urt_*'
	@echo 'make test-examples  build examples/*.c (also with ASan) and check them with tests/examples.sh'
	@echo 'make test-faults    tests/test_fault.c: FAULT_SEEDS=500 seeds of injected faults (ASan), 4 feature sets'
	@echo 'make test-fuzz      tests/fuzz/: the corpus replayed, then a short libFuzzer run'
	@echo 'make test-stress    tests/stress/ quick: 1,000-connection soak, 100,000 tasks, 10 overflow storms'
	@echo 'make test-difftest  random task programs run against urt and asyncio, traces compared (DIFFTEST_COUNT=300)'
	@echo 'make examples    build examples/*.c into build/examples/  (asan-examples: build/asan/examples/)'
	@echo 'make run         install what building needs, build and run every example'
	@echo 'make bench       urt and its peers on every workload: bench/results/latest.md (QUICK=1: smoke run)'
	@echo 'make stress      the long tier (about an hour): difftest, faults, fuzz, 10k-connection soak,'
	@echo '                 1M tasks, overflow storms; figures in build/stress/summary.md'
	@echo 'make test-bench  make bench QUICK=1, the smoke check that is make test'"'"'s last tier'
	@echo 'make install     header, libraries, urt.pc under $$(DESTDIR)$$(PREFIX)  (and uninstall)'
	@echo 'make clean       remove build/'
	@echo 'variables: CC CFLAGS LDFLAGS PREFIX LIBDIR INCLUDEDIR DESTDIR V=1 TEST_TIMEOUT VALGRIND_JOBS'

# --- the library -----------------------------------------------------------

# Objects depend on the command that built them, so that `make CC=clang` or
# `make CFLAGS=-O0` rebuilds instead of mixing old and new objects.
build/obj/.cmd: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS) $(LIB_FLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LIB_FLAGS)' >$@

build/obj/%.o: src/%.c build/obj/.cmd
	$(call say,CC,$@)$(CC) $(CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/obj/%.o: src/%.S build/obj/.cmd
	$(call say,AS,$@)$(CC) $(CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

# Removed first: ar would keep members of objects that no longer exist.
build/liburt.a: $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

# The version script keeps everything but urt_* out of the dynamic symbol
# table, whatever visibility a symbol was given; -z defs makes a missing
# symbol (or library) a link error here rather than in the user's program;
# -z noexecstack because one object without a .note.GNU-stack (the assembly
# file is the one at risk) would otherwise give every user an executable stack.
$(SHARED): $(LIB_OBJS) src/urt.map
	$(call say,LD,$@)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/urt.map \
		-Wl,-z,defs -Wl,-z,noexecstack $(LDFLAGS) -o $@ $(LIB_OBJS) $(URING_LIBS)

build/$(SONAME): $(SHARED)
	$(Q)ln -sf $(<F) $@

build/liburt.so: build/$(SONAME)
	$(Q)ln -sf $(<F) $@

# Regenerated on every run but only rewritten when PREFIX or a directory
# changed, so `make && make install PREFIX=/usr` installs the right paths.
# libdir and includedir are kept relative to ${prefix} when they are under it.
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
build/urt.pc: urt.pc.in FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VERSION)|' \
		$< >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# --- install ---------------------------------------------------------------

install: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/urt.h $(DESTDIR)$(INCLUDEDIR)/urt.h
	install -m 644 build/liburt.a $(DESTDIR)$(LIBDIR)/liburt.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/$(notdir $(SHARED))
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/liburt.so
	install -m 644 build/urt.pc $(DESTDIR)$(PKGCONFIGDIR)/urt.pc
	@# The loader finds a new library in /usr/local/lib only once its cache knows it.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/urt.h $(DESTDIR)$(PKGCONFIGDIR)/urt.pc \
		$(DESTDIR)$(LIBDIR)/liburt.a $(DESTDIR)$(LIBDIR)/liburt.so \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(notdir $(SHARED))

# --- tests -----------------------------------------------------------------

# Every test links the static library: a test may call urt__ internals, which
# the shared one does not export.
tests: $(TEST_BINS)

# The old binary goes first: when the new one fails to build, the tier must
# report it missing, not run yesterday's.
build/tests/%: tests/%.c build/liburt.a
	@mkdir -p $(@D) && rm -f $@
	$(call say,CC,$@)$(CC) $(CFLAGS) $(TEST_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/liburt.a $(TEST_LIBS)

# The sanitizer build is a second, complete build: ASan must see the
# library's own accesses, not only the tests'.
asan-tests: $(ASAN_TEST_BINS)

build/asan/obj/%.o: src/%.c build/asan/obj/.cmd
	$(call say,CC,$@)$(ASAN_CC) $(ASAN_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/asan/obj/%.o: src/%.S build/asan/obj/.cmd
	$(call say,AS,$@)$(ASAN_CC) $(ASAN_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/asan/obj/.cmd: FORCE
	@mkdir -p $(@D)
	@echo '$(ASAN_CC) $(ASAN_CFLAGS) $(LIB_FLAGS)' | cmp -s - $@ || echo '$(ASAN_CC) $(ASAN_CFLAGS) $(LIB_FLAGS)' >$@

build/asan/liburt.a: $(ASAN_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

build/asan/tests/%: tests/%.c build/asan/liburt.a
	@mkdir -p $(@D) && rm -f $@
	$(call say,CC,$@)$(ASAN_CC) $(ASAN_CFLAGS) $(TEST_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/asan/liburt.a $(TEST_LIBS)

# ThreadSanitizer's build, complete as ASan's: a race is between two
# accesses, and the library's are half of them.
tsan-tests: $(TSAN_TEST_BINS)

build/tsan/obj/%.o: src/%.c build/tsan/obj/.cmd
	$(call say,CC,$@)$(TSAN_CC) $(TSAN_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/tsan/obj/%.o: src/%.S build/tsan/obj/.cmd
	$(call say,AS,$@)$(TSAN_CC) $(TSAN_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/tsan/obj/.cmd: FORCE
	@mkdir -p $(@D)
	@echo '$(TSAN_CC) $(TSAN_CFLAGS) $(LIB_FLAGS)' | cmp -s - $@ || echo '$(TSAN_CC) $(TSAN_CFLAGS) $(LIB_FLAGS)' >$@

build/tsan/liburt.a: $(TSAN_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

build/tsan/tests/%: tests/%.c build/tsan/liburt.a
	@mkdir -p $(@D) && rm -f $@
	$(call say,CC,$@)$(TSAN_CC) $(TSAN_CFLAGS) $(TEST_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/tsan/liburt.a $(TEST_LIBS)

# The faults build: ASan+UBSan, and -DURT_FAULTS compiles in src/fault.c's
# injection.  Only test_fault runs there: the other tests assert exact
# results, which injected faults would change.
FAULT_OBJS := $(patsubst build/obj/%,build/faults/obj/%,$(LIB_OBJS))
FAULT_CFLAGS = $(ASAN_CFLAGS) -DURT_FAULTS

build/faults/obj/%.o: src/%.c build/faults/obj/.cmd
	$(call say,CC,$@)$(ASAN_CC) $(FAULT_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/faults/obj/%.o: src/%.S build/faults/obj/.cmd
	$(call say,AS,$@)$(ASAN_CC) $(FAULT_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/faults/obj/.cmd: FORCE
	@mkdir -p $(@D)
	@echo '$(ASAN_CC) $(FAULT_CFLAGS) $(LIB_FLAGS)' | cmp -s - $@ || echo '$(ASAN_CC) $(FAULT_CFLAGS) $(LIB_FLAGS)' >$@

build/faults/liburt.a: $(FAULT_OBJS)
	$(call say,AR,$@)rm -f $@ && $(AR) rcs $@ $^

build/faults/tests/test_fault: tests/test_fault.c build/faults/liburt.a
	@mkdir -p $(@D) && rm -f $@
	$(call say,CC,$@)$(ASAN_CC) $(FAULT_CFLAGS) $(TEST_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/faults/liburt.a $(TEST_LIBS)

# The echo client lives with the tests but is a user program, built as the
# examples are: the public header only, no cmocka.  These explicit rules
# win over the test pattern rules above.
$(ECHO_CLIENT): tests/echo_client.c build/liburt.a
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(CFLAGS) $(EXAMPLE_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/liburt.a $(EXAMPLE_LIBS)

build/asan/tests/echo_client: tests/echo_client.c build/asan/liburt.a
	@mkdir -p $(@D)
	$(call say,CC,$@)$(ASAN_CC) $(ASAN_CFLAGS) $(EXAMPLE_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/asan/liburt.a $(EXAMPLE_LIBS)

# Tiers run one after the other (their output would interleave otherwise);
# each still builds in parallel under -j.  Nothing stops early: a test file
# that does not compile fails as "not built" while the others still run, and
# a failed tier does not stop the next ones, so one CI run shows everything
# that is wrong.
TIERS := unit asan tsan kernels valgrind symbols examples faults difftest fuzz stress bench
FUZZ_TIER := 10/12
STRESS_TIER := 11/12

# One line per tier at the end (scripts/run-tiers.sh), with the counts each
# printed last and its time.
test check:
	@scripts/deps.sh test
	@+scripts/run-tiers.sh $(TIERS)

test-unit:
	@echo '==== tier 1/12 unit: tests/test_*.c with $(CC) $(CFLAGS)'
	@$(MAKE) $(SUB) -k tests || true
	@scripts/run-tests.sh -t $(TEST_TIMEOUT) -l build/logs/unit $(TEST_BINS)

test-asan asan:
	@echo '==== tier 2/12 asan: library and tests with $(ASAN_CC) -fsanitize=address,undefined'
	@$(MAKE) $(SUB) -k asan-tests || true
	@$(ASAN_ENV) scripts/run-tests.sh -t $(TEST_TIMEOUT) -l build/logs/asan $(ASAN_TEST_BINS)

test-tsan:
	@echo '==== tier 3/12 tsan: thread tests and library with $(TSAN_CC) -fsanitize=thread$(if $(TSAN_WRAP), under $(TSAN_WRAP))'
	@$(MAKE) $(SUB) -k tsan-tests || true
	@$(TSAN_ENV) scripts/run-tests.sh $(if $(TSAN_WRAP),-w '$(TSAN_WRAP)') -t $(TEST_TIMEOUT) \
		-l build/logs/tsan $(TSAN_TEST_BINS)

# On an older kernel urt takes other paths to the same results (src/probe.c):
# URT_KERNEL makes it use only what that release had, so the I/O tests prove
# each fallback here.  5.6 is the oldest kernel urt supports: no fast poll,
# no SHUTDOWN, RENAMEAT, UNLINKAT, MKDIRAT or SOCKET opcodes, none of the
# newer ring flags; 5.10, the LTS most 5.x machines still run, has fast poll
# but not those opcodes.  Two runs of run-tests.sh, each with its own closing
# line.  The plain build only: the fallbacks are short, the asan tier covers
# memory errors in the code they share, and the whole of `make test` should
# stay within ten minutes on two cores.
#
# A third run gives the loop a ring of 2 entries (4 completions): every
# turn fills the submission queue and overflows the completion queue, and
# the multishot accepts and recvs must lose nothing when the kernel ends
# them for want of room.  A fourth makes the first try of every read,
# write, send and recv not wait (URT_TEST_NOWAIT), so that the -EAGAIN an
# O_NONBLOCK fd gets, and urt's wait for readiness and retry, run on a
# kernel that would otherwise wait by itself.
test-kernels:
	@echo '==== tier 4/12 kernels: I/O tests with urt limited to older kernels'"'"' features'
	@$(MAKE) $(SUB) -k tests || true
	@status=0; for env in URT_KERNEL=5.6 URT_KERNEL=5.10 URT_RING_ENTRIES=2 URT_TEST_NOWAIT=1; do \
		echo "==== tier: io under $$env"; \
		env $$env scripts/run-tests.sh -t $(TEST_TIMEOUT) -l build/logs/$${env#URT_} \
			$(IO_TEST_BINS) || status=1; \
	done; exit $$status

test-valgrind valgrind-test:
	@echo '==== tier 5/12 valgrind: unit test binaries (URT_TEST_SMALL=1) and the examples under memcheck'
	@$(MAKE) $(SUB) -k tests || true
	@$(MAKE) $(SUB) examples $(ECHO_CLIENT)
	@status=0; URT_TEST_SMALL=1 scripts/run-tests.sh -w '$(VALGRIND)' -j $(VALGRIND_JOBS) \
		-t $$(($(TEST_TIMEOUT) * 2)) -l build/logs/valgrind $(TEST_BINS) || status=1; \
	echo '==== tier: the examples under memcheck'; \
	EXAMPLES_VALGRIND=1 sh tests/examples.sh || status=1; exit $$status

# The public API is the urt_* functions of the header, and nothing else may
# be defined globally: the shared library exports exactly them, and the
# static one (linked into programs with their own symbols) defines nothing
# outside the urt_ prefix, its internals being urt__*.
test-symbols: SHELL := /bin/bash
test-symbols:
	@echo '==== tier 6/12 symbols: only urt_* outside the library'
	@$(MAKE) $(SUB) lib
	@pass=0; fail=0; \
	check() { if [ -z "$$2" ]; then pass=$$((pass + 1)); echo "  ok    $$1"; \
		else fail=$$((fail + 1)); echo "  FAIL  $$1:"; echo "$$2" | sed 's/^/          /'; fi; }; \
	exported=$$(nm -D --defined-only build/liburt.so | awk 'NF == 3 { print $$3 }' | sort); \
	declared=$$(sed -n 's/^URT_API .*[ *]\(urt_[a-z0-9_]*\)(.*/\1/p' include/urt.h | sort); \
	check "liburt.so exports only urt_* public names" \
		"$$(echo "$$exported" | grep -v '^urt_[a-z0-9]')"; \
	check "liburt.so defines every URT_API function of urt.h" \
		"$$(comm -13 <(echo "$$exported") <(echo "$$declared"))"; \
	check "liburt.a defines no global symbol outside urt_*" \
		"$$(nm -g --defined-only build/liburt.a | awk 'NF == 3 && $$3 !~ /^urt_/ { print $$3 }')"; \
	echo "tests: $$pass passed, $$fail failed"; [ $$fail = 0 ]

# The echo server and cp run under ASan too: the echo check is the
# 1,000-connection load, the one place where many I/O calls of many tasks
# overlap, and LSan at the server's exit is the leak check.  -k: a missing
# ASan build fails its checks in examples.sh, not the whole tier.
test-examples:
	@echo '==== tier 7/12 examples: build examples/*.c, check their output'
	@$(MAKE) $(SUB) examples $(ECHO_CLIENT)
	@$(MAKE) $(SUB) -k asan-examples || true
	@if [ -f tests/examples.sh ]; then $(ASAN_ENV) bash tests/examples.sh; \
	else echo "  (no tests/examples.sh: examples built, not run)"; \
		echo "examples: 0 passed, 0 failed"; fi

# The public operations under injected faults (tests/test_fault.c): the
# seeds run with the native features, the two older kernels' and the
# not-waiting first tries, each a different set of paths.
FAULT_SEEDS ?= 500
FAULT_ENVS := URT_KERNEL=native URT_KERNEL=5.6 URT_KERNEL=5.10 URT_TEST_NOWAIT=1
test-faults:
	@echo '==== tier 8/12 faults: $(FAULT_SEEDS) seeds of injected faults, ASan+UBSan, 4 feature sets'
	@$(MAKE) $(SUB) -k build/faults/tests/test_fault || true
	@status=0; for env in $(FAULT_ENVS); do \
		echo "==== tier: faults under $$env"; \
		env $$env URT_FAULT_SEEDS=$(FAULT_SEEDS) $(ASAN_ENV) scripts/run-tests.sh \
			-t $(TEST_TIMEOUT) -l build/logs/faults-$${env#URT_} build/faults/tests/test_fault || status=1; \
		grep -h '^faults:' build/logs/faults-$${env#URT_}/test_fault.log | sed 's/^/  /'; \
	done; exit $$status

# make stress's part: many more seeds, the figure for the README.
STRESS_FAULT_SEEDS ?= 2500
stress-faults: SHELL := /bin/bash
stress-faults:
	@$(MAKE) $(SUB) build/faults/tests/test_fault
	@mkdir -p build/stress && rm -f build/stress/faults.txt
	@status=0; seeds=0; faults=0; for env in $(FAULT_ENVS); do \
		env $$env URT_FAULT_SEEDS=$(STRESS_FAULT_SEEDS) $(ASAN_ENV) scripts/run-tests.sh \
			-t 3600 -l build/stress/logs/faults-$${env#URT_} build/faults/tests/test_fault || status=1; \
		line=$$(grep -h '^faults:' build/stress/logs/faults-$${env#URT_}/test_fault.log); \
		echo "  $$env: $$line"; \
		seeds=$$((seeds + $(STRESS_FAULT_SEEDS))); \
		faults=$$((faults + $$(echo "$$line" | grep -o '[0-9]\+ [a-zA-Z ]*' | sed -n '2,$$p' | awk '{ s += $$1 } END { print s + 0 }'))); \
	done; \
	[ $$status = 0 ] && echo "figure: faults: $$seeds seeded runs under 4 feature sets, $$faults faults injected, every byte delivered once, nothing leaked" \
		>build/stress/faults.txt; cat build/stress/faults.txt 2>/dev/null; exit $$status

# The benchmark suite's smoke check: every program of every peer builds,
# runs each workload for a moment and prints every figure it should.  It
# says nothing about speed (a second of a shared 2-core machine cannot);
# `make bench` is the measurement.
# Random task programs, each run as C against urt and as Python against
# asyncio: their event traces must be the same (scripts/difftest.py).
# Every construct is in; DIFFTEST_WITHOUT=name,... leaves some out (see
# scripts/difftest.py --help), to tell which one a difference comes from.
DIFFTEST_COUNT ?= 300
DIFFTEST_WITHOUT ?=
difftest_without = $(if $(DIFFTEST_WITHOUT),--without $(DIFFTEST_WITHOUT))
test-difftest:
	@echo '==== tier 9/12 difftest: the regression corpus and $(DIFFTEST_COUNT) random task programs, urt against asyncio'
	@python3 scripts/difftest.py -n $(DIFFTEST_COUNT) -s 1 $(difftest_without) --out build/difftest

# make stress's part: thousands more programs, seeds the fast tier never
# reaches.
STRESS_DIFFTEST_COUNT ?= 3000
stress-difftest:
	@mkdir -p build/stress && rm -f build/stress/difftest.txt
	@python3 scripts/difftest.py -n $(STRESS_DIFFTEST_COUNT) -s 100001 $(difftest_without) \
		--out build/stress/difftest --figure build/stress/difftest.txt

# The long tier, by hand: each part bounded in time, figures for the
# README's "Reliability" section in build/stress/summary.md.
stress:
	@scripts/deps.sh test
	@+scripts/stress.sh

test-bench:
	@echo '==== tier 12/12 bench: make bench QUICK=1 (each peer runs each workload briefly)'
	@$(MAKE) --no-print-directory bench QUICK=1

# --- examples and benchmarks -----------------------------------------------

examples: $(EXAMPLE_BINS)

build/examples/%: examples/%.c build/liburt.a
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(CFLAGS) $(EXAMPLE_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/liburt.a $(EXAMPLE_LIBS)

asan-examples: $(ASAN_EXAMPLE_BINS) build/asan/tests/echo_client

build/asan/examples/%: examples/%.c build/asan/liburt.a
	@mkdir -p $(@D)
	$(call say,CC,$@)$(ASAN_CC) $(ASAN_CFLAGS) $(EXAMPLE_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/asan/liburt.a $(EXAMPLE_LIBS)

# The README's first command: dependencies, then every example, run.  An
# example may exit 1 on purpose (an uncaught error, as its Python twin does);
# only a crash fails.  cp and the echo server need arguments, and the server
# runs until a signal: each gets a short demonstration of its own (the full
# checks are in tests/examples.sh), which fails if it does not work.
RUN_ALONE := $(filter-out build/examples/cp build/examples/echo_server,$(EXAMPLE_BINS))

run:
	@scripts/deps.sh run
	@$(MAKE) $(SUB) examples $(ECHO_CLIENT)
	@for e in $(RUN_ALONE); do \
		echo "==== $$e"; $$e; st=$$?; \
		[ $$st = 0 ] || echo "(exit status $$st)"; [ $$st -lt 128 ] || exit 1; \
	done
	@echo '==== build/examples/cp: 8 MiB of random bytes, compared with cmp'
	@t=$$(mktemp -d) && head -c 8M /dev/urandom >$$t/src && \
		build/examples/cp $$t/src $$t/copy && cmp $$t/src $$t/copy && echo 'same bytes'; \
		st=$$?; rm -rf $$t; exit $$st
	@echo '==== build/examples/echo_server 127.0.0.1:0, 100 clients, then SIGTERM'
	@out=$$(mktemp) && { build/examples/echo_server 127.0.0.1:0 >$$out & pid=$$!; } && \
	for i in $$(seq 50); do grep -q '^listening on' $$out && break; sleep 0.1; done; \
	addr=$$(sed -n 's/^listening on //p' $$out); rm -f $$out; \
	echo "listening on $$addr"; \
	[ -z "$$addr" ] || timeout 70 $(ECHO_CLIENT) -n 100 -m 10 $$addr; cst=$$?; \
	kill -TERM $$pid; wait $$pid; st=$$?; echo "(echo_server exit status $$st)"; \
	[ -n "$$addr" ] && [ $$cst = 0 ] && [ $$st = 0 ]

# The benchmark suite: bench/README.md says what it measures and how.
include bench/bench.mk

clean:
	rm -rf build

FORCE:

-include $(wildcard build/obj/*.d build/asan/obj/*.d build/tsan/obj/*.d build/tests/*.d \
                    build/asan/tests/*.d build/tsan/tests/*.d build/faults/obj/*.d build/faults/tests/*.d \
                    build/examples/*.d build/asan/examples/*.d build/bench/*.d)

# --- fuzzing and stress (fragments kept beside their sources) ---------------
-include tests/fuzz/fuzz.mk
-include tests/stress/stress.mk
