"""Archives we write, read by other tools: Python zipfile, Info-ZIP unzip,
7-Zip, libarchive (bsdtar) and the peer tacozip."""
import os
import subprocess
import zipfile

import pytest

from tzutil import dir_snapshot, rand_bytes, write_file

MEMBERS = [
    ("README.txt", 0),
    ("one", 1),
    ("metadata/level0.parquet", 4096),
    ("metadata/level1.parquet", 65537),
    ("data/ünïcødé/日本.tif", 1 << 20),
    ("data/sub/deeper/x.bin", 3),
    ("COLLECTION.json", 321),
]
ENTRIES = [(157, 4200), (5000, 65600), (0, 0)]


@pytest.fixture(scope="module")
def ours(tz, tmp_path_factory):
    d = tmp_path_factory.mktemp("interop_out")
    args = []
    data = {}
    for i, (name, size) in enumerate(MEMBERS):
        content = rand_bytes(size, seed=100 + i)
        data[name] = content
        args += [write_file(d / "src" / ("s%d" % i), content), "--as", name]
    for o, l in ENTRIES:
        args += ["-e", "%d:%d" % (o, l)]
    out = d / "ours.taco"
    tz.ok("create", out, *args, "--no-fsync")
    return out, data


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_python_zipfile_reads_everything(ours):
    out, data = ours
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["TACO_HEADER"] + [n for n, _ in MEMBERS]
        for name, _ in MEMBERS:
            assert zf.read(name) == data[name], name
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED
        assert len(zf.read("TACO_HEADER")) == 116
        assert zf.testzip() is None


def test_unzip_t(ours, tools):
    out, _ = ours
    r = run([tools("unzip"), "-t", out])
    assert r.returncode == 0, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert b"No errors detected" in r.stdout


def test_unzip_extracts(ours, tools, tmp_path):
    out, data = ours
    r = run([tools("unzip"), "-q", out, "-d", tmp_path / "x"])
    assert r.returncode == 0, r.stderr
    for name, _ in MEMBERS:
        assert (tmp_path / "x" / name).read_bytes() == data[name], name


def test_7z_t(ours, tools):
    out, _ = ours
    r = run([tools("7z"), "t", out])
    assert r.returncode == 0, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert b"Everything is Ok" in r.stdout


def test_bsdtar_lists(ours, tools):
    out, _ = ours
    r = run([tools("bsdtar"), "-tf", out])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["TACO_HEADER"] + [n for n, _ in MEMBERS]


def test_bsdtar_extracts(ours, tools, tmp_path):
    out, data = ours
    dest = tmp_path / "bx"
    dest.mkdir()
    r = run([tools("bsdtar"), "-xf", out, "-C", dest])
    assert r.returncode == 0, r.stderr
    snap = {k: v for k, v in dir_snapshot(dest).items() if v != "dir"}
    expect = dict(data)
    with zipfile.ZipFile(out) as zf:
        expect["TACO_HEADER"] = zf.read("TACO_HEADER")
    assert snap == expect


def test_peer_reads_our_header(ours, peer):
    out, _ = ours
    assert peer.read_header(out) == ENTRIES


def test_peer_reads_our_header_from_a_buffer(ours, peer):
    """tacoreader fetches the first 256 bytes remotely and parses them."""
    out, _ = ours
    code = ("import sys, json, tacozip; b = open(sys.argv[1], 'rb').read(256); "
            "print(json.dumps(tacozip.read_header(b)))")
    import json
    assert [tuple(e) for e in json.loads(peer.run(code, out))] == ENTRIES


def test_peer_reads_zero_pairs_we_wrote(tz, peer, tmp_path):
    """Count is stored as given, so the peer (which returns the first count
    slots) gets [(0,0),(5,6)] back from our archive."""
    src = write_file(tmp_path / "a", b"a")
    out = tmp_path / "z.taco"
    tz.ok("create", out, src, "-e", "0:0", "-e", "5:6", "--no-fsync")
    assert peer.read_header(out) == [(0, 0), (5, 6)]
    tz.ok("update", out)
    assert peer.read_header(out) == []


def test_zip_tool_can_add_to_our_archive(ours, tools, tmp_path):
    """Info-ZIP zip accepts our archive as input (zip -0 appends a member)."""
    out, data = ours
    copy = tmp_path / "copy.zip"
    copy.write_bytes(out.read_bytes())
    extra = write_file(tmp_path / "added.txt", b"added by zip\n")
    r = run([tools("zip"), "-0", "-j", "-q", copy, extra])
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(copy) as zf:
        assert zf.read("added.txt") == b"added by zip\n"
        assert zf.read("COLLECTION.json") == data["COLLECTION.json"]
