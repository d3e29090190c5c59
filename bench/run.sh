#!/usr/bin/env bash
# bench/run.sh - build what the benchmark needs and run it.
#
#   bench/run.sh            full run (about 5-8 minutes on 2 cores)
#   bench/run.sh --quick    smoke run: 3 repetitions, smaller data
#   bench/run.sh --clean    remove bench/work (generated data) afterwards
#
# Other options are passed to bench/bench.py (--reps N, --only big,small,...).
# Environment: TACOZIP_BENCH_BUILD (build dir, default build-bench),
# TACOZIP_PEER_VENV (default /tmp/tacozip-peer-venv), PYTHON (python3).
# Prints a Markdown report on stdout; raw results go to bench/work/results.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TACOZIP_BENCH_BUILD:-$ROOT/build-bench}
PEER=${TACOZIP_PEER_VENV:-/tmp/tacozip-peer-venv}
PY=${PYTHON:-python3}
WORK=$ROOT/bench/work
CLEAN=0
ARGS=()
for arg in "$@"; do
  case "$arg" in
    --clean) CLEAN=1 ;;
    *) ARGS+=("$arg") ;;
  esac
done

if [ ! -x "$PEER/bin/python" ] || ! "$PEER/bin/python" -c "import tacozip" 2>/dev/null; then
  echo "bench: PyPI tacozip peer missing, running scripts/setup.sh" >&2
  "$ROOT/scripts/setup.sh" >&2
fi
PEER_SO=$("$PEER/bin/python" -c 'import os, tacozip; print(os.path.join(os.path.dirname(tacozip.__file__), "libtacozip.so"))')
command -v zip >/dev/null || { echo "bench: 'zip' is required (apt-get install zip)" >&2; exit 1; }

echo "bench: building in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target tacozip_cli tacozip_static >/dev/null

# The bench programs link the static library (so that none of our symbols
# can interpose on the dlopen()ed peer library); its CRC library is the one
# CMake chose.
CRC_LIB=$(sed -n 's/^LIBDEFLATE_LIBRARY:FILEPATH=//p' "$BUILD/CMakeCache.txt")
case "$CRC_LIB" in ""|*NOTFOUND) CRC_LIB=-lz ;; esac
BIN=$WORK/bin
mkdir -p "$BIN"
CC=${CC:-cc}
for prog in bench_read_header bench_list; do
  "$CC" -std=c11 -O2 -Wall -Wextra -I"$ROOT/include" "$ROOT/bench/$prog.c" "$BUILD/libtacozip.a" "$CRC_LIB" -ldl \
    -o "$BIN/$prog"
done

"$PY" "$ROOT/bench/bench.py" --tacozip "$BUILD/tacozip" --bindir "$BIN" --peer-python "$PEER/bin/python" \
  --peer-so "$PEER_SO" --work "$WORK" --json "$WORK/results.json" ${ARGS[@]+"${ARGS[@]}"}

if [ "$CLEAN" = 1 ]; then
  echo "bench: removing $WORK" >&2
  rm -rf "$WORK"
fi
