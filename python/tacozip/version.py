"""Version information for tacozip.

The one version number is TACOZIP_VERSION_STRING in include/tacozip.h: the
compiled extension reports it (tacozip_get_version()), and the wheel's
metadata is read from the same line at build time.  Nothing is written here.
"""

try:
    from ._tacozip import version as _library_version

    __version__ = _library_version()
except ImportError:  # the extension is not built: the installed metadata
    from importlib.metadata import PackageNotFoundError, version as _dist_version

    try:
        __version__ = _dist_version("tacozip")
    except PackageNotFoundError:
        __version__ = "0+unknown"
