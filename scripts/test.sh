#!/usr/bin/env bash
# Run the whole tacozip test suite: install what is needed, build, then
#   1. C unit, round-trip and malformed-archive tests (ctest)
#   2. the same C tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the Python/pytest suite (CLI, interop with zipfile/unzip/7z/bsdtar and
#      the PyPI tacozip, ZIP64, atomicity) against the normal build, then
#      against the sanitizer build
#   4. the Python package: built by pip into a fresh venv, drop-in tests
#      against the original tacozip, API tests, seed workflows (nginx, moto)
#   5. remote reading: fault-injecting server, nginx and moto request counts
#   6. install check: pkg-config and CMake package consumers build and run
#   7. a short libFuzzer run of each harness
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/setup.sh
JOBS=${JOBS:-2}
step() { printf '\n==== %s\n' "$*"; }

step "build (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
step "C tests"
ctest --test-dir build --output-on-failure

step "build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTACOZIP_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
step "C tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure

step "pytest (Release build)"
TACOZIP_BIN=$ROOT/build/tacozip python3 -m pytest tests/python -q -p no:cacheprovider
step "pytest (ASan + UBSan build)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
  TACOZIP_BIN=$ROOT/build-asan/tacozip python3 -m pytest tests/python -q -p no:cacheprovider

step "Python package: pip install . into a fresh venv, then pytest tests/package"
PYVENV=$ROOT/build/pyvenv
rm -rf "$PYVENV"
python3 -m venv "$PYVENV"
"$PYVENV/bin/pip" install -q --upgrade pip >/dev/null
"$PYVENV/bin/pip" install -q -r tests/package/requirements.txt
"$PYVENV/bin/pip" install -q .
(cd "$ROOT/build" && "$PYVENV/bin/python" -c "import tacozip, sys; print('testing', tacozip.__file__, tacozip.__version__)")
"$PYVENV/bin/python" -m pytest tests/package -q -p no:cacheprovider

step "remote reading: fault-injecting server, nginx, moto S3 (Release CLI, then ASan CLI)"
TACOZIP_BIN=$ROOT/build/tacozip "$PYVENV/bin/python" -m pytest tests/remote -q -p no:cacheprovider
ASAN_OPTIONS=detect_leaks=1 TACOZIP_BIN=$ROOT/build-asan/tacozip \
  "$PYVENV/bin/python" -m pytest tests/remote -q -p no:cacheprovider

step "install check (pkg-config and CMake package)"
PREFIX=$(mktemp -d /tmp/tacozip-install-XXXXXX)
cmake --install build --prefix "$PREFIX" >/dev/null
"$ROOT/build/tacozip" create "$PREFIX/c.taco" examples/sample-data/COLLECTION.json
cc examples/c/taco_ls.c $(PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig pkg-config --cflags --libs tacozip) \
  -Wl,-rpath,"$PREFIX/lib" -o "$PREFIX/taco_ls_pc"
"$PREFIX/taco_ls_pc" "$PREFIX/c.taco" COLLECTION.json | grep -q 'sample-landcover'
cmake -S examples/cmake-consumer -B "$PREFIX/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null
cmake --build "$PREFIX/consumer" >/dev/null
LD_LIBRARY_PATH=$PREFIX/lib "$PREFIX/consumer/taco_ls" "$PREFIX/c.taco" COLLECTION.json | grep -q 'sample-landcover'
echo "install check passed"
rm -rf "$PREFIX"

if [ -x scripts/fuzz.sh ]; then
  step "fuzz smoke run"
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
step "all tests passed"
