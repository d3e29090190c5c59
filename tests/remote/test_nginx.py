"""Request counts against a real nginx, read from its access log ($request
$status $http_range $body_bytes_sent): exactly the ranges documented in
docs/remote.md, never a whole-file download."""

import json

import pytest

from conftest import INDEX_PROBE, TAIL, entries_text, in_tail, stats_of


def rng(a, b):
    return f"bytes={a}-{b - 1}"  # [a, b)


def fetched_end(arc, end):
    """Where a read ending at ``end`` stops fetching: the tail kept from the
    open serves what lies in it."""
    return min(end, len(arc.data) - TAIL)


def member_range(arc, name):
    m = arc.member(name)
    return rng(m["header_offset"], fetched_end(arc, m["offset"] + m["size"]))


def member_bytes(arc, name):
    m = arc.member(name)
    return fetched_end(arc, m["offset"] + m["size"]) - m["header_offset"]  # local header + data


def check(log, expected, size=None):
    """Exactly the expected (Range, body bytes) per request, all 206 and,
    given the file size, far fewer bytes than the file."""
    assert [(ln.method, ln.status) for ln in log] == [("GET", 206)] * len(expected), log
    assert [ln.range for ln in log] == [r for r, _ in expected], log
    assert [ln.body_bytes for ln in log] == [n for _, n in expected], log
    if size is not None:
        assert sum(ln.body_bytes for ln in log) < size / 4, (log, size)


def test_header_one_request(nginx, cli, tz, archives):
    big = archives["big"]
    url = nginx.publish(big, "big.zip")
    assert cli.run("header", url, ok=True).stdout == entries_text(big.entries)
    check(nginx.lines(1), [("bytes=0-156", 157)], len(big.data))
    nginx.reset()
    assert tz.read_header(url) == big.entries
    check(nginx.lines(1), [("bytes=0-156", 157)], len(big.data))


def test_ls_directory_in_tail_one_request(nginx, cli, tz, archives):
    big = archives["big"]  # 8 MiB, 10 members: the directory is in the last 65 KiB
    url = nginx.publish(big, "big.zip")
    p = cli.run("ls", url, "--json", "--stats", ok=True)
    assert json.loads(p.stdout) == big.listing
    check(nginx.lines(1), [(f"bytes=-{TAIL}", TAIL)], len(big.data))
    assert stats_of(p.stderr) == (1, TAIL)


def test_ls_large_directory_two_requests(nginx, cli, archives):
    many = archives["many"]  # 5,000 members: the directory is larger than the tail
    url = nginx.publish(many, "many.zip")
    p = cli.run("ls", url, "--json", "--stats", ok=True)
    assert json.loads(p.stdout) == many.listing and len(many.listing) == 5001
    size = len(many.data)
    # the second request reads the directory only up to where the tail began
    before_tail = size - TAIL - many.cd_offset
    assert before_tail > 0
    check(nginx.lines(2), [(f"bytes=-{TAIL}", TAIL), (rng(many.cd_offset, size - TAIL), before_tail)], size)
    assert stats_of(p.stderr) == (2, TAIL + before_tail)


def test_ls_index_first_one_request(nginx, cli, tz, archives):
    ix = archives["indexed"]  # 3,000 members, created with --index
    url = nginx.publish(ix, "indexed.zip")
    p = cli.run("ls", url, "--index-first", "--json", "--stats", ok=True)
    listing = json.loads(p.stdout)
    assert [(m["name"], m["offset"], m["size"], m["crc32"]) for m in listing] == \
           [(m["name"], m["offset"], m["size"], m["crc32"]) for m in ix.listing]
    assert len(listing) == 3002
    check(nginx.lines(1), [(f"bytes=0-{INDEX_PROBE - 1}", INDEX_PROBE)], len(ix.data))
    assert stats_of(p.stderr) == (1, INDEX_PROBE)
    nginx.reset()
    with tz.open(url, index_first=True) as ar:
        assert len(ar) == 3002
        assert ar.read("tiles/01234.bin") == ix.members["tiles/01234.bin"]
        assert ar.header == ix.entries  # the header came with the first request
        assert ar.stats[0] == 2
    name = "tiles/01234.bin"
    check(nginx.lines(2), [(f"bytes=0-{INDEX_PROBE - 1}", INDEX_PROBE),
                           (member_range(ix, name), member_bytes(ix, name))], len(ix.data))


@pytest.mark.parametrize("key,name,open_requests", [("far", "small/s11.bin", 1), ("many", "many/f04321.bin", 2)])
def test_cat_tail_dir_plus_one(nginx, cli, archives, key, name, open_requests):
    arc = archives[key]
    url = nginx.publish(arc, f"{key}.zip")
    p = cli.run("cat", url, name, "--stats", ok=True)
    assert p.stdout == arc.members[name]
    log = nginx.lines(open_requests + 1)
    assert len(log) == open_requests + 1 and stats_of(p.stderr)[0] == open_requests + 1
    assert log[0].range == f"bytes=-{TAIL}"
    assert log[-1].range == member_range(arc, name)  # local header + data, one request
    assert log[-1].body_bytes == member_bytes(arc, name)
    assert log[-1].if_match is not None  # pinned to the ETag of the first answer


def test_small_archive_one_request_in_all(nginx, cli, tz, archives):
    """An archive smaller than the tail: the open's one request fetches it
    whole, and the header, every member (local headers checked), its CRCs
    and any raw range are served from those bytes."""
    small = archives["small"]
    url = nginx.publish(small, "small.zip")
    with tz.open(url) as ar:
        assert ar.header == small.entries
        assert ar.read_many(small.members, max_gap=0) == small.members
        for n, content in small.members.items():
            assert ar.read(n) == content
            with ar.open(n) as f:
                f.seek(-5, 2)
                assert f.read() == content[-5:]
        ar.verify()
        assert ar.read_range(0, len(small.data)) == small.data
        assert ar.stats == (1, len(small.data))
    check(nginx.lines(1), [(f"bytes=-{TAIL}", len(small.data))])
    nginx.reset()
    p = cli.run("cat", url, "small/s20.bin", "--stats", ok=True)
    assert p.stdout == small.members["small/s20.bin"] and stats_of(p.stderr) == (1, len(small.data))
    assert len(nginx.lines(1)) == 1


def test_footer_in_the_tail_no_request(nginx, tz, archives):
    """A large member whose last bytes lie in the tail (a Parquet footer):
    reading them by archive offset costs no request; through the member's
    file object only its local header is fetched (once, then checked)."""
    big = archives["big"]
    url = nginx.publish(big, "big.zip")
    m = big.member("big/m7.bin")
    content = big.members["big/m7.bin"]
    end = m["offset"] + m["size"]
    assert end - 8 >= len(big.data) - TAIL and m["header_offset"] < len(big.data) - TAIL
    with tz.open(url) as ar:
        assert ar.stats[0] == 1
        assert ar.read_range(end - 8, 8) == content[-8:]  # the footer length + magic
        assert ar.read_range(end - 40_000, 40_000) == content[-40_000:]
        assert ar.stats[0] == 1
        with ar.open("big/m7.bin") as f:
            f.seek(-8, 2)
            assert f.read() == content[-8:]
            assert ar.stats[0] == 2  # the local header alone
            f.seek(-40_000, 2)
            assert f.read() == content[-40_000:]
        assert ar.stats[0] == 2
    log = nginx.lines(2)
    check(log, [(f"bytes=-{TAIL}", TAIL), (rng(m["header_offset"], m["offset"]), m["offset"] - m["header_offset"])])


def test_read_many_coalesces(nginx, tz, archives):
    sp = archives["spread"]  # 200 members of 4 KiB, back to back
    url = nginx.publish(sp, "spread.zip")
    every_other = [f"spread/p{i:03d}.bin" for i in range(0, 200, 2)]  # 100 members, ~4 KiB apart
    with tz.open(url) as ar:
        assert ar.stats[0] == 1
        got = ar.read_many(every_other)  # default gap 1 MiB: one request
        assert got == {n: sp.members[n] for n in every_other}
        assert ar.stats[0] == 2
    log = nginx.lines(2)
    first = sp.member(every_other[0])
    # the coalesced range stops where the tail kept from the open begins
    tail_off = fetched_end(sp, len(sp.data))
    check(log, [(f"bytes=-{TAIL}", TAIL),
                (rng(first["header_offset"], tail_off), tail_off - first["header_offset"])])

    # farther apart than max_gap: exactly one request per member, in parallel
    nginx.reset()
    gap = sp.member(every_other[1])["header_offset"] - (first["offset"] + first["size"])
    assert gap > 4096
    with tz.open(url) as ar:
        got = ar.read_many(every_other, max_gap=gap - 1)
        assert got == {n: sp.members[n] for n in every_other}
        # those inside the tail read at open come from it
        fetched = [n for n in every_other if not in_tail(sp, n)]
        assert 80 < len(fetched) < 100
        assert ar.stats[0] == 1 + len(fetched)
    log = nginx.lines(1 + len(fetched))
    assert len(log) == 1 + len(fetched) and all(ln.status == 206 for ln in log)
    assert sorted(ln.range for ln in log[1:]) == sorted(member_range(sp, n) for n in fetched)
    assert sum(ln.body_bytes for ln in log[1:]) == sum(member_bytes(sp, n) for n in fetched)

    # at exactly the gap they coalesce again; touching neighbours coalesce with max_gap=0
    nginx.reset()
    with tz.open(url) as ar:
        assert ar.read_many(every_other, max_gap=gap) == {n: sp.members[n] for n in every_other}
        neighbours = [f"spread/p{i:03d}.bin" for i in range(50, 150)]
        assert ar.read_many(neighbours, max_gap=0) == {n: sp.members[n] for n in neighbours}
        assert ar.stats[0] == 3
    assert len(nginx.lines(3)) == 3


def test_read_ranges_exact(nginx, tz, archives):
    big = archives["big"]
    url = nginx.publish(big, "big.zip")
    want = [(100, 10), (5_000_000, 1000), (5_000_500, 1000), (8_000_000, 7)]
    with tz.open(url) as ar:
        got = ar.read_ranges(want, max_gap=0)
        assert got == [big.data[o:o + n] for o, n in want]
        assert ar.stats[0] == 1 + 3  # the two overlapping ranges share a request
    log = nginx.lines(4)
    assert sorted(ln.range for ln in log[1:]) == ["bytes=100-109", "bytes=5000000-5001499", "bytes=8000000-8000006"]
    assert sum(ln.body_bytes for ln in log) == TAIL + 10 + 1500 + 7


def test_validate_normal_over_url(nginx, cli, tz, archives):
    for key in ("small", "many", "indexed"):
        arc = archives[key]
        url = nginx.publish(arc, f"{key}.zip")
        nginx.reset()
        local = cli.run("validate", arc.path, "--json", ok=True)
        remote = cli.run("validate", url, "--json", ok=True)
        assert json.loads(local.stdout) == json.loads(remote.stdout) == {
            "valid": True, "code": 0, "level": "normal", "message": "valid"}
        log = nginx.lines()
        assert log[0].range == "bytes=0-156" and log[1].range == f"bytes=-{TAIL}"
        assert len(log) == (2 if key == "small" else 3)  # + the directory when it is not in the tail
        assert tz.validate(url) == tz.validate(arc.path) == 0


def test_extract_fetches_members_in_batches(nginx, cli, archives, tmp_path):
    """Extracting a remote archive of small members costs the open plus one
    coalesced request, not one request per member; every file is checked."""
    sp = archives["spread"]  # 200 members of 4 KiB, back to back
    url = nginx.publish(sp, "spread.zip")
    dest = tmp_path / "out"
    p = cli.run("extract", url, "-C", dest, "--skip-header", "--stats", ok=True)
    for name, data in sp.members.items():
        assert (dest / name).read_bytes() == data
    log = nginx.lines(2)
    assert len(log) == 2 and stats_of(p.stderr)[0] == 2
    first = sp.member("spread/p000.bin")
    last = sp.member("spread/p199.bin")
    assert log[1].range == rng(first["header_offset"], fetched_end(sp, last["offset"] + last["size"]))
    assert log[1].if_match is not None
    # a corrupted member is caught by its CRC, and nothing is left of it
    bad = bytearray(sp.data)
    m = sp.member("spread/p050.bin")
    bad[m["offset"] + 10] ^= 0xFF
    (nginx.root / "bad.zip").write_bytes(bytes(bad))
    dest2 = tmp_path / "out2"
    p = cli.run("extract", nginx.base + "/bad.zip", "-C", dest2, "spread/p050.bin", "spread/p051.bin")
    assert p.returncode == 1 and "CRC" in p.stderr
    assert not (dest2 / "spread" / "p050.bin").exists()
