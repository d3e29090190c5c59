"""Helpers for clients that read only the header: one 157-byte request,
then exactly the byte ranges its entries point at (docs/header-only.md).

* ``decode_span(data, offset)``: the members of a fetched span (a header
  entry holding whole members, local headers included: a split, a zoom
  level), from their local headers alone, CRC-32 checked, zero-copy.
* ``parquet_table(footer, row_groups)``: a pyarrow Table from a Parquet
  footer range and row-group ranges fetched separately, without the rest
  of the file.
* ``fetch(source, entries)``: the header, then the chosen entries'
  ranges (coalesced), in one call, with the requests counted.
"""

from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _tacozip
from ._remote import source_args
from .helpers import row_group_span

__all__ = ["SpanMember", "Span", "Fetched", "NotFetchedError", "decode_span", "parquet_table", "fetch"]


class SpanMember(NamedTuple):
    """One member of a decoded span.  ``data`` is a memoryview into the
    span's buffer (no copy; ``bytes(m.data)`` for a copy); ``offset`` is the
    archive offset of its first data byte, ``header_offset`` that of its
    local header."""

    name: str
    data: memoryview
    offset: int
    header_offset: int
    crc32: int


def decode_span(data: Any, offset: int = 0, *, check_crc: bool = True,
                partial: bool = False) -> List[SpanMember]:
    """The members of ``data``, the bytes of an archive from ``offset`` (a
    header entry's offset and length, fetched), which must start at a
    member's local header and hold whole members back to back.

    Each member's CRC-32 is checked against its local header unless
    ``check_crc=False``.  A span cut inside a member raises, unless
    ``partial=True``: the complete members before the cut are returned
    (the cut member starts at archive offset ``offset + consumed``, where
    ``consumed`` is the sum of their header and data lengths).

    Raises TacozipValidationError: ``TACOZ_INVALID_LFH`` when there is no
    local header where a member must start (the span does not start at a
    member), ``TACOZ_INVALID_FILE_SIZE`` when it ends inside a member,
    ``TACOZ_INVALID_CRC_MEMBER``, ``TACOZ_INVALID_ZIP64``,
    ``TACOZ_INVALID_STORED_SIZE``; TacozipError ``TACOZ_ERR_UNSUPPORTED``
    for a compressed or encrypted member or one with a data descriptor;
    each message names the member and its archive offset."""
    mv = memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    flags = (0 if check_crc else _tacozip.TACOZIP_SPAN_NO_CRC) | (_tacozip.TACOZIP_SPAN_PARTIAL if partial else 0)
    items, _end = _tacozip.decode_span(mv, offset, flags)
    return [SpanMember(name, mv[dpos:dpos + size], offset + dpos, offset + hpos, crc)
            for name, hpos, dpos, size, crc, _flags, _dos in items]


# --------------------------------------------------------------------------- Parquet


class NotFetchedError(OSError):
    """pyarrow asked for bytes that were not fetched (parquet_table)."""


class _Pieces:
    """A read-only, seekable file of ``size`` bytes of which only ``pieces``
    [(offset, bytes)] are known; any read outside them raises
    NotFetchedError naming the range."""

    def __init__(self, size: int, pieces: Iterable[Tuple[int, Any]]):
        merged: List[Tuple[int, bytes]] = []
        for off, data in sorted(pieces, key=lambda p: p[0]):
            data = bytes(data)
            if merged and merged[-1][0] + len(merged[-1][1]) >= off:  # touching or overlapping
                o, d = merged[-1]
                merged[-1] = (o, d[:off - o] + data if off - o + len(data) >= len(d) else d)
            else:
                merged.append((off, data))
        self.pieces = merged
        self.size = size
        self.pos = 0
        self.closed = False
        self.reads: List[Tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = (0, self.pos, self.size)[whence] + offset
        return self.pos

    def close(self) -> None:
        self.closed = True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = max(0, min(n, self.size - self.pos))
        if n == 0:
            return b""
        for off, data in self.pieces:
            if off <= self.pos and self.pos + n <= off + len(data):
                out = data[self.pos - off:self.pos - off + n]
                self.reads.append((self.pos, n))
                self.pos += n
                return out
        raise NotFetchedError(
            f"pyarrow asked for {n} bytes at Parquet offset {self.pos}, outside the fetched ranges "
            f"{[(o, len(d)) for o, d in self.pieces]}: fetch the row groups it reads (and the footer)")

    def readinto(self, b: Any) -> int:
        out = self.read(len(memoryview(b)))
        memoryview(b).cast("B")[:len(out)] = out
        return len(out)


def parquet_table(footer: Any, row_groups: Union[Mapping[int, Any], Sequence[Any]], *,
                  indices: Optional[Sequence[int]] = None, columns: Optional[Sequence[str]] = None,
                  **read_options: Any):
    """A pyarrow Table of Parquet row groups from bytes fetched separately:
    ``footer``, the footer range (Thrift metadata, its 4-byte length and
    ``PAR1``: what ``tacozip.parquet_footer_range`` gives), and the bytes
    of each wanted row group (``tacozip.parquet_row_group_ranges``):
    ``{row group index: bytes}``, or a sequence of bytes with ``indices``
    naming their row groups (without ``indices``, a sequence of all the row
    groups in order).  Nothing else of the file or the archive is needed:
    the footer gives every row group's place in the file, and a small
    in-memory file serves exactly those bytes there to
    ``pyarrow.parquet.ParquetFile``.  ``columns`` and the other keyword
    arguments go to ``ParquetFile.read_row_group``.  The row groups are
    concatenated in ascending index order.

    Raises ValueError (not a Parquet footer; a row group's bytes of the
    wrong length; unknown row group), NotFetchedError (an OSError) if
    pyarrow asks for bytes that were not fetched."""
    import pyarrow as pa  # optional dependency
    import pyarrow.parquet as pq

    footer = bytes(footer)
    if len(footer) < 12 or footer[-4:] != b"PAR1":
        raise ValueError("not a Parquet footer: it must end in the 4-byte metadata length and 'PAR1'")
    meta_len = int.from_bytes(footer[-8:-4], "little")
    if meta_len + 8 != len(footer):
        raise ValueError(f"not a whole Parquet footer: its metadata length says {meta_len + 8} bytes, "
                         f"{len(footer)} were given")
    import io

    md = pq.read_metadata(io.BytesIO(b"PAR1" + footer))
    if isinstance(row_groups, Mapping):
        given = {int(k): v for k, v in row_groups.items()}
    else:
        seq = list(row_groups)
        idx = list(range(md.num_row_groups)) if indices is None else [int(i) for i in indices]
        if len(idx) != len(seq):
            raise ValueError(f"{len(seq)} row groups' bytes for {len(idx)} indices"
                             + ("" if indices is not None else " (the file's row groups: pass indices=)"))
        given = dict(zip(idx, seq))
    pieces = []
    data_end = 4
    for g in range(md.num_row_groups):
        data_end = max(data_end, row_group_span(md.row_group(g))[1])
    for g, data in sorted(given.items()):
        if not 0 <= g < md.num_row_groups:
            raise ValueError(f"row group {g} does not exist: the file has {md.num_row_groups}")
        start, end = row_group_span(md.row_group(g))
        n = memoryview(data).nbytes
        if n != end - start:
            raise ValueError(f"row group {g} is {end - start} bytes (file offsets {start}..{end}), "
                             f"{n} were given")
        pieces.append((start, data))
    # the file as pyarrow sees it: row groups at their offsets, the footer at the end
    # (after every column chunk; page indexes, if any, are not read)
    size = data_end + len(footer)
    pieces.append((size - len(footer), footer))
    f = _Pieces(size, pieces)
    pf = pq.ParquetFile(f, metadata=md)
    # one row group at a time: pre-buffering never spans two of them (nor the gap between)
    tables = [pf.read_row_group(g, columns=columns, **read_options) for g in sorted(given)]
    if not tables:
        return md.schema.to_arrow_schema().empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


# --------------------------------------------------------------------------- one call


class Span:
    """The bytes of one header entry as fetched: ``index`` (in the header),
    ``offset``, ``length``, ``data`` (bytes); ``members`` decodes them (on
    first use, CRC-32 checked) as decode_span does, for entries that hold
    whole members; ``files`` is ``{name: data}`` of those members."""

    __slots__ = ("index", "offset", "length", "data", "_check_crc", "_members")

    def __init__(self, index: int, offset: int, length: int, data: bytes, check_crc: bool):
        self.index, self.offset, self.length, self.data = index, offset, length, data
        self._check_crc = check_crc
        self._members: Optional[List[SpanMember]] = None

    @property
    def members(self) -> List[SpanMember]:
        if self._members is None:
            self._members = decode_span(self.data, self.offset, check_crc=self._check_crc)
        return self._members

    @property
    def files(self) -> Dict[str, memoryview]:
        return {m.name: m.data for m in self.members}

    def __repr__(self) -> str:
        return f"Span(index={self.index}, offset={self.offset}, length={self.length})"


class Fetched(dict):
    """``{header entry index: Span}`` from fetch(), plus ``header`` (all
    the entries, as read_header gives them) and, for a URL, ``requests``
    and ``bytes``: what the source transferred (header included); None for
    a local file or a file object."""

    header: List[Tuple[int, int]]
    requests: Optional[int]
    bytes: Optional[int]


def fetch(source: Any, entries: Optional[Sequence[int]] = None, *, max_gap: Optional[int] = None,
          check_crc: bool = True, storage_options: Optional[Mapping[str, Any]] = None,
          **remote: Any) -> Fetched:
    """Read the header of ``source`` (a path, an ``http(s)://`` or
    ``s3://`` URL with remote settings as for ``tacozip.open``, or a binary
    file object): one 157-byte request; then the byte ranges of header
    entries ``entries`` (indices into the header; None: all of them), in
    one call that coalesces ranges at most ``max_gap`` bytes apart (None:
    the source's ``coalesce_gap``, 1 MiB unless set; 0: only touching
    ranges) into one request each, made in parallel.  The archive's central
    directory is never read.

    Returns a Fetched: ``{index: Span}`` (``span.data``, ``span.members``,
    ``span.files``), with ``.header``, ``.requests`` and ``.bytes``.  For a
    URL the requests are 1 for the header plus at most one per chosen
    non-empty entry (fewer when coalesced).

    Raises IndexError for an index the header does not have, and the
    errors of read_header and of the reads."""
    src, opts, name, _shown = source_args(source, storage_options, remote)
    gap = -1 if max_gap is None else int(max_gap)
    if gap < -1:
        raise ValueError("max_gap must be >= 0 (or None for the default)")
    wanted = None if entries is None else [int(i) for i in entries]
    if wanted and min(wanted) < 0:
        raise IndexError(f"header entry {min(wanted)} out of range: entries are 0..6")
    header, datas, stats = _tacozip.fetch_entries(src, opts, name, wanted, gap)
    chosen = list(range(len(header))) if wanted is None else wanted
    out = Fetched()
    for i, data in zip(chosen, datas):
        off, length = header[i]
        out[i] = Span(i, off, length, data, check_crc)
    out.header = header
    out.requests, out.bytes = stats if stats is not None else (None, None)
    return out
