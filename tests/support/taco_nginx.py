"""A throwaway nginx for the tests and benchmarks: one config template, one
way to start, wait for and stop it.  Each user chooses its access-log
format (what it counts) and parses the log itself.

    srv = NginxProcess(find_nginx(), tmp, root, log_format="$request\\t$status")
    srv.start()            # raises NginxError with nginx's own output on failure
    ... srv.base, srv.access_log ...
    srv.stop()
"""

import os
import pathlib
import shutil
import socket
import subprocess
import time
from typing import Optional

CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format counted '{log_format}';
    access_log {tmp}/access.log counted;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 60;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port}{listen};
        server_name localhost;
        root {root};
        location / {{ }}
{server_extra}
    }}
}}
"""


class NginxError(RuntimeError):
    pass


def find_nginx() -> Optional[str]:
    """$TACOZIP_NGINX, nginx on PATH, or Debian's /usr/sbin/nginx."""
    b = os.environ.get("TACOZIP_NGINX") or shutil.which("nginx")
    if not b and os.path.exists("/usr/sbin/nginx"):
        b = "/usr/sbin/nginx"
    return b if b and os.access(b, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxProcess:
    def __init__(self, binary: str, tmp, root, log_format: str, listen: str = "", server_extra: str = ""):
        """``tmp``: a directory of its own (config, pid, logs); ``root``: the
        directory served.  ``listen`` is appended to the listen address (e.g.
        " ssl http2"), ``server_extra`` goes into the server block."""
        self.binary = binary
        self.tmp = pathlib.Path(tmp)
        self.root = pathlib.Path(root)
        self.port = free_port()
        self.tls = "ssl" in listen
        self.base = f"{'https://localhost' if self.tls else 'http://127.0.0.1'}:{self.port}"
        self.access_log = self.tmp / "access.log"
        self.error_log = self.tmp / "error.log"
        # as root the workers would drop to "nobody" and could not read a
        # 0700 temp dir: keep them root (a throwaway server on loopback)
        user = "user root root;" if os.geteuid() == 0 else ""
        self.conf = self.tmp / "nginx.conf"
        self.conf.write_text(CONF.format(user=user, tmp=self.tmp, port=self.port, root=self.root,
                                         log_format=log_format, listen=listen, server_extra=server_extra))
        self.proc: Optional[subprocess.Popen] = None
        self._out = None

    def start(self, timeout: float = 10) -> "NginxProcess":
        self._out = open(self.tmp / "nginx.out", "wb")
        # -e: error log from the start (never the compiled-in /var/log/nginx)
        self.proc = subprocess.Popen([self.binary, "-p", str(self.tmp), "-c", str(self.conf), "-e",
                                      str(self.error_log)], stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._answers():
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise NginxError(f"nginx did not start on port {self.port}: "
                                 f"{(self.tmp / 'nginx.out').read_text(errors='replace')} "
                                 f"{self.error_log.read_text(errors='replace') if self.error_log.exists() else ''}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                if self.tls:  # the TLS port accepts: enough
                    return True
                c.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                return c.recv(100).startswith(b"HTTP/1.1 ")
        except OSError:
            return False

    def truncate_log(self) -> None:
        """nginx appends (O_APPEND): after truncation the next line goes at 0."""
        if self.access_log.exists():
            with open(self.access_log, "r+b") as f:
                f.truncate(0)

    def log_lines(self):
        return [ln for ln in self.access_log.read_text().split("\n") if ln] if self.access_log.exists() else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # fast shutdown; the master stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._out:
            self._out.close()
            self._out = None
