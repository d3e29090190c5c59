"""kerchunk reference sets for TACO archives (docs/references.md).

``tacozip.refs(archive)`` maps each member to the exact byte range of its
data in the archive, ``{"version": 1, "refs": {name: [url, offset, size]}}``:
a reference set that ``fsspec.filesystem("reference", fo=...)`` reads with
tacozip not installed.  ``format="parquet"`` writes kerchunk's Parquet
layout (fsspec's ``LazyReferenceMapper``) for a Zarr v2 hierarchy of any
number of members.

``tacozip.chunk_refs(archive, members)`` scans HDF5 / NetCDF4, NetCDF3 and
TIFF members with kerchunk through tacozip's member files (a few range
requests, not a download) and rebases every chunk reference into archive
coordinates; with ``concat_dims`` (kerchunk's ``MultiZarrToZarr``) many
members become one dataset.

Command line (the ``tacozip refs`` command writes the JSON form too)::

    python -m tacozip.refs ARCHIVE [--url URL] [--prefix P] [--format json|parquet] [-o OUT]

The module is callable: ``tacozip.refs(...)`` is ``tacozip.refs.refs(...)``.
"""

import base64
import json
import os
import shutil
import sys
import tempfile
import types
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._archive import Member, TacoArchive
from .config import TACOZ_ERR_UNSUPPORTED
from .exceptions import TacozipError

__all__ = ["refs", "chunk_refs", "FORMATS", "INTERNAL"]

#: the output formats of refs()
FORMATS = ("json", "parquet")

#: members that hold the archive's own structures: not Zarr keys, left out
#: of the Parquet layout (the JSON form lists them like any other member)
INTERNAL = ("TACO_HEADER", "TACO_INDEX")

#: member name endings chunk_refs() scans when no member is named
ARRAY_SUFFIXES = (".nc", ".nc4", ".nc3", ".cdf", ".h5", ".hdf5", ".hdf", ".he5", ".tif", ".tiff")

# ZIP general purpose bit 0 (encrypted) and bit 6 (strong encryption)
_ENCRYPTED = 0x0001 | 0x0040

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _error(code: int, detail: str) -> TacozipError:
    """A TacozipError whose message is ``detail`` (it names what is at fault)."""
    e = TacozipError(code, detail)
    e.detail = detail
    if hasattr(e, "add_note"):  # 3.11+
        e.add_note(detail)
    return e


def _q(name: str) -> str:
    """A member name quoted for a message (JSON escapes: control characters
    and bytes that are not UTF-8 stay visible)."""
    return json.dumps(name)


# --------------------------------------------------------------------------- opening, selecting

def _open(archive: Any, remote: Mapping[str, Any]) -> Tuple[TacoArchive, bool, Optional[str]]:
    """(archive, opened here, the URL references should point at by default)."""
    if isinstance(archive, TacoArchive):
        if remote:
            raise TypeError(f"remote settings ({', '.join(sorted(remote))}) apply to an archive opened here, "
                            "not to an open TacoArchive")
        url = archive._reopen[0] if archive._reopen is not None else None
        if url is not None and archive._stamp is not None:  # a local file: its real path
            url = os.path.realpath(url)
        return archive, False, url
    from . import _tacozip
    from ._archive import open as taco_open

    url = None
    if isinstance(archive, (str, bytes, os.PathLike)):
        src = os.fsdecode(archive)
        url = src if _tacozip.is_url(src) else os.path.realpath(src)
    return taco_open(archive, **remote), True, url


def _url(ar: TacoArchive, url: Optional[str], default_url: Optional[str]) -> str:
    """Where readers of the references find the archive: ``url``, else the
    archive's own path or URL."""
    url = url if url is not None else default_url
    if not url:
        raise ValueError(f"{ar.path}: give url= (where readers of the references find the archive): "
                         "an archive opened from a file object has no URL")
    return url


def _prefix(prefix: Optional[str]) -> str:
    """A prefix names a directory: "data" and "data/" select "data/..."."""
    if not prefix:
        return ""
    return prefix if prefix.endswith("/") else prefix + "/"


def _select(ar: TacoArchive, members: Optional[Union[str, Member, Iterable[Union[str, Member]]]],
            prefix: str) -> List[Member]:
    """The members asked for (directory entries left out), in directory order
    when chosen by prefix, in the order given when named."""
    if members is None:
        chosen = [m for m in ar.members if not m.name.endswith("/") and m.name.startswith(prefix)]
        if not chosen:
            where = f" under {_q(prefix)}" if prefix else ""
            raise ValueError(f"{ar.path}: no member{where} to reference")
        return chosen
    if isinstance(members, (str, Member)):
        members = [members]
    chosen = []
    for m in members:
        m = ar[m.name if isinstance(m, Member) else m]  # KeyError names a missing one
        if m.name.endswith("/"):
            raise ValueError(f"{ar.path}: {_q(m.name)} is a directory entry, not a file")
        if not m.name.startswith(prefix):
            raise ValueError(f"{ar.path}: member {_q(m.name)} is not under the prefix {_q(prefix)}")
        chosen.append(m)
    if not chosen:
        raise ValueError(f"{ar.path}: no member named")
    return chosen


def _check_stored(ar: TacoArchive, chosen: Sequence[Member]) -> None:
    """Compressed or encrypted members have no byte range that holds their
    bytes: an error naming every one (never a wrong reference)."""
    bad = []
    # the general purpose flags are not kept in Member: one pass over the raw tuples
    encrypted = {t[0] for t in ar._raw.members() if t[7] & _ENCRYPTED}
    for m in chosen:
        if m.method != 0:
            bad.append(f"{_q(m.name)} (compressed, method {m.method})")
        elif m.name in encrypted:
            bad.append(f"{_q(m.name)} (encrypted)")
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise _error(TACOZ_ERR_UNSUPPORTED,
                     f"{ar.path}: {len(bad)} member{'s' if len(bad) > 1 else ''} cannot be referenced "
                     f"(only STORED members hold their bytes as they are): {shown}")


def _keys(chosen: Sequence[Member], prefix: str) -> List[str]:
    keys = [m.name[len(prefix):] for m in chosen]
    seen = set()
    for k, m in zip(keys, chosen):
        if k in seen:
            raise ValueError(f"member name {_q(m.name)} appears twice in the archive: its reference would be "
                             "ambiguous")
        seen.add(k)
    return keys


# --------------------------------------------------------------------------- member references

def refs(archive: Any, url: Optional[str] = None, *, prefix: Optional[str] = None,
         members: Optional[Iterable[Union[str, Member]]] = None, format: str = "json",  # noqa: A002
         out: Optional[Union[str, "os.PathLike[str]"]] = None, record_size: int = 100_000,
         **remote: Any) -> Union[Dict[str, Any], str]:
    """A kerchunk version-1 reference set of the archive's members.

    ``archive`` is a path, a URL (``http(s)://``, ``s3://``) or a binary file
    object (opened with ``tacozip.open(archive, **remote)``), or an open
    :class:`TacoArchive`.  ``url`` is where readers of the references find
    the archive (default: the URL given, or the real path of a local file;
    required for a file object).  ``prefix`` keeps the members under that
    directory (``"data"`` or ``"data/"``) and makes the keys relative to it;
    ``members`` names the members to keep (default: all).  Directory entries
    are left out.

    ``format="json"`` returns ``{"version": 1, "refs": {key: [url, offset,
    size]}}`` (``offset`` is the first byte of the member's data in the
    archive) and, with ``out``, also writes it there as JSON (atomically:
    a temporary file renamed).  ``format="parquet"`` writes kerchunk's
    Parquet layout to the directory ``out`` (replaced if it exists) and
    returns ``out``: the members must be a Zarr v2 hierarchy (metadata
    documents, kept inline, and chunks ``array/i.j.k``), see
    docs/references.md; ``record_size`` references per Parquet file.

    Raises TacozipError (``TACOZ_ERR_UNSUPPORTED``) naming every compressed
    or encrypted member asked for, ValueError for an unknown format or
    nothing to reference, KeyError for a member that is not there.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown reference format {format!r} (json or parquet)")
    if format == "parquet" and out is None:
        raise ValueError("format='parquet' writes a directory: give out=")
    ar, owned, default_url = _open(archive, remote)
    try:
        url = _url(ar, url, default_url)
        p = _prefix(prefix)
        chosen = _select(ar, members, p)
        if format == "parquet" and members is None:
            chosen = [m for m in chosen if m.name not in INTERNAL]
        _check_stored(ar, chosen)
        keys = _keys(chosen, p)
        if format == "parquet":
            _write_parquet(ar, chosen, keys, url, os.fspath(out), record_size)
            return os.fspath(out)
        result = {"version": 1, "refs": {k: [url, m.offset, m.size] for k, m in zip(keys, chosen)}}
        if out is not None:
            _write_json(result, os.fspath(out))
        return result
    finally:
        if owned:
            ar.close()


def _write_json(obj: Any, path: str) -> None:
    """Write ``obj`` as JSON at ``path`` atomically: a temporary file beside
    it, flushed and synced, then renamed over it."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            json.dump(obj, f)  # ensure_ascii: names that are not UTF-8 as \\udcXX, lossless
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


# --------------------------------------------------------------------------- Parquet layout

def _is_meta(key: str) -> bool:
    """What LazyReferenceMapper keeps in its metadata (inline JSON)."""
    return "/" not in key or key.startswith(".z") or "/.z" in key


def _write_parquet(ar: TacoArchive, chosen: Sequence[Member], keys: Sequence[str], url: str, out: str,
                   record_size: int) -> None:
    """kerchunk's Parquet references (``LazyReferenceMapper``): ``.zmetadata``
    (the metadata documents, inline, and the record size) and
    ``ARRAY/refs.N.parq`` with the chunk references of each array, in the
    order of the chunk grid.  Written in a temporary directory beside
    ``out``, then renamed to it."""
    try:
        import fsspec
        from fsspec.implementations.reference import LazyReferenceMapper
        import pandas  # noqa: F401  (the mapper writes with pandas)
    except ImportError as e:
        raise ImportError(f"format='parquet' needs fsspec and pandas ({e})") from e
    engine = _parquet_engine()
    if record_size < 1:
        raise ValueError(f"record_size must be positive, not {record_size}")
    meta_i = [i for i, k in enumerate(keys) if _is_meta(k)]
    chunk_i = [i for i, k in enumerate(keys) if not _is_meta(k)]
    data = ar.read_many([chosen[i] for i in meta_i])
    meta = {}
    for i in meta_i:
        m = chosen[i]
        try:
            doc = json.loads(data[m.name])
            if not isinstance(doc, dict):
                raise ValueError(f"a JSON {type(doc).__name__}, not an object")
        except ValueError as e:
            raise ValueError(f"{ar.path}: member {_q(m.name)} is not a JSON document: the Parquet layout keeps "
                             f"metadata documents (.zarray, .zattrs, .zgroup, .zmetadata, top-level keys) inline "
                             f"as JSON objects ({e}); use format='json' for members that are not a Zarr v2 "
                             "hierarchy") from None
        meta[keys[i]] = doc
    grids: Dict[str, List[int]] = {}
    for i in chunk_i:
        _check_chunk_key(ar, chosen[i], keys[i], meta, grids)
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".", suffix=".tmp", dir=parent)
    try:
        fs = fsspec.filesystem("file")
        lazy = LazyReferenceMapper.create(tmp, fs=fs, record_size=record_size, engine=engine)
        for i in sorted(meta_i, key=lambda j: keys[j]):
            lazy[keys[i]] = json.dumps(meta[keys[i]])
        for i in sorted(chunk_i, key=lambda j: keys[j]):
            m = chosen[i]
            lazy[keys[i]] = [url, m.offset, m.size]
        lazy.flush()
        if os.path.isdir(out) and not os.path.islink(out):
            old = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".", suffix=".old", dir=parent)
            os.rmdir(old)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if os.path.lexists(out):
                raise FileExistsError(f"{out} exists and is not a directory: not replaced")
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _parquet_engine() -> str:
    """fastparquet, the engine fsspec's LazyReferenceMapper reads with by
    default (files written by pyarrow have an all-null ``raw`` column that
    fastparquet reads back as NaN, not None: unreadable that way); pyarrow
    when fastparquet is missing (then read with a mapper made with
    ``engine="pyarrow"``)."""
    import importlib.util

    if importlib.util.find_spec("fastparquet") is not None:
        return "fastparquet"
    if importlib.util.find_spec("pyarrow") is not None:
        return "pyarrow"
    raise ImportError("format='parquet' needs fastparquet (or pyarrow)")


def _check_chunk_key(ar: TacoArchive, m: Member, key: str, meta: Mapping[str, Any],
                     grids: Dict[str, List[int]]) -> None:
    """A chunk key the Parquet layout can hold: ``ARRAY/i.j.k`` of an array
    whose ``ARRAY/.zarray`` is among the members, inside its chunk grid."""
    field, chunk = key.rsplit("/", 1)
    grid = grids.get(field)
    if grid is None:
        za = meta.get(f"{field}/.zarray")
        if not isinstance(za, dict):
            raise ValueError(f"{ar.path}: member {_q(m.name)} is not a chunk of a Zarr v2 array "
                             f"(no {_q(field + '/.zarray')} among the members): the Parquet layout holds Zarr v2 "
                             "hierarchies only; use format='json'")
        if za.get("dimension_separator", ".") != ".":
            raise ValueError(f"{ar.path}: array {_q(field)} uses dimension_separator "
                             f"{_q(za.get('dimension_separator'))}: the Parquet layout needs '.'")
        try:
            grid = [-(-int(s) // int(c)) for s, c in zip(za["shape"], za["chunks"])] or [1]
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise ValueError(f"{ar.path}: {_q(field + '/.zarray')} has no valid shape and chunks") from None
        grids[field] = grid
    parts = chunk.split(".")
    ok = all(p.isdigit() and p.isascii() for p in parts) and len(parts) == len(grid)
    if ok:
        ok = all(int(p) < n for p, n in zip(parts, grid))
    if not ok:
        raise ValueError(f"{ar.path}: member {_q(m.name)} is not a chunk key of array {_q(field)} "
                         f"(chunk grid {grid}): the Parquet layout holds Zarr v2 hierarchies only; use "
                         "format='json'")


# --------------------------------------------------------------------------- chunk references

def _kind(head: bytes) -> Optional[str]:
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head[:4] in (b"CDF\x01", b"CDF\x02"):
        return "netcdf3"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def chunk_refs(archive: Any, members: Optional[Union[str, Member, Iterable[Union[str, Member]]]] = None,
               url: Optional[str] = None, *, prefix: Optional[str] = None, combine: Any = None,
               concat_dims: Optional[Sequence[str]] = None, identical_dims: Optional[Sequence[str]] = None,
               inline_threshold: int = 500, **remote: Any) -> Dict[str, Any]:
    """kerchunk chunk references of array members, in archive coordinates.

    Each HDF5 / NetCDF4 member (``kerchunk.hdf.SingleHdf5ToZarr``), NetCDF3
    member (``kerchunk.netCDF3.NetCDF3ToZarr``) and TIFF member
    (``kerchunk.tiff.tiff_to_zarr``, first series) is scanned through
    tacozip's member file of the archive (range reads of what the scanner
    reads, not a download); every reference ``[member, offset, size]`` it
    gives becomes ``[url, member data offset + offset, size]``; inline data
    stays inline.  ``members``: a name (the result is that member's
    reference set), a list of names, or None: every member under
    ``prefix`` whose name ends in one of ``ARRAY_SUFFIXES`` (the result is
    ``{name: reference set}``).  ``url`` as for :func:`refs`.

    With ``concat_dims`` (and ``identical_dims``), or ``combine=True`` / a
    dict of more ``MultiZarrToZarr`` arguments, the members' reference sets
    are combined into one (kerchunk's ``MultiZarrToZarr``, which reads
    coordinate values through the references: ``remote_protocol`` and
    ``remote_options`` in ``combine`` if the URL's protocol needs options).

    Raises TacozipError (``TACOZ_ERR_UNSUPPORTED``) naming compressed or
    encrypted members, ValueError for a member of a format it cannot scan.
    """
    ar, owned, default_url = _open(archive, remote)
    try:
        url = _url(ar, url, default_url)
        single = isinstance(members, (str, Member))
        p = _prefix(prefix)
        if members is None:
            chosen = [m for m in ar.members if not m.name.endswith("/") and m.name.startswith(p)
                      and m.name.lower().endswith(ARRAY_SUFFIXES)]
            if not chosen:
                raise ValueError(f"{ar.path}: no array member (names ending in {', '.join(ARRAY_SUFFIXES)})"
                                 + (f" under {_q(p)}" if p else ""))
        else:
            chosen = _select(ar, members, p)
        _check_stored(ar, chosen)
        # the first bytes of each member in one batched read (coalesced,
        # parallel): the format, and the scanners' first read, kept in the
        # spans that the member files of a remote archive read from
        fs = _scan_filesystem()(_archive=ar)  # shares the open archive (and its directory): no request to open
        some = [m for m in chosen if m.size]
        got = dict(zip([m.name for m in some],
                       ar.read_ranges([(m.offset, min(SCAN_MIN_FETCH, m.size)) for m in some]) if some else []))
        heads = [got.get(m.name, b"") for m in chosen]
        kinds = []
        for m, h in zip(chosen, heads):
            if fs.remote and h:
                fs.spans.keep(m.offset, h)
            k = _kind(h)
            if k is None:
                raise ValueError(f"{ar.path}: member {_q(m.name)} is not HDF5/NetCDF4, NetCDF3 or TIFF "
                                 f"(first bytes {h[:8]!r}): no chunk references")
            kinds.append(k)
        per = {m.name: _scan(fs, m, k, url, inline_threshold) for m, k in zip(chosen, kinds)}
    finally:
        if owned:
            ar.close()
    if combine or concat_dims:
        return _combine(list(per.values()), url, combine, concat_dims, identical_dims)
    if single:
        return per[chosen[0].name]
    return per


#: the first fetch of a scanner's read that misses the member file's cache
SCAN_MIN_FETCH = 16 * 1024

_SCAN_PROTOCOL = "tacozip-scan"
_scan_class = None


def _scan_filesystem():
    """A TacoFileSystem over an archive opened elsewhere (``_archive=``) that
    leaves it open when it is closed or collected, registered with fsspec
    as ``tacozip-scan://`` for the scanners that open a URL themselves."""
    global _scan_class
    if _scan_class is None:
        import fsspec

        from .fsspec import TacoFileSystem

        class ScanFileSystem(TacoFileSystem):
            protocol = _SCAN_PROTOCOL

            def __init__(self, *args: Any, _spans: Any = None, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                if _spans is not None:  # the bytes fetched so far for this archive, shared
                    self.spans = _spans

            def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None,
                      cache_type=None, **kwargs):
                # remote: the adaptive cache with small first fetches (the
                # scanners' reads are small and scattered: 16 KiB measured 3
                # requests, 48 KiB for a 1.8 MB NetCDF4 member, against 3
                # requests, 768 KiB with the default 256 KiB); local: direct reads
                if cache_type is None and self.remote:
                    cache_type = "adaptive"
                    cache_options = {"min_fetch": SCAN_MIN_FETCH, **(cache_options or {})}
                return super()._open(path, mode, block_size, autocommit, cache_options, cache_type, **kwargs)

            def close(self) -> None:  # the archive belongs to chunk_refs (or its caller)
                pass

        fsspec.register_implementation(_SCAN_PROTOCOL, ScanFileSystem, clobber=True)
        _scan_class = ScanFileSystem
    return _scan_class


def _scan(fs: Any, m: Member, kind: str, url: str, inline_threshold: int) -> Dict[str, Any]:
    """kerchunk's scanner on the member file; its references rebased."""
    ar = fs.archive
    placeholder = f"{_SCAN_PROTOCOL}://{m.name}"
    try:
        r = _run_scanner(fs, m, kind, placeholder, inline_threshold)
    except (TacozipError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - the scanner's failure, named with the member
        raise ValueError(f"{ar.path}: member {_q(m.name)}: kerchunk could not scan it as {kind} "
                         f"({type(e).__name__}: {e})") from e
    return _rebase(r, m, url, placeholder, ar.path)


def _run_scanner(fs: Any, m: Member, kind: str, placeholder: str, inline_threshold: int) -> Mapping[str, Any]:
    ar = fs.archive
    if kind == "hdf5":
        from kerchunk.hdf import SingleHdf5ToZarr

        with fs.open(m.name, "rb") as f:
            h = SingleHdf5ToZarr(f, url=placeholder, inline_threshold=inline_threshold)
            try:
                r = h.translate()
            finally:
                h.close()
    elif kind == "netcdf3":
        from kerchunk.netCDF3 import NetCDF3ToZarr

        n = NetCDF3ToZarr(placeholder, storage_options={"_archive": ar, "_spans": fs.spans},
                          inline_threshold=inline_threshold)
        try:
            r = n.translate()
        finally:
            n.fp.close()
    else:
        from kerchunk.tiff import tiff_to_zarr

        r = tiff_to_zarr(placeholder, remote_options={"_archive": ar, "_spans": fs.spans},
                         inline_threshold=inline_threshold)
    return r


def _expand(u: str, templates: Mapping[str, str]) -> str:
    if "{{" in u:
        for k, v in templates.items():
            u = u.replace("{{" + k + "}}", v)
    return u


def _rebase(r: Mapping[str, Any], m: Member, url: str, placeholder: str, where: str) -> Dict[str, Any]:
    """Member coordinates -> archive coordinates; inline values as they are
    (bytes as "base64:...")."""
    if r.get("gen"):
        raise ValueError(f"{where}: member {_q(m.name)}: kerchunk gave generated references ('gen'): not rebased")
    templates = r.get("templates") or {}
    src = r.get("refs", r) if r.get("version") == 1 or "refs" in r else r
    known = {placeholder, m.name, f"{_SCAN_PROTOCOL}:///{m.name}", "/" + m.name}
    out: Dict[str, Any] = {}
    for k, v in src.items():
        if k in ("version", "templates", "gen") and src is r:
            continue
        if isinstance(v, (list, tuple)):
            u = _expand(v[0] or "", templates)
            if u not in known:
                raise ValueError(f"{where}: member {_q(m.name)}: kerchunk referenced {u!r} for {k!r}, not the "
                                 "member scanned (an external file?): not rebased")
            off, size = (0, m.size) if len(v) == 1 else (int(v[1]), int(v[2]))
            if off < 0 or size < 0 or off + size > m.size:
                raise ValueError(f"{where}: member {_q(m.name)}: reference {k!r} [{off}, {off + size}) lies outside "
                                 f"its {m.size} bytes")
            out[k] = [url, m.offset + off, size]
        elif isinstance(v, bytes):
            try:
                out[k] = v.decode("ascii")
            except UnicodeDecodeError:
                out[k] = "base64:" + base64.b64encode(v).decode("ascii")
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = v
    return {"version": 1, "refs": out}


def _combine(sets: List[Dict[str, Any]], url: str, combine: Any, concat_dims: Optional[Sequence[str]],
             identical_dims: Optional[Sequence[str]]) -> Dict[str, Any]:
    from fsspec.core import split_protocol
    from kerchunk.combine import MultiZarrToZarr

    kw = dict(combine) if isinstance(combine, Mapping) else {}
    if concat_dims is not None:
        kw["concat_dims"] = list([concat_dims] if isinstance(concat_dims, str) else concat_dims)
    if identical_dims is not None:
        kw["identical_dims"] = list([identical_dims] if isinstance(identical_dims, str) else identical_dims)
    if not kw.get("concat_dims"):
        raise ValueError("combining needs concat_dims (the dimension(s) to concatenate along)")
    kw.setdefault("remote_protocol", split_protocol(url)[0] or "file")
    return MultiZarrToZarr(sets, **kw).translate()


# --------------------------------------------------------------------------- command line

_USAGE = ("usage: python -m tacozip.refs ARCHIVE [--url URL] [--prefix P] [--format json|parquet] [-o OUT]\n"
          "       [--record-size N]\n")

_HELP = _USAGE + """
Write a kerchunk reference set of the members of ARCHIVE (a path or an
http(s):// or s3:// URL): {"version": 1, "refs": {NAME: [URL, OFFSET, SIZE]}},
where [OFFSET, OFFSET+SIZE) is the member's data in the archive.

  --url URL          where readers find the archive (default: ARCHIVE as
                     given, or the real path of a local file)
  --prefix P         only members under the directory P, named relative to it
  --format F         json (default) or parquet (kerchunk's Parquet layout, a
                     directory; the members must be a Zarr v2 hierarchy)
  -o, --output OUT   write there (atomically) instead of stdout; required for
                     parquet
  --record-size N    references per Parquet file (default 100000)
  -h, --help         this help

Exit status: 0 success, 1 failure (the archive cannot be read, a member is
compressed or encrypted, ...), 2 usage error.
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts: Dict[str, str] = {}
    pos: List[str] = []
    names = {"--url": "url", "--prefix": "prefix", "--format": "format", "-o": "out", "--output": "out",
             "--record-size": "record_size"}

    def usage(msg: str) -> int:
        sys.stderr.write(f"python -m tacozip.refs: {msg}\n{_USAGE}")
        return 2

    i = 0
    end = False
    while i < len(args):
        a = args[i]
        i += 1
        if end or not a.startswith("-") or a == "-":
            pos.append(a)
            continue
        if a == "--":
            end = True
            continue
        if a in ("-h", "--help"):
            sys.stdout.write(_HELP)
            return 0
        name, eq, value = a.partition("=")
        if name not in names:
            if a.startswith("-o") and len(a) > 2:
                name, eq, value = "-o", "=", a[2:]
            else:
                return usage(f"unknown option {a!r}")
        if not eq:
            if i >= len(args):
                return usage(f"option {name} needs a value")
            value = args[i]
            i += 1
        key = names[name]
        if key in opts:
            return usage(f"option {name} given more than once")
        opts[key] = value
    if len(pos) != 1:
        return usage("needs one ARCHIVE" if not pos else f"unexpected argument {pos[1]!r}")
    fmt = opts.get("format", "json")
    if fmt not in FORMATS:
        return usage(f"unknown format {fmt!r} (json or parquet)")
    out = opts.get("out")
    if fmt == "parquet" and (out is None or out == "-"):
        return usage("--format parquet writes a directory: give -o OUT")
    record_size = 100_000
    if "record_size" in opts:
        try:
            record_size = int(opts["record_size"])
            if record_size < 1:
                raise ValueError
        except ValueError:
            return usage(f"--record-size needs a positive integer, not {opts['record_size']!r}")
    try:
        result = refs(pos[0], opts.get("url"), prefix=opts.get("prefix"), format=fmt,
                      out=None if out == "-" else out, record_size=record_size)
    except TacozipError as e:
        sys.stderr.write(f"python -m tacozip.refs: {e.detail or e}\n" if e.detail else f"python -m tacozip.refs: {e}\n")
        return 1
    except (OSError, ValueError, KeyError, ImportError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        sys.stderr.write(f"python -m tacozip.refs: {msg}\n")
        return 1
    if fmt == "json" and (out is None or out == "-"):
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
    return 0


# ``tacozip.refs(...)`` calls refs() (the module and the function share the name)
class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Union[Dict[str, Any], str]:
        return refs(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
