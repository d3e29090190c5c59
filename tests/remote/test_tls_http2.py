"""HTTPS with certificate verification, and HTTP/2 multiplexing, against a
real nginx with a certificate made for the test."""

import shutil
import subprocess
import time

import pytest
from taco_nginx import NginxError, NginxProcess, find_nginx  # on sys.path via conftest.py

from conftest import in_tail


@pytest.fixture(scope="module")
def tls_nginx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.fail("openssl is required to make the test certificate", pytrace=False)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                   check=True, capture_output=True)
    binary = find_nginx()
    if binary is None:
        pytest.fail("nginx is required (apt-get install nginx)", pytrace=False)
    root = tmp / "www"
    root.mkdir()
    srv = NginxProcess(binary, tmp, root, "$server_protocol\\t$connection\\t$status\\t$http_range",
                       listen=" ssl http2",
                       server_extra=f"        ssl_certificate {tmp}/cert.pem;\n"
                                    f"        ssl_certificate_key {tmp}/key.pem;")
    try:
        srv.start()
    except NginxError as e:
        pytest.fail(str(e), pytrace=False)
    yield {"tmp": tmp, "root": root, "base": srv.base, "ca": str(tmp / "cert.pem"), "log": srv.access_log}
    srv.stop()


def _log(srv):
    lines = srv["log"].read_text().splitlines() if srv["log"].exists() else []
    return [ln.split("\t") for ln in lines]


def test_tls_is_verified(tls_nginx, cli, archives, monkeypatch):
    small = archives["small"]
    (tls_nginx["root"] / "small.zip").write_bytes(small.data)
    url = tls_nginx["base"] + "/small.zip"
    # an unknown CA: refused, with a clear message, nothing read
    for var in ("TACOZIP_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    p = cli.run("header", url)
    assert p.returncode == 1
    assert "certificate" in p.stderr.lower() or "ssl" in p.stderr.lower(), p.stderr
    # with the test CA: read
    monkeypatch.setenv("TACOZIP_CA_BUNDLE", tls_nginx["ca"])
    p = cli.run("header", url, ok=True)
    assert p.stdout.split() == [str(x).encode() for e in small.entries for x in e]


def test_http2_multiplexes_parallel_reads(tls_nginx, tz, archives, monkeypatch):
    sp = archives["spread"]
    (tls_nginx["root"] / "spread.zip").write_bytes(sp.data)
    monkeypatch.setenv("TACOZIP_CA_BUNDLE", tls_nginx["ca"])
    tls_nginx["log"].write_text("")
    names = [f"spread/p{i:03d}.bin" for i in range(0, 200, 2)]
    with tz.open(tls_nginx["base"] + "/spread.zip") as ar:
        got = ar.read_many(names, max_gap=0)  # 100 separate ranges, 8 at a time
        assert got == {n: sp.members[n] for n in names}
        fetched = [n for n in names if not in_tail(sp, n)]  # the others come from the tail
        assert 80 < len(fetched) < 100
        assert ar.stats[0] == 1 + len(fetched)
    time.sleep(0.2)  # nginx writes its log line after the response
    log = _log(tls_nginx)
    assert len(log) == 1 + len(fetched)
    assert all(proto == "HTTP/2.0" and status == "206" for proto, _, status, _ in log)
    # multiplexed: a handful of connections carried the 101 requests
    conns = {conn for _, conn, _, _ in log}
    assert len(conns) <= 8, conns
