"""URLs on the command line, whether or not the command was built with
libcurl.  scripts/test.sh nocurl runs this suite against a build configured
with -DTACOZIP_WITH_CURL=OFF and TACOZIP_EXPECT_NO_CURL=1: every URL must then
fail with exit status 1 and "built without libcurl".  With libcurl (the
default), a URL naming a closed local port fails with exit status 1 and a
connection error instead (nothing leaves this machine)."""
import os
import socket

import pytest

NO_CURL = os.environ.get("TACOZIP_EXPECT_NO_CURL") == "1"


@pytest.fixture(scope="module")
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMANDS = [("header", []), ("ls", []), ("ls", ["--json"]), ("cat", ["a.txt"]), ("span", ["a.txt"]),
            ("refs", []), ("validate", []), ("extract", ["-C", "{dest}"])]


@pytest.mark.parametrize("scheme", ["http", "https", "s3"])
@pytest.mark.parametrize("cmd,args", COMMANDS)
def test_url(tz, tmp_path, closed_port, scheme, cmd, args, monkeypatch):
    url = {"http": f"http://127.0.0.1:{closed_port}/x.taco", "https": f"https://127.0.0.1:{closed_port}/x.taco",
           "s3": "s3://bucket/x.taco"}[scheme]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}", TACOZIP_HTTP_RETRIES="0")
    args = [a.replace("{dest}", str(tmp_path / "d")) for a in args]
    r = tz(cmd, url, *args, env=env, timeout=120)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, (r.returncode, err)
    # validate too: an archive it cannot read is an error, not a verdict
    assert r.stdout == b"", r.stdout
    assert err.startswith(f"tacozip: {url}: "), err
    if NO_CURL:
        assert "built without libcurl" in err, err
    else:
        assert "built without libcurl" not in err, err
        assert ("Couldn't connect" in err or "Could not connect" in err), err
    assert not (tmp_path / "d").exists()
