"""validate over a URL gives what it gives on the local file: valid archives
at every level, and truncated ones with the same code (the server being
nginx or the fault server, whose 416 and short-object answers differ)."""

import json

import pytest

from conftest import INVALID_FILE_SIZE, INVALID_NO_EOCD


def cuts(data: bytes):
    return {
        "whole": data,
        "minus1": data[:-1],
        "minus22": data[:-22],
        "half": data[:len(data) // 2],
        "header_only": data[:157],
        "short": data[:100],
        "empty": b"",
    }


EXPECT_NORMAL = {"whole": 0, "minus1": INVALID_NO_EOCD, "minus22": INVALID_NO_EOCD, "half": INVALID_NO_EOCD,
                 "header_only": INVALID_NO_EOCD, "short": INVALID_FILE_SIZE, "empty": INVALID_FILE_SIZE}


@pytest.mark.parametrize("server", ["nginx", "fault"])
def test_truncated_remote_same_code_as_local(server, request, cli, tz, archives, tmp_path):
    srv = request.getfixturevalue(server)
    small = archives["small"]
    for name, data in cuts(small.data).items():
        local = tmp_path / f"{name}.zip"
        local.write_bytes(data)
        if server == "nginx":
            (srv.root / "trunc").mkdir(exist_ok=True)
            (srv.root / "trunc" / f"{name}.zip").write_bytes(data)
            url = f"{srv.base}/trunc/{name}.zip"
        else:
            url = srv.put(f"{name}.zip", data)
        for level in ("quick", "normal"):
            a = json.loads(cli.run("validate", local, "--level", level, "--json").stdout)
            b = json.loads(cli.run("validate", url, "--level", level, "--json").stdout)
            assert a["code"] == b["code"], (name, level, a, b)
            assert a["message"].replace(str(local), "X") == b["message"].replace(url, "X"), (a, b)
        assert b["code"] == EXPECT_NORMAL[name], (name, b)
        assert tz.validate(url) == tz.validate(local) == EXPECT_NORMAL[name]
        # exit status and text of the plain form
        p = cli.run("validate", url)
        assert p.returncode == (0 if name == "whole" else 1)
        assert ("valid (normal)" if name == "whole" else f"INVALID (code {EXPECT_NORMAL[name]}") in p.stdout.decode()


def test_validate_deep_remote_matches_local(fault, cli, tz, archives, tmp_path):
    """A flipped data byte: DEEP finds the member CRC over HTTP as locally."""
    small = archives["small"]
    m = small.member("small/s08.bin")
    bad = bytearray(small.data)
    bad[m["offset"] + 5] ^= 0xFF
    local = tmp_path / "bad.zip"
    local.write_bytes(bad)
    url = fault.put("bad.zip", bytes(bad))
    a = json.loads(cli.run("validate", local, "--level", "deep", "--json").stdout)
    b = json.loads(cli.run("validate", url, "--level", "deep", "--json").stdout)
    assert a["code"] == b["code"] == -32
    assert tz.validate(url, tz.TACOZIP_VALIDATE_NORMAL) == tz.validate(local, tz.TACOZIP_VALIDATE_NORMAL) == 0
