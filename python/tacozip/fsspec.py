"""``taco://``: a read-only fsspec filesystem over the members of a TACO
archive (or any STORE-only ZIP), read by tacozip's C library.

    >>> import fsspec, pandas as pd
    >>> pd.read_parquet("taco://data/x.parquet::https://host/ds.taco")
    >>> fs = fsspec.filesystem("taco", fo="s3://bucket/ds.taco", target_options={"anon": True})

The archive (``fo``) is a local path, an ``http(s)://`` or ``s3://`` URL (read
by the C library with libcurl: the target options become its remote
settings), any other fsspec URL (``memory://``, ``gs://``, ...: opened with
``fsspec.open`` and read through it) or an open binary file object.  Member
files are fsspec ``AbstractBufferedFile``\\ s whose fetches are range reads of
the archive; see docs/fsspec.md.
"""

import bisect
import datetime
import errno
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping as _MappingABC
from typing import Any, Dict, Iterator, List, Mapping, Optional

from fsspec.archive import AbstractArchiveFileSystem
from fsspec.caching import BaseCache, register_cache
from fsspec.core import split_protocol
from fsspec.spec import AbstractBufferedFile, make_instance

from . import _tacozip
from ._archive import Member, SequentialCrc, TacoArchive
from .exceptions import TacozipIOError

__all__ = ["TacoFileSystem", "TacoMemberFile"]

#: members that hold the archive's own structures, hidden unless show_internal=True
INTERNAL = ("TACO_HEADER", "TACO_INDEX")

#: block size of member files of remote archives: the largest read-ahead of
#: their default "adaptive" cache (and the block of "readahead", "blockcache"...)
REMOTE_BLOCK_SIZE = 4 * 2**20

# Options fsspec passes to (or users habitually give) any filesystem: they do
# not concern how the C library reads, and are dropped from target options.
_FSSPEC_GENERIC = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths",
                             "asynchronous", "loop", "auto_mkdir"})

# target protocols read by the C library itself
_LOCAL = frozenset({"file", "local"})
_NATIVE = frozenset({"http", "https", "s3", "s3a"})


def _read_only(what: str) -> PermissionError:
    return PermissionError(errno.EROFS, f"taco:// is a read-only filesystem: cannot {what}")


class TacoFileSystem(AbstractArchiveFileSystem):
    """The members of one TACO archive as a read-only filesystem.

    Parameters
    ----------
    fo : str, os.PathLike or binary file object
        The archive: a local path, a URL (``http(s)://``, ``s3://`` are read
        by the C library; any other protocol through fsspec), or an open
        binary file object (kept open, read through the C library's callback
        source; closed by ``close()`` only if this filesystem opened it).
    target_protocol : str, optional
        The protocol of ``fo`` when it is a string without one (as fsspec's
        archive filesystems take it; chained URLs set it).
    target_options : dict, optional
        Options of the target.  For http(s) and s3 targets: tacozip's
        remote settings (for a local file: checked, not used) (s3fs names: ``key``, ``secret``, ``token``,
        ``anon``, ``client_kwargs={"endpoint_url", "region_name"}``,
        ``config_kwargs``; and ``endpoint_url``, ``region``, ``retries``,
        ``connect_timeout``, ``stall_timeout``, ``parallel``, ``max_gap``,
        ``headers``...; see docs/python.md).  For other targets: the options
        of ``fsspec.open``.
    show_internal : bool
        List ``TACO_HEADER`` and ``TACO_INDEX`` as files too.
    index_first, verify_local : bool
        Passed to ``tacozip.open``.
    default_cache_type, default_block_size : optional
        The cache of member files opened without ``cache_type`` /
        ``block_size`` (the names s3fs uses; for readers that open files
        themselves, e.g. ``pd.read_parquet(..., storage_options={
        "default_cache_type": "none"})``).  Default: ``"adaptive"``
        (``AdaptiveCache``: exact small fetches, read-ahead up to 4 MiB
        when sequential) for http(s) and s3 targets, ``"none"`` otherwise.
    pickle_directory : bool
        Pickles of a remote archive carry its central directory: an
        unpickled filesystem lists it without a request.
    check_crc : bool
        Whole-member reads (``cat``), and member files read from byte 0 to
        the end in reads that follow each other, are checked against the
        member's CRC-32 (``TACOZ_INVALID_CRC_MEMBER``); False skips the
        check (passed to ``tacozip.open``).
    """

    protocol = "taco"
    root_marker = ""
    # like ZipFileSystem: each filesystem holds its own open archive
    cachable = False

    def __init__(self, fo: Any = "", target_protocol: Optional[str] = None,
                 target_options: Optional[Mapping[str, Any]] = None, show_internal: bool = False,
                 index_first: bool = False, verify_local: bool = False, default_cache_type: Optional[str] = None,
                 default_block_size: Optional[int] = None, pickle_directory: bool = False, check_crc: bool = True,
                 _archive: Optional[TacoArchive] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.default_cache_type = default_cache_type
        self.default_block_size = default_block_size
        self.show_internal = bool(show_internal)
        self._opened_file = None  # a target opened here through fsspec, closed by close()
        self._local_path: Optional[str] = None
        try:
            if _archive is not None:  # unpickled: the archive reopened (pinned) by its own pickle
                self.archive: TacoArchive = _archive
                self.remote = _archive._stamp is None
                self._local_path = None if self.remote else _archive._reopen[0]
            else:
                self.archive = self._open_target(fo, target_protocol, dict(target_options or {}),
                                                 index_first, verify_local, pickle_directory, check_crc)
        except TacozipIOError as e:
            # a missing archive is FileNotFoundError to fsspec's callers (pandas, dask...)
            detail = e.detail or ""
            local = isinstance(fo, (str, os.PathLike)) and split_protocol(os.fspath(fo))[0] in (None, "file", "local")
            if "HTTP 404" in detail or (local and not os.path.exists(split_protocol(os.fspath(fo))[1])):
                raise FileNotFoundError(errno.ENOENT, f"no such TACO archive ({detail or e})",
                                        detail.split(": ")[0] or None) from e
            raise
        self.fo = self.archive.path  # what fsspec's ukey() tokenizes; safe to show
        self.dir_cache: Optional[_Listing] = None  # built on first use
        #: bytes fetched by member files with the adaptive cache, shared by all of them
        self.spans = SpanStore()

    # -- the target ------------------------------------------------------------
    def _open_target(self, fo: Any, target_protocol: Optional[str], options: Dict[str, Any],
                     index_first: bool, verify_local: bool, pickle_directory: bool,
                     check_crc: bool = True) -> TacoArchive:
        if not isinstance(fo, (str, os.PathLike)):
            if options:
                raise TypeError("target_options do not apply to a file object given as fo")
            # the caller's file object: the C library reads it through callbacks
            self.remote = False
            return TacoArchive(fo, verify_local, index_first, check_crc=check_crc)
        fo = os.fspath(fo)
        proto, rest = split_protocol(fo)
        if target_protocol is not None:
            tp = target_protocol[0] if isinstance(target_protocol, (list, tuple)) else target_protocol
            if proto is not None and proto != tp:
                raise ValueError(f"fo {fo!r} has protocol {proto!r} but target_protocol is {tp!r}")
            proto = tp
        proto = proto or "file"
        settings = {k: v for k, v in options.items() if k not in _FSSPEC_GENERIC}
        if proto in _LOCAL:
            self.remote = False
            self._local_path = os.path.abspath(rest)  # what a pickle reopens, from any directory
            return TacoArchive(rest, verify_local, index_first, storage_options=settings, check_crc=check_crc)
        if proto in _NATIVE:
            # a chained URL arrives stripped of its protocol by the target's
            # filesystem class (s3fs strips "s3://", http keeps the URL)
            url = fo if "://" in fo else f"{proto}://{rest}"
            if proto == "s3a":
                url = "s3://" + url.split("://", 1)[1]
            self.remote = True
            return TacoArchive(url, verify_local, index_first, storage_options=settings,
                               pickle_directory=pickle_directory, check_crc=check_crc)
        # anything else: fsspec opens it, the C library reads the file object
        import fsspec

        url = fo if "://" in fo else f"{proto}://{rest}"
        of = fsspec.open(url, "rb", **options)
        f = of.open()
        try:
            ar = TacoArchive(f, verify_local, index_first, check_crc=check_crc)
        except BaseException:
            f.close()
            raise
        self._opened_file = f
        self.remote = False
        return ar

    def __reduce__(self):
        # what the caller gave (fsspec keeps it: explicit options only, never
        # settings read from the environment), a relative local path made
        # absolute; and the archive opened from a path or URL pickled by
        # itself: reopened pinned to the object it was (ETag, or a local
        # file's size and mtime), with its directory if pickle_directory
        args, opts = tuple(self.storage_args), dict(self.storage_options)
        opts.pop("_archive", None)
        if self.archive._reopen is not None:
            return _rebuild_fs, (type(self), args, opts, self.archive)
        if self._local_path is not None:
            if args:
                args = (self._local_path,) + args[1:]
            else:
                opts["fo"] = self._local_path
        return make_instance, (type(self), args, opts)

    def close(self) -> None:
        """Close the archive (and the target file if this filesystem opened it)."""
        ar = getattr(self, "archive", None)
        if ar is not None:
            ar.close()
        f, self._opened_file = getattr(self, "_opened_file", None), None
        if f is not None:
            f.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"<TacoFileSystem {self.fo!r}>"

    __str__ = __repr__

    # -- the index -------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path).lstrip("/")

    def _get_dirs(self) -> None:
        if self.dir_cache is None:
            self.dir_cache = _Listing(self.archive, self.show_internal)

    def _member(self, path: str) -> Member:
        name = self._strip_protocol(path)
        if self.dir_cache is not None:
            m = self.dir_cache.member(name)
        else:  # one name: the C library's lookup, no listing built
            i = -1 if (name in INTERNAL and not self.show_internal) or name.endswith("/") else \
                self.archive._raw.find(name)
            m = self.archive._member_at(i) if i >= 0 else None
        if m is None:
            self._get_dirs()  # a directory, or nothing there
            if name in self.dir_cache:
                raise IsADirectoryError(errno.EISDIR, f"is a directory in TACO archive {self.archive.path}", name)
            raise FileNotFoundError(errno.ENOENT, f"no such member in TACO archive {self.archive.path}", name)
        # a compressed or encrypted member (an archive from another tool):
        # the library's TacozipError (TACOZ_ERR_UNSUPPORTED) naming it, from
        # an empty read at its end (no I/O), before any raw range is read
        self.archive._raw.read_member(self.archive._index(m.name), m.size, 0)
        return m

    def info(self, path, **kwargs):
        try:
            return super().info(path, **kwargs)
        except FileNotFoundError:
            name = self._strip_protocol(path)
            raise FileNotFoundError(errno.ENOENT, f"no such member in TACO archive {self.archive.path}",
                                    name) from None

    def modified(self, path):
        """The member's ZIP timestamp (DOS date and time of its central
        directory entry, read as UTC, 2-second resolution) as an aware
        datetime.  No request: the directory is already read.  DuckDB's
        ``register_filesystem`` asks for it before reading a file."""
        dt = self.archive._raw.member(self.archive._index(self._member(path).name))[8]
        date, time = dt >> 16, dt & 0xFFFF
        try:
            return datetime.datetime(1980 + (date >> 9), (date >> 5) & 15, date & 31, time >> 11, (time >> 5) & 63,
                                     min((time & 31) * 2, 59), tzinfo=datetime.timezone.utc)
        except ValueError:  # an invalid (e.g. zero) DOS date: the earliest one
            return datetime.datetime(1980, 1, 1, tzinfo=datetime.timezone.utc)

    def ls(self, path, detail=True, **kwargs):
        self._get_dirs()
        path = self._strip_protocol(path).rstrip("/")
        names = sorted(self.dir_cache.children(path))
        if not names and path:
            entry = self.info(path)  # FileNotFoundError if there is nothing there
            if entry["type"] == "file":  # like ls of a file: just that file
                return [entry] if detail else [path]
        return self.dir_cache.entries(names) if detail else names

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        self._get_dirs()
        listing = self.dir_cache
        path = self._strip_protocol(path).rstrip("/")
        if path in listing.files:  # like posix find: just that file
            return {path: listing[path]} if detail else [path]
        prefix = path + "/" if path else ""
        found = [n for n in listing.files if n.startswith(prefix)] if prefix else list(listing.files)
        if withdirs:
            found += [d for d in listing.dirs if d.startswith(prefix) or d == path]
        if maxdepth is not None:
            limit = (path.count("/") + 1 if path else 0) + maxdepth
            found = [n for n in found if n.count("/") + 1 <= limit]
        found.sort()
        return dict(zip(found, listing.entries(found))) if detail else found

    # -- reading ---------------------------------------------------------------
    @staticmethod
    def _bounds(size: int, start: Optional[int], end: Optional[int]):
        s = 0 if start is None else (max(size + start, 0) if start < 0 else min(start, size))
        e = size if end is None else (max(size + end, 0) if end < 0 else min(end, size))
        return s, max(e, s)

    def _read(self, m: Member, start: int, end: int) -> bytes:
        """Bytes [start, end) of member m (member coordinates, already clamped)."""
        if end <= start:
            return b""
        if start == 0 and end == m.size:
            return self.archive.read(m.name)  # the local header is checked too
        return self.archive.read_range(m.offset + start, end - start)

    def cat_file(self, path, start=None, end=None, **kwargs):
        m = self._member(path)
        s, e = self._bounds(m.size, start, end)
        return self._read(m, s, e)

    def cat(self, path, recursive=False, on_error="raise", max_gap=None, **kwargs):
        """Contents of one path (bytes) or many ({path: bytes}); many members
        are fetched with one coalesced ``read_many`` (parallel requests for a
        remote archive)."""
        paths = self.expand_path(path, recursive=recursive, **kwargs)
        single = len(paths) == 1 and not isinstance(path, list) and paths[0] == self._strip_protocol(path)
        if single:
            return self.cat_file(paths[0])
        out: Dict[str, Any] = {}
        wanted: Dict[str, Member] = {}  # path -> its member
        self._get_dirs()
        for p in paths:
            if p in self.dir_cache.dirs:
                continue  # expanded from a recursive or glob pattern: its files are there
            try:
                wanted[p] = self._member(p)
            except Exception as exc:  # noqa: BLE001 - reported as asked
                if on_error == "raise":
                    raise
                if on_error == "return":
                    out[p] = exc
        data = self.archive.read_many(list(wanted.values()), max_gap=max_gap) if wanted else {}
        for p, m in wanted.items():
            out[p] = data[m.name]
        return {p: out[p] for p in paths if p in out}

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return", **kwargs):
        """Byte ranges of members, fetched with the C library's coalesced,
        parallel ``read_ranges`` (``max_gap``: coalescing gap in bytes)."""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        n = len(paths)
        starts = starts if isinstance(starts, list) else [starts] * n
        ends = ends if isinstance(ends, list) else [ends] * n
        if len(starts) != n or len(ends) != n:
            raise ValueError("paths, starts and ends must have the same length")
        out: List[Any] = [b""] * n
        ranges, where = [], []
        for i, (p, s, e) in enumerate(zip(paths, starts, ends)):
            try:
                m = self._member(p)
            except Exception as exc:  # noqa: BLE001
                if on_error != "return":
                    raise
                out[i] = exc
                continue
            s, e = self._bounds(m.size, s, e)
            if e > s:
                ranges.append((m.offset + s, e - s))
                where.append(i)
        if ranges:
            for i, data in zip(where, self.archive.read_ranges(ranges, max_gap=max_gap)):
                out[i] = data
        return out

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, cache_type=None,
              size=None, **kwargs):
        if mode != "rb":
            raise _read_only(f"open {path!r} in mode {mode!r}")
        m = self._member(path)
        if cache_type is None:
            cache_type = self.default_cache_type or ("adaptive" if self.remote else "none")
        if block_size in (None, "default"):
            block_size = self.default_block_size or REMOTE_BLOCK_SIZE
        if cache_type == "adaptive":  # the spans of every member file of this filesystem, in archive offsets
            cache_options = {"store": self.spans, "base": m.offset, **(cache_options or {})}
        return TacoMemberFile(self, self._strip_protocol(path), m, block_size=block_size, cache_type=cache_type,
                              cache_options=cache_options, **kwargs)

    # -- read-only -------------------------------------------------------------
    def mkdir(self, path, create_parents=True, **kwargs):
        raise _read_only(f"mkdir {path!r}")

    def makedirs(self, path, exist_ok=False):
        raise _read_only(f"makedirs {path!r}")

    def rmdir(self, path):
        raise _read_only(f"rmdir {path!r}")

    def rm(self, path, recursive=False, maxdepth=None):
        raise _read_only(f"rm {path!r}")

    def rm_file(self, path):
        raise _read_only(f"rm {path!r}")

    def _rm(self, path):
        raise _read_only(f"rm {path!r}")

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        raise _read_only(f"write {path!r}")

    def put_file(self, lpath, rpath, callback=None, mode="overwrite", **kwargs):
        raise _read_only(f"put {rpath!r}")

    def put(self, lpath, rpath, recursive=False, callback=None, maxdepth=None, **kwargs):
        raise _read_only(f"put {rpath!r}")

    def cp_file(self, path1, path2, **kwargs):
        raise _read_only(f"copy to {path2!r}")

    def copy(self, path1, path2, recursive=False, maxdepth=None, on_error=None, **kwargs):
        raise _read_only(f"copy to {path2!r}")

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        raise _read_only(f"move {path1!r}")

    def touch(self, path, truncate=True, **kwargs):
        raise _read_only(f"touch {path!r}")


def _rebuild_fs(cls, args, opts, archive: TacoArchive) -> "TacoFileSystem":
    """Unpickle a TacoFileSystem around its unpickled (reopened) archive."""
    return make_instance(cls, args, {**opts, "_archive": archive})


def _has_leading_slash(name: str) -> bool:
    return name.startswith("/")


def _ancestors(name: str) -> List[str]:
    """The directories above ``name`` ("a/b/c" -> ["a/b", "a"])."""
    out = []
    d = name.rpartition("/")[0]
    while d:
        out.append(d)
        d = d.rpartition("/")[0]
    return out


class _Listing(_MappingABC):
    """The ``dir_cache`` of a TacoFileSystem: path -> fsspec info dict.

    Built from the member names alone (one call into the C library); the
    directories are those the names imply plus explicit ``dir/`` entries.
    A file's info dict (with its archive offset, local header offset and
    CRC) is made when first asked for, so that listing 100,000 members
    builds no per-member objects."""

    def __init__(self, archive: TacoArchive, show_internal: bool):
        self._archive = archive
        names = archive.names()
        #: listed name -> member name where they differ: a name with leading
        #: '/' (another tool's absolute path) is listed without them, as
        #: paths are looked up (_strip_protocol), unless that name exists too
        self._real: Dict[str, str] = {}
        if any(map(_has_leading_slash, names)):
            plain = set(names)
            listed = []
            for n in names:
                k = n.lstrip("/") if n.startswith("/") else n
                if k != n:
                    if not k or k in plain or k in self._real:
                        continue  # no path reaches it: the plain name (or "") is what the path means
                    self._real[k] = n
                listed.append(k)
            names = listed
        implied, explicit = _tacozip.implied_dirs(names)
        files = dict.fromkeys(names)  # ordered: listings come out nearly sorted
        if not show_internal:
            for n in INTERNAL:
                files.pop(n, None)
        dirs: Dict[str, dict] = {}
        for name in explicit:  # explicit directory entries "a/b/"
            if files.pop(name, 0) is None:
                name = name.rstrip("/")
                if name and name not in files:
                    dirs[name] = {"name": name, "size": 0, "type": "directory"}
                    implied.update(_ancestors(name))
        files.pop("", None)
        # a name that is both a file and an implied directory stays a file
        for d in implied:
            if d not in files:
                dirs.setdefault(d, {"name": d, "size": 0, "type": "directory"})
        self.files = files
        self.dirs = dirs
        self._entries: Dict[str, dict] = {}
        self._members: Dict[str, Member] = {}
        self._children: Optional[Dict[str, List[str]]] = None

    def member(self, name: str) -> Optional[Member]:
        """The Member of file ``name``, or None if it is not a listed file."""
        m = self._members.get(name)
        if m is None and name in self.files:
            m = self._members[name] = self._archive[self._real.get(name, name)]
        return m

    def __getitem__(self, name: str) -> dict:
        entry = self._entries.get(name) or self.dirs.get(name)
        if entry is None:
            m = self.member(name)
            if m is None:
                raise KeyError(name)
            entry = self._entries[name] = {"name": name, "size": m.size, "type": "file", "offset": m.offset,
                                           "header_offset": m.header_offset, "crc": m.crc}
        return entry

    def entries(self, names: List[str]) -> List[dict]:
        """Info dicts of ``names``; many at once come from one listing of all members."""
        if len(names) > 64 and len(self._members) < len(self.files):
            for m in self._archive.members:
                if m.name in self.files:
                    self._members.setdefault(m.name, m)
        return [self[n] for n in names]

    def children(self, path: str) -> List[str]:
        """Names of the files and directories directly under ``path`` ("" is the root)."""
        if self._children is None:
            kids: Dict[str, List[str]] = {}
            for n in itertools.chain(self.files, self.dirs):
                kids.setdefault(n.rpartition("/")[0], []).append(n)
            self._children = kids
        return self._children.get(path, [])

    def __contains__(self, name: object) -> bool:
        return name in self.files or name in self.dirs

    def __iter__(self) -> Iterator[str]:
        return itertools.chain(self.files, self.dirs)

    def __len__(self) -> int:
        return len(self.files) + len(self.dirs)


class SpanStore:
    """Byte spans already fetched, in archive coordinates, shared by every
    member file of one TacoFileSystem that uses the ``adaptive`` cache (so
    that opening a member again, or another member whose bytes were fetched
    with a neighbour's, costs nothing).  At most ``max_bytes`` are held; the
    least recently used spans go first.  Thread-safe."""

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = int(max_bytes)
        self._spans: "OrderedDict[int, bytes]" = OrderedDict()  # start -> bytes, in LRU order
        self._starts: List[int] = []  # sorted
        self._held = 0
        self._lock = threading.Lock()

    def at(self, pos: int):
        """(start, bytes) of the span holding ``pos``, or (None, the start
        of the next span after ``pos`` or None)."""
        with self._lock:
            i = bisect.bisect_right(self._starts, pos) - 1
            if i >= 0:
                st = self._starts[i]
                data = self._spans[st]
                if pos < st + len(data):
                    self._spans.move_to_end(st)
                    return st, data
            return None, (self._starts[i + 1] if i + 1 < len(self._starts) else None)

    def keep(self, start: int, data: bytes) -> None:
        with self._lock:
            old = self._spans.pop(start, None)
            if old is None:
                bisect.insort(self._starts, start)
            else:
                self._held -= len(old)
            self._spans[start] = data
            self._held += len(data)
            while self._held > self.max_bytes and len(self._spans) > 1:
                st, gone = self._spans.popitem(last=False)
                self._starts.remove(st)
                self._held -= len(gone)

    @property
    def held(self) -> int:
        return self._held


class AdaptiveCache(BaseCache):
    """fsspec cache ``"adaptive"``, the default of member files of remote
    archives: fetched spans are kept (in ``store``, a :class:`SpanStore`:
    the filesystem's, shared by its member files, or one of ``max_bytes``
    for this file), a read is served from them as far as they hold it, and
    only the missing bytes are fetched, rounded up to ``min_fetch``.  A miss
    that continues where this file's previous fetch ended reads ahead,
    doubling each time up to ``blocksize``: sequential readers (CSV, text,
    one column chunk after another) cost few requests, and scattered small
    reads (HDF5/NetCDF metadata and chunks, a Parquet footer then its row
    group) cost about one small request each, never a block of
    ``blocksize`` per read.  No byte is fetched twice unless evicted.
    ``base``: where the file's byte 0 is in the store's coordinates."""

    name = "adaptive"

    def __init__(self, blocksize: int, fetcher, size: int, min_fetch: int = 256 * 1024,
                 max_bytes: int = 32 * 2**20, store: Optional[SpanStore] = None, base: int = 0) -> None:
        super().__init__(blocksize, fetcher, size)
        self.min_fetch = max(1, min(int(min_fetch), int(blocksize)))
        self.store = store if store is not None else SpanStore(max_bytes)
        self.base = int(base)
        self._last_end = -1  # where this file's last fetch ended
        self._ahead = self.min_fetch  # the next read-ahead when sequential

    def _fetch(self, start, end):
        start = 0 if start is None else start
        end = self.size if end is None else min(end, self.size)
        if start >= end:
            return b""
        out, pos, base = [], start, self.base
        while pos < end:
            st, found = self.store.at(base + pos)
            if st is not None:  # held: copy what this span has
                self.hit_count += 1
                take = found[base + pos - st:base + end - st]
                out.append(take)
                pos += len(take)
                continue
            self.miss_count += 1
            if pos == self._last_end:  # sequential: read ahead, twice as far each time
                self._ahead = min(self._ahead * 2, self.blocksize)
            else:
                self._ahead = self.min_fetch
            stop = min(max(end, pos + self._ahead), self.size)
            if found is not None:
                stop = min(stop, found - base)  # never fetch again what is held
            data = self.fetcher(pos, stop)
            self.total_requested_bytes += stop - pos
            self._last_end = stop
            self.store.keep(base + pos, data)
            take = data[:end - pos]
            out.append(take)
            pos += len(take)
        return b"".join(out)


register_cache(AdaptiveCache, clobber=True)


class TacoMemberFile(AbstractBufferedFile):
    """A member of a TACO archive, read-only, with fsspec's caches
    (``cache_type``: adaptive, none, readahead, blockcache, bytes, first, all...); each
    fetch is one range read of the archive by the C library.  Reads that
    follow each other from byte 0 to the end (``read``, and ``readinto``,
    ``readline``, iteration, which read through it) are checked against the
    member's CRC-32 (as ``tacozip.MemberFile`` reads are), unless the filesystem was
    made with ``check_crc=False``."""

    def __init__(self, fs: TacoFileSystem, path: str, member: Member, **kwargs: Any):
        self.member = member
        self._crc = SequentialCrc(member, fs.archive.path) if fs.archive.check_crc else None
        super().__init__(fs, path, mode="rb", size=member.size, **kwargs)

    def read(self, length=-1):
        pos = self.loc
        out = super().read(length)
        if self._crc is not None:
            try:
                self._crc.feed(pos, out)
            except BaseException:
                self.loc = pos  # as after a failed read: the same read raises again
                raise
        return out

    def _fetch_range(self, start, end):
        s, e = TacoFileSystem._bounds(self.member.size, start, end)
        if e <= s:
            return b""
        return self.fs.archive.read_range(self.member.offset + s, e - s)

    def __repr__(self) -> str:
        return f"<TacoMemberFile {self.path!r} of {self.fs.fo!r}>"
