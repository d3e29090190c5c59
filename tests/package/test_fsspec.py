"""taco:// (tacozip.fsspec.TacoFileSystem) with the real data stack: fsspec,
pandas, pyarrow; over nginx (requests counted from its access log), moto S3,
fsspec's memory filesystem, a local path and a file object; compared with
fsspec's own zip:// on the same archives (a TACO archive is a valid ZIP).
"""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import pytest

import tacozip
from conftest_servers import make_archive as servers_make_archive, require

fsspec = require("fsspec")
from tacozip.fsspec import REMOTE_BLOCK_SIZE, TacoFileSystem, TacoMemberFile  # noqa: E402

NESTED = {
    "top.txt": b"top level\n",
    "empty.txt": b"",
    "d1/a.txt": b"a" * 100,
    "d1/b.csv": b"x,y\n1,2\n3,4\n",
    "d1/sub/c.txt": b"c" * 7,
    "d1/sub/deeper/d.bin": bytes(range(256)) * 4,
    "d2/e.txt": b"eee",
    "d2/f.json": json.dumps({"f": 1}).encode(),
}


def make_archive(path, files, tmp, index=False, entries=None):
    return servers_make_archive(path, files, entries=entries or [(0, 0)], index=index)


@pytest.fixture
def nested(tmp_path):
    return make_archive(tmp_path / "nested.taco", NESTED, tmp_path)


# --------------------------------------------------------------------------- registration

def test_entry_point_registers_taco_without_importing_tacozip(nested):
    code = ("import sys, fsspec\n"
            "cls = fsspec.get_filesystem_class('taco')\n"
            "print(cls.__module__, cls.__name__)\n"
            "with fsspec.open('taco://d1/sub/c.txt::' + sys.argv[1]) as f: print(f.read().decode())\n")
    out = subprocess.run([sys.executable, "-c", code, str(nested)], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tacozip.fsspec", "TacoFileSystem", "ccccccc"]


# --------------------------------------------------------------------------- same as zip://

def _names(entries):
    return [(e["name"], e["type"], e["size"]) for e in entries]


PATHS = ["", "/", "d1", "d1/", "d1/sub", "d1/sub/", "d1/sub/deeper", "d2", "top.txt", "d1/a.txt",
         "d1/sub/deeper/d.bin", "empty.txt"]
MISSING = ["nope", "d1/nope", "d1/sub/deeper/nope.bin", "d3/"]
GLOBS = ["*", "**", "*.txt", "d1/*", "d1/**", "d1/**/*.txt", "**/*.txt", "*/sub/*", "d?/*.t*", "d1/sub/**",
         "nothing*"]


def test_same_as_zipfilesystem(nested):
    z = fsspec.filesystem("zip", fo=str(nested))
    t = fsspec.filesystem("taco", fo=str(nested), show_internal=True)  # zip:// shows TACO_HEADER too
    assert isinstance(t, TacoFileSystem)
    for p in PATHS:
        assert t.ls(p, detail=False) == z.ls(p, detail=False), p
        assert _names(t.ls(p, detail=True)) == _names(z.ls(p, detail=True)), p
        assert t.isdir(p) == z.isdir(p), p
        assert t.isfile(p) == z.isfile(p), p
        assert t.exists(p) == z.exists(p), p
        assert (t.info(p)["size"], t.info(p)["type"]) == (z.info(p)["size"], z.info(p)["type"]), p
        for kw in ({}, {"withdirs": True}, {"maxdepth": 1}, {"maxdepth": 2, "withdirs": True}):
            assert t.find(p, **kw) == z.find(p, **kw), (p, kw)
            # (zip:// gives that dict in its directory's order, we sort it)
            assert sorted(_names(t.find(p, detail=True, **kw).values())) == sorted(
                _names(z.find(p, detail=True, **kw).values())), (p, kw)
    # zip:// lists "/d1" as ["d1"] (its ls does not strip the leading "/"); taco:// strips it
    assert z.ls("/d1", detail=False) == ["d1"]
    assert t.ls("/d1", detail=False) == t.ls("d1", detail=False) == ["d1/a.txt", "d1/b.csv", "d1/sub"]
    assert t.ls("taco://d1/sub", detail=False) == ["d1/sub/c.txt", "d1/sub/deeper"]
    for p in MISSING:
        assert not t.exists(p) and not z.exists(p)
        assert t.isdir(p) == z.isdir(p) is False
        with pytest.raises(FileNotFoundError):
            t.info(p)
        with pytest.raises(FileNotFoundError):
            z.info(p)
        assert t.find(p) == z.find(p)
    for g in GLOBS:
        assert t.glob(g) == z.glob(g), g
        assert sorted(t.glob(g, detail=True)) == sorted(z.glob(g, detail=True)), g
    files = [p for p in z.find("") if z.isfile(p)]
    for p in files:
        assert t.cat(p) == z.cat(p) == t.cat_file(p), p
        assert t.size(p) == z.size(p)
        assert t.cat_file(p, 3, 20) == z.cat_file(p, 3, 20), p
        assert t.cat_file(p, -5) == z.cat_file(p, -5), p
    assert t.cat(files) == z.cat(files)
    # a pattern or recursive cat also matches directories: zip:// fails on them
    # unless on_error="omit"; taco:// leaves them out
    assert t.cat("d1/**") == z.cat("d1/**", on_error="omit")
    with pytest.raises(FileNotFoundError):
        z.cat("d1/**")
    assert t.cat("d1", recursive=True) == {k: v for k, v in z.cat("d1", recursive=True, on_error="omit").items()}
    assert t.cat_ranges(files, 1, 9) == z.cat_ranges(files, 1, 9)
    assert t.du("", total=False) == z.du("", total=False)
    assert [x[0] for x in t.walk("")] == [x[0] for x in z.walk("")]


def test_any_stored_zip_with_directory_entries(tmp_path):
    """A ZIP written by Python's zipfile (STORED, explicit directory entries,
    an empty directory, no TACO_HEADER) lists as with zip://."""
    arc = tmp_path / "dirs.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("top.txt", b"x")
        z.writestr(zipfile.ZipInfo("emptydir/"), b"")
        z.writestr(zipfile.ZipInfo("d1/"), b"")
        z.writestr("d1/a.txt", b"aa")
        z.writestr("d1/sub/deep/b.txt", b"bbb")
    t = fsspec.filesystem("taco", fo=str(arc))
    zf = fsspec.filesystem("zip", fo=str(arc))
    for p in ["", "d1", "d1/", "emptydir", "emptydir/", "d1/sub", "d1/sub/deep", "top.txt"]:
        assert t.ls(p, detail=False) == zf.ls(p, detail=False), p
        assert _names(t.ls(p, detail=True)) == _names(zf.ls(p, detail=True)), p
        assert (t.info(p)["type"], t.info(p)["size"]) == (zf.info(p)["type"], zf.info(p)["size"]), p
    for kw in ({}, {"withdirs": True}, {"maxdepth": 1, "withdirs": True}):
        assert t.find("", **kw) == zf.find("", **kw), kw
    assert t.glob("**") == zf.glob("**")
    assert t.isdir("emptydir") and t.cat("d1/sub/deep/b.txt") == b"bbb"


def test_listing_matches_zipfilesystem_on_random_trees(tmp_path):
    """ls/find/info/glob/walk of every path agree with zip:// on archives of
    random names in random order (explicit directory entries, empty
    directories, deep and non-ASCII names); the listing is built from the
    names alone, so this checks its directory logic against fsspec's."""
    import random

    for seed in range(3):
        rng = random.Random(seed)
        names = set()
        while len(names) < 150:
            depth = rng.randrange(0, 5)
            parts = [rng.choice(["a", "b", "c", "dé", "x y", "z9"]) + str(rng.randrange(3)) for _ in range(depth)]
            names.add("/".join(parts + [f"f{rng.randrange(1000)}.bin"]))
        names = sorted(names)
        rng.shuffle(names)
        arc = tmp_path / f"r{seed}.zip"
        with zipfile.ZipFile(arc, "w") as z:
            for i, n in enumerate(names):
                if i % 20 == 0:  # an explicit entry for the member's directory, or an empty one
                    d = n.rpartition("/")[0]
                    z.writestr(zipfile.ZipInfo((d or f"empty{i}") + "/"), b"")
                z.writestr(n, n.encode() * (i % 3))
        t = fsspec.filesystem("taco", fo=str(arc))
        zf = fsspec.filesystem("zip", fo=str(arc))
        everything = zf.find("", withdirs=True)
        assert t.find("", withdirs=True) == everything
        for p in [""] + everything:
            it, iz = t.info(p), zf.info(p)
            assert (it["name"], it["type"], it["size"]) == (iz["name"], iz["type"], iz["size"]), p
            assert t.ls(p, detail=False) == zf.ls(p, detail=False), p
            assert _names(t.ls(p, detail=True)) == _names(zf.ls(p, detail=True)), p
            if iz["type"] == "directory":
                for kw in ({}, {"withdirs": True}, {"maxdepth": 1}, {"maxdepth": 2, "withdirs": True}):
                    assert t.find(p, **kw) == zf.find(p, **kw), (p, kw)
                assert t.find(p, detail=True) == {k: t.info(k) for k in t.find(p)}
            else:
                assert t.cat(p) == zf.cat(p), p
        assert t.glob("**/*.bin") == zf.glob("**/*.bin")
        assert t.glob("a*/*") == zf.glob("a*/*")
        assert [(d, sorted(ds), sorted(fs)) for d, ds, fs in t.walk("")] == \
            [(d, sorted(ds), sorted(fs)) for d, ds, fs in zf.walk("")]


def test_a_name_that_is_a_file_and_a_directory_stays_a_file(tmp_path):
    arc = tmp_path / "clash.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("a", b"file a")
        z.writestr("a/b.txt", b"under a")
        z.writestr("c/", b"")
        z.writestr("c", b"file c")
    t = fsspec.filesystem("taco", fo=str(arc))
    assert t.info("a")["type"] == "file" and t.cat("a") == b"file a"
    assert t.info("c")["type"] == "file" and t.cat("c") == b"file c"
    assert t.cat("a/b.txt") == b"under a"
    assert t.find("") == ["a", "a/b.txt", "c"]


def test_names_with_leading_slashes_are_listed_as_paths_are_looked_up(tmp_path):
    """Members named with leading '/' (absolute paths from another tool):
    listed without them, as every path given to taco:// is looked up, so
    find/info/cat/open agree; such a name whose plain form also exists is
    left out (the plain one is what the path means).  Found by
    fuzz/fuzz_python.py."""
    arc = tmp_path / "abs.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("/abs/x.txt", b"abs")
        z.writestr("//y/a.txt", b"yy")
        z.writestr("/dup", b"slashed")
        z.writestr("dup", b"plain")
    t = fsspec.filesystem("taco", fo=str(arc))
    assert t.find("", withdirs=True) == ["abs", "abs/x.txt", "dup", "y", "y/a.txt"]
    for p in t.find("", withdirs=True):
        assert t.info(p)["name"] == p
    assert t.cat("abs/x.txt") == b"abs" and t.cat("/abs/x.txt") == b"abs" and t.open("y/a.txt").read() == b"yy"
    assert t.cat("dup") == b"plain"
    assert t.cat(["abs/x.txt", "y/a.txt"]) == {"abs/x.txt": b"abs", "y/a.txt": b"yy"}
    assert t.ls("", detail=False) == ["abs", "dup", "y"]


def test_implied_dirs_in_c():
    from tacozip import _tacozip

    dirs, explicit = _tacozip.implied_dirs(["x", "a/b/c", "a/b/d", "a/e/f/", "/lead", "g//h", "a/b/c2", "q/"])
    assert dirs == {"a", "a/b", "a/e", "g", "g/"}
    assert explicit == ["a/e/f/", "q/"]
    assert _tacozip.implied_dirs([]) == (set(), [])
    with pytest.raises(TypeError):
        _tacozip.implied_dirs(["a", b"b/c"])
    with pytest.raises(TypeError):
        _tacozip.implied_dirs(("a/b",))


def test_internal_members_hidden_unless_asked(tmp_path):
    arc = make_archive(tmp_path / "ix.taco", NESTED, tmp_path, index=True)
    with tacozip.open(arc) as ar:
        assert {"TACO_HEADER", "TACO_INDEX"} <= set(ar.names())
    t = fsspec.filesystem("taco", fo=str(arc))
    z = fsspec.filesystem("zip", fo=str(arc))
    hidden = {"TACO_HEADER", "TACO_INDEX"}
    assert t.ls("", detail=False) == [p for p in z.ls("", detail=False) if p not in hidden]
    assert t.find("") == [p for p in z.find("") if p not in hidden]
    assert not t.exists("TACO_HEADER") and not t.exists("TACO_INDEX")
    with pytest.raises(FileNotFoundError):
        t.open("TACO_HEADER")
    shown = fsspec.filesystem("taco", fo=str(arc), show_internal=True)
    assert shown.find("") == z.find("")
    assert shown.cat("TACO_HEADER") == z.cat("TACO_HEADER")
    assert len(shown.cat("TACO_HEADER")) == tacozip.TACO_HEADER_SIZE - 30 - len("TACO_HEADER")


def test_info_has_archive_coordinates(nested):
    t = fsspec.filesystem("taco", fo=str(nested))
    with tacozip.open(nested) as ar:
        for name in NESTED:
            m = ar[name]
            i = t.info(name)
            assert i == {"name": name, "size": len(NESTED[name]), "type": "file", "offset": m.offset,
                         "header_offset": m.header_offset, "crc": m.crc}
            raw = nested.read_bytes()
            assert raw[i["offset"]:i["offset"] + i["size"]] == NESTED[name]
            assert i["crc"] == zipfile.ZipFile(nested).getinfo(name).CRC
    assert t.info("d1/sub") == {"name": "d1/sub", "size": 0, "type": "directory"}
    assert t.info("") == {"name": "", "size": 0, "type": "directory"}


# --------------------------------------------------------------------------- files and caches

@pytest.mark.parametrize("cache_type", ["adaptive", "none", "readahead", "blockcache", "bytes", "first", "all",
                                        "mmap", "background"])
def test_member_file_caches(nested, cache_type):
    t = fsspec.filesystem("taco", fo=str(nested))
    want = NESTED["d1/sub/deeper/d.bin"]
    with t.open("d1/sub/deeper/d.bin", "rb", cache_type=cache_type, block_size=100) as f:
        assert isinstance(f, TacoMemberFile)
        assert f.cache.name == cache_type
        assert f.size == len(want)
        assert f.read(10) == want[:10]
        f.seek(500)
        assert f.read(300) == want[500:800]
        f.seek(-24, 2)
        assert f.read() == want[-24:]
        assert f.read() == b""
        f.seek(0)
        assert f.read() == want


def test_default_cache_local_none_and_remote_adaptive(nested, nginx_server):
    t = fsspec.filesystem("taco", fo=str(nested))
    with t.open("d1/a.txt") as f:
        assert f.cache.name == "none"
    with fsspec.open("taco://d1/a.txt::" + str(nested)) as f:
        assert f.read() == NESTED["d1/a.txt"]
    url = publish_http(nginx_server, nested, "defaults/nested.taco")
    r = fsspec.filesystem("taco", fo=url)
    with r.open("d1/a.txt") as f:
        assert f.cache.name == "adaptive" and f.blocksize == REMOTE_BLOCK_SIZE
        assert f.read() == NESTED["d1/a.txt"]


class _Recorder:
    """A fetcher over bytes that records every (start, end) asked for."""

    def __init__(self, data):
        self.data, self.calls = data, []

    def __call__(self, start, end):
        self.calls.append((start, end))
        return self.data[start:end]


def test_adaptive_cache_serves_exact_bytes_and_fetches_each_byte_once():
    """AdaptiveCache against random reads of a buffer: every read returns
    the right bytes; until something is evicted no byte is fetched twice;
    a sequential reader gets read-ahead that doubles up to the block size;
    scattered small reads fetch min_fetch each; what is held stays under
    max_bytes."""
    import random

    from tacozip.fsspec import AdaptiveCache

    data = os.urandom(3_000_000)
    rng = random.Random(7)
    rec = _Recorder(data)
    c = AdaptiveCache(1 << 20, rec, len(data), min_fetch=4096, max_bytes=1 << 30)
    for _ in range(3000):
        a = rng.randrange(len(data) + 10)
        b = a + rng.choice([0, 1, 7, 100, 5000, 70_000])
        assert c._fetch(a, b) == data[a:b]
    assert c._fetch(None, None) == data
    seen = bytearray(len(data))
    for a, b in rec.calls:
        assert 0 <= a < b <= len(data)
        assert not any(seen[a:b]), (a, b)  # never fetched twice (nothing was evicted)
        seen[a:b] = b"\1" * (b - a)

    # sequential small reads: fetches of 4 KiB, 8, 16, ... up to the block size
    rec = _Recorder(data)
    c = AdaptiveCache(256 * 1024, rec, len(data), min_fetch=4096)
    pos = 0
    while pos < 2_000_000:
        assert c._fetch(pos, pos + 1000) == data[pos:pos + 1000]
        pos += 1000
    sizes = [b - a for a, b in rec.calls]
    assert sizes[:7] == [4096, 8192, 16384, 32768, 65536, 131072, 262144] and set(sizes[7:-1]) == {262144}
    # scattered small reads: min_fetch each, not a block
    rec = _Recorder(data)
    c = AdaptiveCache(4 << 20, rec, len(data), min_fetch=65536)
    for k in range(10):
        off = 100_000 + k * 250_000
        assert c._fetch(off, off + 300) == data[off:off + 300]
    assert [b - a for a, b in rec.calls] == [65536] * 10
    # eviction keeps what is held under max_bytes
    rec = _Recorder(data)
    c = AdaptiveCache(1 << 20, rec, len(data), min_fetch=65536, max_bytes=200_000)
    for k in range(20):
        off = k * 140_000
        assert c._fetch(off, off + 10) == data[off:off + 10]
        assert c.store.held <= 200_000 or len(c.store._spans) == 1
    assert c._fetch(0, 10) == data[:10] and rec.calls[-1] == (0, 65536)  # evicted, fetched again


def test_adaptive_spans_are_shared_by_the_member_files_of_a_filesystem(nginx_server, tmp_path):
    """A member opened again costs no request for what an earlier file of
    the same filesystem fetched: the adaptive caches of one filesystem keep
    their spans in one store (archive offsets; a fetch never passes the
    member's end); another filesystem has its own."""
    files = {"a.bin": os.urandom(100_000), "b.bin": os.urandom(50_000), "pad.bin": os.urandom(300_000)}
    arc = make_archive(tmp_path / "shared.taco", files, tmp_path)
    url = publish_http(nginx_server, arc, "shared/x.taco")
    fs = fsspec.filesystem("taco", fo=url)
    nginx_server.settled_log()
    nginx_server.reset_log()
    with fs.open("a.bin") as f:  # min_fetch (256 KiB) from its start: all of a.bin
        assert f.cache.name == "adaptive" and f.cache.store is fs.spans
        assert f.read(10) == files["a.bin"][:10]
    a = fs.info("a.bin")["offset"]
    assert [r["range"] for r in nginx_server.read_log(expect=1)] == [f"bytes={a}-{a + 100_000 - 1}"]
    nginx_server.reset_log()
    with fs.open("a.bin") as f:
        f.seek(50_000)
        assert f.read() == files["a.bin"][50_000:]
    assert nginx_server.settled_log() == []
    assert fs.open("b.bin").read() == files["b.bin"]  # not fetched yet: one request
    assert len(nginx_server.read_log(expect=1)) == 1
    nginx_server.reset_log()
    assert fs.open("b.bin").read(5) == files["b.bin"][:5] and fs.open("a.bin").read() == files["a.bin"]
    assert nginx_server.settled_log() == []
    nginx_server.reset_log()
    other = fsspec.filesystem("taco", fo=url)
    assert other.open("a.bin").read() == files["a.bin"]
    assert len(nginx_server.read_log(expect=2)) == 2  # its open, and a.bin


def test_file_object_and_text_mode(nested):
    with open(nested, "rb") as fo:
        t = fsspec.filesystem("taco", fo=fo)
        assert t.cat("d2/e.txt") == b"eee"
        with t.open("d1/b.csv", "r") as f:  # text mode over the binary member file
            assert f.read() == NESTED["d1/b.csv"].decode()
        t.close()
        assert not fo.closed  # the caller's file stays the caller's
    t2 = fsspec.filesystem("taco", fo=io.BytesIO(nested.read_bytes()))
    assert t2.cat("top.txt") == NESTED["top.txt"]
    t3 = pickle.loads(pickle.dumps(t2))  # a BytesIO pickles with it
    assert t3.cat("d2/e.txt") == b"eee"


def test_explicit_target_protocol(nested):
    t = fsspec.filesystem("taco", fo=str(nested), target_protocol="file")
    assert t.cat("top.txt") == NESTED["top.txt"]
    with pytest.raises(ValueError, match="target_protocol"):
        fsspec.filesystem("taco", fo="memory://x.taco", target_protocol="s3")


# --------------------------------------------------------------------------- memory://

def test_memory_target(nested):
    mem = fsspec.filesystem("memory")
    mem.pipe("/fsspec-test/nested.taco", nested.read_bytes())
    try:
        with fsspec.open("taco://d1/sub/c.txt::memory://fsspec-test/nested.taco") as f:
            assert f.read() == NESTED["d1/sub/c.txt"]
        t = fsspec.filesystem("taco", fo="memory://fsspec-test/nested.taco")
        assert t.find("d2") == ["d2/e.txt", "d2/f.json"]
        assert t.cat_ranges(["d1/a.txt", "d2/e.txt"], [0, 1], [5, None]) == [b"aaaaa", b"ee"]
        t2 = fsspec.filesystem("taco", fo="fsspec-test/nested.taco", target_protocol="memory")
        assert t2.cat("top.txt") == NESTED["top.txt"]
        t3 = pickle.loads(pickle.dumps(t))  # same process: the memory filesystem is there
        assert t3.cat("d2/e.txt") == b"eee"
        t.close()
    finally:
        mem.rm("/fsspec-test", recursive=True)


# --------------------------------------------------------------------------- read-only, bad input

def test_writes_are_refused(nested):
    before = nested.read_bytes()
    t = fsspec.filesystem("taco", fo=str(nested))
    attempts = [
        lambda: t.open("new.txt", "wb"),
        lambda: t.open("top.txt", "wb"),
        lambda: t.open("top.txt", "ab"),
        lambda: t.open("top.txt", "w"),
        lambda: t.pipe("new.txt", b"x"),
        lambda: t.pipe_file("new.txt", b"x"),
        lambda: t.rm("top.txt"),
        lambda: t.rm_file("top.txt"),
        lambda: t.rm("d1", recursive=True),
        lambda: t.rmdir("d1"),
        lambda: t.mkdir("d9"),
        lambda: t.makedirs("d9/x"),
        lambda: t.touch("new.txt"),
        lambda: t.put(str(nested), "copy.taco"),
        lambda: t.put_file(str(nested), "copy.taco"),
        lambda: t.cp_file("top.txt", "top2.txt"),
        lambda: t.copy("top.txt", "top2.txt"),
        lambda: t.mv("top.txt", "top2.txt"),
        lambda: t.write_bytes("new.txt", b"x"),
        lambda: t.write_text("new.txt", "x"),
    ]
    for i, attempt in enumerate(attempts):
        with pytest.raises(PermissionError, match="read-only filesystem") as e:
            attempt()
        assert e.value.errno == 30, i  # EROFS
    with pytest.raises(PermissionError, match="read-only"):
        fsspec.open("taco://x.txt::" + str(nested), "wb").open()
    assert nested.read_bytes() == before
    assert t.find("") == sorted(NESTED)


def test_missing_member_names_member_and_archive(nested, nginx_server):
    t = fsspec.filesystem("taco", fo=str(nested))
    for call in (lambda: t.open("d1/nope.txt"), lambda: t.cat_file("d1/nope.txt"), lambda: t.info("d1/nope.txt"),
                 lambda: t.cat(["d1/a.txt", "d1/nope.txt"])):
        with pytest.raises(FileNotFoundError) as e:
            call()
        assert "d1/nope.txt" in str(e.value) and str(nested) in str(e.value), str(e.value)
    assert isinstance(t.cat_ranges(["d1/nope.txt"], 0, 1)[0], FileNotFoundError)
    assert t.cat(["d1/a.txt", "d1/nope.txt"], on_error="omit") == {"d1/a.txt": NESTED["d1/a.txt"]}
    with pytest.raises(IsADirectoryError):
        t.open("d1")
    # a URL: its display name, without the query string (signatures) or credentials
    url = publish_http(nginx_server, nested, "missing/nested.taco") + "?X-Amz-Signature=s3cr3tsig"
    r = fsspec.filesystem("taco", fo=url)
    with pytest.raises(FileNotFoundError) as e:
        with fsspec.open("taco://nope.bin::" + url) as f:
            f.read()
    msg = str(e.value)
    assert "nope.bin" in msg and url.split("?")[0] in msg and "s3cr3tsig" not in msg, msg
    with pytest.raises(FileNotFoundError) as e:
        r.open("d1/nope.txt")
    assert "s3cr3tsig" not in str(e.value)


def _encrypt_flag(data: bytes, name: bytes) -> bytes:
    """Set the 'encrypted' bit of member ``name`` in its local header and its
    directory entry (what an encrypting tool writes; the bytes stay as they are)."""
    b = bytearray(data)
    for sig, flag_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        i = b.find(sig)
        while i >= 0:
            n = int.from_bytes(b[i + name_len_at:i + name_len_at + 2], "little")
            if bytes(b[i + name_at:i + name_at + n]) == name:
                b[i + flag_at] |= 1
            i = b.find(sig, i + 4)
    return bytes(b)


def test_compressed_or_encrypted_member_is_a_clear_error(tmp_path):
    """Archives from other tools: a DEFLATE member and an encrypted one are
    listed, but every way of reading them raises TacozipError
    (TACOZ_ERR_UNSUPPORTED) naming the member; never raw compressed bytes."""
    arc = tmp_path / "other.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("plain.txt", b"plain " * 100)
        z.writestr("packed.csv", b"a,b\n" + b"1,2\n" * 5000, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("secret.bin", b"s" * 300)
    arc.write_bytes(_encrypt_flag(arc.read_bytes(), b"secret.bin"))
    t = fsspec.filesystem("taco", fo=str(arc))
    assert t.find("") == ["packed.csv", "plain.txt", "secret.bin"]
    assert t.info("packed.csv")["type"] == "file"
    assert t.cat("plain.txt") == b"plain " * 100
    for name, what in (("packed.csv", "compressed"), ("secret.bin", "encrypted")):
        calls = [lambda: t.cat(name), lambda: t.cat_file(name, start=2, end=10),
                 lambda: t.open(name).read(5), lambda: t.cat_ranges([name], [0], [4], on_error="raise"),
                 lambda: t.cat([name, "plain.txt"])]
        for call in calls:
            with pytest.raises(tacozip.TacozipError) as e:
                call()
            assert e.value.code == tacozip.TACOZ_ERR_UNSUPPORTED
            detail = e.value.detail  # shown as a note in tracebacks; str() keeps the original wording
            assert name in detail and what in detail and detail.startswith(str(arc)), detail
        # cat_ranges' default on_error="return" hands the exception back in place
        got = t.cat_ranges([name, "plain.txt"], [0, 0], [4, 5])
        assert isinstance(got[0], tacozip.TacozipError) and got[1] == b"plain"


def test_target_that_is_not_a_zip(tmp_path, nginx_server):
    bad = tmp_path / "bad.taco"
    bad.write_bytes(b"this is not a zip archive at all\n" * 100)
    with pytest.raises(tacozip.TacozipError) as e:
        fsspec.filesystem("taco", fo=str(bad))
    assert e.value.code == tacozip.TACOZ_INVALID_NO_EOCD, e.value
    url = publish_http(nginx_server, bad, "bad/bad.taco")
    with pytest.raises(tacozip.TacozipError) as e:
        fsspec.open("taco://x::" + url).open()
    assert e.value.code == tacozip.TACOZ_INVALID_NO_EOCD, e.value
    with pytest.raises(FileNotFoundError, match="absent.taco"):
        fsspec.filesystem("taco", fo=str(tmp_path / "absent.taco"))
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        fsspec.filesystem("taco", fo=url.replace("bad.taco", "absent.taco"))


# --------------------------------------------------------------------------- pickling

def _run(code, env=None, *args):
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_pickle_filesystem_and_open_file(nested, tmp_path):
    t = fsspec.filesystem("taco", fo=str(nested))
    t2 = pickle.loads(pickle.dumps(t))
    assert t2 is not t and t2.find("") == t.find("")
    f = t.open("d1/sub/deeper/d.bin", cache_type="blockcache", block_size=64)
    f.seek(300)
    assert f.read(10) == NESTED["d1/sub/deeper/d.bin"][300:310]
    blob = pickle.dumps(f)
    g = pickle.loads(blob)
    assert g.tell() == 310 and g.read(20) == NESTED["d1/sub/deeper/d.bin"][310:330]
    assert g.cache.name == "blockcache" and g.blocksize == 64
    # in another process
    (tmp_path / "f.pkl").write_bytes(blob)
    code = ("import pickle, sys\n"
            "f = pickle.loads(open(sys.argv[1], 'rb').read())\n"
            "print(type(f).__name__, f.tell(), f.read(5).hex())\n")
    assert _run(code, None, str(tmp_path / "f.pkl")).split() == [
        "TacoMemberFile", "310", NESTED["d1/sub/deeper/d.bin"][310:315].hex()]
    # a relative path: reopened from another working directory
    cwd = os.getcwd()
    os.chdir(nested.parent)
    try:
        rel = fsspec.filesystem("taco", fo=nested.name)
        rel_pos = TacoFileSystem(nested.name)  # fo given positionally
    finally:
        os.chdir(cwd)
    code = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()).cat('d2/e.txt').decode())"
    for fs in (rel, rel_pos):
        out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(fs), capture_output=True, cwd="/")
        assert out.returncode == 0 and out.stdout.strip() == b"eee", out.stderr
    with open(nested, "rb") as fo:  # a file object target pickles only if the file object does
        with pytest.raises(TypeError):
            pickle.dumps(fsspec.filesystem("taco", fo=fo))


# --------------------------------------------------------------------------- nginx

def publish_http(server, path, key):
    dest = server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(path.read_bytes())
    return f"{server.base}/{key}"


def log_since_reset(server, expect=None):
    return server.read_log(expect=expect)


def parquet_table(groups=5, rows=20000):
    pa = require("pyarrow")
    np = require("numpy")
    rng = np.random.default_rng(7)
    n = groups * rows
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "value": pa.array(rng.normal(size=n)),
        "label": pa.array([f"class_{i % 11}" for i in range(n)]),
        "flag": pa.array(rng.random(n) > 0.5),
    })


@pytest.fixture(scope="module")
def parquet_archives(tmp_path_factory):
    """Two archives holding the same Parquet file: one where it is the last
    member (its footer lies in the archive's tail, read at open), one where a
    2 MiB member follows it."""
    pq = require("pyarrow.parquet", "pyarrow")
    tmp = tmp_path_factory.mktemp("pq")
    table = parquet_table()
    pq.write_table(table, tmp / "x.parquet", row_group_size=20000)
    data = (tmp / "x.parquet").read_bytes()
    meta = {"COLLECTION.json": json.dumps({"id": "fsspec-test"}).encode()}
    last = make_archive(tmp / "last.taco", {**meta, "data/x.parquet": data}, tmp)
    mid = make_archive(tmp / "mid.taco", {**meta, "data/x.parquet": data, "data/after.bin": os.urandom(2 << 20)},
                       tmp)
    return table, data, last, mid


def _count(server, before=None):
    recs = server.settled_log()  # nginx logs a request just after its answer
    return len(recs), sum(r["body_bytes_sent"] for r in recs), [(r["range"], r["body_bytes_sent"]) for r in recs]


@pytest.mark.parametrize("layout", ["last", "mid"])
def test_parquet_row_group_requests_taco_vs_zip_http(nginx_server, parquet_archives, layout):
    pq = require("pyarrow.parquet", "pyarrow")
    table, data, last, mid = parquet_archives
    arc = last if layout == "last" else mid
    url = publish_http(nginx_server, arc, f"rg/{layout}.taco")
    k, rows = 2, 20000
    want = table.slice(k * rows, rows)
    rg_bytes = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(k).total_byte_size

    nginx_server.settled_log()
    nginx_server.reset_log()
    fs = fsspec.filesystem("taco", fo=url)
    with fs.open("data/x.parquet") as f:
        got = pq.ParquetFile(f).read_row_group(k)
    assert got.equals(want)
    reqs, nbytes, detail = _count(nginx_server)
    assert fs.archive.stats == (reqs, nbytes)
    print(f"taco:// {layout}: {reqs} requests, {nbytes} bytes {detail} (row group {rg_bytes} bytes, "
          f"archive {arc.stat().st_size})")
    # open (tail), footer, row group; when the Parquet member is the last one,
    # its footer lies in the tail read at open and costs no request
    assert reqs == (2 if layout == "last" else 3), detail
    assert detail[0][0].startswith("bytes=-")  # the open: one suffix request for the tail

    # no cache, pyarrow coalescing the row group's column chunks itself: as few
    # requests, and only the bytes pyarrow asks for
    nginx_server.settled_log()
    nginx_server.reset_log()
    fs = fsspec.filesystem("taco", fo=url)
    with fs.open("data/x.parquet", cache_type="none") as f:
        pf = pq.ParquetFile(f, pre_buffer=True)
        got = pf.read_row_group(k)
        rg = pf.metadata.row_group(k)
        chunk = sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
    assert got.equals(want)
    nreqs, nnbytes, ndetail = _count(nginx_server)
    print(f"taco:// {layout}, cache none + pre_buffer: {nreqs} requests, {nnbytes} bytes {ndetail} "
          f"(column chunks of the row group: {chunk} bytes)")
    assert nreqs == (2 if layout == "last" else 3), ndetail
    assert ndetail[-1][1] == chunk and nnbytes <= nbytes

    nginx_server.reset_log()
    zfs = fsspec.filesystem("zip", fo=url)
    with zfs.open("data/x.parquet") as f:
        zgot = pq.ParquetFile(f).read_row_group(k)
    assert zgot.equals(want)
    zreqs, zbytes, zdetail = _count(nginx_server)
    print(f"zip::http {layout}: {zreqs} requests, {zbytes} bytes {zdetail}")
    assert reqs < zreqs


def test_reads_straddling_the_kept_tail_fetch_only_the_rest(nginx_server, tmp_path):
    """The tail read at open is kept: a range that begins before it is
    fetched only up to where it begins, by a single read and in a
    coalesced read_ranges; a range wholly inside costs nothing."""
    big = os.urandom(300_000)
    arc = make_archive(tmp_path / "straddle.taco", {"a.bin": big, "z.txt": b"z" * 100}, tmp_path)
    size = arc.stat().st_size
    url = publish_http(nginx_server, arc, "straddle/x.taco")
    nginx_server.settled_log()
    nginx_server.reset_log()
    fs = fsspec.filesystem("taco", fo=url)
    reqs, _, detail = _count(nginx_server)
    assert reqs == 1 and detail[0][0].startswith("bytes=-"), detail
    tail_len = detail[0][1]
    tail_off = size - tail_len
    a = fs.info("a.bin")["offset"]
    raw = arc.read_bytes()

    # a read from 1000 bytes before the tail to 500 bytes into it
    nginx_server.reset_log()
    assert fs.archive.read_range(tail_off - 1000, 1500) == raw[tail_off - 1000:tail_off + 500]
    reqs, nbytes, detail = _count(nginx_server)
    assert (reqs, nbytes) == (1, 1000), detail
    assert detail[0][0] == f"bytes={tail_off - 1000}-{tail_off - 1}"
    # wholly inside the tail: no request
    nginx_server.reset_log()
    assert fs.cat_file("a.bin", start=tail_off - a, end=tail_off - a + 4000) == raw[tail_off:tail_off + 4000]
    assert _count(nginx_server)[0] == 0
    # cat_ranges: one range straddling, one inside, one far before; what is
    # left is coalesced (one request, ending where the tail begins), or not
    starts, ends = [tail_off - a - 10, tail_off - a + 10, 0], [tail_off - a + 10, tail_off - a + 20, 50]
    want = [raw[tail_off - 10:tail_off + 10], raw[tail_off + 10:tail_off + 20], raw[a:a + 50]]
    nginx_server.reset_log()
    assert fs.cat_ranges(["a.bin"] * 3, starts, ends) == want
    reqs, nbytes, detail = _count(nginx_server)
    assert detail == [(f"bytes={a}-{tail_off - 1}", tail_off - a)]
    nginx_server.reset_log()
    assert fs.cat_ranges(["a.bin"] * 3, starts, ends, max_gap=0) == want
    reqs, nbytes, detail = _count(nginx_server)
    assert sorted(detail) == sorted([(f"bytes={a}-{a + 49}", 50), (f"bytes={tail_off - 10}-{tail_off - 1}", 10)])


def test_pickled_filesystem_is_pinned_and_may_carry_its_directory(nginx_server, nested, tmp_path):
    """A pickled taco:// filesystem reopens its archive pinned to the object
    it had (ETag; a local file's size and mtime): replaced in between,
    unpickling gives TACOZ_ERR_CHANGED.  With pickle_directory=True the
    pickle carries the directory: unpickling makes no request."""
    url = publish_http(nginx_server, nested, "pin/nested.taco")
    dest = nginx_server.root / "pin/nested.taco"
    nginx_server.settled_log()
    nginx_server.reset_log()
    fs = fsspec.filesystem("taco", fo=url, pickle_directory=True)
    plain = fsspec.filesystem("taco", fo=url)
    assert len(nginx_server.read_log(expect=2)) == 2
    # the option as pandas / Dask pass it, through storage_options
    assert fsspec.open("taco://d2/e.txt::" + url, "rb", pickle_directory=True).fs.archive.pickle_directory
    assert not plain.archive.pickle_directory
    nginx_server.reset_log()
    blob, plain_blob = pickle.dumps(fs), pickle.dumps(plain)
    member_blob = pickle.dumps(fs.open("d2/e.txt"))
    nginx_server.reset_log()
    fs2 = pickle.loads(blob)
    assert nginx_server.settled_log() == []
    assert fs2.find("", withdirs=True) == fs.find("", withdirs=True)
    assert fs2.info("d1/a.txt") == fs.info("d1/a.txt")
    assert nginx_server.settled_log() == []
    assert pickle.loads(member_blob).read() == b"eee"  # the pickle has the directory, not the data
    assert len(nginx_server.read_log(expect=1)) == 1
    nginx_server.reset_log()
    plain2 = pickle.loads(plain_blob)
    assert plain2.cat("d2/e.txt") == b"eee"
    assert len(nginx_server.read_log(expect=1)) == 1  # the open

    # replaced: the pinned ETag no longer matches
    other = make_archive(tmp_path / "other.taco", {**NESTED, "d2/e.txt": b"EEE!"}, tmp_path)
    dest.write_bytes(other.read_bytes())
    st = os.stat(dest)
    os.utime(dest, (st.st_atime, st.st_mtime + 100))
    with pytest.raises(tacozip.TacozipError) as e:
        pickle.loads(plain_blob)
    assert e.value.code == tacozip.TACOZ_ERR_CHANGED
    assert fsspec.filesystem("taco", fo=url).cat("d2/e.txt") == b"EEE!"  # a new filesystem: the new object

    # a local archive rewritten between pickle and unpickle
    local = make_archive(tmp_path / "local.taco", NESTED, tmp_path)
    lblob = pickle.dumps(fsspec.filesystem("taco", fo=str(local)))
    local.write_bytes(other.read_bytes())
    with pytest.raises(tacozip.TacozipError) as e:
        pickle.loads(lblob)
    assert e.value.code == tacozip.TACOZ_ERR_CHANGED


def test_pandas_read_parquet_over_http(nginx_server, parquet_archives):
    pd = require("pandas")
    table, data, last, mid = parquet_archives
    url = publish_http(nginx_server, mid, "pd/mid.taco")
    df = pd.read_parquet(f"taco://data/x.parquet::{url}")
    assert df.equals(table.to_pandas())
    # one column, pyarrow reading its chunks in parallel: with the default
    # read-ahead, and with no cache (pyarrow coalesces itself), chosen for
    # the files pandas opens through the filesystem's default_cache_type
    sizes = {}
    for cache in ("readahead", "adaptive", "none"):
        nginx_server.settled_log()
        nginx_server.reset_log()
        opts = {} if cache == "adaptive" else {"default_cache_type": cache}
        df2 = pd.read_parquet(f"taco://data/x.parquet::{url}", columns=["id", "label"], storage_options=opts)
        assert df2.equals(table.select(["id", "label"]).to_pandas())
        reqs, nbytes, detail = _count(nginx_server)
        print(f"pd.read_parquet columns=[id, label], cache {cache}: {reqs} requests, {nbytes} bytes")
        sizes[cache] = nbytes
    assert sizes["none"] < len(data) // 2 and sizes["none"] < sizes["readahead"]
    assert sizes["adaptive"] < sizes["readahead"]
    fs = fsspec.filesystem("taco", fo=url, default_cache_type="bytes", default_block_size=1000)
    with fs.open("COLLECTION.json") as f:
        assert (f.cache.name, f.blocksize) == ("bytes", 1000)
    with fsspec.open(f"taco://COLLECTION.json::{url}", "rt") as f:
        assert json.load(f) == {"id": "fsspec-test"}


def test_cat_many_is_coalesced_over_http(nginx_server, tmp_path):
    # a 100 KiB member at the end puts the others before the tail read at
    # open (which would serve them without a request)
    nested = make_archive(tmp_path / "far.taco", {**NESTED, "zz/pad.bin": os.urandom(100 << 10)}, tmp_path)
    url = publish_http(nginx_server, nested, "cat/nested-far.taco")
    fs = fsspec.filesystem("taco", fo=url)
    opened = fs.archive.stats[0]
    nginx_server.settled_log()
    nginx_server.reset_log()
    got = fs.cat("d1/**")
    assert got == {k: v for k, v in NESTED.items() if k.startswith("d1/")}
    assert fs.archive.stats[0] == opened + 1  # neighbours: one request
    got = fs.cat_ranges(["d1/a.txt", "d2/e.txt", "top.txt"], [0, 1, 4], [10, 3, None])
    assert got == [b"a" * 10, b"ee", NESTED["top.txt"][4:]]
    assert fs.archive.stats[0] == opened + 2
    recs = nginx_server.read_log(expect=2)
    assert len(recs) == 2 and all(r["status"] == 206 for r in recs)


# --------------------------------------------------------------------------- moto S3

def _s3_options(moto_s3, **extra):
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"}, **extra}


def test_s3_chained_urls_and_target_options(moto_s3, parquet_archives, nested):
    pd = require("pandas")
    pq = require("pyarrow.parquet", "pyarrow")
    table, data, last, mid = parquet_archives
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="fs/mid.taco", Body=mid.read_bytes())
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="fs/nested.taco", Body=nested.read_bytes())
    opts = _s3_options(moto_s3)
    s3url = f"s3://{moto_s3.bucket}/fs/mid.taco"
    with fsspec.open(f"taco://COLLECTION.json::{s3url}", s3=opts) as f:
        assert json.loads(f.read()) == {"id": "fsspec-test"}
    df = pd.read_parquet(f"taco://data/x.parquet::{s3url}", storage_options={"s3": opts})
    assert df.equals(table.to_pandas())
    fs = fsspec.filesystem("taco", fo=s3url, target_options=opts)
    assert fs.ls("data", detail=False) == ["data/after.bin", "data/x.parquet"]
    with fs.open("data/x.parquet") as f:
        assert pq.ParquetFile(f).read_row_group(1).equals(table.slice(20000, 20000))
    reqs, _ = fs.archive.stats
    print(f"taco::s3 open + footer + row group: {reqs} requests")
    assert reqs == 3
    fs2 = fsspec.filesystem("taco", fo=f"{moto_s3.bucket}/fs/nested.taco", target_protocol="s3",
                            target_options=_s3_options(moto_s3, retries=0, parallel=2))
    assert fs2.cat(["d2/e.txt", "top.txt"]) == {"d2/e.txt": b"eee", "top.txt": NESTED["top.txt"]}
    with pytest.raises(TypeError, match="unknown remote option"):
        fsspec.filesystem("taco", fo=s3url, target_options={**opts, "no_such_option": 1})


def test_s3_pickle_keeps_explicit_credentials_only(moto_s3, nested, monkeypatch):
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="fs/pickle.taco", Body=nested.read_bytes())
    s3url = f"s3://{moto_s3.bucket}/fs/pickle.taco"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    code = ("import pickle, sys\n"
            "obj = pickle.loads(sys.stdin.buffer.read())\n"
            "print(obj.read(7).decode() if hasattr(obj, 'read') else obj.cat('d2/e.txt').decode())\n")

    def run(blob, extra_env):
        out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                             env={**env, **extra_env}, cwd="/")
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode().strip()

    # explicit credentials: part of what is pickled, the subprocess has no AWS_* variables
    explicit = _s3_options(moto_s3, secret="explicit-s3cr3t")
    fs = fsspec.filesystem("taco", fo=s3url, target_options=explicit)
    blob = pickle.dumps(fs)
    assert b"explicit-s3cr3t" in blob
    assert run(blob, {}) == "eee"
    f = fs.open("d1/sub/c.txt")
    assert run(pickle.dumps(f), {}) == "ccccccc"
    with pytest.raises(FileNotFoundError) as e:  # named by the archive's URL, never its credentials
        fs.open("d1/nope.txt")
    assert "d1/nope.txt" in str(e.value) and s3url in str(e.value) and "explicit-s3cr3t" not in str(e.value)

    # credentials from the environment: not pickled; the unpickled one reads its own environment
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-s3cr3t")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    fs_env = fsspec.filesystem("taco", fo=s3url)
    assert fs_env.cat("d2/e.txt") == b"eee"
    blob = pickle.dumps(fs_env)
    assert b"env-s3cr3t" not in blob and b"env-key-id" not in blob
    f = fs_env.open("d1/sub/c.txt")
    f.seek(2)
    fblob = pickle.dumps(f)
    assert b"env-s3cr3t" not in fblob
    aws = {"AWS_ACCESS_KEY_ID": "other-key", "AWS_SECRET_ACCESS_KEY": "other-secret",
           "AWS_ENDPOINT_URL": moto_s3.endpoint, "AWS_REGION": "us-east-1"}
    assert run(blob, aws) == "eee"
    assert run(fblob, aws) == "ccccc"


def test_fsspec_parquet_and_open_files_over_http(nginx_server, parquet_archives, nested):
    """fsspec's own Parquet reader (footer by cat_file, the row group's
    column chunks by cat_ranges: the C library's coalesced read_ranges) and
    open_files with a pattern."""
    pq = require("pyarrow.parquet", "pyarrow")
    from fsspec.parquet import open_parquet_file
    table, data, last, mid = parquet_archives
    url = publish_http(nginx_server, mid, "fpq/mid.taco")
    nginx_server.settled_log()
    nginx_server.reset_log()
    fs = fsspec.filesystem("taco", fo=url)
    with open_parquet_file("data/x.parquet", fs=fs, row_groups=[3], columns=["id", "label"],
                           engine="pyarrow", footer_sample_size=65536) as f:
        got = pq.ParquetFile(f).read_row_group(3, columns=["id", "label"])
    assert got.equals(table.select(["id", "label"]).slice(3 * 20000, 20000))
    reqs, nbytes, detail = _count(nginx_server)
    print(f"fsspec.parquet over taco://: {reqs} requests, {nbytes} bytes {detail}")
    assert reqs == fs.archive.stats[0] and reqs <= 4, detail
    assert nbytes < len(data) // 2

    nurl = publish_http(nginx_server, nested, "of/nested.taco")
    files = fsspec.open_files(f"taco://d1/**/*.txt::{nurl}")
    assert sorted(f.path for f in files) == ["d1/a.txt", "d1/sub/c.txt"]
    for f in files:
        with f as fh:
            assert fh.read() == NESTED[f.path]


@pytest.fixture(scope="module")
def https_nginx(tmp_path_factory):
    """nginx over TLS with a certificate made for the test (its CA bundle is the certificate)."""
    import shutil

    from taco_nginx import NginxError, NginxProcess, find_nginx
    tmp = tmp_path_factory.mktemp("tls")
    openssl, binary = shutil.which("openssl"), find_nginx()
    if not openssl or not binary:
        pytest.fail("openssl and nginx are required (apt-get install openssl nginx)", pytrace=False)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(tmp / "key.pem"),
                    "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
    (tmp / "www").mkdir()
    srv = NginxProcess(binary, tmp, tmp / "www", "$request\\t$status\\t$http_range", listen=" ssl",
                       server_extra=f"        ssl_certificate {tmp}/cert.pem;\n"
                                    f"        ssl_certificate_key {tmp}/key.pem;")
    try:
        srv.start()
    except NginxError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv, str(tmp / "cert.pem")
    srv.stop()


def test_pandas_over_https_with_a_ca_bundle(https_nginx, parquet_archives):
    pd = require("pandas")
    srv, ca = https_nginx
    table, data, last, mid = parquet_archives
    (srv.root / "mid.taco").write_bytes(mid.read_bytes())
    url = f"{srv.base}/mid.taco"
    assert url.startswith("https://")
    df = pd.read_parquet(f"taco://data/x.parquet::{url}", storage_options={"https": {"ca_bundle": ca}})
    assert df.equals(table.to_pandas())
    with pytest.raises(tacozip.TacozipError) as e:  # the certificate is verified: not trusted without the bundle
        fsspec.filesystem("taco", fo=url, target_options={"ca_bundle": "/dev/null", "retries": 0})
    assert e.value.code == tacozip.TACOZ_ERR_NETWORK, e.value
    assert len(srv.log_lines()) >= 1
