# libFuzzer harness (tests/fuzz/fuzz_ops.c), included by the Makefile.
#
#   make test-fuzz        replay tests/fuzz/corpus, then FUZZ_FAST_SECONDS of
#                         mutation from it (the tier of make test)
#   make stress-fuzz      FUZZ_SECONDS of mutation; new inputs go to
#                         build/fuzz/stress-corpus, the figure to
#                         build/stress/fuzz.txt
#   make fuzz-corpus-min  re-minimise tests/fuzz/corpus with -merge=1, folding
#                         in the inputs of FUZZ_MERGE_FROM (directories) if set
#
# The library has a build of its own here, with ASan, UBSan and libFuzzer's
# coverage, so that the fuzzer is guided by urt's branches, not only the
# harness's, and the sanitizers see urt's own accesses.  A crash, leak or
# timeout leaves its input in build/fuzz/crashes/; FUZZ_OPS_TRACE=1
# build/fuzz/fuzz_ops INPUT shows what it does.  Two cores: the fuzzer runs
# one process, no -jobs.

FUZZ_CC ?= clang
FUZZ_TIER ?= ?/?
FUZZ_SECONDS ?= 300
FUZZ_FAST_SECONDS ?= 30
FUZZ_MERGE_FROM ?=

FUZZ_CFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 -g
FUZZ_OBJS := $(patsubst build/obj/%,build/fuzz/obj/%,$(LIB_OBJS))
FUZZ_BIN := build/fuzz/fuzz_ops
FUZZ_CORPUS := tests/fuzz/corpus
# -timeout: an input runs in milliseconds and the harness gives up on its
# tasks within seconds; one still running after 20 s hangs.  -max_len: 1 KiB
# is a program of some hundreds of ops, more than a few milliseconds hold.
FUZZ_OPTS = -timeout=20 -max_len=1024 -rss_limit_mb=4096 -detect_leaks=1 \
            -artifact_prefix=build/fuzz/crashes/ -print_final_stats=1
# The fuzzer's output is kept here; the tiers print their summary lines.
FUZZ_LOG := build/fuzz/log

.PHONY: test-fuzz stress-fuzz fuzz-corpus-min

build/fuzz/obj/.cmd: FORCE
	@mkdir -p $(@D)
	@echo '$(FUZZ_CC) $(FUZZ_CFLAGS) $(LIB_FLAGS)' | cmp -s - $@ || echo '$(FUZZ_CC) $(FUZZ_CFLAGS) $(LIB_FLAGS)' >$@

build/fuzz/obj/%.o: src/%.c build/fuzz/obj/.cmd
	$(call say,CC,$@)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(LIB_FLAGS) -MMD -MP -c -o $@ $<

build/fuzz/obj/%.o: src/%.S build/fuzz/obj/.cmd
	$(call say,AS,$@)$(FUZZ_CC) $(FUZZ_CFLAGS) $(LIB_FLAGS) -MMD -MP -c -o $@ $<

# The harness sees the public header only, as a user program does.
build/fuzz/fuzz_ops.o: tests/fuzz/fuzz_ops.c build/fuzz/obj/.cmd
	@mkdir -p $(@D)
	$(call say,CC,$@)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(EXAMPLE_FLAGS) -MMD -MP -c -o $@ $<

# -z now: the dynamic linker's first-call lookups would otherwise run on
# the tasks' small stacks (urt.h, URT_STACK_MIN).
$(FUZZ_BIN): build/fuzz/fuzz_ops.o $(FUZZ_OBJS)
	@rm -f $@
	$(call say,LD,$@)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Wl,-z,now $(LDFLAGS) -o $@ $^ \
		$(URING_LIBS) -lpthread

# fuzz_summary LOG: sets the shell's execs (libFuzzer's final count) and
# crash (the input it wrote for a crash, leak or timeout, if any).
define fuzz_summary
	execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(1) | tail -n 1); \
	crash=$$(sed -n 's/.*Test unit written to \(.*\)/\1/p' $(1) | tail -n 1)
endef

test-fuzz:
	@echo '==== tier $(FUZZ_TIER) fuzz: libFuzzer on urt (ASan+UBSan): $(FUZZ_CORPUS) replayed, then $(FUZZ_FAST_SECONDS) s of mutation'
	@$(MAKE) $(SUB) $(FUZZ_BIN)
	@mkdir -p build/fuzz/crashes && rm -rf build/fuzz/fast-corpus && mkdir -p build/fuzz/fast-corpus
	@files=$$(ls $(FUZZ_CORPUS) | wc -l); \
	if ! $(FUZZ_BIN) $(FUZZ_OPTS) $(FUZZ_CORPUS)/* >$(FUZZ_LOG).replay 2>&1; then \
		tail -n 40 $(FUZZ_LOG).replay; \
		echo "fuzz: replay of $(FUZZ_CORPUS) failed (log: $(FUZZ_LOG).replay)"; exit 1; fi; \
	replayed=$$(grep -c '^Executed ' $(FUZZ_LOG).replay); \
	echo "  ok    $$replayed of $$files corpus inputs replayed"; \
	st=0; $(FUZZ_BIN) $(FUZZ_OPTS) -max_total_time=$(FUZZ_FAST_SECONDS) \
		build/fuzz/fast-corpus $(FUZZ_CORPUS) >$(FUZZ_LOG).fast 2>&1 || st=$$?; \
	$(call fuzz_summary,$(FUZZ_LOG).fast); \
	execs=$$(($${execs:-0} + replayed)); \
	if [ $$st != 0 ]; then tail -n 60 $(FUZZ_LOG).fast; \
		echo "fuzz: $$execs executions, 1 crash: $${crash:-see $(FUZZ_LOG).fast}"; exit 1; fi; \
	echo "  ok    $$(ls build/fuzz/fast-corpus | wc -l) new inputs in build/fuzz/fast-corpus (not kept)"; \
	echo "fuzz: $$execs executions, 0 crashes"

stress-fuzz:
	@echo '==== stress fuzz: $(FUZZ_SECONDS) s of libFuzzer mutation, new inputs in build/fuzz/stress-corpus'
	@$(MAKE) $(SUB) $(FUZZ_BIN)
	@mkdir -p build/fuzz/crashes build/fuzz/stress-corpus build/stress
	@t0=$$(date +%s); st=0; \
	$(FUZZ_BIN) $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) \
		build/fuzz/stress-corpus $(FUZZ_CORPUS) >$(FUZZ_LOG).stress 2>&1 || st=$$?; \
	secs=$$(($$(date +%s) - t0)); \
	$(call fuzz_summary,$(FUZZ_LOG).stress); \
	if [ $$st != 0 ]; then tail -n 60 $(FUZZ_LOG).stress; \
		line="figure: fuzz: $${execs:-0} executions in $$secs s, 1 crash: $${crash:-see $(FUZZ_LOG).stress}"; \
	else line="figure: fuzz: $${execs:-0} executions in $$secs s, 0 crashes"; fi; \
	echo "$$line" >build/stress/fuzz.txt; echo "$$line"; \
	echo "  (new inputs: build/fuzz/stress-corpus; make fuzz-corpus-min FUZZ_MERGE_FROM=build/fuzz/stress-corpus keeps the useful ones)"; \
	exit $$st

# -merge=1 keeps the smallest set of inputs with the coverage of them all;
# the repo's corpus is replaced by it only once the merge succeeded.  The
# inputs of bugs found, known-bug-* (open; see fuzz_ops.c's header) and
# fixed-bug-* (regression inputs), stay whatever their coverage, under
# their names.
fuzz-corpus-min:
	@$(MAKE) $(SUB) $(FUZZ_BIN)
	@rm -rf build/fuzz/min && mkdir -p build/fuzz/min build/fuzz/crashes
	@before=$$(ls $(FUZZ_CORPUS) | wc -l); \
	$(FUZZ_BIN) $(FUZZ_OPTS) -merge=1 build/fuzz/min $(FUZZ_CORPUS) $(FUZZ_MERGE_FROM) \
		>$(FUZZ_LOG).merge 2>&1 || { tail -n 40 $(FUZZ_LOG).merge; echo "fuzz-corpus-min: merge failed"; exit 1; }; \
	[ -n "$$(ls build/fuzz/min)" ] || { echo "fuzz-corpus-min: empty result, corpus left alone"; exit 1; }; \
	for f in $(FUZZ_CORPUS)/known-bug-* $(FUZZ_CORPUS)/fixed-bug-*; do [ -f "$$f" ] || continue; \
		rm -f build/fuzz/min/$$(sha1sum <"$$f" | cut -d' ' -f1); cp "$$f" build/fuzz/min/; done; \
	rm -f $(FUZZ_CORPUS)/* && cp build/fuzz/min/* $(FUZZ_CORPUS)/; \
	echo "fuzz-corpus-min: $$before inputs -> $$(ls $(FUZZ_CORPUS) | wc -l), $$(du -sb $(FUZZ_CORPUS) | cut -f1) bytes"

-include $(wildcard build/fuzz/obj/*.d build/fuzz/*.d)
