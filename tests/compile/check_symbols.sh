#!/usr/bin/env bash
# tests/compile/check_symbols.sh OBJ... - every global symbol an object file defines must start
# with lp2p_ (the library's only public prefix; private names are static in the amalgamation).
# Prints the offenders and exits 1 if there are any. Build the object from the implementation
# alone, e.g.:  printf '#define LIBP2P_IMPLEMENTATION\n#include "libp2p.h"\n' | cc -x c -I. -c - -o lib.o
status=0
for obj in "$@"; do
  bad=$(nm -g --defined-only "$obj" | awk 'NF >= 3 {print $3}' | grep -v '^lp2p_' | sort -u)
  total=$(nm -g --defined-only "$obj" | awk 'NF >= 3' | wc -l)
  if [ -n "$bad" ]; then
    echo "$obj: global symbols without the lp2p_ prefix:" >&2
    printf '  %s\n' $bad >&2
    status=1
  else
    echo "$obj: all $total exported symbols start with lp2p_"
  fi
done
exit $status
