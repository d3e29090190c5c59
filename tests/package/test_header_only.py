"""Helpers for header-only clients (tacozip.header_only): decode_span on
spans of default, aligned and indexed archives and of other tools' ZIPs
(ZIP64, compressed, data descriptors), every refusal; parquet_table against
pyarrow reading the whole file; fetch with its requests counted (library
counters, and nginx's access log) over nginx and moto S3; the examples of
docs/header-only.md as doctests."""

import doctest
import io
import json
import os
import pathlib
import random
import shutil
import zipfile
import zlib

import pytest

import tacozip
from tacozip.header_only import NotFetchedError, _Pieces
from conftest_servers import require

HDR = tacozip.TACO_HEADER_SIZE
DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "header-only.md"


def make_files(root, files):
    paths = []
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    return paths, list(files)


def sample_files(seed=1):
    r = random.Random(seed)
    files = {}
    for split, n in (("train", 7), ("val", 3), ("test", 2)):
        for i in range(n):
            files[f"{split}/{i:02d}.bin"] = r.randbytes(r.randint(0, 3000))
        files[f"{split}/labels.json"] = json.dumps({"n": n}).encode()
    files["empty"] = b""
    files["COLLECTION.json"] = b'{"id": "x"}'
    return files


@pytest.fixture(params=["default", "aligned", "index"])
def archive(request, tmp_path):
    files = sample_files()
    paths, names = make_files(tmp_path / "src", files)
    arch = tmp_path / f"{request.param}.taco"
    kw = {"alignment": 4096} if request.param == "aligned" else {"index": True} if request.param == "index" else {}
    tacozip.create(arch, paths, names, **kw)
    return arch, files


def test_decode_span_matches_the_index(archive):
    arch, files = archive
    raw = arch.read_bytes()
    with tacozip.open(arch) as a:
        for prefix in ("train/", "val/", "test/"):
            off, length = a.span(prefix)
            members = tacozip.decode_span(raw[off:off + length], off)
            want = [n for n in files if n.startswith(prefix)]
            assert [m.name for m in members] == want
            for m in members:
                assert bytes(m.data) == files[m.name] == a.read(m.name)
                assert m.offset == a[m.name].offset
                assert m.crc32 == zlib.crc32(files[m.name])
                assert m.header_offset < m.offset
                if arch.name.startswith("aligned") and m.data.nbytes:
                    assert m.offset % 4096 == 0
        # everything before the directory, TACO_HEADER (and TACO_INDEX) included
        cd_off, _ = a._raw.directory_range()
    members = tacozip.decode_span(raw[:cd_off])
    names = [m.name for m in members]
    assert names[0] == "TACO_HEADER" and names[-len(files):] == list(files)
    assert ("TACO_INDEX" in names) == arch.name.startswith("index")


def test_decode_span_is_zero_copy_and_takes_buffers(archive):
    arch, files = archive
    raw = bytearray(arch.read_bytes())
    with tacozip.open(arch) as a:
        off, length = a.span("val/")
    view = memoryview(raw)[off:off + length]
    members = tacozip.decode_span(view, off)
    assert members[0].data.obj is raw  # a view of the caller's buffer, no copy
    import numpy as np
    arr = np.frombuffer(bytes(view), dtype=np.uint8)
    assert [m.name for m in tacozip.decode_span(arr, off)] == [m.name for m in members]
    assert tacozip.decode_span(b"") == []


def test_span_cut_inside_a_member(archive):
    arch, files = archive
    raw = arch.read_bytes()
    with tacozip.open(arch) as a:
        off, length = a.span("train/")
        last = [n for n in files if n.startswith("train/")][-1]
    span = raw[off:off + length - 1]
    with pytest.raises(tacozip.TacozipValidationError) as e:
        tacozip.decode_span(span, off)
    assert e.value.code == tacozip.TACOZ_INVALID_FILE_SIZE
    assert f'"{last}"' in e.value.detail and "ends inside" in e.value.detail
    got = tacozip.decode_span(span, off, partial=True)
    assert [m.name for m in got] == [n for n in files if n.startswith("train/")][:-1]
    # cut inside the 30 fixed bytes of a header
    first_len = got[0].offset - got[0].header_offset + got[0].data.nbytes
    with pytest.raises(tacozip.TacozipValidationError) as e:
        tacozip.decode_span(span[:first_len + 10], off)
    assert e.value.code == tacozip.TACOZ_INVALID_FILE_SIZE and "inside a local file header" in e.value.detail
    assert len(tacozip.decode_span(span[:first_len + 10], off, partial=True)) == 1


def test_span_not_at_a_local_header(archive):
    arch, files = archive
    raw = arch.read_bytes()
    with tacozip.open(arch) as a:
        m = a["val/01.bin"]
        off, length = a.span("val/")
        cd_off, _ = a._raw.directory_range()
    # a data-only range (what data_range gives) is not a span
    with pytest.raises(tacozip.TacozipValidationError) as e:
        tacozip.decode_span(raw[m.offset:m.offset + m.size], m.offset)
    assert e.value.code == tacozip.TACOZ_INVALID_LFH
    assert "does not start at a member" in e.value.detail and f"archive offset {m.offset}" in e.value.detail
    with pytest.raises(tacozip.TacozipValidationError) as e:
        tacozip.decode_span(raw[off + 1:off + length], off + 1)
    assert e.value.code == tacozip.TACOZ_INVALID_LFH
    # running into the central directory
    start = tacozip.decode_span(raw[:cd_off])[-1].header_offset
    with pytest.raises(tacozip.TacozipValidationError) as e:
        tacozip.decode_span(raw[start:cd_off + 46], start)
    assert e.value.code == tacozip.TACOZ_INVALID_LFH and "central directory" in e.value.detail


def test_crc_mismatch(archive):
    arch, files = archive
    raw = bytearray(arch.read_bytes())
    with tacozip.open(arch) as a:
        m = a["val/02.bin"] if a["val/02.bin"].size else a["val/labels.json"]
        off, length = a.span("val/")
    raw[m.offset] ^= 0x55
    span = bytes(raw[off:off + length])
    with pytest.raises(tacozip.TacozipValidationError) as e:
        tacozip.decode_span(span, off)
    assert e.value.code == tacozip.TACOZ_INVALID_CRC_MEMBER and f'"{m.name}"' in e.value.detail
    got = tacozip.decode_span(span, off, check_crc=False)
    assert len(got) == 4


def _cd_start(raw):
    return raw.index(b"PK\x01\x02")


def test_other_tools_zip64_compressed_descriptor(tmp_path):
    # ZIP64 local extra (sizes 0xFFFFFFFF), written by Python's zipfile
    p = tmp_path / "z64.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as z:
        with z.open("big-ish", "w", force_zip64=True) as f:
            f.write(b"zip64 extra fields in both headers")
        z.writestr("small", b"s")
    raw = p.read_bytes()
    got = tacozip.decode_span(raw[:_cd_start(raw)])
    assert [(m.name, bytes(m.data)) for m in got] == [("big-ish", b"zip64 extra fields in both headers"),
                                                      ("small", b"s")]
    # compressed: named
    p = tmp_path / "deflated.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("plain.txt", b"stored", compress_type=zipfile.ZIP_STORED)
        z.writestr("packed.txt", b"x" * 1000, compress_type=zipfile.ZIP_DEFLATED)
    raw = p.read_bytes()
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.decode_span(raw[:_cd_start(raw)])
    assert e.value.code == tacozip.TACOZ_ERR_UNSUPPORTED == tacozip.TACOZ_ERR_COMPRESSED
    assert '"packed.txt"' in e.value.detail and "compressed" in e.value.detail

    # data descriptors: zipfile writes them to a stream it cannot seek
    class Stream(io.RawIOBase):
        def __init__(self):
            self.buf = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.buf += b
            return len(b)

    s = Stream()
    with zipfile.ZipFile(s, "w", zipfile.ZIP_STORED) as z:
        z.writestr("streamed.txt", b"no sizes up front")
    raw = bytes(s.buf)
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.decode_span(raw[:_cd_start(raw)])
    assert e.value.code == tacozip.TACOZ_ERR_UNSUPPORTED
    assert '"streamed.txt"' in e.value.detail and "data descriptor" in e.value.detail


# --------------------------------------------------------------------------- Parquet

def _parquet(tmp_path, groups=5, rows=1000):
    pa = require("pyarrow")
    pq = require("pyarrow.parquet", "pyarrow")
    n = groups * rows
    table = pa.table({"id": pa.array(range(n), pa.int64()), "v": pa.array([i * 0.5 for i in range(n)]),
                      "label": pa.array([f"class_{i % 7}" for i in range(n)])})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=rows)
    arch = tmp_path / "t.taco"
    tacozip.create(arch, [path], ["data/t.parquet"], entries=[(0, 0)] * (groups + 1))
    with tacozip.open(arch) as a:
        ents = tacozip.parquet_row_group_ranges(a, "data/t.parquet") + [
            tacozip.parquet_footer_range(a, "data/t.parquet")]
    tacozip.update_header(arch, ents)
    return pq, table, path, arch, ents


def test_parquet_table_equals_pyarrow(tmp_path):
    pq, table, path, arch, ents = _parquet(tmp_path)
    raw = arch.read_bytes()
    rng = [raw[o:o + n] for o, n in ents]
    footer = rng[-1]
    whole = pq.read_table(path)
    pf = pq.ParquetFile(path)
    assert tacozip.parquet_table(footer, {2: rng[2]}).equals(pf.read_row_group(2))
    assert tacozip.parquet_table(footer, {3: rng[3], 1: rng[1]}).equals(pf.read_row_groups([1, 3]))
    assert tacozip.parquet_table(footer, rng[:5]).equals(whole)  # all of them, in order
    assert tacozip.parquet_table(footer, [rng[4], rng[0]], indices=[4, 0]).equals(pf.read_row_groups([0, 4]))
    got = tacozip.parquet_table(memoryview(footer), {0: memoryview(rng[0])}, columns=["label"])
    assert got.equals(pf.read_row_group(0, columns=["label"]))
    assert tacozip.parquet_table(footer, {}).num_rows == 0
    with pytest.raises(ValueError, match="not a Parquet footer"):
        tacozip.parquet_table(footer[:-1], {0: rng[0]})
    with pytest.raises(ValueError, match="not a whole Parquet footer"):
        tacozip.parquet_table(footer[1:], {0: rng[0]})
    with pytest.raises(ValueError, match="row group 9 does not exist"):
        tacozip.parquet_table(footer, {9: rng[0]})
    with pytest.raises(ValueError, match="row group 1 is"):
        tacozip.parquet_table(footer, {1: rng[1] + b"x"})
    with pytest.raises(ValueError, match="pass indices="):
        tacozip.parquet_table(footer, rng[:2])


def test_pieces_refuse_what_was_not_fetched():
    f = _Pieces(100, [(10, b"abcdef"), (16, b"gh"), (90, b"0123456789")])
    f.seek(12)
    assert f.read(6) == b"cdefgh"  # touching pieces merge
    f.seek(-4, 2)
    assert f.read() == b"6789"
    f.seek(0)
    with pytest.raises(NotFetchedError, match="4 bytes at Parquet offset 8"):
        f.seek(8), f.read(4)
    assert isinstance(NotFetchedError("x"), OSError)


# --------------------------------------------------------------------------- fetch

def test_fetch_local_and_file_object(tmp_path):
    files = sample_files()
    paths, names = make_files(tmp_path / "src", files)
    arch = tmp_path / "a.taco"
    tacozip.create(arch, paths, names, entries=[(0, 0)] * 4)
    with tacozip.open(arch) as a:
        ents = [a.span(f"{s}/") for s in ("train", "val", "test")] + [a.data_range("COLLECTION.json")]
    tacozip.update_header(arch, ents)
    got = tacozip.fetch(arch)
    assert sorted(got) == [0, 1, 2, 3] and got.header == ents and got.requests is None and got.bytes is None
    assert got[1].files == {n: files[n] for n in files if n.startswith("val/")}
    assert got[3].data == files["COLLECTION.json"]
    with pytest.raises(tacozip.TacozipValidationError):  # a data range is not a span
        got[3].members
    with open(arch, "rb") as f:
        got = tacozip.fetch(f, entries=[2, 2])
    assert list(got) == [2] and repr(got[2]).startswith("Span(index=2")
    with pytest.raises(IndexError, match="header entry 4 out of range: the header has 4 entries"):
        tacozip.fetch(arch, entries=[0, 4])
    with pytest.raises(tacozip.TacozipIOError, match="tacozip error -1"):  # shorter than a header
        tacozip.fetch(tmp_path / "src" / "COLLECTION.json")
    with pytest.raises(tacozip.TacozipError):  # not a TACO archive
        tacozip.fetch(tmp_path / "src" / "train" / "00.bin")
    with pytest.raises(IndexError, match="-1"):
        tacozip.fetch(arch, entries=[-1])
    with pytest.raises(ValueError):
        tacozip.fetch(arch, max_gap=-5)


def _lib_target(remote, key):
    """URL and remote settings for the library to reach what remote.publish put there."""
    if remote.kind == "http":
        return remote.url(key), {}
    return (f"s3://{remote.bucket}/{remote.prefix}/{key}",
            dict(endpoint_url=remote.s3.endpoint, s3_addressing="path", key="testing", secret="testing"))


def _server_log(remote, n):
    """nginx's view of the library's requests: exactly n, returned as (range, status)."""
    if remote.kind != "http":
        return None
    recs = remote.server.read_log(expect=n)
    assert len(recs) == n, recs
    return [(r["range"], r["status"]) for r in recs]


def test_fetch_request_counts(remote, tmp_path):
    pq, table, path, arch, ents = _parquet(tmp_path, groups=5, rows=3000)
    remote.publish(arch, "t.taco")
    url, opts = _lib_target(remote, "t.taco")

    def run(entries, **kw):
        if remote.kind == "http":
            remote.server.reset_log()
        got = tacozip.fetch(url, entries=entries, **opts, **kw)
        return got, _server_log(remote, got.requests)

    def rng(o, n):
        return f"bytes={o}-{o + n - 1}"

    # header, then row group 2 and the footer: one request each without coalescing
    got, log = run([2, 5], max_gap=0)
    assert got.requests == 3 and got.bytes == HDR + ents[2][1] + ents[5][1]
    assert log in (None, [(rng(0, HDR), 206), (rng(*ents[2]), 206), (rng(*ents[5]), 206)]) or \
        log[0] == (rng(0, HDR), 206) and sorted(log[1:]) == sorted([(rng(*ents[2]), 206), (rng(*ents[5]), 206)])
    assert tacozip.parquet_table(got[5].data, {2: got[2].data}).equals(pq.ParquetFile(path).read_row_group(2))
    # coalesced (the default gap of 1 MiB covers row groups 3 and 4): one request after the header
    got, log = run([2, 5])
    lo, hi = ents[2][0], ents[5][0] + ents[5][1]
    assert got.requests == 2 and got.bytes == HDR + hi - lo
    assert log in (None, [(rng(0, HDR), 206), (rng(lo, hi - lo), 206)])
    assert tacozip.parquet_table(got[5].data, {2: got[2].data}).equals(pq.ParquetFile(path).read_row_group(2))
    # adjacent row groups touch: one request even with max_gap=0
    got, log = run([1, 2, 3], max_gap=0)
    assert got.requests == 2 and log in (None, [(rng(0, HDR), 206), (rng(ents[1][0], sum(
        n for _, n in ents[1:4])), 206)])
    # every entry, default gap: the row groups and the footer are one block
    got, _ = run(None)
    assert got.requests == 2 and sorted(got) == list(range(6))
    assert tacozip.parquet_table(got[5].data, [got[i].data for i in range(5)]).equals(pq.read_table(path))
    # the header only: entries=[]
    got, log = run([])
    assert got.requests == 1 and got.bytes == HDR and log in (None, [(rng(0, HDR), 206)])
    # an index the header lacks: the header request, then IndexError before any other
    if remote.kind == "http":
        remote.server.reset_log()
    with pytest.raises(IndexError):
        tacozip.fetch(url, entries=[6], **opts)
    _server_log(remote, 1)


def test_fetch_tile_level_and_split(remote, tmp_path):
    r = random.Random(4)
    files = {}
    for z in range(4):
        for x in range(2 ** z):
            for y in range(2 ** z):
                files[f"tiles/{z}/{x}/{y}.png"] = r.randbytes(r.randint(20, 300))
    files.update({f"val/{i}.bin": r.randbytes(500) for i in range(5)})
    paths, names = make_files(tmp_path / "src", files)
    arch = tmp_path / "p.taco"
    tacozip.create(arch, paths, names, entries=[(0, 0)] * 5, alignment=512)
    with tacozip.open(arch) as a:
        ents = [a.span(f"tiles/{z}/") for z in range(4)] + [a.span("val/")]
    tacozip.update_header(arch, ents)
    remote.publish(arch, "p.taco")
    url, opts = _lib_target(remote, "p.taco")
    if remote.kind == "http":
        remote.server.reset_log()
    got = tacozip.fetch(url, entries=[3], **opts)
    assert got.requests == 2 and got.bytes == HDR + ents[3][1]
    assert got[3].files == {k: v for k, v in files.items() if k.startswith("tiles/3/")}
    assert _server_log(remote, 2) in (None, [(f"bytes=0-{HDR - 1}", 206),
                                             (f"bytes={ents[3][0]}-{sum(ents[3]) - 1}", 206)])
    # two levels far apart, without coalescing: 1 + 2
    if remote.kind == "http":
        remote.server.reset_log()
    got = tacozip.fetch(url, entries=[1, 4], max_gap=0, **opts)
    assert got.requests == 3 and len(got[1].members) == 4 and len(got[4].members) == 5
    _server_log(remote, 3)


# --------------------------------------------------------------------------- docs/header-only.md

def test_docs_header_only_md(tmp_path, monkeypatch, nginx_server, moto_s3):
    require("pyarrow")
    require("numpy")
    monkeypatch.chdir(tmp_path)
    www = nginx_server.root / "doc"
    www.mkdir(exist_ok=True)

    def publish(path):
        shutil.copyfile(path, www / os.path.basename(path))
        return f"{nginx_server.base}/doc/{os.path.basename(path)}"

    def upload(path):
        key = f"doc/{os.path.basename(path)}"
        with open(path, "rb") as f:
            moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=f.read())
        return f"s3://{moto_s3.bucket}/{key}"

    s3_options = dict(endpoint_url=moto_s3.endpoint, s3_addressing="path", key="testing", secret="testing")
    nginx_server.reset_log()
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False,
                              globs={"publish": publish, "upload": upload, "s3_options": s3_options})
    assert result.attempted >= 40
    assert result.failed == 0
    # what nginx saw: the pyramid (fetch: 2), the same by hand (urllib: 2), the val split (2)
    recs = nginx_server.read_log(expect=6)
    assert len(recs) == 6 and all(r["status"] == 206 for r in recs), recs
    assert [r["range"] for r in recs][0::2] == [f"bytes=0-{HDR - 1}"] * 3
