"""s3://bucket/key against moto's S3 server (path style through
AWS_ENDPOINT_URL, signed with AWS SigV4 by libcurl).  moto runs with IAM
authentication on, so it recomputes every request's signature from the IAM
user's secret and refuses a wrong one; its recorder gives the requests it
received (with their headers) for counting.  The counts are those asserted
against nginx."""

import json
import re

import pytest

from conftest import BUCKET, ERR_CHANGED, ERR_IO, INDEX_PROBE, TAIL, entries_text, exc_text, in_tail, stats_of

SIG = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<ak>[^/]+)/\d{8}/us-east-1/s3/aws4_request, "
                 r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=[0-9a-f]{64}$")


def gets(s3, key):
    """The GETs moto received, each checked: path style, signed with the
    IAM user's key, payload hash and date signed."""
    recs = s3.requests()
    for r in recs:
        assert r["method"] == "GET", r
        assert r["url"].split("?")[0].endswith(f"/{BUCKET}/{key}"), r["url"]
        h = {k.lower(): v for k, v in r["headers"].items()}
        m = SIG.match(h.get("authorization", ""))
        assert m, h
        assert m["ak"] == s3.access_key
        signed = m["signed"].split(";")
        assert {"host", "x-amz-date", "x-amz-content-sha256"} <= set(signed), signed
        assert h["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    return [{k.lower(): v for k, v in r["headers"].items()} for r in recs]


def test_header_one_signed_request(s3, cli, tz, archives):
    big = archives["big"]
    url = s3.publish(big, "big.zip")
    s3.reset()
    assert cli.run("header", url, env=s3.env(), ok=True).stdout == entries_text(big.entries)
    assert [h["range"] for h in gets(s3, "big.zip")] == ["bytes=0-156"]
    s3.reset()
    assert tz.read_header(url) == big.entries
    assert [h["range"] for h in gets(s3, "big.zip")] == ["bytes=0-156"]


@pytest.mark.parametrize("key,flags,expect", [
    ("small", [], [f"bytes=-{TAIL}"]),
    ("big", [], [f"bytes=-{TAIL}"]),
    ("many", [], [f"bytes=-{TAIL}", "dir"]),
    ("indexed", ["--index-first"], [f"bytes=0-{INDEX_PROBE - 1}"]),
])
def test_ls_request_counts(s3, cli, archives, key, flags, expect):
    arc = archives[key]
    url = s3.publish(arc, f"{key}.zip")
    s3.reset()
    p = cli.run("ls", url, "--json", "--stats", *flags, env=s3.env(), ok=True)
    listing = json.loads(p.stdout)
    assert [(m["name"], m["offset"], m["size"]) for m in listing] == \
           [(m["name"], m["offset"], m["size"]) for m in arc.listing]
    # the directory request stops where the tail began: the rest came with it
    dir_end = min(len(arc.data) - 22, len(arc.data) - TAIL)
    expect = [f"bytes={arc.cd_offset}-{dir_end - 1}" if e == "dir" else e for e in expect]
    hs = gets(s3, f"{key}.zip")
    assert [h["range"] for h in hs] == expect
    assert stats_of(p.stderr)[0] == len(expect)
    assert all("if-match" not in h for h in hs[:1]) and all(h.get("if-match") for h in hs[1:])


def test_cat_extract_validate(s3, cli, tz, archives, tmp_path):
    small = archives["small"]
    url = s3.publish(small, "small.zip")
    s3.reset()
    # a small archive: the member is in the tail read at open
    p = cli.run("cat", url, "small/s13.bin", "--stats", env=s3.env(), ok=True)
    assert p.stdout == small.members["small/s13.bin"]
    assert [h["range"] for h in gets(s3, "small.zip")] == [f"bytes=-{TAIL}"] and stats_of(p.stderr)[0] == 1
    far = archives["far"]
    furl = s3.publish(far, "far.zip")
    s3.reset()
    name = "small/s13.bin"
    m = far.member(name)
    p = cli.run("cat", furl, name, "--stats", env=s3.env(), ok=True)
    assert p.stdout == far.members[name]
    hs = gets(s3, "far.zip")
    assert [h["range"] for h in hs] == [f"bytes=-{TAIL}", f"bytes={m['header_offset']}-{m['offset'] + m['size'] - 1}"]
    assert hs[1]["if-match"]  # pinned to the first answer's ETag
    assert stats_of(p.stderr)[0] == 2

    s3.reset()
    cli.run("extract", url, "-C", tmp_path / "out", "--skip-header", env=s3.env(), ok=True)
    for n, content in small.members.items():
        assert (tmp_path / "out" / n).read_bytes() == content
    # tail, then per member at most a local-header check and the data
    assert len(gets(s3, "small.zip")) <= 1 + 2 * len(small.members)

    for level in ("quick", "normal", "deep"):
        local = json.loads(cli.run("validate", small.path, "--level", level, "--json", ok=True).stdout)
        remote = json.loads(cli.run("validate", url, "--level", level, "--json", env=s3.env(), ok=True).stdout)
        assert local == remote and remote["valid"] is True
    assert tz.validate(url, tz.TACOZIP_VALIDATE_DEEP) == 0


def test_python_open_read_many(s3, tz, archives):
    sp = archives["spread"]
    url = s3.publish(sp, "spread.zip")
    s3.reset()
    names = [f"spread/p{i:03d}.bin" for i in range(0, 200, 2)]
    with tz.open(url) as ar:
        assert ar.read_many(names) == {n: sp.members[n] for n in names}
        assert ar.stats[0] == 2  # tail + one coalesced range (as with nginx)
        n_before = len(gets(s3, "spread.zip"))
        assert n_before == 2
        gap = sp.member(names[1])["header_offset"] - (sp.member(names[0])["offset"] + 4096)
        assert ar.read_many(names, max_gap=gap - 1) == {n: sp.members[n] for n in names}
        fetched = [n for n in names if not in_tail(sp, n)]  # the others come from the tail
        assert 80 < len(fetched) < 100
        assert ar.stats[0] == 2 + len(fetched)
    assert len(gets(s3, "spread.zip")) == 2 + len(fetched)


def test_index_first_python(s3, tz, archives):
    ix = archives["indexed"]
    url = s3.publish(ix, "indexed.zip")
    s3.reset()
    with tz.open(url, index_first=True) as ar:
        assert len(ar) == 3002 and ar.header == ix.entries
        assert ar.read("tiles/02999.bin") == ix.members["tiles/02999.bin"]
        assert ar.stats[0] == 2
    assert [h["range"] for h in gets(s3, "indexed.zip")][0] == f"bytes=0-{INDEX_PROBE - 1}"


def test_wrong_bucket_or_key(s3, cli, tz, archives):
    small = archives["small"]
    s3.publish(small, "small.zip")
    for url in ("s3://no-such-bucket-tz/small.zip", f"s3://{BUCKET}/no/such/key.zip"):
        for cmd in (["ls", url], ["header", url], ["cat", url, "x"], ["validate", url]):
            p = cli.fails_with(ERR_IO, *cmd, env=s3.env())
            assert s3.secret_key not in p.stderr
            if cmd[0] != "header":
                assert "HTTP 404 (not found)" in p.stderr, p.stderr
        with pytest.raises(tz.TacozipIOError) as ei:
            tz.open(url)
        assert ei.value.code == ERR_IO and "HTTP 404 (not found)" in exc_text(ei.value)
        with pytest.raises(tz.TacozipError) as ei:
            tz.read_header(url)
        assert ei.value.code == ERR_IO
        assert tz.validate(url) == ERR_IO


def test_signature_is_verified(s3, cli, tz, archives):
    """moto recomputes the SigV4 signature: a wrong secret or an unsigned
    request is refused (403 -> TACOZ_ERR_IO, 'check credentials'), and the
    secret never shows in a message."""
    small = archives["small"]
    url = s3.publish(small, "small.zip")
    wrong = "WRONG" + s3.secret_key[5:]
    for env in (s3.env(AWS_SECRET_ACCESS_KEY=wrong), s3.env(AWS_NO_SIGN_REQUEST="true")):
        s3.reset()
        p = cli.fails_with(ERR_IO, "ls", url, env=env, contains=["HTTP 403", "check credentials"])
        assert wrong not in p.stderr and s3.secret_key not in p.stderr
        recs = s3.requests()
        assert len(recs) == 1  # not retried
        auth = {k.lower(): v for k, v in recs[0]["headers"].items()}.get("authorization")
        if env.get("AWS_NO_SIGN_REQUEST"):
            assert auth is None
        else:
            assert auth.startswith("AWS4-HMAC-SHA256 ")
    s3.reset()
    assert cli.run("ls", url, env=s3.env(), ok=True).stdout
    assert len(gets(s3, "small.zip")) == 1


def test_replaced_object_changed(s3, tz, archives):
    """moto honours If-Match: an object overwritten after open gives -42."""
    small = archives["far"]  # members beyond the tail: each read is a request
    key = "replaced.zip"
    s3.client.put_object(Bucket=BUCKET, Key=key, Body=small.data)
    with tz.open(f"s3://{BUCKET}/{key}") as ar:
        s3.client.put_object(Bucket=BUCKET, Key=key, Body=bytes(b ^ 1 for b in small.data))
        with pytest.raises(tz.TacozipError) as ei:
            ar.read("small/s02.bin")
        assert ei.value.code == ERR_CHANGED
