#!/usr/bin/env bash
# fuzz.sh [SECONDS] - build the libFuzzer harnesses with clang and run each
# for SECONDS (default 60) on a seed corpus of small valid archives (and,
# for fuzz_http, of small HTTP answers).
# Exits non-zero if a harness finds a crash (reproducer in $BUILD/artifacts).
# Environment: FUZZ_BUILD_DIR (default <root>/build-fuzz), CC (default clang).
set -euo pipefail
SECONDS_PER_HARNESS=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
export CC=${CC:-clang}

cmake -S "$ROOT" -B "$BUILD" -DTACOZIP_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target fuzz_header fuzz_directory fuzz_extract fuzz_span fuzz_http tacozip_cli >/dev/null

# ---- seed corpus -----------------------------------------------------------
SEEDS="$BUILD/fuzz-seeds"
WORK="$BUILD/fuzz-work"
rm -rf "$SEEDS"
mkdir -p "$SEEDS/directory" "$SEEDS/header" "$SEEDS/span" "$SEEDS/http" "$WORK" "$BUILD/artifacts"
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
# spans for fuzz_span: a flags byte, 8 bytes of base offset, then the members
# of each archive from its first byte up to the directory (what a header
# entry of whole members holds), found by the directory's first signature
if command -v python3 >/dev/null; then
  python3 - "$D" "$SEEDS/span" <<'PY'
import os, sys
src, out = sys.argv[1:]
for name in sorted(os.listdir(src)):
    b = open(os.path.join(src, name), "rb").read()
    cd = b.find(b"PK\x01\x02")
    if cd <= 0:
        continue
    for flags in (0, 2, 4):
        with open(os.path.join(out, f"{name}.{flags}.span"), "wb") as f:
            f.write(bytes([flags]) + (0).to_bytes(8, "little") + b[:cd])
        # the members after TACO_HEADER (base 157), and a cut one
        with open(os.path.join(out, f"{name}.{flags}.tail.span"), "wb") as f:
            f.write(bytes([flags]) + (157).to_bytes(8, "little") + b[157:cd - 1])
PY
fi
# HTTP answers for fuzz_http (the format is described in fuzz/fuzz_http.c):
# a request line, then answers separated by "@@" lines, body chunks by '|'
H="$SEEDS/http"
printf 'R 10 5 1048576\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 5\r\nETag: "abc"\r\n\r\nhe|llo' >"$H/range-206"
printf 'R 10 5 1048576 100 "abc"\nHTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "abc"\r\n\r\n0123456789|abcdefghijklmnopqrstuvwxyz|0123456789' >"$H/range-200"
printf 'H 0 64 0\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\n\r\n0123456789' >"$H/head-206"
printf 'H 0 64 0\nHTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234|56789' >"$H/head-200"
printf 'H 0 64 0\nHTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */0\r\n\r\n' >"$H/head-416"
printf 'T 0 22 0\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 78-99/100\r\n\r\n0123456789012345678901' >"$H/tail-206"
printf 'T 0 22 1048576\nHTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabcdefgh|0123456789012345678901' >"$H/tail-200"
printf 'R 0 4 0\nHTTP/1.1 503 Busy\r\nRetry-After: 1\r\n\r\nbusy\n@@\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/4\r\n\r\nabcd' >"$H/retry"
printf 'R 0 4 0\nHTTP/1.1 302 Found\r\nLocation: http://b/x\r\n\r\n\n@@\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/4\r\n\r\nab|cd' >"$H/redirect"
printf 'R 0 4 0\nHTTP/1.1 412 Precondition Failed\r\n\r\n' >"$H/precondition"
printf 'R 0 4 0 4 "x"\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/5\r\nETag: "y"\r\n\r\nabcd' >"$H/changed"
printf 'H 0 8 0\nHTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nabc\n@@\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-7/20\r\n\r\nabcdefgh' >"$H/short-then-206"
# what fuzz_http found (tests/c/test_http_response.c): a retry after a short
# 200 that had narrowed the range; bytes past the known size
printf 'H 0 64 0\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc\n@@\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/5000\r\n\r\nabcde' >"$H/found-retry-range"
printf 'H 0 16 0 4\nHTTP/1.1 200 OK\r\n\r\n0123456789abcdef' >"$H/found-past-size"
printf 'R 100 4 0\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 100-103/50\r\n\r\nabcd' >"$H/found-past-total"

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
run_harness fuzz_span "$SEEDS/span" "$BUILD/fuzz/fuzz_span"
run_harness fuzz_http "$SEEDS/http" "$BUILD/fuzz/fuzz_http" -dict="$ROOT/fuzz/http.dict"
# the Python API under atheris (needs the package and atheris in the venv)
VPY=${TACOZIP_VENV:-$ROOT/.venv}/bin/python
if "$VPY" -c "import atheris, tacozip" 2>/dev/null; then
  run_harness fuzz_python "$SEEDS/directory" "$VPY" "$ROOT/fuzz/fuzz_python.py"
else
  echo "fuzz.sh: no atheris or tacozip in $VPY (scripts/setup.sh installs them): the Python harness cannot run" >&2
  status=1
fi
exit $status
