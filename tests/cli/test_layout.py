"""Byte layout of archives we write: the tacotoolbox offset prediction must
hold and the bytes at each predicted offset must be the source bytes."""
import struct
import zipfile
import zlib

import pytest

from tzutil import (FLAG_DATA_DESCRIPTOR, FLAG_UTF8, TACO_HEADER_SIZE, parse_zip, predict_offsets,
                    rand_bytes, read_range, write_file)

# (archive name, size) -- ASCII, UTF-8, nested paths; 0, 1, 4 KiB, 1 MiB.
MEMBERS = [
    ("empty.bin", 0),
    ("one.txt", 1),
    ("page.dat", 4096),
    ("big/mebi.raw", 1 << 20),
    ("données/日本語.txt", 4096),
    ("a/b/c/d/e/deep.bin", 1),
    ("ünï/ø", 0),
    ("COLLECTION.json", 123),
    ("x" * 200 + ".long", 77),
]


@pytest.fixture(scope="module")
def layout_archive(tz, tmp_path_factory):
    d = tmp_path_factory.mktemp("layout")
    args = []
    data = {}
    for i, (name, size) in enumerate(MEMBERS):
        content = rand_bytes(size, seed=i)
        src = write_file(d / "src" / ("f%d" % i), content)
        data[name] = content
        args += [src, "--as", name]
    out = d / "out.taco"
    tz.ok("create", out, *args, "--no-fsync")
    return out, data


def test_ls_offsets_match_tacotoolbox_prediction(tz, layout_archive):
    out, data = layout_archive
    listing = tz.ls(out)
    assert [m["name"] for m in listing] == ["TACO_HEADER"] + [n for n, _ in MEMBERS]
    predicted = predict_offsets(MEMBERS)
    assert [m["offset"] for m in listing[1:]] == predicted
    assert [m["size"] for m in listing[1:]] == [s for _, s in MEMBERS]
    assert listing[0]["offset"] == 41 and listing[0]["size"] == 116 and listing[0]["header_offset"] == 0


def test_bytes_at_predicted_offsets_are_the_sources(layout_archive):
    out, data = layout_archive
    for (name, size), off in zip(MEMBERS, predict_offsets(MEMBERS)):
        assert read_range(out, off, size) == data[name], name
    # the first member's local header starts right after the 157-byte header
    assert read_range(out, TACO_HEADER_SIZE, 4) == b"PK\x03\x04"


def test_local_headers_plain(layout_archive):
    out, data = layout_archive
    z = parse_zip(out)
    assert [e.name for e in z.entries] == ["TACO_HEADER"] + [n for n, _ in MEMBERS]
    for e in z.entries:
        lh = e.local
        assert lh.extra == b"", e.name
        assert len(e.extra) == 0, e.name  # no ZIP64 extra in the directory for small members
        assert not (lh.flags & FLAG_DATA_DESCRIPTOR) and not (e.flags & FLAG_DATA_DESCRIPTOR), e.name
        assert lh.method == 0 and e.method == 0, e.name
        assert lh.name == e.name_bytes
        # UTF-8 flag exactly when the name is not ASCII
        non_ascii = any(b >= 0x80 for b in e.name_bytes)
        assert bool(lh.flags & FLAG_UTF8) == non_ascii and bool(e.flags & FLAG_UTF8) == non_ascii, e.name
        if e.name != "TACO_HEADER":
            content = data[e.name]
            assert lh.crc == e.crc == zlib.crc32(content), e.name
            assert lh.csize32 == lh.usize32 == e.csize == e.usize == len(content), e.name
    # members are back to back, the directory follows the last one
    ends = [e.data_offset + e.csize for e in z.entries]
    starts = [e.header_offset for e in z.entries[1:]] + [z.cd_offset]
    assert ends == starts
    assert not z.zip64
    assert z.eocd_offset + 22 == z.size


def test_taco_header_first_at_offset_zero(layout_archive):
    out, _ = layout_archive
    z = parse_zip(out)
    first = z.entries[0]
    assert first.name_bytes == b"TACO_HEADER" and first.header_offset == 0
    assert first.csize == first.usize == 116
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
        assert infos[0].filename == "TACO_HEADER" and infos[0].header_offset == 0
        assert infos[0].file_size == 116
        assert [i.filename for i in infos[1:]] == [n for n, _ in MEMBERS]
    raw = read_range(out, 0, 41)
    sig, ver, flags, method, _dt, crc, cs, us, nlen, xlen = struct.unpack("<IHHHIIIIHH", raw[:30])
    assert (sig, ver, flags, method, cs, us, nlen, xlen) == (0x04034B50, 10, 0, 0, 116, 116, 11, 0)
    assert raw[30:41] == b"TACO_HEADER"
    assert crc == zlib.crc32(read_range(out, 41, 116)) == first.crc


def test_directory_only_source(tz, tmp_path):
    """A directory argument is added recursively in byte order with names
    relative to its parent; the layout rule still holds."""
    root = tmp_path / "data"
    files = {"data/b.bin": b"B" * 10, "data/a/z.txt": b"zz", "data/a/a.txt": b"", "data/c": b"c" * 3}
    for rel, content in files.items():
        write_file(tmp_path / rel, content)
    out = tmp_path / "d.taco"
    tz.ok("create", out, root, "--no-fsync")
    listing = tz.ls(out)
    names = sorted(files, key=lambda s: s.encode())
    assert [m["name"] for m in listing[1:]] == names
    members = [(n, len(files[n])) for n in names]
    assert [m["offset"] for m in listing[1:]] == predict_offsets(members)
    for m in listing[1:]:
        assert read_range(out, m["offset"], m["size"]) == files[m["name"]]


@pytest.mark.parametrize("before_boundary", [0, 1, 13, 14, 15, 16, 17, 18, 30])
def test_local_header_across_4mib_write_boundary(tz, tmp_path, before_boundary):
    """The writer buffers 4 MiB at a time and patches each member's CRC into
    its local header after the data: a local header whose CRC field (bytes
    14..17) straddles a buffer boundary (before_boundary 15..17) must still
    get the right CRC.  The second member's header starts `before_boundary`
    bytes before 4 MiB."""
    boundary = 4 << 20
    start2 = boundary - before_boundary
    size1 = start2 - (157 + 30 + 1)  # first member named "a"
    data1 = rand_bytes(size1, 11)
    data2 = rand_bytes(5000, 12)
    s1 = write_file(tmp_path / "a", data1)
    s2 = write_file(tmp_path / "b", data2)
    out = tmp_path / "s.taco"
    tz.ok("create", out, s1, s2, "--no-fsync")
    z = parse_zip(out)
    e2 = z.entries[2]
    assert e2.header_offset == start2
    assert e2.local.crc == e2.crc == zlib.crc32(data2)
    assert z.entries[1].local.crc == zlib.crc32(data1)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert zf.read("b") == data2
