"""Exceptions of tacozip (the same classes as the original package)."""

from typing import Optional

from .config import ERROR_MESSAGES


class TacozipError(Exception):
    """Base exception for tacozip library errors.

    ``code`` is the library's error code (``TACOZ_ERR_*`` or
    ``TACOZ_INVALID_*``).  When the library knows more (which file, member or
    structure is at fault), ``detail`` holds that text, also shown as a note
    in tracebacks; ``str(e)`` keeps the original package's wording.
    """

    def __init__(self, code: int, message: Optional[str] = None):
        self.code = code
        self.detail: Optional[str] = None
        if message is None:
            message = ERROR_MESSAGES.get(code, f"Unknown error code: {code}")
        super().__init__(f"tacozip error {code}: {message}")


class TacozipIOError(TacozipError):
    """I/O related errors."""


class TacozipValidationError(TacozipError):
    """Validation and parameter errors."""


class TacozipLibraryError(TacozipError):
    """Native library loading errors."""
