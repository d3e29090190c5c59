"""Seed workflows, end to end: build real data, write the archive with our
tacozip (create, then update_header with entries computed by our helpers),
then read back ONLY the bytes needed, remotely, over real HTTP Range requests
to nginx and over S3 (boto3 against moto), and count what was transferred
(nginx: its access log, $body_bytes_sent and the Range header of every
request; S3: every GetObject call, its Range and ContentLength, through the
boto3 client's event hooks).  See conftest_servers.py.

Header requests ask for exactly TACO_HEADER_SIZE (157) bytes, except in
workflow 7, which asks for 165 and 256 bytes as remote clients do.
"""

import collections
import hashlib
import io
import json
import os
import pathlib
import struct
import zipfile
import zlib

import pytest

import tacozip
from conftest_servers import require

HDR = tacozip.TACO_HEADER_SIZE  # 157


# --------------------------------------------------------------------------- helpers

def parse_local_members(buf: bytes, base: int):
    """Recover members from a byte range of an archive holding whole local
    entries (local header, name, extra, data) back to back and nothing else:
    the client side of a span.  Returns {name: (data, archive data offset)}
    and checks signature, STORE, no data descriptor and every CRC-32."""
    out = {}
    pos = 0
    while pos < len(buf):
        assert len(buf) - pos >= 30, f"truncated local header at {base + pos}"
        (sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack_from(
            "<IHHHHHIIIHH", buf, pos)
        assert sig == 0x04034B50, f"no local header at archive offset {base + pos}"
        assert method == 0 and not flags & 0x0008 and not flags & 0x0001, (method, flags)
        name = buf[pos + 30:pos + 30 + nlen].decode("utf-8" if flags & 0x0800 else "cp437")
        extra = buf[pos + 30 + nlen:pos + 30 + nlen + xlen]
        if 0xFFFFFFFF in (csize, usize):  # ZIP64 extra: sizes
            x = 0
            while x + 4 <= len(extra):
                hid, hlen = struct.unpack_from("<HH", extra, x)
                if hid == 0x0001:
                    usize, csize = struct.unpack_from("<QQ", extra, x + 4)
                x += 4 + hlen
        assert csize == usize
        start = pos + 30 + nlen + xlen
        data = buf[start:start + csize]
        assert len(data) == csize, f"{name}: span ends inside its data"
        assert zlib.crc32(data) == crc, f"{name}: CRC mismatch"
        assert name not in out
        out[name] = (data, base + start)
        pos = start + csize
    assert pos == len(buf)
    return out


def write_files(root: pathlib.Path, files: dict):
    """Write {relative name: bytes} under root; returns (paths, names) in order."""
    paths, names = [], []
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
        names.append(name)
    return paths, names


def build_archive(path, src_root, files: dict, entries_fn, n_entries: int):
    """create() with n_entries placeholders, then update_header() with the
    entries entries_fn(archive) computes from our helpers.  Returns entries."""
    paths, names = write_files(src_root, files)
    tacozip.create(path, paths, names, entries=[(0, 0)] * n_entries)
    with tacozip.open(path) as a:
        entries = [tuple(e) for e in entries_fn(a)]
    assert len(entries) == n_entries
    tacozip.update_header(path, entries)
    assert tacozip.read_header(path) == entries
    assert tacozip.validate(path, tacozip.TACOZIP_VALIDATE_DEEP) == tacozip.TACOZ_VALID
    with zipfile.ZipFile(path) as z:  # an ordinary ZIP too
        assert z.testzip() is None
    return entries


def expect_transfers(remote, wanted):
    """The transfers since the last reset are exactly ``wanted``: a list of
    (key, offset, length) for ranged GETs or (key, None, size) for whole
    GETs, in order.  Returns (requests, bytes)."""
    got = remote.transfers()
    exp = []
    for k, off, n in wanted:
        if off is None:
            exp.append((k, None, 200, n))
        else:
            exp.append((k, f"bytes={off}-{off + n - 1}", 206, n))
    assert [tuple(t) for t in got] == exp
    reqs, nbytes = len(got), sum(t.nbytes for t in got)
    print(f"{remote.kind}: {reqs} requests, {nbytes} body bytes: {[(t.range, t.nbytes) for t in got]}")
    return reqs, nbytes


def fetch_header(remote, key, size=HDR):
    buf = remote.get_range(key, 0, size)
    return tacozip.read_header(buf)


# --------------------------------------------------------------------------- 1. Parquet row groups

class OutsideFetched(OSError):
    pass


class FetchedRanges(io.RawIOBase):
    """A read-only file of ``size`` bytes of which only ``pieces``
    ({offset: bytes}) are known; reading anything else raises, so a reader
    given this file provably touches nothing but the fetched bytes."""

    def __init__(self, size, pieces):
        super().__init__()
        self.size = size
        self.pos = 0
        self.reads = []
        merged = []
        for off, data in sorted(pieces.items()):
            if merged and merged[-1][0] + len(merged[-1][1]) == off:
                merged[-1] = (merged[-1][0], merged[-1][1] + data)
            else:
                merged.append((off, bytes(data)))
        self.pieces = merged

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def readinto(self, b):
        mv = memoryview(b).cast("B")
        n = min(len(mv), self.size - self.pos)
        if n <= 0:
            return 0
        for off, data in self.pieces:
            if off <= self.pos and self.pos + n <= off + len(data):
                mv[:n] = data[self.pos - off:self.pos - off + n]
                self.reads.append((self.pos, n))
                self.pos += n
                return n
        raise OutsideFetched(f"read of {n} bytes at {self.pos} is outside the fetched ranges "
                             f"{[(o, len(d)) for o, d in self.pieces]}")


def _rg_start(rg):
    """Member-relative start of a row group, as the helper computes it."""
    starts = []
    for c in range(rg.num_columns):
        col = rg.column(c)
        first = col.data_page_offset
        if col.has_dictionary_page and col.dictionary_page_offset:
            first = min(first, col.dictionary_page_offset)
        starts.append(first)
    return min(starts)


def test_parquet_row_group(remote, tmp_path):
    pa = require("pyarrow")
    pq = require("pyarrow.parquet", "pyarrow")
    np = require("numpy")
    rows, groups, want = 2000, 5, 2
    rng = np.random.default_rng(1)
    n = rows * groups
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "value": pa.array(rng.normal(size=n)),
        "label": pa.array([f"class_{i % 7}" for i in range(n)]),  # dictionary-encoded column
        "flag": pa.array(rng.random(n) > 0.5),
    })
    pq_path = tmp_path / "table.parquet"
    pq.write_table(table, pq_path, row_group_size=rows)
    assert pq.ParquetFile(pq_path).metadata.num_row_groups == groups

    def entries(a):  # one entry per row group, the footer LAST (tacotoolbox-style convention)
        return tacozip.parquet_row_group_ranges(a, "data/table.parquet") + [
            tacozip.parquet_footer_range(a, "data/table.parquet")]

    files = {"COLLECTION.json": json.dumps({"id": "rows", "groups": groups}).encode(),
             "data/table.parquet": pq_path.read_bytes()}
    arch = tmp_path / "rows.taco"
    ents = build_archive(arch, tmp_path / "src", files, entries, groups + 1)
    with tacozip.open(arch) as a:  # the entries are archive coordinates, not member ones
        m = a["data/table.parquet"]
        assert m.offset > HDR and ents[-1][0] + ents[-1][1] == m.offset + m.size
    remote.publish(arch, "rows.taco")
    remote.reset()

    # -- the client: header, footer, one row group; nothing else
    hdr = fetch_header(remote, "rows.taco")
    foot_off, foot_len = hdr[-1]
    footer = remote.get_range("rows.taco", foot_off, foot_len)
    assert footer[-4:] == b"PAR1"
    # the footer alone gives the metadata ('PAR1' + footer is a valid tail)
    md = pq.read_metadata(io.BytesIO(b"PAR1" + footer))
    assert md.num_row_groups == groups
    rg_off, rg_len = hdr[want]
    chunk = remote.get_range("rows.taco", rg_off, rg_len)
    # member coordinates follow from the footer: where row group `want` starts in the member
    member_start = rg_off - _rg_start(md.row_group(want))
    size = foot_off + foot_len - member_start
    f = FetchedRanges(size, {rg_off - member_start: chunk, foot_off - member_start: footer})
    got = pq.ParquetFile(f, metadata=md).read_row_group(want)
    assert got.equals(table.slice(want * rows, rows))
    assert got.equals(pq.ParquetFile(pq_path).read_row_group(want))
    # pyarrow read nothing but row group `want` (pre-buffered: one read of exactly it)
    lo = rg_off - member_start
    assert f.reads and all(lo <= o and o + k <= lo + rg_len for o, k in f.reads), f.reads

    # bound: header request + footer + that row group, slack 0
    reqs, nbytes = expect_transfers(remote, [("rows.taco", 0, HDR), ("rows.taco", foot_off, foot_len),
                                                          ("rows.taco", rg_off, rg_len)])
    assert reqs == 3 and nbytes == HDR + foot_len + rg_len
    assert nbytes < os.path.getsize(arch) // 3


# --------------------------------------------------------------------------- 2. tile pyramid

def make_tiles(seed=2, max_zoom=4):
    import random
    r = random.Random(seed)
    tiles = {}
    for z in range(max_zoom + 1):  # members ordered by zoom, then x, then y
        for x in range(2 ** z):
            for y in range(2 ** z):
                body = bytes(r.getrandbits(8) for _ in range(r.randint(24, 160)))
                tiles[f"tiles/{z}/{x}/{y}.png"] = b"\x89PNG\r\n\x1a\n" + struct.pack("<BHH", z, x, y) + body
    return tiles


def test_tile_pyramid_zoom_level(remote, tmp_path):
    tiles = make_tiles()
    files = dict(tiles)
    files["metadata.json"] = json.dumps({"minzoom": 0, "maxzoom": 4, "format": "png"}).encode()

    def entries(a):  # entry z = the span of zoom level z (local headers included); metadata last
        return [a.span(f"tiles/{z}/") for z in range(5)] + [a.data_range("metadata.json")]

    arch = tmp_path / "pyramid.taco"
    ents = build_archive(arch, tmp_path / "src", files, entries, 6)
    remote.publish(arch, "pyramid.taco")
    remote.reset()

    hdr = fetch_header(remote, "pyramid.taco")
    off, length = hdr[3]
    got = parse_local_members(remote.get_range("pyramid.taco", off, length), off)
    want = {k: v for k, v in tiles.items() if k.startswith("tiles/3/")}
    assert len(want) == 64
    assert {k: v[0] for k, v in got.items()} == want
    with tacozip.open(arch) as a:  # the data offsets recovered remotely are the index's
        assert all(a[k].offset == v[1] for k, v in got.items())

    reqs, nbytes = expect_transfers(remote, [("pyramid.taco", 0, HDR), ("pyramid.taco", off, length)])
    assert (reqs, nbytes) == (2, HDR + length) and ents[3] == (off, length)
    assert length == sum(30 + len(k) + len(v) for k, v in want.items())


# --------------------------------------------------------------------------- 3. ML dataset splits

def make_dataset(np):
    rng = np.random.default_rng(3)
    files = {}
    sizes = {"train": 24, "val": 8, "test": 8}
    for split, n in sizes.items():
        labels = {}
        for i in range(n):
            img = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
            buf = io.BytesIO()
            np.save(buf, img)
            files[f"{split}/images/{i:04d}.npy"] = buf.getvalue()
            labels[f"{i:04d}"] = int(rng.integers(0, 10))
        files[f"{split}/labels.json"] = json.dumps(labels, sort_keys=True).encode()
    files["COLLECTION.json"] = json.dumps({"id": "toy-ml", "splits": list(sizes)}).encode()
    return files


def test_ml_split_download(remote, tmp_path):
    np = require("numpy")
    files = make_dataset(np)

    def entries(a):  # one entry per split (in COLLECTION.json's order), COLLECTION.json last
        return [a.span(f"{s}/") for s in ("train", "val", "test")] + [a.data_range("COLLECTION.json")]

    arch = tmp_path / "dataset.taco"
    build_archive(arch, tmp_path / "src", files, entries, 4)
    remote.publish(arch, "dataset.taco")
    remote.reset()

    hdr = fetch_header(remote, "dataset.taco")
    coll = json.loads(remote.get_range("dataset.taco", *hdr[-1]))
    off, length = hdr[coll["splits"].index("val")]
    got = parse_local_members(remote.get_range("dataset.taco", off, length), off)
    want = {k: v for k, v in files.items() if k.startswith("val/")}
    assert {k: v[0] for k, v in got.items()} == want
    labels = json.loads(got["val/labels.json"][0])
    img = np.load(io.BytesIO(got["val/images/0003.npy"][0]))
    assert img.shape == (12, 12, 3) and len(labels) == 8

    reqs, nbytes = expect_transfers(remote, [("dataset.taco", 0, HDR), ("dataset.taco", *hdr[-1]),
                                                             ("dataset.taco", off, length)])
    assert (reqs, nbytes) == (3, HDR + hdr[-1][1] + length)


# --------------------------------------------------------------------------- 4. monthly HDF5 files + sidecar

def make_month(h5py, np, path, month):
    rng = np.random.default_rng(100 + month)
    days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    t2m = (270 + 20 * rng.random((days, 6, 10))).astype("f4")
    with h5py.File(path, "w", libver="earliest") as f:  # NetCDF-4 style: dimension scales + attributes
        f.attrs["title"] = f"toy reanalysis 2023-{month:02d}"
        f.attrs["Conventions"] = "CF-1.8"
        for name, values, units in (("time", np.arange(days, dtype="f8"), f"days since 2023-{month:02d}-01"),
                                    ("lat", np.linspace(40, 45, 6), "degrees_north"),
                                    ("lon", np.linspace(-5, 4, 10), "degrees_east")):
            d = f.create_dataset(name, data=values)
            d.attrs["units"] = units
            d.make_scale(name)
        v = f.create_dataset("t2m", data=t2m, chunks=(1, 6, 10))
        v.attrs["units"] = "K"
        for i, dim in enumerate(("time", "lat", "lon")):
            v.dims[i].attach_scale(f[dim])
    return t2m


def test_hdf5_month_with_sidecar(remote, tmp_path):
    h5py = require("h5py")
    np = require("numpy")
    src = tmp_path / "src"
    (src / "monthly").mkdir(parents=True)
    paths, names, data = [], [], {}
    for m in range(1, 13):
        p = src / "monthly" / f"2023-{m:02d}.nc"
        data[m] = make_month(h5py, np, p, m)
        paths.append(p)
        names.append(f"monthly/2023-{m:02d}.nc")
    arch = tmp_path / "climate.taco"
    tacozip.create(arch, paths, names, entries=[(0, 0)] * 4)
    with tacozip.open(arch) as a:
        quarters = [a.span(lambda mem, q=q: mem.name.startswith("monthly/") and
                           (int(mem.name[13:15]) - 1) // 3 == q) for q in range(4)]
        # the time index beside the archive: month -> member -> (offset, size), from archive.members
        index = {"archive": "climate.taco", "months": collections.defaultdict(dict)}
        for mem in a.members:
            if mem.name.startswith("monthly/"):
                index["months"][mem.name[8:15]][mem.name] = [mem.offset, mem.size]
    tacozip.update_header(arch, quarters)
    assert tacozip.validate(arch, tacozip.TACOZIP_VALIDATE_DEEP) == 0
    sidecar = tmp_path / "climate.index.json"
    sidecar.write_text(json.dumps(index, sort_keys=True))
    remote.publish(arch, "climate.taco")
    remote.publish(sidecar, "climate.index.json")
    remote.reset()

    # -- the client: the sidecar, then only the selected month's files
    idx = json.loads(remote.get("climate.index.json"))
    month = "2023-07"
    wanted = [("climate.index.json", None, sidecar.stat().st_size)]
    for name, (off, size) in sorted(idx["months"][month].items()):
        raw = remote.get_range(idx["archive"], off, size)
        wanted.append((idx["archive"], off, size))
        with h5py.File(io.BytesIO(raw), "r") as f:
            assert f.attrs["title"] == f"toy reanalysis {month}"
            assert np.array_equal(f["t2m"][...], data[7])
            assert f["t2m"].attrs["units"] == "K" and f["time"].shape == (31,)
            assert f["t2m"].dims[0][0].name == "/time"
        with tacozip.open(arch) as a:
            assert (a[name].offset, a[name].size) == (off, size)
    # the month lies inside the Q3 header entry
    q_off, q_len = quarters[2]
    assert q_off <= off and off + size <= q_off + q_len

    reqs, nbytes = expect_transfers(remote, wanted)
    month_bytes = sum(s for _, (o, s) in idx["months"][month].items())
    assert reqs == 1 + len(idx["months"][month]) == 2
    assert nbytes == sidecar.stat().st_size + month_bytes
    assert month_bytes < os.path.getsize(arch) // 10


# --------------------------------------------------------------------------- 5. versioned pipeline (local)

def _sha(b):
    return hashlib.sha256(b).hexdigest()


def _stage_archive(tmp_path, stage, files, parent):
    manifest = {"stage": stage, "parent": parent, "files": {k: _sha(v) for k, v in files.items()}}
    files = dict(files)
    files["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    arch = tmp_path / f"{stage}.taco"
    build_archive(arch, tmp_path / "src" / stage, files,
                  lambda a: [a.span(f"{stage}/"), a.data_range("manifest.json")], 2)
    return arch, files


def test_versioned_pipeline(tmp_path):
    np = require("numpy")
    rng = np.random.default_rng(5)
    # raw: sensor CSVs with some bad rows
    raw = {}
    for s in range(4):
        lines = ["t,value"]
        for t in range(200):
            v = rng.normal(20, 5)
            bad = rng.random()
            lines.append(f"{t},{'ERR' if bad < 0.03 else ('' if bad < 0.06 else f'{v:.4f}')}")
        raw[f"raw/sensor_{s}.csv"] = ("\n".join(lines) + "\n").encode()
    raw_arch, raw_files = _stage_archive(tmp_path, "raw", raw, None)

    def clean(arch):  # built from the previous stage's ARCHIVE, not from its sources
        out = {}
        with tacozip.open(arch) as a:
            for m in a.members:
                if m.name.startswith("raw/"):
                    rows = a.read(m.name).decode().splitlines()
                    keep = [rows[0]] + [r for r in rows[1:] if r.split(",")[1] not in ("", "ERR")]
                    out["cleaned/" + m.name[4:]] = ("\n".join(keep) + "\n").encode()
        return out

    def features(arch):
        out, summary = {}, {}
        with tacozip.open(arch) as a:
            for m in a.members:
                if m.name.startswith("cleaned/"):
                    vals = np.array([float(r.split(",")[1]) for r in a.read(m.name).decode().splitlines()[1:]])
                    feat = np.array([vals.mean(), vals.std(), vals.min(), vals.max()], dtype="f8")
                    buf = io.BytesIO()
                    np.save(buf, feat)
                    out["features/" + m.name[8:-4] + ".npy"] = buf.getvalue()
                    summary[m.name[8:-4]] = [round(float(x), 6) for x in feat]
        out["features/summary.json"] = json.dumps(summary, sort_keys=True).encode()
        return out

    cleaned_arch, cleaned_files = _stage_archive(tmp_path, "cleaned", clean(raw_arch), "raw")
    feat_arch, feat_files = _stage_archive(tmp_path, "features", features(cleaned_arch), "cleaned")
    versions = {"raw": (raw_arch, raw_files), "cleaned": (cleaned_arch, cleaned_files),
                "features": (feat_arch, feat_files)}
    dropped = sum(len(raw[k].splitlines()) - len(cleaned_files["cleaned/" + k[4:]].splitlines()) for k in raw)
    assert dropped > 0

    for stage, (arch, originals) in versions.items():
        payload = arch.read_bytes()[41:HDR]  # TACO_HEADER is an ordinary 116-byte member to ZIP tools
        expected = dict(originals, TACO_HEADER=payload)
        for how in ("zipfile", "tacozip"):
            dest = tmp_path / "restore" / how / stage
            if how == "zipfile":
                with zipfile.ZipFile(arch) as z:
                    z.extractall(dest)
            else:
                with tacozip.open(arch) as a:
                    a.extract(dest)
            got = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
            assert got == expected, (stage, how, sorted(set(got) ^ set(expected)))
        # the manifest in the archive matches the restored bytes
        man = json.loads(expected["manifest.json"])
        assert man["files"] == {k: _sha(v) for k, v in originals.items() if k != "manifest.json"}
        # selective restore
        with tacozip.open(arch) as a:
            one = sorted(originals)[0]
            a.extract(tmp_path / "one" / stage, [one], skip_header=True)
        assert [p.name for p in (tmp_path / "one" / stage).rglob("*") if p.is_file()] == [one.split("/")[-1]]

    # reproducibility: re-running a stage on a restored version gives the same bytes
    assert features(cleaned_arch) == {k: v for k, v in feat_files.items() if k != "manifest.json"}


# --------------------------------------------------------------------------- 6. checkpoint / resume

class SimulatedCrash(RuntimeError):
    pass


class ProgressiveLoader:
    """Fetch the header entries one at a time into ``workdir``; after each
    one, persist a checkpoint (entries, done, sha256) atomically.  A fresh
    loader resumes from the checkpoint without fetching anything twice (not
    even the header)."""

    def __init__(self, remote, key, workdir, on_checkpoint=None):
        self.remote, self.key, self.workdir = remote, key, pathlib.Path(workdir)
        self.ckpt = self.workdir / "checkpoint.json"
        self.on_checkpoint = on_checkpoint

    def _save(self, state):
        tmp = self.ckpt.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, self.ckpt)

    def run(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.ckpt.exists():
            state = json.loads(self.ckpt.read_text())
        else:
            state = {"key": self.key, "entries": fetch_header(self.remote, self.key), "done": {}}
            self._save(state)
        for i, (off, length) in enumerate(state["entries"]):
            if str(i) in state["done"]:
                continue
            data = self.remote.get_range(self.key, off, length)
            part = self.workdir / f"entry_{i}.bin"
            part.with_suffix(".tmp").write_bytes(data)
            os.replace(part.with_suffix(".tmp"), part)
            state["done"][str(i)] = _sha(data)
            self._save(state)
            if self.on_checkpoint:
                self.on_checkpoint(i)
        return state


def test_checkpoint_resume(remote, tmp_path):
    import random
    r = random.Random(6)
    files = {f"shards/shard_{i}.bin": bytes(r.getrandbits(8) for _ in range(r.randint(2000, 9000)))
             for i in range(7)}
    arch = tmp_path / "shards.taco"
    ents = build_archive(arch, tmp_path / "src", files, lambda a: [a.data_range(n) for n in files], 7)
    remote.publish(arch, "shards.taco")
    remote.reset()

    k = 3

    def crash(i):
        if i == k:
            raise SimulatedCrash(f"killed after entry {i}")

    work = tmp_path / "download"
    with pytest.raises(SimulatedCrash):
        ProgressiveLoader(remote, "shards.taco", work, on_checkpoint=crash).run()
    state = json.loads((work / "checkpoint.json").read_text())
    assert sorted(state["done"], key=int) == [str(i) for i in range(k + 1)]
    assert [tuple(e) for e in state["entries"]] == ents
    first = remote.transfers()
    assert len(first) == 1 + k + 1

    # resume: a new loader, same workdir; the remote's counters keep running
    state = ProgressiveLoader(remote, "shards.taco", work).run()
    assert len(state["done"]) == 7

    wanted = [("shards.taco", 0, HDR)] + [("shards.taco", o, n) for o, n in ents]
    reqs, nbytes = expect_transfers(remote, wanted)  # each entry exactly once, in order
    ranges = collections.Counter(t.range for t in remote.transfers())
    assert max(ranges.values()) == 1
    assert reqs == 8 and nbytes == HDR + sum(n for _, n in ents)
    for i, name in enumerate(files):
        got = (work / f"entry_{i}.bin").read_bytes()
        assert got == files[name] and state["done"][str(i)] == _sha(got)


# --------------------------------------------------------------------------- 7. header from 165 / 256 bytes

@pytest.mark.parametrize("size", [165, 256])
def test_remote_header_prefix(remote, tmp_path, size):
    files = {f"m{i}.bin": bytes([i]) * (100 * (i + 1)) for i in range(7)}
    arch = tmp_path / "seven.taco"
    ents = build_archive(arch, tmp_path / "src", files, lambda a: [a.data_range(n) for n in files], 7)
    remote.publish(arch, "seven.taco")
    remote.reset()
    buf = remote.get_range("seven.taco", 0, size)
    assert len(buf) == size and buf == arch.read_bytes()[:size]
    assert tacozip.read_header(buf) == tacozip.read_header(arch) == ents
    assert tacozip.read_header(memoryview(buf)) == ents and tacozip.read_header(bytearray(buf)) == ents
    reqs, nbytes = expect_transfers(remote, [("seven.taco", 0, size)])
    assert (reqs, nbytes) == (1, size)
    if remote.kind == "http":
        (rec,) = remote.log()
        assert rec["range"] == f"bytes=0-{size - 1}" and rec["status"] == 206
        assert rec["content_range"] == f"bytes 0-{size - 1}/{arch.stat().st_size}"
        assert rec["bytes_sent"] > rec["body_bytes_sent"] == size  # response headers on top
