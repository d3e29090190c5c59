"""Memory safety and argument checking of the Python extension (issue 8,
items 14 to 17).

Cases that could crash the interpreter run in a child process: the test
asserts that the child exits 0 and reports what it expected, so a crash
or a use-after-free that corrupts memory fails the test instead of
killing pytest."""

import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import zipfile

import pytest

import tacozip
from tacozip import _tacozip


def run_child(code, *args, timeout=120):
    """Run ``code`` in a fresh interpreter; it prints one JSON line last.
    Asserts a clean exit (no signal, no crash) and returns that JSON."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"child exited {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_archive(path, names_sizes, tmp):
    srcs = []
    tmp = pathlib.Path(tmp) / ("src-" + pathlib.Path(path).stem)
    tmp.mkdir(parents=True, exist_ok=True)
    for i, (_name, size) in enumerate(names_sizes):
        p = tmp / f"src{i}.bin"
        p.write_bytes(bytes((k * 31 + i) % 251 for k in range(size)))
        srcs.append(p)
    tacozip.create(path, srcs, [n for n, _ in names_sizes], fsync=False)
    return path


# ---- 14: Archive.__init__ again while the object is in use ----------------------


def test_reinit_refused_while_a_reader_blocks_in_a_gil_released_read(tmp_path):
    """A reader inside read_member (GIL released, its file-object source
    blocked on an Event) while another thread calls __init__ again, then
    close() and __init__ again: each re-init is refused, the read completes
    with the right bytes, close() takes effect when the reader returns."""
    big = make_archive(tmp_path / "big.taco", [("big.bin", 1 << 20)], tmp_path)
    small = make_archive(tmp_path / "small.taco", [("s.bin", 3)], tmp_path)
    r = run_child("""
        import io, json, sys, threading, pathlib
        from tacozip import _tacozip
        data = pathlib.Path(sys.argv[1]).read_bytes()
        gate, entered = threading.Event(), threading.Event()
        class Slow(io.BytesIO):
            block = False
            def readinto(self, b):
                if Slow.block:
                    entered.set()
                    gate.wait(30)
                return super().readinto(b)
        raw = _tacozip.Archive(Slow(data))
        want = pathlib.Path(sys.argv[3]).read_bytes()
        Slow.block = True
        out = {}
        def reader():
            try:
                out["read_ok"] = raw.read_member(1) == want
            except BaseException as e:
                out["read_ok"] = repr(e)
        t = threading.Thread(target=reader)
        t.start()
        assert entered.wait(30)
        res = []
        for step in ("init", "close", "init"):
            try:
                if step == "init":
                    raw.__init__(sys.argv[2])
                else:
                    raw.close()
                res.append([step, "ok"])
            except Exception as e:
                res.append([step, type(e).__name__, str(e)])
        out["steps"] = res
        out["closed_while_reading"] = raw.closed
        gate.set()
        t.join()
        out["closed_after"] = raw.closed
        raw.__init__(sys.argv[2])          # nobody reads now: a re-init is allowed
        out["count_after_reinit"] = raw.count
        print(json.dumps(out))
    """, big, small, tmp_path / "src-big" / "src0.bin")
    assert r["read_ok"] is True
    assert r["steps"][0][:2] == ["init", "RuntimeError"] and "archive in use" in r["steps"][0][2]
    assert r["steps"][1] == ["close", "ok"]
    assert r["steps"][2][:2] == ["init", "RuntimeError"]
    assert r["closed_while_reading"] is True and r["closed_after"] is True
    assert r["count_after_reinit"] == 2


def test_reinit_races_a_big_local_read(tmp_path):
    """A thread reads a 64 MiB member of a local archive again and again
    (GIL released) while the main thread calls __init__ on the same object
    in a loop: no crash, every read returns the member's bytes, every
    re-init either swaps between reads or raises "archive in use"."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.write(b"\xab" * (64 << 20))
    arc = tmp_path / "big.taco"
    tacozip.create(arc, [big], ["big.bin"], fsync=False)
    r = run_child("""
        import json, sys, threading
        from tacozip import _tacozip
        raw = _tacozip.Archive(sys.argv[1])
        stop = threading.Event()
        out = {"reads": 0, "bad": 0, "errors": []}
        def reader():
            while not stop.is_set():
                try:
                    b = raw.read_member(1)
                    out["reads"] += 1
                    if len(b) != 64 << 20 or b[:1] != b"\\xab" or b[-1:] != b"\\xab":
                        out["bad"] += 1
                except Exception as e:
                    out["errors"].append(repr(e))
        t = threading.Thread(target=reader)
        t.start()
        refused = swapped = 0
        for _ in range(200):
            try:
                raw.__init__(sys.argv[1])
                swapped += 1
            except RuntimeError as e:
                assert "archive in use" in str(e), e
                refused += 1
            if out["reads"] >= 20:
                break
        stop.set()
        t.join()
        out.update(refused=refused, swapped=swapped)
        print(json.dumps(out))
    """, arc, timeout=300)
    assert r["bad"] == 0 and r["errors"] == [] and r["reads"] > 0
    assert r["refused"] > 0  # at least one re-init met a read in progress


def test_reinit_from_a_gc_callback_inside_members(tmp_path):
    """members() holds the GIL but allocates, so a garbage collection (and
    with it user code: a gc callback, a finalizer) can run in the middle of
    it.  A re-init from there used to swap the archive under the listing (a
    list with the other archive's members and blank entries); it is refused
    and the listing is the archive's."""
    many = make_archive(tmp_path / "many.taco", [(f"m{i}.bin", i) for i in range(50)], tmp_path)
    small = make_archive(tmp_path / "small.taco", [("s.bin", 3)], tmp_path)
    r = run_child("""
        import gc, json, sys
        from tacozip import _tacozip
        raw = _tacozip.Archive(sys.argv[1])
        want = raw.members()
        fired = []
        def cb(phase, info):
            if phase == "start" and not fired:
                try:
                    raw.__init__(sys.argv[2])
                    fired.append("swapped")
                except Exception as e:
                    fired.append(type(e).__name__ + ": " + str(e))
        gc.callbacks.append(cb)
        old = gc.get_threshold()
        gc.set_threshold(1)
        try:
            got = raw.members()
        finally:
            gc.set_threshold(*old)
            gc.callbacks.remove(cb)
        print(json.dumps({"fired": fired, "same": got == want, "count": raw.count, "n": len(got)}))
    """, many, small)
    assert r["fired"] and r["fired"][0].startswith("RuntimeError") and "archive in use" in r["fired"][0]
    assert r["same"] is True and r["count"] == 51 and r["n"] == 51


def test_reinit_during_span_argument_conversion(tmp_path):
    """span() converts a user sequence (user code) after taking the
    archive: a re-init from that code is refused, and the span is the one
    of the archive the call started on."""
    a = make_archive(tmp_path / "a.taco", [("x", 10), ("y", 20), ("z", 30)], tmp_path)
    b = make_archive(tmp_path / "b.taco", [("q", 1000)], tmp_path)
    raw = _tacozip.Archive(str(a))
    want = raw.span([1, 3])
    seen = []

    class Seq:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            if i >= 2:
                raise IndexError(i)
            if i == 0:
                try:
                    raw.__init__(str(b))
                    seen.append("swapped")
                except RuntimeError as e:
                    seen.append(str(e))
            return [1, 3][i]

    assert raw.span(Seq()) == want
    assert seen and "archive in use" in seen[0]
    raw.close()


# ---- 15: user code while a sequence is converted ---------------------------------


def test_fspath_that_mutates_the_list_being_converted(tmp_path):
    """A path object whose __fspath__ empties (or grows) the very list being
    converted: a clean ValueError naming the change, no crash, no archive;
    through tacozip.create and the raw extension function."""
    for i in range(40):
        (tmp_path / f"f{i}.bin").write_bytes(b"%d" % i)
    r = run_child("""
        import json, os, sys
        import tacozip
        from tacozip import _tacozip
        d = sys.argv[1]
        out = {}
        lst = []
        class Clearing:
            def __fspath__(self):
                lst.clear()
                return os.path.join(d, "f0.bin")
        class Growing:
            def __fspath__(self):
                lst.extend([os.path.join(d, "f1.bin")] * 1000)
                return os.path.join(d, "f0.bin")
        paths = [os.path.join(d, f"f{i}.bin") for i in range(1, 40)]
        cases = {
            "create_clear": lambda: tacozip.create(os.path.join(d, "o1.taco"), lst),
            "create_grow": lambda: tacozip.create(os.path.join(d, "o2.taco"), lst),
            "raw_clear": lambda: _tacozip.create(os.path.join(d, "o3.taco"), lst, None),
            "raw_grow": lambda: _tacozip.create(os.path.join(d, "o4.taco"), lst, None),
            "append_clear": lambda: tacozip.append(os.path.join(d, "base.taco"), lst),
        }
        tacozip.create(os.path.join(d, "base.taco"), [], fsync=False)
        for name, fn in cases.items():
            lst[:] = [Clearing() if "clear" in name else Growing()] + paths
            try:
                fn()
                out[name] = "no error"
            except Exception as e:
                out[name] = [type(e).__name__, str(e)]
        out["left"] = sorted(p for p in os.listdir(d) if p.startswith("o"))
        print(json.dumps(out))
    """, tmp_path)
    for case in ("create_clear", "create_grow", "raw_clear", "raw_grow", "append_clear"):
        assert r[case][0] == "ValueError" and "changed size" in r[case][1], (case, r[case])
    assert r["left"] == []


def test_fspath_that_raises(tmp_path):
    """The exception of a failing __fspath__ propagates as it is."""
    r = run_child("""
        import json, os, sys
        import tacozip
        from tacozip import _tacozip
        class Bad:
            def __fspath__(self):
                raise ValueError("no path today")
        out = {}
        for name, fn in {"create": lambda: tacozip.create(os.path.join(sys.argv[1], "x.taco"), [Bad()]),
                         "raw": lambda: _tacozip.create(os.path.join(sys.argv[1], "x.taco"), [Bad()], None),
                         "open": lambda: tacozip.open(Bad())}.items():
            try:
                fn()
                out[name] = "no error"
            except Exception as e:
                out[name] = [type(e).__name__, str(e)]
        print(json.dumps(out))
    """, tmp_path)
    for case in ("create", "raw", "open"):
        assert r[case] == ["ValueError", "no path today"], (case, r[case])


def test_remote_options_dict_mutated_by_a_value(tmp_path):
    """A remote-options value whose __index__ empties the dict being read
    (freeing its key) while the extension still names that key in its
    error: the message names the option, no use of freed memory."""
    arc = make_archive(tmp_path / "a.taco", [("x", 3)], tmp_path)
    r = run_child("""
        import json, sys
        from tacozip import _tacozip
        opts = {}
        class Evil:
            def __index__(self):
                opts.clear()
                junk = ["".join(["Z"] * 7) for _ in range(10000)]  # reuse the freed key's memory
                return 2 ** 40
        key = "".join(["ret", "ries"])  # a fresh str only the dict holds
        opts[key] = Evil()
        del key
        try:
            _tacozip.Archive(sys.argv[1], False, False, opts)
            print(json.dumps("no error"))
        except Exception as e:
            print(json.dumps([type(e).__name__, str(e)]))
    """, arc)
    assert r[0] == "ValueError" and "retries" in r[1], r


def test_implied_dirs_takes_a_list_of_str():
    assert _tacozip.implied_dirs(["a/b/c", "a/d", "e"]) == ({"a", "a/b"}, [])
    with pytest.raises(TypeError):
        _tacozip.implied_dirs(["a", 1])


# ---- 16: values that used to change silently ---------------------------------------


@pytest.fixture
def one(tmp_path):
    p = tmp_path / "one.bin"
    p.write_bytes(b"1234567890")
    return p


@pytest.mark.parametrize("value", [-1, 2 ** 64, 2 ** 64 + 1])
def test_entries_out_of_range(tmp_path, one, value):
    out = tmp_path / "x.taco"
    for fn in (lambda: tacozip.create(out, [one], entries=[(value, 5)]),
               lambda: tacozip.create(out, [one], entries=[(5, value)]),
               lambda: _tacozip.serialize_header([(value, 1)])):
        with pytest.raises(OverflowError, match="out of range"):
            fn()
        assert not out.exists()
    tacozip.create(out, [one], entries=[(1, 2)])
    with pytest.raises(OverflowError, match=r"entry 0: offset .* out of range"):
        tacozip.update_header(out, [(value, 1)])
    with pytest.raises(OverflowError, match=r"entry 1: length .* out of range"):
        _tacozip.update_header(str(out), [[1, 2], [3, value]])
    assert tacozip.read_header(out) == [(1, 2)]
    # the largest value is still accepted
    tacozip.update_header(out, [(2 ** 64 - 1, 0)])
    assert tacozip.read_header(out) == [(2 ** 64 - 1, 0)]


def test_entries_must_be_integers(tmp_path, one):
    """A float is refused (TypeError, as the original); it used to be
    truncated."""
    with pytest.raises(TypeError, match="float"):
        tacozip.create(tmp_path / "x.taco", [one], entries=[(1.5, 5)])
    with pytest.raises(TypeError):
        _tacozip.update_header(str(tmp_path / "x.taco"), [[1, 2, 3]])


def test_raw_update_header_accepts_list_pairs(tmp_path, one):
    """The raw function with [[1, 2]] (the issue saw a SystemError)."""
    out = tmp_path / "x.taco"
    tacozip.create(out, [one])
    assert _tacozip.update_header(str(out), [[1, 2]]) is None
    assert tacozip.read_header(out) == [(1, 2)]


@pytest.mark.parametrize("alignment", [2 ** 32, 2 ** 40, -1])
def test_alignment_out_of_range(tmp_path, one, alignment):
    out = tmp_path / "x.taco"
    with pytest.raises(OverflowError, match="alignment"):
        tacozip.create(out, [one], alignment=alignment)
    assert not out.exists()


def test_member_name_with_nul(tmp_path, one):
    out = tmp_path / "x.taco"
    for fn in (lambda: tacozip.create(out, [one], ["a\0/../../b"]),
               lambda: _tacozip.create(str(out), [str(one)], ["a\0/../../b"])):
        with pytest.raises(ValueError, match="NUL"):
            fn()
        assert not out.exists()
    tacozip.create(out, [one], ["ok"])
    with pytest.raises(ValueError, match="NUL"):
        tacozip.append(out, [one], ["b\0c"])
    with tacozip.open(out) as ar:
        assert [m.name for m in ar] == ["TACO_HEADER", "ok"]
        with pytest.raises(ValueError, match="NUL"):
            ar.extract(tmp_path / "dest", ["ok\0x"])


@pytest.mark.parametrize("single", ["abc", b"abc", pathlib.Path("abc")])
def test_a_single_path_is_not_a_list_of_paths(tmp_path, single):
    for name in ("a", "b", "c", "abc"):
        (tmp_path / name).write_bytes(b"x")
    os.chdir(tmp_path)
    with pytest.raises(TypeError, match="src_files"):
        tacozip.create(tmp_path / "x.taco", single)
    assert not (tmp_path / "x.taco").exists()
    tacozip.create(tmp_path / "x.taco", [tmp_path / "a"])
    with pytest.raises(TypeError, match="src_files"):
        tacozip.append(tmp_path / "x.taco", single)
    with pytest.raises(TypeError, match="arc_files"):
        tacozip.create(tmp_path / "y.taco", ["a", "b", "c"], "xyz")


def test_read_offsets_out_of_range(tmp_path):
    arc = make_archive(tmp_path / "a.taco", [("x", 100)], tmp_path)
    with tacozip.open(arc) as ar:
        raw = ar._raw
        with pytest.raises(OverflowError, match="offset"):
            raw.read_member(1, -1)
        with pytest.raises(OverflowError, match="offset"):
            raw.read_at(-1, 1)
        with pytest.raises(OverflowError, match="length"):
            raw.read_at(0, 2 ** 64)
        with pytest.raises(OverflowError, match="offset"):
            raw.readinto_member(1, -5, bytearray(4))
        with pytest.raises(OverflowError, match="range 0"):
            raw.read_ranges([(-1, 1)])
        assert raw.read_member(1, 98) == bytes((k * 31) % 251 for k in range(98, 100))


# ---- 17: messages are valid UTF-8 ---------------------------------------------------


def corrupt_member_data(path, name):
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    with tacozip.open(path) as ar:
        off = ar[name].offset
    b = bytearray(pathlib.Path(path).read_bytes())
    b[off] ^= 0xFF
    pathlib.Path(path).write_bytes(bytes(b))
    return info


def assert_text(s):
    assert isinstance(s, str)
    s.encode("utf-8")  # no lone surrogates either


LONG_NAME = "a" + "\u00e9" * 150  # 301 bytes: a cut at 200 bytes falls inside an "é"


def test_validate_message_with_a_name_cut_mid_character(tmp_path):
    arc = make_archive(tmp_path / "a.taco", [(LONG_NAME, 50)], tmp_path)
    corrupt_member_data(arc, LONG_NAME)
    code, msg = tacozip.validate_detail(arc, tacozip.TACOZIP_VALIDATE_DEEP)
    assert code != 0
    assert_text(msg)
    assert "\u00e9" * 20 in msg
    assert tacozip.validate(arc, tacozip.TACOZIP_VALIDATE_DEEP) == code
    with open(arc, "rb") as f:  # through a file-object source too
        assert tacozip.validate_detail(f, tacozip.TACOZIP_VALIDATE_DEEP)[0] == code
    with tacozip.open(arc) as ar:
        with pytest.raises(tacozip.TacozipError) as ei:
            ar.verify(LONG_NAME)
        assert_text(ei.value.detail)
        with pytest.raises(tacozip.TacozipError) as ei:
            ar.extract(tmp_path / "dest", ["\u00e9" * 160])  # not in the archive: named, cut
        assert_text(ei.value.detail)


def test_validate_message_with_a_path_cut_mid_character(tmp_path):
    for pad in ("b", "bb"):  # one of the two puts the 200-byte cut inside a "ü"
        d = tmp_path / (pad + "\u00fc" * 120)
        d.mkdir()
        missing = d / "missing.taco"
        code, msg = tacozip.validate_detail(missing)
        assert code == tacozip.TACOZ_ERR_IO
        assert_text(msg)
        with pytest.raises(tacozip.TacozipError) as ei:
            tacozip.open(missing)
        assert_text(ei.value.detail)


def test_validate_message_with_invalid_utf8_name_bytes(tmp_path):
    arc = make_archive(tmp_path / "a.taco", [("PLACEHOLDER", 40)], tmp_path)
    corrupt_member_data(arc, "PLACEHOLDER")
    raw = pathlib.Path(arc).read_bytes()
    assert raw.count(b"PLACEHOLDER") == 2  # local header and directory
    pathlib.Path(arc).write_bytes(raw.replace(b"PLACEHOLDER", b"PLAC\xff\xfeOLDER"))
    code, msg = tacozip.validate_detail(arc, tacozip.TACOZIP_VALIDATE_DEEP)
    assert code != 0
    assert_text(msg)
    assert "PLAC\\xff\\xfeOLDER" in msg  # the bytes shown, not lost
    with tacozip.open(arc) as ar:
        name = [m.name for m in ar][1]  # names keep their bytes (surrogateescape)
        with pytest.raises(tacozip.TacozipError) as ei:
            ar.verify(name)
        assert_text(ei.value.detail)
        assert "PLAC\\xff\\xfeOLDER" in ei.value.detail


def test_validate_message_from_a_file_object_exception_cut_mid_character(tmp_path):
    """The text of a file object's exception is cut to the C message size,
    possibly inside a character."""
    arc = make_archive(tmp_path / "a.taco", [("x", 10)], tmp_path)
    data = pathlib.Path(arc).read_bytes()

    class Failing(io.BytesIO):
        def readinto(self, b):
            raise OSError("\u00e9" * 400)

    for skew in range(3):
        class F(Failing):
            pass
        F.__name__ = "F" * (skew + 1)  # shifts where the cut falls
        code, msg = tacozip.validate_detail(F(data))
        assert code == tacozip.TACOZ_ERR_IO
        assert_text(msg)
        assert "\u00e9" * 50 in msg
