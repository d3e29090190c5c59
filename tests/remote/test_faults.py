"""The library against a misbehaving server (tests/remote/faultserver.py):
exact error codes (Python exceptions' .code; CLI exit status and message),
the number of requests made (retries counted, server side), bytes sent by a
server that ignores Range, changed objects, and credentials kept out of
every message."""

import json
import subprocess
import time

import pytest
from faultserver import etag_of

from conftest import (ERR_CHANGED, ERR_IO, ERR_NETWORK, ERR_PARAM, ERR_RANGE_IGNORED, TAIL, entries_text,
                      exc_text, stats_of)

MiB = 1 << 20


def raises_code(tz, code, fn, *args, **kw):
    with pytest.raises(tz.TacozipError) as ei:
        fn(*args, **kw)
    assert ei.value.code == code, (ei.value.code, exc_text(ei.value))
    return ei.value


def ranges(log):
    return [r.range for r in log]


# ----------------------------------------------------------------------------- baseline

def test_default_semantics(fault, cli, tz, archives):
    """The fault-free server is a correct range server: header 1 request,
    ls 1 (suffix), cat 1 (a member of a small archive is in the tail) or 2
    (tail + member with its local header)."""
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    p = cli.run("header", url, ok=True)
    assert p.stdout == entries_text(small.entries)
    assert ranges(fault.requests(1)) == ["bytes=0-156"]
    fault.clear()
    p = cli.run("ls", url, "--json", "--stats", ok=True)
    assert [m["name"] for m in json.loads(p.stdout)] == [m["name"] for m in small.listing]
    assert stats_of(p.stderr) == (1, len(small.data))  # the whole small archive fits in the tail
    assert ranges(fault.requests(1)) == [f"bytes=-{TAIL}"]
    fault.clear()
    # the member lies in the tail read at open: no second request
    p = cli.run("cat", url, "small/s07.bin", "--stats", ok=True)
    assert p.stdout == small.members["small/s07.bin"]
    assert ranges(fault.requests(1)) == [f"bytes=-{TAIL}"]
    assert stats_of(p.stderr)[0] == 1
    assert tz.read_header(url) == small.entries
    # beyond the tail: tail + member with its local header, pinned to the ETag
    far = archives["far"]
    url = fault.put("f.zip", far.data)
    fault.clear()
    m = far.member("small/s07.bin")
    p = cli.run("cat", url, "small/s07.bin", "--stats", ok=True)
    assert p.stdout == far.members["small/s07.bin"]
    log = fault.requests(1)
    assert ranges(log) == [f"bytes=-{TAIL}", f"bytes={m['header_offset']}-{m['offset'] + m['size'] - 1}"]
    assert log[0].if_match is None and log[1].if_match == etag_of(far.data)  # the ETag pinned by request 1
    assert stats_of(p.stderr)[0] == 2


# ----------------------------------------------------------------------------- Range ignored (200)

def test_ignore_range_header_reads_only_the_start(fault, cli, tz, archives):
    big = archives["big"]
    url = fault.put("big.zip", big.data)
    fault.fault("big.zip", "ignore_range")
    p = cli.run("header", url, ok=True)
    assert p.stdout == entries_text(big.entries)
    log = fault.requests(2)
    assert len(log) == 1 and log[0].status == 200 and log[0].cut
    assert log[0].body_sent < MiB // 2, log  # of an 8 MiB body
    fault.clear()
    fault.fault("big.zip", "ignore_range")
    assert tz.read_header(url) == big.entries
    log = fault.requests(2)
    assert len(log) == 1 and log[0].body_sent < MiB // 2


def test_ignore_range_far_bytes_refused_without_download(fault, cli, tz, archives):
    """The end records are 8 MiB into the body: refused at once (-44) after
    one request, and the server never sends more than a sliver."""
    big = archives["big"]
    url = fault.put("big.zip", big.data)
    fault.fault("big.zip", "ignore_range")
    cli.fails_with(ERR_RANGE_IGNORED, "ls", url, contains=["ignores Range"])
    log = fault.requests(2)
    assert len(log) == 1 and log[0].status == 200 and log[0].cut
    assert fault.bytes_sent < MiB // 2, (fault.bytes_sent, len(big.data))
    fault.clear()
    fault.fault("big.zip", "ignore_range")
    raises_code(tz, ERR_RANGE_IGNORED, tz.open, url)
    log = fault.requests(2)
    assert len(log) == 1 and fault.bytes_sent < MiB // 2


def test_ignore_range_index_first_and_near_member(fault, cli, tz, archives):
    """With --index-first the listing comes from the first 16 KiB, which a
    Range-ignoring server sends first: 1 request, cut short.  A member near
    the start is read the same way; one far from it is refused (-44)."""
    big = archives["big"]
    url = fault.put("big.zip", big.data)
    fault.fault("big.zip", "ignore_range")
    p = cli.run("ls", url, "--index-first", "--json", "--stats", ok=True)
    assert [m["name"] for m in json.loads(p.stdout)] == [m["name"] for m in big.listing]
    log = fault.requests(2)
    assert len(log) == 1 and log[0].status == 200 and log[0].body_sent < MiB // 2
    fault.clear()
    fault.fault("big.zip", "ignore_range", pace=0.001)  # paced: bytes written = bytes taken
    with tz.open(url, index_first=True) as ar:
        assert ar.read("big/m0.bin") == big.members["big/m0.bin"]  # ends ~1 MiB in
        e = raises_code(tz, ERR_RANGE_IGNORED, ar.read, "big/m5.bin")
        assert "ignores Range" in exc_text(e)
        assert ar.stats[0] == 3
    log = fault.requests(2)
    assert [r.status for r in log] == [200, 200, 200]
    m0_end = big.member("big/m0.bin")["offset"] + MiB
    assert m0_end <= log[1].body_sent < m0_end + MiB // 4
    assert log[2].body_sent < MiB // 2  # the refused one
    assert fault.bytes_sent < len(big.data) // 2


def test_ignore_range_max_skip_reads_up_to_the_bytes_needed(fault, cli, archives):
    """TACOZIP_HTTP_MAX_SKIP raised: a member in the middle is read by
    skipping to it and cutting the transfer right after it."""
    big = archives["big"]
    url = fault.put("big.zip", big.data)
    fault.fault("big.zip", "ignore_range", pace=0.001)
    m = big.member("big/m3.bin")
    p = cli.run("cat", url, "big/m3.bin", "--index-first", env={"TACOZIP_HTTP_MAX_SKIP": str(64 * MiB)}, ok=True)
    assert p.stdout == big.members["big/m3.bin"]
    log = fault.requests(2)
    assert len(log) == 2 and all(r.status == 200 and r.cut for r in log)
    end = m["offset"] + m["size"]
    assert log[0].body_sent < MiB // 2
    assert end <= log[1].body_sent < end + MiB // 4 < len(big.data)


# ----------------------------------------------------------------------------- 416

def test_416_past_the_end(fault, cli, tz, archives):
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "always_416")
    cli.fails_with(ERR_NETWORK, "ls", url, contains=[f"past the end of the {len(small.data)}-byte object"])
    assert [r.status for r in fault.requests(1)] == [416]  # not retried
    fault.clear()
    fault.fault("a.zip", "always_416")
    e = raises_code(tz, ERR_NETWORK, tz.open, url)
    assert f"{len(small.data)}-byte object" in exc_text(e)
    cli.fails_with(ERR_NETWORK, "header", url)
    assert len(fault.requests(1)) == 2


def test_empty_object(fault, cli, tz):
    """A 0-byte object answers 416 to bytes=0-156: too short, as locally."""
    url = fault.put("empty.zip", b"")
    cli.fails_with(ERR_IO, "header", url)
    raises_code(tz, ERR_IO, tz.read_header, url)
    assert tz.validate(url) == -14
    assert len(fault.requests(1)) == 3


# ----------------------------------------------------------------------------- short bodies, resets, 5xx, 429

@pytest.mark.parametrize("kind", ["short_body", "reset"])
def test_transient_once_then_ok(fault, cli, tz, archives, kind):
    small = archives["far"]  # members beyond the tail: each read is a request
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", kind, times=1)
    assert cli.run("header", url, ok=True).stdout == entries_text(small.entries)
    log = fault.requests(1)
    assert len(log) == 2 and log[-1].status == 206
    fault.clear()
    fault.fault("a.zip", kind, times=1)
    with tz.open(url) as ar:
        assert ar.read("small/s03.bin") == small.members["small/s03.bin"]
        assert ar.stats[0] == 3  # tail (failed once, retried) + member
    assert len(fault.requests(1)) == 3


@pytest.mark.parametrize("kind,detail", [("short_body", ""), ("reset", ""), ("status", "HTTP 503")])
def test_transient_always_fails_after_retries(fault, cli, tz, archives, kind, detail):
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", kind, status=503)
    cli.fails_with(ERR_NETWORK, "ls", url, contains=[detail])
    assert len(fault.requests(1)) == 5  # 1 + TACOZIP_HTTP_RETRIES (4)
    fault.clear()
    fault.fault("a.zip", kind, status=503)
    cli.fails_with(ERR_NETWORK, "ls", url, env={"TACOZIP_HTTP_RETRIES": "1"})
    assert len(fault.requests(1)) == 2
    fault.clear()
    fault.fault("a.zip", kind, status=503)
    raises_code(tz, ERR_NETWORK, tz.open, url)
    assert len(fault.requests(1)) == 5


def test_stalled_transfer_times_out_and_is_retried(fault, cli, tz, archives):
    """Response headers, then silence: given up after
    TACOZIP_HTTP_STALL_TIMEOUT_S, retried; no hang.  (After some body bytes
    libcurl's speed average lets a stall last up to ~5 s longer.)"""
    small = archives["far"]  # members beyond the tail: each read is a request
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "stall", times=1, seconds=8)
    t = time.monotonic()
    p = cli.run("cat", url, "small/s06.bin", "--stats", env={"TACOZIP_HTTP_STALL_TIMEOUT_S": "1"}, ok=True)
    assert p.stdout == small.members["small/s06.bin"]
    assert 0.9 < time.monotonic() - t < 4
    assert stats_of(p.stderr)[0] == 3  # stalled tail, its retry, the member
    assert len(fault.requests()) == 3


def test_503_then_ok(fault, cli, tz, archives):
    small = archives["far"]  # members beyond the tail: each read is a request
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "status", times=2, status=503)
    p = cli.run("cat", url, "small/s01.bin", "--stats", ok=True)
    assert p.stdout == small.members["small/s01.bin"]
    assert [r.status for r in fault.requests(1)] == [503, 503, 206, 206]
    assert stats_of(p.stderr)[0] == 4


def test_429_retry_after_honoured(fault, cli, tz, archives):
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "status", times=1, status=429, retry_after=1)
    t = time.monotonic()
    cli.run("header", url, env={"TACOZIP_HTTP_MAX_BACKOFF_MS": "5000"}, ok=True)
    assert time.monotonic() - t >= 0.95
    log = fault.requests(1)
    assert [r.status for r in log] == [429, 206]
    assert log[1].t - log[0].t >= 0.95  # Retry-After: 1, not the 5 ms backoff
    # the cap (TACOZIP_HTTP_MAX_BACKOFF_MS) bounds what a server may ask
    fault.clear()
    fault.fault("a.zip", "status", times=1, status=429, retry_after=1)
    t = time.monotonic()
    assert tz.read_header(url) == small.entries  # this process: cap 200 ms
    assert time.monotonic() - t < 0.9
    assert [r.status for r in fault.requests(1)] == [429, 206]


def test_trickling_server_is_cut_by_the_minimum_rate(fault, cli, tz, archives):
    """A server sending 40 bytes a second never stalls outright: with
    min_rate 1000 B/s over a 1 s window each attempt is cut after about a
    second (retried, then TACOZ_ERR_NETWORK); a min_rate below the trickle
    lets the same read finish."""
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "trickle", rate=40)
    env = {"TACOZIP_HTTP_STALL_TIMEOUT_S": "1", "TACOZIP_HTTP_MIN_RATE": "1000", "TACOZIP_HTTP_RETRIES": "1",
           "TACOZIP_HTTP_BACKOFF_MS": "1"}
    t = time.monotonic()
    cli.fails_with(ERR_NETWORK, "header", url, env=env)
    took = time.monotonic() - t
    assert 1.5 < took < 8, took
    assert len(fault.requests(1)) == 2  # the attempt and its retry, each cut
    t = time.monotonic()
    with pytest.raises(tz.TacozipError) as e:
        tz.read_header(url, stall_timeout=1, min_rate=1000, retries=0)
    assert e.value.code == ERR_NETWORK and time.monotonic() - t < 5
    # the first 157 bytes at 40 B/s take 4 s: fine with min_rate 10
    fault.clear()
    fault.fault("a.zip", "trickle", rate=400)
    assert tz.read_header(url, stall_timeout=1, min_rate=10) == small.entries


def test_deadline_bounds_one_operation_retries_included(fault, cli, tz, archives):
    """A server that sends headers and then nothing: with a 30 s stall
    timeout and 4 retries it would take minutes; deadline_ms (1.5 s) ends
    the whole operation, backoff included, with TACOZ_ERR_NETWORK."""
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "stall", seconds=20)
    t = time.monotonic()
    p = cli.fails_with(ERR_NETWORK, "header", url, env={"TACOZIP_HTTP_DEADLINE_MS": "1500"})
    assert "deadline of 1500 ms" in p.stderr
    assert 1.4 < time.monotonic() - t < 6
    t = time.monotonic()
    with pytest.raises(tz.TacozipError) as e:
        tz.read_header(url, deadline=1.5)
    assert e.value.code == ERR_NETWORK and "deadline" in e.value.detail
    assert 1.4 < time.monotonic() - t < 6
    # a parallel read: the deadline is for the whole call
    fault.clear()
    far = archives["far"]
    url = fault.put("far.zip", far.data)
    with tz.open(url, deadline=1.5, retries=4) as ar:
        fault.fault("far.zip", "stall", seconds=20)
        t = time.monotonic()
        with pytest.raises(tz.TacozipError) as e:
            ar.read_many([n for n in far.members if n.startswith("small/")], max_gap=0)
        assert e.value.code == ERR_NETWORK and 1.4 < time.monotonic() - t < 6
    # bad values are refused: a usage error naming the variable, a ValueError
    for var, value in (("TACOZIP_HTTP_DEADLINE_MS", "0"), ("TACOZIP_HTTP_MIN_RATE", "fast")):
        p = subprocess.run([cli.binary, "header", url], env=cli.env({var: value}), capture_output=True, timeout=30)
        assert p.returncode == 2 and var.encode() in p.stderr, (p.returncode, p.stderr)
    with pytest.raises(ValueError):
        tz.read_header(url, deadline=-1)
    with pytest.raises(ValueError):
        tz.read_header(url, min_rate=0)


def test_huge_retry_after_is_clamped(fault, cli, tz, archives):
    """Retry-After: 99999999999999999999 (past any integer type): clamped
    before any arithmetic (it used to overflow a signed multiply and retry
    at once), so the wait is the cap, TACOZIP_HTTP_MAX_BACKOFF_MS."""
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    for value in ("99999999999999999999", "9223372036854775807", "86401"):
        fault.clear()
        fault.fault("a.zip", "status", times=1, status=503, retry_after=value)
        cli.run("header", url, env={"TACOZIP_HTTP_MAX_BACKOFF_MS": "400"}, ok=True)
        log = fault.requests(1)
        assert [r.status for r in log] == [503, 206], (value, log)
        assert 0.38 <= log[1].t - log[0].t < 3, (value, log[1].t - log[0].t)


def test_etag_with_a_control_character_is_never_sent_back(fault, tz, archives):
    """An ETag holding a bare CR would inject a header into the next
    request's If-Match: it is not used (no If-Match at all)."""
    far = archives["far"]  # the small/* members lie beyond the tail: reading one is a second request
    url = fault.put("a.zip", far.data)
    fault.fault("a.zip", "etag", value='"abc\rX-Injected: yes"')
    with tz.open(url) as ar:
        assert ar.read("small/s05.bin") == far.members["small/s05.bin"]
        assert ar.identity == ""
    log = fault.requests(1)
    assert len(log) == 2
    assert log[1].if_match is None and not any(k.lower() == "x-injected" for k in log[1].headers), log[1].headers
    # a clean ETag is still pinned
    fault.clear()
    fault.fault("a.zip", "etag", value='"clean-tag"')
    with tz.open(url) as ar:
        assert ar.read("small/s05.bin") == far.members["small/s05.bin"]
        assert ar.identity == '"clean-tag"'
    assert fault.requests(1)[1].if_match == '"clean-tag"'


# ----------------------------------------------------------------------------- wrong Content-Range

def test_wrong_content_range(fault, cli, tz, archives):
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "bad_range", shift=1)
    cli.fails_with(ERR_NETWORK, "header", url)
    assert len(fault.requests(1)) == 1  # not retried, bytes not used
    fault.clear()
    fault.fault("a.zip", "bad_range", shift=1)
    cli.fails_with(ERR_NETWORK, "ls", url, contains=["server answered bytes"])
    fault.clear()
    fault.fault("a.zip", "bad_range", shift=5)
    e = raises_code(tz, ERR_NETWORK, tz.read_header, url)
    fault.clear()
    fault.fault("a.zip", "bad_range", shift=1)
    e = raises_code(tz, ERR_NETWORK, tz.open, url)
    assert "server answered bytes" in exc_text(e)
    assert len(fault.requests(1)) == 1


# ----------------------------------------------------------------------------- object replaced

def _replacement(data: bytes) -> bytes:
    return bytes(b ^ 0x5A for b in data)  # same size, other bytes, other ETag


@pytest.mark.parametrize("variant", ["if_match_412", "etag_differs", "size_differs"])
def test_replaced_object_gives_changed(fault, cli, tz, archives, variant):
    small = archives["far"]  # members beyond the tail: each read is a request
    url = fault.put("a.zip", small.data)
    params = {"after": 1, "content": _replacement(small.data)}
    if variant == "etag_differs":
        params["honor_if_match"] = False
    elif variant == "size_differs":
        params.update(etag=False, content=small.data + b"\0" * 10)

    fault.fault("a.zip", "replace", **params)
    p = cli.fails_with(ERR_CHANGED, "cat", url, "small/s10.bin", contains=["changed"])
    assert p.stdout == b""  # never a byte of either version
    log = fault.requests(1)
    assert len(log) == 2
    if variant == "if_match_412":
        assert log[1].if_match == etag_of(small.data)
        assert log[1].status == 412
    fault.put("a.zip", small.data)

    fault.clear()
    fault.fault("a.zip", "replace", **params)
    with tz.open(url) as ar:
        e = raises_code(tz, ERR_CHANGED, ar.read_many, ["small/s01.bin", "small/s20.bin"], max_gap=0)
        assert "changed" in exc_text(e)
        # still changed on a later read: the pinned identity does not move
        raises_code(tz, ERR_CHANGED, ar.read, "small/s05.bin")
    fault.put("a.zip", small.data)


def test_replaced_during_a_long_read_never_mixes(fault, cli, tmp_path):
    """cat of a 3 MiB member reads it in 1 MiB requests; the object is
    replaced after the second request: the output is a prefix of the old
    member, then -42; no byte of the new version is ever written."""
    src = tmp_path / "src"
    src.mkdir()
    old = bytes(range(256)) * (3 * 4096)
    (src / "long.bin").write_bytes(old)
    arc = tmp_path / "long.zip"
    cli.run("create", arc, src / "long.bin", "--no-fsync", ok=True)
    data = arc.read_bytes()
    url = fault.put("long.zip", data)
    fault.fault("long.zip", "replace", after=2, content=_replacement(data))
    p = cli.fails_with(ERR_CHANGED, "cat", url, "long.bin")
    assert 0 < len(p.stdout) < len(old) and old.startswith(p.stdout)
    assert [r.status for r in fault.requests(1)] == [206, 206, 412]


def test_expected_identity_pins_the_first_request(fault, cli, tz, archives):
    """expected_identity (tacozip_remote_options): the first request already
    carries If-Match; an object replaced since gives -42 at open, with one
    request, whether the server answers 412 or ignores If-Match."""
    far = archives["far"]
    url = fault.put("a.zip", far.data)
    etag = etag_of(far.data)
    with tz.open(url, expected_identity=etag) as ar:
        assert ar.identity == etag
        assert ar.read("small/s01.bin") == far.members["small/s01.bin"]
    log = fault.requests(1)
    assert [r.if_match for r in log] == [etag, etag] and [r.status for r in log] == [206, 206]

    fault.put("a.zip", _replacement(far.data))
    fault.clear()
    e = raises_code(tz, ERR_CHANGED, tz.open, url, expected_identity=etag)
    assert "changed" in exc_text(e) and url in exc_text(e)
    log = fault.requests(1)
    assert [(r.if_match, r.status) for r in log] == [(etag, 412)]  # not retried
    fault.clear()
    raises_code(tz, ERR_CHANGED, tz.read_header, url, expected_identity=etag)
    assert [r.status for r in fault.requests(1)] == [412]

    # a server that ignores If-Match: the other ETag is noticed all the same
    fault.put("a.zip", far.data)
    fault.clear()
    fault.fault("a.zip", "replace", after=0, content=_replacement(far.data), honor_if_match=False)
    raises_code(tz, ERR_CHANGED, tz.open, url, expected_identity=etag)
    assert [r.status for r in fault.requests(1)] == [206]
    fault.faults.clear()
    # the bytes are read under their own identity: a wrong one is refused
    fault.put("a.zip", far.data)
    raises_code(tz, ERR_CHANGED, tz.open, url, expected_identity='"not-this-one"')
    raises_code(tz, ERR_PARAM, tz.open, url, expected_identity='"a"\r\nX: y')


# ----------------------------------------------------------------------------- redirects, weak ETags

def test_redirect_followed(fault, cli, tz, archives):
    small = archives["far"]  # members beyond the tail: each read is a request
    fault.put("a.zip", small.data)
    url = f"{fault.base}/r/a.zip"
    assert cli.run("header", url, ok=True).stdout == entries_text(small.entries)
    log = fault.requests(1)
    assert [(r.path, r.status) for r in log] == [("/r/a.zip", 302), ("/a.zip", 206)]
    assert log[1].range == "bytes=0-156"
    fault.clear()
    names = ["small/s02.bin", "small/s09.bin", "small/s17.bin"]
    with tz.open(url) as ar:
        got = ar.read_many(names, max_gap=0)
        assert got == {n: small.members[n] for n in names}
        n_req = ar.stats[0]
    log = fault.requests(1)
    # the tail, then the three members in parallel: each a 302 and a 206,
    # and the statistics count every HTTP request, redirects included
    assert n_req == len(log) == 2 * (1 + 3)
    assert [r.status for r in log].count(302) == 1 + 3
    assert sorted(r.path for r in log if r.status == 206) == ["/a.zip"] * 4


def test_weak_etag_is_not_a_change(fault, cli, tz, archives):
    """A weak ETag never satisfies If-Match (RFC 9110, strong comparison):
    the client must not send it, or every second request fails."""
    small = archives["small"]
    url = fault.put("a.zip", small.data)
    fault.fault("a.zip", "weak_etag")
    p = cli.run("cat", url, "small/s04.bin", ok=True)
    assert p.stdout == small.members["small/s04.bin"]
    assert all(r.if_match is None for r in fault.requests(1))
    with tz.open(url) as ar:
        assert ar.read_many(small.members) == small.members


# ----------------------------------------------------------------------------- credentials stay out of messages

SECRETS = ("hunter2", "s3cr3tsig", "X-Amz-Signature", "tzuser")


def _clean(text: str):
    for s in SECRETS:
        assert s not in text, (s, text)


def test_credentials_never_in_messages(fault, cli, tz, archives):
    small = archives["far"]  # members beyond the tail: each read is a request
    fault.put("a.zip", small.data)
    fault.put("b.zip", archives["big"].data)
    auth = f"http://tzuser:hunter2@127.0.0.1:{fault.port}"
    q = "?X-Amz-Signature=s3cr3tsig&X-Amz-Credential=tzuser"
    missing = f"{auth}/missing.zip{q}"
    good = f"{auth}/a.zip{q}"
    for args in (["header", missing], ["ls", missing], ["cat", missing, "x"], ["validate", missing],
                 ["validate", missing, "--json"], ["extract", missing, "-C", "/tmp/tz-never-created"],
                 ["span", missing, "x"], ["cat", good, "no-such-member"]):
        p = cli.run(*args, ok=False)
        _clean(p.stderr)
        _clean(p.stdout.decode("utf-8", "replace"))
        assert "127.0.0.1" in p.stderr + p.stdout.decode(), p.stderr  # the message still names the server
    p = cli.fails_with(ERR_IO, "ls", missing, contains=["HTTP 404"])
    _clean(p.stderr)
    good_big = f"{auth}/b.zip{q}"
    for kind, code, url, args in (("ignore_range", ERR_RANGE_IGNORED, good_big, ["ls"]),
                                  ("status", ERR_NETWORK, good, ["ls"]),
                                  ("bad_range", ERR_NETWORK, good, ["ls"]),
                                  ("replace", ERR_CHANGED, good, ["cat", "small/s01.bin"])):
        for python in (False, True):
            fault.put("a.zip", small.data)
            fault.fault(url.split("/")[3].split("?")[0], kind, status=503, shift=2, after=1,
                        content=_replacement(small.data))
            if not python:
                p = cli.fails_with(code, args[0], url, *args[1:])
                _clean(p.stderr)
                continue
            if kind == "replace":
                with tz.open(url) as ar:
                    e = raises_code(tz, code, ar.read, "small/s01.bin")
            else:
                e = raises_code(tz, code, tz.open, url)
            _clean(exc_text(e))
    fault.faults.clear()
    fault.put("a.zip", small.data)
    for fn in (tz.open, tz.read_header):
        e = raises_code(tz, ERR_IO, fn, missing)
        _clean(exc_text(e))
        assert "404" in exc_text(e) or fn is tz.read_header
    code, msg = tz.validate_detail(missing)
    assert code == ERR_IO
    _clean(msg)
    # the query string is still sent: presigned URLs work
    assert any(r.path.endswith(q) for r in fault.requests())
    with tz.open(good) as ar:
        assert ar.read("small/s01.bin") == small.members["small/s01.bin"]
