"""tacozip create --zarr DIR OUT: a Zarr directory store packed as a zipped
Zarr (member order of the OME-Zarr single-file proposal, RFC-9), header
entry 0 = the metadata block, a valid TACO archive that Python's zipfile
reads; bad input refused before anything is written.

The Zarr stores here are written by hand (zarr.json documents and chunk
files are JSON and bytes): neither zarr nor the tacozip package is needed."""
import json
import os
import socket
import zipfile

import pytest

from tzutil import PAYLOAD_OFFSET, TACO_HEADER_SIZE, header_payload, parse_zip, rand_bytes

META = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")


def _array_json(shape, chunks):
    return {"zarr_format": 3, "node_type": "array", "shape": list(shape), "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0, "codecs": [{"name": "bytes"}], "attributes": {}}


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return path


def make_v3_store(root):
    """root/ (group) with arrays "b/x" (2x2 chunks of 4x4) and "a" (3 chunks
    of 4), subgroup "b", an extra .zattrs-like file at depth 2 and an
    unrelated file: deterministic content."""
    files = {}
    _write(root / "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": {"title": "t"}})
    _write(root / "b" / "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": {}})
    _write(root / "b" / "x" / "zarr.json", _array_json((8, 8), (4, 4)))
    _write(root / "a" / "zarr.json", _array_json((12,), (4,)))
    for i in range(2):
        for j in range(2):
            files[f"b/x/c/{i}/{j}"] = _write(root / "b" / "x" / "c" / str(i) / str(j), rand_bytes(16, seed=10 * i + j))
    for i in range(3):
        files[f"a/c/{i}"] = _write(root / "a" / "c" / str(i), rand_bytes(4, seed=100 + i))
    return root


def expected_order(names):
    def meta_key(n):
        d, _, b = n.rpartition("/")
        return (n.count("/"), d, META.index(b))
    meta = sorted((n for n in names if n.rsplit("/", 1)[-1] in META), key=meta_key)
    rest = sorted((n for n in names if n.rsplit("/", 1)[-1] not in META), key=lambda n: n.encode())
    return meta + rest


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root).replace(os.sep, "/")] = open(p, "rb").read()
    return out


@pytest.fixture
def store(tmp_path):
    return make_v3_store(tmp_path / "img.zarr")


def test_order_names_and_header_entry(tz, tmp_path, store):
    out = tmp_path / "img.taco"
    tz.ok("create", "--zarr", store, out, "--no-fsync")
    members = tz.ls(out)
    names = [m["name"] for m in members]
    assert names[0] == "TACO_HEADER"
    want = tree(store)
    assert names[1:] == expected_order(want)
    # the root document first (the entry point), metadata breadth first, then chunks
    assert names[1:5] == ["zarr.json", "a/zarr.json", "b/zarr.json", "b/x/zarr.json"]
    assert names[5:] == ["a/c/0", "a/c/1", "a/c/2", "b/x/c/0/0", "b/x/c/0/1", "b/x/c/1/0", "b/x/c/1/1"]
    # no member name starts with the directory's own name
    assert not any(n.startswith("img.zarr") for n in names)
    # entry 0: from the first metadata local header to the end of the last metadata data
    meta = [m for m in members if m["name"].rsplit("/", 1)[-1] in META]
    start = meta[0]["header_offset"]
    end = meta[-1]["offset"] + meta[-1]["size"]
    hdr = tz.header(out)
    assert hdr["count"] == 1 and hdr["entries"] == [[start, end - start]]
    assert start == TACO_HEADER_SIZE
    # span says the same
    assert tz.ok("span", out, *[m["name"] for m in meta]).decode().strip() == f"{start}:{end - start}"
    # the first chunk's local header starts right where the block ends
    assert members[len(meta) + 1]["header_offset"] == end
    # the bytes of the block are the local headers + documents
    blob = out.read_bytes()[start:end]
    for m in meta:
        rel = m["header_offset"] - start
        assert blob[rel:rel + 4] == b"PK\x03\x04"
        assert blob[m["offset"] - start:m["offset"] - start + m["size"]] == want[m["name"]]
    tz.ok("validate", out, "--level", "deep")
    # Python's zipfile: same names, same bytes, STORED
    with zipfile.ZipFile(out) as z:
        assert z.namelist()[1:] == names[1:]
        for info in z.infolist()[1:]:
            assert info.compress_type == zipfile.ZIP_STORED
            assert z.read(info) == want[info.filename]
        assert z.testzip() is None


def test_deterministic_and_trailing_slash(tz, tmp_path, store):
    a, b = tmp_path / "a.taco", tmp_path / "b.taco"
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    tz.ok("create", "--zarr", str(store) + "/", a, "--no-fsync", env=env)
    tz.ok("create", b, "--no-fsync", "--zarr", store, env=env)
    assert a.read_bytes() == b.read_bytes()


def test_v2_store_order(tz, tmp_path):
    root = tmp_path / "v2.zarr"
    _write(root / ".zgroup", {"zarr_format": 2})
    _write(root / ".zattrs", {"k": 1})
    _write(root / ".zmetadata", {"zarr_consolidated_format": 1, "metadata": {}})
    _write(root / "t" / ".zarray", {"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "|u1",
                                    "compressor": None, "fill_value": 0, "order": "C", "filters": None})
    _write(root / "t" / ".zattrs", {"_ARRAY_DIMENSIONS": ["x"]})
    _write(root / "t" / "0", b"\x01\x02")
    _write(root / "t" / "1", b"\x03\x04")
    out = tmp_path / "v2.taco"
    tz.ok("create", "--zarr", root, out, "--no-fsync")
    names = [m["name"] for m in tz.ls(out)][1:]
    assert names == [".zgroup", ".zattrs", ".zmetadata", "t/.zarray", "t/.zattrs", "t/0", "t/1"]
    tz.ok("validate", out, "--level", "deep")


def test_user_entries_align_index(tz, tmp_path, store):
    out = tmp_path / "e.taco"
    tz.ok("create", "--zarr", store, out, "-e", "5:6", "-e", "7:8", "--no-fsync")
    assert tz.header(out)["entries"] == [[5, 6], [7, 8]]
    for extra in (["--align", "4096"], ["--index"], ["--align", "512", "--index"]):
        out = tmp_path / ("x%d.taco" % len(extra))
        tz.ok("create", "--zarr", store, out, *extra, "--no-fsync")
        members = tz.ls(out)
        meta = [m for m in members if m["name"].rsplit("/", 1)[-1] in META]
        start, end = meta[0]["header_offset"], meta[-1]["offset"] + meta[-1]["size"]
        assert tz.header(out)["entries"] == [[start, end - start]], extra
        if "--align" in extra:
            n = int(extra[extra.index("--align") + 1])
            assert all(m["offset"] % n == 0 for m in members[1:] if m["name"] != "TACO_INDEX")
        tz.ok("validate", out, "--level", "deep")
        # the span alone holds every metadata document (a header-only client reads just it)
        blob = out.read_bytes()[start:end]
        for m in meta:
            assert blob[m["offset"] - start:][:m["size"]] == (store / m["name"]).read_bytes()


def test_replaces_existing_and_leaves_no_temporary(tz, tmp_path, store):
    out = tmp_path / "r.taco"
    out.write_bytes(b"old")
    out.chmod(0o640)
    tz.ok("create", "--zarr", store, out, "--no-fsync")
    tz.ok("validate", out, "--level", "deep")
    assert sorted(os.listdir(tmp_path)) == ["img.zarr", "r.taco"]
    assert out.stat().st_mode & 0o7777 == 0o640  # the replaced file's mode, as create keeps it
    new = tmp_path / "n.taco"
    tz.ok("create", "--zarr", store, new, "--no-fsync")
    um = os.umask(0)
    os.umask(um)
    assert new.stat().st_mode & 0o7777 == 0o666 & ~um  # a new file's mode (not a temporary file's 0600)


def test_help_mentions_zarr(tz):
    text = tz.ok("create", "--help").decode()
    assert "--zarr DIR" in text and "RFC-9" in text


# --------------------------------------------------------------------------- bad input

def _refused(tz, tmp_path, src, *words):
    out = tmp_path / "bad.taco"
    before = sorted(os.listdir(tmp_path))
    r = tz("create", "--zarr", src, out, "--no-fsync")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 1, (r.returncode, err)
    for w in words:
        assert w in err, err
    assert "nothing written" in err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == before  # no temporary either
    return err


def test_bad_symlink_loop(tz, tmp_path, store):
    os.symlink("..", store / "b" / "up")  # b/up -> the store root: a loop
    _refused(tz, tmp_path, store, "b/up", "symbolic link loop")


def test_bad_self_symlink(tz, tmp_path, store):
    os.symlink("self", store / "self")
    _refused(tz, tmp_path, store, "self", "symbolic link loop")


def test_bad_broken_symlink(tz, tmp_path, store):
    os.symlink("nowhere", store / "dangling")
    _refused(tz, tmp_path, store, "dangling", "broken symbolic link")


def test_symlinks_followed(tz, tmp_path, store):
    """A link to a file or to a directory elsewhere is followed (stored as
    the file's bytes)."""
    other = tmp_path / "elsewhere"
    _write(other / "0", b"linked")
    os.symlink(other, store / "a" / "linked")
    os.symlink(store / "a" / "c" / "0", store / "a" / "c0")
    out = tmp_path / "l.taco"
    tz.ok("create", "--zarr", store, out, "--no-fsync")
    with zipfile.ZipFile(out) as z:
        assert z.read("a/linked/0") == b"linked"
        assert z.read("a/c0") == (store / "a" / "c" / "0").read_bytes()


def test_bad_non_utf8_name(tz, tmp_path, store):
    bad = os.fsencode(str(store / "a" / "c")) + b"/\xff\xfe"
    with open(bad, "wb") as f:
        f.write(b"x")
    err = _refused(tz, tmp_path, store, "not UTF-8")
    assert "\\xff\\xfe" in err


def test_bad_fifo(tz, tmp_path, store):
    os.mkfifo(store / "a" / "c" / "pipe")
    _refused(tz, tmp_path, store, "pipe", "not a regular file")


def test_bad_socket(tz, tmp_path, store):
    s = socket.socket(socket.AF_UNIX)
    try:
        path = store / "sock"
        s.bind(str(path))
        _refused(tz, tmp_path, store, "sock", "not a regular file")
    finally:
        s.close()


def test_bad_not_a_zarr_store(tz, tmp_path):
    d = tmp_path / "plain"
    _write(d / "sub" / "zarr.json", {"zarr_format": 3, "node_type": "group"})  # not at the root
    _write(d / "data.bin", b"1")
    _refused(tz, tmp_path, d, "not a Zarr store")


def test_bad_not_a_directory(tz, tmp_path):
    f = _write(tmp_path / "file.bin", b"1")
    _refused(tz, tmp_path, f, "not a directory")
    _refused(tz, tmp_path, tmp_path / "missing", "No such file")


def test_bad_internal_name(tz, tmp_path, store):
    _write(store / "TACO_HEADER", b"x")
    _refused(tz, tmp_path, store, "TACO_HEADER", "clashes")


def test_bad_existing_output_kept(tz, tmp_path, store):
    out = tmp_path / "keep.taco"
    out.write_bytes(b"precious")
    os.mkfifo(store / "pipe")
    r = tz("create", "--zarr", store, out, "--no-fsync")
    assert r.returncode == 1
    assert out.read_bytes() == b"precious"


def test_usage_errors(tz, tmp_path, store):
    out = tmp_path / "u.taco"
    for extra in (["other.bin"], ["-T", "-"], ["--zarr", store]):
        r = tz("create", "--zarr", store, out, *extra)
        assert r.returncode == 2, (extra, r.stderr)
    r = tz("create", out, "--zarr")
    assert r.returncode == 2
    assert not out.exists()


def test_independent_parse(tz, tmp_path, store):
    """tzutil's own ZIP parser (local headers too) and the raw header bytes
    agree with ls and header."""
    out = tmp_path / "p.taco"
    tz.ok("create", "--zarr", store, out, "--no-fsync")
    parsed = parse_zip(out)
    members = tz.ls(out)
    assert [e.name for e in parsed.entries] == [m["name"] for m in members]
    assert all(e.method == 0 for e in parsed.entries)
    for e, m in zip(parsed.entries, members):
        assert e.header_offset == m["header_offset"] and e.local.data_offset == m["offset"]
    entries = tz.header(out)["entries"]
    raw = out.read_bytes()[PAYLOAD_OFFSET:PAYLOAD_OFFSET + 116]
    assert raw == header_payload([tuple(x) for x in entries])
