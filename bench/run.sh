#!/usr/bin/env bash
# bench/run.sh - build what the benchmark needs and run it.
#
#   bench/run.sh            full run (about 2 minutes on 2 cores, plus ~20 s
#                           the first time to generate 1.1 GiB of data)
#   bench/run.sh --quick    smoke run: 3 repetitions, smaller data (~10 s)
#   bench/run.sh --clean    remove bench/work (generated data, bench binaries) afterwards
#   bench/run.sh --remote   the remote-reading benchmark instead (bench/bench_remote.py:
#                           nginx + moto S3 on loopback, ours vs zipfile over
#                           fsspec/s3fs; about 1 minute; the 1 GiB archive is built
#                           once in bench/work/remote); --remote --quick: smoke run
#   bench/run.sh --fsspec   taco:// against fsspec's zip:// over one local nginx
#                           and one moto S3 (bench/bench_fsspec.py: a Parquet row
#                           group, one tile of 20,000, find over 100,000 members,
#                           a NetCDF time slice through xarray, dd.read_parquet of
#                           50 members on a LocalCluster; requests, bytes, time;
#                           about 2 minutes); raw runs in bench/work/fsspec-results.json,
#                           the plot (bench/plot_fsspec.py) in $TACOZIP_FSSPEC_PLOT
#                           (default bench/work/fsspec-vs-zip.png; docs/BENCHMARKS.md
#                           shows docs/img/fsspec-vs-zip.png); --fsspec --quick: smoke
#                           run; --no-s3: nginx only
#   bench/run.sh --zarr     chunks of a Zarr array in a TACO archive over nginx through
#                           tacozip.zarr.TacoStore, zarr's FsspecStore on zip::http and
#                           our reference set in ReferenceFileSystem; reference scans of
#                           12 NetCDF members, ours against kerchunk on zip::http
#                           (bench/bench_zarr.py; requests, bytes, time; raw runs in
#                           bench/work/zarr-results.json)
#   bench/run.sh --s3write  writing 1 GiB in 8 files and 20,000 small files to a local
#                           moto S3: ours straight to S3 against ours (and the PyPI
#                           tacozip) to local disk then boto3's upload_file, in one
#                           run (bench/bench_s3write.py: wall time, peak local disk,
#                           peak memory; raw runs in bench/work/s3write-results.json,
#                           the plot in $TACOZIP_S3WRITE_PLOT (default
#                           bench/work/s3write.png; docs/BENCHMARKS.md shows
#                           docs/img/s3write.png); about 4 minutes); --s3write --quick:
#                           smoke run
#   bench/run.sh --baseline REV
#                           also time the command built from the tree of git
#                           revision REV, for before/after figures (e.g. 9be074a,
#                           release 1.0.0)
#
# Other options are passed to bench/bench.py (--reps N, --only big,small,...), or
# with --remote to bench/bench_remote.py (--reps N, --quick).
# Environment: TACOZIP_BENCH_BUILD (build dir, default build-bench),
# TACOZIP_PEER_VENV (default /tmp/tacozip-peer-venv), PYTHON (python3),
# TACOZIP_REMOTE_VENV (--remote: the venv that gets our package from this tree
# and bench/requirements-remote.txt; default /tmp/tzvenv).
# Prints a Markdown report on stdout; raw results go to bench/work/results.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TACOZIP_BENCH_BUILD:-$ROOT/build-bench}
PEER=${TACOZIP_PEER_VENV:-/tmp/tacozip-peer-venv}
PY=${PYTHON:-python3}
WORK=$ROOT/bench/work
CLEAN=0
BASELINE=""
REMOTE=0
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clean) CLEAN=1 ;;
    --remote) REMOTE=1 ;;
    --fsspec) REMOTE=2 ;;
    --zarr) REMOTE=3 ;;
    --s3write) REMOTE=4 ;;
    --baseline) BASELINE=${2:?--baseline needs a git revision}; shift ;;
    --baseline=*) BASELINE=${1#--baseline=} ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

# The venv of the remote benchmarks ($VENV): created if missing, with
# bench/requirements-remote.txt (and "$2...") installed unless "$1" imports.
remote_venv() {
  VENV=${TACOZIP_REMOTE_VENV:-/tmp/tzvenv}
  local check=$1; shift
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  if ! "$VENV/bin/python" -c "import $check" 2>/dev/null; then
    echo "bench: installing bench/requirements-remote.txt $* into $VENV" >&2
    "$VENV/bin/pip" install -q -r "$ROOT/bench/requirements-remote.txt" "$@" >&2
  fi
}

if [ "$REMOTE" = 4 ]; then
  remote_venv "moto.server, boto3, flask"
  if [ ! -x "$PEER/bin/python" ] || ! "$PEER/bin/python" -c "import tacozip" 2>/dev/null; then
    echo "bench: PyPI tacozip peer missing, running scripts/setup.sh" >&2
    "$ROOT/scripts/setup.sh" >&2
  fi
  echo "bench: building in $BUILD" >&2
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target tacozip_cli >/dev/null
  mkdir -p "$WORK"
  "$VENV/bin/python" "$ROOT/bench/bench_s3write.py" --tacozip "$BUILD/tacozip" --peer-python "$PEER/bin/python" \
    --work "$WORK" --json "$WORK/s3write-results.json" ${ARGS[@]+"${ARGS[@]}"}
  if "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
    "$VENV/bin/python" "$ROOT/bench/plot_s3write.py" "$WORK/s3write-results.json" \
      -o "${TACOZIP_S3WRITE_PLOT:-$WORK/s3write.png}" >&2
  fi
  exit 0
fi

if [ "$REMOTE" = 3 ]; then
  remote_venv "fsspec, aiohttp, xarray, h5netcdf, zarr, kerchunk"
  echo "bench: installing tacozip from $ROOT into $VENV" >&2
  "$VENV/bin/pip" install -q --force-reinstall --no-deps "$ROOT" >&2
  mkdir -p "$WORK"
  "$VENV/bin/python" "$ROOT/bench/bench_zarr.py" --work "$WORK/zarr" --json "$WORK/zarr-results.json" \
    ${ARGS[@]+"${ARGS[@]}"}
  exit 0
fi

if [ "$REMOTE" = 2 ]; then
  remote_venv "fsspec, aiohttp, pyarrow, s3fs, moto.server, xarray, h5netcdf, dask.dataframe, distributed, matplotlib" pyarrow
  echo "bench: installing tacozip from $ROOT into $VENV" >&2
  "$VENV/bin/pip" install -q --force-reinstall --no-deps "$ROOT" >&2
  mkdir -p "$WORK"
  "$VENV/bin/python" "$ROOT/bench/bench_fsspec.py" --work "$WORK/fsspec" --json "$WORK/fsspec-results.json" \
    ${ARGS[@]+"${ARGS[@]}"}
  "$VENV/bin/python" "$ROOT/bench/plot_fsspec.py" "$WORK/fsspec-results.json" \
    -o "${TACOZIP_FSSPEC_PLOT:-$WORK/fsspec-vs-zip.png}" >&2
  exit 0
fi

if [ "$REMOTE" = 1 ]; then
  remote_venv "fsspec, aiohttp, s3fs, moto.server, boto3, flask"
  echo "bench: installing tacozip from $ROOT into $VENV" >&2
  "$VENV/bin/pip" install -q "$ROOT" >&2
  echo "bench: building in $BUILD" >&2
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target tacozip_cli tacozip >/dev/null
  mkdir -p "$WORK/bin"
  "${CC:-cc}" -std=c11 -O2 -Wall -Wextra -I"$ROOT/include" "$ROOT/bench/bench_remote.c" -o "$WORK/bin/bench_remote" \
    -L"$BUILD" -l:libtacozip.so -Wl,-rpath,"$BUILD"
  "$VENV/bin/python" "$ROOT/bench/bench_remote.py" --tacozip "$BUILD/tacozip" --cbin "$WORK/bin/bench_remote" \
    --work "$WORK" --json "$WORK/remote-results.json" ${ARGS[@]+"${ARGS[@]}"}
  if [ "$CLEAN" = 1 ]; then
    echo "bench: removing $WORK" >&2
    rm -rf "$WORK"
  fi
  exit 0
fi

if [ ! -x "$PEER/bin/python" ] || ! "$PEER/bin/python" -c "import tacozip" 2>/dev/null; then
  echo "bench: PyPI tacozip peer missing, running scripts/setup.sh" >&2
  "$ROOT/scripts/setup.sh" >&2
fi
PEER_SO=$("$PEER/bin/python" -c 'import os, tacozip; print(os.path.join(os.path.dirname(tacozip.__file__), "libtacozip.so"))')
command -v zip >/dev/null || { echo "bench: 'zip' is required (apt-get install zip)" >&2; exit 1; }

echo "bench: building in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j2 --target tacozip_cli tacozip >/dev/null

# The bench programs link our shared library (its own dependencies stay
# private to it); bench_read_header dlopen()s the peer's libtacozip.so with
# RTLD_DEEPBIND so that neither library's symbols interpose on the other's.
BIN=$WORK/bin
mkdir -p "$BIN"
CC=${CC:-cc}
for prog in bench_read_header bench_list; do
  "$CC" -std=c11 -O2 -Wall -Wextra -I"$ROOT/include" "$ROOT/bench/$prog.c" -o "$BIN/$prog" \
    -L"$BUILD" -l:libtacozip.so -Wl,-rpath,"$BUILD" -ldl
done

if [ -n "$BASELINE" ]; then
  # The whole tree of $BASELINE (git archive), its command built as it was.
  BSRC=$WORK/baseline-src
  rm -rf "$BSRC"
  mkdir -p "$BSRC"
  git -C "$ROOT" archive "$BASELINE" | tar -x -C "$BSRC"
  echo "bench: building baseline (the tree of $BASELINE) in $WORK/baseline-build" >&2
  rm -rf "$WORK/baseline-build"
  cmake -S "$BSRC" -B "$WORK/baseline-build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DTACOZIP_FUZZ=OFF \
    -DTACOZIP_PYTHON=OFF >/dev/null
  cmake --build "$WORK/baseline-build" -j2 --target tacozip_cli >/dev/null
  ARGS+=(--baseline-tacozip "$WORK/baseline-build/tacozip" --baseline-label "$BASELINE")
fi

"$PY" "$ROOT/bench/bench.py" --tacozip "$BUILD/tacozip" --bindir "$BIN" --peer-python "$PEER/bin/python" \
  --peer-so "$PEER_SO" --work "$WORK" --json "$WORK/results.json" ${ARGS[@]+"${ARGS[@]}"}

if [ "$CLEAN" = 1 ]; then
  echo "bench: removing $WORK" >&2
  rm -rf "$WORK"
fi
