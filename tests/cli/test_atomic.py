"""Atomic create and restoring append: failures (missing source, disk full
simulated with RLIMIT_FSIZE, duplicate names) leave no partial output and
no temporary files; a successful append moves nothing."""
import json
import os
import resource
import signal
import subprocess
import zipfile
import zlib

import pytest

from tzutil import parse_zip, predict_offsets, rand_bytes, read_range, write_file


def fsize_limit(n):
    """preexec_fn: the child may not write files past n bytes (EFBIG, not SIGXFSZ)."""
    def fn():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return fn


def fsize_limit_default_signal(n):
    """preexec_fn: the file-size limit with SIGXFSZ at its default action
    (kill), as a shell's `ulimit -f` leaves it: the command must ignore the
    signal itself."""
    def fn():
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return fn


@pytest.fixture
def work(tmp_path):
    """A directory holding only the archive(s) under test; sources live elsewhere."""
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture
def sources(tmp_path):
    s = tmp_path / "src"
    files = [write_file(s / "a.bin", rand_bytes(300000, 1)), write_file(s / "b.bin", rand_bytes(5 << 20, 2)),
             write_file(s / "c.txt", b"c" * 1000)]
    return files


def test_create_missing_source_leaves_nothing(tz, work, sources):
    out = work / "new.taco"
    r = tz("create", out, sources[0], work.parent / "src" / "missing.bin", sources[2], "--no-fsync")
    assert r.returncode == 1 and b"missing.bin" in r.stderr and not r.stdout
    assert os.listdir(work) == []


def test_create_missing_source_keeps_existing(tz, work, sources):
    out = work / "existing.taco"
    tz.ok("create", out, sources[2], "-e", "1:2")
    before = out.read_bytes()
    mode = os.stat(out).st_mode
    r = tz("create", out, sources[0], work.parent / "src" / "missing.bin")
    assert r.returncode == 1 and r.stderr
    assert out.read_bytes() == before and os.stat(out).st_mode == mode
    assert os.listdir(work) == ["existing.taco"]


def test_create_bad_name_keeps_existing(tz, work, sources):
    out = work / "existing.taco"
    tz.ok("create", out, sources[2])
    before = out.read_bytes()
    for bad in ["../x", "/abs", "TACO_HEADER", "a/./b", ""]:
        r = tz("create", out, sources[0], "--as", bad)
        assert r.returncode == 1 and r.stderr, bad
        assert out.read_bytes() == before
    r = tz("create", out, sources[0], "--as", "same", sources[2], "--as", "same")
    assert r.returncode == 1 and out.read_bytes() == before
    assert os.listdir(work) == ["existing.taco"]


@pytest.mark.parametrize("limit", [100, 157, 4096, 300000, 4 << 20, (5 << 20) + 300000])
def test_create_disk_full_new(tz, work, sources, limit):
    out = work / "new.taco"
    r = tz("create", out, *sources, "--no-fsync", preexec_fn=fsize_limit(limit))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip()
    assert os.listdir(work) == []


@pytest.mark.parametrize("limit", [100, 4096, 4 << 20])
def test_create_disk_full_keeps_existing(tz, work, sources, limit):
    out = work / "existing.taco"
    tz.ok("create", out, sources[2], "-e", "5:6")
    before = out.read_bytes()
    r = tz("create", out, *sources, preexec_fn=fsize_limit(limit))
    assert r.returncode == 1 and r.stderr.strip()
    assert out.read_bytes() == before
    assert os.listdir(work) == ["existing.taco"]


def test_create_under_limit_succeeds(tz, work, sources):
    """Control for the tests above: the same create fits a large enough limit."""
    out = work / "new.taco"
    tz.ok("create", out, *sources, "--no-fsync", preexec_fn=fsize_limit(64 << 20))
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
    assert os.listdir(work) == ["new.taco"]


# ---- append --------------------------------------------------------------------

@pytest.fixture
def base_archive(tz, work, tmp_path):
    files = {"first.txt": b"first\n", "data/x.bin": rand_bytes(20000, 3), "empty": b""}
    args = []
    for i, (n, c) in enumerate(files.items()):
        args += [write_file(tmp_path / "base" / str(i), c), "--as", n]
    out = work / "base.taco"
    tz.ok("create", out, *args, "-e", "157:6", "-e", "0:0", "--no-fsync")
    return out, files


def test_append_success(tz, tools, tmp_path, base_archive):
    out, files = base_archive
    before = out.read_bytes()
    z0 = parse_zip(out)
    new = {"new/one.bin": rand_bytes(5000, 4), "new/ünï.txt": b"u" * 33, "zero": b"", "big.bin": rand_bytes(5 << 20, 5)}
    args = []
    for i, (n, c) in enumerate(new.items()):
        args += [write_file(tmp_path / "add" / str(i), c), "--as", n]
    tz.ok("append", out, *args, "--no-fsync")
    z1 = parse_zip(out)
    # existing members: same records, same offsets, same bytes; all bytes before
    # the old directory unchanged (the header included)
    assert out.read_bytes()[:z0.cd_offset] == before[:z0.cd_offset]
    assert read_range(out, 0, 157) == before[:157]
    for e0, e1 in zip(z0.entries, z1.entries):
        assert (e0.name_bytes, e0.header_offset, e0.data_offset, e0.crc, e0.csize) == \
               (e1.name_bytes, e1.header_offset, e1.data_offset, e1.crc, e1.csize)
    added = z1.entries[len(z0.entries):]
    assert [e.name for e in added] == list(new)
    # new members start where the old directory was, laid out back to back
    assert added[0].header_offset == z0.cd_offset
    pos = z0.cd_offset
    for e in added:
        assert e.header_offset == pos
        assert e.data_offset == pos + 30 + len(e.name_bytes) and e.local.extra == b""
        assert read_range(out, e.data_offset, e.csize) == new[e.name]
        assert e.crc == e.local.crc == zlib.crc32(new[e.name])
        pos = e.data_offset + e.csize
    assert z1.cd_offset == pos
    # ls agrees; the prediction over old + new members holds too
    listing = tz.ls(out)
    members = [(n, len(c)) for n, c in list(files.items()) + list(new.items())]
    assert [m["offset"] for m in listing[1:]] == predict_offsets(members)
    assert tz.header(out) == {"count": 2, "entries": [[157, 6], [0, 0]]}
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        for n, c in list(files.items()) + list(new.items()):
            assert zf.read(n) == c
    r = subprocess.run([tools("unzip"), "-t", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stdout + r.stderr
    tz.ok("validate", out, "--level", "deep")
    assert sorted(os.listdir(out.parent)) == ["base.taco"]


def test_append_twice(tz, tmp_path, base_archive):
    out, files = base_archive
    a = write_file(tmp_path / "a1", b"one")
    b = write_file(tmp_path / "b1", b"two" * 1000)
    tz.ok("append", out, a, "--no-fsync")
    tz.ok("append", out, b, "--no-fsync")
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["TACO_HEADER"] + list(files) + ["a1", "b1"]
        assert zf.testzip() is None


def test_append_duplicate_fails_unchanged(tz, tmp_path, base_archive):
    out, _ = base_archive
    before = out.read_bytes()
    dup = write_file(tmp_path / "first.txt", b"other content")
    other = write_file(tmp_path / "other.txt", b"o")
    for args in ([dup], [other, dup], [other, "--as", "data/x.bin"], [other, "--as", "TACO_HEADER"],
                 [other, "--as", "n", dup, "--as", "n"]):
        r = tz("append", out, *args)
        assert r.returncode == 1 and r.stderr.strip(), args
        assert out.read_bytes() == before
    assert os.listdir(out.parent) == ["base.taco"]


def test_append_missing_source_unchanged(tz, tmp_path, base_archive):
    out, _ = base_archive
    before = out.read_bytes()
    ok = write_file(tmp_path / "ok.txt", b"ok")
    r = tz("append", out, ok, tmp_path / "missing.bin")
    assert r.returncode == 1 and b"missing.bin" in r.stderr
    assert out.read_bytes() == before


def test_append_to_non_archive_unchanged(tz, tmp_path):
    txt = write_file(tmp_path / "t.txt", b"plain text\n" * 30)
    src = write_file(tmp_path / "s", b"s")
    r = tz("append", txt, src)
    assert r.returncode == 1 and r.stderr.strip()
    assert txt.read_bytes() == b"plain text\n" * 30


@pytest.mark.parametrize("extra", [1, 100, 5000, 300000, 4 << 20])
def test_append_disk_full_restores(tz, tmp_path, base_archive, extra):
    out, _ = base_archive
    before = out.read_bytes()
    srcs = [write_file(tmp_path / "n1", rand_bytes(200000, 6)), write_file(tmp_path / "n2", rand_bytes(6 << 20, 7))]
    limit = len(before) + extra
    r = tz("append", out, *srcs, "--no-fsync", preexec_fn=fsize_limit(limit))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip()
    assert out.read_bytes() == before
    assert os.listdir(out.parent) == ["base.taco"]
    # and it is still a good archive that a later append extends
    tz.ok("validate", out, "--level", "deep")
    tz.ok("append", out, *srcs, "--no-fsync")
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None


def test_append_preserves_zip_comment(tz, tmp_path):
    zp = tmp_path / "c.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("a.txt", b"a")
        zf.comment = b"keep me"
    src = write_file(tmp_path / "b.txt", b"b")
    tz.ok("append", zp, src, "--no-fsync")
    with zipfile.ZipFile(zp) as zf:
        assert zf.comment == b"keep me"
        assert zf.namelist() == ["a.txt", "b.txt"] and zf.read("b.txt") == b"b"


def test_file_size_limit_with_the_default_sigxfsz_fails_cleanly(tz, tmp_path, base_archive, work, sources):
    """`(ulimit -f N; tacozip append ...)`: the command ignores SIGXFSZ, so the
    write fails with EFBIG (exit 1, not killed by the signal) and the archive
    is restored; create leaves nothing."""
    out, _ = base_archive
    before = out.read_bytes()
    big = write_file(tmp_path / "big", rand_bytes(2 << 20, 9))
    r = tz("append", out, big, "--no-fsync", preexec_fn=fsize_limit_default_signal(len(before) + 50000))
    assert r.returncode == 1, (r.returncode, r.stderr)  # -25 (SIGXFSZ) before the fix
    assert b"File too large" in r.stderr
    assert out.read_bytes() == before
    tz.ok("validate", out, "--level", "deep")
    new = work / "new.taco"
    r = tz("create", new, *sources, "--no-fsync", preexec_fn=fsize_limit_default_signal(100000))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert sorted(os.listdir(work)) == ["base.taco"]


# ---- one writer at a time --------------------------------------------------

def _hold_lock(path):
    """Take the writers' lock of ``path`` as tacozip does (an open-file-
    description write lock on the whole file); returns the open fd."""
    import fcntl
    import struct
    fd = os.open(path, os.O_WRONLY)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hh4xqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
    return fd


def test_a_second_writer_fails_or_waits(tz, tmp_path, base_archive):
    """While another process holds the archive's writers' lock, append,
    update and create over it fail at once (exit 1, 'locked', nothing
    changed); with --wait they go ahead once it is released.  Readers are
    not blocked."""
    import threading
    import time

    out, files = base_archive
    before = out.read_bytes()
    extra = write_file(tmp_path / "extra.txt", b"extra")
    fd = _hold_lock(out)
    try:
        for args in (("append", out, extra), ("update", out, "-e", "1:2"), ("create", out, extra)):
            r = tz(*args)
            assert r.returncode == 1 and b"locked" in r.stderr, (args, r.returncode, r.stderr)
            assert out.read_bytes() == before
        assert tz.ok("cat", out, "first.txt") == files["first.txt"]  # readers go on
        tz.ok("validate", out, "--level", "deep")
        t0 = time.monotonic()
        threading.Timer(0.6, os.close, (fd,)).start()
        fd = None
        tz.ok("append", out, extra, "--wait", "10", "--no-fsync")
        assert time.monotonic() - t0 >= 0.5
    finally:
        if fd is not None:
            os.close(fd)
    assert b"extra" in tz.ok("cat", out, "extra.txt")
    r = tz("update", out, "--wait", "soon")
    assert r.returncode == 2 and b"--wait" in r.stderr


@pytest.mark.parametrize("wait", [False, True])
def test_concurrent_appends_never_corrupt_or_lose(tz, tmp_path, base_archive, wait):
    """Two `tacozip append` at once on one archive, 8 rounds: without --wait
    each either succeeds or fails with 'locked' (exit 1); with --wait both
    succeed.  Every round the archive validates deep and holds exactly the
    members of the appends that succeeded."""
    out, _ = base_archive
    expected = {m["name"] for m in json.loads(tz.ok("ls", out, "--json"))}
    refused = 0
    for rnd in range(8):
        srcs = [write_file(tmp_path / f"r{rnd}-{k}.bin", rand_bytes(3 << 20, 100 + 2 * rnd + k)) for k in (0, 1)]
        procs = [subprocess.Popen([str(tz.path), "append", str(out), str(s), "--no-fsync",
                                   *(["--wait", "60"] if wait else [])],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in srcs]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        for (code, err), s in zip(results, srcs):
            if code == 0:
                expected.add(s.name)
            else:
                assert not wait and code == 1 and b"locked" in err, (code, err)
                refused += 1
        tz.ok("validate", out, "--level", "deep")
        assert {m["name"] for m in json.loads(tz.ok("ls", out, "--json"))} == expected
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
    print(f"wait={wait}: {refused} of 16 appends refused as locked")
