"""The original package's functions, with the same signatures, defaults,
return values, exceptions and messages, over the compiled extension."""

import operator
import os
import pathlib
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _tacozip
from ._remote import source_args
from .config import TACO_HEADER_MAX_ENTRIES, TACO_HEADER_SIZE, TACOZIP_VALIDATE_NORMAL

PathLike = Union[str, "os.PathLike[str]"]
Entries = Sequence[Tuple[int, int]]
Progress = Callable[[int, int, int, int], Optional[bool]]


def _check_entries(entries: Entries) -> List[Tuple[int, int]]:
    entries = list(entries)
    if len(entries) > TACO_HEADER_MAX_ENTRIES:
        raise ValueError(f"Too many entries: {len(entries)} > {TACO_HEADER_MAX_ENTRIES}")
    # integers as they are (a float is a TypeError, as in the original; the
    # extension refuses values outside 0..2**64-1 with OverflowError)
    return [(operator.index(o), operator.index(n)) for o, n in entries]


def _sequence(items: Any, what: str) -> List[Any]:
    """The items of a sequence of paths or names, taken once (a list copy).
    A single str, bytes or path is refused: iterating it would take each
    character for a file name."""
    if isinstance(items, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a sequence of paths or names, not a single {type(items).__name__} "
                        "(put it in a list)")
    return list(items)


def _changed(items: Any, taken: List[Any], what: str) -> None:
    """User code run while converting (a path's __fspath__) changed the
    sequence: say so rather than use a part of it."""
    try:
        n = len(items)
    except TypeError:  # an iterable without a length (a generator): taken once
        return
    if n != len(taken):
        raise ValueError(f"{what} changed size while its paths were converted ({len(taken)} -> {n} items)")


def _sources(src_files: Sequence[PathLike]) -> List[str]:
    taken = _sequence(src_files, "src_files")
    strings = [str(pathlib.Path(os.fspath(f)).resolve()) for f in taken]
    _changed(src_files, taken, "src_files")
    return strings


def _names(src_strings: List[str], arc_files: Optional[Sequence[str]]) -> List[str]:
    if arc_files is None:
        return [pathlib.Path(s).name for s in src_strings]
    taken = _sequence(arc_files, "arc_files")
    if len(taken) != len(src_strings):
        raise ValueError(
            f"Archive names count ({len(taken)}) must match source files count ({len(src_strings)})"
        )
    names = [str(a) for a in taken]
    _changed(arc_files, taken, "arc_files")
    return names


def create(
    zip_path: PathLike,
    src_files: Sequence[PathLike],
    arc_files: Optional[Sequence[str]] = None,
    entries: Optional[Entries] = None,
    *,
    alignment: int = 0,
    fsync: bool = True,
    progress: Optional[Progress] = None,
    index: bool = False,
    mtime: Optional[int] = None,
    remote: Optional[Mapping[str, Any]] = None,
) -> None:
    """Create a TACO archive: TACO_HEADER holding ``entries`` (default
    ``[(0, 0)]``), then ``src_files`` STORED in order under ``arc_files``
    (default: base names).  Atomic: on failure nothing is left at
    ``zip_path`` and an existing file there is untouched.

    Extensions over the original: ``alignment`` (member data offsets
    multiple of a power of two), ``fsync=False`` (faster, not durable),
    ``progress(done_bytes, total_bytes, done_files, total_files)`` (return
    True to cancel), ``index=True`` (embed a member index right after the
    header: one read of the first 16 KiB then lists the archive, see
    ``open(..., index_first=True)``; members then follow the index instead
    of the default layout), ``mtime`` (Unix seconds for every member's DOS
    time, in UTC: the bytes then do not depend on the files' times).  The
    GIL is released while writing.

    ``entries`` may also hold entries planned by name
    (``tacozip.data(name)``, ``tacozip.span(prefix=...)`` /
    ``tacozip.span(members=[...])``, ``tacozip.directory()``), mixed with
    pairs: they are resolved before anything is written (a member or
    prefix that is not in the archive: TacozipError TACOZ_ERR_NOT_FOUND,
    nothing written) and the header is written once.  ``zip_path`` may be
    an ``s3://bucket/key`` URL (``remote``: the remote settings as
    ``tacozip.open`` takes them, else the environment's ``AWS_*``): the
    archive is uploaded as ``tacozip.Writer`` does.

    Raises ValueError (more than 7 entries, names/sources length mismatch),
    TacozipError (missing source: code -1 or -5; duplicate name: -6; ...).
    """
    if entries is None:
        entries = [(0, 0)]
    from .writer import PlannedEntry, _create_planned

    if not isinstance(entries, (str, bytes, PlannedEntry)):
        entries = list(entries)  # taken once (it may be an iterator)
    path = os.fspath(zip_path)
    if (remote is not None or _tacozip.is_url(path)
            or (isinstance(entries, list) and any(isinstance(e, PlannedEntry) for e in entries))):
        _create_planned(zip_path, src_files, arc_files, entries, alignment=alignment, fsync=fsync,
                        progress=progress, index=index, mtime=mtime, remote=remote)
        return
    src_strings = _sources(src_files)
    names = _names(src_strings, arc_files)
    checked = _check_entries(entries)
    _tacozip.create(str(pathlib.Path(path).resolve()), src_strings, names, checked,
                    alignment, fsync, 0 if mtime is None else int(mtime), progress, index)


def append(
    zip_path: PathLike,
    src_files: Sequence[PathLike],
    arc_files: Optional[Sequence[str]] = None,
    *,
    alignment: int = 0,
    fsync: bool = True,
    progress: Optional[Progress] = None,
) -> None:
    """Add members to an existing archive without moving existing data: the
    new members go where the central directory was, then a new directory.
    The header entries are unchanged.  On failure the archive is restored to
    its previous bytes.  Raises TacozipError (-6 if a name already exists)."""
    src_strings = _sources(src_files)
    names = _names(src_strings, arc_files)
    _tacozip.append(os.fspath(zip_path), src_strings, names, None, alignment, fsync, 0, progress)


def read_header(source: Union[PathLike, bytes, bytearray, memoryview, Any], *,
                storage_options: Optional[Mapping[str, Any]] = None, **remote: Any) -> List[Tuple[int, int]]:
    """Read the header entries: ``source`` is a path (str or pathlib.Path),
    an ``http(s)://`` or ``s3://`` URL (one 157-byte request; remote
    settings as for ``tacozip.open``: keyword arguments, ``storage_options``,
    else the environment), a binary file object (one 157-byte read), or a
    bytes-like buffer of at least 157 bytes (e.g. the body of a
    ``Range: bytes=0-164`` response).  Returns the first ``count`` pairs.

    Raises ValueError("Buffer too small: n < 157"), TacozipError."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        n = memoryview(source).nbytes
        if n < TACO_HEADER_SIZE:
            raise ValueError(f"Buffer too small: {n} < {TACO_HEADER_SIZE}")
        return _tacozip.parse_header(source)
    src, opts, name, _shown = source_args(source, storage_options, remote)
    return _tacozip.read_header(src, opts, name)


def update_header(zip_path: PathLike, entries: Entries) -> None:
    """Replace the header entries in place (three small writes, O(1)).
    A file that is not a TACO archive is refused (TacozipError) and left
    unchanged.  Raises ValueError for more than 7 entries."""
    _tacozip.update_header(os.fspath(zip_path), _check_entries(entries))


_RECOVERED = {0: None, 1: "append", 2: "update", 3: "stale"}


def recover(zip_path: PathLike) -> Optional[str]:
    """Finish what an interrupted ``append`` or ``update_header`` left: if
    the archive has a rollback journal (``ARCHIVE.tacozip-journal``, kept
    when the writing process was killed), put the old bytes back, so that the
    archive is exactly what it was before that write, and remove the
    journal.  Returns ``"append"`` or ``"update"`` (what was rolled back),
    ``"stale"`` (a journal of another file, or an incomplete one, was
    removed; the archive is unchanged) or ``None`` (nothing to do).  Raises
    TacozipError with TACOZ_ERR_LOCKED if a writer is running.  Readers of
    this package already read such an archive as it was; run this before
    other ZIP tools read it."""
    return _RECOVERED[_tacozip.recover(os.fspath(zip_path))]


def validate(zip_path: Union[PathLike, Any], level: int = TACOZIP_VALIDATE_NORMAL, *,
             storage_options: Optional[Mapping[str, Any]] = None, **remote: Any) -> int:
    """Check an archive; returns TACOZ_VALID (0) or a negative code (does not
    raise).  Levels: QUICK (header bytes), NORMAL (+ directory), DEEP (+ CRCs
    of the header and of every member, local headers, overlaps).
    ``zip_path`` may also be a URL (remote settings as for ``tacozip.open``)
    or a binary file object."""
    return validate_detail(zip_path, level, storage_options=storage_options, **remote)[0]


def validate_detail(zip_path: Union[PathLike, Any], level: int = TACOZIP_VALIDATE_NORMAL, *,
                    storage_options: Optional[Mapping[str, Any]] = None, **remote: Any) -> Tuple[int, str]:
    """Like validate() but also returns the message naming what is wrong."""
    src, opts, name, _shown = source_args(zip_path, storage_options, remote)
    return _tacozip.validate(src, int(level), opts, name)


def detect_format(zip_path: PathLike) -> int:
    """0 unknown (unreadable or no end record), 1 ZIP32, 2 ZIP64."""
    return _tacozip.detect_format(os.fspath(zip_path))


def get_library_version() -> str:
    """Version of the C library."""
    return _tacozip.version()
