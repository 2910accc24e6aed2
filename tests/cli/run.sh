#!/usr/bin/env bash
# tests/cli/run.sh - build/bin/lp2p end to end on 127.0.0.1: id, ping, identify (and a wrong
# /p2p/ ID), and a DHT of three `lp2p dht serve` nodes used by one-shot put/get, provide/
# find-providers, find-peer and closest commands. Prints "RESULT <passed> <failed>".
cd "$(dirname "$0")/../.." || exit 1
LP2P=build/bin/lp2p
pass=0; fail=0; pids=()
ok()  { pass=$((pass+1)); echo "ok   $*" >&2; }
bad() { fail=$((fail+1)); echo "FAIL $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
tmp=$(mktemp -d); trap cleanup EXIT
[ -x $LP2P ] || { echo "cli: $LP2P not built" >&2; echo "RESULT 0 1"; exit 1; }

# id
out=$($LP2P id --seed 0101010101010101010101010101010101010101010101010101010101010101)
check "id with a seed is deterministic" grep -q '"peerId":"12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"' <<<"$out"
check "id without a seed is fresh" test "$($LP2P id | cut -c1-40)" != "$($LP2P id | cut -c1-40)"

# three DHT servers; the first is the others' bootstrap peer
serve() { # name, extra args...
  local name=$1; shift
  $LP2P dht serve --timeout 60 --namespace app "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q '"ready"' "$tmp/$name.out" 2>/dev/null && break; sleep 0.1; done
  grep -o '"listenAddrs":\["[^"]*' "$tmp/$name.out" | sed 's/.*\["//'
}
a1=$(serve s1); a2=$(serve s2 --bootstrap "$a1"); a3=$(serve s3 --bootstrap "$a1")
check "serve prints a ready line with /p2p/" grep -q '"event":"ready","peerId":"12D3KooW' "$tmp/s1.out"
check "three servers up" test -n "$a1" -a -n "$a2" -a -n "$a3"
sleep 1
C=(--bootstrap "$a2" --namespace app --timeout 20)

out=$($LP2P dht put /app/greeting hello-dht "${C[@]}")
check "dht put reaches peers" grep -Eq '"event":"put","key":"/app/greeting","peers":[1-9]' <<<"$out"
out=$($LP2P dht get /app/greeting --bootstrap "$a3" --namespace app --timeout 20)
check "dht get returns the value" grep -q '"event":"value","key":"/app/greeting","value":"hello-dht"' <<<"$out"
$LP2P dht get /app/missing "${C[@]}" >/dev/null 2>&1
check "dht get of a missing key fails" test $? -eq 1
$LP2P dht put /other/x y "${C[@]}" >/dev/null 2>&1
check "dht put without a validator for the namespace fails" test $? -eq 1

cid=bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy
seed=0202020202020202020202020202020202020202020202020202020202020202
pid=$($LP2P id --seed $seed | sed 's/.*"peerId":"\([^"]*\)".*/\1/')
# provide is one-shot: the record names a node that has exited, find-providers still returns it
out=$($LP2P dht provide $cid --seed $seed "${C[@]}")
check "dht provide reaches peers" grep -Eq '"event":"provide","cid":"'$cid'","peers":[1-9]' <<<"$out"
out=$($LP2P dht find-providers $cid --bootstrap "$a1" --timeout 20)
check "dht find-providers finds it" grep -q '"event":"provider","peerId":"'"$pid"'"' <<<"$out"

s3id=$(sed -n 's/.*"peerId":"\([^"]*\)".*/\1/p' "$tmp/s3.out" | head -1)
out=$($LP2P dht find-peer "$s3id" --bootstrap "$a2" --timeout 20)
check "dht find-peer returns addresses" grep -q '"event":"peer","peerId":"'"$s3id"'","addrs":\["/ip4/127.0.0.1/tcp/' <<<"$out"
out=$($LP2P dht closest some-key --bootstrap "$a1" --timeout 20)
check "dht closest lists the three servers" test "$(grep -c '"event":"closest"' <<<"$out")" -eq 3

# ping and identify against a server; a wrong /p2p/ ID is an error
out=$($LP2P ping "$a1" --count 3 --timeout 10)
check "ping prints RTTs" test "$(grep -c '"event":"ping"' <<<"$out")" -eq 3
wrong="${a1%/p2p/*}/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
$LP2P ping "$wrong" --count 1 --timeout 10 >"$tmp/wrong.out" 2>/dev/null
rc=$?
check "ping with a wrong /p2p/ ID exits non-zero" test $rc -ne 0
check "... and says why" grep -q '"event":"error"' "$tmp/wrong.out"
out=$($LP2P identify "$a1" --timeout 10)
check "identify shows the kad protocol" grep -q '"/ipfs/kad/1.0.0"' <<<"$out"
check "identify shows agent and observed address" grep -q '"agentVersion":"libp2p.h/.*"observedAddr":"/ip4/127.0.0.1/tcp/' <<<"$out"
# a client (the default for one-shot commands) does not advertise the protocol
$LP2P dht serve --kad-mode client --timeout 15 >"$tmp/c.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q '"ready"' "$tmp/c.out" 2>/dev/null && break; sleep 0.1; done
ca=$(grep -o '"listenAddrs":\["[^"]*' "$tmp/c.out" | sed 's/.*\["//')
out=$($LP2P identify "$ca" --timeout 10)
check "a client-mode node does not advertise /ipfs/kad/1.0.0" bash -c '! grep -q "/ipfs/kad/1.0.0" <<<"$0"' "$out"
echo "RESULT $pass $fail"
[ $fail -eq 0 ]
