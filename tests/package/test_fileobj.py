"""tacozip.open / read_header / validate on Python file objects (a byte
source of callbacks in the C library that take the GIL, seek + read under a
lock, and turn Python exceptions into tacozip errors)."""

import gc
import io
import os
import signal
import threading
import time
import weakref

import pytest

import tacozip


@pytest.fixture
def arc(tmp_path):
    """(path, bytes, {name: content}) of an archive of 200 members."""
    payloads = {f"d/m{i:03d}.bin": os.urandom(500 + 37 * i) for i in range(200)}
    srcs = []
    for name, b in payloads.items():
        p = tmp_path / "src" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b)
        srcs.append(p)
    path = tmp_path / "f.taco"
    tacozip.create(path, srcs, list(payloads), entries=[(11, 22), (33, 44)])
    return path, path.read_bytes(), payloads


def check_archive(a, payloads):
    assert a.header == [(11, 22), (33, 44)]
    assert a.names()[1:] == list(payloads)
    for name in ("d/m000.bin", "d/m117.bin", "d/m199.bin"):
        assert a.read(name) == payloads[name]
    f = a.open("d/m150.bin")
    f.seek(100)
    assert f.read(50) == payloads["d/m150.bin"][100:150]
    got = a.read_many(["d/m001.bin", "d/m190.bin"])
    assert got == {n: payloads[n] for n in ("d/m001.bin", "d/m190.bin")}
    a.verify()


def test_bytesio(arc):
    path, raw, payloads = arc
    with tacozip.open(io.BytesIO(raw)) as a:
        check_archive(a, payloads)
        assert a.path == "<BytesIO>" and repr(a) == "<tacozip.TacoArchive '<BytesIO>' 201 members>"
        assert a.stats is None and a.size == len(raw)
    assert tacozip.read_header(io.BytesIO(raw)) == [(11, 22), (33, 44)]
    assert tacozip.validate(io.BytesIO(raw), tacozip.TACOZIP_VALIDATE_DEEP) == tacozip.TACOZ_VALID


def test_real_file_opened_rb(arc, tmp_path):
    path, raw, payloads = arc
    with open(path, "rb") as f:
        with tacozip.open(f) as a:
            check_archive(a, payloads)
            assert a.path == str(path)
            a.extract(tmp_path / "out", ["d/m042.bin"])
        assert (tmp_path / "out" / "d" / "m042.bin").read_bytes() == payloads["d/m042.bin"]
        assert tacozip.read_header(f) == [(11, 22), (33, 44)]
    # unbuffered (raw FileIO: readinto may return less than asked)
    with open(path, "rb", buffering=0) as f, tacozip.open(f) as a:
        check_archive(a, payloads)


class ReadOnly:
    """Only seek() and read(): no readinto, no tell."""

    def __init__(self, data):
        self._b = io.BytesIO(data)
        self.reads = 0

    def seek(self, off, whence=0):
        return self._b.seek(off, whence)

    def read(self, n=-1):
        self.reads += 1
        return self._b.read(n)


class Sized:
    """An fsspec-like file: .size known, seek(0, 2) not supported."""

    def __init__(self, data):
        self._b = io.BytesIO(data)
        self.size = len(data)
        self.path = "bucket/dir/archive.taco"

    def seek(self, off, whence=0):
        if whence == 2:
            raise io.UnsupportedOperation("seek from the end")
        return self._b.seek(off, whence)

    def readinto(self, b):
        return self._b.readinto(b)


def test_read_only_and_sized_objects(arc):
    _path, raw, payloads = arc
    r = ReadOnly(raw)
    with tacozip.open(r) as a:
        check_archive(a, payloads)
        assert a.path == "<ReadOnly>"
    assert r.reads > 0
    with tacozip.open(Sized(raw)) as a:
        check_archive(a, payloads)
        assert a.path == "bucket/dir/archive.taco"


class Failing(io.BytesIO):
    def __init__(self, data, fail_after):
        super().__init__(data)
        self.calls = 0
        self.fail_after = fail_after

    def readinto(self, b):
        self.calls += 1
        if self.calls > self.fail_after:
            raise OSError("disk on fire")
        return super().readinto(b)


def test_read_raising_is_a_clean_error(arc):
    _path, raw, _payloads = arc
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(Failing(raw, 0))
    assert e.value.code == tacozip.TACOZ_ERR_IO
    assert e.value.detail == "<Failing>: readinto() raised OSError: disk on fire"
    assert str(e.value) == "tacozip error -1: I/O error (open/read/write/close/flush)"
    # open works, a later read fails with the exception's text; the archive stays usable
    f = Failing(raw, 10**9)
    with tacozip.open(f) as a:
        f.fail_after = 0
        with pytest.raises(tacozip.TacozipError) as e:
            a.read("d/m100.bin")
        assert e.value.code == tacozip.TACOZ_ERR_IO
        assert "readinto() raised OSError: disk on fire" in e.value.detail
        f.fail_after = 10**9
        assert a.read("d/m100.bin") == _payloads["d/m100.bin"]
    assert tacozip.validate_detail(Failing(raw, 0)) == (
        tacozip.TACOZ_ERR_IO, "<Failing>: readinto() raised OSError: disk on fire")
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.read_header(Failing(raw, 0))
    assert e.value.code == tacozip.TACOZ_ERR_IO and "disk on fire" in e.value.detail


class SeekFails(io.BytesIO):
    def seek(self, off, whence=0):
        if whence == 2:
            raise ValueError("no end here")
        return super().seek(off, whence)


class MemoryHog(io.BytesIO):
    def readinto(self, b):
        raise MemoryError("too big")


def test_size_and_exception_kinds(arc):
    _path, raw, _payloads = arc
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(SeekFails(raw))
    assert e.value.code == tacozip.TACOZ_ERR_IO
    assert e.value.detail == "<SeekFails>: seek(0, 2) raised ValueError: no end here"
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(MemoryHog(raw))
    assert e.value.code == tacozip.TACOZ_ERR_NOMEM
    assert "readinto() raised MemoryError: too big" in e.value.detail


class Short(io.BytesIO):
    """Claims 100 more bytes than it has."""

    def seek(self, off, whence=0):
        if whence == 2:
            super().seek(0, 2)
            return super().tell() + 100
        return super().seek(off, whence)


class Liar(io.BytesIO):
    def readinto(self, b):
        super().readinto(b)
        return len(b) + 5  # more than asked for


class NonBlocking(io.BytesIO):
    def readinto(self, b):
        return None


def test_short_and_bad_reads(arc):
    _path, raw, _payloads = arc
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(Short(raw))
    assert e.value.code == tacozip.TACOZ_ERR_IO
    n = len(raw) + 100
    tail = min(n, 65 * 1024)  # the open reads the last 65 KiB
    assert e.value.detail == (f"<Short>: short read: {tail - 100} of {tail} bytes at offset {n - tail} "
                              f"(end of file)")
    # the bytes of a file object are parsed like a file's: a zeroed tail has no end record
    cut = raw[:len(raw) // 2] + bytes(len(raw) - len(raw) // 2)
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(io.BytesIO(cut))
    assert e.value.code == tacozip.TACOZ_INVALID_NO_EOCD
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(Liar(raw))
    assert e.value.code == tacozip.TACOZ_ERR_IO
    assert "returned" in e.value.detail and "were asked for" in e.value.detail
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(NonBlocking(raw))
    assert e.value.code == tacozip.TACOZ_ERR_IO
    assert e.value.detail == "<NonBlocking>: readinto() returned None (a non-blocking file?)"


def test_not_a_file_object():
    for bad in (42, object(), None):
        with pytest.raises(TypeError, match="expected a path, a URL or a binary file object"):
            tacozip.open(bad)
    with pytest.raises(TypeError, match="io.BytesIO"):
        tacozip.open(bytearray(200))


def test_concurrent_reads_from_two_threads(arc):
    """seek + read of one file object under the source's lock: two threads
    reading different members at once both get the right bytes."""
    _path, raw, payloads = arc
    names = list(payloads)
    errors, done = [], []
    with tacozip.open(io.BytesIO(raw)) as a:
        barrier = threading.Barrier(2)

        def work(k):
            try:
                barrier.wait()
                for _round in range(5):
                    for name in names[k::2]:
                        f = a.open(name)
                        f.seek(7)
                        assert f.read(100) == payloads[name][7:107], name
                        assert a.read(name) == payloads[name], name
                done.append(k)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    assert errors == [] and sorted(done) == [0, 1]


def test_file_object_kept_until_close(arc):
    _path, raw, payloads = arc
    f = io.BytesIO(raw)
    ref = weakref.ref(f)
    a = tacozip.open(f)
    del f
    gc.collect()
    assert ref() is not None  # the archive's source holds it
    assert a.read("d/m003.bin") == payloads["d/m003.bin"]
    a.close()
    gc.collect()
    assert ref() is None  # released by the source's close callback
    # not closed by us: the caller's file stays usable
    g = io.BytesIO(raw)
    with tacozip.open(g):
        pass
    assert not g.closed and g.seek(0) == 0 and g.read(2) == b"PK"


def test_remote_options_do_not_apply_to_file_objects(arc):
    _path, raw, _payloads = arc
    with tacozip.open(io.BytesIO(raw), retries=2) as a:  # accepted, unused
        assert len(a) == 201
    with pytest.raises(TypeError, match="unknown remote option 'retrys'"):
        tacozip.open(io.BytesIO(raw), retrys=2)


class Interrupting(io.BytesIO):
    def readinto(self, b):
        raise KeyboardInterrupt


def test_keyboard_interrupt_in_a_read_is_not_lost(arc):
    """The read fails (TACOZ_ERR_IO) and the interrupt is raised again at the
    next check of the main thread: right away, or after the call returned.
    It is raised again as SIGINT is (PyErr_SetInterrupt), so the test makes
    sure SIGINT has Python's default handler: a process started in the
    background by a shell, as CI may be, inherits SIGINT ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _run_interrupting_reads(arc)
    finally:
        signal.signal(signal.SIGINT, old)


def _run_interrupting_reads(arc):
    _path, raw, _payloads = arc
    for call in (tacozip.open, tacozip.validate):
        codes = []
        with pytest.raises(KeyboardInterrupt):
            try:
                codes.append(call(Interrupting(raw)))
            except tacozip.TacozipError as e:
                codes.append(e.code)
            for _ in range(1000):
                time.sleep(0.001)
        assert codes in ([], [tacozip.TACOZ_ERR_IO])


def test_text_mode_file_is_refused_cleanly(arc):
    path, _raw, _payloads = arc
    with open(path, "r", encoding="latin-1") as f:
        with pytest.raises(tacozip.TacozipError) as e:
            tacozip.open(f)
    assert e.value.code == tacozip.TACOZ_ERR_IO
    assert e.value.detail.startswith(f"{path}: ")
    assert "read() (not bytes) raised TypeError" in e.value.detail
