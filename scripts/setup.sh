#!/usr/bin/env bash
# setup.sh - prepare a Debian machine for building, testing and benchmarking
# tacozip.  Needs root (or sudo) and the package repositories; safe to run
# again (it only installs what is missing).
#
#  1. Debian packages (apt-get update first, only when something is missing)
#  2. ONE reusable virtual environment, $TACOZIP_VENV (default <root>/.venv),
#     with every Python test and benchmark dependency: scripts/requirements.txt,
#     tests/package/requirements.txt, bench/requirements-remote.txt.  A hash of
#     those files (and of the Python version) is kept in the venv; the venv is
#     rebuilt when it differs, reused otherwise.
#  3. the two PyPI tacozip peers (0.13.0 and 0.11.4), each in its own
#     throwaway venv under /tmp, for interoperability tests and benchmarks.
#
# Environment: PYTHON (default python3), TACOZIP_VENV, TACOZIP_PEER_VENV,
# TACOZIP_PEER_OLD_VENV.  Prints the venv's path on the last line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

DEB_PACKAGES=(build-essential cmake pkg-config libdeflate-dev zlib1g-dev libcurl4-openssl-dev
              unzip zip p7zip-full libarchive-tools clang libclang-rt-14-dev nginx openssl
              python3-venv python3-dev abigail-tools patchelf gdal-bin strace)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# pip, with this machine's notes about absent local indexes left out
pipq() {
  local rc=0
  "$@" >"$LOG" 2>&1 || rc=$?
  grep -v "^WARNING: Location 'file:" "$LOG" || true
  return $rc
}
VENV=${TACOZIP_VENV:-$ROOT/.venv}
REQS=("$ROOT/scripts/requirements.txt" "$ROOT/tests/package/requirements.txt" "$ROOT/bench/requirements-remote.txt")
want=$({ "$PY" -c 'import sys; print(sys.version)'; cat "${REQS[@]}"; } | sha256sum | cut -d' ' -f1)
stamp=$VENV/.tacozip-requirements.sha256
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "setup: reusing $VENV (requirements unchanged)"
else
  echo "setup: creating $VENV (requirements new or changed)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  pipq "$VENV/bin/python" -m pip install -q --upgrade pip
  args=()
  for r in "${REQS[@]}"; do args+=(-r "$r"); done
  pipq "$VENV/bin/python" -m pip install -q "${args[@]}"
  echo "$want" >"$stamp"
fi

# The existing tacozip from PyPI, as a peer for interoperability tests and
# benchmarks, in a throwaway virtual environment (never part of our package).
PEER=${TACOZIP_PEER_VENV:-/tmp/tacozip-peer-venv}
if [ ! -x "$PEER/bin/python" ] || ! "$PEER/bin/python" -c "import tacozip" 2>/dev/null; then
  echo "setup: installing the PyPI tacozip peer into $PEER"
  rm -rf "$PEER"
  "$PY" -m venv "$PEER"
  pipq "$PEER/bin/pip" install -q "tacozip==0.13.0"
fi
# 0.11.4 is the last release whose Python API exposes validate() and
# detect_format(): used to check that the original validator accepts ours.
PEER_OLD=${TACOZIP_PEER_OLD_VENV:-/tmp/tacozip-peer-0114}
if [ ! -x "$PEER_OLD/bin/python" ] || ! "$PEER_OLD/bin/python" -c "import tacozip; tacozip.validate" 2>/dev/null; then
  echo "setup: installing the PyPI tacozip 0.11.4 peer into $PEER_OLD"
  rm -rf "$PEER_OLD"
  "$PY" -m venv "$PEER_OLD"
  pipq "$PEER_OLD/bin/pip" install -q "tacozip==0.11.4"
fi
echo "setup: done, test environment $VENV"
