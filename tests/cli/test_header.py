"""The TACO_HEADER member: entries round-trip, golden payload bytes, and the
in-place update touching exactly the payload and the two CRCs."""
import struct
import zipfile
import zlib

import pytest

from tzutil import header_payload, parse_zip, read_range, write_file

U64MAX = (1 << 64) - 1


@pytest.fixture
def srcs(tmp_path):
    return [write_file(tmp_path / "a.bin", b"alpha" * 100), write_file(tmp_path / "b.txt", b"beta\n")]


def create(tz, out, srcs, entries):
    args = []
    for o, l in entries:
        args += ["-e", "%d:%d" % (o, l)]
    tz.ok("create", out, *srcs, *args, "--no-fsync")


@pytest.mark.parametrize("entries", [
    [(157, 1000)],
    [(1, 2), (3, 4), (5, 6)],
    [(0, 0), (5, 6)],
    [(10, 20), (0, 0)],
    [(i * 1000, i + 1) for i in range(7)],
    [(U64MAX, U64MAX), (0, U64MAX), (U64MAX, 0)],
])
def test_entries_round_trip(tz, tmp_path, srcs, entries):
    out = tmp_path / "h.taco"
    create(tz, out, srcs, entries)
    h = tz.header(out)
    assert h["count"] == len(entries)
    assert [tuple(e) for e in h["entries"]] == entries
    # plain output: one "OFFSET LENGTH" line each
    text = tz.ok("header", out).decode()
    assert text.splitlines() == ["%d %d" % e for e in entries]
    # golden bytes: payload exactly as the format describes
    assert read_range(out, 41, 116) == header_payload(entries)
    assert struct.unpack("<I", read_range(out, 14, 4))[0] == zlib.crc32(header_payload(entries))


def test_zero_pair_counts(tz, tmp_path, srcs):
    """-e 0:0 -e 5:6 reads back as two entries (the peer would drop the
    (0,0) and return only [(0,0)]): count is stored as given."""
    out = tmp_path / "z.taco"
    create(tz, out, srcs, [(0, 0), (5, 6)])
    assert tz.header(out) == {"count": 2, "entries": [[0, 0], [5, 6]]}
    assert read_range(out, 41, 1) == b"\x02"


def test_default_header_is_one_zero_entry(tz, tmp_path, srcs):
    out = tmp_path / "d.taco"
    tz.ok("create", out, *srcs, "--no-fsync")
    assert tz.header(out) == {"count": 1, "entries": [[0, 0]]}
    assert read_range(out, 41, 116) == struct.pack("<B3x" + "QQ" * 7, 1, *([0] * 14))


def test_golden_payload_bytes(tz, tmp_path, srcs):
    entries = [(0x0102030405060708, 0x1112131415161718), (157, 42), (0, 1)]
    out = tmp_path / "g.taco"
    create(tz, out, srcs, entries)
    expect = struct.pack("<B3x" + "QQ" * 7, 3, 0x0102030405060708, 0x1112131415161718, 157, 42, 0, 1,
                         *([0] * 8))
    assert len(expect) == 116
    assert read_range(out, 41, 116) == expect
    # literally little-endian, reserved bytes zero
    raw = read_range(out, 41, 20)
    assert raw[:4] == b"\x03\x00\x00\x00"
    assert raw[4:12] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    # zipfile sees the payload as TACO_HEADER's content, CRC checked
    with zipfile.ZipFile(out) as zf:
        assert zf.read("TACO_HEADER") == expect


@pytest.mark.parametrize("bad", [["-e", "1:2"] * 8, ["-e", "18446744073709551616:0"], ["-e", "1-2"],
                                 ["-e", "-1:2"], ["-e", "1:"], ["-e", "x:1"]])
def test_bad_entries_are_usage_errors(tz, tmp_path, srcs, bad):
    out = tmp_path / "bad.taco"
    r = tz("create", out, *srcs, *bad)
    assert r.returncode == 2 and r.stderr and not out.exists()


def expected_after_update(before, cd_record_offset, entries):
    payload = header_payload(entries)
    crc = struct.pack("<I", zlib.crc32(payload))
    exp = bytearray(before)
    exp[41:157] = payload
    exp[14:18] = crc
    exp[cd_record_offset + 16:cd_record_offset + 20] = crc
    return bytes(exp)


@pytest.mark.parametrize("new", [[(157, 5000), (6000, 70)], [], [(0, 0)] * 7, [(U64MAX, 1)]])
def test_update_changes_exactly_payload_and_crcs(tz, tmp_path, srcs, new):
    out = tmp_path / "u.taco"
    create(tz, out, srcs, [(0, 0), (0, 0)])
    before = out.read_bytes()
    cd_rec = parse_zip(out).entries[0].record_offset
    args = []
    for o, l in new:
        args += ["-e", "%d:%d" % (o, l)]
    tz.ok("update", out, *args)
    after = out.read_bytes()
    assert after == expected_after_update(before, cd_rec, new)
    assert tz.header(out) == {"count": len(new), "entries": [list(e) for e in new]}
    tz.ok("validate", out, "--level", "deep")
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None


def test_update_twice_and_back(tz, tmp_path, srcs):
    out = tmp_path / "u2.taco"
    create(tz, out, srcs, [(1, 1)])
    original = out.read_bytes()
    tz.ok("update", out, "-e", "9:9", "-e", "8:8")
    tz.ok("update", out, "-e", "1:1")
    assert out.read_bytes() == original


def refused_unchanged(tz, path, *args):
    before = path.read_bytes()
    r = tz("update", path, "-e", "1:2", *args)
    assert r.returncode == 1, "update of %s should fail with exit status 1, not %d" % (path.name, r.returncode)
    assert r.stderr.strip(), "no message on stderr"
    assert path.read_bytes() == before


def test_update_refuses_non_taco(tz, tmp_path):
    zp = tmp_path / "plain.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("a.txt", b"hello world" * 20)
        zf.writestr("b.txt", b"x")
    refused_unchanged(tz, zp)
    txt = write_file(tmp_path / "notes.txt", b"just some text, not a zip at all\n" * 20)
    refused_unchanged(tz, txt)
    short = write_file(tmp_path / "short.bin", b"PK\x03\x04")
    refused_unchanged(tz, short)
    empty = write_file(tmp_path / "empty.taco", b"")
    refused_unchanged(tz, empty)


def test_update_refuses_zip_with_taco_header_not_first(tz, tmp_path):
    """A zipfile archive whose first member is a different file and whose
    TACO_HEADER comes second must be refused (the header is not at 0)."""
    zp = tmp_path / "reordered.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("first.txt", b"1")
        zf.writestr("TACO_HEADER", header_payload([(1, 2)]))
    refused_unchanged(tz, zp)


def test_update_refuses_truncated_taco(tz, tmp_path, srcs):
    """A real TACO header at 0 but no end record (cut archive): refused, unchanged."""
    out = tmp_path / "t.taco"
    create(tz, out, srcs, [(1, 2)])
    cut = write_file(tmp_path / "cut.taco", out.read_bytes()[:400])
    refused_unchanged(tz, cut)


def test_update_too_many_entries_is_usage_error(tz, tmp_path, srcs):
    out = tmp_path / "m.taco"
    create(tz, out, srcs, [(1, 2)])
    before = out.read_bytes()
    r = tz("update", out, *(["-e", "1:1"] * 8))
    assert r.returncode == 2 and r.stderr
    assert out.read_bytes() == before


def test_update_of_peer_archive(tz, peer, tmp_path, srcs):
    """We update an archive the peer wrote; the peer reads our entries."""
    out = tmp_path / "peer.taco"
    peer.create(out, srcs, ["a.bin", "b.txt"], [(0, 0), (0, 0)])
    before = out.read_bytes()
    cd_rec = parse_zip(out).entries[0].record_offset
    tz.ok("update", out, "-e", "157:10", "-e", "300:20")
    assert out.read_bytes() == expected_after_update(before, cd_rec, [(157, 10), (300, 20)])
    assert peer.read_header(out) == [(157, 10), (300, 20)]
