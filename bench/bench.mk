# bench/bench.mk - the benchmark suite's build, included by the Makefile.
# bench/README.md says what each program is; scripts/bench.py runs them.

BENCH_DIR := build/bench
BENCH_C_FLAGS = -std=gnu11 $(WARN) -O2 -g -Iinclude -Ibench $(URING_CFLAGS)
UV_CFLAGS := $(shell pkg-config --cflags libuv 2>/dev/null)
UV_LIBS := $(shell pkg-config --libs libuv 2>/dev/null || echo -luv)
BENCH_PEERS := $(BENCH_DIR)/urt $(BENCH_DIR)/liburing $(BENCH_DIR)/epoll $(BENCH_DIR)/libuv \
               $(BENCH_DIR)/go-peer $(BENCH_DIR)/tokio-peer $(BENCH_DIR)/loadgen
BENCH_HEADERS := bench/common.h bench/hist.h
# QUICK=1: a few seconds of each workload, for the smoke check in make test.
QUICK ?=

.PHONY: bench bench-build

bench: SHELL := /bin/bash
bench:
	@scripts/deps.sh bench
	@$(MAKE) $(SUB) bench-build
	@QUICK=$(QUICK) python3 scripts/bench.py

bench-build: $(BENCH_PEERS)

# urt's program sees the public header only, as a user's would.
$(BENCH_DIR)/urt: bench/urt.c $(BENCH_HEADERS) build/liburt.a
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(BENCH_C_FLAGS) $(LDFLAGS) -o $@ $< build/liburt.a $(URING_LIBS) -lpthread

$(BENCH_DIR)/liburing: bench/liburing.c $(BENCH_HEADERS)
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(BENCH_C_FLAGS) $(LDFLAGS) -o $@ $< $(URING_LIBS)

$(BENCH_DIR)/epoll: bench/epoll.c $(BENCH_HEADERS)
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(BENCH_C_FLAGS) $(LDFLAGS) -o $@ $<

$(BENCH_DIR)/libuv: bench/libuv.c $(BENCH_HEADERS)
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(BENCH_C_FLAGS) $(UV_CFLAGS) $(LDFLAGS) -o $@ $< $(UV_LIBS)

$(BENCH_DIR)/loadgen: bench/loadgen.c $(BENCH_HEADERS)
	@mkdir -p $(@D)
	$(call say,CC,$@)$(CC) $(BENCH_C_FLAGS) $(LDFLAGS) -o $@ $<

# Go and cargo run offline: Go needs nothing outside its standard library,
# and cargo takes Tokio from Debian's crates (bench/tokio/.cargo/config.toml).
# Their caches go under build/ so a clean clone builds the same way.
$(BENCH_DIR)/go-peer: $(wildcard bench/go/*.go bench/go/go.mod)
	@mkdir -p $(@D)
	$(call say,GO,$@)cd bench/go && GOPROXY=off GOFLAGS=-mod=mod GOCACHE=$(CURDIR)/build/go-cache \
		go build -o $(CURDIR)/$@ .

$(BENCH_DIR)/tokio-peer: $(wildcard bench/tokio/src/*.rs bench/tokio/Cargo.toml bench/tokio/.cargo/config.toml)
	@mkdir -p $(@D)
	$(call say,CARGO,$@)cd bench/tokio && CARGO_TARGET_DIR=$(CURDIR)/build/tokio-target \
		cargo build --release --offline -q && cp $(CURDIR)/build/tokio-target/release/tokio-peer $(CURDIR)/$@
