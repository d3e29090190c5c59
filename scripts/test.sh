#!/usr/bin/env bash
# test.sh [STEP...] - build tacozip and run its tests.  With no STEP, all of
# them, in this order (what CI runs, through .ci/run):
#
#   c        Release build (build/), C unit, round-trip, malformed-archive tests (ctest)
#   cli      pytest tests/cli against build/tacozip: the command, interop with
#            zipfile/unzip/7z/bsdtar and the PyPI tacozip, ZIP64, atomicity
#   asan     build-asan/ (ASan + UBSan): ctest, tests/cli (but its cases that hide /proc,
#            which ASan's runtime needs) and tests/remote with that command
#   package  pip install . into the test venv, pytest tests/package (drop-in
#            against the original tacozip, API, seed workflows over nginx and moto,
#            the installed tacozip executable)
#   remote   pytest tests/remote: fault-injecting server, nginx (HTTP, HTTPS,
#            HTTP/2), moto S3, with build/tacozip and the installed package
#   install  cmake --install, then pkg-config and CMake-package consumers
#            (shared and static) build and run
#   clang    build-clang/ with CC=clang, ctest
#   nocurl   build-nocurl/ with -DTACOZIP_WITH_CURL=OFF, ctest, tests/cli without its
#            multi-gigabyte ZIP64 tests and its tests that read over HTTP
#            (URLs must fail with "built without libcurl"), nor its kill -9 and
#            fault-injection runs (the writers are the same code)
#   tsan     build-tsan/ with -fsanitize=thread: ctest, the threaded tests
#            of tests/cli (large members copied by two threads) and tests/remote
#            (parallel range reads) with that command
#   abi      scripts/abi.sh: abidiff of libtacozip.so against abi/*.abi
#   wheel    scripts/wheel.sh: python -m build --wheel, auditwheel repair,
#            install into a fresh venv, local and HTTPS reads, LD_LIBRARY_PATH empty
#   fuzz     scripts/fuzz.sh: each libFuzzer harness (header, directory, extract, http)
#            and the atheris harness of the installed package for $FUZZ_SECONDS (20) s
#
# Steps may be given in any order and are run in the order above.  Setting
# up (Debian packages, the test venv .venv, the PyPI peers) is
# scripts/setup.sh, run first unless --no-setup is given.
# Options: --no-setup; --keep-going (run the remaining steps after a failed
# one, and still exit non-zero at the end).
# Environment: JOBS (default 2), FUZZ_SECONDS, TACOZIP_VENV, PYTHON.
# Exits non-zero on the first failing step; prints each step's time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ALL=(c cli asan package remote install clang nocurl tsan abi wheel fuzz)
JOBS=${JOBS:-2}
export TACOZIP_VENV=${TACOZIP_VENV:-$ROOT/.venv}
VPY=$TACOZIP_VENV/bin/python

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
setup=1
keep_going=0
steps=()
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --no-setup) setup=0 ;;
    -k|--keep-going) keep_going=1 ;;
    all) steps+=("${ALL[@]}") ;;
    *) if [[ " ${ALL[*]} " == *" $a "* ]]; then steps+=("$a");
       else echo "test.sh: unknown step '$a' (steps: ${ALL[*]}; see --help)" >&2; exit 2; fi ;;
  esac
done
[ ${#steps[@]} -gt 0 ] || steps=("${ALL[@]}")
selected() { [[ " ${steps[*]} " == *" $1 "* ]]; }

[ "$setup" = 0 ] || scripts/setup.sh
[ -x "$VPY" ] || { echo "test.sh: no test venv at $TACOZIP_VENV: run scripts/setup.sh" >&2; exit 1; }

banner() { printf '\n==== %s\n' "$*"; }
PYTEST=("$VPY" -m pytest -q -p no:cacheprovider)

# configure DIR [cmake args...] and build it; the build log is shown on failure.
build() {
  local dir=$1; shift
  banner "build $dir ($*)"
  mkdir -p "$dir"
  if ! { cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j"$JOBS"; } >"$dir/build.log" 2>&1; then
    tail -n 60 "$dir/build.log" >&2
    echo "test.sh: build of $dir failed (log: $dir/build.log)" >&2
    return 1
  fi
  grep -E 'warning:' "$dir/build.log" || true
}
# Done once per run (each step runs in a subshell): stamps in a temporary directory.
STAMPS=$(mktemp -d)
trap 'rm -rf "$STAMPS"' EXIT
release() {
  [ -e "$STAMPS/release" ] && return 0
  build build -DCMAKE_BUILD_TYPE=Release
  touch "$STAMPS/release"
}
package() {
  [ -e "$STAMPS/package" ] && return 0
  banner "pip install . into $TACOZIP_VENV"
  if ! "$VPY" -m pip install -q --force-reinstall --no-deps . >"$STAMPS/pip.log" 2>&1; then
    cat "$STAMPS/pip.log" >&2
    return 1
  fi
  (cd /tmp && "$VPY" -c "import tacozip; print('testing', tacozip.__file__, tacozip.__version__)")
  touch "$STAMPS/package"
}

ASAN_ENV=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
# TSan needs a fixed address layout on kernels with many random mmap bits.
TSAN_RUN=(env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
if command -v setarch >/dev/null && setarch "$(uname -m)" -R true 2>/dev/null; then
  TSAN_RUN=(setarch "$(uname -m)" -R "${TSAN_RUN[@]}")
fi

step_c() {
  release
  ctest --test-dir build --output-on-failure
}
step_cli() {
  release
  TACOZIP_BIN=$ROOT/build/tacozip "${PYTEST[@]}" tests/cli
}
step_asan() {
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DTACOZIP_SANITIZE=address
  env "${ASAN_ENV[@]}" ctest --test-dir build-asan --output-on-failure
  banner "tests/cli with the ASan + UBSan command"
  env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 TACOZIP_BIN=$ROOT/build-asan/tacozip \
    "${PYTEST[@]}" tests/cli -m "not noproc"
  package
  banner "tests/remote with the ASan + UBSan command"
  env ASAN_OPTIONS=detect_leaks=1 TACOZIP_BIN=$ROOT/build-asan/tacozip "${PYTEST[@]}" tests/remote
}
step_package() {
  package
  "${PYTEST[@]}" tests/package
}
step_remote() {
  release
  package
  TACOZIP_BIN=$ROOT/build/tacozip "${PYTEST[@]}" tests/remote
}
step_install() {
  release
  local prefix
  prefix=$(mktemp -d /tmp/tacozip-install-XXXXXX)
  cmake --install build --prefix "$prefix" >/dev/null
  "$ROOT/build/tacozip" create "$prefix/c.taco" examples/sample-data/COLLECTION.json
  # shellcheck disable=SC2046
  cc examples/c/taco_ls.c $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs tacozip) \
    -Wl,-rpath,"$prefix/lib" -o "$prefix/taco_ls_pc"
  "$prefix/taco_ls_pc" "$prefix/c.taco" COLLECTION.json | grep -q 'sample-landcover'
  # the static library, with its dependencies (shared) from Requires.private
  local pc="env PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config"
  # shellcheck disable=SC2046
  cc examples/c/taco_ls.c $($pc --cflags tacozip) "$prefix/lib/libtacozip.a" \
    $(pkg-config --libs $($pc --print-requires-private tacozip)) -pthread -o "$prefix/taco_ls_pc_static"
  "$prefix/taco_ls_pc_static" "$prefix/c.taco" COLLECTION.json | grep -q 'sample-landcover'
  cmake -S examples/cmake-consumer -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$prefix/consumer" >/dev/null
  LD_LIBRARY_PATH=$prefix/lib "$prefix/consumer/taco_ls" "$prefix/c.taco" COLLECTION.json | grep -q 'sample-landcover'
  "$prefix/consumer/taco_ls_static" "$prefix/c.taco" COLLECTION.json | grep -q 'sample-landcover'
  if grep -rn "/usr/lib\|/usr/include" "$prefix/lib/cmake/tacozip/"; then
    echo "install: the CMake package names a dependency by absolute path" >&2
    return 1
  fi
  echo "install check passed (pkg-config shared and static, CMake package shared and static)"
  rm -rf "$prefix"
}
step_clang() {
  CC=clang build build-clang -DCMAKE_BUILD_TYPE=Release
  ctest --test-dir build-clang --output-on-failure
}
step_nocurl() {
  build build-nocurl -DCMAKE_BUILD_TYPE=Release -DTACOZIP_WITH_CURL=OFF
  ctest --test-dir build-nocurl --output-on-failure
  banner "tests/cli with the command built without libcurl"
  TACOZIP_EXPECT_NO_CURL=1 TACOZIP_BIN=$ROOT/build-nocurl/tacozip "${PYTEST[@]}" tests/cli -m "not slow and not http and not crash"
}
step_tsan() {
  build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTACOZIP_SANITIZE=thread
  "${TSAN_RUN[@]}" ctest --test-dir build-tsan --output-on-failure
  banner "threaded tests of tests/cli and tests/remote with the TSan command"
  package
  "${TSAN_RUN[@]}" TACOZIP_BIN=$ROOT/build-tsan/tacozip "${PYTEST[@]}" tests/cli -m threads
  "${TSAN_RUN[@]}" TACOZIP_BIN=$ROOT/build-tsan/tacozip "${PYTEST[@]}" tests/remote
}
step_abi() { scripts/abi.sh; }
step_wheel() { scripts/wheel.sh; }
step_fuzz() {
  package  # the atheris harness fuzzes the installed package
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
}

times=()
failed=()
t_all=$SECONDS
for s in "${ALL[@]}"; do
  selected "$s" || continue
  banner "step $s"
  t0=$SECONDS
  # a subshell, so that a failing command ends the step (set -e), not the run
  set +e
  ( set -e; "step_$s" )
  rc=$?
  set -e
  if [ $rc = 0 ]; then
    times+=("$(printf '%-8s %4d s  passed' "$s" $((SECONDS - t0)))")
  else
    echo "test.sh: step '$s' FAILED after $((SECONDS - t0)) s" >&2
    times+=("$(printf '%-8s %4d s  FAILED' "$s" $((SECONDS - t0)))")
    failed+=("$s")
    [ "$keep_going" = 1 ] || break
  fi
done
if [ ${#failed[@]} -eq 0 ]; then
  banner "all selected steps passed (${steps[*]})"
else
  banner "FAILED steps: ${failed[*]}"
fi
printf '  %s\n' "${times[@]}"
printf '  %-8s %4d s\n' total $((SECONDS - t_all))
[ ${#failed[@]} -eq 0 ]
