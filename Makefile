# libp2p.h - build, test, demo.  `make test` runs everything CI needs and ends with
# one line "N passed, N failed".
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra
LP2P_NO_HOST ?= 1
LIBS     = -lsodium -lbearssl -lprotobuf-nanopb -lpthread
SRC      = $(wildcard src/*.h src/*.c src/proto/*.h src/proto/*.c) amalgamate LICENSE
UNIT     = $(patsubst tests/unit/%.c,build/unit/%,$(wildcard tests/unit/test_*.c))
ASAN_UNIT = $(patsubst tests/unit/%.c,build/asan/%,$(wildcard tests/unit/test_*.c))
SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
EXAMPLES = build/bin/echo build/bin/chat build/bin/game_loop build/bin/ping
FUZZ_SECONDS ?= 10
# with the whole stack in libp2p.h (LP2P_NO_HOST empty) `make test` also runs the compile test
# and the transport-interop harness (scripts that print RESULT lines, counted by tests/run)
ifeq ($(LP2P_NO_HOST),)
TEST_SCRIPTS = tests/compile/compile-test.sh tests/transport-interop/run.sh
TEST_DEPS    = build/bin/lp2p-transport-interop
endif

.PHONY: all test unit clean demo check-amalgamation interop peers proto examples compile-test sanitize fuzz \
        interop-transport need-host
all: libp2p.h $(UNIT)

libp2p.h: $(SRC)
	LP2P_NO_HOST=$(LP2P_NO_HOST) ./amalgamate

build/unit/%: tests/unit/%.c libp2p.h tests/test.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

build/interop/test_interop: tests/interop/test_interop.c libp2p.h tests/test.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS)

unit: $(UNIT)

# interop peers (go, rust, js) are built by scripts/install-peers.sh, cached outside the checkout
peers:
	bash scripts/install-peers.sh all

interop: build/interop/test_interop
	@tests/run build/interop/test_interop

test: libp2p.h $(UNIT) $(TEST_DEPS)
	@tests/run $(UNIT) $(TEST_SCRIPTS)

# programs that need the host in libp2p.h
need-host: libp2p.h
	@grep -q 'begin src/host.c' libp2p.h || { echo "libp2p.h was built without the host \
	(LP2P_NO_HOST=1): run make LP2P_NO_HOST= $(MAKECMDGOALS)" >&2; exit 1; }

build/bin/%: examples/%.c libp2p.h | need-host
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS) -lm

build/bin/lp2p-transport-interop: tests/transport-interop/main.c libp2p.h | need-host
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(CFLAGS) $(WARN) -I. -o $@ $< $(LIBS) -lhiredis

examples: $(EXAMPLES)

# installs missing packages (Debian/Ubuntu), builds build/bin/demo and runs it
demo:
	@bash scripts/demo.sh

# the header in C99/C11/C++17 TUs linked together, -Werror, exported symbols all lp2p_*
compile-test: libp2p.h
	@tests/run tests/compile/compile-test.sh

# the unit tests again with ASan + UBSan
build/asan/%: tests/unit/%.c libp2p.h tests/test.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g $(SANITIZE) $(WARN) -I. -o $@ $< $(LIBS)

sanitize: $(ASAN_UNIT)
	@tests/run $(ASAN_UNIT)

# every tests/fuzz/fuzz_*.c for FUZZ_SECONDS each (clang -fsanitize=fuzzer,address)
fuzz: libp2p.h
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# the test-plans transport-interop application, ours <-> ours through a local redis-server
interop-transport: build/bin/lp2p-transport-interop
	@tests/run tests/transport-interop/run.sh

# regenerate src/proto/*.pb.{c,h} from the .proto/.options files (nanopb 0.4.7; the generator
# needs python3-protobuf, hence Debian's /usr/bin/python3)
NANOPB_GEN ?= /usr/bin/python3 /usr/bin/nanopb_generator.py
PROTOS = keys noise envelope peer_record identify
proto:
	cd src/proto && $(NANOPB_GEN) -T -q -I . $(PROTOS:=.proto)

check-amalgamation:
	./amalgamate --check

clean:
	rm -rf build
