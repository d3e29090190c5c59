"""Constants of tacozip: error codes, validation results, header layout.

Every value, name and message comes from the C library (its code table,
``tacozip_error_name()`` / ``tacozip_strerror()``, and the constants of
``include/tacozip.h``), so the package and the library cannot disagree.
The names and values of the original ``tacozip`` package are among them,
and its codes keep the original wording in ``ERROR_MESSAGES``.
"""

from typing import Dict

from . import _tacozip

# Every code of the library: TACOZ_<name> = code, for 0 down to -99.
_CODES = _tacozip.codes()

ERROR_NAMES: Dict[int, str] = {}
"""code -> constant name, e.g. -43 -> "TACOZ_ERR_NETWORK"."""

for _code, _name, _message in _CODES:
    globals()["TACOZ_" + _name] = _code
    ERROR_NAMES[_code] = "TACOZ_" + _name

# The names below are listed for readers and tools; the values are the
# library's (assigned by the loop above).  Error codes:
TACOZ_OK: int
TACOZ_ERR_IO: int
TACOZ_ERR_LIBZIP: int
TACOZ_ERR_INVALID_HEADER: int
TACOZ_ERR_PARAM: int
TACOZ_ERR_NOT_FOUND: int
TACOZ_ERR_EXISTS: int
TACOZ_ERR_TOO_LARGE: int
TACOZ_ERR_NOMEM: int
TACOZ_ERR_UNSUPPORTED: int
TACOZ_ERR_UNSAFE_PATH: int
TACOZ_ERR_CANCELLED: int
TACOZ_ERR_CHANGED: int
TACOZ_ERR_NETWORK: int
TACOZ_ERR_RANGE_IGNORED: int
TACOZ_ERR_SPLIT: int
TACOZ_ERR_INDEXED: int
TACOZ_ERR_NO_REMOTE: int
TACOZ_ERR_NOT_REMOTE: int
TACOZ_ERR_LOCKED: int
# Validation results:
TACOZ_INVALID_NOT_ZIP: int
TACOZ_INVALID_NO_TACO: int
TACOZ_INVALID_HEADER_SIZE: int
TACOZ_INVALID_META_COUNT: int
TACOZ_INVALID_FILE_SIZE: int
TACOZ_INVALID_NO_EOCD: int
TACOZ_INVALID_CD_OFFSET: int
TACOZ_INVALID_NO_CD_ENTRY: int
TACOZ_INVALID_REORDERED: int
TACOZ_INVALID_CD_ENTRY: int
TACOZ_INVALID_COUNT: int
TACOZ_INVALID_LFH: int
TACOZ_INVALID_OVERLAP: int
TACOZ_INVALID_ZIP64: int
TACOZ_INVALID_NAME: int
TACOZ_INVALID_CRC_LFH: int
TACOZ_INVALID_CRC_CD: int
TACOZ_INVALID_CRC_MEMBER: int
TACOZ_INVALID_INDEX: int
TACOZ_INVALID_STORED_SIZE: int
TACOZ_INVALID_DESCRIPTOR: int

# Aliases of include/tacozip.h.
TACOZ_VALID = TACOZ_OK
TACOZ_ERR_COMPRESSED = TACOZ_ERR_UNSUPPORTED

# Error messages: every code but TACOZ_OK (the original's codes in the
# original's wording; the library's table keeps it).
ERROR_MESSAGES: Dict[int, str] = {code: message for code, _name, message in _CODES if code != 0}

# Format detection
TACOZIP_FORMAT_UNKNOWN = _tacozip.TACOZIP_FORMAT_UNKNOWN
TACOZIP_FORMAT_ZIP32 = _tacozip.TACOZIP_FORMAT_ZIP32
TACOZIP_FORMAT_ZIP64 = _tacozip.TACOZIP_FORMAT_ZIP64

# Validation levels
TACOZIP_VALIDATE_QUICK = _tacozip.TACOZIP_VALIDATE_QUICK
TACOZIP_VALIDATE_NORMAL = _tacozip.TACOZIP_VALIDATE_NORMAL
TACOZIP_VALIDATE_DEEP = _tacozip.TACOZIP_VALIDATE_DEEP

# TACO Header constants
TACO_HEADER_MAX_ENTRIES = _tacozip.TACO_HEADER_MAX_ENTRIES
TACO_HEADER_SIZE = _tacozip.TACO_HEADER_SIZE
TACO_HEADER_NAME = _tacozip.TACO_HEADER_NAME
TACO_HEADER_NAME_LEN = _tacozip.TACO_HEADER_NAME_LEN
TACO_HEADER_PAYLOAD_SIZE = _tacozip.TACO_HEADER_PAYLOAD_SIZE

CODE_NAMES = tuple(ERROR_NAMES.values()) + ("TACOZ_VALID", "TACOZ_ERR_COMPRESSED")
"""Every TACOZ_* constant name (the package exports them all)."""

del _code, _name, _message
