"""ZIP64: a member of 4 GiB + 100 bytes (ZIP64 local extra, offsets past
4 GiB) and an archive of 70,000 members (more than 65,535 entries).

These are slow (the big archive writes ~4 GiB and unzip/7z each read it
once); each archive is created once per module with --no-fsync and removed
afterwards.  Deselect with -m 'not slow'."""
import os
import shutil
import struct
import subprocess
import time
import zipfile

import pytest

from tzutil import ZIP64_LIMIT, parse_zip, predict_offsets, rand_bytes, read_range, write_file

pytestmark = pytest.mark.slow

BIG = (4 << 30) + 100
# (position in the big member, bytes): real data in an otherwise sparse file,
# at the start, across the 4 GiB boundary and at the very end.
BIG_PATCHES = [
    (0, rand_bytes(4096, 7)),
    ((4 << 30) - 30, rand_bytes(60, 8)),
    (2 << 30, rand_bytes(6, 9)),
    (BIG - 50, rand_bytes(50, 10)),
]


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


@pytest.fixture(scope="module")
def big_archive(tz, tmp_path_factory):
    d = tmp_path_factory.mktemp("zip64big")
    small1 = rand_bytes(1000, 1)
    small2 = rand_bytes(777, 2)
    s1 = write_file(d / "first.bin", small1)
    s2 = write_file(d / "last.txt", small2)
    big = d / "huge.raw"
    with open(big, "wb") as f:
        f.truncate(BIG)
        for pos, data in BIG_PATCHES:
            f.seek(pos)
            f.write(data)
    assert os.path.getsize(big) == BIG
    out = d / "big.taco"
    t0 = time.monotonic()
    tz.ok("create", out, s1, big, "--as", "data/huge.raw", s2, "--as", "after/last.txt", "-e", "157:1030",
          "--no-fsync", "--no-progress")
    elapsed = time.monotonic() - t0
    print("\n[zip64] created a %.2f GiB archive in %.1f s" % (os.path.getsize(out) / 2**30, elapsed))
    members = [("first.bin", 1000), ("data/huge.raw", BIG), ("after/last.txt", 777)]
    yield {"path": out, "members": members, "small": {"first.bin": small1, "after/last.txt": small2}}
    shutil.rmtree(d, ignore_errors=True)


def test_big_predicted_offsets(tz, big_archive):
    out, members = big_archive["path"], big_archive["members"]
    listing = tz.ls(out)
    assert [m["name"] for m in listing] == ["TACO_HEADER"] + [n for n, _ in members]
    assert [m["size"] for m in listing[1:]] == [s for _, s in members]
    predicted = predict_offsets(members)
    # the prediction includes the +20 of the big member's ZIP64 extra
    assert predicted[1] == 157 + 30 + 9 + 1000 + 30 + 13 + 20
    assert predicted[2] > 4 << 30
    assert [m["offset"] for m in listing[1:]] == predicted


def test_big_raw_structures(big_archive):
    out, members = big_archive["path"], big_archive["members"]
    z = parse_zip(out)
    assert z.zip64, "ZIP64 end record and locator expected (directory past 4 GiB)"
    assert z.cd_offset > 4 << 30
    names = [e.name for e in z.entries]
    assert names == ["TACO_HEADER"] + [n for n, _ in members]
    e_small, e_big, e_after = z.entries[1:]
    # small member: no extra at all
    assert e_small.local.extra == b"" and e_small.extra == b""
    # big member: the 20-byte ZIP64 local extra (id 1, 16 bytes: sizes)
    lx = e_big.local.extra
    assert len(lx) == 20
    assert struct.unpack("<HHQQ", lx) == (1, 16, BIG, BIG)
    assert e_big.local.csize32 == e_big.local.usize32 == 0xFFFFFFFF
    assert e_big.csize == e_big.usize == BIG
    assert not (e_big.local.flags & 8)
    # member after 4 GiB: offset only via the directory's ZIP64 extra
    assert e_after.header_offset > 4 << 30
    assert e_after.local.extra == b""
    raw_lho = struct.unpack_from("<I", read_range(out, e_after.record_offset + 42, 4))[0]
    assert raw_lho == 0xFFFFFFFF
    # data at the offsets
    for e in (e_small, e_after):
        assert read_range(out, e.data_offset, e.csize) == big_archive["small"][e.name]
    for pos, data in BIG_PATCHES:
        assert read_range(out, e_big.data_offset + pos, len(data)) == data
    assert read_range(out, e_big.data_offset + 8192, 64) == b"\0" * 64


def test_big_validate_normal(tz, big_archive):
    tz.ok("validate", big_archive["path"], "--level", "normal")
    tz.ok("validate", big_archive["path"], "--level", "quick")


def test_big_cat_ranges(tz, big_archive):
    out = big_archive["path"]
    for pos, data in BIG_PATCHES:
        got = tz.ok("cat", out, "data/huge.raw", "--range", "%d-%d" % (pos, pos + len(data) - 1))
        assert got == data
    assert tz.ok("cat", out, "data/huge.raw", "--range", "%d-" % (BIG - 50)) == BIG_PATCHES[-1][1]
    assert tz.ok("cat", out, "after/last.txt") == big_archive["small"]["after/last.txt"]


def test_big_zipfile(big_archive):
    out = big_archive["path"]
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["TACO_HEADER", "first.bin", "data/huge.raw", "after/last.txt"]
        info = zf.getinfo("data/huge.raw")
        assert info.file_size == info.compress_size == BIG
        for name, data in big_archive["small"].items():
            assert zf.read(name) == data
        with zf.open("data/huge.raw") as f:
            assert f.read(4096) == BIG_PATCHES[0][1]


def test_big_unzip_t(big_archive, tools):
    r = run([tools("unzip"), "-tq", big_archive["path"]], timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
    assert b"No errors detected" in r.stdout


def test_big_7z_t(big_archive, tools):
    r = run([tools("7z"), "t", big_archive["path"]], timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
    assert b"Everything is Ok" in r.stdout


# ---- 70,000 members -------------------------------------------------------

N_MANY = 70000
N_SOURCES = 1000


def many_content(k):
    return ("source %d\n" % k).encode() * (k % 7)


def many_name(i):
    return "tiles/%03d/t%05d.bin" % (i // 1000, i)


@pytest.fixture(scope="module")
def many_archive(tz, tmp_path_factory):
    d = tmp_path_factory.mktemp("zip64many")
    srcdir = d / "src"
    srcdir.mkdir()
    for k in range(N_SOURCES):
        (srcdir / ("s%d" % k)).write_bytes(many_content(k))
    lst = d / "list.txt"
    with open(lst, "w") as f:
        for i in range(N_MANY):
            f.write("%s\t%s\n" % (srcdir / ("s%d" % (i % N_SOURCES)), many_name(i)))
    out = d / "many.taco"
    t0 = time.monotonic()
    tz.ok("create", out, "-T", lst, "--no-fsync", "--no-progress")
    print("\n[zip64] created a %d-member archive in %.1f s" % (N_MANY, time.monotonic() - t0))
    yield out
    shutil.rmtree(d, ignore_errors=True)


def test_many_ls(tz, many_archive):
    listing = tz.ls(many_archive)
    assert len(listing) == N_MANY + 1
    members = [(many_name(i), len(many_content(i % N_SOURCES))) for i in range(N_MANY)]
    assert [m["name"] for m in listing[1:]] == [n for n, _ in members]
    assert [m["offset"] for m in listing[1:]] == predict_offsets(members)
    for i in list(range(0, N_MANY, 997)) + [N_MANY - 1]:
        m = listing[i + 1]
        assert read_range(many_archive, m["offset"], m["size"]) == many_content(i % N_SOURCES)


def test_many_structures(tz, many_archive):
    z = parse_zip(many_archive, read_locals=False)
    assert z.zip64 and z.count == N_MANY + 1 and len(z.entries) == N_MANY + 1
    # the 32-bit end record holds the 0xFFFF marker
    tail = read_range(many_archive, z.eocd_offset, 22)
    assert struct.unpack_from("<HH", tail, 8) == (0xFFFF, 0xFFFF)
    tz.ok("validate", many_archive, "--level", "normal")


def test_many_zipfile(many_archive):
    with zipfile.ZipFile(many_archive) as zf:
        infos = zf.infolist()
        assert len(infos) == N_MANY + 1
        assert infos[0].filename == "TACO_HEADER"
        for i in list(range(0, N_MANY, 4999)) + [N_MANY - 1]:
            assert zf.read(many_name(i)) == many_content(i % N_SOURCES)


def test_many_unzip_t(many_archive, tools):
    r = run([tools("unzip"), "-tq", many_archive], timeout=1800)
    assert r.returncode == 0, (r.stdout[-2000:] + r.stderr[-2000:]).decode(errors="replace")
    assert b"No errors detected" in r.stdout


def test_many_7z_t(many_archive, tools):
    r = run([tools("7z"), "t", many_archive], timeout=1800)
    assert r.returncode == 0, (r.stdout[-2000:] + r.stderr[-2000:]).decode(errors="replace")
    assert b"Everything is Ok" in r.stdout
    assert ("Files: %d" % (N_MANY + 1)).encode() in r.stdout
