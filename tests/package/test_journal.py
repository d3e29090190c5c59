"""The rollback journal of append and update, seen from Python.

An append is killed for real (SIGKILL from its own progress callback, in a
child process) so that its journal is hot; then readers, recover(), the
next writers, copies of the archive and damaged journals are checked.
tests/cli/test_killpoints.py kills the command at every write system call.
"""
import os
import shutil
import signal
import struct
import subprocess
import sys
import zipfile

import pytest

import tacozip

KILL_MIDWAY = r"""
import os, signal, sys, tacozip
calls = []
def progress(done, total, files_done, files_total):
    calls.append(done)
    if done > 0:  # some new data is on disk: die here, like kill -9
        os.kill(os.getpid(), signal.SIGKILL)
tacozip.append(sys.argv[1], sys.argv[2:], progress=progress, fsync=False)
print("not killed")
"""


@pytest.fixture
def hot(tmp_path):
    """An archive whose append was killed midway: (archive, old bytes, old names, new source)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / ("m%d.bin" % i)).write_bytes(os.urandom(50_000 + i))
    big = src / "big.bin"
    big.write_bytes(os.urandom(24 << 20))  # progress is reported every 4 MiB
    arc = tmp_path / "a.taco"
    tacozip.create(arc, [str(src / ("m%d.bin" % i)) for i in range(3)], entries=[(1, 2)])
    old = arc.read_bytes()
    r = subprocess.run([sys.executable, "-c", KILL_MIDWAY, str(arc), str(big)], capture_output=True)
    assert r.returncode == -signal.SIGKILL, r
    journal = tmp_path / "a.taco.tacozip-journal"
    assert journal.exists()
    assert arc.read_bytes() != old  # the append had written over the old directory
    return arc, old, ["TACO_HEADER", "m0.bin", "m1.bin", "m2.bin"], src


def all_names(path):
    with tacozip.open(path) as ar:
        return ar.names()


def tmp_src(arc):
    return arc.parent / "src"


def test_readers_see_the_old_archive_through_a_hot_journal(hot):
    arc, old, old_names, _ = hot
    with pytest.raises(zipfile.BadZipFile):  # other tools see the torn file
        zipfile.ZipFile(arc).testzip()
    assert all_names(arc) == old_names
    assert tacozip.validate(arc, tacozip.TACOZIP_VALIDATE_DEEP) == tacozip.TACOZ_VALID
    assert tacozip.read_header(arc) == [(1, 2)]
    with tacozip.open(arc) as ar:
        data = ar.read("m1.bin")
    assert data == (tmp_src(arc) / "m1.bin").read_bytes()


def test_recover_restores_the_old_bytes_exactly(hot, tmp_path):
    arc, old, _, _ = hot
    assert tacozip.recover(arc) == "append"
    assert arc.read_bytes() == old
    assert not (tmp_path / "a.taco.tacozip-journal").exists()
    with zipfile.ZipFile(arc) as z:
        assert z.testzip() is None
    assert tacozip.recover(arc) is None  # nothing left to do


def test_a_copied_archive_and_journal_still_recover(hot, tmp_path):
    arc, old, _, _ = hot
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copy(arc, other / "a.taco")  # new inode, new times
    shutil.copy(str(arc) + ".tacozip-journal", other / "a.taco.tacozip-journal")
    assert tacozip.validate(other / "a.taco", tacozip.TACOZIP_VALIDATE_DEEP) == tacozip.TACOZ_VALID
    assert tacozip.recover(other / "a.taco") == "append"
    assert (other / "a.taco").read_bytes() == old


def test_a_journal_beside_a_different_file_is_never_applied(hot, tmp_path):
    arc, old, _, src = hot
    journal = tmp_path / "a.taco.tacozip-journal"
    saved = journal.read_bytes()
    # another archive put in its place by other means than tacozip
    other = tmp_path / "other.taco"
    tacozip.create(other, [str(src / "m2.bin")], ["z.bin"])
    os.replace(other, arc)
    new = arc.read_bytes()
    assert all_names(arc) == ["TACO_HEADER", "z.bin"]
    assert tacozip.recover(arc) == "stale"
    assert arc.read_bytes() == new and not journal.exists()
    # and a create over a hot archive rolls it back first, leaving no journal
    journal.write_bytes(saved)
    shutil.copy(tmp_path / "src" / "m0.bin", tmp_path / "x.bin")
    tacozip.create(arc, [str(tmp_path / "x.bin")])
    assert not journal.exists()
    assert all_names(arc)[-1] == "x.bin"


@pytest.mark.parametrize("damage", ["cut", "flip", "garbage", "empty", "huge-region"])
def test_a_damaged_journal_is_never_applied(hot, tmp_path, damage):
    arc, old, _, _ = hot
    journal = tmp_path / "a.taco.tacozip-journal"
    j = bytearray(journal.read_bytes())
    if damage == "cut":
        j = j[:-1]
    elif damage == "flip":
        j[len(j) // 2] ^= 0x40
    elif damage == "garbage":
        j = bytearray(os.urandom(len(j)))
    elif damage == "empty":
        j = bytearray()
    elif damage == "huge-region":
        struct.pack_into("<Q", j, 48 + 8, 1 << 62)  # the first region's length
    journal.write_bytes(bytes(j))
    torn = arc.read_bytes()
    # readers do not use it (they read the torn file and say what is wrong)
    code = tacozip.validate(arc, tacozip.TACOZIP_VALIDATE_DEEP)
    assert code != tacozip.TACOZ_VALID
    assert tacozip.recover(arc) == "stale"
    assert arc.read_bytes() == torn and not journal.exists()


def test_the_next_append_rolls_back_first(hot, tmp_path):
    arc, old, old_names, src = hot
    extra = tmp_path / "extra.bin"
    extra.write_bytes(b"extra")
    tacozip.append(arc, [str(extra)])
    assert not (tmp_path / "a.taco.tacozip-journal").exists()
    assert all_names(arc)[-4:] == ["m0.bin", "m1.bin", "m2.bin", "extra.bin"]
    assert "big.bin" not in all_names(arc)
    with zipfile.ZipFile(arc) as z:
        assert z.testzip() is None


def test_the_next_update_rolls_back_first(hot, tmp_path):
    arc, old, _, _ = hot
    tacozip.update_header(arc, [(5, 6)])
    assert not (tmp_path / "a.taco.tacozip-journal").exists()
    assert tacozip.read_header(arc) == [(5, 6)]
    with zipfile.ZipFile(arc) as z:
        assert z.testzip() is None and "big.bin" not in z.namelist()


def test_recover_of_a_locked_archive_raises_locked(hot, lock_holder):
    arc, old, _, _ = hot
    holder = lock_holder(arc)
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.recover(arc)
    assert e.value.code == tacozip.TACOZ_ERR_LOCKED
    assert os.path.exists(str(arc) + ".tacozip-journal")
    holder.kill()
    holder.wait()
    assert tacozip.recover(arc) == "append"
    assert arc.read_bytes() == old


def test_recover_refuses_urls_and_missing_files(tmp_path):
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.recover("https://example.com/a.taco")
    assert e.value.code == tacozip.TACOZ_ERR_PARAM
    with pytest.raises(tacozip.TacozipError) as e:
        tacozip.recover(tmp_path / "missing.taco")
    assert e.value.code == tacozip.TACOZ_ERR_IO and "missing.taco" in e.value.detail
