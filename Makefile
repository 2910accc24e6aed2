# libp2p.h - build, test, demo.  `make test` runs everything CI needs and ends with
# one line "N passed, N failed".
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra
LIBS     = -lsodium -lbearssl -lprotobuf-nanopb -lpthread
SRC      = $(wildcard src/*.h src/*.c src/proto/*.h src/proto/*.c) amalgamate LICENSE
UNIT     = $(patsubst tests/unit/%.c,build/unit/%,$(wildcard tests/unit/test_*.c))
HOST     = $(patsubst tests/host/%.c,build/host/%,$(wildcard tests/host/test_*.c))
INTEROP  = build/interop/test_interop build/interop/test_perf build/interop/test_kad build/interop/test_gossipsub \
           build/interop/test_relay
ASAN     = $(patsubst build/%,build/asan/%,$(UNIT) $(HOST) $(INTEROP))
SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
EXAMPLES = build/bin/echo build/bin/chat build/bin/game_loop build/bin/ping build/bin/demo build/bin/pubsub_chat \
           build/bin/nat_chat
CLI      = build/bin/lp2p
FUZZ_SECONDS ?= 10
# `make test`: unit, host and interop tests; the same unit and host tests under ASan+UBSan; the
# compile test; the transport-interop harness; every fuzz target for FUZZ_SECONDS. Each prints
# RESULT lines that tests/run sums into the final line.
TEST_SCRIPTS = tests/compile/compile-test.sh tests/transport-interop/run.sh tests/cli/run.sh tests/netns/bed.sh \
               scripts/fuzz.sh
.PHONY: all test unit clean demo check-amalgamation interop peers proto examples compile-test sanitize fuzz \
        interop-transport netns-test bench bench-bin
all: libp2p.h $(UNIT) $(HOST) $(INTEROP) $(EXAMPLES) $(CLI) build/bin/lp2p-perf

libp2p.h: $(SRC)
	./amalgamate

build/unit/%: tests/unit/%.c libp2p.h tests/test.h $(wildcard tests/unit/*.h) tests/unit/test_runtime.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

build/host/%: tests/host/%.c libp2p.h tests/test.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

build/interop/%: tests/interop/%.c libp2p.h tests/test.h $(wildcard tests/interop/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

unit: $(UNIT)

# interop peers (go, rust, js) are built by scripts/install-peers.sh, cached outside the checkout
peers:
	bash scripts/install-peers.sh all

interop: $(INTEROP) build/bin/lp2p-perf
	@tests/run $(INTEROP)

test: libp2p.h $(UNIT) $(HOST) $(INTEROP) $(ASAN) $(EXAMPLES) $(CLI) build/bin/lp2p-transport-interop build/bin/lp2p-perf \
      build/bin/lp2p-nat-peer build/bin/hole-punch-client
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run $(UNIT) $(HOST) $(INTEROP) $(ASAN) $(TEST_SCRIPTS)

build/bin/%: examples/%.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS) -lm

# our host in the interop peers' "nat" roles, for the NAT test bed (tests/netns/)
build/bin/lp2p-nat-peer: tests/netns/nat_peer.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

# the command-line tool: one binary, a file per subcommand group in cli/
$(CLI): $(wildcard cli/*.c cli/*.h) libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $(wildcard cli/*.c) $(LIBS)

# the libp2p/test-plans hole-punch-interop client (tests/hole-punch/main.c), run on the NAT bed
build/bin/hole-punch-client: tests/hole-punch/main.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS) -lhiredis

build/bin/lp2p-transport-interop: tests/transport-interop/main.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS) -lhiredis

# the libp2p/test-plans perf application (tests/perf/main.c): --run-server, or a client
build/bin/lp2p-perf: tests/perf/main.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

examples: $(EXAMPLES)

# installs missing packages (Debian/Ubuntu), builds build/bin/demo and runs it
demo:
	@bash scripts/demo.sh

# the header in C99/C11/C++17 TUs linked together, -Werror, exported symbols all lp2p_*
compile-test: libp2p.h
	@tests/run tests/compile/compile-test.sh

# the unit, host and interop tests again with ASan + UBSan
build/asan/unit/%: tests/unit/%.c libp2p.h tests/test.h $(wildcard tests/unit/*.h) tests/unit/test_runtime.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g $(SANITIZE) $(WARN) -I. -o $@ $< $(LIBS)

build/asan/host/%: tests/host/%.c libp2p.h tests/test.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g $(SANITIZE) $(WARN) -I. -o $@ $< $(LIBS)

build/asan/interop/%: tests/interop/%.c libp2p.h tests/test.h $(wildcard tests/interop/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g $(SANITIZE) $(WARN) -I. -o $@ $< $(LIBS)

sanitize: $(ASAN)
	@tests/run $(ASAN)

# every tests/fuzz/fuzz_*.c for FUZZ_SECONDS each (clang -fsanitize=fuzzer,address)
fuzz: libp2p.h
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# the NAT test bed (root): namespaces, two NAT routers, hole punching between ours/go/rust/js
# peers; NETNS_ATTEMPTS=20 for the success-rate numbers (make test uses 3)
netns-test: build/bin/lp2p-nat-peer build/bin/hole-punch-client $(CLI)
	@tests/run tests/netns/bed.sh

# the test-plans transport-interop application through a local redis-server: ours <-> ours, and
# ours <-> go/js peers (both roles) when scripts/install-peers.sh has built them
interop-transport: build/bin/lp2p-transport-interop
	@tests/run tests/transport-interop/run.sh

# regenerate src/proto/*.pb.{c,h} from the .proto/.options files (nanopb 0.4.7; the generator
# needs python3-protobuf, hence Debian's /usr/bin/python3)
NANOPB_GEN ?= /usr/bin/python3 /usr/bin/nanopb_generator.py
PROTOS = keys noise envelope peer_record identify kad pubsub circuit dcutr autonat
proto:
	cd src/proto && $(NANOPB_GEN) -T -q -I . $(PROTOS:=.proto)

# benchmarks (not part of `make test`): bench/run measures libp2p.h next to the go, rust and js peers
# and writes bench/results/<date>.{md,json,png}; BENCH_QUICK=1 for a ~3-minute run
BENCH_BIN = build/bench/lp2p-bench build/bench/ceilings build/bench/delay_proxy build/bench/coro_switch
bench-bin: libp2p.h $(BENCH_BIN)

bench: bench-bin
	@bench/run

build/bench/lp2p-bench: bench/lp2p_bench.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

build/bench/coro_switch: bench/coro_switch.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

build/bench/ceilings: bench/ceilings.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -o $@ $< -lsodium

build/bench/delay_proxy: bench/delay_proxy.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -o $@ $< -lpthread

check-amalgamation:
	./amalgamate --check

clean:
	rm -rf build

# bench programs (measure; never part of make test)
build/bench/%: bench/%.c libp2p.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g $(WARN) -I. -o $@ $< $(LIBS)
