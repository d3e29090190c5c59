"""The paths of the command that run threads: members of 8 MiB and more are
copied by two threads (one reads and computes the CRC-32, one writes), on
success and when the write fails half way.  Marked ``threads`` so that
``scripts/test.sh tsan`` runs them against a ThreadSanitizer build
(any sanitizer report fails the test, whatever the exit status)."""
import os
import resource
import signal
import zipfile
import zlib

import pytest

from tzutil import rand_bytes, write_file

pytestmark = pytest.mark.threads

PIPE_MIN = 8 << 20  # src/writer.c: members this large are copied by two threads


def no_report(r):
    err = r.stderr.decode(errors="replace")
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-4000:]


@pytest.fixture(scope="module")
def big_sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("threads-src")
    sizes = {"exact.bin": PIPE_MIN, "plus1.bin": PIPE_MIN + 1, "small.txt": 1000, "large.bin": (21 << 20) + 12345}
    return {name: write_file(d / name, rand_bytes(n, i + 70)) for i, (name, n) in enumerate(sizes.items())}


def test_create_large_members(tz, tmp_path, big_sources):
    out = tmp_path / "big.taco"
    r = tz("create", out, *big_sources.values(), "--no-fsync", "--progress")
    no_report(r)
    assert r.returncode == 0, r.stderr[-2000:]
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["TACO_HEADER"] + list(big_sources)
        for name, path in big_sources.items():
            data = zf.read(name)
            assert data == path.read_bytes()
            assert zf.getinfo(name).CRC == zlib.crc32(data)
    r = tz("validate", out, "--level", "deep")
    no_report(r)
    assert r.returncode == 0, r.stdout + r.stderr


def test_append_large_member(tz, tmp_path, big_sources):
    out = tmp_path / "a.taco"
    tz.ok("create", out, big_sources["small.txt"], "--no-fsync")
    r = tz("append", out, big_sources["large.bin"], big_sources["exact.bin"])
    no_report(r)
    assert r.returncode == 0, r.stderr[-2000:]
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert zf.read("large.bin") == big_sources["large.bin"].read_bytes()


def _limit(n):
    def fn():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return fn


@pytest.mark.parametrize("limit", [PIPE_MIN // 2, PIPE_MIN + (5 << 20), (30 << 20)])
def test_write_error_in_the_writer_thread(tz, tmp_path, big_sources, limit):
    """The write fails while the helper thread writes a large member: exit 1,
    a message, nothing left behind (no temporary file either)."""
    work = tmp_path / "out"
    work.mkdir()
    r = tz("create", work / "x.taco", *big_sources.values(), "--no-fsync", preexec_fn=_limit(limit))
    no_report(r)
    assert r.returncode == 1 and r.stderr.strip()
    assert os.listdir(work) == []


def test_extract_large_members(tz, tmp_path, big_sources):
    out = tmp_path / "e.taco"
    tz.ok("create", out, *big_sources.values(), "--no-fsync")
    r = tz("extract", out, "-C", tmp_path / "x")
    no_report(r)
    assert r.returncode == 0, r.stderr[-2000:]
    for name, path in big_sources.items():
        assert (tmp_path / "x" / name).read_bytes() == path.read_bytes()
