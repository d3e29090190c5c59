#!/usr/bin/env bash
# abi.sh - check the ABI of libtacozip.so against the recorded baselines.
#
#   scripts/abi.sh                 build the shared library with debug info
#                                  (build-abi/) and compare it with abidiff:
#     * abi/libtacozip-1.0.0.abi   only the original package's nine functions
#                                  (abi/only-1.0.0-functions.suppr): 1.1 breaks
#                                  the rest on purpose
#     * abi/libtacozip-1.1.0.abi   everything (skipped, saying so, while that
#                                  baseline does not exist)
#   scripts/abi.sh --update FILE   write a new baseline FILE from the current
#                                  build (e.g. abi/libtacozip-1.1.0.abi at the
#                                  1.1.0 release)
#
# Exits 1 when abidiff reports a change (incompatible or not) or fails.
# Needs abigail-tools (scripts/setup.sh).  Environment: ABI_BUILD_DIR, JOBS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ABI_BUILD_DIR:-$ROOT/build-abi}
update=""
case "${1:-}" in
  "") ;;
  --update) update=${2:?"abi.sh: --update needs a file name"} ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "abi.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
for t in abidw abidiff; do
  command -v "$t" >/dev/null || { echo "abi.sh: $t missing (apt-get install abigail-tools)" >&2; exit 1; }
done

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DTACOZIP_BUILD_STATIC=OFF -DTACOZIP_BUILD_CLI=OFF \
  -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target tacozip >/dev/null
LIB=$(readlink -f "$BUILD/libtacozip.so")
echo "abi.sh: $LIB"

if [ -n "$update" ]; then
  abidw --headers-dir "$ROOT/include" --out-file "$update" "$LIB"
  echo "abi.sh: wrote $update"
  exit 0
fi

status=0
compare() {  # compare NAME BASELINE [abidiff options...]
  local name=$1 base=$2 rc=0; shift 2
  echo "abi.sh: against $name ($(basename "$base"))"
  abidiff --no-added-syms --hd2 "$ROOT/include" "$@" "$base" "$LIB" || rc=$?
  if [ $rc = 0 ]; then
    echo "abi.sh: $name: no ABI change"
  else
    # abidiff's status is a bit set: 1 error, 2 usage, 4 change, 8 incompatible change
    echo "abi.sh: $name: ABI CHANGED OR CHECK FAILED (abidiff status $rc:$( ((rc & 1)) && echo ' error')$( \
         ((rc & 4)) && echo ' change')$( ((rc & 8)) && echo ' incompatible'))" >&2
    status=1
  fi
}
compare "1.0.0, the original nine functions" "$ROOT/abi/libtacozip-1.0.0.abi" \
  --suppressions "$ROOT/abi/only-1.0.0-functions.suppr"
if [ -f "$ROOT/abi/libtacozip-1.1.0.abi" ]; then
  compare "1.1.0, every function" "$ROOT/abi/libtacozip-1.1.0.abi"
else
  echo "abi.sh: SKIPPED the comparison with 1.1.0: abi/libtacozip-1.1.0.abi does not exist yet" \
       "(write it at the release: scripts/abi.sh --update abi/libtacozip-1.1.0.abi)"
fi
exit $status
