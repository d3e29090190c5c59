#!/usr/bin/env bash
# Install everything tacozip needs to build, test and benchmark on a fresh
# Debian machine (as root, or with sudo).  Safe to run again.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

DEB_PACKAGES=(build-essential cmake pkg-config libdeflate-dev zlib1g-dev libcurl4-openssl-dev
              unzip zip p7zip-full libarchive-tools clang libclang-rt-14-dev nginx python3-venv)
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
need_pip=()
for mod in pytest; do
  $PY -c "import $mod" 2>/dev/null || need_pip+=("$mod")
done
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "setup: installing Python packages: ${need_pip[*]}"
  $PY -m pip install -q "${need_pip[@]}"
fi

# The existing tacozip from PyPI, as a peer for interoperability tests and
# benchmarks, in a throwaway virtual environment (never part of our package).
PEER=${TACOZIP_PEER_VENV:-/tmp/tacozip-peer-venv}
if [ ! -x "$PEER/bin/python" ] || ! "$PEER/bin/python" -c "import tacozip" 2>/dev/null; then
  echo "setup: installing the PyPI tacozip peer into $PEER"
  $PY -m venv "$PEER"
  "$PEER/bin/pip" install -q "tacozip==0.13.0"
fi
# 0.11.4 is the last release whose Python API exposes validate() and
# detect_format(): used to check that the original validator accepts ours.
PEER_OLD=${TACOZIP_PEER_OLD_VENV:-/tmp/tacozip-peer-0114}
if [ ! -x "$PEER_OLD/bin/python" ] || ! "$PEER_OLD/bin/python" -c "import tacozip; tacozip.validate" 2>/dev/null; then
  echo "setup: installing the PyPI tacozip 0.11.4 peer into $PEER_OLD"
  $PY -m venv "$PEER_OLD"
  "$PEER_OLD/bin/pip" install -q "tacozip==0.11.4"
fi
echo "setup: done"
