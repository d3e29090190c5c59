"""bench_zarr.py - chunks of a Zarr array in a TACO archive, and NetCDF
reference scans, over one local nginx (issue #10, benchmark item 5).

Workloads, each run interleaved with its peers, median of N runs (a fresh
store or filesystem object each run, no fsspec instance cache):

  (a) N chunks of a Zarr v3 array (float32, zstd) packed into a TACO
      archive with tacozip.zarr.pack, read through
        - ours: zarr.open_array(tacozip.zarr.TacoStore(url))
        - zarr's FsspecStore over fsspec's zip:// on http (what a user of
          zarr without tacozip does: "zip://::http://...")
        - our reference set (tacozip.refs) in fsspec's ReferenceFileSystem,
          through zarr's FsspecStore
      once as N scattered chunks (one per row of chunks) and once as a block
      of N neighbouring chunks (where coalescing can join reads);
  (b) scanning 12 NetCDF4 members (one per month) for chunk references:
      tacozip.chunk_refs(url) against kerchunk's SingleHdf5ToZarr on each
      member opened through fsspec's zip:// on http.

Requests and body bytes are counted on the server side (nginx's access
log, cleared before each run).  Prints Markdown; --json OUT writes every
run.  Run through ``bench/run.sh --zarr`` (it installs the package from the
tree into a venv).
"""

import argparse
import json
import os
import platform
import statistics
import sys

import fsspec
import numpy as np

import tacozip
import tacozip.zarr as tzarr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fsspec import fmt_t, measure  # noqa: E402
from bench_remote import Nginx  # noqa: E402

SHAPE = (4096, 4096)
CHUNKS = (256, 256)  # 16 x 16 chunks of 256 KiB raw


def make_zarr_archive(work):
    import zarr

    out = os.path.join(work, "array.taco")
    if os.path.exists(out):
        return out
    src = os.path.join(work, "array.zarr")
    rng = np.random.default_rng(20261201)
    data = (rng.standard_normal(SHAPE) * 100).astype("float32")
    root = zarr.open_group(src, mode="w", zarr_format=3)
    a = root.create_array("temperature", shape=SHAPE, chunks=CHUNKS, dtype="float32")
    a[...] = data
    tzarr.pack(src, out)
    return out


def make_netcdf_archive(work, months=12):
    import xarray as xr

    out = os.path.join(work, "monthly.taco")
    if os.path.exists(out):
        return out
    src = os.path.join(work, "monthly")
    os.makedirs(src, exist_ok=True)
    rng = np.random.default_rng(7)
    files, names = [], []
    for m in range(months):
        t = np.arange(30) + 30 * m
        ds = xr.Dataset({"tas": (("time", "lat", "lon"), rng.standard_normal((30, 180, 360)).astype("float32")),
                         "pr": (("time", "lat", "lon"), rng.random((30, 180, 360)).astype("float32"))},
                        coords={"time": t, "lat": np.linspace(-89.5, 89.5, 180), "lon": np.arange(360.0)})
        p = os.path.join(src, f"m{m + 1:02d}.nc")
        enc = {v: {"chunksizes": (10, 90, 180), "zlib": True} for v in ("tas", "pr")}
        ds.to_netcdf(p, engine="h5netcdf", encoding=enc)
        files.append(p)
        names.append(f"monthly/m{m + 1:02d}.nc")
    tacozip.create(out, files, names)
    return out


def read_chunks(store_factory, sel):
    import zarr

    def run():
        arr = zarr.open_array(store_factory(), mode="r", path="temperature")
        return round(float(sum(float(arr[s].sum()) for s in sel)), 1)
    return run


def ours_store(url):
    return lambda: tzarr.TacoStore(url)


def zip_http_store(url):
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
    from zarr.storage import FsspecStore

    def make():
        fs = fsspec.filesystem("zip", fo=url, target_protocol="http", skip_instance_cache=True)
        return FsspecStore(AsyncFileSystemWrapper(fs), read_only=True, path="")
    return make


def refs_store(refs):
    from zarr.storage import FsspecStore

    def make():
        fs = fsspec.filesystem("reference", fo=refs, remote_protocol="http", remote_options={"asynchronous": True},
                               skip_instance_cache=True, asynchronous=True)
        return FsspecStore(fs, read_only=True, path="")
    return make


def scan_ours(url):
    def run():
        r = tacozip.chunk_refs(url, prefix="monthly/")
        return len(r)
    return run


def scan_zip_http(url, members):
    from kerchunk.hdf import SingleHdf5ToZarr

    def run():
        n = 0
        fs = fsspec.filesystem("zip", fo=url, target_protocol="http", skip_instance_cache=True)
        for m in members:
            with fs.open(m, "rb") as f:
                n += len(SingleHdf5ToZarr(f, url=m).translate()["refs"])
        return n
    return run


def versions():
    import kerchunk
    import zarr

    return {"python": platform.python_version(), "tacozip": tacozip.__version__, "zarr": zarr.__version__,
            "kerchunk": kerchunk.__version__, "fsspec": fsspec.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--chunks", type=int, default=8, help="N, the chunks read per run")
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    zpath = make_zarr_archive(a.work)
    npath = make_netcdf_archive(a.work)
    server = Nginx(a.work)
    try:
        zurl = f"{server.base}/{os.path.basename(zpath)}"
        nurl = f"{server.base}/{os.path.basename(npath)}"
        refs = tacozip.refs(zpath, url=zurl)
        n = a.chunks
        ci, cj = SHAPE[0] // CHUNKS[0], SHAPE[1] // CHUNKS[1]
        scattered = [(slice((k * ci // n) * CHUNKS[0], (k * ci // n + 1) * CHUNKS[0]),
                      slice((k * 5 % cj) * CHUNKS[1], (k * 5 % cj + 1) * CHUNKS[1])) for k in range(n)]
        block = [(slice(0, CHUNKS[0]), slice(0, n * CHUNKS[1]))]  # n neighbouring chunks in one selection
        members = [m.name for m in tacozip.open(npath).members if m.name.endswith(".nc")]
        cases = {
            "chunks-scattered": {"ours: TacoStore": read_chunks(ours_store(zurl), scattered),
                                 "zarr FsspecStore on zip::http": read_chunks(zip_http_store(zurl), scattered),
                                 "our refs in ReferenceFileSystem": read_chunks(refs_store(refs), scattered)},
            "chunks-block": {"ours: TacoStore": read_chunks(ours_store(zurl), block),
                             "zarr FsspecStore on zip::http": read_chunks(zip_http_store(zurl), block),
                             "our refs in ReferenceFileSystem": read_chunks(refs_store(refs), block)},
            "scan-12-netcdf": {"ours: tacozip.chunk_refs": scan_ours(nurl),
                               "kerchunk SingleHdf5ToZarr on zip::http": scan_zip_http(nurl, members)},
        }
        results = {}
        for case, tools in cases.items():
            runs = {t: [] for t in tools}
            for rep in range(a.reps):
                order = list(tools)
                order = order[rep % len(order):] + order[:rep % len(order)]
                for t in order:
                    runs[t].append(measure(server, tools[t]))
            outs = {t: runs[t][0]["out"] for t in tools}
            if case.startswith("chunks") and len(set(outs.values())) != 1:
                sys.exit(f"bench_zarr: {case}: the tools disagree: {outs}")
            results[case] = runs
            print(f"[{case}] done", file=sys.stderr, flush=True)
    finally:
        server.stop()
    print(f"Versions: {versions()}; {a.reps} runs each, N = {a.chunks} chunks of "
          f"{CHUNKS[0]}x{CHUNKS[1]} float32 (256 KiB raw, zstd)\n")
    for case, runs in results.items():
        print(f"### {case}\n")
        print("| tool | requests | bytes | time (median) | bytes vs ours | time vs ours |")
        print("|---|---:|---:|---:|---:|---:|")
        first = next(iter(runs))
        ref_b = statistics.median(r["bytes"] for r in runs[first])
        ref_t = statistics.median(r["time"] for r in runs[first])
        for t, rs in runs.items():
            req = statistics.median(r["requests"] for r in rs)
            b = statistics.median(r["bytes"] for r in rs)
            tm = statistics.median(r["time"] for r in rs)
            print(f"| {t} | {req:.0f} | {b:,.0f} | {fmt_t(tm)} | {b / ref_b:.1f}x | {tm / ref_t:.1f}x |")
        print()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"versions": versions(), "results": {c: {t: [{k: v for k, v in r.items() if k != "out"}
                                                                    for r in rs] for t, rs in runs.items()}
                                                           for c, runs in results.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
