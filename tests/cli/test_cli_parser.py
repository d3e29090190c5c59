"""The command's one argument parser: options and positionals in any order,
--opt=value, '--', -h/--help anywhere, exact usage errors (exit status 2,
stderr naming the command and the problem, and the hint
"see 'tacozip CMD --help'"), and remote settings from the environment
refused when malformed."""
import json
import os
import shutil

import pytest

from tzutil import dir_snapshot, write_file

READERS = ["header", "ls", "cat", "extract", "span", "validate"]


@pytest.fixture
def arc(tz, tmp_path):
    """A small archive with a.txt, b.bin and sub/c.txt; returns its path."""
    src = tmp_path / "src"
    write_file(src / "a.txt", b"hello world\n")
    write_file(src / "b.bin", bytes(range(256)) * 8)
    write_file(src / "sub" / "c.txt", b"c\n")
    out = tmp_path / "arc.taco"
    tz.ok("create", out, src / "a.txt", src / "b.bin", "--as", "bin/b.bin", src / "sub", "--no-fsync",
          "--mtime", "1700000000", "-e", "0:0")
    return out


def usage_error(r, cmd, *needles):
    """Exit status exactly 2, nothing on stdout, the command, the problem
    and the hint on stderr."""
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert r.stdout == b"", r.stdout
    prefix = "tacozip %s: " % cmd if cmd else "tacozip: "
    assert err.startswith(prefix), err
    assert ("see 'tacozip %s --help'" % cmd if cmd else "see 'tacozip --help'") in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


# ---- option order ------------------------------------------------------------

def test_ls_json_before_and_after(tz, arc):
    a = tz("ls", "--json", arc)
    b = tz("ls", arc, "--json")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and json.loads(a.stdout)[0]["name"] == "TACO_HEADER"


@pytest.mark.parametrize("cmd,first,second", [
    ("header", ["--json", "{arc}"], ["{arc}", "--json"]),
    ("ls", ["--verify-local", "--json", "{arc}"], ["{arc}", "--json", "--verify-local"]),
    ("cat", ["--range", "2-6", "{arc}", "a.txt"], ["{arc}", "a.txt", "--range", "2-6"]),
    ("cat", ["{arc}", "--range", "2-6", "a.txt"], ["{arc}", "a.txt", "--range=2-6"]),
    ("span", ["--data-only", "--json", "{arc}", "a.txt", "bin/b.bin"], ["{arc}", "a.txt", "bin/b.bin", "--json",
                                                                        "--data-only"]),
    ("span", ["--prefix", "sub/", "{arc}"], ["{arc}", "--prefix=sub/"]),
    ("validate", ["--level", "deep", "--json", "{arc}"], ["{arc}", "--json", "--level=deep"]),
])
def test_readers_any_order(tz, arc, cmd, first, second):
    sub = lambda args: [str(arc) if a == "{arc}" else a for a in args]  # noqa: E731
    a, b = tz(cmd, *sub(first)), tz(cmd, *sub(second))
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and a.stdout


def test_cat_range_value_forms(tz, arc):
    assert tz.ok("cat", arc, "a.txt", "--range", "0-4") == b"hello"
    assert tz.ok("cat", arc, "a.txt", "--range=0-4") == b"hello"
    assert tz.ok("cat", "--range=6-", arc, "a.txt") == b"world\n"


def test_extract_any_order(tz, arc, tmp_path):
    d1, d2, d3 = tmp_path / "d1", tmp_path / "d2", tmp_path / "d3"
    tz.ok("extract", "-C", d1, "--skip-header", arc, "a.txt", "sub/c.txt")
    tz.ok("extract", arc, "a.txt", "--skip-header", "sub/c.txt", "-C", d2)
    tz.ok("extract", arc, "-C%s" % d3, "a.txt", "sub/c.txt", "--skip-header")
    s1 = dir_snapshot(d1)
    assert s1 == dir_snapshot(d2) == dir_snapshot(d3)
    assert s1["a.txt"] == b"hello world\n" and "TACO_HEADER" not in s1


def test_create_any_order(tz, tmp_path):
    a = write_file(tmp_path / "a.txt", b"aaa")
    b = write_file(tmp_path / "b.txt", b"bbbb")
    o1, o2, o3 = tmp_path / "1.taco", tmp_path / "2.taco", tmp_path / "3.taco"
    tz.ok("create", "--no-fsync", "-e", "1:2", "--mtime", "1700000000", "--align", "64", o1, a, "--as", "x/a",
          b)
    tz.ok("create", o2, a, "--as", "x/a", b, "--align=64", "--entry=1:2", "--mtime=1700000000", "--no-fsync")
    # --as applies to the FILE before it even with options in between
    tz.ok("create", o3, a, "--no-fsync", "--mtime", "1700000000", "--as", "x/a", "-e1:2", b, "--align", "64")
    assert o1.read_bytes() == o2.read_bytes() == o3.read_bytes()
    assert [m["name"] for m in tz.ls(o1)] == ["TACO_HEADER", "x/a", "b.txt"]
    assert tz.header(o1)["entries"] == [[1, 2]]


def test_create_files_from_keeps_its_place(tz, tmp_path):
    a = write_file(tmp_path / "a.txt", b"a")
    b = write_file(tmp_path / "b.txt", b"b")
    c = write_file(tmp_path / "c.txt", b"c")
    lst = write_file(tmp_path / "list", ("%s\tlisted/b\n" % b).encode())
    out = tmp_path / "o.taco"
    tz.ok("create", out, a, "-T", lst, c, "--no-fsync")
    assert [m["name"] for m in tz.ls(out)] == ["TACO_HEADER", "a.txt", "listed/b", "c.txt"]
    out2 = tmp_path / "o2.taco"
    tz.ok("create", "--files-from=%s" % lst, out2, "--no-fsync")
    assert [m["name"] for m in tz.ls(out2)] == ["TACO_HEADER", "listed/b"]


def test_append_and_update_any_order(tz, arc, tmp_path):
    c1, c2 = tmp_path / "c1.taco", tmp_path / "c2.taco"
    shutil.copy(arc, c1)
    shutil.copy(arc, c2)
    n = write_file(tmp_path / "new.txt", b"new")
    tz.ok("append", "--no-fsync", "--mtime", "1700000000", c1, n, "--as", "n/new.txt")
    tz.ok("append", c2, n, "--as=n/new.txt", "--mtime=1700000000", "--no-fsync")
    assert c1.read_bytes() == c2.read_bytes()
    assert tz.ls(c1)[-1]["name"] == "n/new.txt"
    tz.ok("update", "-e", "5:6", c1, "--entry", "7:8")
    tz.ok("update", c2, "--entry=5:6", "-e7:8")
    assert c1.read_bytes() == c2.read_bytes()
    assert tz.header(c1)["entries"] == [[5, 6], [7, 8]]


# ---- '--' -----------------------------------------------------------------------

def test_double_dash_ends_options(tz, tmp_path):
    import zipfile
    zp = tmp_path / "d.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("--json", b"J")
        zf.writestr("-h", b"H")
    assert tz.ok("cat", zp, "--", "--json") == b"J"
    assert tz.ok("cat", "--", zp, "-h") == b"H"
    span = tz.ok("span", zp, "--json", "--", "-h", "--json")
    assert json.loads(span)["members"] == 2
    # after '--', '-h' is an argument, not the help
    r = tz("cat", zp, "--", "-h", "extra")
    usage_error(r, "cat", "unexpected argument 'extra'")
    # a file named like an option, given after '--'
    write_file(tmp_path / "--as", b"dash file")
    out = tmp_path / "o.taco"
    tz.ok("create", out, "--no-fsync", "--", "--as", cwd=tmp_path)
    assert [m["name"] for m in tz.ls(out)] == ["TACO_HEADER", "--as"]


# ---- help -----------------------------------------------------------------------

ALL = ["create", "append", "header", "update", "ls", "cat", "extract", "span", "validate", "version", "help"]


@pytest.mark.parametrize("cmd", ALL)
@pytest.mark.parametrize("where", ["first", "middle", "last", "after-unknown", "with-missing-arg"])
def test_help_anywhere(tz, tmp_path, cmd, where):
    target = tmp_path / "x.taco"
    args = {"first": ["-h", target, "y"], "middle": [target, "--help", "y"], "last": [target, "y", "-h"],
            "after-unknown": ["--no-such-option", target, "--help"],
            "with-missing-arg": [target, "--help", "-C" if cmd == "extract" else "--range"]}[where]
    r = tz(cmd, *args)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout.decode().startswith("Usage: tacozip %s" % cmd)
    assert r.stderr == b""
    assert not target.exists()


def test_help_command(tz):
    assert tz.ok("help", "cat").decode().startswith("Usage: tacozip cat ")
    assert tz.ok("help").decode().startswith("Usage: tacozip COMMAND")
    usage_error(tz("help", "frob"), "help", "unknown command 'frob'")


@pytest.mark.parametrize("cmd", ["create", "append", "header", "update", "ls", "cat", "extract", "span",
                                 "validate"])
def test_help_lists_every_option(tz, cmd):
    """Every option the parser accepts for a command is in its help."""
    text = tz.ok(cmd, "--help").decode()
    opts = {
        "create": ["-e", "--entry", "-T", "--files-from", "--as", "--align", "--mtime", "--no-fsync", "--index",
                   "--progress", "--no-progress", "-h", "--help"],
        "append": ["-T", "--files-from", "--as", "--align", "--mtime", "--no-fsync", "--progress",
                   "--no-progress"],
        "header": ["--json"],
        "update": ["-e", "--entry"],
        "ls": ["--json", "--verify-local", "--index-first", "--stats"],
        "cat": ["--range", "--index-first", "--stats"],
        "extract": ["-C", "--overwrite", "--skip-header", "--progress", "--no-progress", "--index-first",
                    "--stats"],
        "span": ["--data-only", "--prefix", "--json", "--index-first", "--stats"],
        "validate": ["--level", "--json"],
    }[cmd]
    for o in opts:
        assert o in text, (cmd, o)


# ---- usage errors ------------------------------------------------------------------

@pytest.mark.parametrize("cmd,args", [
    ("create", ["{new}", "{src}"]), ("append", ["{arc}", "{src}"]), ("header", ["{arc}"]),
    ("update", ["{arc}"]), ("ls", ["{arc}"]), ("cat", ["{arc}", "a.txt"]), ("extract", ["{arc}", "-C", "{dest}"]),
    ("span", ["{arc}", "a.txt"]), ("validate", ["{arc}"]), ("version", []),
])
@pytest.mark.parametrize("bad", ["--frob", "--frob=1", "-q", "--jso"])
@pytest.mark.parametrize("first", [True, False])
def test_unknown_option(tz, tmp_path, arc, cmd, args, bad, first):
    src = write_file(tmp_path / "s.txt", b"s")
    m = {"{new}": str(tmp_path / "new.taco"), "{src}": str(src), "{arc}": str(arc), "{dest}": str(tmp_path / "d")}
    args = [m.get(a, a) for a in args]
    before = arc.read_bytes()
    r = tz(cmd, *([bad] + args if first else args + [bad]))
    usage_error(r, cmd, "unknown option '%s'" % bad.split("=")[0])
    assert arc.read_bytes() == before
    assert not (tmp_path / "new.taco").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("cmd,args,opt", [
    ("create", ["{new}", "{src}", "-e"], "-e"), ("create", ["{new}", "{src}", "--entry"], "--entry"),
    ("create", ["{new}", "{src}", "--as"], "--as"), ("create", ["{new}", "-T"], "-T"),
    ("create", ["{new}", "{src}", "--align"], "--align"), ("create", ["{new}", "{src}", "--mtime"], "--mtime"),
    ("append", ["{arc}", "{src}", "--files-from"], "--files-from"), ("update", ["{arc}", "-e"], "-e"),
    ("cat", ["{arc}", "a.txt", "--range"], "--range"), ("extract", ["{arc}", "-C"], "-C"),
    ("span", ["{arc}", "--prefix"], "--prefix"), ("validate", ["{arc}", "--level"], "--level"),
])
def test_missing_option_argument(tz, tmp_path, arc, cmd, args, opt):
    src = write_file(tmp_path / "s.txt", b"s")
    m = {"{new}": str(tmp_path / "new.taco"), "{src}": str(src), "{arc}": str(arc)}
    before = arc.read_bytes()
    r = tz(cmd, *[m.get(a, a) for a in args])
    usage_error(r, cmd, "'%s' needs an argument" % opt)
    assert arc.read_bytes() == before and not (tmp_path / "new.taco").exists()


@pytest.mark.parametrize("cmd,args", [
    ("header", []), ("update", []), ("ls", []), ("cat", []), ("cat", ["{arc}"]), ("extract", []), ("span", []),
    ("span", ["{arc}"]), ("validate", []), ("create", []), ("append", []), ("append", ["{arc}"]),
    ("ls", ["--json"]), ("cat", ["--range", "1-2", "{arc}"]), ("validate", ["--level", "deep"]),
])
def test_too_few_arguments(tz, arc, cmd, args):
    r = tz(cmd, *[str(arc) if a == "{arc}" else a for a in args])
    usage_error(r, cmd, "needs ")


@pytest.mark.parametrize("cmd,args,extra", [
    ("header", ["{arc}", "{arc}"], "{arc}"), ("ls", ["{arc}", "x"], "x"), ("ls", ["--json", "{arc}", "y"], "y"),
    ("cat", ["{arc}", "a.txt", "z"], "z"), ("validate", ["{arc}", "w"], "w"), ("update", ["{arc}", "v", "-e", "1:2"],
                                                                               "v"),
    ("version", ["now"], "now"), ("help", ["ls", "cat"], "cat"),
])
def test_too_many_arguments(tz, arc, cmd, args, extra):
    before = arc.read_bytes()
    r = tz(cmd, *[str(arc) if a == "{arc}" else a for a in args])
    usage_error(r, cmd, "unexpected argument '%s'" % (str(arc) if extra == "{arc}" else extra))
    assert arc.read_bytes() == before


@pytest.mark.parametrize("cmd,args,needle", [
    ("ls", ["{arc}", "--json=yes"], "'--json' takes no argument"),
    ("validate", ["{arc}", "--level", "deep", "--level=quick"], "'--level' given more than once"),
    ("cat", ["{arc}", "a.txt", "--range", "1-2", "--range", "3-4"], "'--range' given more than once"),
    ("span", ["{arc}", "--prefix", "a", "--prefix=b"], "'--prefix' given more than once"),
    ("extract", ["{arc}", "-C", "x", "-Cy"], "'-C' given more than once"),
    ("validate", ["{arc}", "--level", "extreme"], "unknown level 'extreme'"),
    ("update", ["{arc}", "-e", "12"], "'12' is not OFFSET:LENGTH"),
    ("update", ["{arc}", "-e", "1:x"], "invalid entry length 'x'"),
    ("update", ["{arc}"] + ["-e1:1"] * 8, "at most 7 entries"),
    ("create", ["{new}", "{src}", "--align", "3"], "power of two"),
    ("create", ["{new}", "{src}", "--mtime", "-5"], "invalid mtime '-5'"),
    ("create", ["{new}", "--as", "name", "{src}"], "--as name must follow a FILE"),
    ("create", ["{new}", "{dir}", "--as", "name"], "--as name follows a directory"),
    ("create", ["{new}", "-T", "{list}", "--as", "name"], "--as name must follow a FILE"),
    ("create", ["{new}", "{src}", "--as", "n1", "--as", "n2"], "--as n2 must follow a FILE"),
    ("cat", ["{arc}", "a.txt", "--range", "5-3"], "range end before its start"),
    ("create", ["{new}", "-xyz", "{src}"], "unknown option '-x'"),
    ("create", ["{new}", "--no-fsync=1", "{src}"], "'--no-fsync' takes no argument"),
])
def test_bad_option_values(tz, tmp_path, arc, cmd, args, needle):
    src = write_file(tmp_path / "s.txt", b"s")
    (tmp_path / "dir").mkdir()
    write_file(tmp_path / "dir" / "f", b"f")
    lst = write_file(tmp_path / "list", b"%s\n" % str(src).encode())
    m = {"{new}": str(tmp_path / "new.taco"), "{src}": str(src), "{arc}": str(arc), "{dir}": str(tmp_path / "dir"),
         "{list}": str(lst)}
    before = arc.read_bytes()
    r = tz(cmd, *[m.get(a, a) for a in args])
    usage_error(r, cmd, needle)
    assert arc.read_bytes() == before and not (tmp_path / "new.taco").exists()


def test_as_after_a_missing_file_and_a_directory(tz, tmp_path):
    """A FILE that cannot be read is reported (exit 1, nothing written); a
    later --as after a DIR is still a usage error."""
    d = tmp_path / "dir"
    write_file(d / "f", b"f")
    out = tmp_path / "o.taco"
    r = tz("create", out, tmp_path / "missing.txt", "--as", "m", "--no-fsync")
    assert r.returncode == 1 and b"missing.txt" in r.stderr and b"nothing written" in r.stderr
    r = tz("create", out, tmp_path / "missing.txt", "--as", "m", d, "--as", "x")
    assert r.returncode == 2 and not r.stdout
    assert b"tacozip create: --as x follows a directory" in r.stderr
    assert b"see 'tacozip create --help'" in r.stderr
    assert not out.exists()


def test_unknown_command(tz):
    usage_error(tz("frobnicate"), None, "unknown command 'frobnicate'")
    usage_error(tz("--frob"), None, "unknown command '--frob'")


def test_bad_source_date_epoch(tz, tmp_path):
    src = write_file(tmp_path / "s.txt", b"s")
    env = dict(os.environ, SOURCE_DATE_EPOCH="yesterday")
    r = tz("create", tmp_path / "o.taco", src, env=env)
    usage_error(r, "create", "SOURCE_DATE_EPOCH")
    assert not (tmp_path / "o.taco").exists()


def test_flags_may_repeat(tz, arc):
    """Flags without an argument may be given twice; repeatable options
    accumulate."""
    assert tz.ok("ls", arc, "--json", "--json") == tz.ok("ls", arc, "--json")


# ---- the environment ------------------------------------------------------------

BAD_ENV = [
    ("TACOZIP_HTTP_RETRIES", "abc"), ("TACOZIP_HTTP_RETRIES", "101"), ("TACOZIP_HTTP_RETRIES", "-1"),
    ("TACOZIP_HTTP_RETRIES", "3 "), ("TACOZIP_HTTP_BACKOFF_MS", "0"), ("TACOZIP_HTTP_BACKOFF_MS", "1.5"),
    ("TACOZIP_HTTP_MAX_BACKOFF_MS", "600001"), ("TACOZIP_HTTP_CONNECT_TIMEOUT_MS", "99"),
    ("TACOZIP_HTTP_STALL_TIMEOUT_S", "0"), ("TACOZIP_HTTP_STALL_TIMEOUT_S", "3601"),
    ("TACOZIP_HTTP_PARALLEL", "65"), ("TACOZIP_HTTP_PARALLEL", "0x8"),
    ("TACOZIP_HTTP_MAX_SKIP", "-1"), ("TACOZIP_HTTP_MAX_SKIP", "1099511627777"), ("TACOZIP_HTTP_MAX_SKIP", "99999999999999999999999"),
    ("AWS_NO_SIGN_REQUEST", "maybe"), ("AWS_REGION", "us east"), ("AWS_DEFAULT_REGION", "eu/west"),
    ("AWS_ENDPOINT_URL", "localhost:9000"), ("AWS_ENDPOINT_URL_S3", "ftp://x"),
]


def _clean_env(**kw):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("TACOZIP_HTTP_") or k.startswith("AWS_") or k.endswith("_CA_BUNDLE"))}
    env.update(kw)
    return env


@pytest.mark.parametrize("var,value", BAD_ENV)
def test_bad_environment_is_refused(tz, arc, var, value):
    r = tz("ls", arc, env=_clean_env(**{var: value}))
    usage_error(r, "ls", var, "'%s'" % value if "/" not in value and ":" not in value else var)


@pytest.mark.parametrize("cmd,args", [("header", []), ("ls", []), ("cat", ["a.txt"]), ("extract", ["-C", "{d}"]),
                                      ("span", ["a.txt"]), ("validate", []), ("validate", ["--json"])])
def test_bad_environment_every_reader(tz, arc, tmp_path, cmd, args):
    r = tz(cmd, arc, *[str(tmp_path / "d") if a == "{d}" else a for a in args],
           env=_clean_env(TACOZIP_HTTP_PARALLEL="many"))
    usage_error(r, cmd, "TACOZIP_HTTP_PARALLEL='many'")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("var,value", [
    ("TACOZIP_HTTP_RETRIES", "0"), ("TACOZIP_HTTP_RETRIES", "100"), ("TACOZIP_HTTP_RETRIES", ""),
    ("TACOZIP_HTTP_BACKOFF_MS", "1"), ("TACOZIP_HTTP_MAX_BACKOFF_MS", "600000"),
    ("TACOZIP_HTTP_CONNECT_TIMEOUT_MS", "100"), ("TACOZIP_HTTP_STALL_TIMEOUT_S", "3600"),
    ("TACOZIP_HTTP_PARALLEL", "64"), ("TACOZIP_HTTP_MAX_SKIP", "0"), ("TACOZIP_HTTP_MAX_SKIP", "1"),
    ("TACOZIP_HTTP_MAX_SKIP", "1099511627776"),
    ("AWS_NO_SIGN_REQUEST", "true"), ("AWS_NO_SIGN_REQUEST", "FALSE"), ("AWS_NO_SIGN_REQUEST", "1"),
    ("AWS_REGION", "eu-west-1"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"), ("AWS_DEFAULT_REGION", ""),
])
def test_good_environment_is_accepted(tz, arc, var, value):
    assert json.loads(tz.ok("ls", arc, "--json", env=_clean_env(**{var: value})))[1]["name"] == "a.txt"


def test_environment_not_needed_by_writers(tz, arc, tmp_path):
    """create, append and update never read remotely: the remote settings
    are not consulted."""
    env = _clean_env(TACOZIP_HTTP_RETRIES="lots")
    src = write_file(tmp_path / "s.txt", b"s")
    tz.ok("create", tmp_path / "o.taco", src, "--no-fsync", env=env)
    tz.ok("append", tmp_path / "o.taco", arc, "--as", "inner.taco", "--no-fsync", env=env)
    tz.ok("update", tmp_path / "o.taco", "-e", "1:1", env=env)
