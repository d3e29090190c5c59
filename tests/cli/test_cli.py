"""Command-line behaviour: help, usage errors, error reporting, cat ranges,
span, safe extraction and validate --json."""
import json
import os
import zipfile

import pytest

from tzutil import dir_snapshot, parse_zip, rand_bytes, read_range, write_file

COMMANDS = ["create", "append", "header", "update", "ls", "cat", "extract", "span", "validate"]


# ---- help and usage ------------------------------------------------------

@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_main_help(tz, args):
    r = tz(*args)
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.startswith("Usage: tacozip")
    for c in COMMANDS:
        assert c in out


def test_no_arguments_is_usage_error(tz):
    r = tz()
    assert r.returncode == 2 and b"Usage" in r.stderr and not r.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help(tz, cmd, flag):
    r = tz(cmd, flag)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("Usage: tacozip %s" % cmd)
    assert not r.stderr


@pytest.mark.parametrize("cmd", COMMANDS)
def test_command_help_after_other_args(tz, cmd, tmp_path):
    r = tz(cmd, tmp_path / "whatever.taco", "--help")
    assert r.returncode == 0 and b"Usage: tacozip " + cmd.encode() in r.stdout
    assert not (tmp_path / "whatever.taco").exists()


def test_version(tz):
    r = tz("version")
    assert r.returncode == 0 and r.stdout.startswith(b"tacozip ")


def test_unknown_command(tz):
    r = tz("frobnicate", "x")
    assert r.returncode == 2
    assert b"frobnicate" in r.stderr and not r.stdout


@pytest.fixture
def small_archive(tz, tmp_path):
    a = write_file(tmp_path / "a.txt", b"hello\n")
    b = write_file(tmp_path / "b.bin", rand_bytes(3000, 5))
    out = tmp_path / "small.taco"
    tz.ok("create", out, a, b, "--as", "dir/b.bin", "--no-fsync")
    return out


@pytest.mark.parametrize("cmd,extra", [
    ("create", ["{new}", "{src}"]),
    ("append", ["{arc}", "{src2}"]),
    ("header", ["{arc}"]),
    ("update", ["{arc}", "-e", "1:1"]),
    ("ls", ["{arc}"]),
    ("cat", ["{arc}", "a.txt"]),
    ("extract", ["{arc}", "-C", "{dest}"]),
    ("span", ["{arc}", "a.txt"]),
    ("validate", ["{arc}"]),
])
def test_unknown_option(tz, tmp_path, small_archive, cmd, extra):
    src = write_file(tmp_path / "src.txt", b"s")
    src2 = write_file(tmp_path / "src2.txt", b"s2")
    subst = {"{new}": str(tmp_path / "new.taco"), "{src}": str(src), "{src2}": str(src2),
             "{arc}": str(small_archive), "{dest}": str(tmp_path / "dest")}
    args = [subst.get(a, a) for a in extra]
    before = small_archive.read_bytes()
    r = tz(cmd, *args, "--no-such-option")
    assert r.returncode == 2, (cmd, r.returncode, r.stderr)
    assert b"--no-such-option" in r.stderr and not r.stdout
    assert small_archive.read_bytes() == before
    assert not (tmp_path / "new.taco").exists() and not (tmp_path / "dest").exists()


@pytest.mark.parametrize("args", [["{arc}", "--bogus"], ["{arc}", "--bogus", "a.txt"], ["--bogus", "{arc}", "a.txt"],
                                  ["{arc}", "-x"]])
def test_cat_unknown_option_anywhere(tz, small_archive, args):
    r = tz("cat", *[str(small_archive) if a == "{arc}" else a for a in args])
    assert r.returncode == 2 and r.stderr and not r.stdout


def test_cat_member_starting_with_dash(tz, tmp_path):
    zp = tmp_path / "d.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("-dash", b"dash member")
        zf.writestr("--range", b"tricky")
    assert tz.ok("cat", zp, "--", "-dash") == b"dash member"
    assert tz.ok("cat", zp, "--range", "1-3", "--", "--range") == b"ric"


@pytest.mark.parametrize("cmd", ["header", "ls", "cat", "extract", "span", "validate", "update", "append"])
def test_missing_arguments_are_usage_errors(tz, cmd):
    r = tz(cmd)
    assert r.returncode == 2 and r.stderr and not r.stdout


# ---- missing archive / member --------------------------------------------

@pytest.mark.parametrize("cmd,args", [
    ("header", []), ("ls", []), ("ls", ["--json"]), ("cat", ["a.txt"]), ("extract", ["-C", "{dest}"]),
    ("span", ["a.txt"]), ("validate", []), ("validate", ["--level", "deep"]), ("update", ["-e", "1:2"]),
    ("append", ["{src}"]),
])
def test_missing_archive(tz, tmp_path, cmd, args):
    missing = tmp_path / "nope.taco"
    src = write_file(tmp_path / "s.txt", b"s")
    args = [{"{dest}": str(tmp_path / "d"), "{src}": str(src)}.get(a, a) for a in args]
    r = tz(cmd, missing, *args)
    assert r.returncode == 1, (cmd, r.returncode)
    assert r.stderr.strip(), "no message on stderr"
    assert b"nope.taco" in r.stderr
    assert r.stdout == b"", r.stdout
    assert not missing.exists()
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("cmd,args", [
    ("cat", ["missing.txt"]), ("span", ["missing.txt"]), ("span", ["a.txt", "missing.txt"]),
    ("extract", ["-C", "{dest}", "missing.txt"]), ("extract", ["-C", "{dest}", "a.txt", "missing.txt"]),
    ("span", ["--prefix", "zzz/"]),
])
def test_missing_member(tz, tmp_path, small_archive, cmd, args):
    args = [{"{dest}": str(tmp_path / "d")}.get(a, a) for a in args]
    r = tz(cmd, small_archive, *args)
    assert r.returncode == 1, (cmd, r.returncode)
    assert r.stderr.strip() and r.stdout == b""
    # extraction of a list with a missing name writes nothing at all
    assert not (tmp_path / "d").exists() or os.listdir(tmp_path / "d") == []


def test_not_an_archive(tz, tmp_path):
    txt = write_file(tmp_path / "t.txt", b"not a zip\n" * 10)
    for cmd, args in [("ls", []), ("cat", ["x"]), ("header", []), ("span", ["x"])]:
        r = tz(cmd, txt, *args)
        assert r.returncode == 1 and r.stderr and not r.stdout, cmd
    r = tz("validate", txt)
    assert r.returncode == 1


# ---- cat --range -----------------------------------------------------------

@pytest.fixture(scope="module")
def cat_archive(tz, tmp_path_factory):
    d = tmp_path_factory.mktemp("cat")
    data = {"small.bin": rand_bytes(1000, 21), "empty": b"", "three.bin": rand_bytes(3 << 20, 22),
            "one": b"Z"}
    args = []
    for name, content in data.items():
        args += [write_file(d / "src" / name, content), "--as", name]
    out = d / "cat.taco"
    tz.ok("create", out, *args, "--no-fsync")
    return out, data


@pytest.mark.parametrize("rng,sl", [
    ("0-0", slice(0, 1)), ("0-999", slice(0, 1000)), ("0-", slice(0, None)), ("999-999", slice(999, 1000)),
    ("999-", slice(999, None)), ("10-19", slice(10, 20)), ("500-5000", slice(500, None)),
    ("0-18446744073709551615", slice(0, None)), ("998-1000", slice(998, None)),
])
def test_cat_range_small(tz, cat_archive, rng, sl):
    out, data = cat_archive
    assert tz.ok("cat", out, "small.bin", "--range", rng) == data["small.bin"][sl]


@pytest.mark.parametrize("a,b", [(0, (1 << 20) - 1), ((1 << 20) - 1, 1 << 20), ((1 << 20) - 7, (2 << 20) + 7),
                                 (12345, (3 << 20) - 1), ((3 << 20) - 1, (3 << 20) - 1)])
def test_cat_range_across_chunks(tz, cat_archive, a, b):
    out, data = cat_archive
    assert tz.ok("cat", out, "three.bin", "--range", "%d-%d" % (a, b)) == data["three.bin"][a:b + 1]


def test_cat_whole(tz, cat_archive):
    out, data = cat_archive
    for name, content in data.items():
        assert tz.ok("cat", out, name) == content
    assert tz.ok("cat", out, "TACO_HEADER") == read_range(out, 41, 116)


def test_cat_checks_the_crc_of_a_whole_member(tz, cat_archive, tmp_path):
    """A member whose bytes no longer match its CRC-32: cat of the whole
    member exits 1 naming the CRC (a member read in one piece, up to 1 MiB,
    writes nothing; a larger one is streamed, then the failure); --range
    reads are not checked.  (The Python side: tests/package/test_api.py.)"""
    out, data = cat_archive
    raw = bytearray(out.read_bytes())
    listing = {m["name"]: m for m in json.loads(tz.ok("ls", out, "--json"))}
    small, big = listing["small.bin"]["offset"], listing["three.bin"]["offset"]
    raw[small + 10] ^= 0x01
    raw[big + (2 << 20)] ^= 0x01
    bad = tmp_path / "bad.taco"
    bad.write_bytes(bytes(raw))
    r = tz("cat", bad, "small.bin")
    assert r.returncode == 1 and r.stdout == b"" and b"CRC" in r.stderr and b"small.bin" in r.stderr, r.stderr
    r = tz("cat", bad, "three.bin")
    assert r.returncode == 1 and len(r.stdout) == 3 << 20 and b"CRC-32 of the bytes read" in r.stderr, r.stderr
    assert tz.ok("cat", bad, "small.bin", "--range", "0-99") == bytes(raw[small:small + 100])
    assert tz.ok("cat", bad, "one") == data["one"]  # the others are fine


@pytest.mark.parametrize("member,rng", [("small.bin", "1000-"), ("small.bin", "1000-2000"),
                                        ("empty", "0-0"), ("empty", "0-"), ("one", "1-1")])
def test_cat_range_past_end(tz, cat_archive, member, rng):
    out, _ = cat_archive
    r = tz("cat", out, member, "--range", rng)
    assert r.returncode == 1 and r.stderr and r.stdout == b""


@pytest.mark.parametrize("rng", ["5-3", "-5", "abc", "1:2", "", "-", "3-x", "-1-2", "1-2-3"])
def test_cat_range_malformed(tz, cat_archive, rng):
    out, _ = cat_archive
    r = tz("cat", out, "small.bin", "--range", rng)
    assert r.returncode == 2 and r.stderr and r.stdout == b""


def test_cat_range_missing_value(tz, cat_archive):
    out, _ = cat_archive
    r = tz("cat", out, "small.bin", "--range")
    assert r.returncode == 2 and r.stderr and not r.stdout


# ---- span ------------------------------------------------------------------

def expected_span(z, names, data_only=False):
    sel = [e for e in z.entries if e.name in names]
    lo = min(e.data_offset if data_only else e.header_offset for e in sel)
    hi = max(e.data_offset + e.csize for e in sel)
    return "%d:%d" % (lo, hi - lo)


@pytest.fixture(scope="module")
def span_archive(tz, tmp_path_factory):
    d = tmp_path_factory.mktemp("span")
    names = ["meta/level0.parquet", "data/a/1.tif", "data/a/2.tif", "data/b/1.tif", "empty", "COLLECTION.json"]
    args = []
    for i, n in enumerate(names):
        args += [write_file(d / "s" / str(i), rand_bytes(100 * i + 7 * (i % 3), 30 + i)), "--as", n]
    out = d / "span.taco"
    tz.ok("create", out, *args, "--no-fsync")
    return out, parse_zip(out)


@pytest.mark.parametrize("names", [["data/a/1.tif"], ["data/a/1.tif", "data/b/1.tif"],
                                   ["COLLECTION.json", "meta/level0.parquet"], ["empty"],
                                   ["data/b/1.tif", "data/a/2.tif"], ["TACO_HEADER"]])
@pytest.mark.parametrize("data_only", [False, True])
def test_span(tz, span_archive, names, data_only):
    out, z = span_archive
    args = ["--data-only"] if data_only else []
    got = tz.ok("span", out, *names, *args).decode().strip()
    assert got == expected_span(z, names, data_only)


def test_span_prefix(tz, span_archive):
    out, z = span_archive
    got = tz.ok("span", out, "--prefix", "data/").decode().strip()
    assert got == expected_span(z, [e.name for e in z.entries if e.name.startswith("data/")])
    got = tz.ok("span", out, "--prefix", "data/a/", "COLLECTION.json").decode().strip()
    assert got == expected_span(z, ["data/a/1.tif", "data/a/2.tif", "COLLECTION.json"])


def test_span_json(tz, span_archive):
    out, z = span_archive
    names = [e.name for e in z.entries if e.name.startswith("data/")]
    got = json.loads(tz.ok("span", out, "--prefix", "data/", "--json"))
    assert f"{got['offset']}:{got['length']}" == expected_span(z, names)
    assert got["members"] == len(names)


def test_span_range_recovers_members(tz, span_archive, tmp_path):
    """The bytes of the span alone hold the members' local headers and data."""
    out, z = span_archive
    off, length = map(int, tz.ok("span", out, "--prefix", "data/").decode().split(":"))
    chunk = read_range(out, off, length)
    for e in z.entries:
        if e.name.startswith("data/"):
            rel = e.header_offset - off
            assert chunk[rel:rel + 4] == b"PK\x03\x04"
            d = e.data_offset - off
            assert chunk[d:d + e.csize] == read_range(out, e.data_offset, e.csize)


def test_span_output_feeds_update(tz, span_archive, tmp_path):
    out, z = span_archive
    copy = tmp_path / "c.taco"
    copy.write_bytes(out.read_bytes())
    e = tz.ok("span", copy, "COLLECTION.json", "--data-only").decode().strip()
    tz.ok("update", copy, "-e", e)
    off, length = map(int, e.split(":"))
    assert tz.header(copy)["entries"] == [[off, length]]


# ---- extract -----------------------------------------------------------------

def test_extract_writes_identical_files(tz, tmp_path):
    files = {"a.txt": b"a\n", "empty": b"", "d/e/f/deep.bin": rand_bytes(70000, 40),
             "ünï/日本.txt": "text".encode() * 100, "big.bin": rand_bytes(3 << 20, 41)}
    args = []
    for i, (n, c) in enumerate(files.items()):
        args += [write_file(tmp_path / "src" / str(i), c), "--as", n]
    out = tmp_path / "x.taco"
    tz.ok("create", out, *args, "--no-fsync")
    dest = tmp_path / "dest"
    r = tz("extract", out, "-C", dest)
    assert r.returncode == 0 and r.stdout == b""
    snap = {k: v for k, v in dir_snapshot(dest).items() if v != "dir"}
    expect = dict(files)
    expect["TACO_HEADER"] = read_range(out, 41, 116)
    assert snap == expect
    # selected members only, header skipped
    dest2 = tmp_path / "dest2"
    tz.ok("extract", out, "-C", dest2, "--skip-header", "d/e/f/deep.bin", "a.txt")
    snap = {k: v for k, v in dir_snapshot(dest2).items() if v != "dir"}
    assert snap == {"d/e/f/deep.bin": files["d/e/f/deep.bin"], "a.txt": files["a.txt"]}
    # no temporary files left behind anywhere
    for root, _dirs, fns in os.walk(tmp_path):
        assert not [f for f in fns if ".part" in f or ".tmp" in f], (root, fns)


def test_extract_default_dir_is_cwd(tz, tmp_path, small_archive):
    work = tmp_path / "cwd"
    work.mkdir()
    tz.ok("extract", small_archive, "--skip-header", cwd=work)
    assert (work / "a.txt").read_bytes() == b"hello\n"
    assert (work / "dir" / "b.bin").read_bytes() == rand_bytes(3000, 5)


HOSTILE = ["../evil.txt", "/abs.txt", "a/../../x", "a/../../../../../../tmp/tz_evil_abs.txt", "..",
           "ok/../../up.txt", "c:/drive.txt", "back\\slash.txt", "./dot/../../x2"]


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize("good_first", [True, False])
def test_extract_refuses_hostile_names(tz, tmp_path, bad, good_first):
    sandbox = tmp_path / "sandbox"
    dest = sandbox / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    zp = sandbox / "hostile.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        if good_first:
            zf.writestr("good.txt", b"good")
        zf.writestr(bad, b"EVIL")
        zf.writestr("later.txt", b"later")
    assert bad in zipfile.ZipFile(zp).namelist()
    before = dir_snapshot(sandbox)
    abs_targets = ["/abs.txt", "/tmp/tz_evil_abs.txt", "/x", "/up.txt"]
    existed = {p: os.path.exists(p) for p in abs_targets}
    for extra in ([], ["--overwrite"]):
        r = tz("extract", zp, "-C", dest, *extra)
        assert r.returncode == 1, r
        assert r.stderr.strip() and not r.stdout
        assert dir_snapshot(sandbox) == before  # nothing written, inside or outside dest
    for p in abs_targets:
        assert os.path.exists(p) == existed[p], p
    # naming the hostile member explicitly is refused as well
    r = tz("extract", zp, "-C", dest, bad)
    assert r.returncode == 1 and dir_snapshot(sandbox) == before


def test_extract_refuses_symlinked_directory(tz, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    zp = tmp_path / "s.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("sub/file.txt", b"through the link")
    for extra in ([], ["--overwrite"]):
        r = tz("extract", zp, "-C", dest, *extra)
        assert r.returncode == 1 and r.stderr.strip()
        assert os.listdir(outside) == []
        assert os.path.islink(dest / "sub") and os.listdir(dest) == ["sub"]


def test_extract_nested_symlink_directory(tz, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    (dest / "a").mkdir(parents=True)
    os.symlink(outside, dest / "a" / "b")
    zp = tmp_path / "s.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("a/b/c/file.txt", b"x")
    r = tz("extract", zp, "-C", dest)
    assert r.returncode == 1 and r.stderr.strip()
    assert os.listdir(outside) == []


def test_extract_does_not_follow_symlinked_file(tz, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = write_file(outside / "target.txt", b"precious")
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(target, dest / "file.txt")
    zp = tmp_path / "f.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("file.txt", b"new content")
    r = tz("extract", zp, "-C", dest)
    assert r.returncode == 1 and r.stderr.strip()
    assert target.read_bytes() == b"precious" and os.path.islink(dest / "file.txt")
    # with --overwrite the link itself is replaced, never written through
    tz.ok("extract", zp, "-C", dest, "--overwrite")
    assert target.read_bytes() == b"precious"
    assert not os.path.islink(dest / "file.txt")
    assert (dest / "file.txt").read_bytes() == b"new content"


def test_extract_refuses_overwrite(tz, tmp_path, small_archive):
    dest = tmp_path / "dest"
    tz.ok("extract", small_archive, "-C", dest, "--skip-header")
    (dest / "a.txt").write_bytes(b"changed locally")
    before = dir_snapshot(dest)
    r = tz("extract", small_archive, "-C", dest, "--skip-header")
    assert r.returncode == 1 and r.stderr.strip() and not r.stdout
    assert dir_snapshot(dest) == before
    tz.ok("extract", small_archive, "-C", dest, "--skip-header", "--overwrite")
    assert (dest / "a.txt").read_bytes() == b"hello\n"
    assert set(dir_snapshot(dest)) == set(before)


def test_extract_corrupt_member_leaves_no_file(tz, tmp_path, small_archive):
    """A member whose bytes do not match its CRC is not left behind."""
    bad = tmp_path / "bad.taco"
    raw = bytearray(small_archive.read_bytes())
    e = [x for x in parse_zip(small_archive).entries if x.name == "dir/b.bin"][0]
    raw[e.data_offset + 10] ^= 0xFF
    bad.write_bytes(bytes(raw))
    dest = tmp_path / "dest"
    r = tz("extract", bad, "-C", dest, "dir/b.bin")
    assert r.returncode == 1 and r.stderr.strip()
    assert not (dest / "dir" / "b.bin").exists()
    assert [f for _r, _d, fs in os.walk(dest) for f in fs] == []


# ---- validate --json -----------------------------------------------------------

@pytest.mark.parametrize("level", ["quick", "normal", "deep"])
def test_validate_json_valid(tz, small_archive, level):
    r = tz("validate", small_archive, "--json", "--level", level)
    assert r.returncode == 0
    v = json.loads(r.stdout)
    assert v["valid"] is True and v["code"] == 0 and v["level"] == level


def test_validate_json_invalid(tz, tmp_path, small_archive):
    raw = bytearray(small_archive.read_bytes())
    e = [x for x in parse_zip(small_archive).entries if x.name == "dir/b.bin"][0]
    raw[e.data_offset] ^= 1
    bad = write_file(tmp_path / "bad.taco", bytes(raw))
    # normal does not read member data; deep does
    assert json.loads(tz.ok("validate", bad, "--json"))["valid"] is True
    r = tz("validate", bad, "--json", "--level", "deep")
    assert r.returncode == 1
    v = json.loads(r.stdout)
    assert v["valid"] is False and v["code"] == -32 and v["level"] == "deep" and "b.bin" in v["message"]
    # a broken header CRC
    raw = bytearray(small_archive.read_bytes())
    raw[41 + 5] ^= 1
    bad2 = write_file(tmp_path / "bad2.taco", bytes(raw))
    v = json.loads(tz("validate", bad2, "--json", "--level", "deep").stdout)
    assert v["valid"] is False and v["code"] == -30
    # not a TACO archive at all
    txt = write_file(tmp_path / "t.txt", b"x" * 200)
    r = tz("validate", txt, "--json")
    assert r.returncode == 1
    v = json.loads(r.stdout)
    assert v["valid"] is False and v["code"] == -10


def test_validate_json_escapes_names(tz, tmp_path):
    """A path with quotes and control characters still yields valid JSON."""
    weird = tmp_path / 'we"ird\\na\tme.taco'
    weird.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    r = tz("validate", weird, "--json")
    assert r.returncode == 1
    v = json.loads(r.stdout)
    assert v["valid"] is False


def test_ls_json_escapes_names(tz, tmp_path):
    names = ['quo"te', "back\\slash", "tab\there", "new\nline", "ctrl\x01x", "ünï"]
    zp = tmp_path / "n.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        for n in names:
            zf.writestr(n, n.encode())
    listing = tz.ls(zp)
    assert [m["name"] for m in listing] == names
    for m in listing:
        assert read_range(zp, m["offset"], m["size"]) == m["name"].encode()


# ---- progress bar -----------------------------------------------------------

def _many_files(tmp_path, n=2500):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(n):
        (d / f"f{i:05d}.bin").write_bytes(b"x" * 10)
    return d


def test_progress_forced_and_hidden(tz, tmp_path):
    d = _many_files(tmp_path, 50)
    r = tz("create", tmp_path / "p.taco", d, "--progress", "--no-fsync")
    assert r.returncode == 0
    err = r.stderr.decode()
    assert "create [" in err and "100.0%" in err and "50/50 files" in err and err.endswith("\n")
    r = tz("create", tmp_path / "q.taco", d, "--no-fsync")  # stderr is a pipe: no bar by default
    assert r.returncode == 0 and r.stderr == b""
    r = tz("extract", tmp_path / "p.taco", "-C", tmp_path / "out", "--progress")
    assert r.returncode == 0 and b"extract [" in r.stderr and b"100.0%" in r.stderr


def test_progress_bar_on_a_terminal(tacozip_bin, tmp_path):
    """With stderr on a terminal, large work shows the bar unasked;
    --no-progress hides it."""
    import pty
    import subprocess

    d = _many_files(tmp_path)

    def run(*extra):
        master, slave = pty.openpty()
        p = subprocess.run([tacozip_bin, "create", str(tmp_path / "t.taco"), str(d), "--no-fsync", *extra],
                           stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        os.close(master)
        return p.returncode, b"".join(chunks).decode(errors="replace")

    rc, err = run()
    assert rc == 0 and "create [" in err and "2500/2500 files" in err
    rc, err = run("--no-progress")
    assert rc == 0 and err == ""


# ---- validate: STORED sizes and data descriptors ---------------------------

def _records(raw, name):
    """(local header offset, central record offset) of member ``name``."""
    import struct
    nb = name.encode()
    lfh = cdr = None
    i = raw.find(b"PK\x03\x04")
    while i >= 0 and lfh is None:
        n = struct.unpack_from("<H", raw, i + 26)[0]
        if raw[i + 30:i + 30 + n] == nb:
            lfh = i
        i = raw.find(b"PK\x03\x04", i + 4)
    i = raw.find(b"PK\x01\x02")
    while i >= 0 and cdr is None:
        n = struct.unpack_from("<H", raw, i + 28)[0]
        if raw[i + 46:i + 46 + n] == nb:
            cdr = i
        i = raw.find(b"PK\x01\x02", i + 4)
    return lfh, cdr


@pytest.mark.parametrize("case", ["stored_sizes", "descriptor_missing", "descriptor_present"])
def test_validate_stored_sizes_and_descriptors(tz, cat_archive, tmp_path, case):
    """A STORED member whose two sizes differ: refused by validate (normal
    and deep) with TACOZ_INVALID_STORED_SIZE; the data-descriptor flag with
    no descriptor after the data: refused by deep with
    TACOZ_INVALID_DESCRIPTOR; with the descriptor the flag announces (the
    next member's bytes moved on by 16), deep accepts it."""
    import struct
    out, _ = cat_archive
    raw = bytearray(out.read_bytes())
    lfh, cdr = _records(raw, "small.bin")
    if case == "stored_sizes":
        for at in (lfh + 22, cdr + 24):  # uncompressed size, local and central
            struct.pack_into("<I", raw, at, 999)
    else:
        for at in (lfh + 6, cdr + 8):  # general purpose flags: bit 3
            raw[at] |= 0x08
    if case == "descriptor_present":
        # rewrite as an archive with a real descriptor: let zipfile-independent
        # bytes do it: insert PK\7\10 crc csize usize after the data and shift
        # every later offset by 16
        crc, csize, usize = struct.unpack_from("<III", raw, cdr + 16)
        nlen, xlen = struct.unpack_from("<HH", raw, lfh + 26)
        end = lfh + 30 + nlen + xlen + csize
        desc = struct.pack("<IIII", 0x08074B50, crc, csize, usize)
        raw[end:end] = desc
        cd_at = raw.find(b"PK\x01\x02")
        i = cd_at
        while i >= 0:  # central records after the inserted bytes: their local header offsets
            off = struct.unpack_from("<I", raw, i + 42)[0]
            if off > lfh:
                struct.pack_into("<I", raw, i + 42, off + 16)
            i = raw.find(b"PK\x01\x02", i + 4)
        eocd = raw.rfind(b"PK\x05\x06")
        struct.pack_into("<I", raw, eocd + 16, struct.unpack_from("<I", raw, eocd + 16)[0] + 16)
    bad = tmp_path / f"{case}.taco"
    bad.write_bytes(bytes(raw))
    r = {lvl: tz("validate", bad, "--level", lvl, "--json") for lvl in ("normal", "deep")}
    got = {lvl: json.loads(x.stdout) for lvl, x in r.items()}
    if case == "stored_sizes":
        for lvl in ("normal", "deep"):
            assert r[lvl].returncode == 1 and got[lvl]["code"] == -34, got[lvl]
            assert "small.bin" in got[lvl]["message"] and "STORED" in got[lvl]["message"]
    elif case == "descriptor_missing":
        assert r["normal"].returncode == 0, got
        assert r["deep"].returncode == 1 and got["deep"]["code"] == -35, got["deep"]
        assert "small.bin" in got["deep"]["message"] and "descriptor" in got["deep"]["message"]
    else:
        assert r["deep"].returncode == 0 and got["deep"]["valid"] is True, got["deep"]


# ---- listings cannot be spoofed --------------------------------------------

def test_ls_escapes_names_and_json_stays_valid_and_lossless(tz, tmp_path):
    """Names with a newline (a fake row), an ESC sequence, DEL, a C1 control,
    a backslash and bytes that are not UTF-8: `ls` prints one line per
    member with each such byte as \\xNN and no control byte at all; `ls
    --json` is valid UTF-8 JSON, and its names give the bytes back with
    Python's surrogateescape; a library message naming such a member is
    escaped too."""
    import subprocess

    src = write_file(tmp_path / "one.bin", b"x")
    names = [b"a\nfake 0 0 00000000 row", b"b\x1b[31mred", b"c\xff\xfe.bin", b"d\x7f\xc2\x85e", "é-ok.txt".encode()]
    out = tmp_path / "spoof.taco"
    cmd = []
    for n in names:
        cmd += [str(src).encode(), b"--as", n]
    exe = str(tz.path)
    r = subprocess.run([exe.encode(), b"create", str(out).encode(), *cmd, b"--no-fsync"], capture_output=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([exe, "ls", str(out)], capture_output=True)
    assert r.returncode == 0
    lines = r.stdout.split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == len(names) + 1  # TACO_HEADER + one line each
    assert not any(c < 0x20 and c != 0x0A or c == 0x7F for c in r.stdout), r.stdout
    assert b"\xc2\x85" not in r.stdout and b"\xff" not in r.stdout
    shown = [ln[35:] for ln in lines[1:-1]]  # after "%12d %12d %08x "
    assert shown[0] == b"a\\x0afake 0 0 00000000 row" and shown[1] == b"b\\x1b[31mred"
    assert shown[2] == b"c\\xff\\xfe.bin" and shown[3] == b"d\\x7f\\xc2\\x85e"
    assert shown[4] == "é-ok.txt".encode()
    r = subprocess.run([exe, "ls", str(out), "--json"], capture_output=True)
    listing = json.loads(r.stdout.decode("utf-8"))  # strict UTF-8
    assert [m["name"].encode("utf-8", "surrogateescape") for m in listing[1:]] == names
    # a message naming a member: cat of a corrupted one
    raw = bytearray(out.read_bytes())
    off = listing[2]["offset"]
    raw[off] ^= 1
    (tmp_path / "bad.taco").write_bytes(bytes(raw))
    r = subprocess.run([exe, "validate", str(tmp_path / "bad.taco"), "--level", "deep"], capture_output=True)
    assert r.returncode == 1 and b"\x1b" not in r.stdout and b"\\x1b[31mred" in r.stdout, r.stdout
