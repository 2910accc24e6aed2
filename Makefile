# libp2p.h - build, test, demo.  `make test` runs everything CI needs and ends with
# one line "N passed, N failed".
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra
LP2P_NO_HOST ?= 1
LIBS     = -lsodium -lbearssl -lprotobuf-nanopb -lpthread
SRC      = $(wildcard src/*.h src/*.c src/proto/*.h src/proto/*.c) amalgamate LICENSE
UNIT     = $(patsubst tests/unit/%.c,build/unit/%,$(wildcard tests/unit/test_*.c))

.PHONY: all test unit clean demo check-amalgamation interop peers proto
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

test: libp2p.h $(UNIT)
	@tests/run $(UNIT)

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
