"""ZIP64 archives written by the command are the same bytes as the original
tacozip's (PyPI 0.13.0, the peer venv) apart from the DOS time/date fields,
as the small archives are (tests/package/test_dropin.py): 65,536 members, so
that the count needs the ZIP64 end record and locator.  Nothing is masked but
the DOS times.  (A 4 GiB member, for ZIP64 sizes and offsets, would write
8 GiB and take about a minute here: tests/cli/test_zip64.py covers those
records against zipfile, unzip and 7z instead.)"""
import json
import os
import struct

ENTRIES = [(157, 10)]  # no (0, 0) pair: the original drops those from the count (README)


def _u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def _u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def _u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def _read(f, off, n):
    f.seek(off)
    return f.read(n)


def dos_time_fields(path):
    """Offsets of the 4-byte DOS time+date of every local and central
    header, found through the (ZIP64) end records and the directory."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        tail = _read(f, max(0, size - 65557), 65557)
        base = size - len(tail)
        e = tail.rfind(b"PK\x05\x06")
        assert e >= 0, "no end of central directory record"
        count, cd_size, cd_off = _u16(tail, e + 10), _u32(tail, e + 12), _u32(tail, e + 16)
        loc = e - 20
        if loc >= 0 and tail[loc:loc + 4] == b"PK\x06\x07":
            z = _read(f, _u64(tail, loc + 8), 56)
            assert z[:4] == b"PK\x06\x06", "ZIP64 locator does not point at a ZIP64 end record"
            count, cd_size, cd_off = _u64(z, 32), _u64(z, 40), _u64(z, 48)
        cd = _read(f, cd_off, cd_size)
    fields, pos = [], 0
    for _ in range(count):
        assert cd[pos:pos + 4] == b"PK\x01\x02", pos
        fields.append(cd_off + pos + 12)
        csize, usize, nlen, xlen, clen = _u32(cd, pos + 20), _u32(cd, pos + 24), _u16(cd, pos + 28), \
            _u16(cd, pos + 30), _u16(cd, pos + 32)
        lho = _u32(cd, pos + 42)
        if lho == 0xFFFFFFFF:  # ZIP64 extra field: usize, csize, offset, in that order, when saturated
            x = pos + 46 + nlen
            end = x + xlen
            while x + 4 <= end:
                tag, ln = _u16(cd, x), _u16(cd, x + 2)
                if tag == 1:
                    v = x + 4
                    v += 8 * (usize == 0xFFFFFFFF) + 8 * (csize == 0xFFFFFFFF)
                    lho = _u64(cd, v)
                x += 4 + ln
        fields.append(lho + 10)
        pos += 46 + nlen + xlen + clen
    assert pos == len(cd)
    return sorted(fields)


def compare_masked(ours, theirs, chunk=16 << 20):
    """Byte offsets (at most 40) where the two files differ outside their
    DOS time/date fields, with both values; [] when they are the same."""
    fo, ft = dos_time_fields(ours), dos_time_fields(theirs)
    assert fo == ft, "the two archives' headers are not at the same offsets"
    masked = set()
    for o in fo:
        masked.update(range(o, o + 4))
    diffs = []
    so, st = os.path.getsize(ours), os.path.getsize(theirs)
    if so != st:
        diffs.append(("size", so, st))
    with open(ours, "rb") as a, open(theirs, "rb") as b:
        off = 0
        while len(diffs) < 40:
            x, y = a.read(chunk), b.read(chunk)
            if not x and not y:
                break
            if x != y:
                for i in range(min(len(x), len(y))):
                    if x[i] != y[i] and off + i not in masked:
                        diffs.append((off + i, x[i], y[i]))
                        if len(diffs) >= 40:
                            break
            off += len(x)
    return diffs


def _describe(diffs, path):
    with open(path, "rb") as f:
        data = f.read()
    spots = {"PK\\x06\\x06 (ZIP64 end record)": data.rfind(b"PK\x06\x06"),
             "PK\\x06\\x07 (ZIP64 locator)": data.rfind(b"PK\x06\x07"),
             "PK\\x05\\x06 (end record)": data.rfind(b"PK\x05\x06")} if len(data) < (64 << 20) else {}
    return "differences outside the DOS times (offset, ours, original): %r; records in ours: %r" % (diffs, spots)


def test_65536_members_byte_identical(tz, peer, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    names, lines = [], []
    for i in range(65536):
        p = src / f"f{i:05d}"
        p.write_bytes(b"%d\n" % i)
        names.append(f"m/{i:05d}.txt")
        lines.append(f"{p}\t{names[-1]}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    ours, theirs = tmp_path / "ours.taco", tmp_path / "theirs.taco"
    args = [a for e in ENTRIES for a in ("-e", f"{e[0]}:{e[1]}")]
    tz.ok("create", ours, "-T", tmp_path / "list.txt", "--no-fsync", *args, timeout=300)
    # the arguments go through a file: 65,536 names do not fit on a command line
    spec = tmp_path / "peer.json"
    spec.write_text(json.dumps({"out": str(theirs), "src": [str(src / f"f{i:05d}") for i in range(65536)],
                                "names": names, "entries": ENTRIES}))
    peer.run("import sys, json, tacozip; a = json.load(open(sys.argv[1])); "
             "tacozip.create(a['out'], a['src'], arc_files=a['names'], entries=[tuple(e) for e in a['entries']])",
             spec)
    diffs = compare_masked(ours, theirs)
    assert not diffs, _describe(diffs, ours)
