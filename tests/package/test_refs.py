"""tacozip.refs and tacozip.chunk_refs (issue 10, items 1 and 2): kerchunk
reference sets of members (JSON and kerchunk's Parquet layout) and chunk
references of HDF5 / NetCDF4, NetCDF3 and TIFF members, rebased into
archive coordinates; read by fsspec's ReferenceFileSystem (with tacozip not
importable), by zarr 3 and xarray (engine zarr), over nginx with requests
counted from its access log.  Every result is compared with the original
bytes or with the same package reading the original files.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import tacozip
import tacozip.__main__
from conftest_servers import make_archive, require

fsspec = require("fsspec")
np = require("numpy")

NESTED = {
    "top.txt": b"top level\n",
    "empty.bin": b"",
    "d1/a.txt": b"a" * 100,
    "d1/sub/c.bin": bytes(range(256)) * 40,
    "d2/big.bin": os.urandom(300_000),
}
LAYOUTS = {"default": {}, "aligned": {"alignment": 4096}, "index": {"index": True},
           "index-aligned": {"index": True, "alignment": 512}}


def publish(server, path, key):
    dest = server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    return f"{server.base}/{key}"


def reset(server):
    server.settled_log(quiet=0.1, timeout=2)  # let the lines of earlier requests land
    server.reset_log()


def log(server, expect=None):
    return server.read_log(expect=expect) if expect is not None else server.settled_log(quiet=0.1, timeout=2)


# --------------------------------------------------------------------------- member references

@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_refs_every_layout_reads_every_member_exactly(tmp_path, layout):
    arc = make_archive(tmp_path / "a.taco", NESTED, **LAYOUTS[layout])
    r = tacozip.refs(arc)
    assert r["version"] == 1
    url = os.path.realpath(arc)
    with tacozip.open(arc) as ar:
        want = {m.name: [url, m.offset, m.size] for m in ar.members}
    assert r["refs"] == want
    assert set(NESTED) <= set(r["refs"]) and "TACO_HEADER" in r["refs"]
    assert ("TACO_INDEX" in r["refs"]) == bool(LAYOUTS[layout].get("index"))
    fs = fsspec.filesystem("reference", fo=r)
    for name, data in NESTED.items():
        assert fs.cat_file(name) == data, name
    if LAYOUTS[layout].get("alignment"):
        assert all(r["refs"][n][1] % LAYOUTS[layout]["alignment"] == 0 for n in NESTED)
    # the installed command gives the same set
    out = subprocess.run([tacozip.__main__.executable(), "refs", str(arc)], capture_output=True, check=True)
    assert json.loads(out.stdout) == r


def test_refs_prefix_members_url_and_out(tmp_path):
    arc = make_archive(tmp_path / "a.taco", NESTED, alignment=4096)
    r = tacozip.refs(arc, "https://host/x.taco", prefix="d1")
    with tacozip.open(arc) as ar:
        assert r == {"version": 1, "refs": {"a.txt": ["https://host/x.taco", ar["d1/a.txt"].offset, 100],
                                            "sub/c.bin": ["https://host/x.taco", ar["d1/sub/c.bin"].offset, 10240]}}
        # an open archive; members named; the module is callable and so is its function
        assert tacozip.refs(ar, "u", members=["top.txt"]) == {"version": 1, "refs": {
            "top.txt": ["u", ar["top.txt"].offset, 10]}}
        assert tacozip.refs.refs(ar, prefix="d1/")["refs"].keys() == r["refs"].keys()
    out = tmp_path / "r.json"
    assert tacozip.refs(arc, out=out) == json.loads(out.read_text())
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []
    with open(arc, "rb") as f:  # a file object has no URL of its own
        with pytest.raises(ValueError, match="give url="):
            tacozip.refs(f)
        f.seek(0)
        assert tacozip.refs(f, "file.taco")["refs"]["top.txt"][0] == "file.taco"


def test_refs_read_without_tacozip(tmp_path):
    """fsspec's ReferenceFileSystem reads the JSON file in a process where
    tacozip cannot be imported."""
    arc = make_archive(tmp_path / "a.taco", NESTED, alignment=4096)
    out = tmp_path / "refs.json"
    tacozip.refs(arc, out=out)
    sums = {n: hashlib.sha256(d).hexdigest() for n, d in NESTED.items()}
    code = (
        "import sys, json, hashlib\n"
        "sys.modules['tacozip'] = None  # import tacozip -> ImportError\n"
        "try:\n    import tacozip\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('tacozip imported')\n"
        "import fsspec\n"
        "fs = fsspec.filesystem('reference', fo=sys.argv[1], remote_protocol='file')\n"
        "sums = json.loads(sys.argv[2])\n"
        "got = {n: hashlib.sha256(fs.cat_file(n)).hexdigest() for n in sums}\n"
        "assert got == sums, got\n"
        "assert 'taco' not in fsspec.registry\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'tacozip' and sys.modules[m]]\n"
        "print('ok', len(got))\n")
    p = subprocess.run([sys.executable, "-c", code, str(out), json.dumps(sums)], capture_output=True, text=True,
                       cwd="/")
    assert p.returncode == 0 and p.stdout.strip() == f"ok {len(NESTED)}", p


def test_refs_over_http_one_request_per_member(tmp_path, nginx_server):
    arc = make_archive(tmp_path / "h.taco", NESTED, alignment=4096)
    url = publish(nginx_server, arc, "refs/h.taco")
    r = tacozip.refs(url)
    assert all(v[0] == url for v in r["refs"].values())
    fs = fsspec.filesystem("reference", fo=r, remote_protocol="http")
    for name, data in NESTED.items():
        if not data:
            continue
        reset(nginx_server)
        assert fs.cat_file(name) == data
        recs = log(nginx_server, expect=1)
        assert len(recs) == 1 and recs[0]["range"] == f"bytes={r['refs'][name][1]}-{r['refs'][name][1] + len(data) - 1}"
    assert fs.cat_file("empty.bin") == b""
    # the command on the URL: the same set, for the requests of opening the archive (the
    # tail; and the local headers of this aligned archive), nothing more
    with tacozip.open(url) as ar:
        n_open = ar.stats[0]
    reset(nginx_server)
    out = subprocess.run([tacozip.__main__.executable(), "refs", url, "--stats"], capture_output=True, check=True)
    assert json.loads(out.stdout) == r
    assert out.stderr.startswith(f"tacozip: {n_open} requests, ".encode()), out.stderr
    assert len(log(nginx_server, expect=n_open)) == n_open


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, method in members:
            zf.writestr(name, data, compress_type=method)
    return path


def test_refs_archives_of_other_tools(tmp_path):
    stored = {"s.txt": b"stored " * 50, "d/t.bin": os.urandom(5000)}
    arc = _zip(tmp_path / "z.zip", [(n, d, zipfile.ZIP_STORED) for n, d in stored.items()]
               + [("d/", b"", zipfile.ZIP_STORED)])
    r = tacozip.refs(arc)
    assert sorted(r["refs"]) == ["d/t.bin", "s.txt"]  # the directory entry left out
    fs = fsspec.filesystem("reference", fo=r)
    assert {n: fs.cat_file(n) for n in stored} == stored
    zip_bin = shutil.which("zip")
    if zip_bin is None:
        pytest.fail("Info-ZIP zip is required (apt-get install zip)")
    src = tmp_path / "zsrc"
    for n, d in NESTED.items():
        (src / n).parent.mkdir(parents=True, exist_ok=True)
        (src / n).write_bytes(d)
    z0 = tmp_path / "z0.zip"
    subprocess.run([zip_bin, "-0", "-r", "-q", str(z0), "."], cwd=src, check=True)
    r = tacozip.refs(z0)
    fs = fsspec.filesystem("reference", fo=r)
    assert {n: fs.cat_file(n) for n in NESTED} == NESTED


def test_refs_compressed_member_is_an_error_naming_it(tmp_path):
    arc = _zip(tmp_path / "c.zip", [("s.txt", b"s" * 100, zipfile.ZIP_STORED),
                                    ("c.txt", b"c" * 1000, zipfile.ZIP_DEFLATED),
                                    ("sub/x.bin", b"x" * 1000, zipfile.ZIP_BZIP2)])
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.refs(arc)
    e = ei.value
    assert e.code == tacozip.TACOZ_ERR_UNSUPPORTED
    assert '"c.txt" (compressed, method 8)' in str(e) and '"sub/x.bin" (compressed, method 12)' in str(e), str(e)
    assert "s.txt" not in str(e) and "2 members cannot be referenced" in e.detail
    with pytest.raises(tacozip.TacozipError, match="c.txt"):
        tacozip.refs(arc, members=["s.txt", "c.txt"])
    assert list(tacozip.refs(arc, members=["s.txt"])["refs"]) == ["s.txt"]
    out = tmp_path / "r.json"
    with pytest.raises(tacozip.TacozipError):
        tacozip.refs(arc, out=out)
    assert not out.exists()


def test_refs_bad_input(tmp_path):
    bad = tmp_path / "not.taco"
    bad.write_bytes(b"not a zip file " * 100)
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.refs(bad)
    with pytest.raises(tacozip.TacozipError) as e2:
        tacozip.open(bad)
    assert ei.value.code == e2.value.code and str(ei.value) == str(e2.value)  # the library's error
    arc = make_archive(tmp_path / "a.taco", NESTED)
    with pytest.raises(ValueError, match="unknown reference format 'xml'"):
        tacozip.refs(arc, format="xml")
    with pytest.raises(ValueError, match="give out="):
        tacozip.refs(arc, format="parquet")
    with pytest.raises(ValueError, match='no member under "zz/"'):
        tacozip.refs(arc, prefix="zz")
    with pytest.raises(KeyError, match="nope"):
        tacozip.refs(arc, members=["nope"])
    with pytest.raises(ValueError, match="not under the prefix"):
        tacozip.refs(arc, members=["top.txt"], prefix="d1")
    with pytest.raises(tacozip.TacozipError):
        tacozip.refs(tmp_path / "missing.taco")


def _module(*args, cwd="/"):
    return subprocess.run([sys.executable, "-m", "tacozip.refs", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_python_dash_m_tacozip_refs(tmp_path):
    arc = make_archive(tmp_path / "a.taco", NESTED, alignment=4096)
    p = _module(arc)
    assert p.returncode == 0 and p.stderr == "", p
    assert json.loads(p.stdout) == tacozip.refs(arc)
    p = _module(arc, "--url", "http://h/a.taco", "--prefix", "d1", "-o", tmp_path / "o.json")
    assert p.returncode == 0 and p.stdout == "", p
    assert json.loads((tmp_path / "o.json").read_text()) == tacozip.refs(arc, "http://h/a.taco", prefix="d1")
    p = _module(arc, "--format=json", f"--output={tmp_path / 'o2.json'}")
    assert p.returncode == 0 and json.loads((tmp_path / "o2.json").read_text())["version"] == 1
    assert _module("--help").stdout.startswith("usage: python -m tacozip.refs")
    for args, code, text in (([arc, "--bogus"], 2, "unknown option '--bogus'"),
                             ([arc, "--format", "xml"], 2, "unknown format 'xml'"),
                             ([arc, "--format", "parquet"], 2, "give -o OUT"),
                             ([], 2, "needs one ARCHIVE"),
                             ([arc, arc], 2, "unexpected argument"),
                             ([arc, "--url"], 2, "needs a value"),
                             ([tmp_path / "missing.taco"], 1, "missing.taco"),
                             ([arc, "--prefix", "zz"], 1, "no member under")):
        p = _module(*args)
        assert p.returncode == code and text in p.stderr and p.stdout == "", (args, p)
    zarc = _zip(tmp_path / "c.zip", [("c.txt", b"c" * 1000, zipfile.ZIP_DEFLATED)])
    p = _module(zarc)
    assert p.returncode == 1 and '"c.txt" (compressed, method 8)' in p.stderr, p


# --------------------------------------------------------------------------- Parquet layout

N_CHUNKS = 100_000


def _zarr_v2_dir(root, n=N_CHUNKS):
    """A Zarr v2 hierarchy written by hand (zarr 3 would take minutes for
    100,000 chunks): group attrs, a 1-D int32 array of n one-element chunks
    without compressor, a small 2-D float array of 4 chunks."""
    root.mkdir()
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (root / ".zattrs").write_text(json.dumps({"title": "parquet refs"}))
    a = root / "a"
    a.mkdir()
    (a / ".zarray").write_text(json.dumps({"zarr_format": 2, "shape": [n], "chunks": [1], "dtype": "<i4",
                                           "compressor": None, "fill_value": 0, "filters": None, "order": "C"}))
    (a / ".zattrs").write_text(json.dumps({"_ARRAY_DIMENSIONS": ["x"]}))
    names = [".zgroup", ".zattrs", "a/.zarray", "a/.zattrs"]
    for i in range(n):
        (a / str(i)).write_bytes(np.int32(i * 3).tobytes())
        names.append(f"a/{i}")
    b = root / "g" / "b"
    b.mkdir(parents=True)
    (root / "g" / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (b / ".zarray").write_text(json.dumps({"zarr_format": 2, "shape": [4, 6], "chunks": [2, 3], "dtype": "<f8",
                                           "compressor": None, "fill_value": None, "filters": None, "order": "C"}))
    vals = np.arange(24, dtype="<f8").reshape(4, 6)
    names += ["g/.zgroup", "g/b/.zarray"]
    for i in range(2):
        for j in range(2):
            (b / f"{i}.{j}").write_bytes(np.ascontiguousarray(vals[2 * i:2 * i + 2, 3 * j:3 * j + 3]).tobytes())
            names.append(f"g/b/{i}.{j}")
    return names, vals


def test_parquet_100000_members_read_lazily(tmp_path):
    require("pandas")
    require("fastparquet")  # what fsspec's LazyReferenceMapper reads Parquet references with
    zarr = require("zarr")
    names, vals = _zarr_v2_dir(tmp_path / "store")
    arc = tmp_path / "z.taco"
    tacozip.create(arc, [tmp_path / "store" / n for n in names], [f"store/{n}" for n in names], fsync=False)
    out = tmp_path / "refs.parq"
    assert tacozip.refs(arc, prefix="store", format="parquet", out=out, record_size=10_000) == str(out)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [".zmetadata", "a/refs.0.parq"] + [f"a/refs.{i}.parq" for i in range(1, 10)] + ["g/b/refs.0.parq"] \
        or sorted(files) == sorted([".zmetadata", "g/b/refs.0.parq"] + [f"a/refs.{i}.parq" for i in range(10)])
    meta = json.loads((out / ".zmetadata").read_text())
    assert meta["record_size"] == 10_000 and meta["metadata"]["a/.zarray"]["shape"] == [N_CHUNKS]
    with tacozip.open(arc) as ar:
        members = {m.name: m for m in ar.members}
    fs = fsspec.filesystem("reference", fo=str(out), remote_protocol="file")
    lazy = fs.references
    assert type(lazy).__name__ == "LazyReferenceMapper"
    for i in (0, 1, 12_345, N_CHUNKS - 1):
        assert fs.cat_file(f"a/{i}") == np.int32(i * 3).tobytes()
        m = members[f"store/a/{i}"]
        assert lazy[f"a/{i}"][1:] == [m.offset, m.size]
    assert lazy.open_refs.cache_info().currsize == 3  # records 0, 1 and 9 loaded, not all ten
    g = zarr.open_group(fs.get_mapper(""), mode="r", zarr_format=2)
    assert g.attrs["title"] == "parquet refs"
    np.testing.assert_array_equal(g["g/b"][:], vals)
    np.testing.assert_array_equal(g["a"][99_990:], np.arange(99_990, N_CHUNKS, dtype="<i4") * 3)
    # the JSON set of the same members says the same
    j = tacozip.refs(arc, prefix="store")["refs"]
    assert len(j) == len(names) and j["a/12345"][1:] == lazy["a/12345"][1:]


def test_parquet_without_fastparquet_is_written_with_pyarrow(tmp_path, monkeypatch):
    require("pyarrow")
    from fsspec.implementations.reference import LazyReferenceMapper

    import tacozip.refs as refs_module

    names, vals = _zarr_v2_dir(tmp_path / "store", n=50)
    arc = tmp_path / "z.taco"
    tacozip.create(arc, [tmp_path / "store" / n for n in names], names, fsync=False)
    monkeypatch.setattr(refs_module, "_parquet_engine", lambda: "pyarrow")
    out = tmp_path / "p.parq"
    tacozip.refs(arc, format="parquet", out=out, record_size=20)
    lazy = LazyReferenceMapper(str(out), fs=fsspec.filesystem("file"), engine="pyarrow")
    fs = fsspec.filesystem("reference", fo=lazy, remote_protocol="file")
    assert [fs.cat_file(f"a/{i}") for i in (0, 21, 49)] == [np.int32(i * 3).tobytes() for i in (0, 21, 49)]
    assert np.frombuffer(fs.cat_file("g/b/1.1"), "<f8").tolist() == vals[2:, 3:].ravel().tolist()
    assert json.loads(fs.cat_file("a/.zarray"))["shape"] == [50]


def test_python_dash_m_parquet(tmp_path):
    require("fastparquet")
    names, _ = _zarr_v2_dir(tmp_path / "store", n=30)
    arc = tmp_path / "z.taco"
    tacozip.create(arc, [tmp_path / "store" / n for n in names], [f"store/{n}" for n in names], fsync=False)
    p = _module(arc, "--prefix", "store", "--format", "parquet", "-o", tmp_path / "m.parq", "--record-size", "10")
    assert p.returncode == 0 and p.stdout == "", p
    tacozip.refs(arc, prefix="store", format="parquet", out=tmp_path / "f.parq", record_size=10)
    for f in (".zmetadata", "a/refs.0.parq", "a/refs.2.parq", "g/b/refs.0.parq"):
        assert (tmp_path / "m.parq" / f).read_bytes() == (tmp_path / "f.parq" / f).read_bytes(), f
    fs = fsspec.filesystem("reference", fo=str(tmp_path / "m.parq"), remote_protocol="file")
    assert fs.cat_file("a/29") == np.int32(87).tobytes()
    p = _module(arc, "--prefix", "store", "--format", "parquet", "-o", tmp_path / "x.parq", "--record-size", "0")
    assert p.returncode == 2 and "--record-size needs a positive integer" in p.stderr, p


def test_parquet_needs_a_zarr_v2_hierarchy(tmp_path):
    arc = make_archive(tmp_path / "a.taco", NESTED)
    out = tmp_path / "p"
    with pytest.raises(ValueError, match='"top.txt" is not a JSON document'):
        tacozip.refs(arc, format="parquet", out=out)
    with pytest.raises(ValueError, match='"d1/a.txt" is not a chunk of a Zarr v2 array'):
        tacozip.refs(arc, members=["d1/a.txt"], format="parquet", out=out)
    assert not out.exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".p.")] == []


# --------------------------------------------------------------------------- chunk references

NC_SHAPE = (24, 60, 80)  # time, lat, lon


def _datasets(xr, pd):
    rng = np.random.default_rng(10)
    times = pd.date_range("2024-01-01", periods=NC_SHAPE[0], freq="D")
    big = xr.Dataset({"t2m": (("time", "lat", "lon"), rng.normal(280, 5, NC_SHAPE).astype("f4"),
                              {"units": "K", "long_name": "2 m temperature"}),
                      "precip": (("time", "lat", "lon"), rng.gamma(1, 2, NC_SHAPE).astype("f4")),
                      "u10": (("time", "lat", "lon"), rng.normal(0, 3, NC_SHAPE).astype("f8")),
                      "elev": (("lat", "lon"), rng.normal(500, 100, NC_SHAPE[1:]))},
                     coords={"time": times, "lat": np.linspace(-10, 10, NC_SHAPE[1]),
                             "lon": np.linspace(0, 20, NC_SHAPE[2])},
                     attrs={"title": "chunk refs test"})
    enc = {"precip": {"chunksizes": (1,) + NC_SHAPE[1:], "zlib": True, "complevel": 4},
           "u10": {"chunksizes": (6, 30, 40), "zlib": True, "shuffle": True}}
    monthly = []
    for m in range(1, 13):
        t = pd.date_range(f"2023-{m:02d}-01", periods=pd.Period(f"2023-{m:02d}").days_in_month, freq="D")
        monthly.append(xr.Dataset({"t2m": (("time", "lat", "lon"), rng.normal(280, 5, (len(t), 4, 5)).astype("f4"))},
                                  coords={"time": t, "lat": np.arange(4.0), "lon": np.arange(5.0)}))
    return big, enc, monthly


class NcArchives:
    def __init__(self, src, names, archives):
        self.src, self.names, self.archives = src, names, archives


@pytest.fixture(scope="module")
def nc(tmp_path_factory):
    xr = require("xarray")
    require("h5netcdf")
    pd = require("pandas")
    tmp = tmp_path_factory.mktemp("nc")
    src = tmp / "src"
    (src / "monthly").mkdir(parents=True)
    big, enc, monthly = _datasets(xr, pd)
    big.to_netcdf(src / "big.nc", engine="h5netcdf", encoding=enc)
    names = ["big.nc"]
    for m, ds in enumerate(monthly, 1):
        # one chunk per day (kerchunk concatenates whole chunks, and months
        # differ in length); one time epoch for all (kerchunk compares raw values)
        ds.to_netcdf(src / f"monthly/2023-{m:02d}.nc", engine="h5netcdf",
                     encoding={"t2m": {"chunksizes": (1, 4, 5)}, "time": {"units": "days since 2023-01-01"}})
        names.append(f"monthly/2023-{m:02d}.nc")
    big.isel(time=slice(0, 5)).to_netcdf(src / "small3.nc", engine="scipy", format="NETCDF3_64BIT")
    names.append("small3.nc")
    (src / "notes.txt").write_text("not an array")
    names.append("notes.txt")
    archives = {}
    for layout, kw in (("default", {}), ("aligned", {"alignment": 4096})):
        archives[layout] = tmp / f"{layout}.taco"
        tacozip.create(archives[layout], [src / n for n in names], names, fsync=False, **kw)
    return NcArchives(src, names, archives)


def _open_refs(xr, refs, protocol, zarr_format=None):
    so = {"fo": refs, "remote_protocol": protocol}
    if protocol == "http":  # zarr 3 makes the reference filesystem asynchronous: its http target must be too
        so["remote_options"] = {"asynchronous": True}
    bk = {"consolidated": False, "storage_options": so}
    if zarr_format:
        bk["zarr_format"] = zarr_format
    return xr.open_dataset("reference://", engine="zarr", backend_kwargs=bk)


@pytest.mark.parametrize("layout", ["default", "aligned"])
def test_chunk_refs_netcdf4_over_http_identical(nc, nginx_server, layout):
    xr = require("xarray")
    url = publish(nginx_server, nc.archives[layout], f"chunks/{layout}.taco")
    with tacozip.open(nc.archives[layout]) as ar:
        m = ar["big.nc"]
    with tacozip.open(url) as ar:
        opened = ar.stats  # the archive's open, counted apart (aligned archives: local headers read too)
        reset(nginx_server)
        r = tacozip.chunk_refs(ar, "big.nc")
        recs = log(nginx_server, expect=ar.stats[0] - opened[0])
    scan_requests, scan_bytes = len(recs), sum(x["body_bytes_sent"] for x in recs)
    print(f"\nchunk_refs(big.nc, {layout}) over nginx: open {opened[0]} requests, {opened[1]} bytes; scan "
          f"{scan_requests} requests, {scan_bytes} bytes (member {m.size} bytes)")
    assert r == tacozip.chunk_refs(url, "big.nc")  # opened here from the URL: the same set
    assert scan_bytes < m.size // 10 and scan_requests <= 12, (scan_requests, scan_bytes, m.size)
    lists = [v for v in r["refs"].values() if isinstance(v, list)]
    assert lists and all(v[0] == url and m.offset <= v[1] and v[1] + v[2] <= m.offset + m.size for v in lists)
    want = xr.open_dataset(nc.src / "big.nc", engine="h5netcdf").load()
    for zf in (None, 2):  # zarr 3 detects the v2 metadata itself; zarr_format=2 says so
        got = _open_refs(xr, r, "http", zf).load()
        xr.testing.assert_identical(got, want)
    # one request per chunk read: precip has one compressed chunk per time step
    ds = _open_refs(xr, r, "http")
    reset(nginx_server)
    vals = ds["precip"].values
    recs = log(nginx_server, expect=NC_SHAPE[0])
    np.testing.assert_array_equal(vals, want["precip"].values)
    assert len(recs) == NC_SHAPE[0], [x["range"] for x in recs]
    assert all(x["status"] == 206 for x in recs)
    reset(nginx_server)
    ds["u10"].isel(time=slice(0, 6), lat=slice(0, 30), lon=slice(0, 40)).values  # one chunk of (6, 30, 40)
    assert len(log(nginx_server, expect=1)) == 1


def test_chunk_refs_twelve_months_combined(nc, nginx_server):
    xr = require("xarray")
    url = publish(nginx_server, nc.archives["aligned"], "chunks/combine.taco")
    with tacozip.open(url) as ar:
        opened = ar.stats
        reset(nginx_server)
        r = tacozip.chunk_refs(ar, prefix="monthly", concat_dims=["time"], identical_dims=["lat", "lon"])
        recs = log(nginx_server, expect=ar.stats[0] - opened[0])
        sizes = sum(m.size for m in ar.members if m.name.startswith("monthly/"))
    print(f"\nchunk_refs of 12 monthly members ({sizes} bytes) + MultiZarrToZarr over nginx: open {opened[0]} "
          f"requests, {opened[1]} bytes; scan {len(recs)} requests, {sum(x['body_bytes_sent'] for x in recs)} bytes")
    assert len(recs) <= 12  # the members' first 16 KiB in one batch, then what the scanners miss
    got = _open_refs(xr, r, "http").load()
    originals = [xr.open_dataset(nc.src / f"monthly/2023-{m:02d}.nc", engine="h5netcdf").load() for m in range(1, 13)]
    want = xr.concat(originals, dim="time")
    assert got.sizes["time"] == 365
    xr.testing.assert_equal(got, want)
    assert got.t2m.attrs == want.t2m.attrs
    # without combining: one reference set per member
    per = tacozip.chunk_refs(nc.archives["aligned"], prefix="monthly")
    assert sorted(per) == [f"monthly/2023-{m:02d}.nc" for m in range(1, 13)]
    xr.testing.assert_identical(_open_refs(xr, per["monthly/2023-02.nc"], "file").load(), originals[1])


def test_chunk_refs_netcdf3_member(nc):
    xr = require("xarray")
    require("scipy")
    r = tacozip.chunk_refs(nc.archives["aligned"], "small3.nc")
    want = xr.open_dataset(nc.src / "small3.nc", engine="scipy").load()
    got = _open_refs(xr, r, "file").load()
    xr.testing.assert_equal(got, want)


def test_chunk_refs_tiff_member(tmp_path):
    tifffile = require("tifffile")
    zarr = require("zarr")
    img = np.arange(256 * 320, dtype="<u2").reshape(256, 320)
    tifffile.imwrite(tmp_path / "t.tif", img, tile=(64, 64), metadata=None)  # a plain tiled TIFF
    arc = tmp_path / "t.taco"
    tacozip.create(arc, [tmp_path / "t.tif"], ["img/t.tif"], alignment=4096)
    r = tacozip.chunk_refs(arc, "img/t.tif")
    fs = fsspec.filesystem("reference", fo=r, remote_protocol="file")
    a = zarr.open_array(fs.get_mapper(""), mode="r", zarr_format=2)
    np.testing.assert_array_equal(a[:], img)
    with tacozip.open(arc) as ar:
        m = ar["img/t.tif"]
    assert all(m.offset <= v[1] < m.offset + m.size for v in r["refs"].values() if isinstance(v, list))


def test_chunk_refs_bad_input(nc, tmp_path):
    with pytest.raises(ValueError, match='"notes.txt" is not HDF5/NetCDF4, NetCDF3 or TIFF'):
        tacozip.chunk_refs(nc.archives["default"], "notes.txt")
    with pytest.raises(KeyError):
        tacozip.chunk_refs(nc.archives["default"], "nope.nc")
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(nc.src / "big.nc", "big.nc", compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.chunk_refs(z)
    assert ei.value.code == tacozip.TACOZ_ERR_UNSUPPORTED and '"big.nc" (compressed, method 8)' in str(ei.value)
    with pytest.raises(ValueError, match="concat_dims"):
        tacozip.chunk_refs(nc.archives["default"], prefix="monthly", combine=True)


# --------------------------------------------------------------------------- docs

def test_references_md_examples(tmp_path, monkeypatch):
    import doctest

    monkeypatch.chdir(tmp_path)
    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "references.md"
    result = doctest.testfile(str(doc), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 8
    assert result.failed == 0
