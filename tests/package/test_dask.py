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
    """12 Parquet files of GROUPS (6) row groups each; ``id`` ascends over the whole
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
        nginx_server.settled_log()
        nginx_server.reset_log()
        df = dd.read_parquet(f"taco://data/*.parquet::{url}", storage_options=opts, filters=FILTERS)
        got = client.compute(df).result()
        _same(got, _expected(paths))
        recs = nginx_server.settled_log()
        fetched = _fetched(recs, path)
        total = sizes[opts.get("default_cache_type", "adaptive")] = sum(b - a for a, b in fetched)
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
    # the default (adaptive) cache fetches little beyond what pyarrow asks for
    assert sizes["adaptive"] <= 1.25 * sizes["none"], sizes


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
    nginx_server.settled_log()
    nginx_server.reset_log()
    urls = [f"taco://{n}::{url}" for n in names]
    with xr.open_mfdataset(urls, engine="h5netcdf", combine="by_coords", parallel=True, chunks={"time": 2}) as ds:
        got = client.compute(ds).result()
    xr.testing.assert_identical(got, _want_mf(paths))
    recs = nginx_server.settled_log()
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


# --------------------------------------------------------------------------- tacozip.shards

def _file_set(tmp, n=40):
    """n files of varied sizes under nested names: {member name: path}."""
    files = {}
    for k in range(n):
        rng = np.random.default_rng(7000 + k)
        name = f"tiles/{k % 5}/t{k:03d}.bin"
        p = tmp / "in" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes(int(rng.integers(0, 30_000))) if k != 3 else b"")  # one empty file
        files[name] = p
    return files


class FirstAndLast:
    """Header entries of a shard: its first and its last member's data, and
    a marker file naming the process that wrote the shard."""

    def __init__(self, marks):
        self.marks = str(marks)

    def __call__(self, shard, ar):
        pathlib.Path(self.marks, f"shard{shard}-pid{os.getpid()}").touch()
        ms = [m for m in ar.members if m.name != "TACO_HEADER"]
        return [ar.data_range(ms[0].name), ar.data_range(ms[-1].name)]


def _check_shards(cat, files, n):
    assert len(cat.shards) == n and len(cat) == len(files) and cat.names() == list(files)
    per = [len(cat.members_of(i)) for i in range(n)]
    assert sum(per) == len(files) and max(per) - min(per) <= 1
    for s in cat.shards:
        assert os.path.exists(s.url) and os.path.getsize(s.url) == s.size
        assert tacozip.validate(s.url, tacozip.TACOZIP_VALIDATE_DEEP) == 0
        with tacozip.open(s.url) as ar:
            assert ar.header == s.entries
            assert [m.name for m in ar.members if m.name not in ("TACO_HEADER", "TACO_INDEX")] == [
                m.name for m in cat.members_of(s.index)]
            for m in cat.members_of(s.index):
                am = ar[m.name]
                assert (m.url, m.offset, m.size, m.crc) == (s.url, am.offset, am.size, am.crc)
                assert ar.read(m.name) == files[m.name].read_bytes()
    for name, p in files.items():
        assert cat.read(name) == p.read_bytes(), name
        assert cat[name].crc == zlib.crc32(p.read_bytes())


def test_write_shards_on_cluster_and_read_them_back(client, tmp_path, nginx_server):
    files = _file_set(tmp_path)
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    cat = shards.write_shards(files, out, 4, client=client, entries=FirstAndLast(marks))
    assert sorted(os.listdir(out)) == ["catalog.parquet"] + [f"shard-{i:05d}.taco" for i in range(4)]
    _check_shards(cat, files, 4)
    for s in cat.shards:  # the caller's entries: first and last member of the shard
        ms = cat.members_of(s.index)
        assert s.entries == [(ms[0].offset, ms[0].size), (ms[-1].offset, ms[-1].size)]
        assert tacozip.read_header(s.url) == s.entries
    # one task per shard, in the worker processes
    written = sorted(p.name for p in marks.iterdir())
    assert [w.split("-")[0] for w in written] == [f"shard{i}" for i in range(4)]
    assert {int(w.split("pid")[1]) for w in written} <= _worker_pids(client)
    # the catalog is a Parquet file anyone can read
    t = pq.read_table(out / "catalog.parquet").to_pandas()
    assert t["name"].tolist() == list(files) and t.columns.tolist() == ["name", "shard", "offset", "size", "crc"]

    # published as it is (nginx), read through the catalog's URL, on the cluster
    for p in out.iterdir():
        _publish_http(nginx_server, p, f"dask/shards/{p.name}")
    rcat = shards.open_catalog(f"{nginx_server.base}/dask/shards/catalog.parquet")
    assert rcat.shards[2].url == f"{nginx_server.base}/dask/shards/shard-00002.taco"
    assert rcat["tiles/1/t006.bin"][:2] == ("tiles/1/t006.bin", cat["tiles/1/t006.bin"].shard)
    names = list(files)
    bag = db.from_sequence(names, npartitions=4).map(lambda n, c=rcat: (n, c.read(n)))
    got = dict(client.compute(bag).result())
    assert got == {n: p.read_bytes() for n, p in files.items()}
    # many at once: one read_ranges per shard, exact ranges
    nginx_server.settled_log()
    nginx_server.reset_log()
    pick = names[::3]
    many = shards.open_catalog(f"{nginx_server.base}/dask/shards/catalog.parquet").read_many(pick)
    assert list(many) == pick and many == {n: files[n].read_bytes() for n in pick}
    recs = nginx_server.settled_log()
    shard_recs = [r for r in recs if r["path"].endswith(".taco")]
    assert len([r for r in shard_recs if r["range"].startswith("bytes=-")]) == 4  # each shard opened once
    assert len(shard_recs) <= 8, [(r["path"], r["range"]) for r in shard_recs]


def test_write_shards_without_dask(tmp_path):
    files = _file_set(tmp_path, 12)
    srcs, names = list(files.values()), list(files)
    # threads (default), a JSON catalog, the default entries: one span of all members
    cat = shards.write_shards(srcs, tmp_path / "j", 3, names=names, catalog="cat.json", max_workers=2)
    _check_shards(cat, files, 3)
    for s in cat.shards:
        with tacozip.open(s.url) as ar:
            assert s.entries == [ar.span(lambda m: m.name != "TACO_HEADER")]
    again = shards.open_catalog(tmp_path / "j" / "cat.json")
    assert again.read_many(names) == {n: p.read_bytes() for n, p in files.items()}
    # a process pool, one shard per file, a shard file name pattern, create options
    import concurrent.futures
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        cat = shards.write_shards(files, tmp_path / "p", 12, client=ex, shard_name="part{:02d}.zip",
                                  alignment=4096, index=True)
    _check_shards(cat, files, 12)
    assert all(m.offset % 4096 == 0 for n in files for m in [cat[n]])
    with tacozip.open(cat.shards[0].url) as ar:
        assert "TACO_INDEX" in ar
    # one shard
    cat = shards.write_shards(files, tmp_path / "one", 1)
    _check_shards(cat, files, 1)
    # pickles without its archives; the copy reads the same
    import pickle
    cat.read(names[0])
    cp = pickle.loads(pickle.dumps(cat))
    assert cp._archives == {} and cp.read_many(names[:4]) == cat.read_many(names[:4])
    assert shards.open_catalog(cat.url).names() == names


def test_write_shards_entries_planned_by_name(tmp_path, monkeypatch):
    """Entries given as a list planned by name are resolved in each shard
    from its own layout, and each shard is one atomic create: no temporary
    file and no header update (update_header is made to fail here)."""
    files = _file_set(tmp_path, 20)  # 5 shards of 4: each has tiles/0/..tiles/3/ or so
    monkeypatch.setattr(shards, "update_header", lambda *a, **k: pytest.fail("update_header was called"))
    created = []
    real_create = shards.create
    monkeypatch.setattr(shards, "create", lambda path, *a, **k: (created.append(os.path.basename(path)),
                                                                  real_create(path, *a, **k))[1])
    cat = shards.write_shards(files, tmp_path / "o", 5, entries=[tacozip.span(prefix="tiles/"),
                                                                 tacozip.directory()])
    _check_shards(cat, files, 5)
    assert sorted(created) == [f"shard-{i:05d}.taco" for i in range(5)]  # the final names, no temporary
    for s in cat.shards:
        with tacozip.open(s.url) as ar:
            lo = min(m.header_offset for m in ar.members if m.name.startswith("tiles/"))
            assert s.entries[0] == ar.span(lambda m: m.name.startswith("tiles/"))
            assert s.entries[0][0] == lo
            assert s.entries[1][0] + s.entries[1][1] == ar.size
    # a prefix one shard does not have: that shard fails, leaves nothing, no catalog
    with pytest.raises(tacozip.TacozipError) as ei:
        shards.write_shards(files, tmp_path / "bad", 5, entries=[tacozip.data("tiles/0/t000.bin")])
    assert ei.value.code == -5
    assert not (tmp_path / "bad" / "catalog.parquet").exists()
    assert all(not n.endswith(".tmp") for n in os.listdir(tmp_path / "bad"))


def test_write_shards_bad_input_writes_nothing(tmp_path):
    files = _file_set(tmp_path, 6)
    srcs = list(files.values())
    dest = tmp_path / "never"
    cases = [
        (dict(files=[], n_shards=1), ValueError, "empty"),
        (dict(files={}, n_shards=1), ValueError, "empty"),
        (dict(files=srcs, n_shards=0), ValueError, "at least 1"),
        (dict(files=srcs, n_shards=-2), ValueError, "at least 1"),
        (dict(files=srcs, n_shards=7), ValueError, "more than the number of files"),
        (dict(files=srcs, n_shards=2.0), TypeError, "int"),
        (dict(files=srcs + [tmp_path / "missing.bin"], n_shards=2), FileNotFoundError, "missing.bin"),
        (dict(files=srcs + [tmp_path / "in"], n_shards=2), FileNotFoundError, "not regular"),
        (dict(files=srcs, names=["a"] * 6, n_shards=2), ValueError, "duplicate member names"),
        (dict(files=srcs + srcs[:1], n_shards=2), ValueError, "duplicate member names.*t000.bin"),
        (dict(files=srcs, names=list(files)[:5], n_shards=2), ValueError, "count"),
        (dict(files=srcs[:2], names=["../x", "y"], n_shards=2), ValueError, "not allowed"),
        (dict(files=srcs[:2], names=["/abs", "y"], n_shards=2), ValueError, "not allowed"),
        (dict(files=srcs[:2], names=["TACO_HEADER", "y"], n_shards=2), ValueError, "not allowed"),
        (dict(files=srcs, n_shards=2, catalog="cat.csv"), ValueError, "catalog"),
        (dict(files=srcs, n_shards=2, shard_name="same.taco"), ValueError, "shard_name"),
        (dict(files=srcs, n_shards=2, fsync=False, nope=1), TypeError, "unknown create options"),
        (dict(files=str(srcs[0]), n_shards=1), TypeError, "sequence"),
        (dict(files=files, names=list(files), n_shards=1), TypeError, "mapping"),
        (dict(files=srcs, n_shards=2, client=object()), TypeError, "client"),
    ]
    for kw, exc, msg in cases:
        kw = dict(kw)
        with pytest.raises(exc, match=msg):
            shards.write_shards(kw.pop("files"), dest, kw.pop("n_shards"), **kw)
        assert not dest.exists(), kw


class FailOn:
    def __init__(self, bad):
        self.bad = bad

    def __call__(self, shard, ar):
        if shard == self.bad:
            raise RuntimeError(f"entries failed for shard {shard}")
        return shards.span_all(shard, ar)


@pytest.mark.parametrize("how", ["threads", "cluster"])
def test_failed_shard_leaves_no_partial_archive(tmp_path, client, how):
    files = _file_set(tmp_path, 8)
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError, match="entries failed for shard 2"):
        shards.write_shards(files, dest, 4, entries=FailOn(2), client=client if how == "cluster" else None)
    left = sorted(os.listdir(dest))
    # no catalog, nothing of shard 2 (no temporary file either); the others complete
    assert left == ["shard-00000.taco", "shard-00001.taco", "shard-00003.taco"]
    for n in left:
        assert tacozip.validate(dest / n, tacozip.TACOZIP_VALIDATE_DEEP) == 0


def test_catalog_refuses_changed_or_corrupt_shards(tmp_path):
    files = _file_set(tmp_path, 6)
    cat = shards.write_shards(files, tmp_path / "out", 2)
    name0 = cat.members_of(0)[1].name
    # a shard rewritten with other contents: its ranges are not the catalog's
    other = tmp_path / "other.bin"
    other.write_bytes(b"x" * 100)
    tacozip.create(cat.shards[0].url, [other], ["o.bin"])
    fresh = shards.open_catalog(cat.url)
    with pytest.raises(tacozip.TacozipError) as e:
        fresh.read(name0)
    assert e.value.code == tacozip.TACOZ_ERR_CHANGED and "catalog" in e.value.detail
    # the same size and ranges, other bytes: the catalog's CRC-32 catches it
    m = fresh.members_of(1)[2]
    assert m.size > 0
    with open(cat.shards[1].url, "r+b") as f:
        f.seek(m.offset)
        f.write(bytes(b ^ 0xFF for b in files[m.name].read_bytes()[:4]))
    with pytest.raises(tacozip.TacozipError) as e:
        fresh.read(m.name)
    assert e.value.code == tacozip.TACOZ_INVALID_CRC_MEMBER and m.name in e.value.detail
    with pytest.raises(tacozip.TacozipError):
        fresh.read_many([m.name])
    assert fresh.read(m.name, verify=False)[4:] == files[m.name].read_bytes()[4:]
    with pytest.raises(KeyError, match="no member named 'nope'"):
        fresh.read("nope")
    # not a catalog
    with pytest.raises(ValueError, match="not a tacozip shard catalog"):
        (tmp_path / "x.json").write_text("[1, 2]")
        shards.open_catalog(tmp_path / "x.json")
    # shards kept elsewhere than the catalog
    moved = tmp_path / "moved"
    moved.mkdir()
    for sh in cat.shards[1:]:
        os.replace(sh.url, moved / sh.path)
    there = shards.open_catalog(cat.url, shard_base=str(moved))
    assert there.shards[1].url == str(moved / "shard-00001.taco")
    n1 = there.members_of(1)[0].name
    assert there.read(n1) == files[n1].read_bytes()
    # a shard URL: the catalog's, last segment and query string replaced
    assert shards._resolve("https://h/a/catalog.json?X-Sig=1", "shard-00000.taco") == "https://h/a/shard-00000.taco"
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="without tacozip.shards metadata"):
        shards.open_catalog(tmp_path / "x.parquet")


def test_catalog_on_s3(tmp_path, moto_s3, client):
    files = _file_set(tmp_path, 10)
    cat = shards.write_shards(files, tmp_path / "out", 3, catalog="catalog.json")
    assert len(cat) == 10 and len(cat.shards) == 3
    for p in (tmp_path / "out").iterdir():
        moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=f"dask/shards/{p.name}", Body=p.read_bytes())
    rcat = shards.open_catalog(f"s3://{moto_s3.bucket}/dask/shards/catalog.json", storage_options=_s3_options(moto_s3))
    assert rcat.shards[1].url == f"s3://{moto_s3.bucket}/dask/shards/shard-00001.taco"
    names = list(files)
    got = client.submit(lambda c, ns: c.read_many(ns), rcat, names).result()
    assert got == {n: p.read_bytes() for n, p in files.items()}
    with rcat.open(names[5]) as f:
        f.seek(3)
        assert f.read(10) == files[names[5]].read_bytes()[3:13]


# --------------------------------------------------------------------------- dask stays optional

def test_package_and_shards_import_without_dask(tmp_path):
    code = ("import sys\n"
            "for m in ('dask', 'distributed'): sys.modules[m] = None  # any import of them fails\n"
            "import pathlib, tacozip, tacozip.shards as s\n"
            "ps = [pathlib.Path(f'f{i}') for i in range(3)]\n"
            "[p.write_bytes(b'x' * i) for i, p in enumerate(ps)]\n"
            "cat = s.write_shards(ps, 'out', 2, catalog='c.json')\n"
            "print(len(cat.shards), cat.read('f2').decode(), 'dask' in sys.modules and sys.modules['dask'] is not None)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "xx", "False"]


# --------------------------------------------------------------------------- docs/dask.md

def test_docs_dask_md_doctests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 30
    assert result.failed == 0
