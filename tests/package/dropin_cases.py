"""Drop-in cases: the same functions run against any ``tacozip`` module.

Run in-process with our package, and as a script under the original
package's virtual environment (``python dropin_cases.py WORKDIR``), which
prints the results as JSON.  test_dropin.py compares the two.  Each case
returns JSON-serialisable data: a value, or {"raises": ...} describing the
exception.
"""

import json
import os
import pathlib
import struct
import sys
import zipfile


def _outcome(fn):
    try:
        return {"value": fn()}
    except Exception as e:  # noqa: BLE001 - the exception is the result
        return {"raises": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                "code": getattr(e, "code", None), "str": str(e)}


def _masked(path):
    """Archive bytes with the DOS time/date fields zeroed (they hold the
    creation time), so two writers' outputs can be compared byte for byte."""
    b = bytearray(pathlib.Path(path).read_bytes())
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            b[info.header_offset + 10: info.header_offset + 14] = b"\0\0\0\0"
    # central directory records: signature PK\1\2, time/date at +12
    eocd = b.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<II", b, eocd + 12)
    pos = cd_off
    while pos < cd_off + cd_size:
        assert b[pos:pos + 4] == b"PK\x01\x02"
        b[pos + 12: pos + 16] = b"\0\0\0\0"
        nlen, xlen, clen = struct.unpack_from("<HHH", b, pos + 28)
        pos += 46 + nlen + xlen + clen
    return b.hex()


def run_all(tacozip, work):
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    src = []
    for i, size in enumerate([0, 1, 1000, 65536 + 7]):
        p = work / f"src{i}.bin"
        p.write_bytes(bytes((k * 7 + i) % 256 for k in range(size)))
        src.append(p)
    text = work / "plain.txt"
    text.write_bytes(b"not a zip file " * 20)
    short = work / "short.txt"
    short.write_bytes(b"tiny")
    missing = work / "does-not-exist.taco"
    has = lambda name: hasattr(tacozip, name)  # noqa: E731
    r = {}

    def arc(name):
        return str(work / name)

    # creation and header round trips
    r["create_default"] = _outcome(lambda: tacozip.create(arc("d.taco"), [str(p) for p in src]))
    r["read_default"] = _outcome(lambda: [list(e) for e in tacozip.read_header(arc("d.taco"))])
    r["create_entries"] = _outcome(lambda: tacozip.create(arc("e.taco"), src, entries=[(10, 20), (30, 40)]))
    r["read_entries"] = _outcome(lambda: [list(e) for e in tacozip.read_header(pathlib.Path(arc("e.taco")))])
    r["create_zero_first"] = _outcome(lambda: tacozip.create(arc("z.taco"), src, entries=[(0, 0), (5, 6)]))
    r["read_zero_first"] = _outcome(lambda: [list(e) for e in tacozip.read_header(arc("z.taco"))])
    r["create_seven"] = _outcome(lambda: tacozip.create(arc("s.taco"), src, entries=[(i + 1, i + 2) for i in range(7)]))
    r["read_seven"] = _outcome(lambda: [list(e) for e in tacozip.read_header(arc("s.taco"))])
    names = ["a/one.bin", "b/two.bin", "c/\u00e9t\u00e9.bin", "four"]
    r["create_named"] = _outcome(lambda: tacozip.create(arc("n.taco"), src, arc_files=names, entries=[(1, 1)]))
    r["layout_named"] = _outcome(lambda: [[i.filename, i.header_offset, i.file_size, i.CRC, i.compress_type]
                                           for i in zipfile.ZipFile(arc("n.taco")).infolist()])
    r["bytes_named"] = _outcome(lambda: _masked(arc("n.taco")))
    r["bytes_seven"] = _outcome(lambda: _masked(arc("s.taco")))

    # argument errors
    r["too_many_entries"] = _outcome(lambda: tacozip.create(arc("x.taco"), src, entries=[(1, 1)] * 8))
    r["names_mismatch"] = _outcome(lambda: tacozip.create(arc("x.taco"), src, arc_files=["only-one"]))
    r["update_too_many"] = _outcome(lambda: tacozip.update_header(arc("e.taco"), [(1, 1)] * 8))
    r["missing_source"] = _outcome(lambda: tacozip.create(arc("x.taco"), [str(work / "nope.bin")]))

    # read_header from buffers
    head = pathlib.Path(arc("e.taco")).read_bytes()
    r["buf_157"] = _outcome(lambda: [list(e) for e in tacozip.read_header(head[:157])])
    r["buf_165"] = _outcome(lambda: [list(e) for e in tacozip.read_header(head[:165])])
    r["buf_256"] = _outcome(lambda: [list(e) for e in tacozip.read_header(head[:256])])
    r["buf_short"] = _outcome(lambda: tacozip.read_header(head[:100]))
    r["buf_garbage"] = _outcome(lambda: tacozip.read_header(b"\x00" * 200))
    r["read_missing"] = _outcome(lambda: tacozip.read_header(str(missing)))
    r["read_text"] = _outcome(lambda: tacozip.read_header(str(text)))
    r["read_short"] = _outcome(lambda: tacozip.read_header(str(short)))

    # update in place
    r["update"] = _outcome(lambda: tacozip.update_header(arc("d.taco"), [(100, 200), (300, 400), (0, 0)]))
    r["read_updated"] = _outcome(lambda: [list(e) for e in tacozip.read_header(arc("d.taco"))])
    r["update_text"] = _outcome(lambda: tacozip.update_header(str(text), [(1, 2)]))
    r["text_unchanged"] = _outcome(lambda: text.read_bytes() == b"not a zip file " * 20)
    r["update_missing"] = _outcome(lambda: tacozip.update_header(str(missing), [(1, 2)]))
    r["zipfile_reads_updated"] = _outcome(lambda: zipfile.ZipFile(arc("d.taco")).testzip())

    # exceptions and constants
    r["exc_default_message"] = _outcome(lambda: [str(tacozip.TacozipError(-1)), tacozip.TacozipError(-4).code])
    r["exc_custom_message"] = _outcome(lambda: str(tacozip.TacozipError(-9999, "custom")))
    r["exc_unknown_code"] = _outcome(lambda: str(tacozip.TacozipError(-9999)))
    import importlib

    exc_mod = importlib.import_module(tacozip.__name__ + ".exceptions")
    cfg_mod = importlib.import_module(tacozip.__name__ + ".config")
    r["exc_hierarchy"] = _outcome(lambda: [issubclass(getattr(exc_mod, n), exc_mod.TacozipError)
                                           for n in ("TacozipIOError", "TacozipValidationError", "TacozipLibraryError")])
    r["exc_is_exported"] = _outcome(lambda: tacozip.TacozipError is exc_mod.TacozipError)
    r["config_messages"] = _outcome(lambda: {str(k): v for k, v in cfg_mod.ERROR_MESSAGES.items() if k >= -7})
    r["config_header_size"] = _outcome(lambda: [cfg_mod.TACO_HEADER_SIZE, cfg_mod.TACO_HEADER_MAX_ENTRIES])
    r["constants"] = _outcome(lambda: {n: getattr(tacozip, n) for n in dir(tacozip)
                                       if n.startswith(("TACOZ", "TACO_HEADER"))})
    r["version_is_str"] = _outcome(lambda: isinstance(tacozip.get_library_version(), str))
    r["self_check"] = _outcome(lambda: tacozip.self_check())
    r["has_version"] = _outcome(lambda: isinstance(tacozip.__version__, str))

    # validate / detect_format (the 0.11 line has them)
    if has("validate"):
        bad_crc = work / "badcrc.taco"
        b = bytearray(pathlib.Path(arc("e.taco")).read_bytes())
        b[14] ^= 0xFF
        bad_crc.write_bytes(bytes(b))
        for lvl_name in ("TACOZIP_VALIDATE_QUICK", "TACOZIP_VALIDATE_NORMAL", "TACOZIP_VALIDATE_DEEP"):
            lvl = getattr(tacozip, lvl_name)
            for label, path in (("good", arc("e.taco")), ("badcrc", str(bad_crc)), ("text", str(text)),
                                ("short", str(short)), ("missing", str(missing))):
                r[f"validate_{label}_{lvl_name[-4:].lower()}"] = _outcome(lambda p=path, l=lvl: tacozip.validate(p, l))
        r["validate_default_level"] = _outcome(lambda: tacozip.validate(arc("e.taco")))
    if has("detect_format"):
        for label, path in (("good", arc("e.taco")), ("text", str(text)), ("missing", str(missing))):
            r[f"detect_{label}"] = _outcome(lambda p=path: tacozip.detect_format(p))

    # values the original changes silently (test_dropin.py: ours refuses them)
    def written(name, **kw):
        tacozip.create(arc(name), src, **kw)
        return [list(e) for e in tacozip.read_header(arc(name))]

    r["entry_negative"] = _outcome(lambda: written("neg.taco", entries=[(-1, 5)]))
    r["entry_too_big"] = _outcome(lambda: written("big.taco", entries=[(2 ** 64 + 1, 5)]))
    r["entry_largest"] = _outcome(lambda: written("max.taco", entries=[(2 ** 64 - 1, 5)]))
    r["entry_float"] = _outcome(lambda: written("float.taco", entries=[(1.5, 5)]))
    r["update_negative"] = _outcome(lambda: [written("u.taco", entries=[(1, 2)]),
                                             tacozip.update_header(arc("u.taco"), [(3, -2)]),
                                             [list(e) for e in tacozip.read_header(arc("u.taco"))]])
    r["name_nul"] = _outcome(lambda: [tacozip.create(arc("nul.taco"), src[:1], ["a\0/../../b"]),
                                      zipfile.ZipFile(arc("nul.taco")).namelist()])

    def single_str():
        for name in "abc":
            (work / name).write_bytes(name.encode())
        here = os.getcwd()
        os.chdir(work)
        try:
            tacozip.create(arc("str.taco"), "abc")
            return zipfile.ZipFile(arc("str.taco")).namelist()
        finally:
            os.chdir(here)

    r["sources_single_str"] = _outcome(single_str)
    return r


if __name__ == "__main__":
    import tacozip as _t

    print(json.dumps(run_all(_t, sys.argv[1])))
