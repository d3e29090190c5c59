"""fuzz_python.py - atheris harness for the Python package's reading API.

Each input is read as an archive from a file object (io.BytesIO) and through
every reading entry point a user has: tacozip.open (members, names, find,
read, read_many, read_range, open + read/seek, span, header, verify),
read_header, validate / validate_detail at every level, the taco://
filesystem (ls, find, info, cat), and decode_span on the bytes as a span.  The library may refuse an input with
TacozipError (or ValueError/KeyError/FileNotFoundError/IsADirectoryError
where the API documents them); anything else, or a crash of the
interpreter, is a finding.  Run by scripts/fuzz.sh:

    python fuzz/fuzz_python.py -max_total_time=20 CORPUS_DIR SEED_DIR
"""

import io
import sys

import atheris

with atheris.instrument_imports():
    import tacozip
    from tacozip.fsspec import TacoFileSystem

EXPECTED = (tacozip.TacozipError, ValueError, KeyError, FileNotFoundError, IsADirectoryError)


def exercise(data: bytes) -> None:
    # the bytes as a fetched span (header-only clients), from 0 and from 157
    for start in (0, 157):
        for partial in (False, True):
            try:
                got = tacozip.decode_span(data[start:], start, partial=partial)
            except EXPECTED:
                continue
            for m in got:
                assert start <= m.header_offset < m.offset and m.offset + len(m.data) <= len(data)
                assert bytes(m.data) == data[m.offset:m.offset + len(m.data)]
    for level in (0, 1, 2):
        code = tacozip.validate(io.BytesIO(data), level)
        assert isinstance(code, int) and code <= 0
        code2, message = tacozip.validate_detail(io.BytesIO(data), level)
        assert code2 == code and isinstance(message, str)
        message.encode("utf-8")  # always valid text
    try:
        tacozip.read_header(io.BytesIO(data))
    except EXPECTED:
        pass
    try:
        ar = tacozip.open(io.BytesIO(data))
    except EXPECTED:
        return
    with ar:
        names = ar.names()
        members = ar.members
        assert [m.name for m in members] == names and len(ar) == len(names)
        for m in members[:64]:
            assert m.name in ar
            assert 0 <= m.offset and m.offset + m.size <= ar.size
            for call in (lambda: ar.read(m.name), lambda: ar.read_range(m.offset, min(m.size, 100)),
                         lambda: ar.span([m.name]), lambda: ar.verify(m.name)):
                try:
                    call()
                except EXPECTED:
                    pass
            try:
                f = ar.open(m.name)
                f.read(7)
                f.seek(max(0, m.size - 3))
                assert len(f.read()) <= 3
            except EXPECTED:
                pass
        try:
            ar.read_many(names[:16])
        except EXPECTED:
            pass
        try:
            ar.header
        except EXPECTED:
            pass
    try:
        fs = TacoFileSystem(io.BytesIO(data))
    except EXPECTED:
        return
    for p in fs.find("", withdirs=True)[:64]:
        info = fs.info(p)
        assert info["type"] in ("file", "directory")
        if info["type"] == "file":
            try:
                fs.cat(p)
            except EXPECTED:
                pass
        else:
            fs.ls(p)


def test_one_input(data: bytes) -> None:
    exercise(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
