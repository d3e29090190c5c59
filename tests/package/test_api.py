"""Our package beyond the drop-in: tacozip.open, member files, extract,
append, spans, progress, GIL release, threads, the console script."""

import io
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import threading
import zipfile

import pytest

import tacozip


@pytest.fixture
def data(tmp_path):
    files = {}
    for name, size in [("a.bin", 0), ("b.bin", 10), ("sub/c.bin", 5000), ("d.txt", 70000)]:
        p = tmp_path / "src" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
        files[name] = p
    return files


@pytest.fixture
def archive(tmp_path, data):
    path = tmp_path / "x.taco"
    tacozip.create(path, list(data.values()), list(data.keys()), entries=[(1, 2), (3, 4)])
    return path


def local_data_offset(raw, header_offset):
    nlen, xlen = struct.unpack_from("<HH", raw, header_offset + 26)
    return header_offset + 30 + nlen + xlen


def test_members_match_zipfile_and_bytes(archive, data):
    raw = archive.read_bytes()
    with tacozip.open(archive) as a, zipfile.ZipFile(archive) as z:
        infos = z.infolist()
        assert [m.name for m in a.members] == [i.filename for i in infos]
        for m, i in zip(a.members, infos):
            assert m.header_offset == i.header_offset
            assert m.offset == local_data_offset(raw, i.header_offset)
            assert m.size == i.file_size and m.crc == i.CRC
            assert raw[m.offset:m.offset + m.size] == z.read(i.filename)
        assert a.header == [(1, 2), (3, 4)]
        assert len(a) == 5 and "sub/c.bin" in a and "nope" not in a and 3 not in a
        assert list(a)[2] == a["b.bin"] == a.getmember("b.bin")
        assert a.data_range("d.txt") == (a["d.txt"].offset, 70000)
        with pytest.raises(KeyError):
            a["nope"]
        assert a.size == len(raw) and a.format == tacozip.TACOZIP_FORMAT_ZIP32


def test_member_file_semantics(archive, data):
    want = data["d.txt"].read_bytes()
    with tacozip.open(archive) as a:
        f = a.open("d.txt")
        assert f.readable() and f.seekable() and not f.writable()
        assert f.read(10) == want[:10] and f.tell() == 10
        assert f.seek(-5, io.SEEK_END) == 69995 and f.read() == want[-5:]
        assert f.read(3) == b""
        f.seek(100)
        f.seek(50, io.SEEK_CUR)
        buf = bytearray(1000)
        assert f.readinto(buf) == 1000 and bytes(buf) == want[150:1150]
        f.seek(69990)
        assert f.read(100) == want[69990:]
        f.seek(0)
        assert f.read() == want
        with pytest.raises(ValueError):
            f.seek(-1)
        with pytest.raises(ValueError):
            f.seek(0, 7)
        f.close()
        with pytest.raises(ValueError):
            f.read(1)
        # usable by stdlib wrappers
        assert io.BufferedReader(a.open("sub/c.bin")).read() == data["sub/c.bin"].read_bytes()
        assert a.open("a.bin").read() == b""
        assert a.read("b.bin") == data["b.bin"].read_bytes()
        m = a["sub/c.bin"]
        assert a.read_range(m.offset + 7, 9) == data["sub/c.bin"].read_bytes()[7:16]
        with pytest.raises(ValueError):
            a.read_range(a.size - 2, 10)
    with pytest.raises(ValueError):
        a.read("b.bin")  # closed


def test_verify_detects_corruption(archive):
    with tacozip.open(archive) as a:
        a.verify()
        off = a["sub/c.bin"].offset
    raw = bytearray(archive.read_bytes())
    raw[off + 100] ^= 1
    archive.write_bytes(bytes(raw))
    with tacozip.open(archive) as a:
        a.verify("b.bin")
        with pytest.raises(tacozip.TacozipError) as e:
            a.verify("sub/c.bin")
        assert e.value.code == tacozip.TACOZ_INVALID_CRC_MEMBER
        assert "sub/c.bin" in e.value.detail
    assert tacozip.validate(archive, tacozip.TACOZIP_VALIDATE_DEEP) == tacozip.TACOZ_INVALID_CRC_MEMBER
    code, msg = tacozip.validate_detail(archive, tacozip.TACOZIP_VALIDATE_DEEP)
    assert code == -32 and "sub/c.bin" in msg
    assert tacozip.validate(archive, tacozip.TACOZIP_VALIDATE_NORMAL) == 0


def test_extract_all_and_some(archive, data, tmp_path):
    with tacozip.open(archive) as a:
        a.extract(tmp_path / "out", skip_header=True)
        for name, p in data.items():
            assert (tmp_path / "out" / name).read_bytes() == p.read_bytes()
        assert not (tmp_path / "out" / "TACO_HEADER").exists()
        with pytest.raises(tacozip.TacozipError) as e:
            a.extract(tmp_path / "out", ["b.bin"])
        assert e.value.code == tacozip.TACOZ_ERR_EXISTS
        a.extract(tmp_path / "out", ["b.bin", a["d.txt"]], overwrite=True)
        a.extract(tmp_path / "two", ["sub/c.bin"])
        assert sorted(p.name for p in (tmp_path / "two").rglob("*")) == ["c.bin", "sub"]
        with pytest.raises(tacozip.TacozipError) as e:
            a.extract(tmp_path / "three", ["b.bin", "missing"])
        assert e.value.code == tacozip.TACOZ_ERR_NOT_FOUND
        assert not (tmp_path / "three" / "b.bin").exists()


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs.txt", "a/../../x.txt", "a\\..\\b.txt"])
def test_extract_refuses_hostile_names(tmp_path, evil):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as w:
        w.writestr("fine.txt", b"ok")
        info = zipfile.ZipInfo(evil)
        w.writestr(info, b"pwned")
    dest = tmp_path / "dest" / "inner"
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with tacozip.open(z) as a:
        with pytest.raises(tacozip.TacozipError) as e:
            a.extract(dest)
    assert e.value.code == tacozip.TACOZ_ERR_UNSAFE_PATH
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written, not even fine.txt


def test_append(archive, data, tmp_path):
    before = archive.read_bytes()
    with tacozip.open(archive) as a:
        cd_start = max(m.offset + m.size for m in a.members)
    extra = tmp_path / "extra.bin"
    extra.write_bytes(b"appended!" * 100)
    tacozip.append(archive, [extra], ["new/extra.bin"])
    after = archive.read_bytes()
    assert after[:cd_start] == before[:cd_start]
    with tacozip.open(archive) as a:
        assert a.read("new/extra.bin") == extra.read_bytes()
        assert a["new/extra.bin"].header_offset == cd_start
        assert a.header == [(1, 2), (3, 4)]
    assert zipfile.ZipFile(archive).testzip() is None
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.append(archive, [extra], ["b.bin"])
    assert e.value.code == tacozip.TACOZ_ERR_EXISTS
    assert archive.read_bytes() == after
    with pytest.raises(ValueError):
        tacozip.append(archive, [extra], ["x", "y"])


def test_span_forms(archive):
    with tacozip.open(archive) as a:
        b, c = a["b.bin"], a["sub/c.bin"]
        assert a.span(["sub/c.bin", "b.bin"]) == (b.header_offset, c.offset + c.size - b.header_offset)
        assert a.span([b, c], data_only=True) == (b.offset, c.offset + c.size - b.offset)
        assert a.span("sub/") == (c.header_offset, c.offset + c.size - c.header_offset)
        assert a.span(lambda m: m.name.endswith(".txt")) == (a["d.txt"].header_offset,
                                                             a["d.txt"].offset + 70000 - a["d.txt"].header_offset)
        with pytest.raises(ValueError):
            a.span("zzz/")
        with pytest.raises(KeyError):
            a.span(["zzz"])
        # the span stored in the header reads back
        d = a["d.txt"]
        tacozip.update_header(archive, [a.span("sub/"), a.span(["d.txt"], data_only=True)])
    assert tacozip.read_header(archive) == [(c.header_offset, c.offset + c.size - c.header_offset), (d.offset, 70000)]


def test_read_header_sources(archive):
    raw = archive.read_bytes()
    want = [(1, 2), (3, 4)]
    assert tacozip.read_header(str(archive)) == want
    assert tacozip.read_header(archive) == want
    for buf in (raw[:157], raw[:165], raw[:256], bytearray(raw[:200]), memoryview(raw)[:157]):
        assert tacozip.read_header(buf) == want
    with pytest.raises(ValueError, match="Buffer too small: 156 < 157"):
        tacozip.read_header(bytearray(raw[:156]))
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.read_header(b"\0" * 157)
    assert e.value.code == tacozip.TACOZ_ERR_INVALID_HEADER


def test_progress_and_cancel(tmp_path, data):
    calls = []
    out = tmp_path / "p.taco"
    tacozip.create(out, list(data.values()), list(data), progress=lambda *a: calls.append(a))
    assert calls and calls[-1] == (75010, 75010, 4, 4)
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.create(tmp_path / "c.taco", list(data.values()), progress=lambda *a: True)
    assert e.value.code == tacozip.TACOZ_ERR_CANCELLED
    assert not (tmp_path / "c.taco").exists()

    def boom(*a):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        tacozip.create(tmp_path / "r.taco", list(data.values()), progress=boom)
    assert not (tmp_path / "r.taco").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp." in p.name]


def test_alignment_option(tmp_path, data):
    out = tmp_path / "al.taco"
    tacozip.create(out, list(data.values()), list(data), alignment=4096)
    with tacozip.open(out) as a:
        for m in a.members[1:]:
            assert m.offset % 4096 == 0
        a.verify()
    assert zipfile.ZipFile(out).testzip() is None
    with pytest.raises(tacozip.TacozipError):
        tacozip.create(out, list(data.values()), alignment=3000)


def test_fifo_is_refused_at_once(tmp_path):
    """A FIFO given as an archive is refused without waiting for a writer
    (issue 8): read_header and open raise TACOZ_ERR_IO naming it, validate
    returns TACOZ_ERR_IO; each in a thread that must end within 10 s."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for call in (tacozip.read_header, tacozip.open, lambda p: tacozip.validate(p, 1)):
        result = {}

        def worker():
            try:
                result["value"] = call(str(fifo))
            except Exception as e:  # noqa: BLE001
                result["error"] = e

        t = threading.Thread(target=worker, daemon=True)
        t.start()
        t.join(10)
        assert not t.is_alive(), "blocked on the FIFO"
        if "error" in result:
            assert isinstance(result["error"], tacozip.TacozipError) and result["error"].code == tacozip.TACOZ_ERR_IO
            assert "FIFO" in result["error"].detail
        else:
            assert result["value"] == tacozip.TACOZ_ERR_IO


def test_gil_released_during_file_io(tmp_path):
    """A long local read (validate DEEP of a 64 MiB member: CRC over all
    of it) lets another Python thread run meanwhile: this thread's longest
    pause stays far below the call's duration."""
    import time

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 64)
    arc = tmp_path / "big.taco"
    tacozip.create(arc, [big], ["big.bin"])
    done = threading.Event()
    took = {}

    def worker():
        t0 = time.monotonic()
        took["code"] = tacozip.validate(str(arc), tacozip.TACOZIP_VALIDATE_DEEP)
        took["s"] = time.monotonic() - t0
        done.set()

    t = threading.Thread(target=worker)
    stamps = [time.monotonic()]
    t.start()
    while not done.is_set():
        sum(range(100))
        stamps.append(time.monotonic())
    t.join()
    gap = max(b - a for a, b in zip(stamps, stamps[1:]))
    assert took["code"] == tacozip.TACOZ_VALID
    assert took["s"] > 0.01 and gap < took["s"] / 2, (gap, took)


def test_threads_share_one_archive(tmp_path):
    payloads = {f"m{i:03d}": os.urandom(1000 + i) for i in range(200)}
    srcs = []
    for name, b in payloads.items():
        p = tmp_path / name
        p.write_bytes(b)
        srcs.append(p)
    out = tmp_path / "t.taco"
    tacozip.create(out, srcs)
    errors = []
    with tacozip.open(out) as a:
        def work(k):
            try:
                for name in list(payloads)[k::4]:
                    f = a.open(name)
                    f.seek(10)
                    assert f.read(50) == payloads[name][10:60]
                    assert a.read(name) == payloads[name]
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert errors == []


def test_paths_and_utf8(tmp_path):
    p = tmp_path / "d\u00e9j\u00e0 vu.bin"
    p.write_bytes(b"caf\xc3\xa9")
    out = tmp_path / "u.taco"
    tacozip.create(out, [p])
    with tacozip.open(out) as a:
        assert a.names() == ["TACO_HEADER", "d\u00e9j\u00e0 vu.bin"]
        assert a.read("d\u00e9j\u00e0 vu.bin") == b"caf\xc3\xa9"
    assert zipfile.ZipFile(out).namelist()[1] == "d\u00e9j\u00e0 vu.bin"


def test_typing_files_and_no_command_in_the_extension():
    # the tacozip command is a separate executable now (the packaging
    # tests, tests/package/test_executable.py, check it): the extension no
    # longer carries it
    assert not hasattr(tacozip._tacozip, "cli_main")
    pkg = pathlib.Path(tacozip.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_tacozip.pyi").exists()
    stub = (pkg / "_tacozip.pyi").read_text()
    public = [n for n in dir(tacozip._tacozip) if not n.startswith("_")]
    missing = [n for n in public if f"def {n}(" not in stub and f"class {n}" not in stub and f"{n}:" not in stub]
    assert missing == [], f"_tacozip.pyi lacks {missing}"


def test_parquet_over_member_file_reads_one_row_group(tmp_path):
    """pyarrow.parquet.ParquetFile(archive.open(name)) reads the footer and
    the one row group asked for, not the rest of the member."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_groups, rows = 6, 40000
    table = pa.table({"id": pa.array(range(n_groups * rows), pa.int64()),
                      "v": pa.array([os.urandom(8) for _ in range(n_groups * rows)], pa.binary())})
    src = tmp_path / "t.parquet"
    pq.write_table(table, src, row_group_size=rows, compression="none")
    out = tmp_path / "p.taco"
    tacozip.create(out, [src], ["t.parquet"])

    read = []

    class Counting(tacozip.MemberFile):
        def readinto(self, b):
            n = super().readinto(b)
            read.append(n)
            return n

        def read(self, size=-1):
            data = super().read(size)
            read.append(len(data))
            return data

    with tacozip.open(out) as a:
        m = a["t.parquet"]
        f = Counting(a, a._index("t.parquet"), m)
        pf = pq.ParquetFile(f)
        got = pf.read_row_group(2)
        meta = pf.metadata
    assert got.equals(table.slice(2 * rows, rows))
    rg = meta.row_group(2)
    rg_bytes = sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
    footer = meta.serialized_size + 8
    assert m.size > 5 * rg_bytes
    # footer read (pyarrow reads up to 64 KiB from the end) + that row group
    assert sum(read) <= rg_bytes + max(footer, 64 * 1024) + 4096, (sum(read), rg_bytes, m.size)


def test_whole_member_reads_check_the_crc(tmp_path):
    """ar.read, read_many, a member file read from the start and taco://'s
    cat of a whole member raise TACOZ_INVALID_CRC_MEMBER when the bytes no
    longer match the directory's CRC-32; reads of part of a member do not
    check (documented)."""
    import fsspec

    src = tmp_path / "s"
    src.mkdir()
    (src / "a.bin").write_bytes(bytes(range(256)) * 8)
    (src / "b.txt").write_bytes(b"fine")
    arc = tmp_path / "crc.taco"
    tacozip.create(arc, [src / "a.bin", src / "b.txt"], ["a.bin", "b.txt"], entries=[(0, 0)])
    with tacozip.open(arc) as ar:
        off = ar["a.bin"].offset
    raw = bytearray(arc.read_bytes())
    raw[off + 100] ^= 0x01
    arc.write_bytes(bytes(raw))
    with tacozip.open(arc) as ar:
        for read in (lambda: ar.read("a.bin"), lambda: ar.read_many(["b.txt", "a.bin"]),
                     lambda: ar.open("a.bin").read(), lambda: fsspec.filesystem("taco", fo=str(arc)).cat("a.bin")):
            with pytest.raises(tacozip.TacozipError) as e:
                read()
            assert e.value.code == tacozip.TACOZ_INVALID_CRC_MEMBER and "a.bin" in e.value.detail
        assert ar.read("b.txt") == b"fine"
        assert ar.open("a.bin").read(200) == bytes(raw[off:off + 200])  # part: unchecked
        assert ar.read_range(off, 200) == bytes(raw[off:off + 200])


def test_append_and_update_of_a_locked_archive_raise_locked(tmp_path, lock_holder):
    """Another process holding the archive's writers' lock: append and
    update_header raise TACOZ_ERR_LOCKED and change nothing."""
    src = tmp_path / "a.txt"
    src.write_bytes(b"a")
    arc = tmp_path / "l.taco"
    tacozip.create(arc, [src], ["a.txt"], entries=[(0, 0)])
    before = arc.read_bytes()
    holder = lock_holder(arc)
    for call in (lambda: tacozip.append(arc, [src], ["b.txt"]), lambda: tacozip.update_header(arc, [(1, 2)])):
        with pytest.raises(tacozip.TacozipError) as e:
            call()
        assert e.value.code == tacozip.TACOZ_ERR_LOCKED and "locked" in e.value.detail
    assert arc.read_bytes() == before
    holder.kill()
    holder.wait()
    tacozip.append(arc, [src], ["b.txt"])  # free again
    assert "b.txt" in tacozip.open(arc)
