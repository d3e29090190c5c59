"""One source of truth for codes and messages: the package's TACOZ_*
constants, ERROR_MESSAGES and exceptions come from the C library's table
(tacozip_error_name / tacozip_strerror), and the original package's codes
keep the original's wording."""

import json
import pathlib
import re
import subprocess

import pytest

import tacozip
from tacozip import _tacozip

# The original package (0.13.0 and 0.11.4): its codes and wording.
ORIGINAL_MESSAGES = {
    -1: "I/O error (open/read/write/close/flush)",
    -2: "An error occurred in libzip",
    -3: "Header bytes malformed or unexpected",
    -4: "Invalid argument(s)",
    -5: "File not found in archive",
    -6: "File already exists in archive",
    -7: "Archive too large",
}


def test_every_library_code_has_a_constant_and_a_message():
    table = _tacozip.codes()
    codes = [c for c, _n, _m in table]
    # the whole table, 0 down to -99, asked from the library one code at a time
    assert codes == sorted(codes, reverse=True) and codes[0] == 0
    # exactly the codes of include/tacozip.h (aliases aside)
    header = (pathlib.Path(__file__).resolve().parents[2] / "include" / "tacozip.h").read_text()
    macros = {m[1]: int(m[2]) for m in re.finditer(r"^#define TACOZ_(\w+) \(?(-?\d+)\)?", header, re.M)}
    assert {n: c for c, n, _m in table} == {n: c for n, c in macros.items() if n != "VALID"}
    assert len(table) == 41
    for code, name, message in table:
        assert getattr(tacozip, "TACOZ_" + name) == code, name
        assert tacozip.ERROR_NAMES[code] == "TACOZ_" + name
        assert message == _tacozip.strerror(code) and message
        if code != 0:
            assert tacozip.ERROR_MESSAGES[code] == message
            assert str(tacozip.TacozipError(code)) == f"tacozip error {code}: {message}"
        assert "TACOZ_" + name in tacozip.__all__
    # and nothing beyond the table
    assert set(tacozip.ERROR_MESSAGES) == set(codes) - {0}
    names = {n for n in dir(tacozip) if n.startswith("TACOZ_")}
    assert names == {"TACOZ_" + n for _c, n, _m in table} | {"TACOZ_VALID", "TACOZ_ERR_COMPRESSED"}


@pytest.mark.parametrize("name,code", [
    ("TACOZ_INVALID_INDEX", -33), ("TACOZ_INVALID_STORED_SIZE", -34), ("TACOZ_INVALID_DESCRIPTOR", -35),
    ("TACOZ_ERR_NETWORK", -43), ("TACOZ_ERR_RANGE_IGNORED", -44),
    ("TACOZ_ERR_SPLIT", -45), ("TACOZ_ERR_INDEXED", -46), ("TACOZ_ERR_NO_REMOTE", -47),
    ("TACOZ_ERR_NOT_REMOTE", -48), ("TACOZ_ERR_LOCKED", -49), ("TACOZ_ERR_COMPRESSED", -9), ("TACOZ_VALID", 0),
])
def test_codes_added_in_1_1_have_constants_and_messages(name, code):
    assert getattr(tacozip, name) == code
    if code:
        assert not str(tacozip.TacozipError(code)).endswith(f"Unknown error code: {code}")
        assert tacozip.ERROR_MESSAGES[code] == _tacozip.strerror(code)


def test_network_failure_message_is_known():
    """What used to read 'Unknown error code: -43'."""
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.read_header("http://127.0.0.1:1/x.taco", retries=0)
    assert e.value.code == tacozip.TACOZ_ERR_NETWORK
    assert str(e.value) == "tacozip error -43: network or server error"
    assert e.value.detail.startswith("http://127.0.0.1:1/x.taco: ")
    assert isinstance(e.value, tacozip.TacozipIOError)


def test_original_wording_kept(peer_new, peer_old):
    for python in (peer_new, peer_old):
        out = subprocess.run([python, "-c", "import json, tacozip.config as c; "
                              "print(json.dumps({k: v for k, v in c.ERROR_MESSAGES.items()}))"],
                             capture_output=True, text=True, check=True)
        theirs = {int(k): v for k, v in json.loads(out.stdout).items()}
        assert theirs == ORIGINAL_MESSAGES
        for code, message in theirs.items():
            assert tacozip.ERROR_MESSAGES[code] == message
            assert str(tacozip.TacozipError(code)) == f"tacozip error {code}: {message}"


def test_exception_fields():
    e = tacozip.TacozipError(-43)
    assert e.code == -43 and e.detail is None
    assert str(tacozip.TacozipError(-43, "custom")) == "tacozip error -43: custom"
    assert str(tacozip.TacozipError(-9999)) == "tacozip error -9999: Unknown error code: -9999"
    # raised by the library: the detail is the library's message
    with pytest.raises(tacozip.TacozipError) as ex:
        tacozip.read_header(b"\0" * 157)
    assert ex.value.code == tacozip.TACOZ_ERR_INVALID_HEADER and ex.value.detail


def test_other_constants_from_the_library():
    assert (tacozip.TACO_HEADER_SIZE, tacozip.TACO_HEADER_MAX_ENTRIES, tacozip.TACO_HEADER_NAME,
            tacozip.TACO_HEADER_NAME_LEN, tacozip.TACO_HEADER_PAYLOAD_SIZE) == (157, 7, "TACO_HEADER", 11, 116)
    assert tacozip.TACO_HEADER_SIZE == _tacozip.TACO_HEADER_SIZE
    assert (tacozip.TACOZIP_VALIDATE_QUICK, tacozip.TACOZIP_VALIDATE_NORMAL, tacozip.TACOZIP_VALIDATE_DEEP) == \
           (_tacozip.TACOZIP_VALIDATE_QUICK, _tacozip.TACOZIP_VALIDATE_NORMAL, _tacozip.TACOZIP_VALIDATE_DEEP)
    assert (tacozip.TACOZIP_FORMAT_UNKNOWN, tacozip.TACOZIP_FORMAT_ZIP32, tacozip.TACOZIP_FORMAT_ZIP64) == (0, 1, 2)
