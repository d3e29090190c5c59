"""Servers for the seed-workflow tests: a real nginx serving a temp dir over
HTTP (Range requests, access log with what was sent) and a moto S3 server
(boto3, path-style, signed requests, every GetObject counted through the
client's event system).

The ``remote`` fixture gives each test one backend ("http" or "s3") with the
same small interface:

    remote.publish(local_path, key)       upload / copy (not counted)
    remote.get_range(key, offset, length) one ranged GET, checked (206, exact
                                          Content-Range, exact length)
    remote.get(key)                       one whole-object GET
    remote.reset()                        forget what was transferred
    remote.transfers()                    [Transfer(key, range, status, nbytes)]
                                          nginx: from its access log (server
                                          side, $body_bytes_sent); S3: from the
                                          boto3 event hooks (ContentLength)

A missing nginx binary or Python package makes the test FAIL with a message
saying what to install; nothing is skipped.
"""

import importlib
import pathlib
import shutil
import socket
import sys
import tempfile
import time
from typing import List, NamedTuple, Optional

import pytest

REQUIREMENTS = pathlib.Path(__file__).with_name("requirements.txt")


def require(module: str, pip_name: Optional[str] = None):
    """Import ``module`` or FAIL the test (never skip) naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - only when the env is incomplete
        pytest.fail(f"Python package {pip_name or module!r} is required by the workflow tests and is missing "
                    f"({e}); install with: pip install -r {REQUIREMENTS}", pytrace=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Transfer(NamedTuple):
    key: str
    range: Optional[str]  # the Range header as sent, None for a whole GET
    status: int
    nbytes: int  # body bytes sent by the server


def _range_header(offset: int, length: int) -> str:
    if offset < 0 or length <= 0:
        raise ValueError(f"bad range ({offset}, {length})")
    return f"bytes={offset}-{offset + length - 1}"


# --------------------------------------------------------------------------- nginx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from taco_nginx import NginxError, NginxProcess, find_nginx  # noqa: E402

LOG_FORMAT = "$request\\t$status\\t$http_range\\t$bytes_sent\\t$body_bytes_sent\\t$sent_http_content_range"


class NginxServer(NginxProcess):
    """The shared nginx (tests/support/taco_nginx.py) with the log these
    tests count: request, status, Range, bytes sent, body bytes, Content-Range."""

    def __init__(self, binary: str, tmp: pathlib.Path):
        (tmp / "www").mkdir()
        super().__init__(binary, tmp, tmp / "www", LOG_FORMAT)

    def reset_log(self) -> None:
        self.truncate_log()

    def settled_log(self, quiet: float = 0.2, timeout: float = 5.0) -> List[dict]:
        """The parsed access log once no line has been added for ``quiet``
        seconds (nginx writes a line just after sending the response)."""
        deadline = time.monotonic() + timeout
        recs = self.read_log()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            again = self.read_log()
            if len(again) == len(recs):
                break
            recs = again
        return recs

    def read_log(self, expect: Optional[int] = None, timeout: float = 5.0) -> List[dict]:
        """Parsed access-log lines; with ``expect``, wait (nginx logs a request
        just after sending its response) until that many lines are there."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines()
            if expect is None or len(lines) >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        recs = []
        for ln in lines:
            request, status, rng, bytes_sent, body, content_range = ln.split("\t")
            recs.append(dict(request=request, path=request.split(" ")[1], status=int(status),
                             range=None if rng == "-" else rng, bytes_sent=int(bytes_sent),
                             body_bytes_sent=int(body),
                             content_range=None if content_range == "-" else content_range))
        return recs


@pytest.fixture(scope="session")
def nginx_server():
    binary = find_nginx()
    if binary is None:
        pytest.fail("nginx is required by the workflow tests and was not found (PATH, /usr/sbin/nginx, "
                    "$TACOZIP_NGINX): install it, e.g. apt-get install nginx (scripts/setup.sh does)",
                    pytrace=False)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="tacozip-nginx-"))
    server = NginxServer(binary, tmp)
    try:
        server.start()
    except NginxError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class HttpRemote:
    kind = "http"

    def __init__(self, server: NginxServer, prefix: str):
        self.requests = require("requests")
        self.server = server
        self.prefix = prefix
        self.session = self.requests.Session()
        self.client_count = 0

    def url(self, key: str) -> str:
        return f"{self.server.base}/{self.prefix}/{key}"

    def publish(self, path, key: str) -> None:
        dest = self.server.root / self.prefix / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        rng = _range_header(offset, length)
        self.client_count += 1
        r = self.session.get(self.url(key), headers={"Range": rng}, timeout=30)
        assert r.status_code == 206, f"{rng} on {key}: HTTP {r.status_code}"
        cr = r.headers["Content-Range"]
        assert cr.startswith(f"bytes {offset}-{offset + length - 1}/"), cr
        assert len(r.content) == length, (rng, len(r.content))
        return r.content

    def get(self, key: str) -> bytes:
        self.client_count += 1
        r = self.session.get(self.url(key), timeout=30)
        assert r.status_code == 200, f"GET {key}: HTTP {r.status_code}"
        return r.content

    def reset(self) -> None:
        self.server.read_log(expect=self.client_count, timeout=2)  # let earlier lines land first
        self.server.reset_log()
        self.client_count = 0

    def log(self) -> List[dict]:
        recs = self.server.read_log(expect=self.client_count)
        assert len(recs) == self.client_count, (recs, self.client_count)
        return recs

    def transfers(self) -> List[Transfer]:
        head = f"/{self.prefix}/"
        out = []
        for r in self.log():
            assert r["path"].startswith(head), r
            out.append(Transfer(r["path"][len(head):], r["range"], r["status"], r["body_bytes_sent"]))
        return out


# --------------------------------------------------------------------------- S3 (moto)

class MotoS3:
    def __init__(self):
        moto_server = require("moto.server", "moto[server]")
        self.boto3 = require("boto3")
        self.botocore_config = require("botocore.config", "boto3")
        require("flask", "moto[server]")  # the server extra
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.bucket = "tacozip-workflows"
        self.ops: List[str] = []
        self.gets: List[dict] = []

    def start(self) -> None:
        self.server.start()
        cfg = self.botocore_config.Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 1, "mode": "standard"},  # a retry would be a second GET: no hiding it
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = self.boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", config=cfg)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client.list_buckets()
                break
            except Exception as e:  # noqa: BLE001 - server not up yet
                if time.monotonic() > deadline:
                    pytest.fail(f"moto S3 server did not come up on {self.endpoint}: {e!r}", pytrace=False)
                time.sleep(0.05)
        self.client.create_bucket(Bucket=self.bucket)
        ev = self.client.meta.events
        ev.register("before-call.s3", self._before_any)
        ev.register("before-call.s3.GetObject", self._before_get)
        ev.register("after-call.s3.GetObject", self._after_get)

    # every S3 operation the client makes, by name
    def _before_any(self, model=None, **kwargs):
        self.ops.append(model.name)

    def _before_get(self, params=None, **kwargs):
        self.gets.append(dict(url=params["url"], range=params["headers"].get("Range"), status=None, length=None))

    def _after_get(self, http_response=None, parsed=None, **kwargs):
        rec = self.gets[-1]
        rec["status"] = http_response.status_code
        rec["length"] = parsed.get("ContentLength")
        rec["key"] = None

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def moto_s3():
    s3 = MotoS3()
    s3.start()
    try:
        yield s3
    finally:
        s3.stop()


class S3Remote:
    kind = "s3"

    def __init__(self, s3: MotoS3, prefix: str):
        self.s3 = s3
        self.client = s3.client
        self.bucket = s3.bucket
        self.prefix = prefix
        self._keys: List[str] = []

    def publish(self, path, key: str) -> None:
        with open(path, "rb") as f:
            self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=f.read())

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        rng = _range_header(offset, length)
        self._keys.append(key)
        r = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Range=rng)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, (rng, r["ResponseMetadata"])
        assert r["ContentRange"].startswith(f"bytes {offset}-{offset + length - 1}/"), r["ContentRange"]
        body = r["Body"].read()
        assert len(body) == length == r["ContentLength"], (rng, len(body), r["ContentLength"])
        return body

    def get(self, key: str) -> bytes:
        self._keys.append(key)
        r = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        body = r["Body"].read()
        assert len(body) == r["ContentLength"]
        return body

    def reset(self) -> None:
        self.s3.ops.clear()
        self.s3.gets.clear()
        self._keys.clear()

    def transfers(self) -> List[Transfer]:
        # only GetObject calls, nothing else (no HeadObject, no listing)
        assert all(op == "GetObject" for op in self.s3.ops), self.s3.ops
        assert len(self.s3.ops) == len(self.s3.gets) == len(self._keys)
        out = []
        for key, g in zip(self._keys, self.s3.gets):
            assert g["url"].endswith(f"/{self.s3.bucket}/{self.prefix}/{key}"), (g["url"], key)  # path style
            out.append(Transfer(key, g["range"], g["status"], g["length"]))
        return out


@pytest.fixture(params=["http", "s3"])
def remote(request):
    """One remote backend per test run (the test runs once per backend)."""
    prefix = "".join(c if c.isalnum() else "_" for c in request.node.name)
    if request.param == "http":
        r = HttpRemote(request.getfixturevalue("nginx_server"), prefix)
    else:
        r = S3Remote(request.getfixturevalue("moto_s3"), prefix)
    r.reset()
    return r


def make_archive(path, files, **create_options):
    """Write ``files`` ({member name: bytes}) as the archive ``path``, from
    source files in a directory beside it; returns ``path``."""
    import tacozip

    path = pathlib.Path(path)
    src = path.parent / (path.name + ".src")
    paths, names = [], []
    for name, data in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
        names.append(name)
    tacozip.create(path, paths, names, **create_options)
    return path
