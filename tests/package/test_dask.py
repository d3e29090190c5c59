"""Dask on taco://, single machine and cluster: a ``distributed.LocalCluster``
with worker PROCESSES (what a task needs is pickled to them: filesystems,
member files, catalogs), over nginx (bytes counted server-side from its
access log: the workers are other processes) and moto S3.

* dd.read_parquet over many Parquet members with filters: same rows as
  pandas on the original files; row groups outside the filter never fetched
* xr.open_mfdataset of NetCDF4 members (h5netcdf), chunked, parallel=True
* a dask bag over members of several archives
* tacozip.shards: N shard archives written by N tasks, the catalog, reads
* the examples of docs/dask.md as doctests
"""

import doctest
import io
import os
import pathlib
import re
import subprocess
import sys
import zlib

import pytest

import tacozip
import tacozip.shards as shards
from conftest_servers import require

fsspec = require("fsspec")
np = require("numpy")
pd = require("pandas")
pa = require("pyarrow")
pq = require("pyarrow.parquet", "pyarrow")
dask = require("dask")
dd = require("dask.dataframe", "dask[dataframe]")
db = require("dask.bag", "dask")
distributed = require("distributed")
xr = require("xarray")
require("h5netcdf")

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "dask.md"


# --------------------------------------------------------------------------- the cluster

@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes (a 2-core machine shared with others)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


def _worker_pids(client):
    return set(client.run(os.getpid).values())


# --------------------------------------------------------------------------- data

N_FILES, GROUPS, ROWS = 12, 6, 10000


@pytest.fixture(scope="module")
def parquet_set(tmp_path_factory):
    """12 Parquet files of 4 row groups each; ``id`` ascends over the whole
    set, so a filter on it selects whole row groups by their statistics.
    Random floats: the row groups are not compressible to nothing."""
    tmp = tmp_path_factory.mktemp("pqset")
    src = tmp / "src"
    src.mkdir()
    paths, names = [], []
    for i in range(N_FILES):
        rng = np.random.default_rng(1000 + i)
        n = GROUPS * ROWS
        t = pa.table({"id": pa.array(np.arange(i * n, (i + 1) * n, dtype=np.int64)),
                      "v": pa.array(rng.normal(size=n)),
                      "w": pa.array(rng.normal(size=n).astype(np.float32)),
                      "label": pa.array([f"c{(i * n + k) % 7}" for k in range(n)])})
        p = src / f"part-{i:02d}.parquet"
        pq.write_table(t, p, row_group_size=ROWS)
        assert pq.ParquetFile(p).metadata.num_row_groups == GROUPS
        paths.append(p)
        names.append(f"data/{p.name}")
    other = tmp / "COLLECTION.json"
    other.write_text('{"id": "dask-test"}')
    # a last member larger than the tail the library reads when it opens the
    # archive (64 KiB + 1 KiB): that read then holds no Parquet bytes
    notes = tmp / "notes.bin"
    notes.write_bytes(bytes(range(256)) * 400)
    arc = tmp / "ds.taco"
    tacozip.create(arc, [other] + paths + [notes], ["COLLECTION.json"] + names + ["notes.bin"])
    return arc, paths, names


# a filter that keeps the last row group of file 1 and the first two of file 2
LO, HI = 1 * GROUPS * ROWS + (GROUPS - 1) * ROWS, 2 * GROUPS * ROWS + 2 * ROWS
FILTERS = [("id", ">=", LO), ("id", "<", HI)]


def _expected(paths):
    df = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    return df[(df["id"] >= LO) & (df["id"] < HI)].reset_index(drop=True)


def _same(got, want):
    got = got.sort_values("id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) == HI - LO
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_categorical=False)
    assert got["id"].tolist() == list(range(LO, HI))


def _row_group_ranges(arc, paths, names):
    """{(member, row group): (start, stop)} in archive coordinates, from
    pyarrow's metadata and the member's data offset."""
    out = {}
    with tacozip.open(arc) as ar:
        for p, name in zip(paths, names):
            base = ar[name].offset
            md = pq.ParquetFile(p).metadata
            for g in range(md.num_row_groups):
                rg = md.row_group(g)
                starts, stops = [], []
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    s = col.data_page_offset
                    if col.has_dictionary_page and col.dictionary_page_offset is not None:
                        s = min(s, col.dictionary_page_offset)
                    starts.append(s)
                    stops.append(s + col.total_compressed_size)
                out[(name, g)] = (base + min(starts), base + max(stops))
    return out


def _selected(name, g):
    i = int(re.search(r"part-(\d+)", name).group(1))
    lo = (i * GROUPS + g) * ROWS
    return lo < HI and lo + ROWS > LO


_CR = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _fetched(recs, path):
    """[(start, stop)] of archive bytes nginx sent for ``path`` (from
    Content-Range; a whole 200 response covers the archive)."""
    out = []
    for r in recs:
        if r["path"] != path:
            continue
        assert r["status"] in (200, 206), r
        if r["status"] == 200:
            out.append((0, 1 << 62))
            continue
        m = _CR.fullmatch(r["content_range"])
        assert m, r
        a, b = int(m.group(1)), int(m.group(2)) + 1
        assert b - a == r["body_bytes_sent"], r
        out.append((a, b))
    return out


def _publish_http(server, path, key):
    dest = server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(path.read_bytes())
    return f"{server.base}/{key}", f"/{key}"


def _s3_options(moto_s3):
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"}}


# --------------------------------------------------------------------------- a. dd.read_parquet

def test_read_parquet_filters_on_cluster_s3(client, moto_s3, parquet_set):
    arc, paths, names = parquet_set
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="dask/ds.taco", Body=arc.read_bytes())
    url = f"taco://data/*.parquet::s3://{moto_s3.bucket}/dask/ds.taco"
    df = dd.read_parquet(url, storage_options={"s3": _s3_options(moto_s3)}, filters=FILTERS)
    got = client.compute(df).result()
    _same(got, _expected(paths))
    # every file, no filter: all rows, in order of the members
    whole = client.compute(dd.read_parquet(url, storage_options={"s3": _s3_options(moto_s3)})).result()
    want = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(whole.sort_values("id").reset_index(drop=True), want, check_dtype=False)


def test_read_parquet_prunes_row_groups_http(client, nginx_server, parquet_set):
    """Over nginx: the rows of the filter, fetched by the worker processes
    (server-side log), far fewer bytes than the archive, and no fetched range
    touches a row group the filter excludes, while every selected one is
    fetched."""
    arc, paths, names = parquet_set
    url, path = _publish_http(nginx_server, arc, "dask/prune/ds.taco")
    ranges = _row_group_ranges(arc, paths, names)
    pruned = {k: v for k, v in ranges.items() if not _selected(*k)}
    kept = {k: v for k, v in ranges.items() if _selected(*k)}
    assert len(kept) == 3 and len(pruned) == N_FILES * GROUPS - len(kept)

    sizes = {}
    with tacozip.open(arc) as ar:
        ends = {ar[n].offset + ar[n].size for n in names}
    assert min(e - s for s, e in ranges.values()) > 3 * FOOTER_SAMPLE  # row groups larger than the footer reads

    for opts in ({"default_cache_type": "none"}, {}):
        nginx_server.read_log(timeout=0.3)
        nginx_server.reset_log()
        df = dd.read_parquet(f"taco://data/*.parquet::{url}", storage_options=opts, filters=FILTERS)
        got = client.compute(df).result()
        _same(got, _expected(paths))
        recs = nginx_server.read_log(timeout=0.5)
        fetched = _fetched(recs, path)
        total = sizes[opts.get("default_cache_type", "readahead")] = sum(b - a for a, b in fetched)
        opens = sum(1 for r in recs if r["range"] and r["range"].startswith("bytes=-"))
        kept_bytes = sum(e - s for s, e in kept.values())
        print(f"dd.read_parquet taco:// {opts or 'defaults'}: {len(fetched)} requests ({opens} archive opens), "
              f"{total} bytes of {arc.stat().st_size} (selected row groups {kept_bytes} bytes)")
        # every selected row group was fetched whole
        for k, (s, e) in kept.items():
            assert sum(max(0, min(b, e) - max(a, s)) for a, b in _merge(fetched)) == e - s, k
        if opts:  # no cache: only what pyarrow asks for
            for k, (s, e) in pruned.items():
                for a, b in fetched:
                    if a < e and b > s:
                        # only pyarrow's speculative footer read (the last 64 KiB
                        # of a member) touches a pruned row group, never whole
                        assert b in ends and b - a <= FOOTER_SAMPLE and not (a <= s and e <= b), (k, (a, b))
            # the rest: exactly the selected row groups' column chunks
            data = [(a, b) for a, b in fetched if not (b in ends and b - a <= FOOTER_SAMPLE)
                    and not (b == arc.stat().st_size and b - a <= 66560)]
            assert _merge(data) == _merge(kept.values()), (_merge(data), _merge(kept.values()))
            touched = sum(max(0, min(b, e) - max(a, s)) for (s, e) in pruned.values() for a, b in _merge(fetched))
            assert touched < 0.15 * sum(e - s for s, e in pruned.values())
            assert total < arc.stat().st_size / 4
    assert sizes["none"] < sizes["readahead"]


#: pyarrow reads the last 64 KiB of a Parquet file first (footer and metadata)
FOOTER_SAMPLE = 64 * 1024


def _merge(ranges):
    out = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


# --------------------------------------------------------------------------- b. xr.open_mfdataset

@pytest.fixture(scope="module")
def netcdf_set(tmp_path_factory):
    """Four NetCDF4 files (h5netcdf), consecutive in time, in one archive."""
    tmp = tmp_path_factory.mktemp("nc")
    paths, names = [], []
    for i in range(4):
        rng = np.random.default_rng(50 + i)
        t = np.arange(i * 6, (i + 1) * 6, dtype=np.int64)
        ds = xr.Dataset({"temp": (("time", "y", "x"), rng.normal(size=(6, 20, 30)).astype(np.float32)),
                         "mask": (("time", "y", "x"), rng.random((6, 20, 30)) > 0.3)},
                        coords={"time": t, "y": np.arange(20) * 0.5, "x": np.arange(30) * 0.25},
                        attrs={"part": i})
        p = tmp / f"t{i}.nc"
        ds.to_netcdf(p, engine="h5netcdf")
        paths.append(p)
        names.append(f"nc/t{i}.nc")
    arc = tmp / "nc.taco"
    tacozip.create(arc, paths, names)
    return arc, paths, names


def _want_mf(paths):
    with xr.open_mfdataset(paths, engine="h5netcdf", combine="by_coords") as ds:
        return ds.load()


def test_open_mfdataset_file_objects_on_cluster_s3(client, moto_s3, netcdf_set):
    """File objects of fs.open (TacoMemberFile: pickled to the workers with
    their filesystem), opened in parallel tasks, chunked, computed there."""
    arc, paths, names = netcdf_set
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="dask/nc.taco", Body=arc.read_bytes())
    fs = fsspec.filesystem("taco", fo=f"s3://{moto_s3.bucket}/dask/nc.taco", target_options=_s3_options(moto_s3))
    files = [fs.open(n) for n in names]
    with xr.open_mfdataset(files, engine="h5netcdf", combine="by_coords", parallel=True,
                           chunks={"time": 3, "y": 10}) as ds:
        assert ds["temp"].chunks == ((3,) * 8, (10, 10), (30,))
        want = _want_mf(paths)
        # computed on the cluster, in the worker processes
        got = client.compute(ds).result()
        mean = client.compute(ds["temp"].where(ds["mask"]).mean(["y", "x"])).result()
    xr.testing.assert_identical(got, want)
    assert got["temp"].values.tobytes() == want["temp"].values.tobytes()
    # (a reduction over chunks sums in another order than over whole arrays)
    np.testing.assert_allclose(mean.values, want["temp"].where(want["mask"]).mean(["y", "x"]).values, rtol=1e-5)
    assert got.sizes == {"time": 24, "y": 20, "x": 30}


def test_open_mfdataset_taco_urls_on_cluster_http(client, nginx_server, netcdf_set):
    """taco:// URL strings (xarray opens them with fsspec itself), chunks
    read by the worker processes: their requests are in nginx's log."""
    arc, paths, names = netcdf_set
    url, path = _publish_http(nginx_server, arc, "dask/nc/nc.taco")
    nginx_server.read_log(timeout=0.3)
    nginx_server.reset_log()
    urls = [f"taco://{n}::{url}" for n in names]
    with xr.open_mfdataset(urls, engine="h5netcdf", combine="by_coords", parallel=True, chunks={"time": 2}) as ds:
        got = client.compute(ds).result()
    xr.testing.assert_identical(got, _want_mf(paths))
    recs = nginx_server.read_log(timeout=0.5)
    assert recs and all(r["path"] == path and r["status"] == 206 for r in recs), recs
    assert sum(r["body_bytes_sent"] for r in recs) >= sum(p.stat().st_size for p in paths) * 0.5


# --------------------------------------------------------------------------- c. bags

def _read_member(pair, storage_options=None):
    url, member = pair
    with fsspec.open(f"taco://{member}::{url}", "rb", **(storage_options or {})) as f:
        data = f.read()
    return url, member, len(data), zlib.crc32(data), data[:16]


def _archives(tmp, n, per):
    out = []
    for a in range(n):
        files = {}
        for k in range(per):
            rng = np.random.default_rng(a * 100 + k)
            files[f"a{a}/m{k:02d}.bin"] = rng.bytes(int(rng.integers(1, 40_000)))
        d = tmp / f"src{a}"
        for name, b in files.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(b)
        arc = tmp / f"arc{a}.taco"
        tacozip.create(arc, [d / name for name in files], list(files))
        out.append((arc, files))
    return out


def test_bag_over_members_of_several_archives(client, nginx_server, moto_s3, tmp_path):
    """(archive URL, member) pairs from three archives, two over HTTP and one
    on S3; each task reads its member through taco:// in a worker process."""
    archives = _archives(tmp_path, 3, 10)
    pairs, want = [], {}
    for i, (arc, files) in enumerate(archives):
        if i < 2:
            url, _ = _publish_http(nginx_server, arc, f"dask/bag/arc{i}.taco")
        else:
            moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=f"dask/bag/arc{i}.taco", Body=arc.read_bytes())
            url = f"s3://{moto_s3.bucket}/dask/bag/arc{i}.taco"
        for name, b in files.items():
            pairs.append((url, name))
            want[(url, name)] = (len(b), zlib.crc32(b), b[:16])
    so = {"s3": _s3_options(moto_s3)}
    bag = db.from_sequence(pairs, npartitions=6).map(_read_member, storage_options=so)
    got = client.compute(bag).result()
    assert len(got) == 30
    assert {(u, m): (n, c, h) for u, m, n, c, h in got} == want
    # the reads ran in the worker processes, not here
    pids = client.compute(db.from_sequence(pairs, npartitions=6).map(lambda p: os.getpid())).result()
    assert set(pids) <= _worker_pids(client) and os.getpid() not in pids
    # a fold on the cluster: total bytes per archive
    totals = dict(client.compute(bag.foldby(lambda r: r[0], lambda acc, r: acc + r[2], 0, lambda a, b: a + b, 0)).result())
    assert totals == {u: sum(n for (uu, _), (n, _, _) in want.items() if uu == u) for u in {u for u, _ in pairs}}
