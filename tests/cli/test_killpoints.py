"""kill -9 at every system call that changes a file, for every write path.

strace runs the command and delivers SIGKILL when it enters the N-th call
of one system call (write, pwrite64, fsync, ftruncate, linkat, rename,
unlink, ...), for every N that a clean run makes: the command dies before
or after every single change it makes to the disk, in turn.  After each
kill:

- tacozip itself reads the old or the new archive (a hot journal is
  overlaid): ``validate --level deep`` passes and the names are exactly
  the old or the new ones;
- ``tacozip recover`` exits 0, then the file is byte for byte the old
  archive or the new one (zipfile's testzip agrees), and no journal or
  temporary file is left in the directory.

The random-moment kills of tests/crash/ complement this (a kill in the
middle of one large write).

"no-proc" runs the command where /proc is hidden (a mount namespace with
an empty /proc; needs root, which CI has): unnamed files cannot be linked
there, so the named fallback is used, and what a kill leaves
(ARCHIVE.tacozip-new) must be removed by ``recover``.  Those cases carry
the marker "noproc": an ASan build cannot run without /proc (its runtime
reads /proc/self/maps), so scripts/test.sh asan deselects them; the
Release command runs them (step cli).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile

import pytest

pytestmark = pytest.mark.crash

MTIME = "1700000000"
# the system calls that change files or names (what strace -e inject=... names)
WRITE_CALLS = ("write", "pwrite64", "fsync", "fdatasync", "ftruncate", "linkat", "rename", "renameat",
               "renameat2", "unlink", "unlinkat", "openat")


def need_strace():
    path = shutil.which("strace")
    assert path, "strace is needed for these tests (scripts/setup.sh installs it)"
    return path


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def listing(d):
    out = []
    for root, dirs, files in os.walk(d):
        for n in files:
            out.append(os.path.relpath(os.path.join(root, n), d))
    return sorted(out)


def traced_env():
    """LeakSanitizer cannot run under ptrace: an ASan build of the command
    runs here without it (scripts/test.sh asan)."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
    return env


HIDE_PROC = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /proc && exec "$@"', "sh"]


def wrap(cmd, no_proc):
    if not no_proc:
        return cmd
    assert shutil.which("unshare") and os.geteuid() == 0, "the no-proc cases need root and unshare(1)"
    return HIDE_PROC + cmd


def stdin_of(path):
    import contextlib
    return open(path, "rb") if path else contextlib.nullcontext(subprocess.DEVNULL)


def count_calls(strace, argv, cwd, no_proc=False, stdin=None):
    """How many times a clean run enters each of WRITE_CALLS ("stdin": a
    file given as the standard input)."""
    log = os.path.join(cwd, "..", "strace.log")
    with stdin_of(stdin) as f:
        subprocess.run(wrap([strace, "-f", "-qq", "-o", log, "-e", "trace=" + ",".join(WRITE_CALLS)] + argv,
                            no_proc), cwd=cwd, stdin=f,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=traced_env())
    counts = {}
    with open(log) as f:
        for line in f:
            m = re.match(r"\d+\s+(\w+)\(", line)
            if m and m.group(1) in WRITE_CALLS:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    os.unlink(log)
    return counts


def run_killed(strace, argv, cwd, call, n, no_proc=False, stdin=None):
    with stdin_of(stdin) as f:
        return subprocess.run(wrap([strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + call,
                                    "-e", "inject=%s:signal=KILL:when=%d" % (call, n)] + argv, no_proc), cwd=cwd,
                              stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                              env=traced_env())


def names_of(tz, archive):
    return [m["name"] for m in tz.ls(archive)]


def prepare(tmp_path, tz, name):
    base = tmp_path / name
    base.mkdir()
    src = base / "src"
    src.mkdir()
    for i, size in enumerate((300_000, 5, 700_000)):
        (src / ("m%d.bin" % i)).write_bytes(os.urandom(size))
    (src / "n0.bin").write_bytes(os.urandom(400_000))
    (src / "n1.bin").write_bytes(b"new member")
    work = base / "work"
    work.mkdir()
    tz.ok("create", work / "a.taco", "--mtime", MTIME, "-e", "1:2", src / "m0.bin", src / "m1.bin", src / "m2.bin")
    return base, src, work


# each write path: the arguments after "tacozip", run in the work directory
def cases(src):
    return {
        "append": ["append", "a.taco", "--mtime", MTIME, str(src / "n0.bin"), str(src / "n1.bin")],
        "update": ["update", "a.taco", "-e", "7:8", "-e", "9:10"],
        "create-replace": ["create", "a.taco", "--mtime", MTIME, str(src / "n0.bin"), str(src / "n1.bin")],
        "create-new": ["create", "b.taco", "--mtime", MTIME, str(src / "n0.bin"), str(src / "n1.bin")],
        # entries planned by name (tacozip_create_planned)
        "create-planned": ["create", "a.taco", "--mtime", MTIME, str(src / "n0.bin"), str(src / "n1.bin"),
                           "-e", "data:n1.bin", "-e", "directory"],
        # the streaming writer: n0.bin from standard input (STDIN below)
        "create-stdin": ["create", "a.taco", "--mtime", MTIME, str(src / "n1.bin"), "-", "--as", "n0.bin",
                         "-e", "span:n"],
    }


# the standard input of a case, relative to the source directory
STDIN = {"create-stdin": "n0.bin"}


@pytest.mark.parametrize("proc", ["proc", pytest.param("no-proc", marks=pytest.mark.noproc)])
@pytest.mark.parametrize("op", ["append", "update", "create-replace", "create-new"])
def test_kill_at_every_write_call_leaves_old_or_new(tz, tmp_path, op, proc):
    kill_at_every_write_call(tz, tmp_path, op, proc)


@pytest.mark.parametrize("op", ["create-planned", "create-stdin"])
def test_kill_at_every_write_call_planned_and_streaming(tz, tmp_path, op):
    """The same for create with entries planned by name and for the
    streaming writer (standard input), which replace a.taco."""
    kill_at_every_write_call(tz, tmp_path, op, "proc")


def kill_at_every_write_call(tz, tmp_path, op, proc):
    strace = need_strace()
    no_proc = proc == "no-proc"
    base, src, work = prepare(tmp_path, tz, op)
    argv = [tz.path] + cases(src)[op]
    target = "b.taco" if op == "create-new" else "a.taco"
    pristine = base / "pristine"
    shutil.copytree(work, pristine)
    # the new state, from a clean run on a copy
    clean = base / "clean"
    shutil.copytree(pristine, clean)
    stdin = src / STDIN[op] if op in STDIN else None
    counts = count_calls(strace, argv, clean, no_proc, stdin)
    assert ("linkat" in counts) != no_proc or op == "update" and not no_proc, counts
    new_digest = digest(clean / target)
    new_names = names_of(tz, clean / target)
    old_digest = digest(pristine / target) if (pristine / target).exists() else None
    old_names = names_of(tz, pristine / target) if old_digest else None
    assert new_digest != old_digest
    total = sum(counts.values())
    assert total >= 8, counts  # the write path really was traced
    seen = {"old": 0, "new": 0, "absent": 0}
    for call, k in sorted(counts.items()):
        for n in range(1, k + 1):
            shutil.rmtree(work)
            shutil.copytree(pristine, work)
            r = run_killed(strace, argv, work, call, n, no_proc, stdin)
            where = "%s (%s) killed at %s #%d (exit %d, stderr %r)" % (op, proc, call, n, r.returncode,
                                                                       r.stderr[-300:])
            path = work / target
            if path.exists():
                # tacozip reads the old or the new archive before any recovery
                v = tz("validate", "--level", "deep", path)
                assert v.returncode == 0, where + ": validate before recover: %r" % v.stdout
                assert names_of(tz, path) in (old_names, new_names), where
                if op == "update":
                    assert tz.header(path)["entries"] in ([[1, 2]], [[7, 8], [9, 10]]), where
            if no_proc and not path.exists() and (work / (target + ".tacozip-new")).exists():
                # the named temporary of a killed first create: the next
                # create of the name removes it (nothing else does)
                seen["absent"] += 1
                with stdin_of(stdin) as f:
                    subprocess.run(argv, cwd=work, check=True, env=traced_env(), stdin=f)
            rec = tz("recover", path) if path.exists() else None
            if rec is not None:
                assert rec.returncode == 0, where + ": recover: %r" % rec.stderr
            left = sorted(os.listdir(work))
            assert left == sorted(os.listdir(pristine)) + ([target] if op == "create-new" and path.exists() else []), \
                where + ": left behind: %r" % left
            if not path.exists():
                assert op == "create-new", where
                seen["absent"] += 1
                continue
            d = digest(path)
            assert d in (old_digest, new_digest), where + ": neither the old nor the new bytes"
            with zipfile.ZipFile(path) as z:
                assert z.testzip() is None, where
            seen["old" if d == old_digest else "new"] += 1
    # both outcomes were reached: the kills really fell before and after the commit
    assert seen["new"] >= 1, seen
    assert seen["old"] + seen["absent"] >= 1, seen


def test_kill_during_recover_then_recover_again(tz, tmp_path):
    strace = need_strace()
    base, src, work = prepare(tmp_path, tz, "recover")
    old_digest = digest(work / "a.taco")
    argv = [tz.path] + cases(src)["append"]
    # an append killed after its journal and some data: a hot journal
    r = run_killed(strace, argv, work, "write", 3)
    assert r.returncode != 0
    assert (work / "a.taco.tacozip-journal").exists(), sorted(os.listdir(work))
    hot = base / "hot"
    shutil.copytree(work, hot)
    rec_argv = [tz.path, "recover", "a.taco"]
    scratch = base / "scratch"
    shutil.copytree(hot, scratch)
    counts = count_calls(strace, rec_argv, scratch)
    assert sum(counts.values()) >= 3, counts
    for call, k in sorted(counts.items()):
        for n in range(1, k + 1):
            shutil.rmtree(work)
            shutil.copytree(hot, work)
            run_killed(strace, rec_argv, work, call, n)
            where = "recover killed at %s #%d" % (call, n)
            assert tz("validate", "--level", "deep", work / "a.taco").returncode == 0, where
            out = tz.ok("recover", work / "a.taco")
            assert digest(work / "a.taco") == old_digest, where + ": " + out.decode()
            assert sorted(os.listdir(work)) == ["a.taco"], where


@pytest.mark.parametrize("proc", ["proc", pytest.param("no-proc", marks=pytest.mark.noproc)])
def test_extract_killed_anywhere_leaves_only_complete_files(tz, tmp_path, proc):
    strace = need_strace()
    no_proc = proc == "no-proc"
    base, src, work = prepare(tmp_path, tz, "extract")
    want = {n: (src / n).read_bytes() for n in ("m0.bin", "m1.bin", "m2.bin")}
    argv = [tz.path, "extract", str(work / "a.taco"), "-C", "out", "--skip-header"]
    scratch = base / "scratch"
    scratch.mkdir()
    counts = count_calls(strace, argv, scratch, no_proc)
    assert sorted(os.listdir(scratch / "out")) == sorted(want)
    assert sum(counts.values()) >= 6, counts
    counts_seen = set()
    for call, k in sorted(counts.items()):
        for n in range(1, k + 1):
            d = base / ("x-%s-%d" % (call, n))
            d.mkdir()
            run_killed(strace, argv, d, call, n, no_proc)
            where = "extract (%s) killed at %s #%d" % (proc, call, n)
            files = listing(d / "out") if (d / "out").exists() else []
            orphans = [f for f in files if no_proc and f.endswith(".tacozip-new")]
            if orphans:
                # the named temporaries of the fallback: the next extraction
                # of those names removes them
                assert len(orphans) == 1 and orphans[0][:-len(".tacozip-new")] in want, where + ": %r" % files
                subprocess.run(argv + ["--overwrite"], cwd=d, check=True, env=traced_env())
                assert listing(d / "out") == sorted(want), where
                files = [f for f in files if f not in orphans]
            assert set(files) <= set(want), where + ": left behind %r" % files
            for f in files:
                assert (d / "out" / f).read_bytes() == want[f], where + ": " + f + " is not complete"
            counts_seen.add(len(files))
            shutil.rmtree(d)
    # the kills fell before the first file and after some were complete
    assert 0 in counts_seen and max(counts_seen) >= 2, counts_seen
