"""Helpers that compute header entries in ARCHIVE coordinates."""

from typing import List, Tuple

from ._archive import TacoArchive


def parquet_footer_range(archive: TacoArchive, member: str) -> Tuple[int, int]:
    """(offset, length) in archive coordinates of a Parquet member's footer:
    the Thrift metadata, its 4-byte length and the 'PAR1' magic."""
    m = archive[member]
    tail = archive.read_range(m.offset + m.size - 8, 8)
    if m.size < 12 or tail[4:] != b"PAR1":
        raise ValueError(f"{member!r} is not a Parquet file (no PAR1 footer)")
    meta_len = int.from_bytes(tail[:4], "little")
    length = meta_len + 8
    if length > m.size - 4:
        raise ValueError(f"{member!r}: Parquet footer length {meta_len} is larger than the file")
    return (m.offset + m.size - length, length)


def parquet_row_group_ranges(archive: TacoArchive, member: str) -> List[Tuple[int, int]]:
    """(offset, length) in archive coordinates of each row group of a
    Parquet member: from its first column chunk (dictionary page included)
    to the end of its last.  Needs pyarrow.  Reads only the footer."""
    import pyarrow.parquet as pq  # optional dependency

    m = archive[member]
    with archive.open(member) as f:
        md = pq.ParquetFile(f).metadata
    ranges = []
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        if rg.num_columns == 0:
            continue
        start, end = row_group_span(rg)
        ranges.append((m.offset + start, end - start))
    return ranges


def row_group_span(rg) -> Tuple[int, int]:
    """(start, end) in file coordinates of a pyarrow row group's metadata:
    from its first column chunk (dictionary page included) to the end of
    its last; (0, 0) for a row group with no columns."""
    start, end = None, 0
    for c in range(rg.num_columns):
        col = rg.column(c)
        first = col.data_page_offset
        if col.has_dictionary_page and col.dictionary_page_offset is not None and col.dictionary_page_offset > 0:
            first = min(first, col.dictionary_page_offset)
        start = first if start is None else min(start, first)
        end = max(end, first + col.total_compressed_size)
    return (start or 0, end)
