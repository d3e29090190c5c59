"""Declared sizes do not drive allocation (issue 8, item 7).

Crafted archives, generated here (sparse files: nothing large is written or
committed), whose end records or TACO_INDEX declare far more than the file
holds.  Each command must fail with exit status 1 and a message naming the
problem, and its peak resident memory (ru_maxrss of the child, from
os.wait4) must stay within the target: at most twice what the archive's
honest directory needs plus 64 MiB.  The honest directories here are a few
records, so the bound is 64 MiB over the command's own baseline (the
resident size of `tacozip version`, which also absorbs a sanitizer's
runtime)."""
import os
import select
import struct
import time
import zlib

import pytest

from tzutil import header_payload

MiB = 1 << 20
GiB = 1 << 30
SLACK = 64 * MiB


def measured(tz, *args, timeout=120):
    """Run tacozip and return (status, stdout + stderr, peak RSS bytes) via wait4."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.dup2(w, 1)  # validate reports on stdout, the others on stderr
            os.dup2(w, 2)
            os.execv(tz.path, [tz.path] + [str(a) for a in args])
        finally:
            os._exit(127)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(r)
            raise AssertionError("tacozip %s: still running after %d s" % (" ".join(map(str, args)), timeout))
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    os.close(r)
    _, status, ru = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code, b"".join(chunks).decode(errors="replace"), ru.ru_maxrss * 1024


@pytest.fixture(scope="module")
def baseline_rss(tz):
    code, _, rss = measured(tz, "version")
    assert code == 0
    return rss


def lfh(name, data):
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 10, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data),
                       len(name), 0) + name


def cdh(name, size, crc, offset):
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x033F, 10, 0, 0, 0, 0, crc, size, size, len(name),
                       0, 0, 0, 0, 0o100644 << 16, offset) + name


def eocd(entries, cd_size, cd_off):
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, cd_size, cd_off, 0)


def zip64_end(entries, cd_size, cd_off, at):
    rec = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, entries, entries, cd_size, cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, at, 1)
    return rec + loc + eocd(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)


def header_member():
    payload = header_payload([])
    return lfh(b"TACO_HEADER", payload), payload


def stored_zip(members):
    """bytes of a plain STORED archive (TACO_HEADER first if given)."""
    out, cd = b"", b""
    for name, data in members:
        off = len(out)
        out += lfh(name, data) + data
        cd += cdh(name, len(data), zlib.crc32(data), off)
    return out + cd + eocd(len(members), len(cd), len(out))


def sparse_directory(path, cd_size=4 * GiB):
    """TACO_HEADER, then a directory declared cd_size bytes long (ZIP64 end
    records claiming as many entries as that size could hold) whose first
    record is TACO_HEADER's and whose rest is a hole: about 8 KiB on disk."""
    h, payload = header_member()
    first = cdh(b"TACO_HEADER", len(payload), zlib.crc32(payload), 0)
    cd_off = len(h) + len(payload)
    with open(path, "wb") as f:
        f.write(h + payload + first)
        f.seek(cd_off + cd_size)
        f.write(zip64_end(cd_size // 46, cd_size, cd_off, cd_off + cd_size))
    return cd_off, len(first)


def test_sparse_directory_refused_without_reading_it(tz, tmp_path, baseline_rss):
    p = tmp_path / "sparse.taco"
    cd_off, first = sparse_directory(p)
    assert os.path.getsize(p) > 4 * GiB
    assert os.stat(p).st_blocks * 512 < 1 * MiB  # really sparse
    for args in (("ls", p), ("ls", p, "--index-first"), ("validate", p), ("validate", p, "--level", "deep"),
                 ("cat", p, "TACO_HEADER"), ("append", p, tmp_path / "sparse.taco")):
        code, err, rss = measured(tz, *args)
        assert code == 1, (args, code, err)
        assert "bad signature for directory record 1 at offset %d" % (cd_off + first) in err, (args, err)
        assert rss <= baseline_rss + SLACK, (args, rss >> 20)


def test_declared_directory_beyond_the_file(tz, tmp_path, baseline_rss):
    """An 8 KiB file whose ZIP64 end record declares a 4 GiB directory: the
    declared range is checked against the file's real size first."""
    p = tmp_path / "small.taco"
    h, payload = header_member()
    body = (h + payload).ljust(8192 - 98, b"\0")
    p.write_bytes(body + zip64_end(93000000, 4 * GiB, 157, len(body)))
    for args in (("ls", p), ("validate", p)):
        code, err, rss = measured(tz, *args)
        assert code == 1, (args, code, err)
        assert "central directory (4294967296 bytes at offset 157) lies outside" in err, err
        assert rss <= baseline_rss + SLACK, (args, rss >> 20)


def test_directory_slack_refused(tz, tmp_path):
    """Bytes after the last record but inside the declared directory (a hole
    of 1 GiB here) are refused: the directory is what its records are."""
    h, payload = header_member()
    data = h + payload
    rec = cdh(b"TACO_HEADER", len(payload), zlib.crc32(payload), 0)
    p = tmp_path / "slack.taco"
    with open(p, "wb") as f:
        f.write(data + rec)
        f.seek(len(data) + GiB)
        f.write(zip64_end(1, GiB, len(data), len(data) + GiB))
    code, err, _ = measured(tz, "ls", p)
    assert code == 1, (code, err)
    assert "bytes after the last of the 1 directory records" in err, err


def index_bomb(raw_len):
    """A TACO_INDEX for one member whose columns declare raw_len bytes:
    zeros, which deflate about 1000:1."""
    c = zlib.compressobj(9)
    zero = bytes(MiB)
    packed = b"".join(c.compress(zero) for _ in range(raw_len // MiB)) + c.flush()
    blob = b"TZIX" + bytes([1, 0, 0, 0]) + struct.pack("<III", 1, len(packed), raw_len) + packed
    return blob + struct.pack("<I", zlib.crc32(b"x"))


@pytest.fixture(scope="module")
def bomb_archive(tmp_path_factory):
    h, payload = header_member()
    p = tmp_path_factory.mktemp("bomb") / "bomb.taco"
    p.write_bytes(stored_zip([(b"TACO_HEADER", payload), (b"TACO_INDEX", index_bomb(256 * MiB)), (b"a", b"x")]))
    return p


@pytest.mark.parametrize("args,message", [
    # index-first: what the index's fixed bytes declare, against the archive
    (("ls", "--index-first"), "TACO_INDEX: 268435456 bytes of columns declared, more than 1 members can need"),
    # validate: the index's size, against the members the directory lists
    (("validate", "--level", "deep"), "TACO_INDEX is 260946 bytes, more than an index of 1 members can be"),
])
def test_index_inflated_size_bounded(tz, bomb_archive, baseline_rss, args, message):
    """A ~260 KB TACO_INDEX for one member that would inflate to 256 MiB is
    refused before anything is inflated."""
    assert os.path.getsize(bomb_archive) < MiB
    code, err, rss = measured(tz, args[0], bomb_archive, *args[1:])
    assert code == 1, (code, err)
    assert message in err, err
    assert rss <= baseline_rss + SLACK, (args, rss >> 20)


def test_plain_listing_of_the_bomb_still_works(tz, bomb_archive):
    """Only the index is refused: the directory lists the archive."""
    names = [m["name"] for m in tz.ls(bomb_archive)]
    assert names == ["TACO_HEADER", "TACO_INDEX", "a"]
