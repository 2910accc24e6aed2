#!/usr/bin/env bash
# tests/transport-interop/run.sh - run build/bin/lp2p-transport-interop the way the
# libp2p/test-plans runners do, ours <-> ours through a private redis-server on 127.0.0.1:
# both roles, both conventions (legacy lowercase + JSON, modern uppercase + YAML), plus the
# failure paths. Prints "ok"/"FAIL" per check and a final "RESULT <passed> <failed>" line
# (tests/run sums these). Everything it starts is bounded and killed by PID.
# Then the same against the go and js reference peers (`peer-X transport-interop`, built by
# scripts/install-peers.sh into ${LP2P_CACHE:-~/.cache/libp2p.h}/bin): both roles, both
# conventions. A missing (or too old) peer is skipped (printed, not counted), under CI=true it is
# a failure.
# Usage: tests/transport-interop/run.sh [path/to/lp2p-transport-interop]
cd "$(dirname "$0")/../.." || exit 1
BIN=${1:-build/bin/lp2p-transport-interop}
pass=0; fail=0; pids=()
tmp=$(mktemp -d)
check() { # check <name> <condition...>
  local name=$1; shift
  if "$@"; then pass=$((pass+1)); echo "ok   $name" >&2; else fail=$((fail+1)); echo "FAIL $name" >&2; fi
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$BIN" ]; then echo "no $BIN (make $BIN)" >&2; echo "RESULT 0 1"; exit 1; fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "redis-server/redis-cli missing (scripts/install-deps.sh)" >&2; echo "RESULT 0 1"; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!; pids+=("$redis_pid")
for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
check "redis-server up on 127.0.0.1:$port" bash -c "redis-cli -p $port ping | grep -q PONG"
REDIS=127.0.0.1:$port

# start_listener <name> env... : run our listener in the background (bounded by its timeout)
start_listener() {
  local name=$1; shift
  env "$@" "$BIN" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  listener_pid=$!; pids+=("$listener_pid")
}
# stop_listener <name>: it must still be serving (not crashed), then it is killed by PID
stop_listener() {
  check "$1: listener still serving after the dialer finished" kill -0 "$listener_pid"
  kill "$listener_pid" 2>/dev/null; wait "$listener_pid" 2>/dev/null
}
show_logs() { for f in "$tmp"/$1*.err; do sed "s|^|    [$(basename "$f")] |" "$f" >&2; done; }

# 1. legacy convention: lowercase env, key listenerAddr, JSON result
L="transport=tcp security=noise muxer=yamux redis_addr=$REDIS test_timeout_seconds=30"
start_listener legacy-listener is_dialer=false ip=127.0.0.1 $L
timeout 60 env is_dialer=true $L "$BIN" >"$tmp/legacy-dialer.out" 2>"$tmp/legacy-dialer.err"; rc=$?
check "legacy: dialer exits 0" test "$rc" -eq 0
check "legacy: dialer prints one JSON object with both keys" \
  grep -Eq '^\{"handshakePlusOneRTTMillis":[0-9]+(\.[0-9]+)?,"pingRTTMilllis":[0-9]+(\.[0-9]+)?\}$' "$tmp/legacy-dialer.out"
check "legacy: stdout holds nothing else" test "$(wc -l <"$tmp/legacy-dialer.out")" -eq 1
stop_listener legacy
[ "$rc" -eq 0 ] || show_logs legacy
sed 's/^/    dialer: /' "$tmp/legacy-dialer.out" >&2

# 2. modern convention: uppercase env, key <TEST_KEY>_listener_multiaddr, YAML result
M="TRANSPORT=tcp SECURE_CHANNEL=noise MUXER=yamux REDIS_ADDR=$REDIS TEST_KEY=5eed1e55 TEST_TIMEOUT_SECS=30 DEBUG=false"
start_listener modern-listener IS_DIALER=false LISTENER_IP=127.0.0.1 $M
timeout 60 env IS_DIALER=true $M "$BIN" >"$tmp/modern-dialer.out" 2>"$tmp/modern-dialer.err"; rc=$?
check "modern: dialer exits 0" test "$rc" -eq 0
check "modern: dialer prints the latency YAML the runner greps" bash -c "
  sed -n 1p '$tmp/modern-dialer.out' | grep -qx 'latency:' &&
  sed -n 2p '$tmp/modern-dialer.out' | grep -Eqx '  handshake_plus_one_rtt: [0-9]+(\.[0-9]+)?' &&
  sed -n 3p '$tmp/modern-dialer.out' | grep -Eqx '  ping_rtt: [0-9]+(\.[0-9]+)?' &&
  sed -n 4p '$tmp/modern-dialer.out' | grep -qx '  unit: ms' && test \$(wc -l <'$tmp/modern-dialer.out') -eq 4"
stop_listener modern
[ "$rc" -eq 0 ] || show_logs modern
sed 's/^/    dialer: /' "$tmp/modern-dialer.out" >&2
check "modern: the key was consumed by the dialer" test "$(redis-cli -p "$port" llen 5eed1e55_listener_multiaddr)" = 0

# 3. a listener on 0.0.0.0 advertises a concrete address (nothing dials it)
start_listener any-listener IS_DIALER=false LISTENER_IP=0.0.0.0 TRANSPORT=tcp SECURE_CHANNEL=noise MUXER=yamux \
  REDIS_ADDR=$REDIS TEST_KEY=0a0a0a0a TEST_TIMEOUT_SECS=30
addr=""
for _ in $(seq 100); do addr=$(redis-cli -p "$port" lindex 0a0a0a0a_listener_multiaddr 0); [ -n "$addr" ] && break; sleep 0.1; done
check "0.0.0.0 listener advertises /ip4/<interface>/tcp/<port>/p2p/<id> ($addr)" bash -c \
  "[[ '$addr' =~ ^/ip4/[0-9.]+/tcp/[0-9]+/p2p/[1-9A-Za-z]+$ && '$addr' != /ip4/0.0.0.0/* ]]"
kill "$listener_pid" 2>/dev/null; wait "$listener_pid" 2>/dev/null

# 4. failure paths: unsupported muxer, no listener within the timeout
timeout 30 env is_dialer=true transport=tcp security=noise muxer=mplex redis_addr=$REDIS "$BIN" \
  >/dev/null 2>"$tmp/mplex.err"; rc=$?
check "unsupported muxer: non-zero exit" test "$rc" -ne 0 -a "$rc" -ne 124
check "unsupported muxer: says so on stderr" grep -q "unsupported muxer 'mplex'" "$tmp/mplex.err"
timeout 30 env is_dialer=true transport=quic-v1 redis_addr=$REDIS "$BIN" >/dev/null 2>"$tmp/quic.err"; rc=$?
check "unsupported transport: non-zero exit with a message" bash -c \
  "test $rc -ne 0 -a $rc -ne 124 && grep -q \"unsupported transport 'quic-v1'\" '$tmp/quic.err'"
timeout 30 env IS_DIALER=true TRANSPORT=tcp SECURE_CHANNEL=noise MUXER=yamux REDIS_ADDR=$REDIS TEST_KEY=deadbeef \
  TEST_TIMEOUT_SECS=1 "$BIN" >"$tmp/lonely.out" 2>/dev/null; rc=$?
check "no listener: dialer fails after its timeout, prints nothing" test "$rc" -ne 0 -a "$rc" -ne 124 -a ! -s "$tmp/lonely.out"

# 5. against the go and js reference peers (tests/interop/{go,js}, `peer-X transport-interop`),
# both roles, both conventions: ours dialer -> peer listener and peer dialer -> ours listener.
# Each case: the listener publishes its address (read back with LINDEX before the dialer
# starts), the dialer exits 0 and its stdout parses, the dialer dialed that address and the
# listener logged "connection from <the dialer's peer id>", the listener is still serving.
PEERS=${LP2P_CACHE:-$HOME/.cache/libp2p.h}/bin
legacy_ok() { python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert set(o) == {"handshakePlusOneRTTMillis", "pingRTTMilllis"}, o
assert all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in o.values()), o
' "$1" 2>/dev/null; }
modern_ok() { python3 -c '
import re, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip() and not l.startswith("#")]
num = r"[0-9]+(\.[0-9]+)?"
pats = ["latency:", "  handshake_plus_one_rtt: " + num, "  ping_rtt: " + num, "  unit: ms"]
assert len(lines) == 4 and all(re.fullmatch(p, l) for p, l in zip(pats, lines)), lines
' "$1" 2>/dev/null; }
# reached <dialer.err> <listener.err> <published addr>: the dialer logged "dialing <addr> from
# <id>" for the published address, and the listener logs "connection from <id>" (within 5 s).
reached() {
  local line id
  line=$(grep -o "dialing [^ ]* from [1-9A-HJ-NP-Za-km-z]*" "$1" | head -n 1)
  id=${line##* from }
  [ -n "$3" ] && [ "$line" = "dialing $3 from $id" ] && [ -n "$id" ] || return 1
  for _ in $(seq 50); do grep -q "connection from $id" "$2" && return 0; sleep 0.1; done
  return 1
}
case_no=0
# cross <name> <convention> <listener cmd> <dialer cmd>   (commands as single words)
cross() {
  local name=$1 conv=$2 lcmd=$3 dcmd=$4 key addr="" rc fp
  case_no=$((case_no + 1))
  fp=case$case_no   # log file prefix
  local common
  if [ "$conv" = modern ]; then
    key=$(printf 'c0ffee%02x' "$case_no")
    common="TRANSPORT=tcp SECURE_CHANNEL=noise MUXER=yamux REDIS_ADDR=$REDIS TEST_KEY=$key TEST_TIMEOUT_SECS=30 LISTENER_IP=127.0.0.1"
    key=${key}_listener_multiaddr
    env IS_DIALER=false $common $lcmd >"$tmp/$fp-listener.out" 2>"$tmp/$fp-listener.err" &
  else
    key=listenerAddr
    redis-cli -p "$port" del "$key" >/dev/null
    common="transport=tcp security=noise muxer=yamux redis_addr=$REDIS test_timeout_seconds=30 ip=127.0.0.1"
    env is_dialer=false $common $lcmd >"$tmp/$fp-listener.out" 2>"$tmp/$fp-listener.err" &
  fi
  listener_pid=$!; pids+=("$listener_pid")
  for _ in $(seq 300); do
    addr=$(redis-cli -p "$port" lindex "$key" 0)
    [ -n "$addr" ] || ! kill -0 "$listener_pid" 2>/dev/null && break
    sleep 0.1
  done
  check "$name: listener published /ip4/127.0.0.1/tcp/<port>/p2p/<id> ($addr)" bash -c \
    "[[ '$addr' =~ ^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/[1-9A-Za-z]+$ ]]"
  if [ -z "$addr" ]; then # no listener: nothing to dial (a peer built before this mode?)
    kill "$listener_pid" 2>/dev/null; wait "$listener_pid" 2>/dev/null
    show_logs "$fp-"; echo "    (an old peer binary? scripts/install-peers.sh rebuilds it)" >&2
    return
  fi
  if [ "$conv" = modern ]; then
    timeout 60 env IS_DIALER=true $common $dcmd >"$tmp/$fp-dialer.out" 2>"$tmp/$fp-dialer.err"; rc=$?
  else
    timeout 60 env is_dialer=true $common $dcmd >"$tmp/$fp-dialer.out" 2>"$tmp/$fp-dialer.err"; rc=$?
  fi
  check "$name: dialer exits 0" test "$rc" -eq 0
  check "$name: dialer output parses ($conv)" ${conv}_ok "$tmp/$fp-dialer.out"
  check "$name: dialer dialed the published address, listener saw the dialer's peer id" \
    reached "$tmp/$fp-dialer.err" "$tmp/$fp-listener.err" "$addr"
  stop_listener "$name"
  check "$name: the dialer consumed the key" test "$(redis-cli -p "$port" llen "$key")" = 0
  if [ "$rc" -ne 0 ] || ! reached "$tmp/$fp-dialer.err" "$tmp/$fp-listener.err" "$addr"; then
    show_logs "$fp-"
  fi
  sed "s/^/    $name dialer: /" "$tmp/$fp-dialer.out" >&2
}
for peer in go js; do
  pbin=$PEERS/peer-$peer
  if [ ! -x "$pbin" ]; then
    if [ "${CI:-}" = true ]; then
      check "$peer: reference peer $pbin present (CI=true)" false
    else
      echo "SKIPPED $peer: run scripts/install-peers.sh $peer" >&2
    fi
    continue
  fi
  # A peer built before it had this mode prints its usage instead of asking for IS_DIALER.
  if ! timeout 30 env -u IS_DIALER -u is_dialer "$pbin" transport-interop 2>&1 | grep -q IS_DIALER; then
    if [ "${CI:-}" = true ]; then
      check "$peer: $pbin has the transport-interop mode (CI=true)" false
    else
      echo "SKIPPED $peer: $pbin has no transport-interop mode: run scripts/install-peers.sh $peer" >&2
    fi
    continue
  fi
  # "peer-X transport-interop" as one word for env: a tiny wrapper script.
  printf '#!/bin/sh\nexec %q transport-interop\n' "$pbin" >"$tmp/peer-$peer-ti"; chmod +x "$tmp/peer-$peer-ti"
  for conv in modern legacy; do
    cross "$conv ours->$peer" "$conv" "$tmp/peer-$peer-ti" "$BIN"
    cross "$conv $peer->ours" "$conv" "$BIN" "$tmp/peer-$peer-ti"
  done
done

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
