"""Member files read in pieces are CRC-checked (issue 8, item 10): reads
that follow each other from byte 0 to the member's end are compared with
the directory's CRC-32; a seek away stops the check for that pass, a read
at byte 0 starts it again; check_crc=False opts out.  Through
tacozip.open's MemberFile and through fsspec's taco:// member files."""

import io

import fsspec
import pytest

import tacozip

SIZE = 10240  # the member checked: 40 x bytes 0..255
FLIP = 5000  # the byte of it altered in the corrupted copy
CHUNKS = (1, 7, 100, 4096, SIZE - 1, SIZE, 3 * SIZE)


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    d = tmp_path_factory.mktemp("seqcrc")
    (d / "a.bin").write_bytes(bytes(range(256)) * (SIZE // 256))
    (d / "b.txt").write_bytes(b"fine\n" * 3)
    (d / "empty").write_bytes(b"")
    good = d / "good.taco"
    tacozip.create(good, [d / "a.bin", d / "b.txt", d / "empty"], ["a.bin", "b.txt", "empty"], entries=[(0, 0)])
    with tacozip.open(good) as ar:
        off = ar["a.bin"].offset
    raw = bytearray(good.read_bytes())
    raw[off + FLIP] ^= 0x40
    bad = d / "bad.taco"
    bad.write_bytes(bytes(raw))
    return good, bad, bytes(raw[off:off + SIZE])


def read_loop(f, chunk):
    """Read ``f`` to its end in reads of ``chunk`` bytes; returns the bytes
    and the number of reads that returned data."""
    out, n = [], 0
    while True:
        b = f.read(chunk)
        if not b:
            return b"".join(out), n
        out.append(b)
        n += 1


def readinto_loop(f, chunk):
    buf, out = bytearray(chunk), []
    while True:
        n = f.readinto(buf)
        if not n:
            return b"".join(out)
        out.append(bytes(buf[:n]))


def assert_crc_error(e):
    assert isinstance(e.value, tacozip.TacozipValidationError)
    assert e.value.code == tacozip.TACOZ_INVALID_CRC_MEMBER
    assert "a.bin" in e.value.detail


@pytest.mark.parametrize("chunk", CHUNKS)
def test_reads_in_pieces_of_an_intact_member_are_fine(archives, chunk):
    good, _, _ = archives
    with tacozip.open(good) as ar:
        want = ar.read("a.bin")
        assert read_loop(ar.open("a.bin"), chunk)[0] == want
        assert readinto_loop(ar.open("a.bin"), chunk) == want
        assert read_loop(ar.open("b.txt"), chunk)[0] == b"fine\n" * 3
        assert read_loop(ar.open("empty"), chunk)[0] == b""


@pytest.mark.parametrize("chunk", CHUNKS)
def test_reads_in_pieces_of_a_corrupted_member_raise_at_the_end(archives, chunk):
    _, bad, _ = archives
    with tacozip.open(bad) as ar:
        for loop in (read_loop, readinto_loop):
            f = ar.open("a.bin")
            with pytest.raises(tacozip.TacozipError) as e:
                loop(f, chunk)
            assert_crc_error(e)
            # raised by the read that reached the end: the position stays
            # where it started, and the same read raises again
            pos = f.tell()
            assert pos == (SIZE - 1) // chunk * chunk
            with pytest.raises(tacozip.TacozipError):
                f.read(chunk)
            assert f.tell() == pos
        # every read before the one that reaches the end returns its bytes
        f = ar.open("a.bin")
        for _ in range((SIZE - 1) // chunk):
            assert len(f.read(chunk)) == chunk
        with pytest.raises(tacozip.TacozipError) as e:
            f.read(chunk)
        assert_crc_error(e)
        # the other members are unaffected
        assert read_loop(ar.open("b.txt"), 2)[0] == b"fine\n" * 3


def test_buffered_and_line_reads_are_checked(archives):
    good, bad, _ = archives
    with tacozip.open(good) as ar:
        assert io.BufferedReader(ar.open("a.bin"), buffer_size=1000).read() == ar.read("a.bin")
        assert b"".join(ar.open("b.txt")) == b"fine\n" * 3
    with tacozip.open(bad) as ar:
        with pytest.raises(tacozip.TacozipError) as e:
            io.BufferedReader(ar.open("a.bin"), buffer_size=1000).read()
        assert_crc_error(e)
        with pytest.raises(tacozip.TacozipError) as e:
            b"".join(ar.open("a.bin"))  # iteration: readline
        assert_crc_error(e)


def test_seeking_away_stops_the_check_without_false_errors(archives):
    good, bad, raw = archives
    for arc in (good, bad):
        with tacozip.open(arc) as ar:
            # bytes skipped: no check (the altered byte is read, unchecked)
            f = ar.open("a.bin")
            f.read(100)
            f.seek(200)
            assert read_loop(f, 999)[0] == raw[200:] if arc == bad else True
            # bytes read twice: no check, no false error
            f = ar.open("a.bin")
            f.read(3000)
            f.seek(1000)
            read_loop(f, 999)
            # starting past byte 0: no check
            f = ar.open("a.bin")
            f.seek(1)
            read_loop(f, 4096)
            # reading again after the end returns nothing and raises nothing
            assert f.read(10) == b""
    with tacozip.open(good) as ar:
        f = ar.open("a.bin")  # a seek back to byte 0 starts the check again: intact, fine
        f.read(3000)
        f.seek(0)
        assert read_loop(f, 512)[0] == ar.read("a.bin")
    with tacozip.open(bad) as ar:
        f = ar.open("a.bin")  # ... and over the altered byte it raises
        f.read(100)
        f.seek(7000)
        f.read(100)
        f.seek(0)
        with pytest.raises(tacozip.TacozipError) as e:
            read_loop(f, 512)
        assert_crc_error(e)
        f = ar.open("a.bin")  # a seek to where the reads are does not stop it
        f.read(100)
        f.seek(f.tell())
        f.seek(0, io.SEEK_CUR)
        with pytest.raises(tacozip.TacozipError) as e:
            read_loop(f, 512)
        assert_crc_error(e)
        f = ar.open("a.bin")  # nor does a pass that stopped: the next one from 0 checks
        f.seek(10)
        f.read(10)
        f.seek(0)
        with pytest.raises(tacozip.TacozipError):
            read_loop(f, 4096)


def test_check_crc_false_opts_out(archives):
    _, bad, raw = archives
    with tacozip.open(bad, check_crc=False) as ar:
        assert ar.check_crc is False
        for chunk in CHUNKS:
            assert read_loop(ar.open("a.bin"), chunk)[0] == raw
            assert readinto_loop(ar.open("a.bin"), chunk) == raw
        assert ar.read("a.bin") == raw  # the C library's TACOZIP_OPEN_NO_CRC
        assert ar.read_many(["a.bin"])["a.bin"] == raw
    with tacozip.open(bad) as ar:
        assert ar.check_crc is True


def test_check_crc_survives_pickling(archives):
    import pickle

    _, bad, raw = archives
    with tacozip.open(bad, check_crc=False) as ar:
        f = pickle.loads(pickle.dumps(ar.open("a.bin")))
        assert read_loop(f, 1000)[0] == raw
    with tacozip.open(bad) as ar:
        f = pickle.loads(pickle.dumps(ar.open("a.bin")))
        with pytest.raises(tacozip.TacozipError):
            read_loop(f, 1000)


@pytest.mark.parametrize("cache_type", ["none", "adaptive", "readahead", "bytes"])
@pytest.mark.parametrize("chunk", [1, 100, 4096, SIZE, 3 * SIZE])
def test_fsspec_member_files_read_in_pieces(archives, cache_type, chunk):
    good, bad, raw = archives
    with fsspec.open("taco://a.bin::" + str(good), cache_type=cache_type, block_size=1024) as f:
        assert read_loop(f, chunk)[0] == bytes(range(256)) * (SIZE // 256)
    with fsspec.open("taco://a.bin::" + str(bad), cache_type=cache_type, block_size=1024) as f:
        with pytest.raises(tacozip.TacozipError) as e:
            read_loop(f, chunk)
        assert_crc_error(e)
    fs = fsspec.filesystem("taco", fo=str(bad), check_crc=False)
    with fs.open("a.bin", cache_type=cache_type, block_size=1024) as f:
        assert read_loop(f, chunk)[0] == raw
    assert fs.cat("a.bin") == raw


def test_fsspec_seeks_and_line_reads(archives):
    good, bad, raw = archives
    fs = fsspec.filesystem("taco", fo=str(bad))
    with fs.open("a.bin") as f:  # bytes skipped: unchecked
        f.read(10)
        f.seek(20)
        assert read_loop(f, 1000)[0] == raw[20:]
    with fs.open("a.bin") as f:  # back to byte 0: checked again
        f.read(6000)
        f.seek(0)
        with pytest.raises(tacozip.TacozipError):
            read_loop(f, 1000)
    with fs.open("a.bin") as f:  # readline and readinto go through read()
        with pytest.raises(tacozip.TacozipError):
            f.readlines()
    with fs.open("a.bin") as f:
        with pytest.raises(tacozip.TacozipError):
            readinto_loop(f, 333)
    gfs = fsspec.filesystem("taco", fo=str(good))
    with gfs.open("b.txt") as f:
        assert f.readlines() == [b"fine\n"] * 3


def test_the_extension_crc32_is_zlib_crc32():
    """The running CRC uses _tacozip.crc32 (the C library's tacozip_crc32):
    the same values as zlib.crc32, for any bytes-like object and start."""
    import os
    import zlib

    from tacozip import _tacozip

    for data in (b"", b"a", os.urandom(100_000), bytearray(os.urandom(70_000)), memoryview(os.urandom(999))[3:500]):
        assert _tacozip.crc32(data) == zlib.crc32(data)
        assert _tacozip.crc32(data, 0xDEADBEEF) == zlib.crc32(data, 0xDEADBEEF)
    for bad in (-1, 2**32, 2**70):
        with pytest.raises(OverflowError):
            _tacozip.crc32(b"x", bad)
    with pytest.raises(TypeError):
        _tacozip.crc32("text")
    with pytest.raises(TypeError):
        _tacozip.crc32(b"x", 1.5)
