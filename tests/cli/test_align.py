"""--align N: every member's data (not TACO_HEADER's) starts at a multiple
of N, and other tools still read the archive."""
import random
import struct
import subprocess
import zipfile

import pytest

from tzutil import parse_zip, rand_bytes, read_range, write_file


def make_members(seed, n=40):
    rnd = random.Random(seed)
    members = []
    for i in range(n):
        # name lengths and sizes chosen to hit every padding remainder
        name = "m%02d/" % i + "n" * rnd.randrange(0, 40) + ".bin"
        size = rnd.choice([0, 1, 2, 3, 4, 5, 6, 7, 4089, 4090, 4091, 4096, rnd.randrange(0, 20000)])
        members.append((name, rand_bytes(size, 1000 + i)))
    members.append(("ünï/日本.bin", rand_bytes(777, 9)))
    return members


@pytest.mark.parametrize("align", [4096, 64, 2])
def test_align(tz, tools, tmp_path, align):
    members = make_members(align)
    args = []
    for i, (n, c) in enumerate(members):
        args += [write_file(tmp_path / "s" / str(i), c), "--as", n]
    out = tmp_path / "a.taco"
    tz.ok("create", out, *args, "--align", align, "-e", "1:2", "--no-fsync")
    listing = tz.ls(out)
    z = parse_zip(out)
    assert [m["name"] for m in listing] == ["TACO_HEADER"] + [n for n, _ in members]
    assert listing[0]["offset"] == 41
    for m, e, (name, content) in zip(listing[1:], z.entries[1:], members):
        assert m["offset"] % align == 0, (name, m["offset"])
        assert m["offset"] == e.data_offset  # agrees with the raw local header
        assert read_range(out, m["offset"], len(content)) == content
        # padding lives in one extra field of the local header, none in the directory
        assert e.extra == b""
        if e.local.extra:
            hid, sz = struct.unpack_from("<HH", e.local.extra)
            assert sz + 4 == len(e.local.extra)
            assert hid == 0xD935
    # nothing but the TACO header precedes the first member; members are ordered
    assert z.entries[1].header_offset == 157
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        for name, content in members:
            assert zf.read(name) == content
    r = subprocess.run([tools("unzip"), "-t", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([tools("7z"), "t", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stdout + r.stderr
    tz.ok("validate", out, "--level", "deep")
    for name, content in members[:5]:
        assert tz.ok("cat", out, name) == content


def test_align_append(tz, tools, tmp_path):
    a = write_file(tmp_path / "a", rand_bytes(1234, 1))
    b = write_file(tmp_path / "b", rand_bytes(999, 2))
    out = tmp_path / "a.taco"
    tz.ok("create", out, a, "--align", "4096", "--no-fsync")
    tz.ok("append", out, b, "--align", "4096", "--no-fsync")
    listing = tz.ls(out)
    assert [m["offset"] % 4096 for m in listing[1:]] == [0, 0]
    with zipfile.ZipFile(out) as zf:
        assert zf.read("a") == a.read_bytes() and zf.read("b") == b.read_bytes()
    r = subprocess.run([tools("unzip"), "-t", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("bad", ["3", "0x10", "65536", "-4096", "abc", "100"])
def test_align_bad_values(tz, tmp_path, bad):
    a = write_file(tmp_path / "a", b"a")
    out = tmp_path / "x.taco"
    r = tz("create", out, a, "--align", bad)
    assert r.returncode == 2 and r.stderr.strip()  # a usage error
    assert not out.exists()


# Member lists (seed, alignment) for which the index's size and the members'
# padding never settled by iteration alone: create --index --align failed
# with "index layout does not settle" before the index's own local header
# could be padded.
@pytest.mark.parametrize("seed,align", [(0, 4096), (45, 512), (57, 512)])
def test_index_with_alignment_always_settles(tz, tools, tmp_path, seed, align):
    rng, data = random.Random(seed), random.Random(seed + 1000)
    lines = []
    for i in range(101):
        p = tmp_path / ("f%d" % i)
        size = rng.randrange(0, 3000)
        name = "c/%d/%d" % (rng.randrange(9), i)
        p.write_bytes(data.randbytes(size))
        lines.append("%s\t%s" % (p, name))
    lst = tmp_path / "files.list"
    lst.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ix.taco"
    tz.ok("create", out, "--index", "--align", align, "-T", lst, "--no-fsync")
    tz.ok("validate", "--level", "deep", out)
    listed = tz.ls(out)
    assert json_of(tz.ok("ls", "--index-first", "--json", out)) == listed  # the index agrees with the directory
    for m in listed[2:]:
        assert m["offset"] % align == 0, m
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
        assert len(z.namelist()) == 103
    unzip = tools("unzip")
    assert subprocess.run([unzip, "-tq", str(out)], stdout=subprocess.DEVNULL).returncode == 0


def json_of(raw):
    import json

    return json.loads(raw)
