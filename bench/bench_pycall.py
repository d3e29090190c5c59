"""Per-call cost of the Python API: ours (compiled extension) against the
original tacozip (ctypes over libtacozip.so), run in the same invocation.

    python3 bench/bench_pycall.py --ours-python PY --peer-python PY [--reps 7]

Each measurement runs in a fresh interpreter of the given environment:
read_header() on a 165-byte buffer and on a path, 200,000 and 20,000 calls,
repeated --reps times with ours and the original interleaved; medians.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

SNIPPET = r"""
import json, sys, time, tacozip
path, n_buf, n_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = open(path, "rb").read(165)
rh = tacozip.read_header
t = time.perf_counter()
for _ in range(n_buf):
    rh(buf)
t_buf = time.perf_counter() - t
t = time.perf_counter()
for _ in range(n_path):
    rh(path)
t_path = time.perf_counter() - t
print(json.dumps({"buf_us": t_buf / n_buf * 1e6, "path_us": t_path / n_path * 1e6, "file": tacozip.__file__}))
"""


def run(python, archive, n_buf, n_path):
    out = subprocess.run([python, "-c", SNIPPET, archive, str(n_buf), str(n_path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours-python", required=True)
    ap.add_argument("--peer-python", default="/tmp/tacozip-peer-venv/bin/python")
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "x.bin")
        with open(src, "wb") as f:
            f.write(b"x" * 1000)
        archive = os.path.join(d, "h.taco")
        subprocess.run([a.ours_python, "-c", f"import tacozip; tacozip.create({archive!r}, [{src!r}], "
                        "entries=[(1, 2), (3, 4)])"], check=True)
        res = {"ours": [], "peer": []}
        for i in range(a.reps):
            order = [("ours", a.ours_python), ("peer", a.peer_python)]
            if i % 2:
                order.reverse()
            for name, py in order:
                res[name].append(run(py, archive, 200000, 20000))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("buf_us", "path_us")} for k, v in res.items()}
    print("### Python call cost: read_header(), median of %d runs\n" % a.reps)
    print("| call | ours (extension) | tacozip 0.13.0 (ctypes) | ours is N x faster |")
    print("|---|---:|---:|---:|")
    for m, label in (("buf_us", "read_header(165-byte buffer)"), ("path_us", "read_header(path)")):
        print(f"| {label} | {med['ours'][m]:.2f} us | {med['peer'][m]:.2f} us | "
              f"{med['peer'][m] / med['ours'][m]:.2f}x |")
    print(f"\nours: {res['ours'][0]['file']}\npeer: {res['peer'][0]['file']}")


if __name__ == "__main__":
    sys.exit(main())
