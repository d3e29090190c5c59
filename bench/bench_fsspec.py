"""bench_fsspec.py - taco:// against fsspec's zip:// over the same servers.

Workloads (issue #9, benchmark item 6), each run through tacozip's
``taco://`` and fsspec's own ``zip://`` on the same archive, served by one
local nginx and (unless --no-s3) by one moto S3 server, interleaved, median
of N runs (a fresh filesystem object each run, no fsspec instance cache for
the archive filesystems):

  (a) one row group of a Parquet member (pyarrow.parquet.ParquetFile)
  (b) one tile of a 20,000-tile archive (cat_file)
  (c) find("") over a 100,000-member archive
  (d) one time slice of a NetCDF4 member (xarray, engine="h5netcdf":
      xr.open_dataset(fs.open(member)).isel(time=k).load())
  (e) dd.read_parquet("taco://data/*.parquet::<url>") of 50 Parquet members,
      one column summed on a distributed.LocalCluster (2 worker processes,
      1 thread each; created once, used by every run)

Over HTTP: fsspec.filesystem("taco", fo=url) against
fsspec.filesystem("zip", fo=url, target_protocol="http").  Over S3: the same
with s3://bucket/key and target_protocol="s3" (s3fs), both given the moto
endpoint in target_options (chained URLs: storage_options={"s3": ...}).

Requests and body bytes are counted on the server side: nginx's access log
and moto's request log (bench_remote.Moto), cleared before each run; for (e)
they include what the two workers and the client (planning) asked for.
Prints Markdown; --json OUT writes every run (bench/plot_fsspec.py draws
the ratios from it).  Run through ``bench/run.sh --fsspec`` (it installs
the package from the tree into a venv).
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tacozip

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_remote import BUCKET, Moto, Nginx  # noqa: E402

# ------------------------------------------------------------------ archives


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


def make_netcdf_archive(work, nt, nlat, nlon):
    """A daily NetCDF4/HDF5 file as climate data comes: four float32
    variables on (time, lat, lon), chunked one day per chunk, gzip level 1
    with the shuffle filter, written by xarray with engine="h5netcdf"."""
    import pandas as pd
    import xarray as xr

    path = os.path.join(work, f"fsspec-netcdf-{nt}x{nlat}x{nlon}.taco")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(20261201)
    lat = np.linspace(-89.5, 89.5, nlat)
    lon = np.linspace(0, 360, nlon, endpoint=False)
    day = np.arange(nt)
    season = np.cos(2 * np.pi * day / 365.0)[:, None, None]
    base = np.cos(np.deg2rad(lat))[None, :, None] * np.ones((1, 1, nlon))

    def field(scale, offset):
        return (offset + scale * base * season + rng.normal(0, scale / 10, (nt, nlat, nlon))).astype("float32")

    ds = xr.Dataset({"tas": (("time", "lat", "lon"), field(30, 260), {"units": "K"}),
                     "pr": (("time", "lat", "lon"), np.abs(field(5e-5, 0)), {"units": "kg m-2 s-1"}),
                     "huss": (("time", "lat", "lon"), np.abs(field(0.01, 0.005)), {"units": "1"}),
                     "sfcWind": (("time", "lat", "lon"), np.abs(field(4, 5)), {"units": "m s-1"})},
                    coords={"time": pd.date_range("2025-01-01", periods=nt, freq="D"), "lat": lat, "lon": lon},
                    attrs={"title": "tacozip benchmark", "Conventions": "CF-1.8"})
    enc = {v: {"zlib": True, "complevel": 1, "shuffle": True, "chunksizes": (1, nlat, nlon)} for v in ds.data_vars}
    src = os.path.join(work, f"fsspec-src-netcdf-{nt}")
    os.makedirs(src, exist_ok=True)
    nc = os.path.join(src, "climate.nc")
    ds.to_netcdf(nc, engine="h5netcdf", encoding=enc)
    tacozip.create(path, [nc], ["data/climate.nc"], entries=[(0, 0)])
    return path


def make_parquet_members(work, n, rows):
    """n Parquet members of `rows` rows each (2 row groups, snappy)."""
    path = os.path.join(work, f"fsspec-dd-{n}x{rows}.taco")
    if os.path.exists(path):
        return path
    src = os.path.join(work, f"fsspec-src-dd-{n}x{rows}")
    os.makedirs(src, exist_ok=True)
    rng = np.random.default_rng(20261202)
    files, names = [], []
    for i in range(n):
        t = pa.table({"id": np.arange(i * rows, (i + 1) * rows, dtype="int64"),
                      "x": rng.random(rows),
                      "y": rng.normal(size=rows),
                      "label": pa.array([f"class-{j % 50}" for j in range(rows)]).dictionary_encode(),
                      "payload": pa.array([rng.bytes(24) for _ in range(rows)], pa.binary())})
        f = os.path.join(src, f"part-{i:03d}.parquet")
        pq.write_table(t, f, row_group_size=rows // 2)
        files.append(f)
        names.append(f"data/part-{i:03d}.parquet")
    tacozip.create(path, files, names, entries=[(0, 0)])
    return path


# ------------------------------------------------------------------ running


def measure(server, run):
    server.reset()
    t0 = time.perf_counter()
    out = run()
    t = time.perf_counter() - t0
    recs = server.records()
    return {"time": t, "requests": len(recs), "bytes": sum(r[3] for r in recs), "out": out}


def nc_slice(fs, member, k):
    import xarray as xr

    with fs.open(member, "rb") as f:
        with xr.open_dataset(f, engine="h5netcdf") as ds:
            sl = ds.isel(time=k).load()
            return round(float(sum(float(sl[v].sum()) for v in sl.data_vars)), 2)


def dd_sum(url, storage_options):
    import dask.dataframe as dd

    ddf = dd.read_parquet(url, storage_options=storage_options, columns=["x"])
    return round(float(ddf["x"].sum().compute()), 4)


def fmt_t(t):
    return f"{t * 1e3:.0f} ms" if t < 10 else f"{t:.1f} s"


def versions():
    out = {}
    for mod in ("tacozip", "fsspec", "pyarrow", "xarray", "h5netcdf", "h5py", "dask", "distributed", "s3fs",
                "moto"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - context only
            out[mod] = "?"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reps", type=int, default=7, help="runs per client over HTTP (median); default 7")
    ap.add_argument("--s3-reps", type=int, default=5, help="runs per client over S3; default 5")
    ap.add_argument("--quick", action="store_true", help="smaller data, 2 runs")
    ap.add_argument("--no-s3", action="store_true", help="HTTP (nginx) only")
    ap.add_argument("--only", default="a,b,c,d,e", help="workloads, e.g. a,d (default all)")
    ap.add_argument("--json", help="write every run and the medians here")
    a = ap.parse_args()
    reps = 2 if a.quick else a.reps
    s3_reps = 1 if a.quick else a.s3_reps
    only = set(a.only.split(","))
    a.work = os.path.abspath(a.work)  # nginx's root must be absolute
    os.makedirs(a.work, exist_ok=True)
    t_start = time.perf_counter()

    rows = 200_000 if a.quick else 800_000
    n_tiles, n_many = (2_000, 10_000) if a.quick else (20_000, 100_000)
    nc_shape = (365, 32, 64) if a.quick else (365, 64, 128)
    dd_n, dd_rows = (10, 20_000) if a.quick else (50, 40_000)
    arcs = {"pq": make_parquet_archive(a.work, rows, rows // 8),
            "tiles": make_many(a.work, f"fsspec-tiles-{n_tiles}.taco", n_tiles, 300, 1),
            "many": make_many(a.work, f"fsspec-many-{n_many}.taco", n_many, 0, 2),
            "tiles_ix": make_many(a.work, f"fsspec-tiles-{n_tiles}-index.taco", n_tiles, 300, 1, index=True),
            "many_ix": make_many(a.work, f"fsspec-many-{n_many}-index.taco", n_many, 0, 2, index=True),
            "nc": make_netcdf_archive(a.work, *nc_shape),
            "dd": make_parquet_members(a.work, dd_n, dd_rows)}
    www = os.path.join(a.work, "fsspec-www")
    os.makedirs(www, exist_ok=True)
    for p in arcs.values():
        dst = os.path.join(www, os.path.basename(p))
        if not os.path.exists(dst):
            os.link(p, dst)

    meta = pq.ParquetFile(os.path.join(a.work, f"fsspec-src-{rows}", "data.parquet")).metadata
    k = 3
    rg_bytes = meta.row_group(k).total_byte_size
    tile = "tiles/z3/123.png" if a.quick else "tiles/z3/1234.png"
    nc_size = tacozip.open(arcs["nc"]).members[-1].size
    day = 200
    dd_size = os.path.getsize(arcs["dd"])

    def row_group(fs):
        with fs.open("data/data.parquet", "rb") as f:
            return pq.ParquetFile(f).read_row_group(k).num_rows

    def one_tile(fs):
        return len(fs.cat_file(tile))

    def find_all(fs):  # zip:// lists TACO_HEADER too; taco:// hides it
        return len([p for p in fs.find("") if not p.startswith("TACO_")])

    workloads = [
        ("a", "pq", "(a) one row group of a Parquet member", f"row group {k} of 8: {rg_bytes:,} bytes",
         lambda fs: row_group(fs)),
        ("b", "tiles", f"(b) one tile of a {n_tiles:,}-tile archive", "a 300-byte member", one_tile),
        ("c", "many", f"(c) find over a {n_many:,}-member archive", "names only", find_all),
        ("d", "nc", "(d) one time slice of a NetCDF4 member (xarray, h5netcdf)",
         f"day {day} of {nc_shape[0]}, 4 variables {nc_shape[1]}x{nc_shape[2]}, gzip-1 chunks of one day; "
         f"member {nc_size:,} bytes", lambda fs: nc_slice(fs, "data/climate.nc", day)),
        ("e", "dd", f"(e) dd.read_parquet of {dd_n} members on a LocalCluster",
         f"column x summed, 2 worker processes; archive {dd_size:,} bytes", None),
    ]
    workloads = [w for w in workloads if w[0] in only]

    servers = {}
    cluster = client = None
    results = []
    try:
        servers["http"] = Nginx(www)
        if not a.no_s3:
            servers["s3"] = Moto(sys.executable)
            for p in arcs.values():
                servers["s3"].upload(p, os.path.basename(p))
            s3opts = {"key": "bench", "secret": "bench",
                      "client_kwargs": {"endpoint_url": servers["s3"].endpoint, "region_name": "us-east-1"}}
        if "e" in only:
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)

        def clients_for(backend, key):
            """(name, kind, run) for one workload: kind is taco, zip or variant"""
            fname = os.path.basename(arcs[key])
            if backend == "http":
                loc = f"{servers['http'].base}/{fname}"
                loc_ix = f"{servers['http'].base}/{os.path.basename(arcs.get(key + '_ix', ''))}"
                topts, proto = {}, "http"
            else:
                loc, loc_ix = f"s3://{BUCKET}/{fname}", f"s3://{BUCKET}/{os.path.basename(arcs.get(key + '_ix', ''))}"
                topts, proto = s3opts, "s3"
            if key == "dd":
                so = {proto: topts} if topts else None
                pd_so = {"pickle_directory": True, **(so or {})}
                return [("taco://", "taco", lambda: dd_sum(f"taco://data/*.parquet::{loc}", so)),
                        ("taco://, pickle_directory=True (the tasks get the directory with the filesystem)",
                         "variant", lambda: dd_sum(f"taco://data/*.parquet::{loc}", pd_so)),
                        (f"zip::{proto}", "zip", lambda: dd_sum(f"zip://data/*.parquet::{loc}", so))]

            def taco(**kw):
                return lambda: fsspec.filesystem("taco", fo=loc, target_options=topts, skip_instance_cache=True,
                                                 **kw)

            out = [("taco://", "taco", taco())]
            if key in ("pq", "nc"):
                out.append(("taco://, default_cache_type='none'", "variant", taco(default_cache_type="none")))
            if key == "nc":
                out.append(("taco://, default_cache_type='blockcache', default_block_size=64 KiB", "variant",
                            taco(default_cache_type="blockcache", default_block_size=64 << 10)))
            if key in ("tiles", "many"):
                out.append(("taco://, index_first (the same archive written with index=True)", "variant",
                            lambda: fsspec.filesystem("taco", fo=loc_ix, target_options=topts,
                                                      skip_instance_cache=True, index_first=True)))
            out.append((f"zip::{proto}", "zip",
                        lambda: fsspec.filesystem("zip", fo=loc, target_protocol=proto, target_options=topts,
                                                  skip_instance_cache=True)))
            return out

        head = (f"Machine: {os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}; "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
                + ", ".join(f"{m} {v}" for m, v in versions().items()))
        print(head + "\n")
        for backend in servers:
            n = reps if backend == "http" else s3_reps
            server = servers[backend]
            print(f"**{'HTTP (nginx)' if backend == 'http' else 'S3 (moto)'}**: median of {n} interleaved runs "
                  f"after one warm-up run, a new filesystem object each run\n")
            print("| workload | client | requests | body bytes | wall time (median) | zip:// / this, bytes | "
                  "zip:// / this, time |")
            print("|---|---|---:|---:|---:|---:|---:|")
            for wid, key, title, what, fn in workloads:
                cl = clients_for(backend, key)
                runs = {name: [] for name, _, _ in cl}
                errors = {}
                for rep in range(n + 1):  # run 0: warm-up, not counted
                    for name, kind, make in cl:
                        if name in errors:
                            continue
                        job = make if key == "dd" else (lambda make=make: fn(make()))
                        try:
                            r = measure(server, job)
                        except Exception as e:  # noqa: BLE001 - reported in the table
                            errors[name] = " ".join(f"{type(e).__name__}: {e}".split())[:300].replace("|", "/")
                            print(f"bench_fsspec: {backend} {wid} {name}: {errors[name]}", file=sys.stderr)
                            continue
                        if rep:
                            runs[name].append(r)
                outs = {rs[-1]["out"] for rs in runs.values() if rs}
                assert len(outs) <= 1, (wid, outs)
                summ = {}
                for name, kind, _ in cl:
                    rs = runs[name]
                    rec = {"backend": backend, "workload": wid, "title": title, "what": what, "client": name,
                           "kind": kind, "error": errors.get(name)}
                    if rs:
                        rec.update(time=statistics.median(r["time"] for r in rs), times=[r["time"] for r in rs],
                                   requests=rs[-1]["requests"], bytes=rs[-1]["bytes"],
                                   requests_all=[r["requests"] for r in rs], bytes_all=[r["bytes"] for r in rs])
                    summ[name] = rec
                    results.append(rec)
                z = next(s for s in summ.values() if s["kind"] == "zip")
                for i, (name, kind, _) in enumerate(cl):
                    m = summ[name]
                    label = f"{title} ({what})" if i == 0 else ""
                    if m["error"]:
                        print(f"| {label} | {name} | failed: {m['error'][:120]} | | | | |")
                        continue
                    ratios = " |"
                    if kind != "zip" and not z["error"]:  # zip:// against this taco:// row
                        m["ratio_bytes"] = z["bytes"] / max(m["bytes"], 1)
                        m["ratio_time"] = z["time"] / m["time"]
                        ratios = f"{m['ratio_bytes']:.1f}x | {m['ratio_time']:.1f}x"
                    print(f"| {label} | {name} | {m['requests']} | {m['bytes']:,} | {fmt_t(m['time'])} | {ratios} |")
                sys.stdout.flush()
            print()
        total = time.perf_counter() - t_start
        print(f"(whole benchmark: {total:.0f} s)")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"machine": head, "reps": {"http": reps, "s3": s3_reps}, "seconds": total,
                           "results": results}, f, indent=1)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        for s in servers.values():
            s.stop()


if __name__ == "__main__":
    main()
