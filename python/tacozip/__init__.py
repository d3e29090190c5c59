"""tacozip: TACO archives (cloud-optimized STORE-only ZIP files whose first
157 bytes hold up to 7 byte ranges) from Python, over a compiled C library.

A drop-in for the original ``tacozip`` package (same names, signatures,
return values, exceptions and messages), plus ``tacozip.open()`` (member
index, byte-exact ranges, seekable member files, safe extraction),
``tacozip.append()`` and helpers that compute header entries.
"""

from .version import __version__
from . import config as _config
from .config import (
    ERROR_MESSAGES,
    ERROR_NAMES,
    TACO_HEADER_MAX_ENTRIES,
    TACO_HEADER_NAME,
    TACO_HEADER_NAME_LEN,
    TACO_HEADER_PAYLOAD_SIZE,
    TACO_HEADER_SIZE,
    TACOZ_ERR_CANCELLED,
    TACOZ_ERR_CHANGED,
    TACOZ_ERR_COMPRESSED,
    TACOZ_ERR_EXISTS,
    TACOZ_ERR_INDEXED,
    TACOZ_ERR_INVALID_HEADER,
    TACOZ_ERR_IO,
    TACOZ_ERR_LIBZIP,
    TACOZ_ERR_NETWORK,
    TACOZ_ERR_NO_REMOTE,
    TACOZ_ERR_NOMEM,
    TACOZ_ERR_NOT_FOUND,
    TACOZ_ERR_NOT_REMOTE,
    TACOZ_ERR_LOCKED,
    TACOZ_ERR_PARAM,
    TACOZ_ERR_RANGE_IGNORED,
    TACOZ_ERR_SPLIT,
    TACOZ_ERR_TOO_LARGE,
    TACOZ_ERR_UNSAFE_PATH,
    TACOZ_ERR_UNSUPPORTED,
    TACOZ_INVALID_CD_ENTRY,
    TACOZ_INVALID_CD_OFFSET,
    TACOZ_INVALID_COUNT,
    TACOZ_INVALID_CRC_CD,
    TACOZ_INVALID_CRC_LFH,
    TACOZ_INVALID_CRC_MEMBER,
    TACOZ_INVALID_FILE_SIZE,
    TACOZ_INVALID_HEADER_SIZE,
    TACOZ_INVALID_INDEX,
    TACOZ_INVALID_STORED_SIZE,
    TACOZ_INVALID_DESCRIPTOR,
    TACOZ_INVALID_LFH,
    TACOZ_INVALID_META_COUNT,
    TACOZ_INVALID_NAME,
    TACOZ_INVALID_NO_CD_ENTRY,
    TACOZ_INVALID_NO_EOCD,
    TACOZ_INVALID_NO_TACO,
    TACOZ_INVALID_NOT_ZIP,
    TACOZ_INVALID_OVERLAP,
    TACOZ_INVALID_REORDERED,
    TACOZ_INVALID_ZIP64,
    TACOZ_OK,
    TACOZ_VALID,
    TACOZIP_FORMAT_UNKNOWN,
    TACOZIP_FORMAT_ZIP32,
    TACOZIP_FORMAT_ZIP64,
    TACOZIP_VALIDATE_DEEP,
    TACOZIP_VALIDATE_NORMAL,
    TACOZIP_VALIDATE_QUICK,
)
from .exceptions import TacozipError, TacozipIOError, TacozipLibraryError, TacozipValidationError
from .loader import self_check
from ._api import (
    append,
    create,
    detect_format,
    get_library_version,
    read_header,
    recover,
    update_header,
    validate,
    validate_detail,
)
from ._archive import Member, MemberFile, TacoArchive, open
from .helpers import parquet_footer_range, parquet_row_group_ranges
from .header_only import NotFetchedError, decode_span, fetch, parquet_table
from .writer import Plan, PlannedEntry, PlannedMember, Writer, data, directory, plan, span

# every code the C library names (a later library may name more)
globals().update({_n: getattr(_config, _n) for _n in _config.CODE_NAMES})

__author__ = "tacozip developers"
__author_email__ = ""
__description__ = "TACO archives: STORE-only ZIP with a byte-range header at offset 0, over a C library."
__url__ = ""
__license__ = "MIT"
__tacozip_version__ = get_library_version()

__all__ = [
    "__version__",
    "__tacozip_version__",
    "__author__",
    "__author_email__",
    "__description__",
    "__url__",
    "__license__",
    "self_check",
    "TACOZ_OK",
    "TACOZ_ERR_IO",
    "TACOZ_ERR_LIBZIP",
    "TACOZ_ERR_INVALID_HEADER",
    "TACOZ_ERR_PARAM",
    "TACOZ_ERR_NOT_FOUND",
    "TACOZ_ERR_EXISTS",
    "TACOZ_ERR_TOO_LARGE",
    "TACO_HEADER_MAX_ENTRIES",
    "TacozipError",
    "create",
    "update_header",
    "read_header",
    "get_library_version",
    # present in the original's 0.11 line
    "validate",
    "detect_format",
    "TacozipIOError",
    "TacozipValidationError",
    "TacozipLibraryError",
    "TACOZIP_FORMAT_UNKNOWN",
    "TACOZIP_FORMAT_ZIP32",
    "TACOZIP_FORMAT_ZIP64",
    "TACOZIP_VALIDATE_QUICK",
    "TACOZIP_VALIDATE_NORMAL",
    "TACOZIP_VALIDATE_DEEP",
    "TACOZ_VALID",
    "TACOZ_INVALID_NOT_ZIP",
    "TACOZ_INVALID_NO_TACO",
    "TACOZ_INVALID_HEADER_SIZE",
    "TACOZ_INVALID_META_COUNT",
    "TACOZ_INVALID_FILE_SIZE",
    "TACOZ_INVALID_NO_EOCD",
    "TACOZ_INVALID_CD_OFFSET",
    "TACOZ_INVALID_NO_CD_ENTRY",
    "TACOZ_INVALID_REORDERED",
    "TACOZ_INVALID_CRC_LFH",
    "TACOZ_INVALID_CRC_CD",
    # beyond the original
    "open",
    "append",
    "recover",
    "validate_detail",
    "TacoArchive",
    "Member",
    "MemberFile",
    "parquet_footer_range",
    "parquet_row_group_ranges",
    "decode_span",
    "parquet_table",
    "fetch",
    "NotFetchedError",
    "Writer",
    "data",
    "span",
    "directory",
    "plan",
    "Plan",
    "PlannedEntry",
    "PlannedMember",
    "ERROR_MESSAGES",
    "ERROR_NAMES",
    "refs",
    "chunk_refs",
]
__all__ += [_n for _n in _config.CODE_NAMES if _n not in __all__]
from . import shards  # noqa: E402,F401 - tacozip.shards: shard archives and their catalog (docs/dask.md)


def __getattr__(name):
    """tacozip.refs and tacozip.chunk_refs, imported when first used (they
    need fsspec/kerchunk only when called).  tacozip.refs is the module
    tacozip/refs.py, callable as its refs() function (docs/references.md)."""
    if name in ("refs", "chunk_refs"):
        import importlib

        mod = importlib.import_module(".refs", __name__)  # binds tacozip.refs to the (callable) module
        return mod if name == "refs" else mod.chunk_refs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"refs", "chunk_refs"})
