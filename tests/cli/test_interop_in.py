"""Archives written by others (Python zipfile, the peer tacozip, Info-ZIP
zip) read by ours: ls offsets computed from the raw local headers, cat,
extract and validate."""
import struct
import zipfile

import pytest

from tzutil import dir_snapshot, parse_zip, rand_bytes, read_range, write_file

CONTENTS = {
    "a.txt": b"hello\n",
    "empty": b"",
    "dir/b.bin": rand_bytes(5000, 1),
    "dir/sub/ü.dat": rand_bytes(70000, 2),
    "big.raw": rand_bytes(1 << 20, 3),
}


def local_data_offset(path, header_offset):
    """header_offset + 30 + name length + local extra length, from the bytes."""
    raw = read_range(path, header_offset, 30)
    sig, nlen, xlen = struct.unpack("<I22xHH", raw)
    assert sig == 0x04034B50
    return header_offset + 30 + nlen + xlen


def build_zipfile(path, comment=b"", zip64_member=None):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in CONTENTS.items():
            if name == zip64_member:
                with zf.open(name, "w", force_zip64=True) as w:
                    w.write(data)
            else:
                zf.writestr(name, data)
        zf.comment = comment
    return path


VARIANTS = {
    "plain": dict(),
    "comment": dict(comment=b"an archive comment, " * 50),
    "zip64member": dict(zip64_member="dir/b.bin"),
    "zip64all": dict(zip64_member="a.txt", comment=b"c"),
}


@pytest.fixture(params=sorted(VARIANTS))
def zf_archive(request, tmp_path):
    p = build_zipfile(tmp_path / ("%s.zip" % request.param), **VARIANTS[request.param])
    return p, request.param


def check_listing(tz, path, expected_names):
    listing = tz.ls(path)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    raw_names = [e.name_bytes for e in parse_zip(path, read_locals=False).entries]
    assert [m["name"].encode() for m in listing] == raw_names == [n.encode() for n in expected_names]
    assert len(infos) == len(listing)
    for m, info in zip(listing, infos):
        assert m["header_offset"] == info.header_offset, m["name"]
        assert m["offset"] == local_data_offset(path, info.header_offset), m["name"]
        assert m["size"] == info.compress_size == info.file_size, m["name"]
        assert int(m["crc32"], 16) == info.CRC, m["name"]
    return listing


def test_zipfile_archive_ls_offsets(tz, zf_archive):
    path, variant = zf_archive
    listing = check_listing(tz, path, list(CONTENTS))
    if VARIANTS[variant].get("zip64_member"):
        # the forced ZIP64 member really has a 20-byte local extra
        m = [x for x in listing if x["name"] == VARIANTS[variant]["zip64_member"]][0]
        assert m["offset"] == m["header_offset"] + 30 + len(m["name"].encode()) + 20
    for m in listing:
        assert read_range(path, m["offset"], m["size"]) == CONTENTS[m["name"]]


def test_comment_containing_end_signature(tz, tmp_path):
    """A comment holding a fake end-record signature (Python's zipfile itself
    cannot read this back); the real end record is the one whose comment
    reaches the end of the file."""
    path = build_zipfile(tmp_path / "tricky.zip",
                         comment=b"comment with PK\x05\x06" + b"\xff" * 18 + b" inside it")
    z = parse_zip(path)
    listing = tz.ls(path)
    assert [m["name"].encode() for m in listing] == [e.name_bytes for e in z.entries]
    assert [m["offset"] for m in listing] == [e.data_offset for e in z.entries]
    for name, data in CONTENTS.items():
        assert tz.ok("cat", path, name) == data, name


def test_zipfile_archive_cat(tz, zf_archive):
    path, _ = zf_archive
    for name, data in CONTENTS.items():
        assert tz.ok("cat", path, name) == data, name


def test_zipfile_archive_extract(tz, zf_archive, tmp_path):
    path, _ = zf_archive
    dest = tmp_path / "out"
    tz.ok("extract", path, "-C", dest)
    snap = {k: v for k, v in dir_snapshot(dest).items() if v != "dir"}
    assert snap == CONTENTS


def test_zipfile_archive_is_not_taco(tz, zf_archive):
    """Readable, but validate says it is not a TACO archive (exit 1)."""
    path, _ = zf_archive
    r = tz("validate", path)
    assert r.returncode == 1
    r = tz("header", path)
    assert r.returncode == 1 and r.stderr and not r.stdout


def test_zip_utility_archive(tz, tools, tmp_path):
    """Info-ZIP zip -0 (its local headers carry extra fields the directory
    lacks or differ from it)."""
    import subprocess
    src = tmp_path / "src"
    for name, data in CONTENTS.items():
        write_file(src / name, data)
    out = tmp_path / "izip.zip"
    names = list(CONTENTS)
    r = subprocess.run([tools("zip"), "-0", "-q", str(out)] + names, cwd=src,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    check_listing(tz, out, names)
    for name, data in CONTENTS.items():
        assert tz.ok("cat", out, name) == data


@pytest.fixture
def peer_archive(peer, tmp_path):
    names = list(CONTENTS)
    srcs = [write_file(tmp_path / "src" / ("p%d" % i), CONTENTS[n]) for i, n in enumerate(names)]
    out = tmp_path / "peer.taco"
    peer.create(out, srcs, names, [(157, 10), (0, 0), (200, 30)])
    return out, names


def test_peer_archive_ls_and_prediction(tz, peer_archive):
    path, names = peer_archive
    listing = check_listing(tz, path, ["TACO_HEADER"] + names)
    # the peer's layout also follows the tacotoolbox prediction
    from tzutil import predict_offsets
    assert [m["offset"] for m in listing[1:]] == predict_offsets([(n, len(CONTENTS[n])) for n in names])


def test_peer_archive_cat(tz, peer_archive):
    path, names = peer_archive
    for n in names:
        assert tz.ok("cat", path, n) == CONTENTS[n], n


@pytest.mark.parametrize("level", ["quick", "normal", "deep"])
def test_peer_archive_validates(tz, peer_archive, level):
    path, _ = peer_archive
    out = tz.ok("validate", path, "--level", level)
    assert b"valid" in out


def test_peer_archive_header(tz, peer, peer_archive):
    """The peer stores count = number of non-(0,0) pairs (2 here) but all
    slots; we report what the bytes say, as the peer itself does."""
    path, _ = peer_archive
    ours = tz.header(path)
    assert [tuple(e) for e in ours["entries"]] == peer.read_header(path)
    assert read_range(path, 41, 1)[0] == ours["count"]


def test_peer_archive_extract(tz, peer_archive, tmp_path):
    path, names = peer_archive
    dest = tmp_path / "px"
    tz.ok("extract", path, "-C", dest, "--skip-header")
    snap = {k: v for k, v in dir_snapshot(dest).items() if v != "dir"}
    assert snap == CONTENTS
    dest2 = tmp_path / "px2"
    tz.ok("extract", path, "-C", dest2)
    assert (dest2 / "TACO_HEADER").read_bytes() == read_range(path, 41, 116)
