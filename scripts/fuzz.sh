#!/usr/bin/env bash
# fuzz.sh [SECONDS] - build the libFuzzer harnesses with clang and run each
# for SECONDS (default 60) on a seed corpus of small valid archives.
# Exits non-zero if a harness finds a crash (reproducer in $BUILD/artifacts).
# Environment: FUZZ_BUILD_DIR (default <root>/build-fuzz), CC (default clang).
set -euo pipefail
SECONDS_PER_HARNESS=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
export CC=${CC:-clang}

cmake -S "$ROOT" -B "$BUILD" -DTACOZIP_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target fuzz_header fuzz_directory fuzz_extract tacozip_cli >/dev/null

# ---- seed corpus -----------------------------------------------------------
SEEDS="$BUILD/fuzz-seeds"
WORK="$BUILD/fuzz-work"
rm -rf "$SEEDS"
mkdir -p "$SEEDS/directory" "$SEEDS/header" "$WORK" "$BUILD/artifacts"
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
printf 'hello world\n' >"$SRC/a.txt"
printf '0123456789abcdefghij' >"$SRC/b.bin"
mkdir -p "$SRC/dir/sub"
printf 'x' >"$SRC/dir/one"
printf '' >"$SRC/dir/sub/empty"
head -c 3000 /dev/urandom >"$SRC/dir/sub/random.bin"
CLI="$BUILD/tacozip"
D="$SEEDS/directory"
"$CLI" create "$D/plain.taco" --no-fsync --mtime 315532800 "$SRC/a.txt" "$SRC/b.bin"
"$CLI" create "$D/entries.taco" --no-fsync -e 157:47 -e 204:55 -e 0:0 "$SRC/a.txt" --as 'x/y/a.txt' "$SRC/b.bin"
"$CLI" create "$D/tree.taco" --no-fsync "$SRC/dir" "$SRC/a.txt"
"$CLI" create "$D/aligned.taco" --no-fsync --align 64 "$SRC/a.txt" "$SRC/b.bin"
"$CLI" create "$D/indexed.taco" --no-fsync --index "$SRC/a.txt" "$SRC/b.bin" "$SRC/a.txt" --as 'x/y/a.txt'
"$CLI" create "$D/indexed-tree.taco" --no-fsync --index "$SRC/dir"
"$CLI" create "$D/header-only.taco" --no-fsync -e 1:2 -e 3:4 -e 5:6 -e 7:8 -e 9:10 -e 11:12 -e 13:14
if command -v python3 >/dev/null; then
  python3 - "$D" <<'PY'
import sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(d + "/python.zip", "w", zipfile.ZIP_STORED) as z:
    z.writestr("TACO_HEADER", bytes(116))
    z.writestr("dir/", b"")
    z.writestr("dir/hello.txt", b"hello from python\n")
    z.comment = b"a comment"
with zipfile.ZipFile(d + "/python-zip64.zip", "w", zipfile.ZIP_STORED) as z:
    with z.open("big-ish", "w", force_zip64=True) as f:
        f.write(b"zip64 extra fields in both headers")
    z.writestr("small", b"s")
PY
fi
for f in "$D"/*; do head -c 157 "$f" >"$SEEDS/header/$(basename "$f").hdr"; done

# ---- run ---------------------------------------------------------------------
status=0
# run_harness NAME SEEDS COMMAND...: COMMAND (a libFuzzer-style fuzzer) for
# SECONDS_PER_HARNESS on its corpus and SEEDS; a finding fails the run.
run_harness() {
  local name=$1 seeds=$2
  shift 2
  mkdir -p "$WORK/$name"
  echo "fuzz.sh: running $name for ${SECONDS_PER_HARNESS}s"
  if ! "$@" -max_len=65536 -max_total_time="$SECONDS_PER_HARNESS" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$name-" "$WORK/$name" "$seeds" \
      >"$BUILD/$name.log" 2>&1; then
    echo "fuzz.sh: $name FAILED (see $BUILD/$name.log and $BUILD/artifacts/)" >&2
    tail -n 40 "$BUILD/$name.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^Done' "$BUILD/$name.log" || true
  fi
}
run_harness fuzz_header "$SEEDS/header" "$BUILD/fuzz/fuzz_header"
run_harness fuzz_directory "$SEEDS/directory" "$BUILD/fuzz/fuzz_directory"
run_harness fuzz_extract "$SEEDS/directory" "$BUILD/fuzz/fuzz_extract"
# the Python API under atheris (needs the package and atheris in the venv)
VPY=${TACOZIP_VENV:-$ROOT/.venv}/bin/python
if "$VPY" -c "import atheris, tacozip" 2>/dev/null; then
  run_harness fuzz_python "$SEEDS/directory" "$VPY" "$ROOT/fuzz/fuzz_python.py"
else
  echo "fuzz.sh: no atheris or tacozip in $VPY (scripts/setup.sh installs them): the Python harness cannot run" >&2
  status=1
fi
exit $status
