"""A small fault-injecting HTTP/1.1 file server for the remote-reading tests.

By default it serves the files of one directory with the semantics a client
relies on: single ``Range: bytes=a-b`` / ``a-`` / ``-n`` requests answered
206 with an exact ``Content-Range``, 416 ``bytes */SIZE`` past the end, a
strong ``ETag`` derived from the content, ``If-Match`` evaluated before the
range (412 when it fails; strong comparison, so a weak tag never matches),
keep-alive connections.

Faults are set per file (``server.fault(name, kind, times=..., **params)``;
``times=None`` = every request, ``times=k`` = the first k requests, then
normal behaviour):

=================  ===============================================================
``ignore_range``   200 with the whole body, Range ignored
``always_416``     416 ``Content-Range: bytes */SIZE`` for every ranged request
``short_body``     honest ``Content-Length``, half the body, then the connection
                   is closed
``stall``          the response headers, then the connection stays open and
                   silent for ``seconds`` (default 5)
``reset``          the connection is reset (RST) right after the request is read
``status``         ``status=503`` (or 429, 500...), optional ``retry_after``
``bad_range``      206 whose ``Content-Range`` is ``shift`` bytes off (correct
                   length)
``replace``        after ``after`` requests the file is replaced by ``content``
                   (new ETag); ``honor_if_match=False`` ignores If-Match,
                   ``etag=False`` sends no ETag at all
``weak_etag``      ``ETag: W/"..."`` (If-Match then never matches, RFC 9110)
``trickle``        the body at ``rate`` bytes per second (default 2)
``etag``           ``ETag: <value>`` as given (``value=...``, raw: may hold a
                   bare CR); If-Match is not checked
=================  ===============================================================

``pace=SECONDS`` (any kind) sleeps after each 16 KiB written, so that the
client never has much buffered and "bytes written" is "bytes it took".

Any path under ``/r/`` answers ``302 Location: /<rest>`` (redirect to the real
file).

Every request is logged (``server.log``: method, path, Range, If-Match,
status, body bytes actually written to the socket before the client went
away, whether the client cut the transfer).  Sockets get a small send
buffer so that "bytes written" is close to "bytes the client could have
received".
"""

import hashlib
import http.server
import os
import pathlib
import socket
import struct
import threading
import time
from typing import Dict, List, Optional

CHUNK = 16 * 1024
SNDBUF = 32 * 1024


class Record:
    __slots__ = ("method", "path", "range", "if_match", "status", "body_sent", "cut", "headers", "t", "done")

    def __init__(self, method, path, headers):
        self.method = method
        self.path = path
        self.range = headers.get("Range")
        self.if_match = headers.get("If-Match")
        self.headers = dict(headers.items())
        self.status = None
        self.body_sent = 0
        self.cut = False
        self.done = False
        self.t = time.monotonic()

    def __repr__(self):
        return (f"<{self.method} {self.path} range={self.range} if-match={self.if_match} -> {self.status} "
                f"{self.body_sent}B{' cut' if self.cut else ''}>")


class Fault:
    def __init__(self, kind: str, times: Optional[int], params: dict):
        self.kind = kind
        self.times = times
        self.params = params
        self.seen = 0  # requests of this file so far


def etag_of(data: bytes, weak: bool = False) -> str:
    tag = '"' + hashlib.sha1(data).hexdigest()[:20] + '"'
    return "W/" + tag if weak else tag


def parse_range(value: str, size: int):
    """(first, last) inclusive, 'unsatisfiable', or None (not a single
    byte range we understand: serve the whole body)."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    spec = value[6:].strip()
    a, sep, b = spec.partition("-")
    if not sep:
        return None
    try:
        if a == "":
            n = int(b)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1)
        first = int(a)
        last = int(b) if b else size - 1
    except ValueError:
        return None
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return (first, min(last, size - 1))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultserver/1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls

    def log_message(self, *args):  # quiet
        pass

    # -- helpers -------------------------------------------------------------
    def _send_body(self, rec: Record, data: bytes, limit: Optional[int] = None, pace: float = 0,
                   chunk: int = CHUNK) -> None:
        n = len(data) if limit is None else min(limit, len(data))
        pos = 0
        try:
            while pos < n:
                k = self.connection.send(memoryview(data)[pos:min(n, pos + chunk)])
                pos += k
                rec.body_sent = pos
                if pace:
                    time.sleep(pace)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            rec.cut = True
            self.close_connection = True

    def _simple(self, rec: Record, status: int, body: bytes = b"", headers: Optional[dict] = None) -> None:
        rec.status = status
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._send_body(rec, body)

    def _reset(self, rec: Record) -> None:
        rec.status = "reset"
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # -- the request -------------------------------------------------------------
    def do_GET(self):  # noqa: C901 - one switch over the fault kinds
        srv: "FaultServer" = self.server.owner
        path = self.path.split("?", 1)[0]
        rec = Record("GET", self.path, self.headers)
        with srv.lock:
            srv.log.append(rec)
        try:
            self._handle(srv, path, rec)
        finally:
            with srv.lock:
                srv.bytes_sent += rec.body_sent
                rec.done = True

    def _handle(self, srv: "FaultServer", path: str, rec: Record) -> None:
        if path.startswith("/r/"):
            self._simple(rec, 302, b"moved\n", {"Location": path[2:]})
            return
        name = path.lstrip("/")
        file = srv.root / name
        fault = srv.faults.get(name)
        active = None
        if fault is not None:
            with srv.lock:
                fault.seen += 1
                seen = fault.seen
                if fault.kind == "replace":
                    if seen == fault.params.get("after", 1) + 1:
                        file.write_bytes(fault.params["content"])
                    active = fault
                elif fault.times is None or seen <= fault.times:
                    active = fault
        if not file.is_file():
            self._simple(rec, 404, b"not found\n")
            return
        data = file.read_bytes()
        size = len(data)
        kind = active.kind if active else None
        p = active.params if active else {}

        if kind == "reset":
            self._reset(rec)
            return
        if kind == "status":
            hdrs = {}
            if p.get("retry_after") is not None:
                hdrs["Retry-After"] = str(p["retry_after"])
            self._simple(rec, p.get("status", 503), b"try again later\n", hdrs)
            return

        send_etag = not (kind == "replace" and p.get("etag") is False)
        weak = kind == "weak_etag"
        etag = p["value"] if kind == "etag" else etag_of(data, weak)
        im = self.headers.get("If-Match")
        honor = not (kind == "replace" and p.get("honor_if_match") is False) and kind != "etag"
        if im is not None and honor and im.strip() != "*":
            tags = [t.strip() for t in im.split(",")]
            # strong comparison: weak tags never match
            if weak or etag not in tags:
                self._simple(rec, 412, b"precondition failed\n", {"ETag": etag} if send_etag else {})
                return

        common = {"Accept-Ranges": "bytes"}
        if send_etag:
            common["ETag"] = etag
        rng = None if kind == "ignore_range" else parse_range(self.headers.get("Range"), size)
        if kind == "always_416" and self.headers.get("Range"):
            rng = "unsatisfiable"
        if rng == "unsatisfiable":
            self._simple(rec, 416, b"", dict(common, **{"Content-Range": f"bytes */{size}"}))
            return
        if rng is None:
            status, first, last = 200, 0, size - 1
        else:
            status, (first, last) = 206, rng
        body = data[first:last + 1]
        rec.status = status
        self.send_response(status)
        for k, v in common.items():
            self.send_header(k, v)
        if status == 206:
            shift = p.get("shift", 0) if kind == "bad_range" else 0
            self.send_header("Content-Range", f"bytes {first + shift}-{last + shift}/{size}")
        self.send_header("Content-Length", str(len(body)))
        if kind in ("short_body", "stall"):
            self.send_header("Connection", "close")
        self.end_headers()
        if kind in ("short_body", "stall"):
            self._send_body(rec, body, limit=0 if kind == "stall" else len(body) // 2)
            if kind == "stall":  # then nothing at all for a while
                time.sleep(p.get("seconds", 5))
            self.close_connection = True
            return
        if kind == "trickle":  # `rate` bytes a second, in tenths of a second
            step = max(1, p.get("rate", 2) // 10)
            self._send_body(rec, body, pace=step / p.get("rate", 2), chunk=step)
            return
        self._send_body(rec, body, pace=p.get("pace", 0))


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class FaultServer:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.log: List[Record] = []
        self.bytes_sent = 0
        self.faults: Dict[str, Fault] = {}
        self.httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def start(self) -> "FaultServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, name: str, data: bytes) -> str:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return self.url(name)

    def fault(self, name: str, kind: str, times: Optional[int] = None, **params) -> None:
        self.faults[name] = Fault(kind, times, params)

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.log.clear()
            self.bytes_sent = 0

    def requests(self, wait: float = 0.0) -> List[Record]:
        """The log, after letting handlers that are still writing finish."""
        deadline = time.monotonic() + wait
        while True:
            with self.lock:
                pending = [r for r in self.log if not r.done]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        with self.lock:
            return list(self.log)


if __name__ == "__main__":  # manual use: python faultserver.py DIR
    import sys

    s = FaultServer(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()).start()
    print(s.base, flush=True)
    try:
        s.thread.join()
    except KeyboardInterrupt:
        s.stop()
