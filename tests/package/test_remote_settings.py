"""Remote settings per archive (keyword arguments, fsspec/s3fs-style
storage_options, the environment read by the package at open time), no
network I/O with the GIL held, and no credentials in names or messages.

Servers, all real: moto's S3 server (conftest_servers.moto_s3) with IAM
authentication switched on for the credential tests, so each request's
SigV4 signature is checked against the IAM user's secret; nginx
(conftest_servers.nginx_server); and a small HTTP server run in a separate
process (so that it keeps answering whatever this process's GIL does) that
can delay answers, fail with 503, ignore Range, and logs every request with
its headers.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

import tacozip
from tacozip._remote import remote_options

# --------------------------------------------------------------------------- the slow server

SERVER = r'''
import http.server, json, os, re, sys, threading, time
root, log_path, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
lock = threading.Lock()
counts = {}

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        path = self.path.split("?")[0]
        rng = self.headers.get("Range")
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
            with open(log_path, "a") as f:
                f.write(json.dumps({"path": path, "query": self.path.partition("?")[2], "range": rng,
                                    "headers": dict(self.headers.items())}) + "\n")
        parts = path.strip("/").split("/")
        mode, name = parts[0], parts[-1]
        if mode == "slow" and rng and rng.startswith("bytes=0-"):
            time.sleep(delay)
        if mode == "slowall":
            time.sleep(delay)
        m = re.fullmatch(r"fail(\d+)", mode)
        if m and n <= int(m.group(1)):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            data = open(os.path.join(root, name), "rb").read()
        except OSError:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = len(data)
        if rng and mode != "norange":
            a, b = rng[6:].split("-")
            if a == "":
                first, last = max(size - int(b), 0), size - 1
            else:
                first, last = int(a), min(int(b) if b else size - 1, size - 1)
            body = data[first:last + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(body)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
'''

DELAY = 1.5


class SlowServer:
    def __init__(self, tmp: pathlib.Path):
        self.root = tmp / "www"
        self.root.mkdir()
        self.log_path = tmp / "requests.jsonl"
        script = tmp / "server.py"
        script.write_text(SERVER)
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.root), str(self.log_path), str(DELAY)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"slow server did not start: {line!r}"
        self.base = f"http://127.0.0.1:{int(line)}"

    def url(self, mode: str, name: str) -> str:
        return f"{self.base}/{mode}/{name}"

    def requests(self):
        if not self.log_path.exists():
            return []
        return [json.loads(ln) for ln in self.log_path.read_text().splitlines() if ln.strip()]

    def reset(self):
        if self.log_path.exists():
            self.log_path.unlink()

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    s = SlowServer(tmp_path_factory.mktemp("slow"))
    try:
        yield s
    finally:
        s.stop()


ENTRIES = [(5, 6), (7, 8)]


@pytest.fixture(scope="module")
def big(tmp_path_factory, slow):
    """An archive larger than the 65 KiB tail read at open, so that its
    header is read by the first .header (one more request); b.txt first,
    beyond that tail (which is kept: a member inside it costs no request)."""
    d = tmp_path_factory.mktemp("big")
    files = {"b.txt": b"hello " * 1000, "a.bin": os.urandom(200_000)}
    for n, b in files.items():
        (d / n).write_bytes(b)
    path = d / "big.taco"
    tacozip.create(path, [d / n for n in files], list(files), entries=ENTRIES)
    shutil.copyfile(path, slow.root / "big.taco")
    return path, files


@pytest.fixture(autouse=True)
def _no_ambient_remote_env(monkeypatch):
    """Each test sets the environment it means (none of the runner's)."""
    for k in list(os.environ):
        if k.startswith(("AWS_", "TACOZIP_HTTP_")) or k in ("TACOZIP_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(k)


# --------------------------------------------------------------------------- GIL

def run_while_counting(fn):
    """Run fn() in a thread while this thread keeps running Python code;
    returns (result, seconds the call took, longest pause of this thread)."""
    out = {}

    def worker():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=worker)
    stamps = []
    t0 = time.monotonic()
    t.start()
    x = 0
    while t.is_alive():
        for i in range(200):
            x += i * i
        stamps.append(time.monotonic())
    t.join()
    took = stamps[-1] - t0 if stamps else 0.0
    gaps = [b - a for a, b in zip(stamps, stamps[1:])] + [stamps[0] - t0 if stamps else took]
    if "error" in out:
        raise out["error"]
    return out["value"], took, max(gaps), len(stamps)


def test_header_of_a_url_does_not_hold_the_gil(slow, big):
    _path, _files = big
    url = slow.url("slow", "big.taco")
    slow.reset()
    a = tacozip.open(url, retries=0)
    try:
        assert [r["range"] for r in slow.requests()] == ["bytes=-66560"]  # the tail only: header not read yet
        value, took, pause, loops = run_while_counting(lambda: a.header)
        assert value == ENTRIES
        assert [r["range"] for r in slow.requests()][1:] == ["bytes=0-156"]
        assert took >= DELAY * 0.9, took  # the request really waited on the server
        assert pause < DELAY / 2, f"main thread stalled {pause:.2f}s while .header waited on the network"
        assert loops > 100
    finally:
        a.close()


@pytest.mark.parametrize("call", ["open", "read_header", "validate", "read", "extract"])
def test_url_calls_do_not_hold_the_gil(slow, big, tmp_path, call):
    _path, files = big
    url = slow.url("slowall", "big.taco")
    if call in ("read", "extract"):
        a = tacozip.open(url, retries=0)  # slow too, but before the counting starts
        fn = {"read": lambda: a.read("b.txt"),
              "extract": lambda: a.extract(tmp_path / "out", ["b.txt"]) or (tmp_path / "out" / "b.txt").read_bytes()}[call]
        want = files["b.txt"]
    else:
        fn = {"open": lambda: len(tacozip.open(url, retries=0)),
              "read_header": lambda: tacozip.read_header(url, retries=0),
              "validate": lambda: tacozip.validate(url, retries=0)}[call]
        want = {"open": 3, "read_header": ENTRIES, "validate": tacozip.TACOZ_VALID}[call]
    value, took, pause, _loops = run_while_counting(fn)
    assert value == want
    assert took >= DELAY * 0.9, took
    assert pause < DELAY / 2, f"main thread stalled {pause:.2f}s during {call}"


# --------------------------------------------------------------------------- settings reach the library

def test_retries_headers_and_range_ignored(slow, big):
    _path, _files = big
    # 2 failures then success: retries=2 succeeds after 3 requests, retries=0 fails after 1
    slow.reset()
    assert tacozip.read_header(slow.url("fail2", "big.taco"), retries=2, backoff=0.001) == ENTRIES
    assert len(slow.requests()) == 3
    slow.reset()
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.read_header(slow.url("fail5", "big.taco"), retries=0)
    assert e.value.code == tacozip.TACOZ_ERR_NETWORK and "503" in e.value.detail
    assert len(slow.requests()) == 1
    # the same through the environment, read at the call
    os.environ["TACOZIP_HTTP_RETRIES"] = "0"
    try:
        slow.reset()
        with pytest.raises(tacozip.TacozipError) as e:
            tacozip.read_header(slow.url("fail9", "big.taco"))
        assert e.value.code == tacozip.TACOZ_ERR_NETWORK and len(slow.requests()) == 1
    finally:
        del os.environ["TACOZIP_HTTP_RETRIES"]
    # extra headers, flat and in storage_options
    slow.reset()
    assert tacozip.read_header(slow.url("plain", "big.taco"), headers={"X-Tacozip-Test": "one"}) == ENTRIES
    with tacozip.open(slow.url("plain", "big.taco"), storage_options={"headers": ["X-Tacozip-Test: two"]}) as a:
        assert a.header == ENTRIES
        assert a.identity == '"v1"'
    sent = [r["headers"].get("X-Tacozip-Test") for r in slow.requests()]
    assert sent[0] == "one" and set(sent[1:]) == {"two"}
    # a server that ignores Range: the tail is far beyond max_skip
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(slow.url("norange", "big.taco"), max_skip=1000)
    assert e.value.code == tacozip.TACOZ_ERR_RANGE_IGNORED


def test_bad_settings_are_refused():
    url = "http://127.0.0.1:1/x.taco"
    with pytest.raises(TypeError, match="unknown remote option 'retrys'"):
        tacozip.open(url, retrys=1)
    with pytest.raises(TypeError, match=r"unknown remote option client_kwargs\['foo'\]"):
        tacozip.open(url, client_kwargs={"foo": 1})
    with pytest.raises(ValueError, match="s3_addressing"):
        tacozip.open(url, s3_addressing="sideways")
    with pytest.raises(ValueError, match="verification cannot be turned off"):
        tacozip.open(url, client_kwargs={"verify": False})
    with pytest.raises(ValueError, match="key and secret go together"):
        tacozip.open(url, key="a")
    with pytest.raises(TypeError, match="anon must be True or False"):
        tacozip.open(url, anon="false")
    with pytest.raises(TypeError, match="given twice"):
        tacozip.open(url, key="a", storage_options={"key": "b"})
    # ranges the library checks: its code and message
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(url, parallel=65)
    assert e.value.code == tacozip.TACOZ_ERR_PARAM and "parallel = 65" in e.value.detail


def test_env_mapping():
    env = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK",
           "AWS_DEFAULT_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://e:1", "AWS_ENDPOINT_URL_S3": "http://s3:2",
           "TACOZIP_HTTP_RETRIES": "0", "TACOZIP_HTTP_BACKOFF_MS": "7", "TACOZIP_HTTP_MAX_BACKOFF_MS": "70",
           "TACOZIP_HTTP_CONNECT_TIMEOUT_MS": "1500", "TACOZIP_HTTP_STALL_TIMEOUT_S": "9",
           "TACOZIP_HTTP_PARALLEL": "3", "TACOZIP_HTTP_MAX_SKIP": "4096", "CURL_CA_BUNDLE": "/c.pem",
           "AWS_CA_BUNDLE": "/a.pem"}
    assert remote_options(environ=env) == {
        "access_key_id": "AK", "secret_access_key": "SK", "session_token": "TOK", "region": "eu-west-3",
        "endpoint_url": "http://s3:2", "retries": tacozip._tacozip.TACOZIP_NO_RETRIES, "backoff_ms": 7,
        "max_backoff_ms": 70, "connect_timeout_ms": 1500, "stall_timeout_s": 9, "parallel": 3, "max_skip": 4096,
        "ca_bundle": "/c.pem"}
    # AWS_REGION wins over AWS_DEFAULT_REGION; malformed numbers are ignored as the library did
    assert remote_options(environ={"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r2", "TACOZIP_HTTP_PARALLEL": "x",
                                   "TACOZIP_HTTP_RETRIES": "101", "AWS_NO_SIGN_REQUEST": "TRUE"}) == {
        "region": "r1", "unsigned_requests": True}
    # the caller's credentials replace the environment's, all three together
    o = remote_options(environ=env, key="K2", secret="S2")
    assert (o["access_key_id"], o["secret_access_key"], "session_token" in o) == ("K2", "S2", False)
    o = remote_options(environ=env, anon=True)
    assert o["unsigned_requests"] is True and "access_key_id" not in o
    # other settings one by one; s3fs-style forms
    o = remote_options(environ=env, retries=3, connect_timeout=0.25, stall_timeout=2.5, backoff=0.05,
                       max_backoff=1, parallel=16, max_gap=4096, max_skip=0,
                       storage_options={"client_kwargs": {"endpoint_url": "http://mine:9", "region_name": "r9"},
                                        "config_kwargs": {"s3": {"addressing_style": "virtual"}}})
    assert {k: o[k] for k in ("retries", "connect_timeout_ms", "stall_timeout_s", "backoff_ms", "max_backoff_ms",
                              "parallel", "coalesce_gap", "max_skip", "endpoint_url", "region", "s3_addressing")} == {
        "retries": 3, "connect_timeout_ms": 250, "stall_timeout_s": 3, "backoff_ms": 50, "max_backoff_ms": 1000,
        "parallel": 16, "coalesce_gap": 4096, "max_skip": 2**64 - 1, "endpoint_url": "http://mine:9", "region": "r9",
        "s3_addressing": tacozip._tacozip.TACOZIP_S3_VIRTUAL}
    o = remote_options(environ={}, config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2})
    assert o == {"retries": tacozip._tacozip.TACOZIP_NO_RETRIES, "connect_timeout_ms": 2000}
    assert remote_options(environ={}) == {}
    # 0 is "none" (TACOZIP_NO_GAP / TACOZIP_NO_SKIP), not the library's default
    assert remote_options(environ={}, max_gap=0)["coalesce_gap"] == 2**64 - 1
    assert remote_options(environ={"TACOZIP_HTTP_MAX_SKIP": "0"})["max_skip"] == 2**64 - 1


# --------------------------------------------------------------------------- credentials per archive (moto, IAM on)

@pytest.fixture
def iam_s3(moto_s3, tmp_path):
    """Two IAM users, each allowed to read only its own bucket; then moto's
    IAM authentication on (signatures checked) for the test."""
    from moto.core.authorization import enable_iam_authentication

    iam = moto_s3.boto3.client("iam", endpoint_url=moto_s3.endpoint, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
    tag = uuid.uuid4().hex[:8]
    users = {}
    for who in ("alice", "bob"):
        bucket = f"tz-{who}-{tag}"
        moto_s3.client.create_bucket(Bucket=bucket)
        d = tmp_path / who
        d.mkdir()
        (d / "owner.txt").write_text(f"this is {who}'s")
        tacozip.create(d / "x.taco", [d / "owner.txt"], entries=[(len(who), 1)])
        moto_s3.client.put_object(Bucket=bucket, Key="dir/x.taco", Body=(d / "x.taco").read_bytes())
        user = f"{who}-{tag}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="read-own", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
        k = iam.create_access_key(UserName=user)["AccessKey"]
        users[who] = dict(url=f"s3://{bucket}/dir/x.taco", key=k["AccessKeyId"], secret=k["SecretAccessKey"])
    with enable_iam_authentication():
        yield moto_s3, users


def creds(u):
    return dict(key=u["key"], secret=u["secret"])


def test_two_archives_two_credentials(iam_s3):
    s3, users = iam_s3
    alice, bob = users["alice"], users["bob"]
    ep = dict(endpoint_url=s3.endpoint, region="us-east-1")
    a = tacozip.open(alice["url"], **creds(alice), **ep)
    b = tacozip.open(bob["url"], storage_options={"key": bob["key"], "secret": bob["secret"],
                                                  "client_kwargs": {"endpoint_url": s3.endpoint,
                                                                    "region_name": "us-east-1"}})
    with a, b:
        # open at the same time, each reads with its own key
        assert a.read("owner.txt") == b"this is alice's" and a.header == [(5, 1)]
        assert b.read("owner.txt") == b"this is bob's" and b.header == [(3, 1)]
        assert a.read("owner.txt") == b"this is alice's"
        assert a.path == alice["url"] and b.path == bob["url"]
    # alice's key on bob's bucket: signed, valid, not allowed
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(bob["url"], **creds(alice), **ep, retries=0)
    assert e.value.code == tacozip.TACOZ_ERR_IO
    assert e.value.detail == f"{bob['url']}: HTTP 403 (access denied: check credentials)"
    # a wrong secret: the signature does not verify
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.read_header(alice["url"], key=alice["key"], secret=alice["secret"][:-1] + "x", **ep, retries=0)
    assert e.value.code == tacozip.TACOZ_ERR_IO and "HTTP 403" in e.value.detail
    assert alice["secret"][:-1] not in e.value.detail and alice["key"] not in e.value.detail
    # unsigned requests are refused too
    assert tacozip.validate(alice["url"], anon=True, **ep) == tacozip.TACOZ_ERR_IO
    assert tacozip.validate(alice["url"], **creds(alice), **ep) == tacozip.TACOZ_VALID


def test_credentials_from_the_environment_at_open_time(iam_s3, monkeypatch):
    s3, users = iam_s3
    alice, bob = users["alice"], users["bob"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", alice["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", alice["secret"])
    monkeypatch.setenv("TACOZIP_HTTP_RETRIES", "0")
    a = tacozip.open(alice["url"])  # no settings: the environment's
    assert tacozip.read_header(alice["url"]) == [(5, 1)]
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.open(bob["url"])
    assert e.value.code == tacozip.TACOZ_ERR_IO
    # the caller's key beats the environment's
    with tacozip.open(bob["url"], **creds(bob)) as b:
        assert b.read("owner.txt") == b"this is bob's"
    # the environment changes: an archive keeps the settings it was opened with
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bob["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bob["secret"])
    with a:
        assert a.read("owner.txt") == b"this is alice's"
    with tacozip.open(bob["url"]) as b:  # read now: bob's
        assert b.read("owner.txt") == b"this is bob's"


# --------------------------------------------------------------------------- credentials never shown

SECRET_URL_PARTS = ("alice", "s3cr3t", "p@ssw0rd", "p%40ssw0rd", "X-Amz-Signature", "deadbeef")


def test_names_without_credentials(nginx_server, tmp_path, big):
    path, files = big
    d = nginx_server.root / "secret"
    d.mkdir(exist_ok=True)
    shutil.copyfile(path, d / "x.taco")
    hostport = nginx_server.base.split("://", 1)[1]
    for userinfo in ("alice:s3cr3t", "alice:p%40ssw0rd"):
        url = f"http://{userinfo}@{hostport}/secret/x.taco?X-Amz-Signature=deadbeef&X-Amz-Credential=alice"
        with tacozip.open(url) as a:
            assert a.read("b.txt") == files["b.txt"]
            shown = a.path + repr(a)
            assert a.path == f"{nginx_server.base}/secret/x.taco"
            assert repr(a) == f"<tacozip.TacoArchive '{nginx_server.base}/secret/x.taco' 3 members>"
            # a message from the open archive names it the same way
            with pytest.raises(tacozip.TacozipError) as e:
                a.read_ranges([(a.size - 1, 5)])
            assert e.value.code == tacozip.TACOZ_ERR_PARAM
            assert e.value.detail.startswith(f"{nginx_server.base}/secret/x.taco: ")
            shown += e.value.detail
        for part in SECRET_URL_PARTS:
            assert part not in shown
    # the library's own display name: last '@' before the host ends the credentials
    assert tacozip._tacozip.display_name("http://alice:p@ssw0rd@host/x?X-Amz-Signature=abc#frag") == "http://host/x"


@pytest.mark.parametrize("url", [
    "http://alice:p@ssw0rd@127.0.0.1:1/x.taco?X-Amz-Signature=deadbeef",
    "http://alice:p%40ssw0rd@127.0.0.1:1/x.taco?X-Amz-Signature=deadbeef",
    "https://alice:s3cr3t@127.0.0.1:1/x.taco?X-Amz-Signature=deadbeef",
])
def test_network_errors_show_no_secret(url):
    for call in (lambda: tacozip.open(url, retries=0), lambda: tacozip.read_header(url, retries=0)):
        with pytest.raises(tacozip.TacozipError) as e:
            call()
        assert e.value.code == tacozip.TACOZ_ERR_NETWORK
        assert e.value.detail.startswith(url.split("://")[0] + "://127.0.0.1:1/x.taco: ")
        text = f"{e.value} {e.value.detail} {e.value.__notes__}"
        for part in SECRET_URL_PARTS:
            assert part not in text, (part, text)
    code, msg = tacozip.validate_detail(url, retries=0)
    assert code == tacozip.TACOZ_ERR_NETWORK and not any(p in msg for p in SECRET_URL_PARTS)
