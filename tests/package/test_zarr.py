"""tacozip.zarr (issue 10, item 3): TacoStore, a read-only zarr v3 store
over a TACO archive, and pack(), a Zarr directory store written as a zipped
Zarr (RFC-9 member order).

* the store API against zarr's own LocalStore on the original directory
  (every key, byte ranges, listings), read-only errors, pickling, equality;
* zarr.open_group / open_array / xarray.open_zarr on the store: locally,
  over nginx (request counts from its access log: one request per chunk,
  fewer than N for N neighbouring chunks), over moto S3, and in the worker
  processes of a Dask LocalCluster;
* pack(): member order, header entry 0 = the metadata block, validate deep,
  zarr's own ZipStore reads the result with identical data (zarr v2 and
  v3), bad input refused before anything is written;
* the examples of docs/zarr.md as doctests.
"""

import asyncio
import doctest
import os
import pathlib
import pickle
import socket
import time
import zipfile

import pytest

import tacozip
from conftest_servers import require

np = require("numpy")
zarr = require("zarr")
xr = require("xarray")
require("numcodecs")
import tacozip.zarr as tz  # noqa: E402
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest  # noqa: E402
from zarr.core.buffer import default_buffer_prototype  # noqa: E402
from zarr.storage import LocalStore, ZipStore  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "zarr.md"
PROTO = default_buffer_prototype()


# --------------------------------------------------------------------------- data

def _build_v3(path: pathlib.Path) -> None:
    g = zarr.open_group(str(path), mode="w", zarr_format=3, attributes={"title": "v3 store"})
    # random float32 (zstd keeps it near 9.6 KB a chunk): a ~1 MB archive, far more than
    # the 65 KiB a remote open reads from its end
    t = g.create_array("temp", shape=(400, 600), chunks=(40, 60), dtype="float32")
    t[:] = np.random.default_rng(1).normal(size=(400, 600)).astype("float32")
    sub = g.create_group("sub", attributes={"kind": "labels"})
    lab = sub.create_array("labels", shape=(25,), chunks=(5,), dtype="int16", compressors=None)
    lab[:] = np.arange(25, dtype="int16")
    sh = g.create_array("sharded", shape=(32, 32), chunks=(4, 4), shards=(16, 16), dtype="uint8")
    sh[:] = (np.arange(32 * 32) % 251).astype("uint8").reshape(32, 32)


def _build_v2(path: pathlib.Path) -> None:
    g = zarr.open_group(str(path), mode="w", zarr_format=2, attributes={"title": "v2 store"})
    a = g.create_array("a", shape=(30, 20), chunks=(10, 10), dtype="int32")
    a[:] = np.arange(600, dtype="int32").reshape(30, 20)
    b = g.create_group("grp").create_array("b", shape=(7,), chunks=(3,), dtype="float64")
    b[:] = np.linspace(0, 1, 7)
    zarr.consolidate_metadata(str(path))


def _build_dataset(path: pathlib.Path, zarr_format: int) -> "xr.Dataset":
    rng = np.random.default_rng(2)
    ds = xr.Dataset({"t": (("time", "y", "x"), rng.normal(size=(8, 60, 80))),
                     "mask": (("y", "x"), rng.integers(0, 2, size=(60, 80)).astype("uint8"))},
                    coords={"time": np.arange(8), "y": np.linspace(0, 1, 60), "x": np.linspace(0, 1, 80)},
                    attrs={"source": "tacozip test"})
    enc = {"t": {"chunks": (1, 20, 20)}, "mask": {"chunks": (20, 20)}}
    ds.to_zarr(str(path), mode="w", zarr_format=zarr_format, encoding=enc, consolidated=True)
    return ds


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("zarr")
    out = {}
    for name, build in (("v3", _build_v3), ("v2", _build_v2)):
        src = d / f"{name}.zarr"
        build(src)
        arc = d / f"{name}.taco"
        tz.pack(src, arc, fsync=False)
        out[name] = (src, arc)
    for fmt in (2, 3):
        src = d / f"ds{fmt}.zarr"
        _build_dataset(src, fmt)
        arc = d / f"ds{fmt}.taco"
        tz.pack(src, arc, fsync=False)
        out[f"ds{fmt}"] = (src, arc)
    return out


def _files(src: pathlib.Path):
    return {str(p.relative_to(src)).replace(os.sep, "/"): p.read_bytes() for p in sorted(src.rglob("*"))
            if p.is_file()}


def _run(coro):
    return asyncio.run(coro)


async def _alist(ait):
    return [x async for x in ait]


def _same_group(a, b):
    """Two zarr groups hold the same arrays, attributes and data."""
    assert dict(a.attrs) == dict(b.attrs)
    ka, kb = sorted(a.array_keys()), sorted(b.array_keys())
    assert ka == kb
    for k in ka:
        x, y = a[k], b[k]
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x[...], y[...])
    ga, gb = sorted(a.group_keys()), sorted(b.group_keys())
    assert ga == gb
    for k in ga:
        _same_group(a[k], b[k])


# --------------------------------------------------------------------------- packing

META = tz.METADATA_NAMES


@pytest.mark.parametrize("which", ["v3", "v2", "ds2", "ds3"])
def test_pack_order_header_validate(data, which):
    src, arc = data[which]
    files = _files(src)
    with tacozip.open(arc) as ar:
        names = ar.names()
        assert names[0] == "TACO_HEADER"
        assert names[1:] == tz.pack_order(files)
        assert sorted(names[1:]) == sorted(files)
        # metadata first, breadth first, the root's node document first of all
        k = sum(1 for n in names[1:] if n.rsplit("/", 1)[-1] in META)
        meta, chunks = names[1:1 + k], names[1 + k:]
        assert meta[0] in ("zarr.json", ".zgroup")
        depths = [n.count("/") for n in meta]
        assert depths == sorted(depths)
        assert chunks == sorted(chunks)
        assert not any(n.rsplit("/", 1)[-1] in META for n in chunks)
        # entry 0: first metadata local header .. end of the last metadata data
        first, last = ar[meta[0]], ar[meta[-1]]
        assert ar.header == [(first.header_offset, last.offset + last.size - first.header_offset)]
        assert ar.span(meta) == ar.header[0]
        assert all(m.method == 0 for m in ar.members)
        for n in files:
            assert ar.read(n) == files[n]
    assert tacozip.validate(arc, tacozip.TACOZIP_VALIDATE_DEEP) == 0


def test_pack_header_block_alone_holds_the_metadata(data):
    """A header-only client: the 157 header bytes, then one range, gives
    every metadata document (local header + data, in order)."""
    src, arc = data["v3"]
    (off, length), = tacozip.read_header(arc)
    blob = arc.read_bytes()[off:off + length]
    with tacozip.open(arc) as ar:
        meta = [m for m in ar.members[1:] if m.name.rsplit("/", 1)[-1] in META]
        for m in meta:
            assert blob[m.header_offset - off:m.header_offset - off + 4] == b"PK\x03\x04"
            assert blob[m.offset - off:m.offset - off + m.size] == (src / m.name).read_bytes()
        assert meta[-1].offset + meta[-1].size == off + length


@pytest.mark.parametrize("which", ["v3", "v2"])
def test_zipstore_reads_the_packed_archive(data, which):
    src, arc = data[which]
    with ZipStore(arc, mode="r") as zs:
        _same_group(zarr.open_group(zs, mode="r"), zarr.open_group(LocalStore(src, read_only=True), mode="r"))
    with zipfile.ZipFile(arc) as z:
        assert z.testzip() is None
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())


@pytest.mark.parametrize("fmt", [2, 3])
def test_xarray_on_zipstore_and_taco_store(data, fmt):
    src, arc = data[f"ds{fmt}"]
    want = xr.open_zarr(str(src)).load()
    with ZipStore(arc, mode="r") as zs:
        xr.testing.assert_identical(xr.open_zarr(zs).load(), want)
    with tz.TacoStore(arc) as store:
        xr.testing.assert_identical(xr.open_zarr(store).load(), want)


def test_pack_entries_alignment_index(tmp_path, data):
    src, _ = data["v3"]
    out = tmp_path / "e.taco"
    assert tz.pack(src, out, entries=[(1, 2), (3, 4)], fsync=False) == [(1, 2), (3, 4)]
    assert tacozip.read_header(out) == [(1, 2), (3, 4)]
    out = tmp_path / "a.taco"
    for opts, first in (({"alignment": 4096}, 1), ({"alignment": 512, "index": True}, 2)):
        written = tz.pack(src, out, fsync=False, **opts)
        with tacozip.open(out) as ar:
            assert ar.names()[:first] == ["TACO_HEADER", "TACO_INDEX"][:first]
            meta = [n for n in ar.names()[first:] if n.rsplit("/", 1)[-1] in META]
            assert written == [ar.span(meta)] == ar.header
            assert all(m.offset % opts["alignment"] == 0 for m in ar.members[first:])
        assert tacozip.validate(out, tacozip.TACOZIP_VALIDATE_DEEP) == 0
        with tz.TacoStore(out) as store:
            _same_group(zarr.open_group(store, mode="r"), zarr.open_group(str(src), mode="r"))


def test_pack_replaces_and_leaves_nothing_else(tmp_path, data):
    src, _ = data["v2"]
    out = tmp_path / "r.taco"
    out.write_bytes(b"old")
    out.chmod(0o640)
    tz.pack(src, out)
    assert sorted(os.listdir(tmp_path)) == ["r.taco"]
    assert out.stat().st_mode & 0o7777 == 0o640
    new = tmp_path / "n.taco"
    tz.pack(src, new, fsync=False)
    um = os.umask(0)
    os.umask(um)
    assert new.stat().st_mode & 0o7777 == 0o666 & ~um
    assert tacozip.validate(out, tacozip.TACOZIP_VALIDATE_DEEP) == 0


@pytest.mark.parametrize("which", ["v3", "v2"])
def test_command_packs_like_pack(tmp_path, data, which):
    """tacozip create --zarr (the executable installed with the package)
    gives the same names, offsets and header entry as pack()."""
    import subprocess
    import sys

    src, arc = data[which]
    exe = pathlib.Path(os.path.dirname(sys.executable)) / "tacozip"
    for opts, args in (({}, []), ({"alignment": 512, "index": True}, ["--align", "512", "--index"])):
        a, b = tmp_path / "py.taco", tmp_path / "cli.taco"
        tz.pack(src, a, fsync=False, **opts)
        subprocess.run([str(exe), "create", "--zarr", str(src), str(b), "--no-fsync", *args], check=True)
        with tacozip.open(a) as x, tacozip.open(b) as y:
            assert [(m.name, m.offset, m.size, m.crc) for m in x.members[1:]] == \
                [(m.name, m.offset, m.size, m.crc) for m in y.members[1:]]
            assert x.header == y.header
        assert a.stat().st_size == b.stat().st_size


def _small_store(root: pathlib.Path) -> pathlib.Path:
    g = zarr.open_group(str(root), mode="w", zarr_format=3)
    g.create_array("a", shape=(4,), chunks=(2,), dtype="uint8")[:] = np.arange(4, dtype="uint8")
    return root


def _refused(tmp_path, src, *words):
    out = tmp_path / "out" / "bad.taco"
    out.parent.mkdir(exist_ok=True)
    with pytest.raises(tz.ZarrPackError) as ei:
        tz.pack(src, out)
    for w in words:
        assert w in str(ei.value), str(ei.value)
    assert "nothing written" in str(ei.value)
    assert os.listdir(out.parent) == []
    return ei.value


def test_pack_bad_symlink_loop(tmp_path):
    src = _small_store(tmp_path / "s.zarr")
    os.symlink("..", src / "a" / "up")
    _refused(tmp_path, src, "a/up", "symbolic link loop")
    os.unlink(src / "a" / "up")
    os.symlink("self", src / "self")
    _refused(tmp_path, src, "self", "symbolic link loop")


def test_pack_bad_non_utf8_name(tmp_path):
    src = _small_store(tmp_path / "s.zarr")
    with open(os.fsencode(str(src / "a")) + b"/\xff", "wb") as f:
        f.write(b"x")
    _refused(tmp_path, src, "not UTF-8", "\\xff")


def test_pack_bad_not_regular(tmp_path):
    src = _small_store(tmp_path / "s.zarr")
    os.mkfifo(src / "pipe")
    _refused(tmp_path, src, "pipe", "not a regular file")
    os.unlink(src / "pipe")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(src / "sock"))
        _refused(tmp_path, src, "sock", "not a regular file")
    finally:
        s.close()


def test_pack_bad_not_a_zarr_store(tmp_path):
    d = tmp_path / "plain"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    _refused(tmp_path, d, "not a Zarr store")
    f = tmp_path / "f.bin"
    f.write_bytes(b"1")
    _refused(tmp_path, f, "not a directory")


def test_pack_symlinks_followed(tmp_path):
    src = _small_store(tmp_path / "s.zarr")
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_bytes(b"linked")
    os.symlink(other, src / "linked")
    out = tmp_path / "l.taco"
    tz.pack(src, out, fsync=False)
    with tacozip.open(out) as ar:
        assert ar.read("linked/x") == b"linked"


# --------------------------------------------------------------------------- the store API

def _ranges(size):
    return [None, RangeByteRequest(0, 1), RangeByteRequest(1, max(size - 1, 1)), RangeByteRequest(0, size + 10),
            RangeByteRequest(size, size + 5), OffsetByteRequest(0), OffsetByteRequest(size // 2),
            OffsetByteRequest(size + 3), SuffixByteRequest(3), SuffixByteRequest(size + 7), SuffixByteRequest(0)]


@pytest.mark.parametrize("which", ["v3", "v2"])
def test_store_matches_local_store(data, which):
    src, arc = data[which]
    local = LocalStore(src, read_only=True)
    store = tz.TacoStore(arc)

    async def check():
        keys = sorted(await _alist(local.list()))
        assert await _alist(store.list()) == keys  # sorted, TACO_HEADER hidden
        for k in keys:
            size = await local.getsize(k)
            assert await store.getsize(k) == size
            assert await store.exists(k)
            for r in _ranges(size):
                want = await local.get(k, PROTO, r)
                got = await store.get(k, PROTO, r)
                assert got.to_bytes() == want.to_bytes(), (k, r)
        assert await store.get("nope", PROTO) is None
        assert not await store.exists("nope") and not await store.exists("TACO_HEADER")
        with pytest.raises(FileNotFoundError):
            await store.getsize("nope")
        for prefix in ["", "temp", "temp/", "sub/", "sub/labels/", "a/", "grp", "grp/b/", "x/"]:
            assert sorted(await _alist(store.list_dir(prefix))) == sorted(await _alist(local.list_dir(prefix))), prefix
            assert await _alist(store.list_prefix(prefix)) == sorted(await _alist(local.list_prefix(prefix))), prefix
            assert await store.getsize_prefix(prefix) == await local.getsize_prefix(prefix), prefix
        assert await store.is_empty("x/") and not await store.is_empty("")
        # get_partial_values: in the order asked, None for missing keys, keys repeated
        asks = [(k, r) for k in keys for r in (None, SuffixByteRequest(2))] + [("nope", None), (keys[0], None)]
        got = await store.get_partial_values(PROTO, asks)
        want = [None if k == "nope" else (await local.get(k, PROTO, r)).to_bytes() for k, r in asks]
        assert [g if g is None else g.to_bytes() for g in got] == want
        # many gets at once (one batch) give each its own bytes
        got = await asyncio.gather(*[store.get(k, PROTO) for k in keys])
        assert [g.to_bytes() for g in got] == [(await local.get(k, PROTO)).to_bytes() for k in keys]
        got = dict([kv async for kv in store._get_many([(k, PROTO, None) for k in keys])])
        assert {k: v.to_bytes() for k, v in got.items()} == {k: (await local.get(k, PROTO)).to_bytes() for k in keys}

    _run(check())
    assert store.supports_listing and not store.supports_writes and not store.supports_deletes
    assert store.read_only
    store.close()


def test_store_root_prefix(tmp_path, data):
    src, _ = data["v3"]
    files = _files(src)
    order = tz.pack_order(files)
    arc = tmp_path / "nested.taco"
    tacozip.create(arc, [src / n for n in order] + [src / "zarr.json"],
                   [f"data/img.zarr/{n}" for n in order] + ["other/zarr.json"])
    store = tz.TacoStore(arc, root="data/img.zarr")
    _same_group(zarr.open_group(store, mode="r"), zarr.open_group(str(src), mode="r"))
    assert _run(_alist(store.list())) == sorted(files)
    assert store != tz.TacoStore(arc) and store == tz.TacoStore(arc, root="data/img.zarr/")
    for bad in ("../x", "a//b", "./a"):
        with pytest.raises(ValueError):
            tz.TacoStore(arc, root=bad)
    with pytest.raises(ValueError, match="no member under root"):
        tz.TacoStore(arc, root="missing")
    p = pickle.loads(pickle.dumps(store))
    assert p == store and p.root == "data/img.zarr/"


def test_read_only_errors(data):
    src, arc = data["v3"]
    store = tz.TacoStore(arc)
    buf = PROTO.buffer.from_bytes(b"x")
    for coro in (store.set("k", buf), store.set_if_not_exists("k", buf), store.delete("temp/zarr.json"),
                 store.delete_dir("temp"), store.clear(), store._set_many([("k", buf)])):
        with pytest.raises(tz.ReadOnlyStoreError, match="read-only") as ei:
            _run(coro)
        assert isinstance(ei.value, PermissionError) and isinstance(ei.value, ValueError)
    for mode in ("a", "w", "r+", "w-"):
        with pytest.raises(ValueError):
            zarr.open_group(store, mode=mode)
    with pytest.raises(ValueError):
        zarr.open_array(store, path="temp", mode="r+")
    g = zarr.open_group(store, mode="r")
    with pytest.raises((ValueError, PermissionError)):
        g["temp"][0, 0] = 1
    with pytest.raises(tz.ReadOnlyStoreError):
        tz.TacoStore(arc, read_only=False)
    with pytest.raises(tz.ReadOnlyStoreError):
        store.with_read_only(False)
    ro = store.with_read_only(True)
    assert ro == store and ro.read_only
    _same_group(zarr.open_group(ro, mode="r"), g)
    # nothing changed
    assert tacozip.validate(arc, tacozip.TACOZIP_VALIDATE_DEEP) == 0


def test_pickle_equality_close_reopen(tmp_path, data):
    src, shared = data["v3"]
    arc = tmp_path / "v3.taco"
    arc.write_bytes(shared.read_bytes())  # this test touches the file
    a, b = tz.TacoStore(arc), tz.TacoStore(str(arc))
    assert a == b and a != tz.TacoStore(data["v2"][1]) and a != object() and a != tz.TacoStore(shared)
    p = pickle.loads(pickle.dumps(a))
    assert p == a
    _same_group(zarr.open_group(p, mode="r"), zarr.open_group(str(src), mode="r"))
    # the store over an archive opened by the caller: shared, not closed by the store
    with tacozip.open(arc) as ar:
        s = tz.TacoStore(ar)
        assert s == a
        s.close()
        assert not ar.closed
    # closed, then read again: reopened
    a.close()
    assert a.archive.closed
    _same_group(zarr.open_group(a, mode="r"), zarr.open_group(str(src), mode="r"))
    assert not a.archive.closed
    # dask tokens: equal for stores on the same file, another once the file changed
    import dask.base
    assert dask.base.tokenize(b) == dask.base.tokenize(tz.TacoStore(arc))
    # a changed file: the pickle refuses it (TACOZ_ERR_CHANGED)
    blob = pickle.dumps(b)
    os.utime(arc, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(tacozip.TacozipError):
        pickle.loads(blob)
    assert dask.base.tokenize(b) != dask.base.tokenize(tz.TacoStore(arc))


def test_open_classmethod_and_event_loop(data):
    """TacoStore.open() opens in a thread; reads run in threads: the loop
    keeps running while they wait."""
    src, arc = data["v3"]

    async def main():
        store = await tz.TacoStore.open(arc)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.ensure_future(ticker())
        keys = await _alist(store.list())
        got = await asyncio.gather(*[store.get(k, PROTO) for k in keys * 5])
        t.cancel()
        assert all(g is not None for g in got)
        assert ticks > 0
        return store

    store = _run(main())
    assert store._is_open


def test_zarr_and_xarray_local(data):
    src, arc = data["v3"]
    store = tz.TacoStore(arc)
    _same_group(zarr.open_group(store, mode="r"), zarr.open_group(str(src), mode="r"))
    a = zarr.open_array(store, path="temp", mode="r")
    np.testing.assert_array_equal(a[5:95, 7:133], zarr.open_array(str(src), path="temp", mode="r")[5:95, 7:133])
    sh = zarr.open_array(store, path="sharded", mode="r")  # inner chunks: byte-range reads of the shards
    np.testing.assert_array_equal(sh[3:20, 1:30], zarr.open_array(str(src), path="sharded", mode="r")[3:20, 1:30])
    # zarr.open on the store finds the node type itself
    assert isinstance(zarr.open(store, mode="r"), zarr.Group)


def test_archives_written_by_zarr_zipstore(tmp_path):
    """A zip written by zarr's own ZipStore (STORED: its default) reads
    through TacoStore; one with DEFLATE members fails with
    TACOZ_ERR_COMPRESSED when a compressed member is read, not with wrong bytes."""
    import zipfile

    for comp in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        p = tmp_path / f"z{comp}.zip"
        with ZipStore(p, mode="w", compression=comp) as zs:
            g = zarr.open_group(zs, mode="w", zarr_format=3)
            g.create_array("a", shape=(10,), chunks=(5,), dtype="int32")[:] = np.arange(10, dtype="int32")
        store = tz.TacoStore(p)
        if comp == zipfile.ZIP_STORED:
            np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], np.arange(10))
        else:
            with pytest.raises(tacozip.TacozipError) as ei:
                zarr.open_group(store, mode="r")
            assert ei.value.code == tacozip.TACOZ_ERR_COMPRESSED


# --------------------------------------------------------------------------- remote: nginx

def _publish(server, path, key):
    dest = server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(pathlib.Path(path).read_bytes())
    return f"{server.base}/{key}", f"/{key}"


def _reset(server):
    server.settled_log(quiet=0.1, timeout=1)
    server.reset_log()


def _span(rng):
    a, b = rng[len("bytes="):].split("-")
    return int(a), int(b) + 1


def test_http_requests_per_chunk(nginx_server, data):
    src, arc = data["v3"]
    url, path = _publish(nginx_server, arc, "zarr/v3.taco")
    with tacozip.open(arc) as ar:
        mem = {m.name: m for m in ar.members}
    _reset(nginx_server)
    store = tz.TacoStore(url)
    a = zarr.open_array(store, path="temp", mode="r")
    local = zarr.open_array(str(src), path="temp", mode="r")
    opened = nginx_server.settled_log()
    print(f"open store + array over HTTP: {len(opened)} requests, {sum(r['body_bytes_sent'] for r in opened)} bytes")

    # one chunk: one request, exactly its local header + data
    _reset(nginx_server)
    np.testing.assert_array_equal(a[0:40, 0:60], local[0:40, 0:60])
    recs = nginx_server.settled_log()
    assert len(recs) == 1 and recs[0]["path"] == path and recs[0]["status"] == 206, recs
    m = mem["temp/c/0/0"]
    assert _span(recs[0]["range"]) == (m.header_offset, m.offset + m.size)
    print(f"one chunk over HTTP: 1 request, {recs[0]['body_bytes_sent']} bytes (chunk {m.size} bytes)")

    # a 3x3-chunk selection: 9 chunks, fewer requests (neighbours coalesced)
    _reset(nginx_server)
    np.testing.assert_array_equal(a[0:120, 0:180], local[0:120, 0:180])
    recs = nginx_server.settled_log()
    chunk_bytes = sum(mem[f"temp/c/{i}/{j}"].size for i in range(3) for j in range(3))
    sent = sum(r["body_bytes_sent"] for r in recs)
    print(f"9 neighbouring chunks over HTTP: {len(recs)} requests, {sent} bytes (chunks {chunk_bytes} bytes)")
    assert 1 <= len(recs) < 9
    first, last = mem["temp/c/0/0"], mem["temp/c/2/2"]
    assert sent <= last.offset + last.size - first.header_offset

    # max_gap=0: only members that touch are merged: one request per row of 3 chunks,
    # exactly their local headers and data
    tight = zarr.open_array(tz.TacoStore(url, max_gap=0), path="temp", mode="r")
    _reset(nginx_server)
    np.testing.assert_array_equal(tight[0:120, 0:180], local[0:120, 0:180])
    recs = nginx_server.settled_log()
    want = sum(mem[f"temp/c/{i}/{j}"].offset + mem[f"temp/c/{i}/{j}"].size - mem[f"temp/c/{i}/{j}"].header_offset
               for i in range(3) for j in range(3))
    sent = sum(r["body_bytes_sent"] for r in recs)
    print(f"9 neighbouring chunks over HTTP, max_gap=0: {len(recs)} requests, {sent} bytes")
    assert len(recs) == 3 and sent == want

    # get_partial_values of N chunk keys: one call, fewer than N requests
    keys = [f"temp/c/{i}/{j}" for i in range(4) for j in range(6)]
    _reset(nginx_server)
    got = _run(store.get_partial_values(PROTO, [(k, None) for k in keys]))
    recs = nginx_server.settled_log()
    assert [g.to_bytes() for g in got] == [(src / k).read_bytes() for k in keys]
    print(f"get_partial_values of {len(keys)} chunks over HTTP: {len(recs)} requests, "
          f"{sum(r['body_bytes_sent'] for r in recs)} bytes")
    assert 1 <= len(recs) < len(keys)

    # the client's own count agrees: the store's stats are the archive's
    req0 = store.stats[0]
    np.testing.assert_array_equal(a[200:240, 300:360], local[200:240, 300:360])
    assert store.stats[0] == req0 + 1


def test_http_xarray_and_sharded(nginx_server, data):
    src, arc = data["ds3"]
    url, path = _publish(nginx_server, arc, "zarr/ds3.taco")
    want = xr.open_zarr(str(src)).load()
    store = tz.TacoStore(url)
    ds = xr.open_zarr(store, chunks=None)  # lazy arrays without Dask: one zarr read per selection
    _reset(nginx_server)
    sel = ds["t"].isel(time=3).load()  # 3 x 4 chunks of one time step, read by one zarr selection
    recs = nginx_server.settled_log()
    xr.testing.assert_identical(sel, want["t"].isel(time=3))
    print(f"xarray: one time step (12 chunks) over HTTP: {len(recs)} requests")
    assert 1 <= len(recs) < 12
    xr.testing.assert_identical(ds.load(), want)

    src, arc = data["v3"]
    url, _ = _publish(nginx_server, arc, "zarr/v3b.taco")
    store = tz.TacoStore(url)
    sh = zarr.open_array(store, path="sharded", mode="r")
    np.testing.assert_array_equal(sh[...], zarr.open_array(str(src), path="sharded", mode="r")[...])


# --------------------------------------------------------------------------- remote: moto S3

def _s3_options(moto_s3):
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"}}


def test_s3_store(moto_s3, data):
    src, arc = data["ds2"]
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="zarr/ds2.taco", Body=arc.read_bytes())
    url = f"s3://{moto_s3.bucket}/zarr/ds2.taco"
    store = tz.TacoStore(url, storage_options=_s3_options(moto_s3))
    want = xr.open_zarr(str(src)).load()
    xr.testing.assert_identical(xr.open_zarr(store).load(), want)
    # one chunk, one request (the store's own count: the C library signs its requests itself)
    a = zarr.open_array(store, path="mask", mode="r")
    before = store.stats[0]
    np.testing.assert_array_equal(a[0:10, 0:10], want["mask"].values[0:10, 0:10])
    assert store.stats[0] == before + 1
    # equal after pickling, and the pickle reads too
    p = pickle.loads(pickle.dumps(store))
    assert p == store
    np.testing.assert_array_equal(zarr.open_array(p, path="mask", mode="r")[...], want["mask"].values)
    # keyword settings as tacozip.open takes them
    s2 = tz.TacoStore(url, key="testing", secret="testing", endpoint_url=moto_s3.endpoint, region="us-east-1")
    assert s2 == store
    _same_group(zarr.open_group(s2, mode="r"), zarr.open_group(str(src), mode="r"))


# --------------------------------------------------------------------------- Dask workers

@pytest.fixture(scope="module")
def client():
    distributed = require("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


def test_dask_cluster_http_and_s3(client, nginx_server, moto_s3, data):
    src, arc = data["ds3"]
    want = xr.open_zarr(str(src)).load()
    url, path = _publish(nginx_server, arc, "zarr/dask/ds3.taco")
    store = tz.TacoStore(url)
    ds = xr.open_zarr(store, chunks={"time": 2, "y": 20, "x": 40})  # 4 zarr chunks a task
    _reset(nginx_server)
    mean = client.compute(ds["t"].mean(dim="time")).result()
    xr.testing.assert_allclose(mean, want["t"].mean(dim="time"))
    got = client.compute(ds).result()
    xr.testing.assert_identical(got, want)
    recs = nginx_server.settled_log()
    assert recs and all(r["path"] == path for r in recs)  # the workers read through nginx
    n_chunks = sum(1 for k in _files(src) if k.startswith("t/c/"))
    opens = [r for r in recs if r["range"] and r["range"].startswith("bytes=-")]
    print(f"Dask cluster over HTTP: {len(recs)} requests ({len(opens)} archive opens), "
          f"variable t: {n_chunks} chunks in {n_chunks // 4} tasks, read twice")
    assert len(recs) - len(opens) < 2 * n_chunks

    src, arc = data["ds2"]
    want = xr.open_zarr(str(src)).load()
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="zarr/dask/ds2.taco", Body=arc.read_bytes())
    store = tz.TacoStore(f"s3://{moto_s3.bucket}/zarr/dask/ds2.taco", storage_options=_s3_options(moto_s3))
    got = client.compute(xr.open_zarr(store).chunk({"y": 15})).result()
    xr.testing.assert_identical(got, want)


# --------------------------------------------------------------------------- docs

def test_docs_zarr_md_doctests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 10
    assert result.failed == 0
