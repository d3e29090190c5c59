"""tacozip.zarr: a read-only Zarr v3 store over a TACO archive, and
packing a Zarr directory store into one (a zipped Zarr in the member order
of the OME-Zarr single-file proposal, RFC-9).

    >>> import zarr, tacozip.zarr
    >>> tacozip.zarr.pack("image.zarr", "image.taco")          # metadata first, then chunks
    >>> store = tacozip.zarr.TacoStore("https://host/image.taco")
    >>> g = zarr.open_group(store, mode="r")

The store reads the archive with tacozip's C library (a local path, an
``http(s)://`` or ``s3://`` URL, remote settings as ``tacozip.open`` takes
them).  Reads that zarr starts together (the chunks of one selection) are
gathered into one call of the library's coalesced, parallel range reads, so
neighbouring chunks cost one request between them.  See docs/zarr.md.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import threading
import weakref
from bisect import bisect_left
from typing import Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from ._archive import Member, TacoArchive

__all__ = ["TacoStore", "ReadOnlyStoreError", "ZarrPackError", "pack", "pack_order", "METADATA_NAMES"]

#: the archive's own members: never keys of the store
INTERNAL = frozenset({"TACO_HEADER", "TACO_INDEX"})

#: Zarr metadata documents (v3, then v2), in the order they take within one
#: directory when packed: the node's own document first
METADATA_NAMES = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")
_META_RANK = {n: i for i, n in enumerate(METADATA_NAMES)}
#: documents that make a directory a Zarr node (one must be at the root)
_NODE_DOCS = ("zarr.json", ".zgroup", ".zarray")

# event-loop hops a read waits for others started at the same time (the
# chunks of one zarr selection reach the store over two or three hops)
_GATHER_HOPS = 3


class ReadOnlyStoreError(PermissionError, ValueError):
    """A write to a TacoStore.  A PermissionError (EROFS) and, like zarr's
    own read-only errors, a ValueError."""


class ZarrPackError(ValueError):
    """A directory that tacozip.zarr.pack cannot store (raised before
    anything is written)."""


def _norm_root(root: Optional[str]) -> str:
    r = (root or "").strip("/")
    if not r:
        return ""
    parts = r.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"root must be a relative path inside the archive without '.', '..' or '//': {root!r}")
    return r + "/"


def _bounds(size: int, byte_range: Optional[ByteRequest]) -> Tuple[int, int]:
    """[start, end) of a member of ``size`` bytes for a zarr ByteRequest,
    clamped to the member (as zarr's LocalStore and MemoryStore do)."""
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        s, e = byte_range.start, byte_range.end
        if s < 0 or e < 0:
            raise ValueError(f"negative byte range {byte_range!r}")
        s = min(s, size)
        return s, min(max(e, s), size)
    if isinstance(byte_range, OffsetByteRequest):
        if byte_range.offset < 0:
            raise ValueError(f"negative offset {byte_range!r}")
        return min(byte_range.offset, size), size
    if isinstance(byte_range, SuffixByteRequest):
        if byte_range.suffix < 0:
            raise ValueError(f"negative suffix {byte_range!r}")
        return max(size - byte_range.suffix, 0), size
    raise TypeError(f"unexpected byte_range, got {byte_range!r}")


class _Read:
    """One read waiting in a batch: [start, end) of member m."""

    __slots__ = ("m", "start", "end", "future", "result", "error")

    def __init__(self, m: Member, start: int, end: int, future: Optional[asyncio.Future] = None):
        self.m, self.start, self.end, self.future = m, start, end, future
        self.result: Optional[bytes] = None
        self.error: Optional[BaseException] = None

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end == self.m.size


class TacoStore(Store):
    """A read-only Zarr store over the members of a TACO archive (or any
    STORE-only ZIP): member ``ROOT/KEY`` is the value of ``KEY``.

    Parameters
    ----------
    archive : str, os.PathLike or tacozip.TacoArchive
        A local path, an ``http(s)://`` or ``s3://`` URL, or an open archive
        (shared, not closed by the store).
    root : str
        A directory inside the archive that is the root of the store
        (default: the archive's root).
    storage_options, **remote
        Remote settings for a URL, as ``tacozip.open`` takes them (``key``,
        ``secret``, ``anon``, ``endpoint_url``, ``region``, ``client_kwargs``,
        ``parallel``, ``max_gap``, ...).
    index_first, verify_local, check_crc, pickle_directory
        Passed to ``tacozip.open``.  Whole-member reads (every chunk read
        without a byte range) are checked against the member's CRC-32
        unless ``check_crc=False``.
    max_gap : int, optional
        Coalescing gap of batched reads in bytes (default: the library's,
        1 MiB).
    read_only : bool
        Must be True (the default): the store never writes.
    """

    supports_writes = False
    supports_deletes = False
    supports_listing = True

    def __init__(self, archive: Union[str, "os.PathLike[str]", TacoArchive], *, root: str = "",
                 read_only: bool = True, storage_options: Optional[Mapping[str, Any]] = None,
                 index_first: bool = False, verify_local: bool = False, check_crc: bool = True,
                 pickle_directory: bool = False, max_gap: Optional[int] = None, **remote: Any) -> None:
        if not read_only:
            raise ReadOnlyStoreError(errno.EROFS, "tacozip.zarr.TacoStore is read-only (read_only=False was given); "
                                                  "write a directory store and pack it with tacozip.zarr.pack()")
        super().__init__(read_only=True)
        if isinstance(archive, TacoArchive):
            if storage_options or remote:
                raise TypeError("remote settings do not apply to an archive that is already open")
            self._archive, self._owns = archive, False
        else:
            self._archive = TacoArchive(archive, verify_local, index_first, storage_options=storage_options,
                                        pickle_directory=pickle_directory, check_crc=check_crc, **remote)
            self._owns = True
        self.root = _norm_root(root)
        self.max_gap = max_gap
        self._lock = threading.Lock()
        self._pending: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, List[_Read]]" = \
            weakref.WeakKeyDictionary()
        try:
            self._index()
        except BaseException:
            if self._owns:
                self._archive.close()
            raise
        self._is_open = True

    # -- the key index ---------------------------------------------------------
    def _index(self) -> None:
        keys: Dict[str, Member] = {}
        n = len(self.root)
        for m in self._archive.members:
            name = m.name
            if name in INTERNAL or name.endswith("/") or not name.startswith(self.root):
                continue  # the archive's own members, directory entries, members outside the root
            keys[name[n:]] = m
        if self.root and not keys:
            raise ValueError(f"{self._archive.path}: no member under root {self.root!r}")
        self._members = keys
        self._sorted = sorted(keys)

    @property
    def archive(self) -> TacoArchive:
        """The open archive the store reads."""
        return self._archive

    @property
    def stats(self) -> Optional[Tuple[int, int]]:
        """(requests, body bytes) made so far by the archive if it is remote, else None."""
        return self._archive.stats

    # -- life cycle --------------------------------------------------------------
    @classmethod
    async def open(cls, *args: Any, **kwargs: Any) -> "TacoStore":
        """Open the archive in a worker thread (a remote open makes requests)."""
        return await asyncio.to_thread(cls, *args, **kwargs)

    async def _open(self) -> None:
        if self._archive.closed:
            if not self._owns or self._archive._reopen is None:
                raise ValueError(f"the archive of this store was closed ({self._archive.path!r})")
            src, verify_local, index_first, storage_options, remote = self._archive._reopen
            check_crc = self._archive.check_crc
            pickle_directory = self._archive.pickle_directory
            self._archive = await asyncio.to_thread(
                TacoArchive, src, verify_local, index_first, storage_options=storage_options,
                pickle_directory=pickle_directory, check_crc=check_crc, **remote)
            self._index()
        self._is_open = True

    def close(self) -> None:
        """Close the store, and the archive if the store opened it (a later
        read opens it again)."""
        super().close()
        if self._owns:
            self._archive.close()

    def with_read_only(self, read_only: bool = False) -> "TacoStore":
        if not read_only:
            raise ReadOnlyStoreError(errno.EROFS, "tacozip.zarr.TacoStore is read-only: no writable copy exists")
        return _rebuild_shared(self._archive, self.root, self.max_gap)

    def _source(self) -> Any:
        r = self._archive._reopen
        return r[0] if r is not None else ("file object", id(self._archive))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TacoStore) and self._source() == other._source() and self.root == other.root)

    __hash__ = None  # type: ignore[assignment]

    def __dask_tokenize__(self):
        return ("tacozip.zarr.TacoStore", str(self._source()), self.root, self._archive.identity,
                self._archive._stamp)

    def __str__(self) -> str:
        return f"taco://{self.root}::{self._archive.path}" if self.root else f"taco://{self._archive.path}"

    def __repr__(self) -> str:
        return f"TacoStore({str(self)!r})"

    def __reduce__(self):
        # the archive pickles to what reopens it, pinned to the same bytes
        # (see TacoArchive.__reduce__); the unpickled store owns the reopened archive
        return (_rebuild, (self._archive, self.root, self.max_gap))

    # -- reads -------------------------------------------------------------------
    def _fetch(self, reads: Sequence[_Read]) -> None:
        """Run in a worker thread: fill each read's result or error.  Whole
        members go through read_many (local header and CRC-32 checked),
        byte ranges through read_ranges; both coalesce neighbours and, for
        a remote archive, fetch in parallel.  If a batched call fails, each
        read is tried alone so that the error is the one of its own key."""
        ar = self._archive
        whole = [r for r in reads if r.whole and r.end > 0]
        parts = [r for r in reads if not r.whole and r.end > r.start]
        for r in reads:
            if r.end <= r.start:
                r.result = b""
        if whole:
            try:
                got = ar.read_many([r.m.name for r in whole], max_gap=self.max_gap)
                for r in whole:
                    r.result = got[r.m.name]
            except Exception:  # noqa: BLE001 - each read alone says which member fails
                for r in whole:
                    try:
                        r.result = ar.read(r.m.name)
                    except Exception as e:  # noqa: BLE001
                        r.error = e
        if parts:
            try:
                for r, data in zip(parts, ar.read_ranges([(r.m.offset + r.start, r.end - r.start) for r in parts],
                                                         max_gap=self.max_gap)):
                    r.result = data
            except Exception:  # noqa: BLE001
                for r in parts:
                    try:
                        r.result = ar.read_range(r.m.offset + r.start, r.end - r.start)
                    except Exception as e:  # noqa: BLE001
                        r.error = e

    def _submit(self, m: Member, start: int, end: int) -> "asyncio.Future[bytes]":
        """Queue a read on the running loop's batch; the batch is fetched
        once the reads started at the same time have joined it."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            batch = self._pending.get(loop)
            first = batch is None
            if first:
                batch = self._pending[loop] = []
            batch.append(_Read(m, start, end, fut))
        if first:
            loop.call_soon(self._gather, loop, _GATHER_HOPS)
        return fut

    def _gather(self, loop: asyncio.AbstractEventLoop, hops: int) -> None:
        if hops > 0:
            loop.call_soon(self._gather, loop, hops - 1)
            return
        with self._lock:
            batch = self._pending.pop(loop, None)
        if batch:
            loop.create_task(self._run(batch))

    async def _run(self, batch: List[_Read]) -> None:
        try:
            await asyncio.to_thread(self._fetch, batch)
        except BaseException as e:  # noqa: BLE001 - e.g. the executor shut down: every read fails with it
            for r in batch:
                if r.result is None and r.error is None:
                    r.error = e
        for r in batch:
            if r.future.done():  # cancelled by its caller
                continue
            if r.error is not None:
                r.future.set_exception(r.error)
            else:
                r.future.set_result(r.result)

    async def get(self, key: str, prototype: Optional[BufferPrototype] = None,
                  byte_range: Optional[ByteRequest] = None) -> Optional[Buffer]:
        if not self._is_open:
            await self._open()
        m = self._members.get(key)
        if m is None:
            return None
        if prototype is None:
            prototype = default_buffer_prototype()
        start, end = _bounds(m.size, byte_range)
        if end <= start:
            return prototype.buffer.from_bytes(b"")
        data = await self._submit(m, start, end)
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[Tuple[str, Optional[ByteRequest]]]) -> List[Optional[Buffer]]:
        """All the ranges in one call of the coalesced, parallel reads."""
        if not self._is_open:
            await self._open()
        out: List[Optional[Buffer]] = []
        reads: List[Tuple[int, _Read]] = []
        for key, byte_range in key_ranges:
            m = self._members.get(key)
            out.append(None)
            if m is not None:
                s, e = _bounds(m.size, byte_range)
                reads.append((len(out) - 1, _Read(m, s, e)))
        if reads:
            await asyncio.to_thread(self._fetch, [r for _, r in reads])
        for i, r in reads:
            if r.error is not None:
                raise r.error
            out[i] = prototype.buffer.from_bytes(r.result)
        return out

    async def _get_many(self, requests):
        """Started together: fetched in one batch."""
        requests = list(requests)
        tasks = [asyncio.ensure_future(self.get(*req)) for req in requests]
        for req, task in zip(requests, tasks):
            yield (req[0], await task)

    async def exists(self, key: str) -> bool:
        return key in self._members

    async def getsize(self, key: str) -> int:
        m = self._members.get(key)
        if m is None:
            raise FileNotFoundError(key)
        return m.size

    async def getsize_prefix(self, prefix: str) -> int:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return sum(self._members[k].size for k in self._keys_with(prefix))

    def _keys_with(self, prefix: str) -> Iterable[str]:
        keys = self._sorted
        i = bisect_left(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix):
            yield keys[i]
            i += 1

    # -- listing (from the directory read at open: no request) -------------------
    async def list(self) -> AsyncIterator[str]:
        for k in self._sorted:
            yield k

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for k in self._keys_with(prefix):
            yield k

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        head = prefix + "/" if prefix else ""
        seen = set()
        for k in self._keys_with(head):
            child = k[len(head):].split("/", 1)[0]
            if child and child not in seen:
                seen.add(child)
                yield child

    # -- writes: refused ----------------------------------------------------------
    def _refuse(self, what: str) -> ReadOnlyStoreError:
        return ReadOnlyStoreError(errno.EROFS, f"tacozip.zarr.TacoStore is read-only: cannot {what} "
                                               f"({self._archive.path}); write a directory store and pack it "
                                               "with tacozip.zarr.pack()")

    async def set(self, key: str, value: Buffer) -> None:
        raise self._refuse(f"set {key!r}")

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        raise self._refuse(f"set {key!r}")

    async def _set_many(self, values) -> None:
        raise self._refuse("set keys")

    async def delete(self, key: str) -> None:
        raise self._refuse(f"delete {key!r}")

    async def delete_dir(self, prefix: str) -> None:
        raise self._refuse(f"delete {prefix!r}")

    async def clear(self) -> None:
        raise self._refuse("clear the store")


def _rebuild(archive: TacoArchive, root: str, max_gap: Optional[int]) -> TacoStore:
    """Unpickle a TacoStore around its reopened archive (which it owns)."""
    s = TacoStore(archive, root=root, max_gap=max_gap)
    s._owns = True
    return s


def _rebuild_shared(archive: TacoArchive, root: str, max_gap: Optional[int]) -> TacoStore:
    s = TacoStore(archive, root=root, max_gap=max_gap)
    s._is_open = False  # with_read_only: "not automatically opened"
    return s


# ============================================================================ packing

def _is_metadata(name: str) -> bool:
    return name.rsplit("/", 1)[-1] in _META_RANK


def _order_key_meta(name: str):
    d, _, base = name.rpartition("/")
    return (name.count("/"), d, _META_RANK[base])


def pack_order(names: Iterable[str]) -> List[str]:
    """The member order of a packed Zarr store: the metadata documents
    (``zarr.json``, ``.zgroup``, ``.zarray``, ``.zattrs``, ``.zmetadata``)
    first, breadth first (the root's first, then by depth, then by
    directory name; within a directory in that order), then every other
    file (the chunks) by path."""
    names = list(names)
    meta = sorted((n for n in names if _is_metadata(n)), key=_order_key_meta)
    rest = sorted(n for n in names if not _is_metadata(n))
    return meta + rest


def _walk(src: str) -> List[Tuple[str, str]]:
    """(name relative to src, path) of every file under src, following
    symbolic links; raises ZarrPackError for what cannot be stored."""
    try:
        st = os.stat(src)
    except OSError as e:
        raise ZarrPackError(f"{src}: {e.strerror} (nothing written)") from e
    if not stat.S_ISDIR(st.st_mode):
        raise ZarrPackError(f"{src}: not a directory (a Zarr directory store is a directory; nothing written)")
    out: List[Tuple[str, str]] = []
    problems: List[str] = []

    def walk(path: str, prefix: str, ancestors: Tuple[Tuple[int, int], ...]) -> None:
        try:
            entries = sorted(os.listdir(path))
        except OSError as e:
            problems.append(f"{path}: {e.strerror}")
            return
        for name in entries:
            p = os.path.join(path, name)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                shown = os.fsencode(p).decode("utf-8", "backslashreplace")
                problems.append(f"{shown}: the name is not UTF-8 (ZIP member names are)")
                continue
            rel = prefix + name
            lst = None
            try:
                lst = os.lstat(p)
                st = os.stat(p) if stat.S_ISLNK(lst.st_mode) else lst
            except OSError as e:
                if e.errno == errno.ELOOP:
                    problems.append(f"{p}: symbolic link loop")
                elif lst is not None and stat.S_ISLNK(lst.st_mode):
                    problems.append(f"{p}: broken symbolic link ({e.strerror})")
                else:
                    problems.append(f"{p}: {e.strerror}")
                continue
            if stat.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    problems.append(f"{p}: symbolic link loop (it leads back to a directory above it)")
                    continue
                walk(p, rel + "/", ancestors + (ident,))
            elif stat.S_ISREG(st.st_mode):
                out.append((rel, p))
            else:
                problems.append(f"{p}: not a regular file or directory")

    walk(src, "", ((st.st_dev, st.st_ino),))
    if problems:
        raise ZarrPackError("cannot pack " + src + ": " + "; ".join(problems) + " (nothing written)")
    names = {n for n, _ in out}
    if not any(d in names for d in _NODE_DOCS):
        raise ZarrPackError(f"{src}: not a Zarr store: no zarr.json, .zgroup or .zarray at its root "
                            "(nothing written)")
    for n in INTERNAL:
        if n in names:
            raise ZarrPackError(f"{src}: a file named {n} at the root clashes with the archive's own member "
                                "(nothing written)")
    return out


def pack(src_dir: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"], *,
         entries: Optional[Sequence[Any]] = None, alignment: int = 0,
         **create_options: Any) -> List[Tuple[int, int]]:
    """Write the Zarr v2 or v3 directory store ``src_dir`` as a TACO
    archive ``out`` whose member names are the paths relative to
    ``src_dir``, in ``pack_order``: metadata documents first, breadth
    first, then the chunks by path; STORED, ZIP64 where needed.

    Header entry 0 is the byte span of the metadata block (from the first
    metadata member's local header to the end of the last one's data)
    unless ``entries`` are given (numbers, or entries planned by name such
    as ``tacozip.data(...)``): ``tacozip.span(members=...)`` of the
    metadata documents, resolved from the layout before anything is written
    and written once, whatever ``alignment`` and ``index``.  ``alignment`` and the other keyword
    arguments (``fsync``, ``progress``, ``index``) are those of
    ``tacozip.create``.  Returns the header entries written.

    Symbolic links are followed; a link loop, a name that is not UTF-8, a
    file that is neither regular nor a directory, or a directory without a
    metadata document at its root raise ZarrPackError before anything is
    written.  Nothing is left at ``out`` on failure (``tacozip.create`` is
    atomic)."""
    from ._api import create, read_header
    from .writer import span

    src = os.fspath(src_dir)
    dest = os.path.abspath(os.fspath(out))
    files = dict(_walk(src))
    names = pack_order(files)
    sources = [files[n] for n in names]
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise FileNotFoundError(errno.ENOENT, "the directory of the archive does not exist", dest)
    if os.path.isdir(dest):
        raise IsADirectoryError(errno.EISDIR, "the archive path is a directory", dest)
    if entries is None:
        entries = [span(members=[n for n in names if _is_metadata(n)])]
    create(dest, sources, names, entries, alignment=alignment, **create_options)
    return [tuple(e) for e in read_header(dest)]  # type: ignore[misc]
