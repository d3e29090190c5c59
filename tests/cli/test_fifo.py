"""FIFOs and other non-regular files are refused at once, never waited on
(issue 8, item 9): every command that opens a local archive, and create /
append with a FIFO as a source.  Each run has a timeout, so a command that
blocks in open() fails the test instead of hanging the suite."""
import os

import pytest

TIMEOUT = int(os.environ.get("TACOZIP_FIFO_TIMEOUT", "20"))  # seconds; a refused FIFO takes milliseconds


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "pipe.taco"
    os.mkfifo(p)
    return p


@pytest.fixture
def archive(tz, tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello\n")
    out = tmp_path / "ok.taco"
    tz.ok("create", out, src)
    return out, src


def refused(r, what):
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert "not a regular file (a FIFO)" in err, err
    assert what in err, err


@pytest.mark.parametrize("args", [
    ("ls", "{fifo}"),
    ("ls", "{fifo}", "--index-first"),
    ("header", "{fifo}"),
    ("validate", "{fifo}"),
    ("validate", "{fifo}", "--level", "deep"),
    ("update", "{fifo}", "-e", "0:0"),
    ("append", "{fifo}", "{src}"),
    ("cat", "{fifo}", "a.txt"),
    ("extract", "{fifo}", "-C", "{dest}"),
])
def test_fifo_archive_refused(tz, fifo, archive, tmp_path, args):
    dest = tmp_path / "dest"
    dest.mkdir()
    argv = [a.format(fifo=fifo, src=archive[1], dest=dest) for a in args]
    r = tz(*argv, timeout=TIMEOUT)
    refused(r, str(fifo))
    assert list(dest.iterdir()) == []


def test_create_with_fifo_source_refused(tz, fifo, archive, tmp_path):
    out = tmp_path / "new.taco"
    r = tz("create", out, archive[1], fifo, timeout=TIMEOUT)
    refused(r, "only regular files can be archived")
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "ok.taco", "pipe.taco"]  # no temporary file left


def test_create_index_with_fifo_source_refused(tz, fifo, archive, tmp_path):
    """--index stat()s the sources up front: refused there, same message."""
    out = tmp_path / "new.taco"
    r = tz("create", out, archive[1], fifo, "--index", timeout=TIMEOUT)
    refused(r, "only regular files can be archived")
    assert not out.exists()


def test_append_fifo_source_refused(tz, fifo, archive):
    out, src = archive
    before = out.read_bytes()
    r = tz("append", out, fifo, timeout=TIMEOUT)
    refused(r, "only regular files can be archived")
    assert out.read_bytes() == before
    assert [m["name"] for m in tz.ls(out)] == ["TACO_HEADER", "a.txt"]


def test_directory_as_archive_refused(tz, tmp_path):
    r = tz("ls", tmp_path, timeout=TIMEOUT)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert b"not a regular file (a directory)" in r.stderr, r.stderr
