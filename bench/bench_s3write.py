#!/usr/bin/env python3
"""bench_s3write.py - writing an archive to S3 (bench/run.sh --s3write).

Two data sets (those of bench.py: 8 x 128 MiB, 20,000 x 4 KiB), three ways,
to one local moto S3 server (its own process, its storage in its own
directory), in one run, interleaved (the order rotates each repetition):

  ours_s3      tacozip create s3://bench/KEY -T LIST: S3 multipart upload
               straight from the files (one PUT when the archive fits in one
               part)
  ours_then_up tacozip create LOCAL -T LIST --no-fsync, then boto3's
               upload_file(LOCAL) (what `aws s3 cp` does: multipart, 10
               threads, 8 MiB parts), then LOCAL removed
  pypi_then_up the PyPI tacozip's create(LOCAL, ...), then the same upload

Each step runs as its own process; wall time is the sum of a case's steps,
peak memory the largest maximum RSS of its steps (wait4), peak local disk
the largest total size of the files in the output and spool directories,
sampled every 5 ms while the case runs (a write-then-upload case also
counts its archive's final size, so a sample cannot miss it).  Every
archive uploaded is checked: its size equals the local archive's, and
`tacozip validate s3://...` passes.  Prints Markdown; --json writes the
raw runs.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the data sets)

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

UPLOAD = r"""
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
s3.upload_file(sys.argv[1], "bench", sys.argv[2])
"""

PYPI_CREATE = r"""
import sys, tacozip
lst, out = sys.argv[1], sys.argv[2]
files = [l.rstrip("\n") for l in open(lst, encoding="utf-8")]
tacozip.create(out, files, files)
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def serve_moto():
    """(child) moto's ThreadedMotoServer on a free port, printed on stdout."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server._server.server_port, flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    server.stop()


class Moto:
    def __init__(self, python):
        self.tmp = tempfile.mkdtemp(prefix="tacozip-bench-moto-")
        env = dict(os.environ, TMPDIR=self.tmp)
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "_moto"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run(argv, env, cwd):
    """Run one step: (seconds, max RSS in KiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"bench_s3write: {' '.join(map(str, argv))} exited {p.returncode}: {err.decode()[-2000:]}")
    return dt, ru.ru_maxrss


class DiskSampler:
    """The largest total size of the files under some directories, sampled."""

    def __init__(self, dirs):
        self.dirs, self.peak, self.stop_ = dirs, 0, threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def size(self):
        total = 0
        for d in self.dirs:
            for root, _, files in os.walk(d):
                for f in files:
                    try:
                        total += os.lstat(os.path.join(root, f)).st_blocks * 512
                    except FileNotFoundError:
                        pass
        return total

    def loop(self):
        while not self.stop_.is_set():
            self.peak = max(self.peak, self.size())
            time.sleep(0.005)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_.set()
        self.t.join()
        self.peak = max(self.peak, self.size())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tacozip", required=True)
    ap.add_argument("--peer-python", required=True, help="a Python with the PyPI tacozip")
    ap.add_argument("--work", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    sets = bench.QUICK if a.quick else bench.FULL
    os.makedirs(a.work, exist_ok=True)
    big = bench.make_big(a.work, sets["big_files"], sets["big_mib"])
    small = bench.make_small(a.work, sets["small_files"], sets["small_kib"])
    data = {"big": (big, f"{sets['big_files']} files, {sets['big_files'] * sets['big_mib']} MiB"),
            "small": (small, f"{sets['small_files']} files of {sets['small_kib']} KiB")}
    out_dir, spool = os.path.join(a.work, "s3w-out"), os.path.join(a.work, "s3w-spool")
    moto = Moto(sys.executable)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=moto.url, TMPDIR=spool)
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET)
    s3.create_bucket(Bucket="bench")
    results = {}
    try:
        for set_name, (files, label) in data.items():
            lst = bench.write_list(a.work, f"s3w-{set_name}.list", files)
            for f in files:  # warm page cache
                with open(os.path.join(a.work, f), "rb") as fh:
                    while fh.read(1 << 20):
                        pass
            cases = ["ours_s3", "ours_then_up", "pypi_then_up"]
            runs = {c: [] for c in cases}
            for rep in range(a.reps):
                order = cases[rep % 3:] + cases[:rep % 3]
                for c in order:
                    for d in (out_dir, spool):
                        shutil.rmtree(d, ignore_errors=True)
                        os.makedirs(d)
                    key = f"{set_name}-{c}-{rep}.taco"
                    local = os.path.join(out_dir, "local.taco")
                    steps = []
                    with DiskSampler([out_dir, spool]) as ds:
                        if c == "ours_s3":
                            steps.append(run([a.tacozip, "create", f"s3://bench/{key}", "-T", lst, "--no-progress"],
                                             env, a.work))
                        else:
                            if c == "ours_then_up":
                                steps.append(run([a.tacozip, "create", local, "-T", lst, "--no-fsync",
                                                  "--no-progress"], env, a.work))
                            else:
                                steps.append(run([a.peer_python, "-c", PYPI_CREATE, lst, local], env, a.work))
                            local_size = os.path.getsize(local)
                            ds.peak = max(ds.peak, os.stat(local).st_blocks * 512)
                            steps.append(run([sys.executable, "-c", UPLOAD, local, key], env, a.work))
                            os.unlink(local)
                    size = s3.head_object(Bucket="bench", Key=key)["ContentLength"]
                    r = {"seconds": sum(s[0] for s in steps), "steps": [s[0] for s in steps],
                         "max_rss_kib": max(s[1] for s in steps), "peak_disk": ds.peak, "size": size}
                    if c != "ours_s3" and size != local_size:
                        sys.exit(f"bench_s3write: {key}: {size} bytes uploaded of {local_size}")
                    v = subprocess.run([a.tacozip, "validate", f"s3://bench/{key}"], env=env, capture_output=True)
                    if v.returncode != 0:
                        sys.exit(f"bench_s3write: validate s3://bench/{key}: {v.stderr.decode()}")
                    s3.delete_object(Bucket="bench", Key=key)
                    runs[c].append(r)
                    log(f"[{set_name}] rep {rep + 1}/{a.reps} {c}: {r['seconds']:.2f} s, "
                        f"{r['max_rss_kib'] / 1024:.0f} MiB RSS, {r['peak_disk'] / 1048576:.1f} MiB disk")
            pending = s3.list_multipart_uploads(Bucket="bench").get("Uploads", [])
            if pending:
                sys.exit(f"bench_s3write: {len(pending)} multipart uploads left pending")
            sizes = {c: runs[c][0]["size"] for c in cases}
            if sizes["ours_s3"] != sizes["ours_then_up"]:
                sys.exit(f"bench_s3write: straight and local archives differ in size: {sizes}")
            results[set_name] = {"label": label, "runs": runs}
    finally:
        moto.stop()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    names = {"ours_s3": "ours, straight to S3", "ours_then_up": "ours to local disk, then boto3 upload_file",
             "pypi_then_up": "PyPI tacozip to local disk, then boto3 upload_file"}
    for set_name, res in results.items():
        runs = res["runs"]
        med = {c: statistics.median(r["seconds"] for r in runs[c]) for c in runs}
        print(f"\n### Writing to S3 (moto): {res['label']} (median of {a.reps})\n")
        print("| case | wall time | vs straight | peak local disk | peak memory (max RSS of a step) |")
        print("|---|---|---|---|---|")
        for c in runs:
            disk = max(r["peak_disk"] for r in runs[c])
            rss = max(r["max_rss_kib"] for r in runs[c])
            print(f"| {names[c]} | {med[c]:.2f} s | {med[c] / med['ours_s3']:.2f}x | {disk / 1048576:.1f} MiB | "
                  f"{rss / 1024:.0f} MiB |")
        ok = med["ours_s3"] < med["ours_then_up"] and med["ours_s3"] < med["pypi_then_up"]
        print(f"\n- straight to S3 faster than both write-then-upload ways: **{'met' if ok else 'missed'}** "
              f"({med['ours_then_up'] / med['ours_s3']:.2f}x and {med['pypi_then_up'] / med['ours_s3']:.2f}x)")
        d = max(r["peak_disk"] for r in runs["ours_s3"])
        print(f"- local disk used by straight to S3: {d} bytes (target: none beyond the spool limit; "
              f"nothing is spooled from files) **{'met' if d == 0 else 'missed'}**")
        print(f"- archive size {runs['ours_s3'][0]['size']} bytes; no multipart upload left pending")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_moto"]:
        serve_moto()
    else:
        main()
