"""Native library access (kept for programs that import tacozip.loader)."""

from .exceptions import TacozipLibraryError


def get_library():
    """Return the compiled extension module that wraps the C library."""
    try:
        from . import _tacozip
    except ImportError as e:  # pragma: no cover - a broken install
        raise TacozipLibraryError(-1, f"Native extension not importable: {e}") from e
    return _tacozip


def self_check() -> None:
    """Check that the native library is loaded and works.

    Raises TacozipLibraryError if the extension is missing a function or a
    header round trip through it gives a wrong result.
    """
    lib = get_library()
    required = ["version", "create", "read_header", "update_header", "parse_header", "serialize_header",
                "validate", "detect_format"]
    missing = [f for f in required if not hasattr(lib, f)]
    if missing:
        raise TacozipLibraryError(-1, f"Missing functions in native library: {missing}")
    entries = [(1, 2), (3, 4), (0, 0)]
    if lib.parse_header(lib.serialize_header(entries)) != entries:
        raise TacozipLibraryError(-1, "header round trip through the native library failed")
