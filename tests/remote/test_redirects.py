"""Redirects and credentials: only http and https are followed, credentials
(S3 signatures, session tokens, user:password) never go to another host,
S3 keys are percent-encoded, URL schemes are matched without regard to
case, and no message shows a secret.

A small redirect server answers 302 with a Location chosen per path and
records the headers of each request; an "FTP trap" is a listening socket
that counts the connections it gets (a client that follows a redirect to
ftp:// would connect, read the banner and log in)."""

import http.server
import socket
import threading

import pytest

from conftest import BUCKET, entries_text


class Redirector:
    def __init__(self):
        self.routes = {}   # path -> Location
        self.seen = []     # (path, {header: value}) in order
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                loc = outer.routes.get(self.path.split("?")[0])
                self.send_response(302 if loc else 404)
                if loc:
                    self.send_header("Location", loc)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FtpTrap:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopping = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.stopping:
                c.close()
                return
            self.connections += 1
            try:
                c.sendall(b"220 trap ready\r\n")
                c.settimeout(1)
                c.recv(1024)
                c.sendall(b"331 password please\r\n")
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stopping = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def redirector():
    r = Redirector()
    yield r
    r.stop()


@pytest.fixture
def ftp_trap():
    t = FtpTrap()
    yield t
    t.stop()


@pytest.mark.parametrize("target", ["ftp://anonymous:x@127.0.0.1:{port}/a.taco", "FTP://127.0.0.1:{port}/a.taco",
                                    "file:///etc/passwd", "gopher://127.0.0.1:{port}/1", "dict://127.0.0.1:{port}/d"])
def test_redirect_to_another_scheme_is_refused(redirector, ftp_trap, cli, target):
    redirector.routes["/a.taco"] = target.format(port=ftp_trap.port)
    for cmd in ("ls", "header", "validate"):
        p = cli.run(cmd, f"{redirector.base}/a.taco", ok=False)
        scheme = target.split(":")[0].lower()  # the Location as libcurl gives it: scheme in lower case
        assert f"refusing a redirect to a {scheme}: URL" in p.stderr, p.stderr
        assert p.stderr.startswith(f"tacozip: {redirector.base}/a.taco: "), p.stderr
    assert ftp_trap.connections == 0


def test_redirect_loop_ends(redirector, cli):
    redirector.routes["/a.taco"] = f"{redirector.base}/b.taco"
    redirector.routes["/b.taco"] = f"{redirector.base}/a.taco"
    p = cli.run("header", f"{redirector.base}/a.taco", ok=False)
    assert "more than 5 redirects" in p.stderr
    assert len(redirector.seen) == 6


def test_s3_credentials_stay_on_their_host(redirector, fault, cli, archives):
    """A signed S3 request (with a session token) redirected to another host
    goes there without signature, token or payload hash; redirected on the
    same host it keeps them."""
    small = archives["small"]
    fault.put("a.zip", small.data)
    redirector.routes[f"/{BUCKET}/a.zip"] = f"{fault.base}/a.zip"
    env = dict(AWS_ENDPOINT_URL=redirector.base, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI",
               AWS_SESSION_TOKEN="TOKEN-SECRET", AWS_REGION="us-east-1", AWS_ENDPOINT_URL_S3=None,
               AWS_NO_SIGN_REQUEST=None, AWS_DEFAULT_REGION=None)
    out = cli.run("header", f"s3://{BUCKET}/a.zip", env=env, ok=True).stdout
    assert out == entries_text(small.entries)
    path, sent = redirector.seen[0]
    assert sent["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert sent["x-amz-security-token"] == "TOKEN-SECRET"
    log = fault.requests(1)
    assert [r.path for r in log] == ["/a.zip"]
    h = {k.lower(): v for k, v in log[0].headers.items()}
    assert "authorization" not in h and "x-amz-security-token" not in h and "x-amz-date" not in h, h
    assert "TOKEN-SECRET" not in repr(h) and "AKIDEXAMPLE" not in repr(h)

    # same host: the fault server's /r/<rest> redirects to /<rest>; bucket "r"
    fault.clear()
    env["AWS_ENDPOINT_URL"] = fault.base
    assert cli.run("header", "s3://r/a.zip", env=env, ok=True).stdout == entries_text(small.entries)
    log = fault.requests(1)
    assert [(r.path, r.status) for r in log] == [("/r/a.zip", 302), ("/a.zip", 206)]
    for r in log:
        h = {k.lower(): v for k, v in r.headers.items()}
        assert h["x-amz-security-token"] == "TOKEN-SECRET" and h["authorization"].startswith("AWS4-HMAC-SHA256")


def test_userinfo_stays_on_its_host(redirector, fault, cli, archives):
    small = archives["small"]
    fault.put("a.zip", small.data)
    redirector.routes["/a.zip"] = f"{fault.base}/a.zip"
    url = f"http://alice:p%40ss@{redirector.base[len('http://'):]}/a.zip"
    assert cli.run("header", url, ok=True).stdout == entries_text(small.entries)
    assert redirector.seen[0][1]["authorization"].startswith("Basic ")
    h = {k.lower(): v for k, v in fault.requests(1)[0].headers.items()}
    assert "authorization" not in h, h


def test_extra_headers_stay_on_their_host(redirector, fault, tz, archives):
    """Extra request headers (a bearer token, say) go to the URL's host, and
    not to the host a redirect leads to."""
    small = archives["small"]
    fault.put("a.zip", small.data)
    redirector.routes["/a.zip"] = f"{fault.base}/a.zip"
    hdr = tz.read_header(f"{redirector.base}/a.zip", headers={"Authorization": "Bearer SECRET-1",
                                                              "X-Api-Key": "SECRET-2"})
    assert hdr == [tuple(e) for e in small.entries]
    sent = redirector.seen[0][1]
    assert sent["authorization"] == "Bearer SECRET-1" and sent["x-api-key"] == "SECRET-2"
    h = {k.lower(): v for k, v in fault.requests(1)[0].headers.items()}
    assert "authorization" not in h and "x-api-key" not in h, h


def test_s3_keys_are_percent_encoded(s3, cli, archives):
    """Keys with spaces, '+', '%', '#', '?', '&' and non-ASCII characters
    reach moto (which checks each SigV4 signature) as the same key."""
    small = archives["small"]
    for key in ["with space/a+b.zip", "100%/x#y?z&w=1.zip", "caf\u00e9/\u6570\u636e.zip", "a//b/./c.zip"]:
        url = s3.publish(small, key)
        p = cli.run("header", url, env=s3.env(), ok=True)
        assert p.stdout == entries_text(small.entries), (key, p.stderr)


def test_schemes_in_any_case(fault, cli, archives):
    small = archives["small"]
    fault.put("a.zip", small.data)
    for base in (fault.base.replace("http://", "HTTP://"), fault.base.replace("http://", "Http://")):
        assert cli.run("header", f"{base}/a.zip", ok=True).stdout == entries_text(small.entries)


def test_no_secret_in_any_message(cli, tz):
    """A password holding '@', a presigned query: no command, no Python
    exception shows them (nothing listens on port 9)."""
    url = "http://alice:p@ssw0rd@127.0.0.1:9/x.taco?X-Amz-Signature=SIGSECRET"
    env = {"TACOZIP_HTTP_RETRIES": "0"}
    for args in (("header", url), ("ls", url), ("validate", url), ("validate", url, "--level", "deep"),
                 ("cat", url, "m"), ("span", url, "m"), ("extract", url, "-C", "/tmp/tz-never")):
        p = cli.run(*args, env=env, ok=False)
        for secret in ("alice", "ssw0rd", "SIGSECRET"):
            assert secret not in p.stderr, (args, p.stderr)
        assert "http://127.0.0.1:9/x.taco" in p.stderr, (args, p.stderr)
    for call in (lambda: tz.read_header(url), lambda: tz.open(url), lambda: tz.validate(url)):
        try:
            r = call()
        except Exception as e:  # noqa: BLE001 - any exception: its text is what is checked
            text = f"{e!s} {getattr(e, 'detail', '')} {e!r}"
        else:
            text = repr(r)
        for secret in ("alice", "ssw0rd", "SIGSECRET"):
            assert secret not in text, text
