"""The streaming writer, header entries planned by name, and ``plan()``.

``tacozip.Writer`` writes one archive member by member (files, bytes, file
objects, iterables of chunks, of known or unknown length) to a local path
or an ``s3://`` URL; nothing appears under the output name until it is
closed.  Header entries may be given by what they cover instead of by
numbers: ``tacozip.data(name)``, ``tacozip.span(prefix=...)`` /
``tacozip.span(members=[...])`` and ``tacozip.directory()``, resolved when
the archive is written (the header is written once).  ``tacozip.plan()``
computes the layout without writing anything.  See docs/python.md.
"""

import operator
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _tacozip
from ._remote import _collect, remote_options
from .config import TACO_HEADER_MAX_ENTRIES

PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int, int, int], Optional[bool]]

# TACOZIP_NO_SPOOL_MEMORY of tacozip.h: spool_limit=0 (straight to the file)
_NO_SPOOL_MEMORY = (1 << 64) - 1


# --------------------------------------------------------------------------- planned entries

@dataclass(frozen=True, repr=False)
class PlannedEntry:
    """A header entry given by what it covers, resolved to ``(offset,
    length)`` when the archive is written (or by ``tacozip.plan()``).  Make
    one with ``tacozip.data()``, ``tacozip.span()`` or
    ``tacozip.directory()``; it may be mixed with plain ``(offset, length)``
    pairs in ``entries``.

    ``kind`` is ``"data"`` (the data of member ``name``), ``"prefix"`` (the
    span of every member whose name starts with ``name``), ``"members"``
    (the span of the members ``names``) or ``"directory"`` (the central
    directory and end records, to the end of the archive)."""

    kind: str
    name: Optional[str] = None
    names: Optional[Tuple[str, ...]] = None

    def __repr__(self) -> str:
        if self.kind == "data":
            return f"tacozip.data({self.name!r})"
        if self.kind == "prefix":
            return f"tacozip.span(prefix={self.name!r})"
        if self.kind == "members":
            return f"tacozip.span(members={list(self.names or ())!r})"
        return "tacozip.directory()"

    def _c(self) -> tuple:
        """The extension's form of the entry."""
        if self.kind == "directory":
            return ("directory",)
        if self.kind == "members":
            return ("members", list(self.names or ()))
        return (self.kind, self.name)


def _member_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError(f"{what} must not be empty")
    if "\0" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character")
    return name


def data(name: str) -> PlannedEntry:
    """The header entry ``(data offset, size)`` of member ``name``: what
    tacotoolbox stores for COLLECTION.json and each metadata Parquet file."""
    return PlannedEntry("data", _member_name(name, "the member name"))


def span(prefix: Optional[str] = None, members: Optional[Iterable[str]] = None) -> PlannedEntry:
    """The header entry covering several members, local headers included
    (from the lowest local header to the highest end of data; what
    ``TacoArchive.span()`` computes and ``tacozip.decode_span()`` decodes):
    every member whose name starts with ``prefix`` (e.g. ``"data/val/"``;
    ``""``: all of them), or the ``members`` named.  Give exactly one of the two."""
    if (prefix is None) == (members is None):
        raise TypeError("span() takes exactly one of prefix= and members=")
    if prefix is not None:
        if not isinstance(prefix, str):
            raise TypeError(f"the prefix must be a str, not {type(prefix).__name__}")
        if "\0" in prefix:
            raise ValueError(f"the prefix {prefix!r} contains a NUL character")
        return PlannedEntry("prefix", prefix)  # "" is every member
    if isinstance(members, (str, bytes)):
        raise TypeError("span(members=...) takes a sequence of member names, not a single "
                        f"{type(members).__name__} (put it in a list, or use prefix=)")
    names = tuple(_member_name(n, "a member name") for n in members)
    if not names:
        raise ValueError("span(members=...) needs at least one member name")
    return PlannedEntry("members", names=names)


def directory() -> PlannedEntry:
    """The header entry covering the archive's central directory and end
    records, to the end of the file: one read of it lists every member."""
    return PlannedEntry("directory")


Entry = Union[Tuple[int, int], PlannedEntry]


def _entries(entries: Iterable[Entry]) -> Tuple[list, bool]:
    """(the extension's form, whether any entry is planned).  Plain pairs
    are checked as create() checks them (integers as they are, a float is a
    TypeError; more than 7 entries is a ValueError)."""
    if isinstance(entries, (str, bytes, PlannedEntry)):
        raise TypeError("entries must be a sequence of (offset, length) pairs or planned entries "
                        "(put a single entry in a list)")
    items = list(entries)
    if len(items) > TACO_HEADER_MAX_ENTRIES:
        raise ValueError(f"Too many entries: {len(items)} > {TACO_HEADER_MAX_ENTRIES}")
    out: list = []
    planned = False
    for i, e in enumerate(items):
        if isinstance(e, PlannedEntry):
            out.append(e._c())
            planned = True
            continue
        try:
            o, n = e
        except (TypeError, ValueError):
            raise TypeError(f"entry {i}: expected an (offset, length) pair or a planned entry "
                            f"(tacozip.data/span/directory), not {e!r}") from None
        out.append((operator.index(o), operator.index(n)))
    return out, planned


def _remote_for(path: str, remote: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """The extension's remote options for ``path``: a URL gets the caller's
    settings completed from the environment (AWS_*, read now) as
    ``tacozip.open`` does; for a local path they are checked and unused."""
    if remote is not None and not isinstance(remote, Mapping):
        raise TypeError("remote must be a mapping of remote settings (as tacozip.open takes them)")
    if _tacozip.is_url(path):
        return remote_options(remote)
    _collect(remote, {})  # unknown names are still an error
    return None


def _u64(value: Optional[int], what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int")
    v = operator.index(value)
    if v < 0:
        raise ValueError(f"{what} must be >= 0, not {v}")
    return v


def _mtime(value: Optional[int]) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("mtime must be an int (Unix seconds) or None")
    if isinstance(value, float):
        value = int(value)
    return operator.index(value)


# --------------------------------------------------------------------------- streams

class _Chunks:
    """An iterable of bytes-like chunks as a reader for the extension:
    readinto(b) fills ``b`` from the current chunk (empty chunks are
    skipped; 0 means the iterable is exhausted)."""

    __slots__ = ("_it", "_view", "_pos")

    def __init__(self, iterable: Iterable[Any]) -> None:
        self._it: Iterator[Any] = iter(iterable)
        self._view: Optional[memoryview] = None
        self._pos = 0

    def readinto(self, b: memoryview) -> int:
        while self._view is None or self._pos >= len(self._view):
            if self._view is not None:
                self._view.release()
                self._view = None
            try:
                chunk = next(self._it)
            except StopIteration:
                return 0
            if isinstance(chunk, str):
                raise TypeError("a stream's chunks must be bytes-like, not str")
            view = memoryview(chunk)
            if view.ndim != 1 or view.itemsize != 1:
                view = view.cast("B")
            self._view, self._pos = view, 0
        n = min(len(b), len(self._view) - self._pos)
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n


def _reader(source: Any) -> Any:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError("add_stream() takes a binary file object or an iterable of bytes-like chunks; "
                        "use add_bytes() for one buffer")
    if isinstance(source, str):
        raise TypeError("add_stream() takes a binary file object or an iterable of bytes-like chunks, not str")
    if hasattr(source, "readinto") or hasattr(source, "read"):
        return source
    try:
        return _Chunks(source)
    except TypeError:
        raise TypeError("add_stream() takes a binary file object (readinto() or read()) or an iterable of "
                        f"bytes-like chunks, not {type(source).__name__}") from None


# --------------------------------------------------------------------------- the writer

class Writer:
    """Write a TACO archive member by member.

    ``path_or_url`` is a local path or an ``s3://bucket/key`` URL.  Nothing
    is visible under it until ``close()`` succeeds; ``abort()``, a failed
    add or a failed close leave nothing (no file, an existing file
    untouched; no S3 object, no pending multipart upload).  As a context
    manager it closes on normal exit and aborts (then re-raises) when the
    block raises.

    The layout is the default one (the one tacotoolbox predicts; what
    ``tacozip.create`` and ``tacozip.plan`` give for the same members, with
    the same ``alignment``); ``index=True`` is not available here (use
    ``tacozip.create``).  A member of unknown length is spooled first: in
    memory up to ``spool_limit`` bytes (default 64 MiB; 0: straight to the
    file, through a 1 MiB buffer), then in an unnamed temporary file in ``spool_dir`` (default
    ``tempfile.gettempdir()``, i.e. ``$TMPDIR``), which leaves nothing
    behind.

    ``entries``: header entries, plain ``(offset, length)`` pairs and
    planned ones (``tacozip.data``, ``tacozip.span``,
    ``tacozip.directory``), resolved at close against every member added
    (``set_entries()`` replaces them).  ``mtime``: Unix seconds for every
    member's DOS time (UTC), default each file's own time and now for
    bytes and streams.  ``fsync=False``: faster, not durable.
    ``progress(done_bytes, total_bytes, done_files, total_files)``: return
    True to cancel.

    S3 output: ``remote`` holds the remote settings as ``tacozip.open``
    takes them (``key``, ``secret``, ``token``, ``region``,
    ``endpoint_url``, ``retries``...; what is not given comes from the
    environment, ``AWS_*``); ``part_size`` (bytes, at least 5 MiB),
    ``upload_parallel`` (parts uploaded at once, default 4) and
    ``expected_size`` (an archive expected to fit in one part is sent with
    one PUT) tune the multipart upload.
    """

    def __init__(self, path_or_url: PathLike, *, entries: Optional[Iterable[Entry]] = None, alignment: int = 0,
                 mtime: Optional[int] = None, fsync: bool = True, spool_limit: Optional[int] = None,
                 spool_dir: Optional[PathLike] = None, part_size: Optional[int] = None,
                 upload_parallel: Optional[int] = None, expected_size: Optional[int] = None,
                 remote: Optional[Mapping[str, Any]] = None, progress: Optional[Progress] = None) -> None:
        self._w = None
        path = os.fspath(path_or_url)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        self.path = path
        checked = None if entries is None else _entries(entries)[0]
        opts = _remote_for(path, remote)
        if spool_limit is None:
            spool = 0
        else:
            spool = _u64(spool_limit, "spool_limit")
            if spool == 0:
                spool = _NO_SPOOL_MEMORY
        if spool_dir is None:
            spool_dir = tempfile.gettempdir()
        parallel = 0 if upload_parallel is None else operator.index(upload_parallel)
        if parallel < 0:
            raise ValueError(f"upload_parallel must be >= 1, not {parallel}")
        w = _tacozip.Writer(path, alignment, bool(fsync), _mtime(mtime), progress, spool, os.fspath(spool_dir),
                            _u64(part_size, "part_size"), parallel, _u64(expected_size, "expected_size"), opts)
        if checked is not None:
            try:
                w.set_entries(checked)
            except BaseException:
                w.abort()
                raise
        self._w = w
        self._written: Optional[List[Tuple[int, int]]] = None

    def __repr__(self) -> str:
        state = "open" if not self.closed else ("written" if self._written is not None else "closed")
        return f"<tacozip.Writer {_tacozip.display_name(self.path)!r} {state}>"

    @property
    def closed(self) -> bool:
        """True once closed, aborted, or failed."""
        return self._w is None or self._w.closed

    @property
    def entries(self) -> Optional[List[Tuple[int, int]]]:
        """The header entries written (after a successful close), else None."""
        return None if self._written is None else list(self._written)

    def _raw(self):
        if self._w is None:
            raise ValueError("I/O operation on a closed writer")
        return self._w

    def add_file(self, path: PathLike, name: Optional[str] = None) -> None:
        """Add the regular file ``path`` as member ``name`` (default: its
        base name).  A file that changes size while read fails with
        TacozipError TACOZ_ERR_CHANGED."""
        if name is not None:
            _member_name(name, "name")
        self._raw().add_file(os.fspath(path), name)

    def add_bytes(self, name: str, data: Any, mtime: Optional[int] = None) -> None:
        """Add a bytes-like object ``data`` as member ``name``."""
        _member_name(name, "name")
        self._raw().add_buffer(name, data, _mtime(mtime))

    def add_stream(self, name: str, source: Any, size: Optional[int] = None, mtime: Optional[int] = None) -> None:
        """Add member ``name`` from ``source``: a binary file object (its
        ``readinto()``, else ``read()``, until it returns no bytes) or an
        iterable of bytes-like chunks (a generator...).  ``size``: the
        length if known (nothing is spooled; a stream that ends early or
        goes on past it fails with TacozipError TACOZ_ERR_CHANGED), else
        None (spooled, see the class).  An exception raised by the source
        aborts the writer and propagates as itself."""
        _member_name(name, "name")
        reader = _reader(source)
        if size is not None:
            size = _u64(size, "size")
        self._raw().add_stream(name, reader, size, _mtime(mtime))

    def set_entries(self, entries: Iterable[Entry]) -> None:
        """Replace the header entries (at most 7): ``(offset, length)``
        pairs and planned entries, resolved at close."""
        self._raw().set_entries(_entries(entries)[0])

    def close(self) -> List[Tuple[int, int]]:
        """Resolve the entries, write the header, the central directory and
        the end records, and make the archive visible.  Returns the header
        entries written.  On failure nothing is left and the error is
        raised (an entry naming no member: TacozipError
        TACOZ_ERR_NOT_FOUND)."""
        self._written = self._raw().close()
        return list(self._written)

    def abort(self) -> None:
        """Drop everything written (no file, no object, no pending upload).
        Does nothing on a closed writer."""
        if self._w is not None:
            self._w.abort()

    def __enter__(self) -> "Writer":
        self._raw()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            if not self.closed:
                self.close()
        else:
            self.abort()
        return False


# --------------------------------------------------------------------------- plan

class PlannedMember(NamedTuple):
    """Where one member goes: its local header at ``header_offset``, its
    ``size`` bytes of data at ``data_offset``."""

    name: str
    header_offset: int
    data_offset: int
    size: int


@dataclass(frozen=True)
class Plan:
    """The layout ``tacozip.create`` writes for the given members:
    ``members`` in archive order, ``entries`` the header entries resolved
    to ``(offset, length)``, ``directory_offset`` where the central
    directory starts."""

    members: List[PlannedMember]
    entries: List[Tuple[int, int]]
    directory_offset: int


def plan(src_files: Sequence[PathLike], arc_files: Optional[Sequence[str]] = None,
         entries: Optional[Iterable[Entry]] = None, *, sizes: Optional[Sequence[int]] = None, alignment: int = 0,
         index: bool = False) -> Plan:
    """Compute, without writing anything, the layout that
    ``tacozip.create(zip_path, src_files, arc_files, entries,
    alignment=..., index=...)`` writes (and a ``Writer`` given the same
    members in the same order, without index).  Sizes are ``sizes`` if
    given (the files then need not exist yet), else the files' current
    sizes.  ``entries`` defaults to ``[(0, 0)]`` as for create.

    Raises TacozipError: TACOZ_ERR_NOT_FOUND (an entry names a member or a
    prefix that is not planned), TACOZ_ERR_EXISTS (a duplicate or reserved
    name), TACOZ_ERR_PARAM (a bad name or alignment)."""
    from ._api import _names, _sources

    srcs = _sources(src_files)
    names = _names(srcs, arc_files)
    if sizes is None:
        sz = [os.stat(s).st_size for s in srcs]
    else:
        if isinstance(sizes, (str, bytes)):
            raise TypeError("sizes must be a sequence of int")
        sz = [_u64(s, "size") for s in sizes]
        if len(sz) != len(names):
            raise ValueError(f"sizes count ({len(sz)}) must match source files count ({len(names)})")
    checked = None if entries is None else _entries(entries)[0]
    headers, datas, dir_off, resolved = _tacozip.plan(names, sz, checked, alignment, bool(index))
    members = [PlannedMember(n, h, d, s) for n, h, d, s in zip(names, headers, datas, sz)]
    return Plan(members, [tuple(e) for e in resolved], dir_off)


# --------------------------------------------------------------------------- create with planned entries

def _create_planned(zip_path: PathLike, src_files, arc_files, entries, *, alignment: int, fsync: bool,
                    progress, index: bool, mtime: Optional[int], remote: Optional[Mapping[str, Any]]) -> None:
    """tacozip.create for planned entries or an s3:// URL (see _api.create)."""
    import pathlib

    from ._api import _names, _sources

    srcs = _sources(src_files)
    names = _names(srcs, arc_files)
    checked = None if entries is None else _entries(entries)[0]
    path = os.fspath(zip_path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    opts = _remote_for(path, remote)
    if not _tacozip.is_url(path):
        path = str(pathlib.Path(path).resolve())
    _tacozip.create_planned(path, srcs, names, checked, alignment, bool(fsync), _mtime(mtime), progress,
                            bool(index), opts)
