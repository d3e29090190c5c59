"""tacozip.Writer (the streaming writer), header entries planned by name
(tacozip.data / span / directory), tacozip.plan() and tacozip.create() with
planned entries or an s3:// output (moto)."""

import array
import dataclasses
import io
import os
import struct
import zipfile

import pytest

import tacozip

MTIME = 1_700_000_000  # a fixed time: archives can be compared byte for byte


@pytest.fixture
def files(tmp_path):
    """Source files {member name: path}, in archive order."""
    spec = [("COLLECTION.json", b'{"id": "x"}'), ("METADATA/level0.parquet", os.urandom(3000)),
            ("data/train/a.tif", os.urandom(70000)), ("data/train/b.tif", b""),
            ("data/val/c.tif", os.urandom(5000)), ("data/val/d.tif", os.urandom(12345))]
    out = {}
    for name, content in spec:
        p = tmp_path / "src" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        out[name] = p
    return out


def check_archive(path, expected):
    """The archive at ``path`` holds exactly ``expected`` ({name: bytes}) in
    that order and is valid for tacozip (deep) and zipfile."""
    assert tacozip.validate(path, tacozip.TACOZIP_VALIDATE_DEEP) == 0, tacozip.validate_detail(path, 2)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names == ["TACO_HEADER"] + list(expected)
        for name, data in expected.items():
            assert z.read(name) == data, name
            assert z.getinfo(name).compress_type == zipfile.ZIP_STORED
    with tacozip.open(path) as ar:
        for name, data in expected.items():
            assert ar.read(name) == data


def local_data_offset(raw, header_offset):
    assert raw[header_offset:header_offset + 4] == b"PK\x03\x04"
    nlen, xlen = struct.unpack_from("<HH", raw, header_offset + 26)
    return header_offset + 30 + nlen + xlen


def zip_layout(path):
    """{name: (header_offset, data_offset, size)} from zipfile's directory and
    the local headers (independent of tacozip's reader)."""
    raw = open(path, "rb").read()
    with zipfile.ZipFile(path) as z:
        return {i.filename: (i.header_offset, local_data_offset(raw, i.header_offset), i.compress_size)
                for i in z.infolist()}


def listing(d):
    return sorted(os.listdir(d))


# --------------------------------------------------------------------------- planned entry objects

def test_planned_entry_objects():
    d = tacozip.data("COLLECTION.json")
    p = tacozip.span(prefix="data/val/")
    m = tacozip.span(members=["a", "b"])
    r = tacozip.directory()
    assert repr(d) == "tacozip.data('COLLECTION.json')"
    assert repr(p) == "tacozip.span(prefix='data/val/')"
    assert repr(m) == "tacozip.span(members=['a', 'b'])"
    assert repr(r) == "tacozip.directory()"
    assert d == tacozip.data("COLLECTION.json") and hash(d) == hash(tacozip.data("COLLECTION.json"))
    assert m == tacozip.span(members=("a", "b"))  # any iterable of names
    assert d != tacozip.span(prefix="COLLECTION.json")
    assert len({d, p, m, r, tacozip.directory()}) == 4
    assert isinstance(d, tacozip.PlannedEntry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "other"


@pytest.mark.parametrize("call, exc", [
    (lambda: tacozip.span(), TypeError),
    (lambda: tacozip.span(prefix="a/", members=["a/b"]), TypeError),
    (lambda: tacozip.span(members="data/a.tif"), TypeError),  # a single str is not a list of names
    (lambda: tacozip.span(members=[]), ValueError),
    (lambda: tacozip.span(members=["a", 3]), TypeError),
    (lambda: tacozip.span(prefix=b"data/"), TypeError),
    (lambda: tacozip.data(""), ValueError),
    (lambda: tacozip.data("a\0b"), ValueError),
    (lambda: tacozip.data(5), TypeError),
])
def test_planned_entry_errors(call, exc):
    with pytest.raises(exc):
        call()


# --------------------------------------------------------------------------- members of every kind

class ReadOnly:
    """A reader with read() only (no readinto): the extension's other path."""

    def __init__(self, data, step=777):
        self.data, self.pos, self.step = data, 0, step

    def read(self, n):
        n = min(n, self.step)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def test_writer_members_of_every_kind(tmp_path, files):
    big = os.urandom(3 * 1024 * 1024 + 17)  # more than one read of the library's buffer
    expected = {
        "COLLECTION.json": files["COLLECTION.json"].read_bytes(),
        "bytes.bin": b"plain bytes",
        "bytearray.bin": bytes(bytearray(b"\x00\x01" * 500)),
        "memoryview.bin": big[:4096],
        "empty.bin": b"",
        "fileobj.bin": big,
        "fileobj-sized.bin": big[:100000],
        "read-only.bin": big[:50000],
        "gen.bin": b"".join(bytes([i]) * (i * 100) for i in range(50)),
        "gen-sized.bin": b"abc" * 1000,
        "gen-mixed.bin": b"xy" + bytes(array.array("H", [1, 2, 3])) + b"z" * 70000,
        "gen-empty.bin": b"",
    }
    out = tmp_path / "out.taco"
    with tacozip.Writer(out) as w:
        w.add_file(files["COLLECTION.json"])  # name: the base name
        w.add_bytes("bytes.bin", b"plain bytes")
        w.add_bytes("bytearray.bin", bytearray(b"\x00\x01" * 500))
        w.add_bytes("memoryview.bin", memoryview(big)[:4096])
        w.add_bytes("empty.bin", b"")
        w.add_stream("fileobj.bin", io.BytesIO(big))
        w.add_stream("fileobj-sized.bin", io.BytesIO(big[:100000]), size=100000)
        w.add_stream("read-only.bin", ReadOnly(big[:50000]))
        w.add_stream("gen.bin", (bytes([i]) * (i * 100) for i in range(50)))  # empty chunks included
        w.add_stream("gen-sized.bin", iter([b"abc"] * 1000), size=3000)
        w.add_stream("gen-mixed.bin", [b"xy", array.array("H", [1, 2, 3]), memoryview(b"z" * 70000)])
        w.add_stream("gen-empty.bin", iter([]))
        assert not w.closed
    assert w.closed
    assert w.entries == [(0, 0)]  # the default header
    assert tacozip.read_header(out) == [(0, 0)]
    check_archive(out, expected)


def test_add_file_from_a_real_file_object(tmp_path, files):
    """An open binary file (BufferedReader: readinto) streams as it is."""
    src = files["data/train/a.tif"]
    out = tmp_path / "out.taco"
    with tacozip.Writer(out) as w, open(src, "rb") as f:
        w.add_stream("a.tif", f)
        w.add_file(src, "again/a.tif")
    check_archive(out, {"a.tif": src.read_bytes(), "again/a.tif": src.read_bytes()})


@pytest.mark.parametrize("kind", ["fileobj", "chunks"])
@pytest.mark.parametrize("actual", [999, 1001, 0])
def test_stream_of_the_wrong_size(tmp_path, kind, actual):
    """A declared size that the stream does not have: TACOZ_ERR_CHANGED,
    the writer aborted, nothing left (an existing file untouched)."""
    out = tmp_path / "out.taco"
    out.write_bytes(b"old contents")
    data = os.urandom(actual)
    source = io.BytesIO(data) if kind == "fileobj" else [data[i:i + 100] for i in range(0, actual, 100)]
    w = tacozip.Writer(out)
    w.add_bytes("first", b"1")
    with pytest.raises(tacozip.TacozipError) as ei:
        w.add_stream("s", source, size=1000)
    assert ei.value.code == tacozip.TACOZ_ERR_CHANGED == -42
    assert w.closed
    with pytest.raises(ValueError):
        w.add_bytes("later", b"x")
    with pytest.raises(ValueError):
        w.close()
    w.abort()  # allowed, does nothing
    assert out.read_bytes() == b"old contents"
    assert listing(tmp_path) == ["out.taco"]


def test_stream_of_the_wrong_size_in_with_leaves_nothing(tmp_path):
    out = tmp_path / "new.taco"
    with pytest.raises(tacozip.TacozipError) as ei:
        with tacozip.Writer(out) as w:
            w.add_stream("s", io.BytesIO(b"12345"), size=6)
    assert ei.value.code == tacozip.TACOZ_ERR_CHANGED
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- spooling

def fds_under(d):
    """Open file descriptors of this process whose file is under ``d``."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(d) + os.sep):
            out.append(target)
    return out


@pytest.mark.parametrize("spool_limit", [1000, 0])
def test_spool_to_file(tmp_path, spool_limit):
    """A stream of unknown size past spool_limit goes to an unnamed file in
    spool_dir: open while the stream is read, nothing named there, nothing
    left afterwards."""
    spool = tmp_path / "spool"
    spool.mkdir()
    seen = []
    chunk = os.urandom(64 * 1024)

    def gen():
        for i in range(40):
            yield chunk
            if i >= 24:  # the library has had 1.5 MiB by now (spool_limit=0: through a 1 MiB buffer)
                seen.append((fds_under(spool), listing(spool)))

    out = tmp_path / "out.taco"
    with tacozip.Writer(out, spool_limit=spool_limit, spool_dir=spool) as w:
        w.add_bytes("before", b"b")
        w.add_stream("big", gen())
        w.add_bytes("after", b"a")
    assert seen and all(fds for fds, _ in seen), "no spool file was open in spool_dir"
    assert all(names == [] or all(n.startswith(".") for n in names) for _, names in seen)
    assert listing(spool) == []
    assert fds_under(spool) == []
    check_archive(out, {"before": b"b", "big": chunk * 40, "after": b"a"})


def test_spool_in_memory_under_the_limit(tmp_path):
    """Under spool_limit nothing is written to spool_dir at all."""
    spool = tmp_path / "spool"
    spool.mkdir()
    seen = []

    def gen():
        for _ in range(10):
            yield b"m" * 1000
            seen.append(fds_under(spool))

    out = tmp_path / "out.taco"
    with tacozip.Writer(out, spool_limit=1 << 20, spool_dir=spool) as w:
        w.add_stream("small", gen())
    assert seen and all(fds == [] for fds in seen)
    assert listing(spool) == []
    check_archive(out, {"small": b"m" * 10000})


def test_spool_dir_default_is_tmpdir(tmp_path, monkeypatch):
    """spool_dir defaults to tempfile.gettempdir(), i.e. $TMPDIR."""
    import tempfile

    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    seen = []

    def gen():
        for _ in range(8):
            yield b"t" * 65536
            seen.append(fds_under(tmpdir))

    out = tmp_path / "out.taco"
    with tacozip.Writer(out, spool_limit=1000) as w:
        w.add_stream("t", gen())
    assert any(seen)
    assert listing(tmpdir) == []


def test_spool_dir_missing_fails_and_leaves_nothing(tmp_path):
    out = tmp_path / "out.taco"
    with pytest.raises(tacozip.TacozipError) as ei:
        with tacozip.Writer(out, spool_limit=10, spool_dir=tmp_path / "missing") as w:
            w.add_stream("s", iter([b"x" * 1000] * 10))
    assert ei.value.code == tacozip.TACOZ_ERR_IO
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- planned entries

def planned_entries():
    return [tacozip.data("COLLECTION.json"), tacozip.data("METADATA/level0.parquet"),
            tacozip.span(prefix="data/val/"), tacozip.span(members=["data/train/a.tif", "data/val/c.tif"]),
            tacozip.directory(), (5, 6), tacozip.data("data/train/b.tif")]


def check_planned(path, files):
    """The header of ``path`` (written with planned_entries()) is what the
    archive's own layout says, by tacozip.open and by zipfile."""
    header = tacozip.read_header(path)
    size = os.path.getsize(path)
    with tacozip.open(path) as ar:
        cd_offset, cd_size = ar._raw.directory_range()
        want = [ar.data_range("COLLECTION.json"), ar.data_range("METADATA/level0.parquet"), ar.span("data/val/"),
                ar.span(["data/train/a.tif", "data/val/c.tif"]), (cd_offset, size - cd_offset), (5, 6),
                ar.data_range("data/train/b.tif")]
        assert ar.header == header
    assert header == want
    lay = zip_layout(path)
    assert header[0] == lay["COLLECTION.json"][1:]
    assert header[1] == lay["METADATA/level0.parquet"][1:]
    c, d = lay["data/val/c.tif"], lay["data/val/d.tif"]
    assert header[2] == (c[0], d[1] + d[2] - c[0])
    a = lay["data/train/a.tif"]
    assert header[3] == (a[0], c[1] + c[2] - a[0])
    raw = open(path, "rb").read()
    assert header[4][0] + header[4][1] == len(raw) and raw[header[4][0]:header[4][0] + 4] == b"PK\x01\x02"
    assert header[6] == (lay["data/train/b.tif"][1], 0)
    # the bytes of a span entry alone give its members back
    off, length = header[2]
    members = tacozip.decode_span(raw[off:off + length], off)
    assert [m.name for m in members] == ["data/val/c.tif", "data/val/d.tif"]
    assert [bytes(m.data) for m in members] == [files["data/val/c.tif"].read_bytes(),
                                                files["data/val/d.tif"].read_bytes()]
    # the data entries are the members' bytes
    assert raw[header[0][0]:sum(header[0])] == files["COLLECTION.json"].read_bytes()


def test_writer_planned_entries(tmp_path, files):
    out = tmp_path / "out.taco"
    with tacozip.Writer(out, entries=planned_entries()) as w:
        for name, p in files.items():
            w.add_file(p, name)
    assert w.entries == tacozip.read_header(out)
    check_planned(out, files)
    check_archive(out, {n: p.read_bytes() for n, p in files.items()})


def test_writer_set_entries_later(tmp_path, files):
    """Entries set at any time before close (replacing earlier ones) are
    resolved against every member added by then; close returns them."""
    out = tmp_path / "out.taco"
    w = tacozip.Writer(out, entries=[tacozip.data("never-added")])
    w.set_entries([(1, 2)])
    for name, p in files.items():
        w.add_stream(name, io.BytesIO(p.read_bytes()))
        if name == "COLLECTION.json":
            w.set_entries(planned_entries())  # names members not added yet
    written = w.close()
    assert written == tacozip.read_header(out) == w.entries
    check_planned(out, files)


def test_create_planned_entries(tmp_path, files):
    out = tmp_path / "out.taco"
    tacozip.create(out, list(files.values()), list(files), entries=planned_entries())
    check_planned(out, files)
    check_archive(out, {n: p.read_bytes() for n, p in files.items()})


def test_entries_mixed_and_checked(tmp_path, files):
    out = tmp_path / "out.taco"
    with pytest.raises(ValueError, match="Too many entries"):
        tacozip.create(out, [files["COLLECTION.json"]], entries=[tacozip.directory()] * 8)
    with pytest.raises(ValueError, match="Too many entries"):
        tacozip.Writer(out, entries=[(0, 0)] * 8)
    with pytest.raises(TypeError):
        tacozip.create(out, [files["COLLECTION.json"]], entries=[tacozip.directory(), (1.5, 2)])
    with pytest.raises(TypeError):
        tacozip.Writer(out, entries=tacozip.directory())  # one entry, not a list
    with pytest.raises(TypeError):
        tacozip.Writer(out, entries=["data/x"])
    with pytest.raises(OverflowError):
        tacozip.create(out, [files["COLLECTION.json"]], entries=[tacozip.directory(), (-1, 2)])
    assert not out.exists()


@pytest.mark.parametrize("entry", [tacozip.data("missing.json"), tacozip.span(prefix="data/test/"),
                                   tacozip.span(members=["data/val/c.tif", "data/val/nope.tif"])])
def test_entry_naming_nothing_is_not_found(tmp_path, files, entry):
    """An entry that names no member: TACOZ_ERR_NOT_FOUND (-5), nothing
    written, an existing file untouched (create, Writer, plan)."""
    out = tmp_path / "out.taco"
    old = tmp_path / "old.taco"
    old.write_bytes(b"old")
    for target in (out, old):
        with pytest.raises(tacozip.TacozipError) as ei:
            tacozip.create(target, list(files.values()), list(files), entries=[(0, 0), entry])
        assert ei.value.code == tacozip.TACOZ_ERR_NOT_FOUND == -5
        with pytest.raises(tacozip.TacozipError) as ei:
            with tacozip.Writer(target, entries=[entry]) as w:
                for name, p in files.items():
                    w.add_file(p, name)
        assert ei.value.code == tacozip.TACOZ_ERR_NOT_FOUND
        assert w.closed
    assert not out.exists()
    assert old.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["old.taco", "src"]
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.plan(list(files.values()), list(files), [entry])
    assert ei.value.code == tacozip.TACOZ_ERR_NOT_FOUND


# --------------------------------------------------------------------------- plan()

@pytest.mark.parametrize("alignment", [0, 4096])
@pytest.mark.parametrize("index", [False, True])
def test_plan_is_what_create_writes(tmp_path, files, alignment, index):
    names = list(files)
    p = tacozip.plan(list(files.values()), names, planned_entries(), alignment=alignment, index=index)
    assert isinstance(p, tacozip.Plan)
    out = tmp_path / "out.taco"
    tacozip.create(out, list(files.values()), names, entries=planned_entries(), alignment=alignment, index=index)
    assert p.entries == tacozip.read_header(out)
    lay = zip_layout(out)
    assert [m.name for m in p.members] == names
    for m in p.members:
        assert isinstance(m, tacozip.PlannedMember)
        assert (m.header_offset, m.data_offset, m.size) == lay[m.name], m.name
        if alignment:
            assert m.data_offset % alignment == 0
    with tacozip.open(out) as ar:
        assert p.directory_offset == ar._raw.directory_range()[0]
    # sizes given: the files need not exist
    ghost = [tmp_path / "not-yet" / n for n in names]
    q = tacozip.plan(ghost, names, planned_entries(), sizes=[f.stat().st_size for f in files.values()],
                     alignment=alignment, index=index)
    assert q == p


def test_plan_defaults(tmp_path, files):
    """Without entries: the default header [(0, 0)]; without arc_files: base
    names, as create."""
    srcs = [files["COLLECTION.json"], files["data/val/c.tif"]]
    p = tacozip.plan(srcs)
    assert p.entries == [(0, 0)]
    assert [m.name for m in p.members] == ["COLLECTION.json", "c.tif"]
    first = p.members[0]
    assert first.header_offset == 157 and first.data_offset == 157 + 30 + len("COLLECTION.json")
    second = p.members[1]
    assert second.header_offset == first.data_offset + first.size
    assert p.directory_offset == second.data_offset + second.size
    assert tacozip.plan([], entries=[]).members == []
    with pytest.raises(ValueError):
        tacozip.plan(srcs, sizes=[1])
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.plan(srcs, ["same", "same"])
    assert ei.value.code == tacozip.TACOZ_ERR_EXISTS


def test_plan_zip64_sizes():
    """Sizes alone, past 4 GiB (nothing is written): the default rule, 20
    bytes of ZIP64 extra for members of 4 GiB - 1 bytes or more."""
    sizes = [5 << 30, 10, 0xFFFFFFFF, 0xFFFFFFFE]
    names = ["a", "bb", "ccc", "dddd"]
    p = tacozip.plan(names, sizes=sizes, entries=[tacozip.data("ccc"), tacozip.span(prefix="")])
    pos = 157
    for m, name, size in zip(p.members, names, sizes):
        assert m.header_offset == pos
        assert m.data_offset == pos + 30 + len(name) + (20 if size >= 0xFFFFFFFF else 0)
        pos = m.data_offset + size
    assert p.directory_offset == pos
    assert p.entries == [(p.members[2].data_offset, 0xFFFFFFFF), (157, pos - 157)]


def test_span_of_every_member(tmp_path, files):
    out = tmp_path / "out.taco"
    tacozip.create(out, list(files.values()), list(files), entries=[tacozip.span(prefix="")])
    with tacozip.open(out) as ar:
        assert ar.header == [ar.span(list(files))]


@pytest.mark.parametrize("alignment", [0, 64])
def test_plan_is_what_the_writer_writes(tmp_path, files, alignment):
    names = list(files)
    p = tacozip.plan(list(files.values()), names, planned_entries(), alignment=alignment)
    out = tmp_path / "out.taco"
    with tacozip.Writer(out, entries=planned_entries(), alignment=alignment) as w:
        for i, (name, path) in enumerate(files.items()):
            if i % 3 == 0:
                w.add_file(path, name)
            elif i % 3 == 1:
                w.add_bytes(name, path.read_bytes())
            else:
                w.add_stream(name, iter([path.read_bytes()]))
    assert p.entries == w.entries == tacozip.read_header(out)
    lay = zip_layout(out)
    assert [(m.header_offset, m.data_offset, m.size) for m in p.members] == [lay[n] for n in names]


# --------------------------------------------------------------------------- byte-identical output

@pytest.mark.parametrize("alignment", [0, 512])
def test_writer_and_create_write_the_same_bytes(tmp_path, files, alignment):
    names = list(files)
    a = tmp_path / "create.taco"
    tacozip.create(a, list(files.values()), names, entries=planned_entries(), alignment=alignment, mtime=MTIME)
    b = tmp_path / "writer.taco"
    with tacozip.Writer(b, entries=planned_entries(), alignment=alignment, mtime=MTIME) as w:
        for name, path in files.items():
            w.add_file(path, name)
    assert a.read_bytes() == b.read_bytes()
    # the same bytes from buffers and streams
    c = tmp_path / "streams.taco"
    with tacozip.Writer(c, entries=planned_entries(), alignment=alignment, mtime=MTIME) as w:
        for i, (name, path) in enumerate(files.items()):
            data = path.read_bytes()
            if i % 2:
                w.add_bytes(name, data)
            else:
                w.add_stream(name, io.BytesIO(data), size=len(data) if i % 4 == 0 else None)
    assert c.read_bytes() == a.read_bytes()
    # and a plain create without planned entries, given the resolved pairs
    d = tmp_path / "pairs.taco"
    tacozip.create(d, list(files.values()), names, entries=tacozip.read_header(a), alignment=alignment, mtime=MTIME)
    assert d.read_bytes() == a.read_bytes()


def dos_times(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: i.date_time for i in z.infolist()}


def dos(t):
    """A Unix time as zipfile shows the DOS time written in UTC."""
    import time

    g = time.gmtime(t)
    return g[:5] + (g[5] // 2 * 2,)


def test_member_mtime(tmp_path, files):
    """mtime per member (Unix seconds, UTC); without it, the writer's
    mtime for every member and TACO_HEADER."""
    out = tmp_path / "out.taco"
    with tacozip.Writer(out) as w:
        w.add_bytes("b", b"b", mtime=1_600_000_000)
        w.add_stream("c", iter([b"c"]), mtime=1_500_000_000)
        w.add_stream("d", iter([b"d"]), size=1, mtime=1_400_000_000)
    got = dos_times(out)
    assert got["b"] == dos(1_600_000_000) and got["c"] == dos(1_500_000_000) and got["d"] == dos(1_400_000_000)
    with tacozip.Writer(out, mtime=MTIME) as w:
        w.add_bytes("a", b"a")
        w.add_stream("c", iter([b"c"]))
        w.add_file(files["COLLECTION.json"])
    assert set(dos_times(out).values()) == {dos(MTIME)}


def test_member_mtime_over_the_writers(tmp_path):
    """include/tacozip.h: a member's mtime, "0: opts->mtime if set": a
    member's own time comes before the writer's."""
    out = tmp_path / "out.taco"
    with tacozip.Writer(out, mtime=MTIME) as w:
        w.add_bytes("a", b"a")
        w.add_bytes("b", b"b", mtime=1_600_000_000)
        w.add_stream("c", iter([b"c"]), mtime=1_500_000_000)
    got = dos_times(out)
    assert got["TACO_HEADER"] == got["a"] == dos(MTIME)
    assert got["b"] == dos(1_600_000_000)
    assert got["c"] == dos(1_500_000_000)


# --------------------------------------------------------------------------- failures leave nothing

class Boom(Exception):
    pass


def test_exception_in_with_leaves_no_file(tmp_path, files):
    out = tmp_path / "out.taco"
    with pytest.raises(Boom):
        with tacozip.Writer(out) as w:
            w.add_file(files["data/train/a.tif"])
            w.add_bytes("x", b"x" * 100000)
            raise Boom()
    assert w.closed
    assert not out.exists()
    assert listing(tmp_path) == ["src"]


def test_exception_in_with_keeps_an_existing_file(tmp_path, files):
    out = tmp_path / "out.taco"
    tacozip.create(out, [files["COLLECTION.json"]])
    before = out.read_bytes()
    with pytest.raises(Boom):
        with tacozip.Writer(out) as w:
            w.add_file(files["data/train/a.tif"])
            raise Boom()
    assert out.read_bytes() == before
    assert listing(tmp_path) == ["out.taco", "src"]


def test_abort(tmp_path):
    out = tmp_path / "out.taco"
    w = tacozip.Writer(out)
    w.add_bytes("x", b"x")
    w.abort()
    assert w.closed and not out.exists()
    w.abort()
    with pytest.raises(ValueError):
        w.add_bytes("y", b"y")
    with pytest.raises(ValueError):
        w.close()
    # a writer dropped without close leaves nothing either
    w = tacozip.Writer(out)
    w.add_bytes("x", b"x")
    del w
    import gc

    gc.collect()
    assert listing(tmp_path) == []


def test_writer_in_a_reference_cycle_is_collected(tmp_path):
    """A progress callback that refers back to its writer: the cycle is
    collected and the writer aborted (nothing left, no descriptor kept)."""
    import gc

    out = tmp_path / "out.taco"

    class Job:
        def __init__(self):
            self.writer = tacozip.Writer(out, progress=self.progress)

        def progress(self, *args):
            return None

    fds_before = set(os.listdir("/proc/self/fd"))
    job = Job()
    job.writer.add_bytes("x", b"x" * 1000)
    del job
    gc.collect()
    assert listing(tmp_path) == []
    assert set(os.listdir("/proc/self/fd")) <= fds_before


def test_close_twice_and_repr(tmp_path):
    out = tmp_path / "out.taco"
    w = tacozip.Writer(out)
    assert "open" in repr(w)
    assert w.close() == [(0, 0)]
    assert "written" in repr(w)
    with pytest.raises(ValueError):
        w.close()
    with pytest.raises(ValueError):
        w.add_bytes("x", b"x")
    check_archive(out, {})


@pytest.mark.parametrize("where", ["generator", "readinto", "read"])
def test_stream_exception_propagates_as_itself(tmp_path, where):
    out = tmp_path / "out.taco"
    out.write_bytes(b"old")
    boom = Boom("from the stream")

    def gen():
        yield b"x" * 100000
        raise boom

    class Failing(io.RawIOBase):
        def __init__(self):
            self.n = 0

        def readable(self):
            return True

        def readinto(self, b):
            self.n += 1
            if self.n > 2:
                raise boom
            b[:10] = b"0123456789"
            return 10

    class FailingRead:
        def read(self, n):
            raise boom

    source = {"generator": gen(), "readinto": Failing(), "read": FailingRead()}[where]
    w = tacozip.Writer(out)
    w.add_bytes("a", b"a")
    with pytest.raises(Boom) as ei:
        w.add_stream("s", source)
    assert ei.value is boom
    assert w.closed
    with pytest.raises(ValueError):
        w.add_bytes("b", b"b")
    assert out.read_bytes() == b"old"
    assert listing(tmp_path) == ["out.taco"]


def test_stream_exception_in_with(tmp_path):
    """The source's exception, not a TacozipError, comes out of the with."""
    out = tmp_path / "out.taco"

    def gen():
        yield b"abc"
        raise KeyError("chunk")

    with pytest.raises(KeyError, match="chunk"):
        with tacozip.Writer(out) as w:
            w.add_stream("s", gen(), size=10)
    assert listing(tmp_path) == []


def test_stream_bad_chunks(tmp_path):
    """A chunk that is not bytes-like, a reader returning too much or None:
    the writer fails with a Python error, nothing is left."""
    out = tmp_path / "out.taco"
    with pytest.raises(TypeError):
        with tacozip.Writer(out) as w:
            w.add_stream("s", iter([b"ok", "text"]))

    class TooMuch:
        def read(self, n):
            return b"x" * (n + 1)

    with pytest.raises(ValueError):
        with tacozip.Writer(out) as w:
            w.add_stream("s", TooMuch())

    class NonBlocking:
        def readinto(self, b):
            return None

    with pytest.raises(BlockingIOError):
        with tacozip.Writer(out) as w:
            w.add_stream("s", NonBlocking())
    assert listing(tmp_path) == []


def test_wrong_source_types_do_not_abort(tmp_path):
    """Arguments refused before the library is called leave the writer
    usable."""
    out = tmp_path / "out.taco"
    with tacozip.Writer(out) as w:
        for bad in (b"bytes", "text", 42, None):
            with pytest.raises(TypeError):
                w.add_stream("s", bad)
        with pytest.raises(TypeError):
            w.add_bytes("s", "text")
        with pytest.raises(ValueError):
            w.add_bytes("", b"x")
        with pytest.raises(ValueError):
            w.add_stream("s", io.BytesIO(b""), size=-1)
        assert not w.closed
        w.add_bytes("s", b"fine")
    check_archive(out, {"s": b"fine"})


def test_reentrant_call_from_a_stream(tmp_path):
    """A stream that calls its own writer: RuntimeError, as itself."""
    out = tmp_path / "out.taco"
    w = tacozip.Writer(out)

    def gen():
        yield b"x"
        w.add_bytes("inner", b"y")

    with pytest.raises(RuntimeError, match="in use"):
        w.add_stream("s", gen())
    assert w.closed
    assert listing(tmp_path) == []


def test_one_writer_two_threads(tmp_path):
    """A second thread calling a writer while a call of it runs gets
    RuntimeError; the running call is not disturbed."""
    import threading

    out = tmp_path / "out.taco"
    w = tacozip.Writer(out)
    errors = []

    def other():
        try:
            w.add_bytes("other", b"o")
        except RuntimeError as e:
            errors.append(e)

    def gen():
        yield b"first"
        t = threading.Thread(target=other)
        t.start()
        t.join()
        yield b"second"

    w.add_stream("s", gen())
    w.close()
    assert len(errors) == 1 and "in use" in str(errors[0])
    check_archive(out, {"s": b"firstsecond"})


def test_progress_exception_and_cancel(tmp_path, files):
    out = tmp_path / "out.taco"
    boom = Boom("progress")

    def progress(done, total, nfiles, total_files):
        raise boom

    with pytest.raises(Boom) as ei:
        with tacozip.Writer(out, progress=progress) as w:
            for name, p in files.items():
                w.add_file(p, name)
    assert ei.value is boom
    with pytest.raises(tacozip.TacozipError) as ei:
        with tacozip.Writer(out, progress=lambda *a: True) as w:
            for name, p in files.items():
                w.add_file(p, name)
    assert ei.value.code == tacozip.TACOZ_ERR_CANCELLED
    assert listing(tmp_path) == ["src"]
    calls = []
    with tacozip.Writer(out, progress=lambda *a: calls.append(a)) as w:
        for name, p in files.items():
            w.add_file(p, name)
    assert calls and calls[-1][2] >= 1


@pytest.mark.parametrize("name, code", [("TACO_HEADER", tacozip.TACOZ_ERR_EXISTS),
                                        ("dup", tacozip.TACOZ_ERR_EXISTS),
                                        ("../escape", tacozip.TACOZ_ERR_PARAM),
                                        ("/abs", tacozip.TACOZ_ERR_PARAM)])
def test_bad_member_names(tmp_path, name, code):
    out = tmp_path / "out.taco"
    w = tacozip.Writer(out)
    w.add_bytes("dup", b"1")
    with pytest.raises(tacozip.TacozipError) as ei:
        w.add_bytes(name, b"2")
    assert ei.value.code == code
    assert w.closed and listing(tmp_path) == []


def test_missing_source_file(tmp_path):
    out = tmp_path / "out.taco"
    with pytest.raises(tacozip.TacozipError) as ei:
        with tacozip.Writer(out) as w:
            w.add_file(tmp_path / "missing.bin")
    assert ei.value.code == tacozip.TACOZ_ERR_IO
    assert listing(tmp_path) == []


def test_output_that_is_not_writable(tmp_path):
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.Writer(tmp_path / "no-such-dir" / "out.taco")
    assert ei.value.code == tacozip.TACOZ_ERR_IO
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.Writer("http://example.invalid/out.taco")
    assert ei.value.code == tacozip.TACOZ_ERR_PARAM


def test_writer_options_checked(tmp_path):
    out = tmp_path / "out.taco"
    with pytest.raises(ValueError):
        tacozip.Writer(out, spool_limit=-1)
    with pytest.raises(TypeError):
        tacozip.Writer(out, remote={"no_such_option": 1})
    with pytest.raises(TypeError):
        tacozip.Writer(out, progress=42)
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.Writer(out, alignment=3)
    assert ei.value.code == tacozip.TACOZ_ERR_PARAM
    assert listing(tmp_path) == []


def test_writer_releases_the_gil(tmp_path):
    """Another thread runs while a large member is written."""
    import threading

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=ticker)
    out = tmp_path / "out.taco"
    w = tacozip.Writer(out, fsync=False)
    t.start()
    n0 = len(ticks)
    w.add_file(big)
    w.add_stream("again", open(big, "rb"), size=big.stat().st_size)
    w.close()
    n1 = len(ticks)
    stop.set()
    t.join()
    assert n1 - n0 > 5
    assert tacozip.validate(out, 1) == 0
    out.unlink()
    big.unlink()


def test_drop_in_create_unchanged(tmp_path, files):
    """Plain pairs and a local path: the original create (same bytes as
    create_planned given the same pairs), returns None."""
    a = tmp_path / "a.taco"
    assert tacozip.create(a, list(files.values()), list(files), [(1, 2), (3, 4)]) is None
    assert tacozip.read_header(a) == [(1, 2), (3, 4)]
    check_archive(a, {n: p.read_bytes() for n, p in files.items()})


# --------------------------------------------------------------------------- S3 (moto)

def s3_options(moto_s3):
    return {"key": "testing", "secret": "testing", "endpoint_url": moto_s3.endpoint, "region": "us-east-1"}


def s3_members(tmp_path):
    """About 12 MiB of members (several 5 MiB parts), as files."""
    d = tmp_path / "s3src"
    d.mkdir()
    out = {}
    for name, size in [("COLLECTION.json", 100), ("data/a.bin", 4 * 1024 * 1024 + 3), ("data/b.bin", 1),
                       ("data/c.bin", 8 * 1024 * 1024 - 5), ("META/x.parquet", 2000)]:
        p = d / name.replace("/", "_")
        p.write_bytes(os.urandom(size))
        out[name] = p
    return out


S3_ENTRIES = [tacozip.data("COLLECTION.json"), tacozip.span(prefix="data/"), tacozip.directory(),
              tacozip.data("META/x.parquet")]


def pending_uploads(moto_s3, prefix):
    r = moto_s3.client.list_multipart_uploads(Bucket=moto_s3.bucket, Prefix=prefix)
    return r.get("Uploads", [])


def object_exists(moto_s3, key):
    try:
        moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=key)
        return True
    except moto_s3.client.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def check_s3_archive(moto_s3, key, members, local_copy):
    url = f"s3://{moto_s3.bucket}/{key}"
    opts = s3_options(moto_s3)
    assert tacozip.validate(url, tacozip.TACOZIP_VALIDATE_DEEP, **opts) == 0, \
        tacozip.validate_detail(url, 2, **opts)
    with tacozip.open(url, **opts) as ar:
        assert ar.names() == ["TACO_HEADER"] + list(members)
        for name, p in members.items():
            assert ar.read(name) == p.read_bytes()
        header = ar.header
        assert header[0] == ar.data_range("COLLECTION.json")
        assert header[1] == ar.span("data/")
        cd = ar._raw.directory_range()[0]
        assert header[2] == (cd, ar.size - cd)
    body = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read()
    assert body == local_copy.read_bytes()
    return moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=key)["ETag"]


def test_s3_writer_multipart(tmp_path, moto_s3):
    members = s3_members(tmp_path)
    local = tmp_path / "local.taco"
    tacozip.create(local, list(members.values()), list(members), entries=S3_ENTRIES, mtime=MTIME)
    assert os.path.getsize(local) > 12 * 1024 * 1024
    key = "writer/multipart.taco"
    with tacozip.Writer(f"s3://{moto_s3.bucket}/{key}", entries=S3_ENTRIES, mtime=MTIME,
                        part_size=5 * 1024 * 1024, upload_parallel=2, remote=s3_options(moto_s3)) as w:
        for i, (name, p) in enumerate(members.items()):
            if i % 2:
                w.add_stream(name, open(p, "rb"))  # unknown size: spooled
            else:
                w.add_file(p, name)
            assert not object_exists(moto_s3, key)  # nothing visible before close
    etag = check_s3_archive(moto_s3, key, members, local)
    assert etag.strip('"').endswith("-3"), etag  # a multipart upload of three parts
    assert pending_uploads(moto_s3, "writer/") == []


def test_s3_create(tmp_path, moto_s3):
    members = s3_members(tmp_path)
    local = tmp_path / "local.taco"
    tacozip.create(local, list(members.values()), list(members), entries=S3_ENTRIES, mtime=MTIME)
    key = "create/planned.taco"
    tacozip.create(f"s3://{moto_s3.bucket}/{key}", list(members.values()), list(members), entries=S3_ENTRIES,
                   mtime=MTIME, remote=s3_options(moto_s3))
    check_s3_archive(moto_s3, key, members, local)
    assert pending_uploads(moto_s3, "create/") == []


def test_s3_credentials_from_the_environment(tmp_path, moto_s3, monkeypatch):
    """AWS_* variables fill in what remote= does not give, as for reading."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3.endpoint)
    key = "env/one-put.taco"
    with tacozip.Writer(f"s3://{moto_s3.bucket}/{key}", expected_size=1000, mtime=MTIME) as w:
        w.add_bytes("a.txt", b"hello")
    assert w.entries == [(0, 0)]
    body = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read()
    local = tmp_path / "local.taco"
    with tacozip.Writer(local, mtime=MTIME) as w:
        w.add_bytes("a.txt", b"hello")
    assert body == local.read_bytes()
    etag = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=key)["ETag"]
    assert "-" not in etag  # one PUT, no multipart upload
    assert pending_uploads(moto_s3, "env/") == []


def test_s3_abort_leaves_no_upload(tmp_path, moto_s3):
    key = "aborted/x.taco"
    url = f"s3://{moto_s3.bucket}/{key}"
    chunk = os.urandom(1024 * 1024)
    with pytest.raises(Boom):
        with tacozip.Writer(url, part_size=5 * 1024 * 1024, remote=s3_options(moto_s3)) as w:
            for i in range(12):  # parts are uploaded meanwhile
                w.add_bytes(f"m{i}", chunk)
            raise Boom()
    assert pending_uploads(moto_s3, "aborted/") == []
    assert not object_exists(moto_s3, key)
    # a failing stream and an entry naming nothing: the same

    def failing():
        yield chunk
        raise Boom()

    with pytest.raises(Boom):
        with tacozip.Writer(url, part_size=5 * 1024 * 1024, remote=s3_options(moto_s3)) as w:
            w.add_bytes("big", chunk * 7)
            w.add_stream("s", failing())
    assert pending_uploads(moto_s3, "aborted/") == []
    with pytest.raises(tacozip.TacozipError) as ei:
        with tacozip.Writer(url, entries=[tacozip.data("missing")], part_size=5 * 1024 * 1024,
                            remote=s3_options(moto_s3)) as w:
            w.add_bytes("big", chunk * 7)
    assert ei.value.code == tacozip.TACOZ_ERR_NOT_FOUND
    assert pending_uploads(moto_s3, "aborted/") == []
    assert not object_exists(moto_s3, key)
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.create(url, [tmp_path / "missing"], ["x"], remote=s3_options(moto_s3))
    assert pending_uploads(moto_s3, "aborted/") == []
    assert not object_exists(moto_s3, key)


def test_s3_no_such_bucket_fails_at_open(moto_s3):
    """The multipart upload starts at open: S3's refusal fails the open."""
    with pytest.raises(tacozip.TacozipError) as ei:
        tacozip.Writer(f"s3://no-such-bucket-{os.getpid()}/x.taco", remote=s3_options(moto_s3))
    assert ei.value.code == tacozip.TACOZ_ERR_NETWORK
