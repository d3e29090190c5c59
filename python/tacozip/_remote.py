"""Remote settings of one archive: keyword arguments / fsspec-style
``storage_options`` and the usual environment variables, turned into the
fields of the C library's ``tacozip_remote_options``.

The library reads no environment variable; this module reads ``os.environ``
each time an archive is opened (or a header read), for the settings the
caller did not give:

======================================  =====================================
caller's name (aliases)                 environment variable(s)
======================================  =====================================
``key`` (``aws_access_key_id``)         ``AWS_ACCESS_KEY_ID``
``secret`` (``aws_secret_access_key``)  ``AWS_SECRET_ACCESS_KEY``
``token`` (``aws_session_token``)       ``AWS_SESSION_TOKEN``
``anon``                                ``AWS_NO_SIGN_REQUEST`` (true/1)
``region`` (``region_name``)            ``AWS_REGION``, ``AWS_DEFAULT_REGION``
``endpoint_url``                        ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``
``s3_addressing`` auto/path/virtual
``retries`` (0: none)                   ``TACOZIP_HTTP_RETRIES``
``backoff``, ``max_backoff`` (s)        ``TACOZIP_HTTP_BACKOFF_MS``, ``TACOZIP_HTTP_MAX_BACKOFF_MS``
``connect_timeout`` (s)                 ``TACOZIP_HTTP_CONNECT_TIMEOUT_MS``
``stall_timeout`` (s)                   ``TACOZIP_HTTP_STALL_TIMEOUT_S``
``min_rate`` (bytes/s)                  ``TACOZIP_HTTP_MIN_RATE``
``deadline`` (s, per operation)         ``TACOZIP_HTTP_DEADLINE_MS``
``parallel``                            ``TACOZIP_HTTP_PARALLEL``
``max_gap`` (coalescing gap, bytes)
``max_skip`` (bytes)                    ``TACOZIP_HTTP_MAX_SKIP``
``ca_bundle``                           ``TACOZIP_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``AWS_CA_BUNDLE``
``headers`` (dict or "Name: value" list)
``expected_identity`` (an ETag)
======================================  =====================================

Credentials go together: when the caller gives any of key, secret, token or
``anon``, none of the three is taken from the environment.  s3fs-style
``client_kwargs={"endpoint_url": ..., "region_name": ..., "verify": path}``
and ``config_kwargs={"s3": {"addressing_style": ...}, "connect_timeout":
..., "read_timeout": ..., "retries": {"max_attempts": n}}`` are accepted too.
Malformed environment values are ignored (the library's default applies),
as the library did when it read them itself.
"""

import math
import os
from typing import Any, Dict, Mapping, Optional

from . import _tacozip

# TACOZIP_NO_GAP / TACOZIP_NO_SKIP of tacozip.h: a setting of "none"
_NONE = (1 << 64) - 1

_ADDRESSING = {"auto": _tacozip.TACOZIP_S3_AUTO, "path": _tacozip.TACOZIP_S3_PATH,
               "virtual": _tacozip.TACOZIP_S3_VIRTUAL}

# flat name -> canonical name
_ALIASES = {
    "key": "key", "aws_access_key_id": "key",
    "secret": "secret", "aws_secret_access_key": "secret",
    "token": "token", "aws_session_token": "token",
    "anon": "anon",
    "region": "region", "region_name": "region",
    "endpoint_url": "endpoint_url",
    "s3_addressing": "s3_addressing", "addressing_style": "s3_addressing",
    "retries": "retries",
    "backoff": "backoff", "max_backoff": "max_backoff",
    "connect_timeout": "connect_timeout",
    "stall_timeout": "stall_timeout", "read_timeout": "stall_timeout",
    "min_rate": "min_rate", "deadline": "deadline",
    "parallel": "parallel",
    "max_gap": "max_gap",
    "max_skip": "max_skip",
    "ca_bundle": "ca_bundle", "verify": "ca_bundle",
    "headers": "headers",
    "expected_identity": "expected_identity",
}

_CLIENT_KWARGS = {"endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key",
                  "aws_session_token", "verify"}


def _merge(out: Dict[str, Any], name: str, value: Any, where: str) -> None:
    canon = _ALIASES.get(name)
    if canon is None:
        raise TypeError(f"unknown remote option {name!r} ({where})")
    if value is None:
        return
    if canon in out and out[canon] != value:
        raise TypeError(f"remote option {canon!r} given twice with different values")
    out[canon] = value


def _collect(storage_options: Optional[Mapping[str, Any]], kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """Flat canonical settings from storage_options and keyword arguments."""
    out: Dict[str, Any] = {}
    for where, src in (("storage_options", storage_options or {}), ("keyword argument", kwargs)):
        if not isinstance(src, Mapping):
            raise TypeError("storage_options must be a mapping")
        for name, value in src.items():
            if name == "client_kwargs":
                for k, v in (value or {}).items():
                    if k not in _CLIENT_KWARGS:
                        raise TypeError(f"unknown remote option client_kwargs[{k!r}]")
                    _merge(out, k, v, "client_kwargs")
            elif name == "config_kwargs":
                for k, v in (value or {}).items():
                    if k == "s3":
                        for sk, sv in (v or {}).items():
                            if sk != "addressing_style":
                                raise TypeError(f"unknown remote option config_kwargs['s3'][{sk!r}]")
                            _merge(out, "s3_addressing", sv, "config_kwargs")
                    elif k == "retries":
                        attempts = (v or {}).get("max_attempts") if isinstance(v, Mapping) else v
                        if attempts is not None:
                            # botocore counts the first attempt, we count retries
                            _merge(out, "retries", max(int(attempts) - 1, 0), "config_kwargs")
                    elif k in ("connect_timeout", "read_timeout"):
                        _merge(out, k, v, "config_kwargs")
                    else:
                        raise TypeError(f"unknown remote option config_kwargs[{k!r}]")
            else:
                _merge(out, name, value, where)
    return out


def _seconds_to(value: Any, scale: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"remote option {name} must be a number of seconds")
    if not value > 0:
        raise ValueError(f"remote option {name} must be positive, not {value!r}")
    return max(1, math.ceil(value * scale))


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"remote option {name} must be an int")
    if value < minimum:
        raise ValueError(f"remote option {name} must be >= {minimum}, not {value}")
    return value


def _env_int(env: Mapping[str, str], name: str, lo: int, hi: int) -> Optional[int]:
    v = env.get(name, "").strip()
    if not v:
        return None
    try:
        x = int(v, 10)
    except ValueError:
        return None
    return x if lo <= x <= hi else None


def _env_first(env: Mapping[str, str], *names: str) -> Optional[str]:
    for n in names:
        v = env.get(n)
        if v:
            return v
    return None


def remote_options(storage_options: Optional[Mapping[str, Any]] = None, environ: Optional[Mapping[str, str]] = None,
                   **kwargs: Any) -> Dict[str, Any]:
    """The tacozip_remote_options fields (a dict for the extension) from the
    caller's settings, completed from ``environ`` (default ``os.environ``,
    read now)."""
    given = _collect(storage_options, kwargs)
    env = os.environ if environ is None else environ
    o: Dict[str, Any] = {}

    # credentials: all from the caller, or all from the environment
    if any(k in given for k in ("key", "secret", "token", "anon")):
        key, secret, token = given.get("key"), given.get("secret"), given.get("token")
        anon = given.get("anon", False)
        if not isinstance(anon, bool):
            raise TypeError(f"remote option anon must be True or False, not {anon!r}")
        if (key is None) != (secret is None):
            raise ValueError("remote options key and secret go together (one was given without the other)")
    else:
        key, secret = env.get("AWS_ACCESS_KEY_ID") or None, env.get("AWS_SECRET_ACCESS_KEY") or None
        token = env.get("AWS_SESSION_TOKEN") or None if key and secret else None
        anon = env.get("AWS_NO_SIGN_REQUEST", "").strip().lower() in ("true", "1")
    for field, value in (("access_key_id", key), ("secret_access_key", secret), ("session_token", token)):
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"remote option {field} must be a str")
            o[field] = value
    if anon:
        o["unsigned_requests"] = True

    region = given.get("region", _env_first(env, "AWS_REGION", "AWS_DEFAULT_REGION"))
    if region is not None:
        o["region"] = region
    endpoint = given.get("endpoint_url", _env_first(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"))
    if endpoint is not None:
        o["endpoint_url"] = endpoint

    if "s3_addressing" in given:
        style = given["s3_addressing"]
        if style not in _ADDRESSING:
            raise ValueError(f"s3_addressing must be one of {sorted(_ADDRESSING)}, not {style!r}")
        o["s3_addressing"] = _ADDRESSING[style]

    if "retries" in given:
        n = _int(given["retries"], "retries")
        o["retries"] = n if n > 0 else _tacozip.TACOZIP_NO_RETRIES
    else:
        n = _env_int(env, "TACOZIP_HTTP_RETRIES", 0, 100)
        if n is not None:
            o["retries"] = n if n > 0 else _tacozip.TACOZIP_NO_RETRIES

    for name, field, scale, env_name, lo, hi in (
            ("backoff", "backoff_ms", 1000, "TACOZIP_HTTP_BACKOFF_MS", 1, 60000),
            ("max_backoff", "max_backoff_ms", 1000, "TACOZIP_HTTP_MAX_BACKOFF_MS", 1, 600000),
            ("connect_timeout", "connect_timeout_ms", 1000, "TACOZIP_HTTP_CONNECT_TIMEOUT_MS", 100, 600000),
            ("stall_timeout", "stall_timeout_s", 1, "TACOZIP_HTTP_STALL_TIMEOUT_S", 1, 3600),
            ("deadline", "deadline_ms", 1000, "TACOZIP_HTTP_DEADLINE_MS", 1, 86400000)):
        if name in given:
            o[field] = _seconds_to(given[name], scale, name)
        else:
            v = _env_int(env, env_name, lo, hi)
            if v is not None:
                o[field] = v

    if "min_rate" in given:
        o["min_rate"] = _int(given["min_rate"], "min_rate", 1)
    else:
        v = _env_int(env, "TACOZIP_HTTP_MIN_RATE", 1, 1 << 30)
        if v is not None:
            o["min_rate"] = v

    if "parallel" in given:
        o["parallel"] = _int(given["parallel"], "parallel", 1)
    else:
        v = _env_int(env, "TACOZIP_HTTP_PARALLEL", 1, 64)
        if v is not None:
            o["parallel"] = v

    # 0 means "the default" to the library; "none" is spelt _NONE (2**64-1)
    if "max_gap" in given:
        v = _int(given["max_gap"], "max_gap")
        o["coalesce_gap"] = v if v else _NONE

    if "max_skip" in given:
        v = _int(given["max_skip"], "max_skip")
        o["max_skip"] = v if v else _NONE
    else:
        v = _env_int(env, "TACOZIP_HTTP_MAX_SKIP", 0, 1 << 40)
        if v is not None:
            o["max_skip"] = v if v else _NONE

    ca = given.get("ca_bundle")
    if isinstance(ca, bool):  # s3fs/requests style verify=True/False
        if not ca:
            raise ValueError("TLS certificate verification cannot be turned off (verify=False)")
        ca = None
    if ca is None:
        ca = _env_first(env, "TACOZIP_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")
    if ca is not None:
        o["ca_bundle"] = os.fspath(ca)

    if given.get("expected_identity"):  # the object must still be this one (TACOZ_ERR_CHANGED if not)
        ident = given["expected_identity"]
        if not isinstance(ident, str):
            raise TypeError("remote option expected_identity must be a str (an ETag)")
        o["expected_identity"] = ident

    if "headers" in given:
        h = given["headers"]
        if isinstance(h, Mapping):
            o["headers"] = [f"{k}: {v}" for k, v in h.items()]
        elif isinstance(h, (list, tuple)):
            o["headers"] = [str(x) for x in h]
        else:
            raise TypeError("remote option headers must be a dict or a list of 'Name: value' strings")
    return o


def source_args(source: Any, storage_options: Optional[Mapping[str, Any]], kwargs: Mapping[str, Any]):
    """What the extension needs to open ``source``: (source, remote options
    or None, display name for a file object or None, name to show).

    ``source`` is a local path, a URL (remote settings from the caller and
    the environment, read now) or a binary file object."""
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fspath(source)
        if _tacozip.is_url(path):
            return path, remote_options(storage_options, **kwargs), None, _tacozip.display_name(path)
        _collect(storage_options, kwargs)  # unknown names are still an error; settings do not apply
        return path, None, None, path
    if isinstance(source, (bytearray, memoryview)):
        raise TypeError("a buffer is not an archive source here: wrap it in io.BytesIO")
    _collect(storage_options, kwargs)
    name = file_display_name(source)
    return source, None, name, name


def file_display_name(f: Any) -> str:
    """How a file object is named in messages: its name or path without
    credentials, else <TypeName>."""
    for attr in ("name", "path"):
        try:
            n = getattr(f, attr, None)
        except Exception:  # noqa: BLE001 - a property that fails: no name
            n = None
        if isinstance(n, (str, bytes, os.PathLike)) and os.fspath(n):
            d = _tacozip.display_name(n)
            return d if isinstance(d, str) else os.fsdecode(d)
    return f"<{type(f).__name__}>"
