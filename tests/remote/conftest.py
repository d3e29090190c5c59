"""Fixtures of the remote-reading tests (tests/remote).

* ``cli``      the tacozip command: $TACOZIP_BIN, default <repo>/build/tacozip
               (sanitizer reports make a test fail, whatever the exit status)
* ``tz``       the tacozip Python package (the one installed in this Python)
* archives     built once per session with the CLI: ``small`` (20 members,
               directory in the 65 KiB tail), ``many`` (5,000 members, directory
               larger than the tail), ``indexed`` (3,000 members, ``--index``),
               ``big`` (8 x 1 MiB, ``--index``), ``spread`` (200 x 4 KiB)
* servers      ``fault`` (tests/remote/faultserver.py, one per test), ``nginx``
               (real nginx, access log with $request $status $http_range
               $body_bytes_sent), ``s3`` (moto's ThreadedMotoServer with IAM
               authentication on, so every request's AWS SigV4 signature is
               verified, and its request recorder for counting)

Missing tools (the CLI, nginx, moto, boto3, the package) make tests FAIL with
what to install; nothing is skipped.
"""

import importlib
import json
import logging
import os
import pathlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from faultserver import FaultServer  # noqa: E402
from s3faultproxy import S3FaultProxy  # noqa: E402

# Error codes (include/tacozip.h)
ERR_IO = -1
ERR_PARAM = -4
ERR_CHANGED = -42
ERR_NETWORK = -43
ERR_RANGE_IGNORED = -44
INVALID_FILE_SIZE = -14
INVALID_NO_EOCD = -20

# tacozip_strerror() texts the CLI prints after a failure
STRERROR = {
    ERR_IO: "I/O error",
    ERR_CHANGED: "source changed while being read",
    ERR_NETWORK: "network or server error",
    ERR_RANGE_IGNORED: "the server ignores Range requests",
}

# the library's detailed messages for them (tacozip_last_error())
DETAIL = {
    ERR_IO: "HTTP 40",
    ERR_CHANGED: "the object changed",
    ERR_NETWORK: "server",
    ERR_RANGE_IGNORED: "the server ignores Range requests",
}

TAIL = 66560          # the suffix request of an open: 65 KiB + 1 KiB
INDEX_PROBE = 16384   # the first request of an index-first open


def require(module: str, pip_name: Optional[str] = None):
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - only when the env is incomplete
        pytest.fail(f"Python package {pip_name or module!r} is required by tests/remote and is missing ({e}); "
                    f"pip install {pip_name or module}", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- CLI

SANITIZER_EXIT = 86


class CLI:
    def __init__(self, binary: str):
        self.binary = binary

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(TACOZIP_HTTP_BACKOFF_MS="5", TACOZIP_HTTP_MAX_BACKOFF_MS="200",
                   ASAN_OPTIONS=f"exitcode={SANITIZER_EXIT}:detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS=f"exitcode={SANITIZER_EXIT}:print_stacktrace=1")
        for k, v in (extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run(self, *args, env: Optional[Dict[str, str]] = None, ok: Optional[bool] = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the CLI (stdout bytes, stderr text).  ok=True/False asserts
        success/failure (exit 1, never a crash or a usage error)."""
        p = subprocess.run([self.binary, *map(str, args)], capture_output=True, env=self.env(env), timeout=timeout)
        p.stderr = p.stderr.decode("utf-8", "replace")
        assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
        assert p.returncode in (0, 1), (args, p.returncode, p.stderr)
        if ok is True:
            assert p.returncode == 0, (args, p.stderr)
        elif ok is False:
            assert p.returncode == 1, (args, p.stdout[:200], p.stderr)
        return p

    def fails_with(self, code: int, *args, env=None, contains=()) -> subprocess.CompletedProcess:
        """The command fails (exit 1) naming error ``code`` in stderr: its
        tacozip_strerror() text; `cat`, which prints only the library's
        detailed message after a failed read, names it by that message."""
        p = self.run(*args, env=env, ok=False)
        assert STRERROR[code] in p.stderr or (args[0] == "cat" and DETAIL[code] in p.stderr), (code, p.stderr)
        for c in contains:
            assert c in p.stderr, (c, p.stderr)
        return p


@pytest.fixture(scope="session")
def cli() -> CLI:
    binary = os.environ.get("TACOZIP_BIN", str(ROOT / "build" / "tacozip"))
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"tacozip CLI {binary!r} not found: build it (cmake -S . -B build && cmake --build build) "
                    f"or set TACOZIP_BIN", pytrace=False)
    p = subprocess.run([binary, "version"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return CLI(binary)


@pytest.fixture(scope="session")
def tz():
    mod = require("tacozip")
    require("tacozip._tacozip", "tacozip (pip install /path/to/tacozip)")
    return mod


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    """Short backoff for the library inside this Python process too."""
    monkeypatch.setenv("TACOZIP_HTTP_BACKOFF_MS", "5")
    monkeypatch.setenv("TACOZIP_HTTP_MAX_BACKOFF_MS", "200")


# --------------------------------------------------------------------------- archives

class Archive(NamedTuple):
    path: pathlib.Path
    data: bytes
    members: Dict[str, bytes]      # name -> content (TACO_HEADER / TACO_INDEX excluded)
    listing: List[dict]            # `tacozip ls --json` of the local file
    entries: List[tuple]           # header entries

    def member(self, name: str) -> dict:
        return next(m for m in self.listing if m["name"] == name)

    @property
    def cd_offset(self) -> int:
        last = max(self.listing, key=lambda m: m["offset"])
        return last["offset"] + last["size"]


def _make(cli: CLI, base: pathlib.Path, key: str, files: Dict[str, bytes], entries, index=False) -> Archive:
    src = base / (key + "_src")
    for name, content in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    out = base / (key + ".zip")
    top = sorted({n.split("/")[0] for n in files})
    args = ["create", out, "--no-fsync", "--mtime", "1700000000"]
    for o, n in entries:
        args += ["-e", f"{o}:{n}"]
    if index:
        args.append("--index")
    cli.run(*args, *[src / t for t in top], ok=True)
    listing = json.loads(cli.run("ls", out, "--json", ok=True).stdout)
    return Archive(out, out.read_bytes(), files, listing, list(entries))


@pytest.fixture(scope="session")
def archives(cli, tmp_path_factory) -> Dict[str, Archive]:
    base = tmp_path_factory.mktemp("archives")
    rnd = random.Random(1234)

    def blob(n):
        return rnd.randbytes(n)

    arcs = {}
    arcs["small"] = _make(cli, base, "small", {f"small/s{i:02d}.bin": blob(300 * i + 17) for i in range(1, 21)},
                          [(157, 4000), (5, 6)])
    # the same small members, then a 70 KB member last: the tail read at
    # open holds only that one and the directory, so reading small/* costs
    # a request each (what the fault tests count)
    arcs["far"] = _make(cli, base, "far", {**{f"small/s{i:02d}.bin": blob(300 * i + 17) for i in range(1, 21)},
                                           "zpad/pad.bin": blob(70_000)}, [(157, 4000), (5, 6)])
    arcs["many"] = _make(cli, base, "many", {f"many/f{i:05d}.bin": blob(1000 + i % 50) for i in range(5000)},
                         [(0, 157)])
    arcs["indexed"] = _make(cli, base, "indexed",
                            {f"tiles/{i:05d}.bin": blob(64 + (i * 37) % 200) for i in range(3000)}, [(1, 2)],
                            index=True)
    arcs["big"] = _make(cli, base, "big", {f"big/m{i}.bin": blob(1 << 20) for i in range(8)}, [(0, 100)],
                        index=True)
    arcs["spread"] = _make(cli, base, "spread", {f"spread/p{i:03d}.bin": blob(4096) for i in range(200)},
                           [(0, 0)])
    # the properties the request counts rely on
    many = arcs["many"]
    assert len(many.data) - many.cd_offset > TAIL, "the 5,000-member directory must not fit in the tail"
    small = arcs["small"]
    assert len(small.data) - small.cd_offset < TAIL - 22
    far = arcs["far"]
    assert not any(in_tail(far, n) for n in far.members if n.startswith("small/"))
    assert len(small.data) < TAIL, "the small archive is read whole by the tail request"
    ix = arcs["indexed"].member("TACO_INDEX")
    assert ix["offset"] + ix["size"] <= INDEX_PROBE, "the index of 3,000 members must fit in the first 16 KiB"
    return arcs


def in_tail(arc: Archive, name: str) -> bool:
    """Member ``name`` (local header and data) lies inside the tail read at
    open, which the library keeps: reading it costs no request."""
    return arc.member(name)["header_offset"] >= len(arc.data) - TAIL


# --------------------------------------------------------------------------- fault server

@pytest.fixture
def fault(tmp_path):
    s = FaultServer(tmp_path / "www").start()
    try:
        yield s
    finally:
        s.stop()


# --------------------------------------------------------------------------- nginx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from taco_nginx import NginxError, NginxProcess, find_nginx  # noqa: E402

LOG_FORMAT = "$request\\t$status\\t$http_range\\t$body_bytes_sent\\t$http_if_match"


class LogLine(NamedTuple):
    method: str
    path: str
    status: int
    range: Optional[str]
    body_bytes: int
    if_match: Optional[str]


class Nginx(NginxProcess):
    """The shared nginx (tests/support/taco_nginx.py) logging request,
    status, Range, body bytes and If-Match."""

    def __init__(self, binary: str, tmp: pathlib.Path):
        (tmp / "www").mkdir()
        super().__init__(binary, tmp, tmp / "www", LOG_FORMAT)
        try:
            self.start()
        except NginxError as e:
            pytest.fail(str(e), pytrace=False)

    def publish(self, arc: Archive, name: str) -> str:
        dest = self.root / name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(arc.path, dest)
        return f"{self.base}/{name}"

    def reset(self):
        self.lines(settle=0.05)  # let a late line land before truncating
        self.truncate_log()

    def lines(self, expect: Optional[int] = None, settle: float = 0.1) -> List[LogLine]:
        """Access-log lines (nginx writes one when a response is done): wait
        for ``expect`` lines, then a little longer to catch any extra."""
        deadline = time.monotonic() + 5
        while True:
            raw = self.log_lines()
            if expect is None or len(raw) >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        time.sleep(settle)
        raw = self.log_lines()
        out = []
        for ln in raw:
            request, status, rng, body, im = ln.split("\t")
            method, path, _ = request.split(" ")
            out.append(LogLine(method, path, int(status), None if rng == "-" else rng, int(body),
                               None if im == "-" else im))
        return out


@pytest.fixture(scope="session")
def nginx_server():
    binary = find_nginx()
    if binary is None:
        pytest.fail("nginx is required by tests/remote and was not found (PATH, /usr/sbin/nginx, $TACOZIP_NGINX): "
                    "apt-get install nginx", pytrace=False)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="tacozip-remote-nginx-"))
    server = Nginx(binary, tmp)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def nginx(nginx_server):
    nginx_server.reset()
    return nginx_server


# --------------------------------------------------------------------------- S3 (moto)

BUCKET = "tacozip-remote"


class MotoS3:
    """moto S3 on 127.0.0.1 with IAM authentication ON: a request whose AWS
    SigV4 signature does not verify against the IAM user's secret is
    refused (403).  Requests are counted with moto's recorder (server side,
    with their headers)."""

    def __init__(self, tmp: pathlib.Path):
        require("flask", "moto[server]")
        moto_server = require("moto.server", "moto[server]")
        self.boto3 = require("boto3")
        from botocore.config import Config

        from moto import settings as moto_settings
        from moto.moto_api import recorder

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.settings = moto_settings
        self.recorder = recorder
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.cfg = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                          retries={"max_attempts": 1, "mode": "standard"})
        boot = dict(endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="boot",
                    aws_secret_access_key="boot")
        iam = self.boto3.client("iam", **boot)
        deadline = time.monotonic() + 15
        while True:
            try:
                iam.create_user(UserName="tacozip")
                break
            except Exception as e:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    pytest.fail(f"moto did not start on {self.endpoint}: {e!r}", pytrace=False)
                time.sleep(0.05)
        iam.put_user_policy(UserName="tacozip", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="tacozip")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        self.client = self.boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                        aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                        config=self.cfg)
        # from here on every request must carry a valid signature
        self._old_auth = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        from moto.core.authorization import ActionAuthenticatorMixin

        ActionAuthenticatorMixin.request_count = 0
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        self.client.create_bucket(Bucket=BUCKET)
        self._rec_file = tmp / "moto_recording"
        self._old_rec = (recorder._location, recorder._user_enabled)
        recorder._location = str(self._rec_file)
        recorder.reset_recording()
        recorder.start_recording()
        self.published = set()

    def env(self, **extra) -> Dict[str, str]:
        env = dict(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID=self.access_key,
                   AWS_SECRET_ACCESS_KEY=self.secret_key, AWS_REGION="us-east-1", AWS_SESSION_TOKEN=None,
                   AWS_ENDPOINT_URL_S3=None, AWS_DEFAULT_REGION=None, AWS_NO_SIGN_REQUEST=None)
        env.update(extra)
        return env

    def publish(self, arc: Archive, key: str) -> str:
        if key not in self.published:
            self.client.put_object(Bucket=BUCKET, Key=key, Body=arc.data)
            self.published.add(key)
        return f"s3://{BUCKET}/{key}"

    def reset(self):
        self.recorder.reset_recording()

    def requests(self) -> List[dict]:
        text = self._rec_file.read_text() if self._rec_file.exists() else ""
        return [json.loads(ln) for ln in text.split("\n") if ln.strip()]

    def stop(self):
        self.recorder.stop_recording()
        self.recorder._location, self.recorder._user_enabled = self._old_rec
        self.settings.INITIAL_NO_AUTH_ACTION_COUNT = self._old_auth
        self.server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    s = MotoS3(tmp_path_factory.mktemp("moto"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The S3 server, with this process's environment pointing at it (for
    the Python package) and the request recording emptied."""
    for k, v in s3_server.env().items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    s3_server.reset()
    return s3_server


# --------------------------------------------------------------------------- helpers for tests

def entries_text(entries) -> bytes:
    return "".join(f"{o} {n}\n" for o, n in entries).encode()


def stats_of(stderr: str):
    """(requests, bytes) from the CLI's --stats line."""
    for ln in stderr.splitlines():
        if ln.endswith(" bytes received") and " requests, " in ln:
            words = ln.split()
            return int(words[-5]), int(words[-3])
    raise AssertionError(f"no --stats line in {stderr!r}")


def exc_text(e: BaseException) -> str:
    """Everything an exception shows: str, detail, notes, traceback text."""
    import traceback

    return "\n".join([str(e), repr(e), str(getattr(e, "detail", "")), *getattr(e, "__notes__", []),
                      "".join(traceback.format_exception(e))])


# --------------------------------------------------------------------------- uploads (test_upload, test_s3_write)

@pytest.fixture
def proxy(s3):
    p = S3FaultProxy(s3.port).start()
    try:
        yield p
    finally:
        p.stop()


def assert_nothing_left(s3, key):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as ei:
        s3.client.head_object(Bucket=BUCKET, Key=key)
    assert ei.value.response["Error"]["Code"] in ("404", "NoSuchKey"), ei.value.response
    ups = s3.client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    assert [u for u in ups if u["Key"] == key] == []
