"""Helpers for the tacozip pytest suite: an independent ZIP parser written
with struct (so the tests never trust the code under test to describe its
own output), the tacotoolbox offset prediction, and small file utilities.
"""
import os
import random
import struct
import zlib
from dataclasses import dataclass, field
from typing import List, Optional

TACO_HEADER_SIZE = 157
PAYLOAD_OFFSET = 41
PAYLOAD_SIZE = 116
ZIP64_LIMIT = 0xFFFFFFFF

LFH_SIG = 0x04034B50
CDH_SIG = 0x02014B50
EOCD_SIG = 0x06054B50
Z64_EOCD_SIG = 0x06064B50
Z64_LOC_SIG = 0x07064B50

FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800


def predict_offsets(members):
    """tacotoolbox's prediction. members: list of (name, size).
    Returns the data offset of each member."""
    offsets = []
    pos = TACO_HEADER_SIZE
    for name, size in members:
        nlen = len(name.encode("utf-8"))
        extra = 20 if size >= ZIP64_LIMIT else 0
        offsets.append(pos + 30 + nlen + extra)
        pos += 30 + nlen + extra + size
    return offsets


def header_payload(entries, count=None):
    """The 116-byte payload as the format describes it (independent of the
    code under test)."""
    if count is None:
        count = len(entries)
    slots = list(entries) + [(0, 0)] * (7 - len(entries))
    flat = [v for pair in slots for v in pair]
    return struct.pack("<B3x" + "QQ" * 7, count, *flat)


def rand_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def write_file(path, data):
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_range(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def dir_snapshot(root):
    """{relative path: bytes or 'dir' or ('link', target)} of everything under root."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            rel = os.path.relpath(p, root)
            snap[rel] = ("link", os.readlink(p)) if os.path.islink(p) else "dir"
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                snap[rel] = ("link", os.readlink(p))
            else:
                with open(p, "rb") as f:
                    snap[rel] = f.read()
    return snap


@dataclass
class LocalHeader:
    version: int
    flags: int
    method: int
    dostime: int
    crc: int
    csize32: int
    usize32: int
    name: bytes
    extra: bytes
    data_offset: int


@dataclass
class Entry:
    name_bytes: bytes
    version_made: int
    version_needed: int
    flags: int
    method: int
    dostime: int
    crc: int
    csize: int
    usize: int
    header_offset: int
    extra: bytes
    comment: bytes
    record_offset: int
    local: Optional[LocalHeader] = None

    @property
    def name(self):
        if self.flags & FLAG_UTF8:
            return self.name_bytes.decode("utf-8")
        return self.name_bytes.decode("cp437")

    @property
    def data_offset(self):
        return self.local.data_offset


@dataclass
class ZipInfo:
    size: int
    eocd_offset: int
    cd_offset: int
    cd_size: int
    count: int
    zip64: bool
    zip64_eocd_offset: Optional[int]
    comment: bytes
    entries: List[Entry] = field(default_factory=list)


def _parse_extra_fields(extra):
    out = {}
    i = 0
    while i + 4 <= len(extra):
        hid, sz = struct.unpack_from("<HH", extra, i)
        out.setdefault(hid, extra[i + 4:i + 4 + sz])
        i += 4 + sz
    return out


def parse_zip(path, read_locals=True):
    """Parse a ZIP archive from scratch (EOCD, ZIP64 locator and end record,
    central directory and, optionally, every local header)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        tail_len = min(size, 65536 + 22 + 20 + 56)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        pos = tail.rfind(struct.pack("<I", EOCD_SIG))
        while pos >= 0:
            (clen,) = struct.unpack_from("<H", tail, pos + 20)
            if pos + 22 + clen == len(tail):
                break
            pos = tail.rfind(struct.pack("<I", EOCD_SIG), 0, pos)
        assert pos >= 0, "no end of central directory record"
        eocd_off = size - tail_len + pos
        (_sig, disk, cd_disk, n_disk, n_total, cd_size, cd_off, clen) = struct.unpack_from(
            "<IHHHHIIH", tail, pos)
        comment = tail[pos + 22:pos + 22 + clen]
        zip64 = False
        z64_off = None
        if eocd_off >= 20:
            f.seek(eocd_off - 20)
            loc = f.read(20)
            sig, _d, z_off, _nd = struct.unpack("<IIQI", loc)
            if sig == Z64_LOC_SIG:
                zip64 = True
                z64_off = z_off
                f.seek(z_off)
                z = f.read(56)
                (zsig, _rsize, _vm, _vn, _d1, _d2, zn_disk, zn_total, zcd_size,
                 zcd_off) = struct.unpack("<IQHHIIQQQQ", z)
                assert zsig == Z64_EOCD_SIG, "bad ZIP64 end record signature"
                n_total, cd_size, cd_off = zn_total, zcd_size, zcd_off
        info = ZipInfo(size, eocd_off, cd_off, cd_size, n_total, zip64, z64_off, comment)
        f.seek(cd_off)
        cd = f.read(cd_size)
        p = 0
        for _ in range(n_total):
            (sig, vmade, vneed, flags, method, dostime, crc, csize, usize, nlen, xlen, cmlen,
             _disk, _iattr, _eattr, lho) = struct.unpack_from("<IHHHHIIIIHHHHHII", cd, p)
            assert sig == CDH_SIG, "bad central directory signature at %d" % (cd_off + p)
            name = cd[p + 46:p + 46 + nlen]
            extra = cd[p + 46 + nlen:p + 46 + nlen + xlen]
            cmt = cd[p + 46 + nlen + xlen:p + 46 + nlen + xlen + cmlen]
            z64 = _parse_extra_fields(extra).get(1, b"")
            q = 0
            if usize == 0xFFFFFFFF:
                (usize,) = struct.unpack_from("<Q", z64, q)
                q += 8
            if csize == 0xFFFFFFFF:
                (csize,) = struct.unpack_from("<Q", z64, q)
                q += 8
            if lho == 0xFFFFFFFF:
                (lho,) = struct.unpack_from("<Q", z64, q)
                q += 8
            info.entries.append(Entry(name, vmade, vneed, flags, method, dostime, crc, csize, usize,
                                      lho, extra, cmt, cd_off + p))
            p += 46 + nlen + xlen + cmlen
        if read_locals:
            for e in info.entries:
                f.seek(e.header_offset)
                h = f.read(30)
                (sig, ver, flags, method, dostime, crc, cs, us, nlen, xlen) = struct.unpack(
                    "<IHHHIIIIHH", h)
                assert sig == LFH_SIG, "no local header at %d" % e.header_offset
                name = f.read(nlen)
                extra = f.read(xlen)
                e.local = LocalHeader(ver, flags, method, dostime, crc, cs, us, name, extra,
                                      e.header_offset + 30 + nlen + xlen)
    return info
