"""taco:// (tacozip.fsspec.TacoFileSystem) against a misbehaving server
(tests/remote/faultserver.py): a server that ignores Range is never a silent
full download, and an object replaced between two reads is the library's
changed-object error (TACOZ_ERR_CHANGED), never mixed bytes, through every
way fsspec reads (cat, cat_file, cat_ranges, member files with and without a
cache, pandas)."""

import pytest

from conftest import ERR_CHANGED, ERR_RANGE_IGNORED, require

fsspec = require("fsspec")
MiB = 1 << 20


def _replacement(data: bytes) -> bytes:
    return bytes(b ^ 0x5A for b in data)  # same size, other bytes, other ETag


def test_range_ignored_is_refused_without_downloading(fault, tz, archives):
    """The end records are 8 MiB into a 200 body: the open fails at once with
    TACOZ_ERR_RANGE_IGNORED, and the server never sends more than a sliver."""
    big = archives["big"]
    url = fault.put("big.zip", big.data)
    fault.fault("big.zip", "ignore_range")
    with pytest.raises(tz.TacozipError) as e:
        fsspec.filesystem("taco", fo=url)
    assert e.value.code == ERR_RANGE_IGNORED and "ignores Range" in e.value.detail
    with pytest.raises(tz.TacozipError) as e:
        fsspec.open("taco://big/m3.bin::" + url, "rb").open()
    assert e.value.code == ERR_RANGE_IGNORED
    log = fault.requests(2)
    assert len(log) == 2 and all(r.status == 200 and r.cut for r in log), log
    assert fault.bytes_sent < MiB, (fault.bytes_sent, len(big.data))


def test_range_ignored_after_open_fails_the_read(fault, tz, archives):
    """Range honoured at open, ignored later: a member far into the object
    is refused (-44), not downloaded from the start."""
    big = archives["big"]
    url = fault.put("big.zip", big.data)
    fs = fsspec.filesystem("taco", fo=url)
    fault.clear()
    fault.fault("big.zip", "ignore_range")
    for read in (lambda: fs.cat("big/m6.bin"), lambda: fs.open("big/m6.bin", cache_type="none").read(100)):
        with pytest.raises(tz.TacozipError) as e:
            read()
        assert e.value.code == ERR_RANGE_IGNORED
    assert fault.bytes_sent < MiB, fault.bytes_sent


@pytest.mark.parametrize("honor_if_match", [True, False])
def test_replaced_between_two_reads_is_changed_never_mixed(fault, tz, archives, honor_if_match):
    far = archives["far"]  # the small/* members lie beyond the tail: each read is a request
    url = fault.put("a.zip", far.data)
    name = "small/s10.bin"
    want = far.members[name]
    fs = fsspec.filesystem("taco", fo=url)
    f = fs.open(name, cache_type="none")
    assert f.read(100) == want[:100]
    fault.fault("a.zip", "replace", after=0, content=_replacement(far.data), honor_if_match=honor_if_match)
    reads = [lambda: f.read(), lambda: fs.cat(name), lambda: fs.cat_file(name, start=5, end=50),
             lambda: fs.cat_ranges([name, "small/s01.bin"], [0, 0], [10, 10], on_error="raise"),
             lambda: fs.cat(["small/s02.bin", "small/s03.bin"]),
             lambda: fs.open("small/s04.bin").read()]  # adaptive (the default for a URL)
    for read in reads:
        with pytest.raises(tz.TacozipError) as e:
            read()
        assert e.value.code == ERR_CHANGED and "changed" in e.value.detail
    assert f.tell() == 100  # nothing of the new object was handed out
    # a new filesystem reads the new object (here not a ZIP at all)
    with pytest.raises(tz.TacozipError) as e:
        fsspec.filesystem("taco", fo=url)
    assert e.value.code == tz.TACOZ_INVALID_NO_EOCD
