"""tacozip.open(): an archive object with a member index, byte-exact ranges
and file objects that read only the bytes asked for."""

import io
import os
from typing import Any, Callable, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _tacozip
from ._remote import source_args


class Member(NamedTuple):
    """One member: ``[offset, offset + size)`` is the exact byte range of its
    data in the archive; ``header_offset`` is where its local header starts."""

    name: str
    offset: int
    size: int
    crc: int
    header_offset: int
    method: int = 0


class SequentialCrc:
    """The CRC-32 of a member file's reads while they follow each other from
    byte 0: each read that starts where the previous one ended extends it,
    a read at byte 0 starts it again, any other read (after a seek away, or
    bytes skipped) stops it until the next read at byte 0.  The read that
    reaches the member's end compares it with the directory's CRC-32 and,
    when they differ, raises ``TacozipValidationError`` with code
    ``TACOZ_INVALID_CRC_MEMBER`` instead of returning its bytes (the
    file's position stays where that read started, as after a failed
    whole-member read, and the same read raises again)."""

    __slots__ = ("member", "where", "at", "crc")

    def __init__(self, member: Member, where: str) -> None:
        self.member = member
        self.where = where  # the archive's display name, for the message
        self.at = -1  # bytes covered so far; -1: not tracking
        self.crc = 0

    def feed(self, pos: int, data) -> None:
        """``data`` (bytes-like) was read at ``pos``; called before the
        file's position moves past it.  Raises on a mismatch, and then
        stays where it was, so that the same read raises again."""
        n = len(data)
        if n == 0:
            return
        if pos == 0:
            self.crc, self.at = 0, 0
        elif pos != self.at:
            self.at = -1
            return
        crc = _tacozip.crc32(data, self.crc)  # as zlib.crc32; libdeflate's where built with it
        if pos + n < self.member.size:
            self.crc, self.at = crc, pos + n
            return
        if crc == self.member.crc:
            self.at = -1  # checked: nothing more to do until a read at byte 0
            return
        from .config import TACOZ_INVALID_CRC_MEMBER
        from .exceptions import TacozipValidationError

        e = TacozipValidationError(TACOZ_INVALID_CRC_MEMBER)
        e.detail = (f"{self.where}: member \"{self.member.name}\": CRC-32 of the bytes read in sequence is "
                    f"{crc:08x}, the directory says {self.member.crc:08x}")
        if hasattr(e, "add_note"):  # 3.11+
            e.add_note(e.detail)
        raise e

    def done(self) -> None:
        """The bytes up to the end were checked some other way (a whole
        member read in one call, checked by the C library)."""
        self.at = -1


class MemberFile(io.RawIOBase):
    """A read-only, seekable binary file over one member.  Every read asks the
    archive for exactly the bytes requested (no read-ahead), so a Parquet
    reader fetching one row group reads just that row group.  Reads that
    follow each other from byte 0 to the end are checked against the
    member's CRC-32 (see :class:`SequentialCrc`), unless the archive was
    opened with ``check_crc=False``."""

    def __init__(self, archive: "TacoArchive", index: int, member: Member):
        super().__init__()
        self._archive = archive
        self._index = index
        self._pos = 0
        self.member = member
        self.name = member.name
        self.size = member.size
        self._crc = SequentialCrc(member, archive.path) if archive.check_crc else None

    def _track(self, pos: int, data) -> None:
        if self._crc is None:
            return
        if pos == 0 and len(data) == self.size:
            self._crc.done()  # one whole-member read: the C library checked it
        else:
            self._crc.feed(pos, data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        mv = memoryview(buffer).cast("B")
        if self._pos >= self.size or len(mv) == 0:
            return 0
        pos = self._pos
        n = self._archive._raw.readinto_member(self._index, pos, mv)
        self._track(pos, mv[:n])
        self._pos += n
        return n

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def readall(self) -> bytes:
        self._check_open()
        if self._pos >= self.size:
            return b""
        pos = self._pos
        data = self._archive._raw.read_member(self._index, pos, self.size - pos)
        self._track(pos, data)
        self._pos += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            return self.readall()
        if self._pos >= self.size or size == 0:
            return b""
        pos = self._pos
        data = self._archive._raw.read_member(self._index, pos, size)
        self._track(pos, data)
        self._pos += len(data)
        return data

    def __repr__(self) -> str:
        return f"<tacozip.MemberFile {self.name!r} size={self.size} pos={self._pos}>"

    # -- pickling: the archive (reopened, pinned), the member's name, the position
    def __reduce__(self):
        if self.closed:
            raise ValueError(f"cannot pickle a closed tacozip.MemberFile ({self.name!r})")
        return (_reopen_member, (self._archive, self.name, self._pos))


class TacoArchive:
    """An open TACO (or any STORE-only ZIP) archive.  Use as a context
    manager, or call close()."""

    def __init__(self, path: Union[str, "os.PathLike[str]", Any], verify_local: bool = False,
                 index_first: bool = False, *, storage_options: Optional[Mapping[str, Any]] = None,
                 pickle_directory: bool = False, check_crc: bool = True,
                 _preload: Optional[Tuple[int, bytes]] = None, **remote: Any):
        src, opts, name, shown = source_args(path, storage_options, remote)
        #: reads of whole members, and member files read from byte 0 to the
        #: end, are checked against the CRC-32 (False: TACOZIP_OPEN_NO_CRC)
        self.check_crc = bool(check_crc)
        #: pickles carry the directory of a remote archive (see __reduce__)
        self.pickle_directory = bool(pickle_directory)
        self._tail: Optional[Tuple[int, bytes]] = _preload  # (archive size, bytes from the directory on)
        #: the path, the URL without credentials or query string, or the
        #: file object's name: safe to print or log
        self.path: str = shown
        # what pickling needs to reopen: the path or URL and the settings
        # the caller gave (credentials from the environment are not kept:
        # they are read again where the archive is unpickled); None for a
        # file object
        self._reopen: Optional[tuple] = None
        local_stat = None
        if isinstance(src, (str, bytes)):
            where = src
            if not _tacozip.is_url(src):
                local_stat = _file_stamp(src)
                where = os.path.abspath(src)  # reopened from any working directory
            self._reopen = (where, bool(verify_local), bool(index_first),
                            dict(storage_options) if storage_options else None, dict(remote))
        # a directory carried in: the open makes no request (index_first
        # would make one for the first 16 KiB)
        self._raw = _tacozip.Archive(src, verify_local, index_first and _preload is None, opts, name, _preload,
                                     no_crc=not self.check_crc)
        self._stamp = local_stat
        self._members: Optional[List[Member]] = None

    # -- pickling -------------------------------------------------------------
    def __reduce__(self):
        """An archive pickles to what reopens it: path or URL, the settings
        the caller gave, the flags, and the identity to pin (a remote
        object's ETag; a local file's size and modification time).  The
        reopened archive fails with TACOZ_ERR_CHANGED (-42) if the object
        is another one by then.  With ``pickle_directory=True`` a remote
        archive's pickle also carries its central directory and end records
        (read once, from the bytes kept since the open when they lie in the
        tail): unpickling then makes no request, and the first read checks
        the pinned identity."""
        if self._reopen is None:
            raise TypeError(f"cannot pickle a tacozip.TacoArchive over a file object or buffer ({self.path!r}): "
                            "only archives opened from a path or URL can be reopened elsewhere")
        if self.closed:
            raise ValueError(f"cannot pickle a closed tacozip.TacoArchive ({self.path!r})")
        src, verify_local, index_first, storage_options, remote = self._reopen
        tail = None
        if self.pickle_directory and self._stamp is None:  # remote: a local open costs no request
            if self._tail is None:
                off = self._raw.directory_range()[0]
                self._tail = (self.size, self._raw.read_at(off, self.size - off))
            tail = self._tail
        return (_reopen_archive, (src, verify_local, index_first, storage_options, remote,
                                  self._raw.identity, self._stamp, tail, self.check_crc))

    # -- life cycle ---------------------------------------------------------
    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def __enter__(self) -> "TacoArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self._raw.count} members"
        return f"<tacozip.TacoArchive {self.path!r} {state}>"

    # -- index --------------------------------------------------------------
    @property
    def header(self) -> List[Tuple[int, int]]:
        """The TACO header entries (TacozipError if the archive has none)."""
        return self._raw.header()

    @property
    def members(self) -> List[Member]:
        """Every member in directory order, TACO_HEADER included."""
        if self._members is None:
            self._members = [Member(t[0], t[1], t[2], t[3], t[4], t[6]) for t in self._raw.members()]
        return self._members

    @property
    def size(self) -> int:
        """Archive size in bytes."""
        return self._raw.size

    @property
    def format(self) -> int:
        """TACOZIP_FORMAT_ZIP32 (1) or TACOZIP_FORMAT_ZIP64 (2)."""
        return self._raw.format

    def names(self) -> List[str]:
        """Every member name in directory order (no Member objects built)."""
        if self._members is not None:
            return [m.name for m in self._members]
        return self._raw.names()

    def _member_at(self, i: int) -> Member:
        if self._members is not None:
            return self._members[i]
        t = self._raw.member(i)
        return Member(t[0], t[1], t[2], t[3], t[4], t[6])

    def __len__(self) -> int:
        return self._raw.count

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, (str, bytes)) and self._raw.find(name) >= 0

    def _index(self, name: str) -> int:
        i = self._raw.find(name)
        if i < 0:
            raise KeyError(f"There is no item named {name!r} in the archive")
        return i

    def __getitem__(self, name: str) -> Member:
        return self._member_at(self._index(name))

    def getmember(self, name: str) -> Member:
        return self[name]

    # -- data ---------------------------------------------------------------
    def open(self, name: str) -> MemberFile:
        """A seekable binary file object over member ``name`` that reads only
        the bytes asked for."""
        i = self._index(name)
        return MemberFile(self, i, self._member_at(i))

    def read(self, name: str) -> bytes:
        """The whole member (its local header is checked first)."""
        return self._raw.read_member(self._index(name))

    def read_range(self, offset: int, length: int) -> bytes:
        """``length`` raw bytes of the archive at ``offset`` (archive
        coordinates, e.g. a header entry)."""
        return self._raw.read_at(offset, length)

    def read_many(self, names: Iterable[Union[str, Member]], max_gap: Optional[int] = None) -> "dict[str, bytes]":
        """Several whole members at once: neighbours closer than ``max_gap``
        bytes (default 1 MiB) are fetched in one request and, for a remote
        archive, requests run in parallel.  Each member's local header is
        fetched with its data and checked.  Returns {name: bytes}."""
        names = [m.name if isinstance(m, Member) else m for m in names]
        data = self._raw.read_members([self._index(n) for n in names], -1 if max_gap is None else max_gap)
        return dict(zip(names, data))

    def read_ranges(self, ranges: Sequence[Tuple[int, int]], max_gap: Optional[int] = None) -> List[bytes]:
        """Several raw (offset, length) ranges of the archive, coalesced and
        fetched in parallel like read_many()."""
        return self._raw.read_ranges([(int(o), int(n)) for o, n in ranges], -1 if max_gap is None else max_gap)

    @property
    def identity(self) -> str:
        """What identifies the archive's bytes: a remote object's ETag once a
        response has given one, else ''."""
        return self._raw.identity

    @property
    def stats(self) -> Optional[Tuple[int, int]]:
        """(requests, body bytes) made so far for a remote archive, else None."""
        return self._raw.stats()

    def verify(self, name: Optional[str] = None) -> None:
        """Check the CRC-32 of one member, or of all; raises TacozipError."""
        if name is not None:
            self._raw.verify(self._index(name))
        else:
            for i in range(self._raw.count):
                self._raw.verify(i)

    def extract(self, dest: Union[str, "os.PathLike[str]"], members: Optional[Iterable[Union[str, Member]]] = None,
                *, overwrite: bool = False, skip_header: bool = False) -> None:
        """Extract all members (or those named) under ``dest``.  Every
        member's CRC is checked; names that are absolute or contain ``..``
        are refused before anything is written, symbolic links are never
        followed out of ``dest``, and existing files are kept unless
        ``overwrite``.  Raises TacozipError (e.g. -40 for an unsafe name)."""
        names = None if members is None else [m.name if isinstance(m, Member) else m for m in members]
        self._raw.extract(os.fspath(dest), names, overwrite, skip_header)

    # -- ranges for header entries -------------------------------------------
    def span(self, members: Union[Iterable[Union[str, Member]], Callable[[Member], bool], str],
             *, data_only: bool = False) -> Tuple[int, int]:
        """(offset, length) in archive coordinates of the smallest range that
        covers the given members: names, Member objects, a predicate on
        Member, or a name prefix string ending in '/'.  Local headers are
        included (the range alone suffices to recover the members) unless
        ``data_only``.  Store it with tacozip.update_header()."""
        if isinstance(members, str):
            prefix = members
            idx = [i for i, n in enumerate(self.names()) if n.startswith(prefix)]
        elif callable(members):
            idx = [i for i, m in enumerate(self.members) if members(m)]
        else:
            idx = [self._index(m.name if isinstance(m, Member) else m) for m in members]
        if not idx:
            raise ValueError("no member matches")
        return self._raw.span(idx, data_only)

    def data_range(self, name: str) -> Tuple[int, int]:
        """(offset, size) of one member's data."""
        m = self[name]
        return (m.offset, m.size)


def _file_stamp(path: Union[str, bytes]) -> Optional[Tuple[int, int]]:
    """(size, mtime in ns) of a local file, or None if it cannot be read
    (opening will say why)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _reopen_archive(src, verify_local, index_first, storage_options, remote, identity, stamp,
                    tail=None, check_crc=True) -> TacoArchive:
    """Unpickle a TacoArchive: open it again, expecting the same bytes (and
    with ``tail``, its directory and end records, without reading them)."""
    remote = dict(remote)
    if identity:
        if storage_options and "expected_identity" in storage_options:
            storage_options = {k: v for k, v in storage_options.items() if k != "expected_identity"}
        remote["expected_identity"] = identity
    ar = TacoArchive(src, verify_local, index_first, storage_options=storage_options,
                     pickle_directory=tail is not None, check_crc=check_crc, _preload=tail, **remote)
    if stamp is not None and _file_stamp(src) != tuple(stamp):
        ar.close()
        from .config import TACOZ_ERR_CHANGED
        from .exceptions import TacozipError

        e = TacozipError(TACOZ_ERR_CHANGED)
        e.detail = f"{ar.path}: the file changed since the archive was pickled (size or modification time differs)"
        e.add_note(e.detail)
        raise e
    return ar


def _reopen_member(archive: TacoArchive, name: str, pos: int) -> MemberFile:
    """Unpickle a MemberFile: the member of the reopened archive (shared
    with whatever else the same pickle held; released when no longer
    referenced), at the same position."""
    f = archive.open(name)
    f.seek(pos)
    return f


def open(path: Union[str, "os.PathLike[str]", Any], *, verify_local: bool = False,  # noqa: A001
         index_first: bool = False, storage_options: Optional[Mapping[str, Any]] = None,
         pickle_directory: bool = False, check_crc: bool = True, **remote: Any) -> TacoArchive:
    """Open an archive and read its member index (end records and central
    directory; local headers only where the layout does not prove the data
    offsets, or all of them with ``verify_local=True``).

    ``path`` may be a local path, an ``http://``, ``https://`` or
    ``s3://bucket/key`` URL (see docs/remote.md), or a binary file object
    with ``seek()`` and ``read()``/``readinto()`` (``io.BytesIO``, a file
    opened ``"rb"``, an fsspec file; it is read under a lock, and kept open
    until the archive is closed).  A URL costs one request for the tail (end
    records and, when it fits, the directory) and at most one more for the
    directory.  With ``index_first=True`` the first request reads the first
    16 KiB instead: for archives written with ``create(..., index=True)``
    that holds the header and the whole member index, so opening costs ONE
    request.

    Remote settings, for this archive only (fsspec/s3fs names; see
    docs/python.md): ``key``, ``secret``, ``token``, ``anon``, ``region``,
    ``endpoint_url``, ``s3_addressing``, ``retries``, ``backoff``,
    ``max_backoff``, ``connect_timeout``, ``stall_timeout``, ``parallel``,
    ``max_gap``, ``max_skip``, ``ca_bundle``, ``headers``,
    ``expected_identity`` (an ETag the object must still have), as keyword
    arguments or in ``storage_options`` (``client_kwargs`` and
    ``config_kwargs`` as s3fs takes them).  Settings not given come from the
    environment (``AWS_*``, ``TACOZIP_HTTP_*``), read now.

    An archive opened from a path or URL pickles (so do its member files):
    unpickling reopens it pinned to the identity it had, and fails with
    TACOZ_ERR_CHANGED if the object was replaced since (docs/python.md).
    With ``pickle_directory=True`` the pickle of a remote archive carries
    its central directory too, so that unpickling costs no request.

    Reads of a whole member (``read``, ``read_many``, a member file read
    from byte 0 to its end, in one call or in pieces that follow each
    other) are checked against its CRC-32 and raise
    ``TACOZ_INVALID_CRC_MEMBER`` when the bytes differ; ``check_crc=False``
    skips the check (the C library's ``TACOZIP_OPEN_NO_CRC``), for callers
    that verify the bytes themselves."""
    return TacoArchive(path, verify_local, index_first, storage_options=storage_options,
                       pickle_directory=pickle_directory, check_crc=check_crc, **remote)
