"""The command maps the environment onto the library's remote options (the
library itself reads no environment variables): retries, the S3 endpoint,
region, credentials, unsigned requests and the Range-ignoring limit, seen
from a small local HTTP server that records every request."""
import http.server
import os
import threading

import pytest

from tzutil import write_file

# Every test here reads over HTTP: scripts/test.sh nocurl leaves them out
# (its tests/cli/test_urls.py checks that URLs are refused there instead).
pytestmark = pytest.mark.http


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data):
        super().__init__(("127.0.0.1", 0), Handler)
        self.data = data
        self.fail_first = 0       # answer 503 to this many requests
        self.ignore_range = False  # answer 200 with the whole body
        self.requests = []        # (path, headers dict)
        self.lock = threading.Lock()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            fail = srv.fail_first > 0
            if fail:
                srv.fail_first -= 1
        data = srv.data
        if fail:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            spec = rng.split("=", 1)[1]
            a, b = spec.split("-")
            if a == "":
                a, b = max(0, len(data) - int(b)), len(data) - 1
            else:
                a, b = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
            body = data[a:b + 1]
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def archive_bytes(tz, tmp_path):
    src = write_file(tmp_path / "big.bin", os.urandom(200000))
    small = write_file(tmp_path / "small.txt", b"small\n")
    out = tmp_path / "r.taco"
    tz.ok("create", out, src, small, "--no-fsync", "-e", "1:2")
    return out.read_bytes()


@pytest.fixture
def server(archive_bytes):
    srv = Recorder(archive_bytes)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def env(**kw):
    e = {k: v for k, v in os.environ.items()
         if not (k.startswith("TACOZIP_HTTP_") or k.startswith("AWS_") or k.endswith("_CA_BUNDLE"))}
    e.update(TACOZIP_HTTP_BACKOFF_MS="1", TACOZIP_HTTP_MAX_BACKOFF_MS="1")
    e.update(kw)
    return e


def test_header_over_http(tz, server):
    r = tz("header", server.base + "/a/r.taco", "--json", env=env())
    assert r.returncode == 0, r.stderr
    assert b'"entries": [[1, 2]]' in r.stdout
    assert len(server.requests) == 1 and server.requests[0][1]["range"] == "bytes=0-156"


@pytest.mark.parametrize("retries,expect", [(None, 5), ("0", 1), ("2", 3), ("7", 8)])
def test_retries_from_environment(tz, server, retries, expect):
    server.fail_first = 1000
    e = env() if retries is None else env(TACOZIP_HTTP_RETRIES=retries)
    r = tz("header", server.base + "/r.taco", env=e)
    assert r.returncode == 1, r.stderr
    assert b"127.0.0.1" in r.stderr
    assert len(server.requests) == expect


def test_retries_recover(tz, server):
    server.fail_first = 2
    r = tz("ls", server.base + "/r.taco", "--stats", env=env(TACOZIP_HTTP_RETRIES="2"))
    assert r.returncode == 0, r.stderr
    assert b"small.txt" in r.stdout


def test_max_skip_from_environment(tz, server):
    """A server ignoring Range: the tail of a 200 KB archive lies 130 KB in,
    beyond a 1 KB TACOZIP_HTTP_MAX_SKIP (refused), within the default 1 MiB."""
    server.ignore_range = True
    r = tz("ls", server.base + "/r.taco", env=env())
    assert r.returncode == 0, r.stderr
    r = tz("ls", server.base + "/r.taco", env=env(TACOZIP_HTTP_MAX_SKIP="1024"))
    assert r.returncode == 1 and b"Range" in r.stderr, r.stderr
    # 0: skip nothing (TACOZIP_NO_SKIP): the header (bytes 0-156) still
    # comes from the start of the 200 answer, the tail does not
    r = tz("header", server.base + "/r.taco", env=env(TACOZIP_HTTP_MAX_SKIP="0"))
    assert r.returncode == 0, r.stderr
    r = tz("ls", server.base + "/r.taco", env=env(TACOZIP_HTTP_MAX_SKIP="0"))
    assert r.returncode == 1 and b"Range" in r.stderr, r.stderr


def test_s3_endpoint_region_and_signature(tz, server):
    e = env(AWS_ENDPOINT_URL=server.base, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret",
            AWS_REGION="eu-west-3", AWS_SESSION_TOKEN="tok123")
    r = tz("header", "s3://bucket/dir/r.taco", env=e)
    assert r.returncode == 0, r.stderr
    path, headers = server.requests[-1]
    assert path == "/bucket/dir/r.taco"  # path style under the endpoint
    auth = headers.get("authorization", "")
    assert auth.startswith("AWS4-HMAC-SHA256") and "AKIDEXAMPLE/" in auth and "/eu-west-3/s3/" in auth, auth
    assert headers.get("x-amz-security-token") == "tok123"
    assert b"secret" not in r.stderr


def test_s3_endpoint_fallback_variable_and_default_region(tz, server):
    e = env(AWS_ENDPOINT_URL_S3=server.base, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="AK",
            AWS_SECRET_ACCESS_KEY="sk", AWS_DEFAULT_REGION="ap-south-2")
    r = tz("header", "s3://b/r.taco", env=e)
    assert r.returncode == 0, r.stderr  # AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL
    assert "/ap-south-2/s3/" in server.requests[-1][1].get("authorization", "")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_s3_unsigned(tz, server, value):
    e = env(AWS_ENDPOINT_URL=server.base, AWS_ACCESS_KEY_ID="AK", AWS_SECRET_ACCESS_KEY="sk",
            AWS_NO_SIGN_REQUEST=value)
    r = tz("header", "s3://b/r.taco", env=e)
    assert r.returncode == 0, r.stderr
    assert "authorization" not in server.requests[-1][1]


def test_s3_without_credentials_is_unsigned(tz, server):
    r = tz("header", "s3://b/r.taco", env=env(AWS_ENDPOINT_URL=server.base))
    assert r.returncode == 0, r.stderr
    assert "authorization" not in server.requests[-1][1]


def test_bad_value_makes_no_request(tz, server):
    r = tz("ls", server.base + "/r.taco", env=env(TACOZIP_HTTP_STALL_TIMEOUT_S="soon"))
    assert r.returncode == 2 and b"TACOZIP_HTTP_STALL_TIMEOUT_S='soon'" in r.stderr
    assert server.requests == []


def test_validate_unreadable_url_is_an_error_not_a_verdict(tz, server):
    """validate: a server failure is an error on stderr (exit 1, nothing on
    stdout); with --json it is a JSON result with the network code."""
    server.fail_first = 1000
    url = server.base + "/r.taco"
    for level in ("quick", "deep"):
        r = tz("validate", url, "--level", level, env=env(TACOZIP_HTTP_RETRIES="0"))
        assert r.returncode == 1 and r.stdout == b"", r.stdout
        assert r.stderr.startswith(b"tacozip: " + url.encode() + b": ") and b"network or server error" in r.stderr
    r = tz("validate", url, "--json", env=env(TACOZIP_HTTP_RETRIES="0"))
    assert r.returncode == 1
    v = __import__("json").loads(r.stdout)
    assert v["valid"] is False and v["code"] == -43


def test_validate_over_http(tz, server):
    r = tz("validate", server.base + "/r.taco", "--level", "deep", env=env())
    assert r.returncode == 0 and r.stdout.endswith(b": valid (deep)\n"), (r.stdout, r.stderr)
