# tests/stress/stress.mk - the load parts of the stress tier, included by the
# Makefile (after its variables and rules: it uses EXAMPLE_FLAGS, the ASan
# flags and the rules of build/liburt.a, the echo server and the client).
#
#   make stress-soak      tests/stress/soak.sh: the echo server holds 10,000
#                         connections for SOAK_SECONDS (300), every byte
#                         checked, RSS and fds flat from minute one
#   make stress-tasks     1,000,000 sleeping tasks on 16 KiB stacks, all
#                         cancelled: peak RSS per task, everything freed
#   make stress-overflow  100 storms of 1,000 tasks, one overflowing its
#                         stack in each: killed by SIGSEGV, naming it
#   make test-stress      the three with STRESS_QUICK=1 (1,000 connections
#                         for 15 s, 100,000 tasks, 10 storms): make test's
#                         fast tier
#   make stress-tasks-asan   the task program under ASan+LSan, 20,000 tasks
#
# Each part writes what it printed to build/stress/<soak|tasks|overflow>.txt,
# with a "figure: ..." line when it passed (scripts/stress.sh collects them),
# and fails when a check does.

STRESS_DIR := build/stress
STRESS_BINS := $(STRESS_DIR)/million_tasks $(STRESS_DIR)/overflow_storm
STRESS_QUICK ?=
STRESS_TIER ?= ?/?
stress_quick_or = $(if $(filter 1,$(STRESS_QUICK)),$(1),$(2))
STRESS_TASKS ?= $(call stress_quick_or,100000,1000000)
STRESS_STORM_RUNS ?= $(call stress_quick_or,10,100)
STRESS_STORM_TASKS ?= 1000
STRESS_ASAN_TASKS ?= 20000

.PHONY: stress-build stress-soak stress-tasks stress-overflow stress-tasks-asan test-stress

stress-build: $(STRESS_BINS) build/examples/echo_server $(ECHO_CLIENT)

# User programs, built as the examples are: the public header only.
$(STRESS_DIR)/%: tests/stress/%.c build/liburt.a
	@mkdir -p $(@D) && rm -f $@
	$(call say,CC,$@)$(CC) $(CFLAGS) $(EXAMPLE_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/liburt.a $(EXAMPLE_LIBS)

build/asan/stress/%: tests/stress/%.c build/asan/liburt.a
	@mkdir -p $(@D) && rm -f $@
	$(call say,CC,$@)$(ASAN_CC) $(ASAN_CFLAGS) $(EXAMPLE_FLAGS) -MMD -MP $(LDFLAGS) -o $@ $< build/asan/liburt.a $(EXAMPLE_LIBS)

# bash for PIPESTATUS: the output goes to the terminal and the .txt, the
# status is the program's, not tee's.  The .txt goes first so that a part
# that fails to build leaves no figure of an earlier run behind.
stress-soak stress-tasks stress-overflow stress-tasks-asan: SHELL := /bin/bash

stress-soak: build/examples/echo_server $(ECHO_CLIENT)
	@mkdir -p $(STRESS_DIR) && rm -f $(STRESS_DIR)/soak.txt
	@STRESS_QUICK=$(STRESS_QUICK) tests/stress/soak.sh 2>&1 | tee $(STRESS_DIR)/soak.txt; \
		exit $${PIPESTATUS[0]}

stress-tasks: $(STRESS_DIR)/million_tasks
	@mkdir -p $(STRESS_DIR) && rm -f $(STRESS_DIR)/tasks.txt
	@$< -n $(STRESS_TASKS) 2>&1 | tee $(STRESS_DIR)/tasks.txt; exit $${PIPESTATUS[0]}

stress-overflow: $(STRESS_DIR)/overflow_storm
	@mkdir -p $(STRESS_DIR) && rm -f $(STRESS_DIR)/overflow.txt
	@$< -r $(STRESS_STORM_RUNS) -n $(STRESS_STORM_TASKS) 2>&1 | tee $(STRESS_DIR)/overflow.txt; \
		exit $${PIPESTATUS[0]}

# Its figure is not the tier's (ASan's shadow memory is in the RSS), so it
# writes no .txt; LSan at exit is what it adds.
stress-tasks-asan: build/asan/stress/million_tasks
	@$(ASAN_ENV) $< -n $(STRESS_ASAN_TASKS)

# Seconds one quick part may take before it counts as hung (the soak takes
# about 20).
STRESS_QUICK_TIMEOUT ?= 300

test-stress:
	@echo '==== tier $(STRESS_TIER) stress: echo soak (1,000 connections, 15 s), 100,000 sleeping tasks, 10 overflow storms'
	@$(MAKE) $(SUB) -k stress-build || true
	@pass=0; fail=0; for part in soak tasks overflow; do \
		t0=$$(date +%s); \
		timeout $(STRESS_QUICK_TIMEOUT) $(MAKE) --no-print-directory stress-$$part STRESS_QUICK=1 \
			| sed 's/^/  /'; st=$${PIPESTATUS[0]}; \
		t=$$(($$(date +%s) - t0)); \
		if [ $$st = 0 ]; then pass=$$((pass + 1)); echo "ok    stress-$$part ($$t s)"; \
		else fail=$$((fail + 1)); echo "FAIL  stress-$$part ($$t s$$([ $$st = 124 ] && echo ', timed out'))"; fi; \
	done; \
	echo "stress: $$pass passed, $$fail failed"; [ $$fail = 0 ]

test-stress: SHELL := /bin/bash

-include $(wildcard build/stress/*.d build/asan/stress/*.d)
