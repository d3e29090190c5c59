"""Writing a large file set as N shard archives in parallel, and a catalog
(shard -> members -> byte ranges) that the reading side uses to find and
range-read any member without opening every shard.

    >>> cat = tacozip.shards.write_shards(paths, "out", 8, names=names)   # threads
    >>> cat = tacozip.shards.write_shards(paths, "out", 8, client=client)  # a Dask client
    >>> cat = tacozip.shards.open_catalog("https://host/ds/catalog.parquet")
    >>> cat.read("a/b.tif"), cat.read_many(["a/b.tif", "c/d.tif"])

Each shard is written by one task with ``tacozip.create`` (atomic: a failed
or killed shard leaves nothing), its header entries given as a list (planned
by name and resolved in each shard, e.g. ``[tacozip.span(prefix="val/")]``;
default: one entry spanning all its members) or by a function of the caller
(``entries(shard, archive)``: the shard is then written under a temporary
name, updated and renamed), and its member offsets taken
from the library's own listing (``tacozip.open(shard).members``).  The
catalog is written last, only when every shard succeeded: a Parquet file
(needs pyarrow) or a JSON file, by the name's suffix.  Shard paths in it are
relative to the catalog, so the directory can be published as it is (a web
server, a bucket) and read through the catalog's URL.

Dask is optional: ``client`` may be a ``distributed.Client``, any
``concurrent.futures.Executor``, or None (a thread pool: ``create`` releases
the GIL).  See docs/dask.md.
"""

import concurrent.futures
import json
import os
import pathlib
import threading
import uuid
import zlib
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ._api import create, update_header
from .writer import span
from ._archive import MemberFile, TacoArchive
from ._archive import open as _open
from .config import TACO_HEADER_MAX_ENTRIES, TACO_HEADER_NAME, TACOZ_ERR_CHANGED, TACOZ_INVALID_CRC_MEMBER
from .exceptions import TacozipError

__all__ = ["write_shards", "open_catalog", "Catalog", "CatalogMember", "Shard", "span_all", "CATALOG_VERSION"]

CATALOG_VERSION = 1
_RESERVED = (TACO_HEADER_NAME, "TACO_INDEX")
_META_KEY = b"tacozip.shards"

PathLike = Union[str, "os.PathLike[str]"]
EntriesFn = Callable[[int, TacoArchive], Sequence[Tuple[int, int]]]


class CatalogMember(NamedTuple):
    """Where one member is: its shard (index and path or URL) and the exact
    byte range of its data in that shard (``offset``, ``size``), its CRC-32."""

    name: str
    shard: int
    url: str
    offset: int
    size: int
    crc: int


class Shard(NamedTuple):
    """One shard archive: index, path relative to the catalog, resolved path
    or URL, archive size in bytes, header entries, number of members."""

    index: int
    path: str
    url: str
    size: int
    entries: List[Tuple[int, int]]
    members: int


def span_all(shard: int, archive: TacoArchive) -> List[Tuple[int, int]]:
    """The default header entries of a shard: one (offset, length) covering
    every member (local headers included), so one range read of the header's
    first entry fetches the whole shard's payload."""
    return [archive.span(lambda m: m.name not in _RESERVED)]


# --------------------------------------------------------------------------- writing

def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"member name must be a non-empty string, got {name!r}")
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts or name in _RESERVED or name.endswith("/"):
        raise ValueError(f"member name {name!r} is not allowed (absolute, '..', a directory, or reserved)")


def _split(n_items: int, n_shards: int) -> List[range]:
    """n_shards contiguous runs of nearly equal length (input order kept)."""
    q, r = divmod(n_items, n_shards)
    out, start = [], 0
    for i in range(n_shards):
        stop = start + q + (1 if i < r else 0)
        out.append(range(start, stop))
        start = stop
    return out


def _plan(files: Union[Sequence[PathLike], Mapping[str, PathLike]], names: Optional[Sequence[str]],
          n_shards: int) -> Tuple[List[str], List[str], List[range]]:
    if isinstance(files, Mapping):
        if names is not None:
            raise TypeError("names must not be given when files is a mapping {name: path}")
        names = list(files.keys())
        srcs = [os.fspath(p) for p in files.values()]
    else:
        if isinstance(files, (str, bytes, os.PathLike)):
            raise TypeError("files must be a sequence of paths (or a mapping {name: path}), not one path")
        srcs = [os.fspath(p) for p in files]
        names = [pathlib.Path(s).name for s in srcs] if names is None else [str(n) for n in names]
        if len(names) != len(srcs):
            raise ValueError(f"names count ({len(names)}) must match files count ({len(srcs)})")
    if not srcs:
        raise ValueError("no files to write: the file list is empty")
    if isinstance(n_shards, bool) or not isinstance(n_shards, int):
        raise TypeError(f"n_shards must be an int, got {type(n_shards).__name__}")
    if n_shards < 1:
        raise ValueError(f"n_shards must be at least 1, got {n_shards}")
    if n_shards > len(srcs):
        raise ValueError(f"n_shards ({n_shards}) is more than the number of files ({len(srcs)})")
    for n in names:
        _check_name(n)
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise ValueError(f"duplicate member names ({len(dups)}): {dups[:10]}")
    missing = [s for s in srcs if not os.path.isfile(s)]
    if missing:
        raise FileNotFoundError(f"input files missing or not regular files ({len(missing)}): {missing[:10]}")
    return srcs, names, _split(len(srcs), n_shards)


def _write_shard(index: int, path: str, srcs: List[str], names: List[str],
                 entries: Union[None, EntriesFn, Sequence[Any]], create_options: Dict[str, Any]) -> dict:
    """One task: write shard ``index`` at ``path`` and return what the
    catalog needs, from the library's own listing of the written archive.

    Entries given as a list (numbers, or planned by name: the default is
    ``tacozip.span(prefix="")``, every member) are resolved from the layout
    and the shard is written by one atomic create: nothing is left on
    failure or kill -9.  An ``entries(shard, archive)`` function needs the
    written archive: the shard is written under a temporary name in the
    same directory, its header updated, then renamed (a kill -9 leaves that
    temporary file)."""
    d, base = os.path.split(path)
    if not callable(entries):
        create(path, srcs, names, entries=list(entries) if entries is not None else [span(prefix="")],
               **create_options)
        return _listed(index, path, base)
    tmp = os.path.join(d, f".{base}.{uuid.uuid4().hex}.tmp")
    try:
        create(tmp, srcs, names, entries=[(0, 0)], **create_options)
        with _open(tmp) as ar:
            ents = [(int(o), int(n)) for o, n in entries(index, ar)]
        if len(ents) > TACO_HEADER_MAX_ENTRIES:
            raise ValueError(f"shard {index}: entries() gave {len(ents)} entries (at most {TACO_HEADER_MAX_ENTRIES})")
        if ents != [(0, 0)]:
            update_header(tmp, ents)
        listed = _listed(index, tmp, base)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    return listed


def _listed(index: int, path: str, base: str) -> dict:
    with _open(path) as ar:
        members = [(m.name, m.offset, m.size, m.crc) for m in ar.members if m.name not in _RESERVED]
        return {"index": index, "path": base, "size": ar.size, "entries": ar.header, "members": members}


def _is_dask_client(client: Any) -> bool:
    return (hasattr(client, "gather") and hasattr(client, "submit")
            and not isinstance(client, concurrent.futures.Executor))


def _check_client(client: Any) -> None:
    if client is not None and not _is_dask_client(client) and not isinstance(client, concurrent.futures.Executor):
        raise TypeError(f"client must be a distributed.Client, a concurrent.futures.Executor or None, "
                        f"got {type(client).__name__}")


def _run(client: Any, calls: List[tuple], max_workers: Optional[int]) -> List[dict]:
    if client is not None and _is_dask_client(client):
        # a distributed.Client: one task per shard, never cached as "pure"
        from distributed import wait

        futures = [client.submit(_write_shard, *c, pure=False) for c in calls]
        wait(futures)  # every shard done or failed (no write still running when this raises)
        return list(client.gather(futures))
    own = client is None
    ex = client or concurrent.futures.ThreadPoolExecutor(max_workers=max_workers or min(len(calls), os.cpu_count() or 1))
    try:
        futures = [ex.submit(_write_shard, *c) for c in calls]
        concurrent.futures.wait(futures)
        return [f.result() for f in futures]  # the first failure (by shard) is raised
    finally:
        if own:
            ex.shutdown()


def write_shards(files: Union[Sequence[PathLike], Mapping[str, PathLike]], dest: PathLike, n_shards: int, *,
                 names: Optional[Sequence[str]] = None, entries: Union[None, EntriesFn, Sequence[Any]] = None,
                 client: Any = None,
                 max_workers: Optional[int] = None, catalog: str = "catalog.parquet",
                 shard_name: str = "shard-{:05d}.taco", **create_options: Any) -> "Catalog":
    """Write ``files`` as ``n_shards`` TACO archives under directory ``dest``,
    one task per shard, then the catalog ``dest/catalog``; return it opened.

    ``files``: a sequence of paths (member names from ``names``, default the
    base names) or a mapping {member name: path}.  The files are split in
    input order into ``n_shards`` contiguous runs of nearly equal count.
    ``entries``: the header entries of every shard, either a list (at most
    7 of ``(offset, length)`` or entries planned by name, such as
    ``tacozip.span(prefix="val/")`` or ``tacozip.data("COLLECTION.json")``,
    resolved in each shard before it is written; default
    ``[tacozip.span(prefix="")]``, every member, what :func:`span_all`
    computes), or a function ``entries(shard_index, archive)`` computed on
    the written shard (archive coordinates; then the shard is written under
    a temporary name, updated and renamed).  Runs in the task, so on a
    cluster it must pickle.
    ``client``: a ``distributed.Client``, a ``concurrent.futures.Executor``,
    or None for a thread pool of ``max_workers``.  ``catalog``: its file name
    in ``dest``; ``.parquet`` (pyarrow) or ``.json``.  ``shard_name``: a
    format string for the shard index.  ``create_options``: passed to
    ``tacozip.create`` (``alignment``, ``fsync``, ``index``).

    Checked before anything is written: an empty file list, ``n_shards`` < 1
    or more than the files (ValueError), a missing input file
    (FileNotFoundError), duplicate or unsafe member names (ValueError).  A
    shard that fails leaves no file behind; the exception of the first
    failed shard is raised once every shard is done, and no catalog is
    written (shards that succeeded stay, complete).  Existing files of the
    same names in ``dest`` are replaced.
    """
    srcs, names, runs = _plan(files, names, n_shards)
    fmt = catalog.lower()
    if not (fmt.endswith(".parquet") or fmt.endswith(".json")) or "/" in catalog or os.sep in catalog:
        raise ValueError(f"catalog must be a file name ending in .parquet or .json, got {catalog!r}")
    if fmt.endswith(".parquet"):
        import pyarrow  # noqa: F401 - fail now, before writing shards, if it is missing
    _check_client(client)
    unknown = set(create_options) - {"alignment", "fsync", "index"}
    if unknown:
        raise TypeError(f"unknown create options: {sorted(unknown)}")
    shard_paths = [shard_name.format(i) for i in range(len(runs))]
    if len(set(shard_paths)) != len(shard_paths) or any("/" in p or p == catalog for p in shard_paths):
        raise ValueError(f"shard_name {shard_name!r} must give a distinct plain file name per shard")
    dest = os.path.abspath(os.fspath(dest))
    os.makedirs(dest, exist_ok=True)
    calls = [(i, os.path.join(dest, p), srcs[r.start:r.stop], names[r.start:r.stop], entries, dict(create_options))
             for i, (p, r) in enumerate(zip(shard_paths, runs))]
    results = _run(client, calls, max_workers)
    cat_path = os.path.join(dest, catalog)
    _write_catalog(cat_path, sorted(results, key=lambda r: r["index"]))
    return open_catalog(cat_path)


def _write_catalog(path: str, shards: List[dict]) -> None:
    meta = {"version": CATALOG_VERSION,
            "shards": [{"index": s["index"], "path": s["path"], "size": s["size"],
                        "entries": [list(e) for e in s["entries"]], "members": len(s["members"])} for s in shards]}
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        if path.lower().endswith(".json"):
            meta["members"] = [{"name": n, "shard": s["index"], "offset": o, "size": z, "crc": c}
                               for s in shards for (n, o, z, c) in s["members"]]
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(meta, f)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = [(n, s["index"], o, z, c) for s in shards for (n, o, z, c) in s["members"]]
            table = pa.table({
                "name": pa.array([r[0] for r in rows], pa.string()),
                "shard": pa.array([r[1] for r in rows], pa.int32()),
                "offset": pa.array([r[2] for r in rows], pa.int64()),
                "size": pa.array([r[3] for r in rows], pa.int64()),
                "crc": pa.array([r[4] for r in rows], pa.uint32()),
            }).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str) -> None:
    """Remove a temporary file of a write that failed (if it was made)."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- reading

def _is_url(s: str) -> bool:
    return "://" in s and not s.startswith("file://")


def _resolve(base: str, rel: str) -> str:
    if _is_url(base):
        return base.split("?", 1)[0].rsplit("/", 1)[0] + "/" + rel
    return os.path.join(os.path.dirname(base), rel)


def _load(path_or_url: str, catalog_options: Mapping[str, Any]) -> Tuple[dict, List[tuple]]:
    if _is_url(path_or_url):
        import fsspec  # a remote catalog is fetched with fsspec (s3fs, aiohttp as the URL needs)

        with fsspec.open(path_or_url, "rb", **catalog_options) as f:
            raw = f.read()
    else:
        p = path_or_url[len("file://"):] if path_or_url.startswith("file://") else path_or_url
        with open(p, "rb") as f:
            raw = f.read()
    if raw[:4] == b"PAR1":
        import io

        import pyarrow.parquet as pq

        t = pq.read_table(io.BytesIO(raw))
        md = (t.schema.metadata or {}).get(_META_KEY)
        if md is None:
            raise ValueError(f"{path_or_url}: a Parquet file without tacozip.shards metadata is not a shard catalog")
        meta = json.loads(md)
        cols = [t.column(c).to_pylist() for c in ("name", "shard", "offset", "size", "crc")]
        rows = list(zip(*cols))
    else:
        meta = json.loads(raw)
        if not isinstance(meta, dict) or "shards" not in meta or "members" not in meta:
            raise ValueError(f"{path_or_url}: not a tacozip shard catalog")
        rows = [(m["name"], m["shard"], m["offset"], m["size"], m["crc"]) for m in meta["members"]]
    if meta.get("version") != CATALOG_VERSION:
        raise ValueError(f"{path_or_url}: catalog version {meta.get('version')!r}, this tacozip reads "
                         f"{CATALOG_VERSION}")
    return meta, rows


def open_catalog(path_or_url: PathLike, *, storage_options: Optional[Mapping[str, Any]] = None,
                 catalog_options: Optional[Mapping[str, Any]] = None, shard_base: Optional[str] = None) -> "Catalog":
    """Open a catalog written by :func:`write_shards` (local path or URL).

    ``storage_options``: tacozip's remote settings for the shards
    (``tacozip.open``'s names, e.g. ``key``, ``secret``,
    ``client_kwargs={"endpoint_url": ...}``, ``anon``).  ``catalog_options``:
    the fsspec options to fetch a remote catalog file (default: the same
    dict, whose s3fs-style names s3fs understands too).  ``shard_base``: a
    directory or URL prefix where the shards are, if not beside the catalog.
    The shards are opened lazily, one ``TacoArchive`` each, when first read.
    """
    src = os.fspath(path_or_url)
    if not _is_url(src):
        src = os.path.abspath(src[len("file://"):] if src.startswith("file://") else src)
    so = dict(storage_options or {})
    meta, rows = _load(src, so if catalog_options is None else dict(catalog_options))
    return Catalog(src, meta, rows, so, shard_base)


class Catalog:
    """The members of a set of shard archives: ``cat[name]`` ->
    :class:`CatalogMember` (shard, URL, offset, size, crc), ``len``, ``in``,
    iteration over names; ``read(name)``, ``read_many(names)`` and
    ``open(name)`` read through one lazily opened ``TacoArchive`` per shard
    (range reads by the C library).  Pickles without its open archives (the
    catalog's rows and the storage options given; each unpickled copy opens
    the shards it reads again)."""

    def __init__(self, url: str, meta: dict, rows: List[tuple], storage_options: Dict[str, Any],
                 shard_base: Optional[str] = None):
        self.url = url
        self._meta = meta
        self._rows = rows
        self.storage_options = storage_options
        self._shard_base = shard_base
        base = url if shard_base is None else shard_base.rstrip("/") + "/_"
        self.shards: List[Shard] = [Shard(s["index"], s["path"], _resolve(base, s["path"]), s["size"],
                                          [tuple(e) for e in s["entries"]], s["members"]) for s in meta["shards"]]
        if [s.index for s in self.shards] != list(range(len(self.shards))):
            raise ValueError(f"{url}: shard indices are not 0..{len(self.shards) - 1}")
        self._by_name: Dict[str, CatalogMember] = {}
        for name, shard, off, size, crc in rows:
            self._by_name[name] = CatalogMember(name, int(shard), self.shards[int(shard)].url, int(off), int(size),
                                                int(crc))
        self._archives: Dict[int, TacoArchive] = {}
        self._lock = threading.Lock()
        self._locks: Dict[int, threading.Lock] = {}

    # -- pickling ----------------------------------------------------------------
    def __reduce__(self):
        return (Catalog, (self.url, self._meta, self._rows, self.storage_options, self._shard_base))

    # -- index --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> CatalogMember:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no member named {name!r} in shard catalog {self.url}") from None

    def names(self) -> List[str]:
        return list(self._by_name)

    def members_of(self, shard: int) -> List[CatalogMember]:
        """The members of one shard, in archive order."""
        return [m for m in self._by_name.values() if m.shard == shard]

    def __repr__(self) -> str:
        return f"<tacozip.shards.Catalog {self.url!r} {len(self.shards)} shards, {len(self)} members>"

    # -- archives -----------------------------------------------------------------
    def archive(self, shard: int) -> TacoArchive:
        """The shard's archive, opened on first use (and checked: same size
        and member ranges as the catalog says, else TACOZ_ERR_CHANGED)."""
        with self._lock:  # one lock per shard: shards open in parallel, each once
            lock = self._locks.setdefault(shard, threading.Lock())
        with lock:
            ar = self._archives.get(shard)
            if ar is not None and not ar.closed:
                return ar
            s = self.shards[shard]
            ar = _open(s.url, storage_options=self.storage_options or None)
            try:
                self._check(s, ar)
            except BaseException:
                ar.close()
                raise
            self._archives[shard] = ar
            return ar

    def _check(self, s: Shard, ar: TacoArchive) -> None:
        listed = {m.name: (m.offset, m.size, m.crc) for m in ar.members if m.name not in _RESERVED}
        want = {m.name: (m.offset, m.size, m.crc) for m in self.members_of(s.index)}
        if ar.size != s.size or listed != want:
            e = TacozipError(TACOZ_ERR_CHANGED)
            e.detail = (f"{ar.path}: the shard is not the one the catalog {self.url} describes "
                        f"(size {ar.size} vs {s.size}, or other members or ranges)")
            e.add_note(e.detail)
            raise e

    def close(self) -> None:
        with self._lock:
            for ar in self._archives.values():
                ar.close()
            self._archives.clear()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- data ---------------------------------------------------------------------
    @staticmethod
    def _verified(m: CatalogMember, data: bytes) -> bytes:
        if len(data) != m.size or zlib.crc32(data) != m.crc:
            e = TacozipError(TACOZ_INVALID_CRC_MEMBER)
            e.detail = f"{m.url}: member {m.name!r}: data does not match the catalog's CRC-32"
            e.add_note(e.detail)
            raise e
        return data

    def read(self, name: str, verify: bool = True) -> bytes:
        """One whole member: one range read of its shard (CRC-32 checked
        against the catalog unless ``verify=False``)."""
        m = self[name]
        data = self.archive(m.shard).read_range(m.offset, m.size) if m.size else b""
        return self._verified(m, data) if verify else data

    def read_many(self, names: Iterable[str], verify: bool = True, max_gap: Optional[int] = None,
                  max_workers: Optional[int] = None) -> Dict[str, bytes]:
        """Several members, grouped by shard: one ``read_ranges`` per shard
        (neighbours coalesced, requests in parallel), shards in parallel
        threads.  Returns {name: bytes} in the order asked."""
        wanted = [self[n] for n in names]
        by_shard: Dict[int, List[CatalogMember]] = {}
        for m in wanted:
            by_shard.setdefault(m.shard, []).append(m)

        def one(shard: int) -> Dict[str, bytes]:
            ms = [m for m in by_shard[shard] if m.size]
            datas = self.archive(shard).read_ranges([(m.offset, m.size) for m in ms], max_gap=max_gap) if ms else []
            got = {m.name: d for m, d in zip(ms, datas)}
            return {m.name: (self._verified(m, got.get(m.name, b"")) if verify else got.get(m.name, b""))
                    for m in by_shard[shard]}

        out: Dict[str, bytes] = {}
        if len(by_shard) <= 1:
            for s in by_shard:
                out.update(one(s))
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers or min(len(by_shard), 8)) as ex:
                for part in ex.map(one, list(by_shard)):
                    out.update(part)
        return {m.name: out[m.name] for m in wanted}

    def open(self, name: str) -> MemberFile:
        """A seekable file over one member (tacozip's MemberFile: reads only
        what is asked)."""
        m = self[name]
        return self.archive(m.shard).open(name)

