"""The rest of the data stack on taco:// with the real packages (issue 9):
pyarrow.dataset over a hive-partitioned directory inside an archive (filters
prune files and row groups: proved over nginx from its access log), DuckDB
through ``register_filesystem``, xarray + h5netcdf (a time slice of a NetCDF4
member, its request count over nginx; ``open_mfdataset`` of monthly members),
GDAL's ``/vsizip/{/vsicurl/...}`` on a GeoTIFF member, pandas' ``read_csv``
and ``read_parquet`` of a partitioned directory; the doctests of
docs/ecosystem.md.  Every result is compared with the same package reading
the original files.

A missing package or GDAL binary FAILS the test naming what to install.
"""

import datetime
import doctest
import json
import pathlib
import re
import shutil
import subprocess
import time
import zipfile

import pytest

import tacozip
from conftest_servers import require

fsspec = require("fsspec")
np = require("numpy")
pa = require("pyarrow")
pq = require("pyarrow.parquet", "pyarrow")
pds = require("pyarrow.dataset", "pyarrow")
pc = require("pyarrow.compute", "pyarrow")
from tacozip.fsspec import TacoFileSystem  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ecosystem.md"

HIVE = [(2023, 1), (2023, 2), (2024, 1), (2024, 2), (2024, 3)]
GROUPS, GROUP_ROWS = 3, 6000  # row groups of ~100 KiB: more than pyarrow's 64 KiB footer read
NC_SHAPE = (365, 40, 40)  # time, lat, lon: a 7 MB NetCDF4 file, more than one 4 MiB block


def _hive_path(year, month):
    return f"data/year={year}/month={month:02d}/part-0.parquet"


def _write_sources(src: pathlib.Path):
    """The original files; returns their names in archive order."""
    xr = require("xarray")
    require("h5netcdf")
    pd = require("pandas")
    rng = np.random.default_rng(9)
    names = []
    first = 0
    for y, m in HIVE:
        n = GROUPS * GROUP_ROWS
        t = pa.table({"id": np.arange(first, first + n, dtype=np.int64),  # sorted: row-group statistics prune
                      "value": rng.normal(size=n),
                      "station": pa.array([f"st{i % 7}" for i in range(n)]),
                      "count": rng.integers(0, 1000, n, dtype=np.int32)})
        first += n
        p = src / _hive_path(y, m)
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, p, row_group_size=GROUP_ROWS)
        names.append(_hive_path(y, m))
    csv = pd.DataFrame({"id": np.arange(3000), "name": [f"n{i % 13}" for i in range(3000)],
                        "x": np.round(rng.normal(size=3000), 6), "ok": rng.random(3000) > 0.3})
    (src / "tables").mkdir()
    csv.to_csv(src / "tables/x.csv", index=False)
    names.append("tables/x.csv")
    # a daily NetCDF4 file: one contiguous variable, one chunked per time step
    # and compressed, one chunked by 30 steps; a 2-D static variable
    times = pd.date_range("2024-01-01", periods=NC_SHAPE[0], freq="D")
    ds = xr.Dataset({"t2m": (("time", "lat", "lon"), rng.normal(280, 5, NC_SHAPE).astype("f4")),
                     "precip": (("time", "lat", "lon"), rng.gamma(1, 2, NC_SHAPE).astype("f4")),
                     "u10": (("time", "lat", "lon"), rng.normal(0, 3, NC_SHAPE).astype("f4")),
                     "elev": (("lat", "lon"), rng.normal(500, 100, NC_SHAPE[1:]))},
                    coords={"time": times, "lat": np.linspace(-10, 10, NC_SHAPE[1]),
                            "lon": np.linspace(0, 20, NC_SHAPE[2])},
                    attrs={"title": "stack test"})
    (src / "nc/monthly").mkdir(parents=True)
    ds.to_netcdf(src / "nc/x.nc", engine="h5netcdf",
                 encoding={"precip": {"chunksizes": (1,) + NC_SHAPE[1:], "zlib": True, "complevel": 4},
                           "u10": {"chunksizes": (30,) + NC_SHAPE[1:]}})
    names.append("nc/x.nc")
    for m in (1, 2, 3):
        t = pd.date_range(f"2024-{m:02d}-01", periods=pd.Period(f"2024-{m:02d}").days_in_month, freq="D")
        mds = xr.Dataset({"t2m": (("time", "lat", "lon"), rng.normal(280, 5, (len(t), 4, 5)).astype("f4"))},
                         coords={"time": t, "lat": np.arange(4.0), "lon": np.arange(5.0)})
        mds.to_netcdf(src / f"nc/monthly/2024-{m:02d}.nc", engine="h5netcdf")
        names.append(f"nc/monthly/2024-{m:02d}.nc")
    (src / "COLLECTION.json").write_text(json.dumps({"id": "stack-test"}))
    names.append("COLLECTION.json")
    return names


class Stack:
    def __init__(self, src, archive, names):
        self.src, self.archive, self.names = src, archive, names


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    src = tmp / "src"
    names = _write_sources(src)
    archive = tmp / "stack.taco"
    tacozip.create(archive, [src / n for n in names], names)
    return Stack(src, archive, names)


def _publish(server, path, key):
    dest = server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    return f"{server.base}/{key}"


@pytest.fixture(scope="module")
def stack_url(nginx_server, stack):
    return _publish(nginx_server, stack.archive, "stack/stack.taco")


def _reset(server):
    server.settled_log()  # let the lines of earlier requests land
    server.reset_log()


def _log(server, expect=None, path=None):
    recs = server.read_log(expect=expect)
    if expect is None:  # requests made by another program: let its last lines land
        time.sleep(0.2)
        recs = server.read_log()
    if path is not None:
        assert all(r["path"] == path for r in recs), [r["request"] for r in recs if r["path"] != path]
    return recs


def _span(rng, size):
    """[start, end) of a Range header."""
    a, b = rng[len("bytes="):].split("-")
    if not a:
        return size - int(b), size
    return int(a), (size if not b else int(b) + 1)


def _overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


# --------------------------------------------------------------------------- fsspec additions

def test_modified_is_the_zip_timestamp(stack):
    """DuckDB asks a registered filesystem for modified(); taco:// answers
    from the central directory (the DOS date and time zipfile reads)."""
    fs = TacoFileSystem(str(stack.archive))
    with zipfile.ZipFile(stack.archive) as z:
        for zi in z.infolist():
            if zi.filename == "TACO_HEADER":
                continue
            want = datetime.datetime(*zi.date_time, tzinfo=datetime.timezone.utc)
            assert fs.modified(zi.filename) == want, zi.filename
    with pytest.raises(IsADirectoryError):
        fs.modified("data")
    with pytest.raises(FileNotFoundError):
        fs.modified("nope.txt")


# --------------------------------------------------------------------------- pyarrow.dataset

def _local_dataset(stack):
    return pds.dataset(stack.src / "data", partitioning="hive", format="parquet")


def test_pyarrow_dataset_hive_partitions(stack):
    fs = TacoFileSystem(str(stack.archive))
    ds = pds.dataset("data/", filesystem=fs, partitioning="hive", format="parquet")
    want = _local_dataset(stack)
    assert ds.schema == want.schema
    assert ds.schema.field("year").type == pa.int32() and ds.schema.field("month").type == pa.int32()
    assert sorted(f.path for f in ds.get_fragments()) == [_hive_path(y, m) for y, m in HIVE]
    got = ds.to_table().sort_by("id")
    assert got.equals(want.to_table().sort_by("id"))
    # the partition columns: the values of the directory names, per file
    for k, (y, m) in enumerate(HIVE):
        part = got.slice(k * GROUPS * GROUP_ROWS, GROUPS * GROUP_ROWS)
        assert pc.unique(part["year"]).to_pylist() == [y] and pc.unique(part["month"]).to_pylist() == [m]
    # explicit wrapping is the same
    from pyarrow.fs import FSSpecHandler, PyFileSystem
    ds2 = pds.dataset("data", filesystem=PyFileSystem(FSSpecHandler(fs)), partitioning="hive")
    flt = (pc.field("year") == 2023) & (pc.field("station") == "st3")
    assert ds2.to_table(filter=flt).sort_by("id").equals(want.to_table(filter=flt).sort_by("id"))


@pytest.mark.parametrize("cache", ["default", "none"])
def test_pyarrow_dataset_filters_prune_files_and_row_groups_over_http(stack, stack_url, nginx_server, cache):
    """A filter on the partition columns and on a sorted column: the fetched
    byte ranges (nginx's log) lie in the one selected file, never in a pruned
    file or in the pruned row group's column chunks."""
    y, m = 2024, 2
    sel = _hive_path(y, m)
    first = HIVE.index((y, m)) * GROUPS * GROUP_ROWS
    cut = first + GROUP_ROWS + 1000  # row group 0 of the file pruned, 1 in part, 2 whole
    flt = (pc.field("year") == y) & (pc.field("month") == m) & (pc.field("id") >= cut)
    local = _local_dataset(stack)
    want = local.to_table(filter=flt).sort_by("id")
    assert want.num_rows == 2 * GROUP_ROWS - 1000

    opts = {} if cache == "default" else {"default_cache_type": "none"}
    fs = TacoFileSystem(stack_url, **opts)
    path = "/" + stack_url.split("/", 3)[3]
    size = stack.archive.stat().st_size
    _reset(nginx_server)
    before = fs.archive.stats[0]
    # with the schema given, discovery lists the members and reads nothing
    ds = pds.dataset("data/", filesystem=fs, partitioning="hive", format="parquet", schema=local.schema)
    assert fs.archive.stats[0] == before
    got = ds.to_table(filter=flt).sort_by("id")
    assert got.equals(want)
    recs = _log(nginx_server, expect=fs.archive.stats[0] - before, path=path)
    assert len(recs) == fs.archive.stats[0] - before and all(r["status"] == 206 for r in recs)
    spans = [_span(r["range"], size) for r in recs]

    info = {n: fs.info(n) for n, _ in ((_hive_path(*k), k) for k in HIVE)}
    s0 = info[sel]["offset"]
    member = (s0, s0 + info[sel]["size"])
    md = pq.ParquetFile(stack.src / sel).metadata
    assert md.num_row_groups == GROUPS

    def chunks(rg):
        out = []
        for c in range(md.num_columns):
            col = md.row_group(rg).column(c)
            start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            out.append((s0 + start, s0 + start + col.total_compressed_size))
        return out

    pruned_files = [(i["offset"], i["offset"] + i["size"]) for n, i in info.items() if n != sel]
    for sp in spans:
        assert member[0] <= sp[0] and sp[1] <= member[1], (sp, member)
        for pf in pruned_files:
            assert not _overlaps(sp, pf), (sp, pf)
        for ch in chunks(0):
            assert not _overlaps(sp, ch), ("pruned row group 0 read", sp, ch)
    merged = []  # the fetched spans, joined where they touch (a fetch stops where held bytes begin)
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    for rg in (1, 2):  # what was kept was read
        for ch in chunks(rg):
            assert any(sp[0] <= ch[0] and ch[1] <= sp[1] for sp in merged), (rg, ch, spans)
    print(f"pyarrow.dataset filter, cache {cache}: {len(recs)} requests, "
          f"{sum(r['body_bytes_sent'] for r in recs)} bytes {[r['range'] for r in recs]} "
          f"(member {info[sel]['size']} bytes)")
    assert len(recs) <= 3  # the footer, the kept row groups (coalesced by pyarrow)


# --------------------------------------------------------------------------- DuckDB

DUCK_QUERIES = [
    "SELECT year, month, count(*), sum(id), round(sum(value), 6), min(station), max(count) "
    "FROM read_parquet('{data}', hive_partitioning=true) GROUP BY ALL ORDER BY ALL",
    "SELECT id, value, station FROM read_parquet('{data}', hive_partitioning=true) "
    "WHERE year = 2024 AND month = 2 AND id >= 70000 ORDER BY id",
    "SELECT count(*), sum(id), round(sum(x), 6), sum(ok::INT) FROM read_csv('{csv}')",
    "SELECT name, count(*), round(avg(x), 9) FROM read_csv('{csv}') GROUP BY name ORDER BY name",
]


@pytest.mark.parametrize("where", ["local", "http"])
def test_duckdb_register_filesystem(stack, nginx_server, where, request):
    duckdb = require("duckdb")
    fo = str(stack.archive) if where == "local" else request.getfixturevalue("stack_url")
    fs = fsspec.filesystem("taco", fo=fo)
    con = duckdb.connect()
    con.register_filesystem(fs)  # the prefix "taco://" is now read through fs
    ref = duckdb.connect()
    if where == "http":
        _reset(nginx_server)
        before = fs.archive.stats[0]
    for q in DUCK_QUERIES:
        got = con.sql(q.format(data="taco://data/**/*.parquet", csv="taco://tables/x.csv")).fetchall()
        want = ref.sql(q.format(data=f"{stack.src}/data/**/*.parquet", csv=f"{stack.src}/tables/x.csv")).fetchall()
        assert got == want and len(got) > 0, q
    # the hive columns as DuckDB types them, the same for both
    got = con.sql("SELECT DISTINCT year, month FROM read_parquet('taco://data/*/*/*.parquet', "
                  "hive_partitioning=true) ORDER BY ALL").fetchall()
    assert got == [(2023, "01"), (2023, "02"), (2024, "01"), (2024, "02"), (2024, "03")]
    if where == "http":
        recs = _log(nginx_server, expect=fs.archive.stats[0] - before)
        assert len(recs) == fs.archive.stats[0] - before > 0
        print(f"DuckDB over taco::http: {len(recs)} requests, {sum(r['body_bytes_sent'] for r in recs)} bytes "
              f"for {len(DUCK_QUERIES) + 1} queries (archive {stack.archive.stat().st_size} bytes)")
    con.close()
    ref.close()


# --------------------------------------------------------------------------- xarray + h5netcdf

def _nc_slice(f, xr):
    with xr.open_dataset(f, engine="h5netcdf") as ds:
        return ds.isel(time=200).load()


def test_xarray_h5netcdf_time_slice(stack):
    xr = require("xarray")
    require("h5netcdf")
    want = _nc_slice(stack.src / "nc/x.nc", xr)
    assert want.sizes == {"lat": NC_SHAPE[1], "lon": NC_SHAPE[2]}
    fs = TacoFileSystem(str(stack.archive))
    with fs.open("nc/x.nc") as f:
        got = _nc_slice(f, xr)
    xr.testing.assert_identical(got, want)
    assert str(got.time.values)[:10] == "2024-07-19"


def test_xarray_h5netcdf_requests_over_http(stack, stack_url, nginx_server):
    """Archive open + dataset open + one time slice: <= 4 requests with a
    block cache of 4 MiB blocks; fsspec's read-ahead cache misses it
    (HDF5 reads metadata at both ends of the file and in between, and the
    read-ahead keeps one window only: each jump back is a new request);
    the default (adaptive) makes one small request per place h5py reads."""
    xr = require("xarray")
    require("h5netcdf")
    want = _nc_slice(stack.src / "nc/x.nc", xr)
    counts = {}
    for cache, block in (("adaptive", None), ("readahead", None), ("blockcache", None), ("blockcache-1MiB", 1 << 20),
                         ("none", None)):
        _reset(nginx_server)
        fs = TacoFileSystem(stack_url)  # the open is counted
        kw = {} if cache == "adaptive" else {"cache_type": cache.split("-")[0], "block_size": block}
        with fs.open("nc/x.nc", **kw) as f:
            assert f.cache.name == cache.split("-")[0]
            got = _nc_slice(f, xr)
        xr.testing.assert_identical(got, want)
        recs = _log(nginx_server, expect=fs.archive.stats[0])
        assert len(recs) == fs.archive.stats[0]
        counts[cache] = (len(recs), sum(r["body_bytes_sent"] for r in recs))
    size = fs.info("nc/x.nc")["size"]
    print(f"xarray/h5netcdf open + isel(time=200) over taco::http (member {size} bytes): {counts}")
    assert counts["blockcache"][0] <= 4, counts
    assert counts["blockcache"][1] <= size + (1 << 20), counts
    # what docs/ecosystem.md says of the default: more requests than the target, more bytes than the file
    assert counts["readahead"][0] > 4 and counts["readahead"][1] > size, counts
    # smaller blocks: more requests; no cache: one per HDF5 read, few bytes
    assert counts["blockcache"][0] < counts["blockcache-1MiB"][0] < counts["none"][0], counts
    assert counts["none"][1] < size // 10, counts
    # the default: fewer requests than no cache, a small part of the file
    assert counts["adaptive"][0] < counts["none"][0] and counts["adaptive"][1] < size // 2, counts


def test_xarray_open_mfdataset_monthly_members(stack):
    xr = require("xarray")
    require("dask")
    fs = TacoFileSystem(str(stack.archive))
    paths = fs.glob("nc/monthly/*.nc")
    assert paths == [f"nc/monthly/2024-{m:02d}.nc" for m in (1, 2, 3)]
    files = [fs.open(p) for p in paths]
    got = xr.open_mfdataset(files, engine="h5netcdf", combine="by_coords")
    want = xr.open_mfdataset([stack.src / p for p in paths], engine="h5netcdf", combine="by_coords")
    try:
        assert got.sizes["time"] == 31 + 29 + 31
        assert got.t2m.chunks[0] == (31, 29, 31)  # one dask chunk per member
        xr.testing.assert_identical(got.load(), want.load())
        assert float(got.t2m.sel(time="2024-02").mean()) == float(want.t2m.sel(time="2024-02").mean())
    finally:
        got.close()
        want.close()
        for f in files:
            f.close()


# --------------------------------------------------------------------------- GDAL

def _gdal(tool):
    exe = shutil.which(tool)
    if exe is None:
        pytest.fail(f"GDAL's {tool} is required and was not found: install gdal-bin "
                    "(apt-get install gdal-bin; scripts/setup.sh does)", pytrace=False)
    return exe


def _asc_values(text):
    """The grid of an Arc/Info ASCII file as a numpy array (the header skipped)."""
    rows = [ln.split() for ln in text.splitlines() if ln and not re.match(r"^[a-zA-Z_]", ln)]
    return np.array(rows, dtype=np.int64)


def _doc_block(marker):
    """The shell block of docs/ecosystem.md after ``<!-- marker -->``."""
    text = DOC.read_text()
    m = re.search(r"<!-- " + re.escape(marker) + r" -->\s*```sh\n(.*?)```", text, re.S)
    assert m, f"no sh block after <!-- {marker} --> in {DOC}"
    return m.group(1)


def test_gdal_vsizip_vsicurl_geotiff(tmp_path, nginx_server):
    """The GDAL shell example of docs/ecosystem.md, run over nginx on a
    GeoTIFF member: gdalinfo, gdallocationinfo, gdal_translate of a window."""
    translate, info = _gdal("gdal_translate"), _gdal("gdalinfo")
    _gdal("gdallocationinfo")
    h, w = 200, 300
    a = ((np.arange(h)[:, None] * 37 + np.arange(w)[None, :] * 11) % 4093).astype(np.uint16)
    a[50:60, 70:90] = 65000
    asc = tmp_path / "x.asc"
    with open(asc, "w") as f:
        f.write(f"ncols {w}\nnrows {h}\nxllcorner 10.0\nyllcorner 40.0\ncellsize 0.01\n")
        for row in a:
            f.write(" ".join(map(str, row)) + "\n")
    tif = tmp_path / "x.tif"
    subprocess.run([translate, "-q", "-ot", "UInt16", "-a_srs", "EPSG:4326", "-co", "TILED=YES",
                    "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=64", "-co", "COMPRESS=DEFLATE", str(asc), str(tif)],
                   check=True, capture_output=True)
    pad = tmp_path / "pad.bin"
    pad.write_bytes(bytes(300_000))  # after the GeoTIFF: not all of it in the archive's last 64 KiB
    arc = tmp_path / "ds.taco"
    tacozip.create(arc, [tif, pad], ["images/x.tif", "zz/pad.bin"])
    url = _publish(nginx_server, arc, "gdal/ds.taco")

    script = _doc_block("tested by tests/package/test_stack.py::test_gdal_vsizip_vsicurl_geotiff")
    assert script.startswith("URL=")
    script = f"URL={url}\n" + script.split("\n", 1)[1]
    work = tmp_path / "run"
    work.mkdir()
    _reset(nginx_server)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr)
    recs = _log(nginx_server, path="/gdal/ds.taco")
    assert "Driver: GTiff/GeoTIFF" in out.stdout and "Size is 300, 200" in out.stdout, out.stdout
    assert re.search(r"Band 1 Block=64x64 Type=UInt16", out.stdout), out.stdout
    assert "Origin = (10.000000000000000,42.000000000000000)" in out.stdout
    # gdallocationinfo -valonly X Y
    vals = [ln for ln in out.stdout.splitlines() if re.fullmatch(r"\d+", ln)]
    assert vals == [str(a[55, 75]), str(a[0, 299])] and a[55, 75] == 65000
    win = _asc_values((work / "window.asc").read_text())
    assert win.shape == (20, 40) and (win == a[45:65, 60:100]).all()
    print(f"GDAL over /vsizip/{{/vsicurl/...}}: {len(recs)} requests "
          f"({sum(r['body_bytes_sent'] for r in recs)} bytes) for the four commands: "
          f"{[(r['request'].split()[0], r['range']) for r in recs]}")
    assert all(r["status"] in (200, 206) for r in recs)
    assert [r["request"].split()[0] for r in recs].count("HEAD") == 4  # one per command
    assert len(recs) <= 40, recs  # docs/ecosystem.md: 31 (GDAL 3.6)

    # larger /vsicurl/ blocks: the end records, the directory and the
    # window's tiles in 2 GETs (docs/ecosystem.md)
    _reset(nginx_server)
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_CHUNK_SIZE": "131072", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([translate, "-q", "-srcwin", "60", "45", "40", "20", "-of", "AAIGrid",
                          f"/vsizip/{{/vsicurl/{url}}}/images/x.tif", str(work / "w2.asc")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert (_asc_values((work / "w2.asc").read_text()) == a[45:65, 60:100]).all()
    recs = _log(nginx_server, path="/gdal/ds.taco")
    print(f"gdal_translate of the window, CPL_VSIL_CURL_CHUNK_SIZE=131072: {len(recs)} requests "
          f"{[(r['request'].split()[0], r['range']) for r in recs]}")
    assert [r["request"].split()[0] for r in recs] == ["HEAD", "GET", "GET"], recs

    # without the braces GDAL 3.6 finds no archive in the path (it splits at
    # a ".zip" extension, not ".taco"): what docs/ecosystem.md warns of
    bad = subprocess.run([info, f"/vsizip//vsicurl/{url}/images/x.tif"], capture_output=True, text=True,
                         env={"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "PATH": "/usr/bin:/bin"})
    assert bad.returncode != 0 and "does not exist" in bad.stderr, (bad.stdout, bad.stderr)
    # local archives the same way, and the ".zip" form once renamed
    z = tmp_path / "ds.zip"
    shutil.copyfile(arc, z)
    for name in (f"/vsizip/{{{arc}}}/images/x.tif", f"/vsizip/{z}/images/x.tif"):
        ok = subprocess.run([translate, "-q", "-of", "AAIGrid", "-srcwin", "0", "0", "300", "200", name,
                             str(tmp_path / "all.asc")], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert (_asc_values((tmp_path / "all.asc").read_text()) == a).all()


# --------------------------------------------------------------------------- pandas

def test_pandas_csv_and_partitioned_parquet_over_http(stack, stack_url, nginx_server):
    pd = require("pandas")
    want = pd.read_csv(stack.src / "tables/x.csv")
    got = pd.read_csv(f"taco://tables/x.csv::{stack_url}")
    pd.testing.assert_frame_equal(got, want)
    # chunked reading through the text wrapper, and compression="infer" on a member name
    parts = list(pd.read_csv(f"taco://tables/x.csv::{stack_url}", chunksize=1000))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), want)
    # a directory of hive partitions with filters, as pyarrow reads it
    flt = [("year", "=", 2024), ("month", ">=", 2)]
    _reset(nginx_server)
    got = pd.read_parquet(f"taco://data::{stack_url}", filters=flt, storage_options={"default_cache_type": "none"})
    recs = _log(nginx_server)
    want = pd.read_parquet(stack.src / "data", filters=flt)
    assert len(got) == 2 * GROUPS * GROUP_ROWS
    pd.testing.assert_frame_equal(got.sort_values("id", ignore_index=True), want.sort_values("id", ignore_index=True))
    # the pruned files were never read but for the first file's footer (pyarrow
    # infers the dataset's schema from it): every other request lies in the
    # two selected members
    fs = TacoFileSystem(str(stack.archive))
    size = stack.archive.stat().st_size
    sel = [fs.info(_hive_path(2024, mm)) for mm in (2, 3)]
    first = fs.info(_hive_path(*HIVE[0]))
    footer = (first["offset"] + first["size"] - 65536, first["offset"] + first["size"])
    spans = [_span(r["range"], size) for r in recs]
    assert spans[0][1] == size  # the archive's open (its tail)
    assert spans[1] == footer, (spans, footer)
    for sp in spans[2:]:
        assert any(i["offset"] <= sp[0] and sp[1] <= i["offset"] + i["size"] for i in sel), (sp, sel)
    print(f"pd.read_parquet(dir, filters) over taco::http: {len(recs)} requests, "
          f"{sum(r['body_bytes_sent'] for r in recs)} bytes")


# --------------------------------------------------------------------------- S3

def test_dataset_and_h5netcdf_over_s3(stack, moto_s3):
    """pyarrow.dataset (its I/O threads reading at once), DuckDB and xarray on
    the archive in (moto) S3, read by the C library (its requests counted by
    the archive's stats, not by boto3).  moto closes every connection: the
    concurrent reads used to hang there
    (test_concurrent_reads_when_the_server_closes_connections)."""
    xr = require("xarray")
    duckdb = require("duckdb")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="stack/stack.taco", Body=stack.archive.read_bytes())
    opts = {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"}}
    url = f"s3://{moto_s3.bucket}/stack/stack.taco"
    flt = (pc.field("year") == 2023) & (pc.field("value") > 1.5)
    fs = TacoFileSystem(url, target_options=opts)
    got = pds.dataset("data/", filesystem=fs, partitioning="hive").to_table(filter=flt).sort_by("id")
    assert got.equals(_local_dataset(stack).to_table(filter=flt).sort_by("id")) and got.num_rows > 100

    con, ref = duckdb.connect(), duckdb.connect()
    con.register_filesystem(fs)
    for q in DUCK_QUERIES:
        got = con.sql(q.format(data="taco://data/**/*.parquet", csv="taco://tables/x.csv")).fetchall()
        want = ref.sql(q.format(data=f"{stack.src}/data/**/*.parquet", csv=f"{stack.src}/tables/x.csv")).fetchall()
        assert got == want and len(got) > 0, q
    con.close()
    ref.close()

    fs = TacoFileSystem(url, target_options=opts)
    with fs.open("nc/x.nc", cache_type="blockcache") as f:
        xr.testing.assert_identical(_nc_slice(f, xr), _nc_slice(stack.src / "nc/x.nc", xr))
    print(f"xarray/h5netcdf over taco::s3, blockcache: {fs.archive.stats} (requests, bytes)")
    assert fs.archive.stats[0] <= 4


_CONCURRENT = """
import sys, tacozip
from concurrent.futures import ThreadPoolExecutor
url, endpoint = sys.argv[1:]
ar = tacozip.open(url, key="testing", secret="testing", endpoint_url=endpoint, region="us-east-1", retries=0)
with ThreadPoolExecutor(4) as ex:
    got = list(ex.map(lambda o: ar.read_range(o, 1000), range(0, 1_200_000, 100_000)))
    # and parallel reads (one multi handle each) from several threads at once
    many = list(ex.map(lambda k: ar.read_ranges([(o + k, 500) for o in range(0, 1_200_000, 300_000)], max_gap=0),
                       range(4)))
assert all(len(b) == 500 for r in many for b in r) and len(many) == 4
print(len(got), ar.stats)
"""


def test_concurrent_reads_when_the_server_closes_connections(stack, moto_s3):
    """Reads from several threads at once (pyarrow and DuckDB make them)
    against a server that closes every connection (moto): they used to wait
    forever (CURLOPT_PIPEWAIT on single GETs with the shared connection
    cache); a subprocess with a timeout, so a hang fails the test."""
    import sys
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="stack/conc.taco", Body=stack.archive.read_bytes())
    try:
        out = subprocess.run([sys.executable, "-c", _CONCURRENT, f"s3://{moto_s3.bucket}/stack/conc.taco",
                              moto_s3.endpoint], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("4 threads reading 12 ranges of an S3 archive (moto) did not finish in 10 s")
    assert out.returncode == 0 and out.stdout.startswith("12 "), out.stderr


# --------------------------------------------------------------------------- docs

def test_docs_ecosystem_md_doctests(tmp_path, monkeypatch):
    for mod in ("pandas", "xarray", "h5netcdf", "duckdb", "dask"):
        require(mod)
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(DOC), module_relative=False, verbose=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted >= 45
