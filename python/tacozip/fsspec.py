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

import datetime
import errno
import os
from typing import Any, Dict, List, Mapping, Optional

from fsspec.archive import AbstractArchiveFileSystem
from fsspec.core import split_protocol
from fsspec.spec import AbstractBufferedFile, make_instance

from ._archive import Member, TacoArchive
from .exceptions import TacozipIOError

__all__ = ["TacoFileSystem", "TacoMemberFile"]

#: members that hold the archive's own structures, hidden unless show_internal=True
INTERNAL = ("TACO_HEADER", "TACO_INDEX")

#: block size of the default read-ahead cache of member files of remote archives
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
        Options of the target.  For file, http(s) and s3 targets: tacozip's
        remote settings (s3fs names: ``key``, ``secret``, ``token``,
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
        "default_cache_type": "none"})``).  Default: ``"readahead"`` with
        4 MiB blocks for http(s) and s3 targets, ``"none"`` otherwise.
    """

    protocol = "taco"
    root_marker = ""
    # like ZipFileSystem: each filesystem holds its own open archive
    cachable = False

    def __init__(self, fo: Any = "", target_protocol: Optional[str] = None,
                 target_options: Optional[Mapping[str, Any]] = None, show_internal: bool = False,
                 index_first: bool = False, verify_local: bool = False, default_cache_type: Optional[str] = None,
                 default_block_size: Optional[int] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.default_cache_type = default_cache_type
        self.default_block_size = default_block_size
        self.show_internal = bool(show_internal)
        self._opened_file = None  # a target opened here through fsspec, closed by close()
        self._local_path: Optional[str] = None
        try:
            self.archive: TacoArchive = self._open_target(fo, target_protocol, dict(target_options or {}),
                                                          index_first, verify_local)
        except TacozipIOError as e:
            # a missing archive is FileNotFoundError to fsspec's callers (pandas, dask...)
            detail = e.detail or ""
            local = isinstance(fo, (str, os.PathLike)) and split_protocol(os.fspath(fo))[0] in (None, "file", "local")
            if "HTTP 404" in detail or (local and not os.path.exists(split_protocol(os.fspath(fo))[1])):
                raise FileNotFoundError(errno.ENOENT, f"no such TACO archive ({detail or e})",
                                        detail.split(": ")[0] or None) from e
            raise
        self.fo = self.archive.path  # what fsspec's ukey() tokenizes; safe to show
        self.dir_cache: Optional[Dict[str, dict]] = None
        self._members: Dict[str, Member] = {}
        self._dos_times: Optional[Dict[str, int]] = None  # name -> DOS date/time, on the first modified()

    # -- the target ------------------------------------------------------------
    def _open_target(self, fo: Any, target_protocol: Optional[str], options: Dict[str, Any],
                     index_first: bool, verify_local: bool) -> TacoArchive:
        if not isinstance(fo, (str, os.PathLike)):
            if options:
                raise TypeError("target_options do not apply to a file object given as fo")
            # the caller's file object: the C library reads it through callbacks
            self.remote = False
            return TacoArchive(fo, verify_local, index_first)
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
            return TacoArchive(rest, verify_local, index_first, storage_options=settings)
        if proto in _NATIVE:
            # a chained URL arrives stripped of its protocol by the target's
            # filesystem class (s3fs strips "s3://", http keeps the URL)
            url = fo if "://" in fo else f"{proto}://{rest}"
            if proto == "s3a":
                url = "s3://" + url.split("://", 1)[1]
            self.remote = True
            return TacoArchive(url, verify_local, index_first, storage_options=settings)
        # anything else: fsspec opens it, the C library reads the file object
        import fsspec

        url = fo if "://" in fo else f"{proto}://{rest}"
        of = fsspec.open(url, "rb", **options)
        f = of.open()
        try:
            ar = TacoArchive(f, verify_local, index_first)
        except BaseException:
            f.close()
            raise
        self._opened_file = f
        self.remote = False
        return ar

    def __reduce__(self):
        # what the caller gave (fsspec keeps it: explicit options only, never
        # settings read from the environment), a relative local path made absolute
        args, opts = tuple(self.storage_args), dict(self.storage_options)
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
        if self.dir_cache is not None:
            return
        cache: Dict[str, dict] = {}
        files: List[str] = []
        for m in self.archive.members:
            if m.name in INTERNAL and not self.show_internal:
                continue
            name = m.name.rstrip("/")
            if not name:
                continue
            if m.name.endswith("/"):  # an explicit directory entry
                cache[name] = {"name": name, "size": 0, "type": "directory"}
                files.append(name)  # for its parents
                continue
            cache[name] = {"name": name, "size": m.size, "type": "file", "offset": m.offset,
                           "header_offset": m.header_offset, "crc": m.crc}
            self._members[name] = m
            files.append(name)
        # the directories the names imply: every prefix ending before a '/'
        # (member names carry no protocol, so no _strip_protocol per name)
        for name in files:
            d = name.rpartition("/")[0]
            while d and d not in cache:
                cache[d] = {"name": d, "size": 0, "type": "directory"}
                d = d.rpartition("/")[0]
        self.dir_cache = cache

    def _member(self, path: str) -> Member:
        self._get_dirs()
        name = self._strip_protocol(path)
        m = self._members.get(name)
        if m is None:
            if name in self.dir_cache:
                raise IsADirectoryError(errno.EISDIR, f"is a directory in TACO archive {self.archive.path}", name)
            raise FileNotFoundError(errno.ENOENT, f"no such member in TACO archive {self.archive.path}", name)
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
        m = self._member(path)
        if self._dos_times is None:
            self._dos_times = {t[0]: t[8] for t in self.archive._raw.members()}
        dt = self._dos_times[m.name]
        date, time = dt >> 16, dt & 0xFFFF
        try:
            return datetime.datetime(1980 + (date >> 9), (date >> 5) & 15, date & 31, time >> 11, (time >> 5) & 63,
                                     min((time & 31) * 2, 59), tzinfo=datetime.timezone.utc)
        except ValueError:  # an invalid (e.g. zero) DOS date: the earliest one
            return datetime.datetime(1980, 1, 1, tzinfo=datetime.timezone.utc)

    def ls(self, path, detail=True, **kwargs):
        return super().ls(self._strip_protocol(path), detail=detail, **kwargs)

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        self._get_dirs()
        path = self._strip_protocol(path)
        entry = self.dir_cache.get(path)
        if entry is not None and entry["type"] == "file":  # like posix find: just that file
            return {path: entry} if detail else [path]
        prefix = path + "/" if path else ""
        depth0 = path.count("/") + 1 if path else 0
        found = {}
        for name, entry in self.dir_cache.items():
            if not (name.startswith(prefix) or name == path):  # (a directory itself, with withdirs)
                continue
            if maxdepth is not None and name.count("/") + 1 - depth0 > maxdepth:
                continue
            if entry["type"] == "directory" and not withdirs:
                continue
            found[name] = entry
        if detail:
            return dict(sorted(found.items()))
        return sorted(found)

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
        wanted: List[Member] = []
        self._get_dirs()
        for p in paths:
            if self.dir_cache.get(p, {}).get("type") == "directory":
                continue  # expanded from a recursive or glob pattern: its files are there
            try:
                wanted.append(self._member(p))
            except Exception as exc:  # noqa: BLE001 - reported as asked
                if on_error == "raise":
                    raise
                if on_error == "return":
                    out[p] = exc
        data = self.archive.read_many(wanted, max_gap=max_gap) if wanted else {}
        for m in wanted:
            out[m.name] = data[m.name]
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
            cache_type = self.default_cache_type or ("readahead" if self.remote else "none")
        if block_size in (None, "default"):
            block_size = self.default_block_size or REMOTE_BLOCK_SIZE
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


class TacoMemberFile(AbstractBufferedFile):
    """A member of a TACO archive, read-only, with fsspec's caches
    (``cache_type``: none, readahead, blockcache, bytes, first, all...); each
    fetch is one range read of the archive by the C library."""

    def __init__(self, fs: TacoFileSystem, path: str, member: Member, **kwargs: Any):
        self.member = member
        super().__init__(fs, path, mode="rb", size=member.size, **kwargs)

    def _fetch_range(self, start, end):
        s, e = TacoFileSystem._bounds(self.member.size, start, end)
        if e <= s:
            return b""
        return self.fs.archive.read_range(self.member.offset + s, e - s)

    def __repr__(self) -> str:
        return f"<TacoMemberFile {self.path!r} of {self.fs.fo!r}>"
