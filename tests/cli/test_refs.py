"""tacozip refs: kerchunk reference sets from the command (issue 10, item 1).

The expected set is computed from ``ls --json`` and the archive's bytes (an
independent parse of the local headers), never from the Python package
(not installed where these tests run); fsspec's ReferenceFileSystem (fsspec
is in this venv) reads every member through the references and gets the
original bytes."""
import json
import os
import struct
import subprocess
import zipfile

import pytest

from tzutil import rand_bytes, read_range, write_file

CONTENTS = {
    "a.txt": b"hello\n",
    "empty": b"",
    "dir/b.bin": rand_bytes(5000, 1),
    "dir/sub/\u00fc.dat": rand_bytes(70000, 2),
    "big.raw": rand_bytes(300000, 3),
}
# names a JSON writer must escape, and bytes that are not UTF-8 (given to
# the command as surrogate escapes: the OS passes the raw bytes)
ODD = {
    'q"uote.txt': b"quote",
    "back\\slash.txt": b"backslash",
    "ctl\tx\n.txt": b"control characters",
    os.fsdecode(b"raw-\xff\xfe.bin"): b"not UTF-8",
    "\u65e5\u672c/\u8a9e.txt": b"CJK",
}


def _sources(tmp_path, contents):
    srcs, names = [], []
    for i, (name, data) in enumerate(contents.items()):
        srcs.append(write_file(tmp_path / "src" / ("f%d" % i), data))
        names.append(name)
    return srcs, names


def _create(tz, out, contents, tmp_path, *opts):
    srcs, names = _sources(tmp_path, contents)
    args = ["create", out, "--no-fsync"] + list(opts)
    for s, n in zip(srcs, names):
        args += [s, "--as", n]
    tz.ok(*args)
    return out


def _local_data_offset(path, header_offset):
    sig, nlen, xlen = struct.unpack("<I22xHH", read_range(path, header_offset, 30))
    assert sig == 0x04034B50
    return header_offset + 30 + nlen + xlen


def _expected(tz, path, url=None, prefix=""):
    """The reference set from ls --json, each offset checked against the
    local header in the file's bytes."""
    url = url or os.path.realpath(path)
    out = {}
    for m in tz.ls(path):
        name = m["name"]
        if name.endswith("/") or not name.startswith(prefix):
            continue
        assert m["offset"] == _local_data_offset(path, m["header_offset"])
        out[name[len(prefix):]] = [url, m["offset"], m["size"]]
    return {"version": 1, "refs": out}


def _refs(tz, *args):
    return json.loads(tz.ok("refs", *args))


def _read_all(refs, contents, prefix=""):
    """Every member through fsspec's ReferenceFileSystem (fo given as a dict
    and as a JSON file) equals its original bytes."""
    import fsspec

    fs = fsspec.filesystem("reference", fo=refs)
    for name, data in contents.items():
        if name.startswith(prefix):
            assert fs.cat_file(name[len(prefix):]) == data, name
    return fs


LAYOUTS = {"default": (), "align4096": ("--align", "4096"), "index": ("--index",),
           "align-index": ("--index", "--align", "512")}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_refs_equal_ls_and_bytes(tz, tmp_path, layout):
    arc = _create(tz, tmp_path / "a.taco", CONTENTS, tmp_path, *LAYOUTS[layout])
    got = _refs(tz, arc)
    assert got == _expected(tz, arc)
    assert set(got["refs"]) >= set(CONTENTS) | {"TACO_HEADER"}
    fs = _read_all(got, CONTENTS)
    assert fs.cat_file("TACO_HEADER")[:1] == b"\x01"  # the header payload: one entry (0, 0)
    if "--align" in LAYOUTS[layout]:
        align = int(LAYOUTS[layout][LAYOUTS[layout].index("--align") + 1])
        assert all(v[1] % align == 0 for k, v in got["refs"].items() if k in CONTENTS)


def test_refs_output_file_json_and_fsspec_from_path(tz, tmp_path):
    import fsspec

    arc = _create(tz, tmp_path / "a.taco", CONTENTS, tmp_path, "--align", "4096")
    out = tmp_path / "refs.json"
    assert tz.ok("refs", arc, "-o", out) == b""
    got = json.loads(out.read_text())
    assert got == _expected(tz, arc)
    fs = fsspec.filesystem("reference", fo=str(out), remote_protocol="file")
    for name, data in CONTENTS.items():
        assert fs.cat_file(name) == data
    # --output=OUT, and -oOUT, replace the file
    tz.ok("refs", arc, "--url", "file:///x.taco", "--output=%s" % out)
    assert json.loads(out.read_text())["refs"]["a.txt"][0] == "file:///x.taco"
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_refs_url_and_prefix(tz, tmp_path):
    arc = _create(tz, tmp_path / "a.taco", CONTENTS, tmp_path)
    url = "https://example.org/data/a.taco"
    got = _refs(tz, arc, "--url", url, "--prefix", "dir")
    assert got == _expected(tz, arc, url=url, prefix="dir/")
    assert sorted(got["refs"]) == ["b.bin", "sub/\u00fc.dat"]
    assert _refs(tz, arc, "--url", url, "--prefix=dir/") == got
    assert list(_refs(tz, arc, "--prefix", "dir/sub")["refs"]) == ["\u00fc.dat"]
    r = tz("refs", arc, "--prefix", "nothing")
    assert r.returncode == 1 and b'no member under "nothing/"' in r.stderr


def test_refs_names_escaped_losslessly(tz, tmp_path):
    import fsspec

    # create refuses a backslash in a name (unsafe on extraction): written
    # as "back_slash.txt", then patched in the local and central headers
    arc = _create(tz, tmp_path / "odd.taco", {k.replace("\\", "_"): v for k, v in ODD.items()}, tmp_path)
    data = arc.read_bytes()
    assert data.count(b"back_slash.txt") == 2
    arc.write_bytes(data.replace(b"back_slash.txt", b"back\\slash.txt"))
    raw = tz.ok("refs", arc)
    raw.decode("utf-8")  # valid UTF-8 text (bytes that are not UTF-8 are \\udcXX escapes)
    got = json.loads(raw)
    assert got == _expected(tz, arc)
    names = [n.encode("utf-8", "surrogateescape") for n in got["refs"]]
    assert b"raw-\xff\xfe.bin" in names and b'q"uote.txt' in names and b"ctl\tx\n.txt" in names
    fs = fsspec.filesystem("reference", fo=got)
    for name, data in ODD.items():
        assert fs.cat_file(name) == data
    out = tmp_path / "odd.json"
    tz.ok("refs", arc, "-o", out)
    fs = fsspec.filesystem("reference", fo=str(out))  # fsspec's own JSON reader (ujson)
    for name, data in ODD.items():
        assert fs.cat_file(name) == data


def _zip(path, compressed=("c.txt",), encrypted_flag=()):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("s.txt", b"stored " * 100, compress_type=zipfile.ZIP_STORED)
        for n in compressed:
            zf.writestr(n, b"compressed " * 100, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("d/", b"")  # a directory entry: left out
        zf.writestr("d/t.txt", b"in a directory", compress_type=zipfile.ZIP_STORED)
    return path


def test_refs_zipfile_archive_stored_members(tz, tmp_path):
    arc = _zip(tmp_path / "z.zip", compressed=())
    got = _refs(tz, arc)
    assert sorted(got["refs"]) == ["d/t.txt", "s.txt"]  # no TACO_HEADER, no directory entry
    assert got == _expected(tz, arc)
    _read_all(got, {"s.txt": b"stored " * 100, "d/t.txt": b"in a directory"})


def test_refs_zip0_archive(tz, tmp_path, tools):
    zip_bin = tools("zip")
    src = tmp_path / "zsrc"
    for name, data in CONTENTS.items():
        write_file(src / name, data)
    arc = tmp_path / "z0.zip"
    subprocess.run([zip_bin, "-0", "-r", "-q", "-X", str(arc), "."], cwd=src, check=True)
    got = _refs(tz, arc)
    assert got == _expected(tz, arc)
    _read_all(got, CONTENTS)


def test_refs_compressed_member_is_an_error_naming_it(tz, tmp_path):
    arc = _zip(tmp_path / "c.zip", compressed=("c.txt", "e\u0301.txt"))
    out = tmp_path / "refs.json"
    r = tz("refs", arc, "-o", out)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert 'member "c.txt" cannot be referenced: compressed (method 8)' in err, err
    assert 'member "e\u0301.txt" cannot be referenced' in err and "2 members cannot be referenced" in err, err
    assert "s.txt" not in err
    assert r.stdout == b"" and not out.exists()
    assert list(tmp_path.glob("refs.json*")) == []
    # a prefix that leaves them out references the rest
    assert sorted(_refs(tz, arc, "--prefix", "d")["refs"]) == ["t.txt"]


def test_refs_encrypted_flag_is_an_error(tz, tmp_path):
    arc = _zip(tmp_path / "e.zip", compressed=())
    data = bytearray(arc.read_bytes())
    # set bit 0 (encrypted) of s.txt's flags in its local and central headers
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        i = data.find(sig)
        flag_at = i + (6 if sig == b"PK\x03\x04" else 8)
        data[flag_at] |= 1
    arc.write_bytes(bytes(data))
    r = tz("refs", arc)
    assert r.returncode == 1 and b'member "s.txt" cannot be referenced: encrypted' in r.stderr, r


def test_refs_bad_input(tz, tmp_path):
    r = tz("refs", tmp_path / "missing.taco")
    assert r.returncode == 1 and b"missing.taco" in r.stderr and r.stdout == b""
    notzip = write_file(tmp_path / "not.taco", b"this is not a zip archive" * 40)
    r = tz("refs", notzip)
    assert r.returncode == 1 and b"not.taco" in r.stderr and r.stdout == b""
    arc = _create(tz, tmp_path / "a.taco", CONTENTS, tmp_path)
    for bad in (["--bogus"], ["-x"], ["--url"], ["--format", "xml"], ["--url", "a", "--url", "b"], []):
        r = tz("refs", *([arc] if bad != [] else []), *bad)
        assert r.returncode == 2, (bad, r)
        assert b"see 'tacozip refs --help'" in r.stderr, (bad, r.stderr)
    r = tz("refs", arc, "--format", "parquet", "-o", tmp_path / "p")
    assert r.returncode == 2 and b"python -m tacozip.refs" in r.stderr and b"--format parquet" in r.stderr, r
    assert not (tmp_path / "p").exists()
    assert tz.ok("refs", arc, "--format", "json") == tz.ok("refs", arc)
    # an output that cannot be written: exit 1, nothing left
    r = tz("refs", arc, "-o", tmp_path / "no-such-dir" / "r.json")
    assert r.returncode == 1 and b"no-such-dir" in r.stderr
    assert b"refs ARCHIVE" in tz.ok("help") and b"--prefix P" in tz.ok("refs", "--help")


def test_refs_atomic_output_keeps_old_file_on_failure(tz, tmp_path):
    arc = _zip(tmp_path / "c.zip")
    out = write_file(tmp_path / "refs.json", b"old contents")
    r = tz("refs", arc, "-o", out)
    assert r.returncode == 1
    assert out.read_bytes() == b"old contents"
    # a full disk is simulated by a size limit: the write fails, OUT keeps its bytes
    import resource

    big = {"m%05d" % i: b"" for i in range(3000)}
    arc2 = _create(tz, tmp_path / "many.taco", big, tmp_path)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = tz("refs", arc2, "-o", out, preexec_fn=limit)
    assert r.returncode == 1, r
    assert out.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("refs.json")) == ["refs.json"]


def test_refs_json_layout_one_member_per_line(tz, tmp_path):
    arc = _create(tz, tmp_path / "a.taco", CONTENTS, tmp_path)
    lines = tz.ok("refs", arc).decode().splitlines()
    assert lines[0] == '{"version": 1, "refs": {' and lines[-1] == "}}"
    assert len(lines) == 2 + len(CONTENTS) + 1  # + TACO_HEADER
