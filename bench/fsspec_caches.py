"""fsspec_caches.py - requests and bytes of taco:// member-file caches.

A 31 MB Parquet file (10 row groups, 4 columns, uncompressed) followed by a
2 MiB member, in one archive served by a local nginx; for each cache type:
one row group (``pq.ParquetFile(f).read_row_group(3)``), the whole table
(``pq.read_table(f)``) and one column (``pq.read_table(f, columns=["id"])``),
each through a fresh ``taco://`` filesystem (the archive's open included).
Requests and body bytes come from nginx's access log; they do not depend on
the machine's speed.  Prints the Markdown rows of docs/fsspec.md's table.

    .venv/bin/python bench/fsspec_caches.py [WORKDIR]
"""

import os
import sys
import tempfile

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tacozip

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_remote import Nginx  # noqa: E402

CACHES = [("adaptive", None), ("readahead", None), ("blockcache", 4 << 20), ("blockcache", 1 << 20), ("none", None)]


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tacozip-caches-")
    root = os.path.join(work, "www")
    os.makedirs(root, exist_ok=True)
    n = 1_000_000
    rng = np.random.default_rng(1)
    table = pa.table({"id": np.arange(n), "x": rng.random(n),
                      "label": pa.array([f"c{v}" for v in rng.integers(0, 50, n)]), "y": rng.random(n)})
    pq_path, after = os.path.join(work, "x.parquet"), os.path.join(work, "after.bin")
    pq.write_table(table, pq_path, row_group_size=n // 10, compression="none")
    with open(after, "wb") as f:
        f.write(os.urandom(2 << 20))
    tacozip.create(os.path.join(root, "x.taco"), [pq_path, after], ["data/x.parquet", "data/after.bin"],
                   entries=[(0, 0)])
    print(f"Parquet member: {os.path.getsize(pq_path):,} bytes")
    ng = Nginx(root)
    url = ng.base + "/x.taco"

    def measure(fn):
        ng.reset()
        fn()
        recs = ng.records()
        return f"{len(recs)} / {sum(r[3] for r in recs) / 1e6:.1f}"

    print("| cache | one row group | `pq.read_table` | `pq.read_table(columns=[\"id\"])` |")
    print("|---|---|---|---|")
    try:
        for cache, block in CACHES:
            opts = {"default_cache_type": cache}
            if block:
                opts["default_block_size"] = block

            def run(read, opts=opts):
                def go():
                    fs = fsspec.filesystem("taco", fo=url, **opts)
                    with fs.open("data/x.parquet") as f:
                        read(f)
                return go

            label = f"`{cache}`" + (f" {block >> 20} MiB" if block else "")
            print(f"| {label} | {measure(run(lambda f: pq.ParquetFile(f).read_row_group(3)))} "
                  f"| {measure(run(pq.read_table))} | {measure(run(lambda f: pq.read_table(f, columns=['id'])))} |")
    finally:
        ng.stop()


if __name__ == "__main__":
    main()
