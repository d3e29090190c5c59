"""create -e data:/span:/members:/directory (header entries planned by name),
create --plan (the layout without writing), and create with '-' (standard
input as a stream of unknown length).  The oracle is zipfile plus the local
headers read here, never the command's own output."""

import json
import os
import struct
import zipfile

import pytest

from tzutil import rand_bytes, write_file

EXIT_FAIL, EXIT_USAGE = 1, 2


def layout(path):
    """{name: (header_offset, data_offset, size)} from zipfile and the local
    headers."""
    out = {}
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            f.seek(info.header_offset)
            lfh = f.read(30)
            nlen, xlen = struct.unpack_from("<HH", lfh, 26)
            out[info.filename] = (info.header_offset, info.header_offset + 30 + nlen + xlen, info.file_size)
    return out


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "ds"
    files = {
        "COLLECTION.json": b'{"id": "x"}',
        "METADATA/level0.parquet": rand_bytes(3000, 1),
        "METADATA/level1.parquet": rand_bytes(700, 2),
        "data/train/a.tif": rand_bytes(20000, 3),
        "data/val/b.tif": rand_bytes(9000, 4),
        "data/val/c.tif": rand_bytes(1, 5),
        "data/test/d.tif": rand_bytes(4444, 6),
    }
    for name, data in files.items():
        write_file(root / name, data)
    return root, files


def names_in(root, files):
    """FILE --as NAME arguments in a fixed order."""
    args = []
    for name in files:
        args += [root / name, "--as", name]
    return args


ENTRIES = ["-e", "data:METADATA/level0.parquet", "-e", "data:METADATA/level1.parquet", "-e", "span:data/val/",
           "-e", "members:data/train/a.tif,data/test/d.tif", "-e", "directory", "-e", "7:9",
           "-e", "data:COLLECTION.json"]


def header_entries(tz, path):
    return [list(e) for e in tz.header(path)["entries"]]


def expected(path):
    lay = layout(path)
    size = os.path.getsize(path)
    val = [lay[n] for n in lay if n.startswith("data/val/")]
    two = [lay["data/train/a.tif"], lay["data/test/d.tif"]]
    with open(path, "rb") as f:
        data = f.read()
    eocd = data.rfind(b"PK\x05\x06")
    (cd_off,) = struct.unpack_from("<I", data, eocd + 16)
    return [
        [lay["METADATA/level0.parquet"][1], lay["METADATA/level0.parquet"][2]],
        [lay["METADATA/level1.parquet"][1], lay["METADATA/level1.parquet"][2]],
        [min(v[0] for v in val), max(v[1] + v[2] for v in val) - min(v[0] for v in val)],
        [min(v[0] for v in two), max(v[1] + v[2] for v in two) - min(v[0] for v in two)],
        [cd_off, size - cd_off],
        [7, 9],
        [lay["COLLECTION.json"][1], lay["COLLECTION.json"][2]],
    ]


@pytest.mark.parametrize("extra", [[], ["--align", "4096"], ["--index"], ["--index", "--align", "512"]])
def test_entries_by_name_resolved(tz, tree, tmp_path, extra):
    root, files = tree
    out = tmp_path / "o.taco"
    tz.ok("create", out, *names_in(root, files), *ENTRIES, "--mtime", "1700000000", *extra)
    assert header_entries(tz, out) == expected(out)
    assert tz("validate", "--level", "deep", out).returncode == 0
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
    # the span of data/val/ decodes to exactly those members
    off, length = tz.ok("span", out, "--prefix", "data/val/").decode().strip().split(":")
    assert [int(off), int(length)] == expected(out)[2]




@pytest.mark.parametrize("extra", [[], ["--align", "4096"], ["--index"]])
def test_plan_equals_what_is_written(tz, tree, tmp_path, extra):
    root, files = tree
    out = tmp_path / "o.taco"
    plan = json.loads(tz.ok("create", out, *names_in(root, files), *ENTRIES, "--plan", "--json", *extra))
    assert not out.exists()  # --plan writes nothing
    assert list(os.listdir(tmp_path)) == ["ds"]
    tz.ok("create", out, *names_in(root, files), *ENTRIES, *extra)
    lay = layout(out)
    assert [m["name"] for m in plan["members"]] == list(files)
    for m in plan["members"]:
        assert (m["header_offset"], m["data_offset"], m["size"]) == lay[m["name"]]
    assert plan["entries"] == header_entries(tz, out) == expected(out)
    assert plan["directory_offset"] == expected(out)[4][0]
    # the text form says the same
    text = tz.ok("create", out, *names_in(root, files), *ENTRIES, "--plan", *extra).decode()
    for k, (o, n) in enumerate(plan["entries"]):
        assert "entry %d: %d:%d" % (k, o, n) in text


def test_plan_matches_tacotoolbox_prediction(tz, tree, tmp_path):
    """The default layout: data offset of member i = 157 + sum of (30 +
    name + size) of the ones before."""
    root, files = tree
    plan = json.loads(tz.ok("create", tmp_path / "o.taco", *names_in(root, files), "--plan", "--json"))
    pos = 157
    for m, (name, data) in zip(plan["members"], files.items()):
        assert m["header_offset"] == pos and m["data_offset"] == pos + 30 + len(name)
        pos += 30 + len(name) + len(data)
    assert plan["entries"] == [[0, 0]]


@pytest.mark.parametrize("entry,message", [
    ("data:nope.bin", 'header entry 0 names "nope.bin", which is not a member'),
    ("span:nope/", 'header entry 0: no member name starts with "nope/"'),
    ("members:COLLECTION.json,nope", 'header entry 0 names "nope", which is not a member'),
])
def test_unknown_member_is_refused_before_writing(tz, tree, tmp_path, entry, message):
    root, files = tree
    out = tmp_path / "o.taco"
    write_file(out, b"old archive")
    r = tz("create", out, *names_in(root, files), "-e", entry)
    assert r.returncode == EXIT_FAIL, r.stderr
    assert message.encode() in r.stderr and str(out).encode() in r.stderr
    assert out.read_bytes() == b"old archive"
    assert sorted(os.listdir(tmp_path)) == ["ds", "o.taco"]
    # --plan says the same, with the same status
    r = tz("create", out, *names_in(root, files), "-e", entry, "--plan")
    assert r.returncode == EXIT_FAIL and message.encode() in r.stderr


@pytest.mark.parametrize("args,message", [
    (["-e", "data:"], "names no member"),
    (["-e", "members:a,,b"], "empty member name"),
    (["-e", "bogus"], "is not OFFSET:LENGTH"),
    (["--json"], "--json goes with --plan"),
    (["--part-size", "1000"], "--part-size must be from 5 MiB to 5 GiB"),
    (["--upload-parallel", "0"], "--upload-parallel must be from 1 to 32"),
] + [(["-e", "0:0"] * 8, "at most 7 entries")])
def test_usage_errors(tz, tree, tmp_path, args, message):
    root, files = tree
    out = tmp_path / "o.taco"
    r = tz("create", out, root / "COLLECTION.json", *args)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert message.encode() in r.stderr
    assert not out.exists()


def test_stdin_member(tz, tree, tmp_path):
    root, files = tree
    out = tmp_path / "s.taco"
    blob = rand_bytes(3 << 20, 9)
    r = tz("create", out, root / "COLLECTION.json", "--as", "COLLECTION.json", "-", "--as", "stream/blob.bin",
           "-e", "data:stream/blob.bin", "-e", "span:stream/", input=blob)
    assert r.returncode == 0, r.stderr
    lay = layout(out)
    with zipfile.ZipFile(out) as z:
        assert z.read("stream/blob.bin") == blob and z.testzip() is None
    assert header_entries(tz, out) == [[lay["stream/blob.bin"][1], len(blob)],
                                       [lay["stream/blob.bin"][0], lay["stream/blob.bin"][1] - lay["stream/blob.bin"][0] + len(blob)]]
    assert tz("validate", "--level", "deep", out).returncode == 0
    # the layout is the default one: no data descriptor, sizes in the local header
    with open(out, "rb") as f:
        f.seek(lay["stream/blob.bin"][0])
        lfh = f.read(30)
    flags, = struct.unpack_from("<H", lfh, 6)
    csize, usize = struct.unpack_from("<II", lfh, 18)
    assert flags & 8 == 0 and csize == usize == len(blob)


@pytest.mark.parametrize("args,message", [
    (["-"], "needs --as NAME"),
    (["-", "--as", "a", "-", "--as", "b"], "may be given once"),
    (["-", "--as", "a", "--plan"], "--plan needs every size"),
    (["-", "--as", "a", "--index"], "--index needs every size"),
])
def test_stdin_usage_errors(tz, tmp_path, args, message):
    out = tmp_path / "s.taco"
    r = tz("create", out, *args, input=b"data")
    assert r.returncode == EXIT_USAGE, r.stderr
    assert message.encode() in r.stderr
    assert not out.exists()


def test_stdin_spooled_to_tmpdir_leaves_nothing(tz, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    out = tmp_path / "s.taco"
    blob = rand_bytes((64 << 20) + 12345, 11)  # past the 64 MiB held in memory
    env = dict(os.environ, TMPDIR=str(spool))
    r = tz("create", out, "-", "--as", "big.bin", "--no-fsync", input=blob, env=env)
    assert r.returncode == 0, r.stderr
    assert os.listdir(spool) == []
    with zipfile.ZipFile(out) as z:
        assert z.getinfo("big.bin").file_size == len(blob)
        assert z.read("big.bin") == blob


def test_stdin_spool_dir_missing(tz, tmp_path):
    out = tmp_path / "s.taco"
    env = dict(os.environ, TMPDIR=str(tmp_path / "missing"))
    r = tz("create", out, "-", "--as", "big.bin", input=rand_bytes((64 << 20) + 1, 12), env=env)
    assert r.returncode == EXIT_FAIL, r.stderr
    assert b"cannot create a spool file in" in r.stderr and b"missing" in r.stderr
    assert sorted(os.listdir(tmp_path)) == []


def test_zarr_entry_is_the_metadata_span(tz, tmp_path):
    """create --zarr: entry 0 covers the metadata documents exactly, also
    with --index (resolved before the write, no update pass)."""
    src = tmp_path / "store.zarr"
    write_file(src / "zarr.json", b'{"zarr_format": 3, "node_type": "group"}')
    write_file(src / "a" / "zarr.json", b'{"zarr_format": 3, "node_type": "array"}')
    write_file(src / "a" / "c" / "0", rand_bytes(5000, 1))
    write_file(src / "a" / "c" / "1", rand_bytes(5000, 2))
    for extra in ([], ["--index"], ["--align", "4096"]):
        out = tmp_path / ("z%d.taco" % len(extra))
        tz.ok("create", "--zarr", src, out, *extra)
        lay = layout(out)
        meta = [lay["zarr.json"], lay["a/zarr.json"]]
        lo = min(m[0] for m in meta)
        assert header_entries(tz, out)[0] == [lo, max(m[1] + m[2] for m in meta) - lo]


@pytest.mark.noproc
def test_stdin_spool_space_runs_out(tz, tmp_path):
    """A spool directory on a 1 MiB filesystem: standard input past the
    64 MiB held in memory fails with ENOSPC's message, exit 1, and leaves
    nothing (no archive, nothing in the spool filesystem)."""
    import shutil
    assert shutil.which("unshare") and os.geteuid() == 0, "needs root and unshare(1)"
    spool = tmp_path / "spool"
    spool.mkdir()
    out = tmp_path / "s.taco"
    script = ('mount -t tmpfs -o size=1m none "$1" && TMPDIR="$1" "$2" create "$3" - --as big.bin; s=$?; '
              'ls -A "$1"; exit $s')
    r = tz.__class__("unshare")("-m", "sh", "-c", script, "sh", spool, tz.path, out,
                                input=rand_bytes((64 << 20) + 4096, 13))
    assert r.returncode == EXIT_FAIL, r.stderr
    assert b"spool file in" in r.stderr and b"No space left on device" in r.stderr
    assert r.stdout == b""  # the spool filesystem was empty at the end
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["spool"]


def test_stdin_killed_mid_stream_leaves_nothing(tz, tmp_path):
    """kill -9 while standard input is being read (spooled to a file past
    the memory limit) and while the archive is written: no archive, no
    temporary file, no spool file."""
    import signal
    import subprocess
    import time
    spool = tmp_path / "spool"
    spool.mkdir()
    out = tmp_path / "s.taco"
    env = dict(os.environ, TMPDIR=str(spool))
    p = subprocess.Popen([tz.path, "create", out, "-", "--as", "big.bin"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    chunk = rand_bytes(1 << 20, 14)
    for _ in range(80):  # 80 MiB: past the 64 MiB held in memory
        p.stdin.write(chunk)
    p.stdin.flush()
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    p.stdin.close()
    assert os.listdir(spool) == []
    assert sorted(os.listdir(tmp_path)) == ["spool"]
