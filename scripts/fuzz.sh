#!/usr/bin/env bash
# scripts/fuzz.sh - build every tests/fuzz/fuzz_*.c with clang -fsanitize=fuzzer,address and run
# each for FUZZ_SECONDS (default 10), then print one summary line per target.
# Each target (fuzz_<name>.c) reads its committed seeds from tests/fuzz/corpus/<name>/ (created if
# missing; an older tests/fuzz/corpus_<name>/ is read too) and
# writes what it discovers to build/fuzz/corpus/<name>/, so a run leaves the checkout clean;
# FUZZ_MERGE=1 folds the new inputs into the committed corpus (libFuzzer -merge=1, minimised).
# Crashes land in build/fuzz/artifacts/<name>/. Exit 1 if any target failed to build or crashed.
# A target defines LLVMFuzzerTestOneInput and includes libp2p.h with LIBP2P_IMPLEMENTATION.
cd "$(dirname "$0")/.." || exit 1
secs=${FUZZ_SECONDS:-10}
CC=${FUZZ_CC:-clang}
LIBS="-lsodium -lbearssl -lprotobuf-nanopb -lpthread"
shopt -s nullglob
targets=(tests/fuzz/fuzz_*.c)
if [ ${#targets[@]} -eq 0 ]; then echo "fuzz: no tests/fuzz/fuzz_*.c yet"; exit 0; fi
mkdir -p build/fuzz
summary=(); bad=0
for src in "${targets[@]}"; do
  name=$(basename "$src" .c); short=${name#fuzz_}
  bin=build/fuzz/$name seeds=tests/fuzz/corpus/$short work=build/fuzz/corpus/$short art=build/fuzz/artifacts/$short/
  mkdir -p "$seeds" "$work" "$art"
  extra=(); [ -d "tests/fuzz/corpus_$short" ] && extra=("tests/fuzz/corpus_$short")
  if ! $CC -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
       -I. -o "$bin" "$src" $LIBS 2>"build/fuzz/$name.build.log"; then
    summary+=("$(printf '%-28s BUILD FAILED (build/fuzz/%s.build.log)' "$name" "$name")"); bad=1; continue
  fi
  log=build/fuzz/$name.log
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$art" "$work" "$seeds" "${extra[@]}" >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+')
  new=$(find "$work" -type f | wc -l)
  if [ $rc -eq 0 ]; then status=ok; else status="CRASH (exit $rc, see $log and $art)"; bad=1; fi
  summary+=("$(printf '%-28s %s: %s runs in %ss, coverage %s, %s inputs in corpus' "$name" "$status" \
            "${runs:-?}" "$secs" "${cov:-?}" "$(( new + $(find "$seeds" "${extra[@]}" -type f | wc -l) ))")")
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ $rc -eq 0 ]; then
    "$bin" -merge=1 "$seeds" "$work" >>"$log" 2>&1 && echo "fuzz: merged new inputs into $seeds"
  fi
done
echo "fuzz summary (FUZZ_SECONDS=$secs):"
printf '  %s\n' "${summary[@]}"
okn=$(printf '%s\n' "${summary[@]}" | grep -c ' ok: ')
echo "RESULT $okn $(( ${#summary[@]} - okn ))"
exit $bad
