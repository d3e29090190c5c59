"""A fault-injecting HTTP/1.1 proxy in front of an S3 server (moto), for
the upload tests (tests/remote/test_upload.py).

The client talks to the proxy as if it were the S3 endpoint (path style);
each request is forwarded unchanged (same method, path, query, headers,
Host included, so that SigV4 signatures still verify) unless a rule
matches it.  Requests are classified by their S3 operation:

=============  ==================================================
``create``     POST /bucket/key?uploads=   (CreateMultipartUpload)
``part``       PUT  ...?partNumber=N&uploadId=ID   (UploadPart; ``part=N``)
``complete``   POST ...?uploadId=ID   (CompleteMultipartUpload)
``abort``      DELETE ...?uploadId=ID   (AbortMultipartUpload)
``put``        PUT  /bucket/key   (PutObject)
``other``      anything else
=============  ==================================================

Rules (``proxy.rule(op, action, part=None, times=None, **params)``;
``times=None``: every matching request, ``times=k``: the first k):

=============  ==================================================================
``status``     answer ``status`` (default 500) with an S3 error body
               (``code``, default InternalError) without forwarding
``error200``   answer 200 with an ``<Error>`` body (InternalError), not
               forwarded: what S3 may do for CompleteMultipartUpload, which
               then did not complete (``forward=True``: forwarded first, S3's
               answer replaced)
``lose``       forward, then reset the connection instead of answering (the
               request was done; its answer is lost)
``delay``      wait ``seconds`` (default 0.3) once the body is read, then
               forward
``cut``        read ``after`` bytes of the body (default half), then reset the
               connection (RST), nothing forwarded
=============  ==================================================================

``proxy.ops()`` lists (op, part, what happened) for every request, in the
order they arrived; ``proxy.requests()`` the same as dicts with the
query and the request headers too; ``proxy.max_active[op]`` the most
requests of an operation that were being handled at once;
``proxy.events`` ("start" | "end", op) in the order they happened.
"""

import http.client
import http.server
import socket
import struct
import threading
import time
import urllib.parse
from typing import List, Optional, Tuple

ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
             '<Message>{message}</Message><RequestId>fault</RequestId></Error>')


class Rule:
    def __init__(self, op: str, action: str, part: Optional[int], times: Optional[int], params: dict):
        self.op, self.action, self.part, self.times, self.params = op, action, part, times, params
        self.hits = 0

    def matches(self, op: str, part: Optional[int]) -> bool:
        return self.op == op and (self.part is None or self.part == part) and \
            (self.times is None or self.hits < self.times)


def classify(method: str, query: str) -> Tuple[str, Optional[int]]:
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    if method == "POST" and "uploads" in q:
        return "create", None
    if method == "PUT" and "partNumber" in q:
        return "part", int(q["partNumber"][0])
    if method == "POST" and "uploadId" in q:
        return "complete", None
    if method == "DELETE" and "uploadId" in q:
        return "abort", None
    if method == "PUT" and not query:
        return "put", None
    return "other", None


class S3FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.rules: List[Rule] = []
        self.log: List[dict] = []
        self.lock = threading.Lock()
        self.active: dict = {}
        self.max_active: dict = {}
        self.events: List[Tuple[str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_PUT(self):
                proxy._handle(self)

            do_POST = do_GET = do_DELETE = do_HEAD = do_PUT

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "S3FaultProxy":
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def rule(self, op: str, action: str, part: Optional[int] = None, times: Optional[int] = None, **params):
        with self.lock:
            self.rules.append(Rule(op, action, part, times, params))

    def ops(self) -> List[Tuple[str, Optional[int], str]]:
        with self.lock:
            return [(e["op"], e["part"], e["what"]) for e in self.log]

    def requests(self) -> List[dict]:
        with self.lock:
            return [dict(e) for e in self.log]

    # ------------------------------------------------------------------ internals

    def _pick(self, op, part) -> Optional[Rule]:
        with self.lock:
            for r in self.rules:
                if r.matches(op, part):
                    r.hits += 1
                    return r
        return None

    def _arrived(self, h, op, part, query) -> dict:
        e = {"op": op, "part": part, "query": query, "path": urllib.parse.urlsplit(h.path).path,
             "headers": {k.lower(): v for k, v in h.headers.items()}, "what": None}
        with self.lock:
            self.log.append(e)
        return e

    def _note(self, e, what):
        with self.lock:
            e["what"] = what

    @staticmethod
    def _answer(h, status: int, body: bytes, headers=(), length: Optional[int] = None):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def _reset(h):
        s = h.connection
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def _handle(self, h):
        parsed = urllib.parse.urlsplit(h.path)
        op, _ = classify(h.command, parsed.query)
        with self.lock:
            self.active[op] = self.active.get(op, 0) + 1
            self.max_active[op] = max(self.max_active.get(op, 0), self.active[op])
            self.events.append(("start", op))
        try:
            self._handle1(h)
        except (BrokenPipeError, ConnectionResetError):  # the client cut the transfer (an abort)
            h.close_connection = True
        finally:
            with self.lock:
                self.active[op] -= 1
                self.events.append(("end", op))

    def _handle1(self, h):
        parsed = urllib.parse.urlsplit(h.path)
        op, part = classify(h.command, parsed.query)
        entry = self._arrived(h, op, part, parsed.query)
        length = int(h.headers.get("Content-Length") or 0)
        r = self._pick(op, part)
        if r and r.action == "cut":
            after = r.params.get("after", length // 2)
            h.rfile.read(min(after, length))
            self._note(entry, "cut")
            self._reset(h)
            return
        body = h.rfile.read(length) if length else b""
        if r and r.action == "delay":
            time.sleep(r.params.get("seconds", 0.3))
        if r and r.action == "status":
            status = r.params.get("status", 500)
            xml = ERROR_XML.format(code=r.params.get("code", "InternalError"),
                                   message=r.params.get("message", "injected by the fault proxy")).encode()
            self._note(entry, f"status {status}")
            self._answer(h, status, xml, [("Content-Type", "application/xml")])
            return
        if r and r.action == "error200" and not r.params.get("forward", False):
            self._note(entry, "error200")
            self._answer(h, 200, ERROR_XML.format(code="InternalError", message="We encountered an internal "
                                                  "error. Please try again.").encode(),
                         [("Content-Type", "application/xml")])
            return
        # forward
        up = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in ("expect", "connection")}
            up.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                up.putheader(k, v)
            up.endheaders(body if body or h.command in ("PUT", "POST") else None)
            resp = up.getresponse()
            rbody = resp.read()
            rheaders = [(k, v) for k, v in resp.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")]
        finally:
            up.close()
        if r and r.action == "lose":
            self._note(entry, f"lost (upstream {resp.status})")
            self._reset(h)
            return
        if r and r.action == "error200":
            self._note(entry, f"error200 (upstream {resp.status})")
            self._answer(h, 200, ERROR_XML.format(code="InternalError", message="We encountered an internal "
                                                  "error. Please try again.").encode(),
                         [("Content-Type", "application/xml")])
            return
        self._note(entry, f"forwarded {resp.status}")
        if h.command == "HEAD":  # no body, and the object's length
            self._answer(h, resp.status, b"", rheaders, length=int(resp.getheader("Content-Length") or 0))
        else:
            self._answer(h, resp.status, rbody, rheaders)
