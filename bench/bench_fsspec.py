"""bench_fsspec.py - taco:// against fsspec's zip:// over the same nginx.

Workloads (issue #9, benchmark items a-c), each run through
``fsspec.filesystem("taco", fo=url)`` and ``fsspec.filesystem("zip",
fo=url, target_protocol="http")`` on the same archive served by one local
nginx, interleaved, median of N runs (a fresh filesystem object each run, no
fsspec instance cache):

  (a) one row group of a Parquet member (pyarrow.parquet.ParquetFile)
  (b) one tile of a 20,000-tile archive
  (c) find("") over a 100,000-member archive

Requests and body bytes come from nginx's access log.  Prints Markdown.
Run through ``bench/run.sh --fsspec`` (it builds the package into a venv).
"""

import argparse
import os
import random
import statistics
import sys
import time

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

import tacozip

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_remote import Nginx  # noqa: E402


def make_parquet_archive(work, rows, row_group):
    path = os.path.join(work, f"fsspec-parquet-{rows}.taco")
    if os.path.exists(path):
        return path
    rng = random.Random(20261201)
    table = pa.table({"id": list(range(rows)),
                      "x": [rng.random() for _ in range(rows)],
                      "label": [f"class-{rng.randrange(50)}" for _ in range(rows)],
                      "blob": [rng.randbytes(40) for _ in range(rows)]})
    src = os.path.join(work, f"fsspec-src-{rows}")
    os.makedirs(src, exist_ok=True)
    pq.write_table(table, os.path.join(src, "data.parquet"), row_group_size=row_group, compression="none")
    with open(os.path.join(src, "COLLECTION.json"), "w") as f:
        f.write('{"id": "bench"}')
    tacozip.create(path, [os.path.join(src, "COLLECTION.json"), os.path.join(src, "data.parquet")],
                   ["COLLECTION.json", "data/data.parquet"], entries=[(0, 0)])
    return path


def make_many(work, name, n, size, rng_seed, index=False):
    path = os.path.join(work, name)
    if os.path.exists(path):
        return path
    src = os.path.join(work, name + ".src")
    os.makedirs(src, exist_ok=True)
    rng = random.Random(rng_seed)
    blob = os.path.join(src, "blob")
    with open(blob, "wb") as f:
        f.write(rng.randbytes(size))
    names = [f"tiles/z{i % 8}/{i // 8}.png" for i in range(n)]
    tacozip.create(path, [blob] * n, names, entries=[(0, 0)], index=index)
    return path


def measure(server, make_fs, work_fn, reps):
    times, reqs, nbytes, out = [], None, None, None
    for _ in range(reps):
        server.reset()
        t0 = time.perf_counter()
        fs = make_fs()
        out = work_fn(fs)
        times.append(time.perf_counter() - t0)
        recs = server.records()
        reqs, nbytes = len(recs), sum(r[3] for r in recs)
    return {"time": statistics.median(times), "min": min(times), "requests": reqs, "bytes": nbytes, "out": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    reps = 2 if a.quick else a.reps
    os.makedirs(a.work, exist_ok=True)
    rows = 200_000 if a.quick else 800_000
    pq_arc = make_parquet_archive(a.work, rows, rows // 8)
    n_tiles, n_many = (2_000, 10_000) if a.quick else (20_000, 100_000)
    tiles = make_many(a.work, f"fsspec-tiles-{n_tiles}.taco", n_tiles, 300, 1)
    many = make_many(a.work, f"fsspec-many-{n_many}.taco", n_many, 0, 2)
    tiles_ix = make_many(a.work, f"fsspec-tiles-{n_tiles}-index.taco", n_tiles, 300, 1, index=True)
    many_ix = make_many(a.work, f"fsspec-many-{n_many}-index.taco", n_many, 0, 2, index=True)
    www = os.path.join(a.work, "fsspec-www")
    os.makedirs(www, exist_ok=True)
    for p in (pq_arc, tiles, many, tiles_ix, many_ix):
        dst = os.path.join(www, os.path.basename(p))
        if not os.path.exists(dst):
            os.link(p, dst)
    server = Nginx(www)
    try:
        base = server.base
        url = {k: f"{base}/{os.path.basename(p)}" for k, p in (("pq", pq_arc), ("tiles", tiles), ("many", many),
                                                               ("tiles_ix", tiles_ix), ("many_ix", many_ix))}
        meta = pq.ParquetFile(os.path.join(a.work, f"fsspec-src-{rows}", "data.parquet")).metadata
        k = 3
        rg_bytes = meta.row_group(k).total_byte_size

        def row_group(fs):
            with fs.open("data/data.parquet", "rb") as f:
                return pq.ParquetFile(f).read_row_group(k).num_rows

        tile = "tiles/z3/1234.png" if not a.quick else "tiles/z3/123.png"

        def one_tile(fs):
            return len(fs.cat_file(tile))

        def find_all(fs):  # zip:// lists TACO_HEADER too; taco:// hides it
            return len([p for p in fs.find("") if not p.startswith("TACO_")])

        work = [("(a) one row group of a Parquet member", "pq", row_group, f"row group {k}: {rg_bytes:,} bytes"),
                ("(b) one tile of a %s-tile archive" % f"{(2_000 if a.quick else 20_000):,}", "tiles", one_tile,
                 "a 300-byte member"),
                ("(c) find over a %s-member archive" % f"{(10_000 if a.quick else 100_000):,}", "many", find_all,
                 "names only")]
        print(f"Machine: {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"tacozip {tacozip.__version__}, fsspec {fsspec.__version__}, pyarrow {pa.__version__}; "
              f"median of {reps} interleaved runs, a new filesystem object each run\n")
        print("| workload | client | requests | body bytes | wall time | zip:// / taco:// bytes | "
              "zip:// / taco:// time |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for title, key, fn, what in work:
            clients = [("taco://", lambda: fsspec.filesystem("taco", fo=url[key], skip_instance_cache=True))]
            if key == "pq":
                clients.append(("taco://, default_cache_type='none'",
                                lambda: fsspec.filesystem("taco", fo=url[key], skip_instance_cache=True,
                                                          default_cache_type="none")))
            if key in ("tiles", "many"):
                clients.append(("taco://, index_first (the same archive written with index=True)",
                                lambda: fsspec.filesystem("taco", fo=url[key + "_ix"], skip_instance_cache=True,
                                                          index_first=True)))
            clients.append(("zip::http", lambda: fsspec.filesystem("zip", fo=url[key], target_protocol="http",
                                                                   skip_instance_cache=True)))
            res = {name: [] for name, _ in clients}
            for _ in range(reps):
                for name, make in clients:
                    res[name].append(measure(server, make, fn, 1))
            outs = {r[0]["out"] for r in res.values()}
            assert len(outs) == 1, outs
            summ = {name: {"time": statistics.median(r["time"] for r in rs), "requests": rs[-1]["requests"],
                           "bytes": rs[-1]["bytes"]} for name, rs in res.items()}
            t, z = summ["taco://"], summ["zip::http"]
            for i, (name, _) in enumerate(clients):
                m = summ[name]
                ratios = "| | |" if name != "zip::http" else \
                    f"| {z['bytes'] / max(t['bytes'], 1):.1f}x | {z['time'] / t['time']:.1f}x |"
                label = f"{title} ({what})" if i == 0 else ""
                print(f"| {label} | {name} | {m['requests']} | {m['bytes']:,} | {m['time'] * 1e3:.0f} ms {ratios}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
