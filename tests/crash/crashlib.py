"""Shared pieces of the crash harness (killtrials.py, faultinject.py).

A *scenario* is one writing operation of the tacozip command (create,
append, update, extract) with its inputs, the archive as it is before (the
"old state") and as it must be after a successful run (the "new state").
The scenarios are built from the inputs alone: member names and bytes come
from the files given to the command, the TACO_HEADER payload from the
format's layout (116 bytes: count, 3 pad bytes, 7 x (u64 offset, u64
length)), so the code under test never describes its own expected output.

After a run (killed, or failed by an injected fault) ``Scenario.check``
says what is left:

  recover   when the command has ``recover`` (``tacozip recover --help``
            exits 0), ``validate --level deep`` must pass before any
            recovery (readers overlay a hot journal), then
            ``tacozip recover ARCHIVE`` runs and must exit 0
            (only when the archive or its journal exists: recovering a
            never-created archive is not asked for)
  archive   ``validate --level deep`` exits 0, ``zipfile.ZipFile.testzip()``
            is None, and the members (names in order, bytes) are exactly the
            old set or exactly the new set; for update, ``header --json``
            agrees with the state found; "absent" is a state too (create of a
            new file: old = no archive)
  extract   the archive is untouched and valid; in the destination each file
            is a member's, complete and byte-exact, or absent ("mixed" when
            some members are there and others not, which extraction of
            several files cannot avoid)
  leftover  nothing else exists in the archive's directory (no
            ``*.tmp.*``, ``*.part``, ``*.tacozip-journal``, ...) nor in the
            destination (only members' files and their parent directories)
"""
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import zipfile

ARCHIVE = "arc.taco"
MTIME = "1700000000"
HEADER_NAME = "TACO_HEADER"
JOURNAL_SUFFIX = ".tacozip-journal"


def default_workdir():
    """/dev/shm (tmpfs) when usable: steady timings (no write-back stalls of
    a disk) and no gigabytes written to a disk; else the system's default."""
    d = "/dev/shm"
    if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
        return d
    return None


def header_payload(entries):
    slots = list(entries) + [(0, 0)] * (7 - len(entries))
    return struct.pack("<B3x" + "QQ" * 7, len(entries), *[v for p in slots for v in p])


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def file_sha1(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def entry_args(entries):
    out = []
    for o, l in entries:
        out += ["-e", "%d:%d" % (o, l)]
    return out


def run(argv, timeout=300, env=None):
    return subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env)


def has_recover(bin_path):
    """True when the command has 'recover' (its help exits 0)."""
    try:
        return run([bin_path, "recover", "--help"], timeout=60).returncode == 0
    except OSError:
        return False


def members_of(path):
    """[(name, sha1)] of an archive in directory order, after testzip().
    Raises ValueError with the reason when zipfile rejects it."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ValueError("zipfile: bad CRC in member %r" % bad)
            out = []
            for info in zf.infolist():
                h = hashlib.sha1()
                with zf.open(info) as f:
                    while True:
                        b = f.read(1 << 20)
                        if not b:
                            break
                        h.update(b)
                out.append((info.filename, h.hexdigest()))
            return out
    except ValueError:
        raise
    except Exception as e:  # BadZipFile, OSError, EOFError, struct.error, zlib.error...: a damaged archive
        raise ValueError("zipfile: %s: %s" % (type(e).__name__, e))


def tree(root):
    """Relative paths under root: files as 'a/b', directories as 'a/'."""
    out = []
    if not os.path.isdir(root):
        return out
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dirs:
            out.append(os.path.normpath(os.path.join(rel, n)) + "/")
        for n in files:
            out.append(os.path.normpath(os.path.join(rel, n)))
    return sorted(out)


class Outcome:
    def __init__(self):
        self.state = None         # "old", "new", "mixed" or None (corrupt)
        self.problems = []        # why it is corrupt
        self.leftovers = []       # stray paths (relative to the trial directory)

    @property
    def corrupt(self):
        return self.state is None

    def clean(self, t):
        """Messages on one line each, with the trial directory shown as T."""
        f = lambda m: " ".join(m.replace(t, "T").split())[:400]
        self.problems = [f(m) for m in self.problems]

    def describe(self):
        parts = []
        if self.problems:
            parts.append("; ".join(self.problems))
        if self.leftovers:
            parts.append("left behind: " + ", ".join(self.leftovers[:6]))
        return " | ".join(parts) or self.state


class Scenario:
    """One operation.  Subclasses set: name, old (member list or None),
    new (member list), and implement build(), setup(), argv().

    Layout of a trial directory T:
      T/arc/arc.taco  the archive (or the create target); nothing else may
                      stay in T/arc
      T/dest/         extract's destination (extract only)
    Inputs live in the template directory, outside T.
    """
    name = None
    extract = False
    stdin = None                  # a file given to the command as its standard input
    old_entries = [(157, 6)]
    new_entries = None            # update/create: the entries the command sets

    def __init__(self, bin_path, tmpl, size, rng):
        self.bin = bin_path
        self.tmpl = tmpl
        self.size = size          # bytes of bulk data (scaled per scenario)
        self.rng = rng
        os.makedirs(tmpl, exist_ok=True)
        self.inputs = []          # [(path, name)]
        self.old = None           # [(name, sha1)] or None: no archive
        self.new = None
        self.old_path = None      # template of the old archive
        self.recover = has_recover(bin_path)

    # ---- building -----------------------------------------------------------------
    def data(self, n):
        return self.rng.randbytes(n)

    def write_input(self, rel, data, name=None):
        p = os.path.join(self.tmpl, "in", rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.inputs.append((p, name or rel))
        return p

    def make_archive(self, path, files, entries):
        """files: [(name, bytes)]; made with the command under test, then
        checked against the expectation built here."""
        src = os.path.join(self.tmpl, "oldsrc")
        args = []
        for i, (n, b) in enumerate(files):
            p = os.path.join(src, "%d" % i)
            os.makedirs(src, exist_ok=True)
            with open(p, "wb") as f:
                f.write(b)
            args += [p, "--as", n]
        r = run([self.bin, "create", path] + args + entry_args(entries) + ["--mtime", MTIME, "--no-progress"])
        if r.returncode != 0:
            raise SystemExit("harness: cannot make %s: %s" % (path, r.stderr.decode(errors="replace")))
        shutil.rmtree(src)
        expect = [(HEADER_NAME, sha1(header_payload(entries)))] + [(n, sha1(b)) for n, b in files]
        got = members_of(path)
        if got != expect:
            raise SystemExit("harness: %s does not hold what was given to create" % path)
        return expect

    def input_members(self):
        return [(n, file_sha1(p)) for p, n in self.inputs]

    def input_args(self):
        out = []
        for p, n in self.inputs:
            out += [p, "--as", n]
        return out

    # ---- a trial --------------------------------------------------------------------
    def archive(self, t):
        return os.path.join(t, "arc", ARCHIVE)

    def setup(self, t):
        """Fresh trial directory t holding the old state."""
        if os.path.exists(t):
            shutil.rmtree(t)
        os.makedirs(os.path.join(t, "arc"))
        if self.old_path:
            shutil.copyfile(self.old_path, self.archive(t))

    def argv(self, t):
        raise NotImplementedError

    def check(self, t):
        """What a run left in trial directory t (see the module's doc)."""
        o = Outcome()
        a = self.archive(t)
        journal = a + JOURNAL_SUFFIX
        if self.recover and not self.extract and os.path.exists(a):
            # before any recovery, tacozip itself reads a valid archive (a hot
            # journal is overlaid: the old state)
            r = run([self.bin, "validate", a, "--level", "deep"])
            if r.returncode != 0:
                o.problems.append("before recover, validate --level deep exited %d: %s" % (
                    r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()))
        if self.recover and (os.path.exists(a) or os.path.exists(journal)):
            r = run([self.bin, "recover", a])
            if r.returncode != 0:
                o.problems.append("recover exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace").strip()))
        if self.extract:
            self.check_extract(t, o)
        else:
            self.check_archive(t, o)
        if o.problems:
            o.state = None
        o.clean(t)
        allowed = {ARCHIVE} if (self.old is not None or os.path.exists(a)) else set()
        for p in tree(os.path.join(t, "arc")):
            if p not in allowed:
                o.leftovers.append("arc/" + p)
        return o

    def check_archive(self, t, o):
        a = self.archive(t)
        if not os.path.exists(a):
            if self.old is None:
                o.state = "old"
            else:
                o.problems.append("the archive is gone")
            return
        r = run([self.bin, "validate", a, "--level", "deep"])
        if r.returncode != 0:
            o.problems.append("validate --level deep exited %d: %s" % (
                r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()))
        try:
            got = members_of(a)
        except ValueError as e:
            o.problems.append(str(e))
            return
        if got == self.old:
            o.state = "old"
        elif got == self.new:
            o.state = "new"
        else:
            o.problems.append("members are neither the old set (%d) nor the new set (%d): %d members%s" % (
                len(self.old or []), len(self.new), len(got), self.diff_hint(got)))
            return
        want = self.old_entries if o.state == "old" else (self.new_entries or self.old_entries)
        r = run([self.bin, "header", a, "--json"])
        try:
            h = json.loads(r.stdout) if r.returncode == 0 else None
        except ValueError:
            h = None
        if h is None or [tuple(e) for e in h["entries"]] != [tuple(e) for e in want]:
            o.problems.append("header --json (exit %d) %r is not the %s entries %r" % (
                r.returncode, h, o.state, want))

    def diff_hint(self, got):
        ref = self.new if len(got) >= len(self.old or []) else (self.old or [])
        for i, (g, w) in enumerate(zip(got, ref)):
            if g != w:
                return "; first difference at #%d %r" % (i, g[0])
        return ""

    def check_extract(self, t, o):
        raise NotImplementedError


# ---- the scenarios -------------------------------------------------------------------------

class Create(Scenario):
    """create on an existing target (or, with replace=False, on no file)."""
    name = "create"
    new_entries = [(1000, 2000), (5, 6)]

    def __init__(self, *a, replace=True, **kw):
        super().__init__(*a, **kw)
        if not replace:
            self.name = "create-new"
        s = self.size
        self.write_input("big.bin", self.data(s // 2))
        self.write_input("mid.bin", self.data(s // 4))
        self.write_input("d/quarter.bin", self.data(s // 4 - 64 * 1024))
        for i in range(16):
            self.write_input("d/small/%02d.txt" % i, self.data(4096))
        if replace:
            self.old_path = os.path.join(self.tmpl, "old.taco")
            self.old = self.make_archive(self.old_path, [("old1.txt", b"old one\n"), ("old2.bin", self.data(300000))],
                                         self.old_entries)
        self.new = [(HEADER_NAME, sha1(header_payload(self.new_entries)))] + self.input_members()

    def argv(self, t):
        return [self.bin, "create", self.archive(t)] + self.input_args() + entry_args(self.new_entries) + \
            ["--mtime", MTIME, "--no-progress"]


class CreateStdin(Create):
    """create replacing a target, its largest member read from standard
    input (the streaming writer: spooled, then written)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, replace=True, **kw)
        self.name = "create-stdin"
        self.stdin = self.inputs[0][0]  # big.bin

    def argv(self, t):
        args = self.input_args()
        assert args[0] == self.stdin
        return [self.bin, "create", self.archive(t), "-"] + args[1:] + entry_args(self.new_entries) + \
            ["--mtime", MTIME, "--no-progress"]


def stdin_of(sc):
    """The standard input of a scenario's command: its file, or nothing."""
    import contextlib
    import subprocess
    return open(sc.stdin, "rb") if sc.stdin else contextlib.nullcontext(subprocess.DEVNULL)


class Append(Scenario):
    name = "append"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        s = self.size
        self.old_path = os.path.join(self.tmpl, "old.taco")
        self.old = self.make_archive(self.old_path, [("first.txt", b"first\n"), ("data/x.bin", self.data(max(s // 8, 4096))),
                                                     ("empty", b""), ("data/y.bin", self.data(20000))],
                                     self.old_entries)
        self.write_input("new/one.bin", self.data(s // 2))
        self.write_input("new/two.bin", self.data(s // 4))
        for i in range(8):
            self.write_input("new/s%d.txt" % i, self.data(3000 + i))
        self.write_input("new/three.bin", self.data(s // 4 - 64 * 1024))
        self.new = self.old + self.input_members()

    def argv(self, t):
        return [self.bin, "append", self.archive(t)] + self.input_args() + ["--mtime", MTIME, "--no-progress"]


class Update(Scenario):
    name = "update"
    new_entries = [(4242, 77), (1 << 40, 1 << 33), (9, 0)]

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.old_path = os.path.join(self.tmpl, "old.taco")
        self.old = self.make_archive(self.old_path, [("a.txt", b"a" * 100), ("b.bin", self.data(50000))],
                                     self.old_entries)
        self.new = [(HEADER_NAME, sha1(header_payload(self.new_entries)))] + self.old[1:]

    def argv(self, t):
        return [self.bin, "update", self.archive(t)] + entry_args(self.new_entries)


class Extract(Scenario):
    name = "extract"
    extract = True

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        s = self.size
        files = [("TOP.txt", b"top\n")]
        for i in range(4):
            files.append(("data/part%d.bin" % i, self.data(s // 4)))
        for i in range(12):
            files.append(("data/small/%02d.txt" % i, self.data(5000 + i)))
        files.append(("last.bin", self.data(s // 2)))
        self.old_path = os.path.join(self.tmpl, "old.taco")
        self.old = self.make_archive(self.old_path, files, self.old_entries)
        self.new = self.old
        self.files = dict(self.old)   # name -> sha1, TACO_HEADER included (extracted too)
        self.dirs = set()
        for n in self.files:
            parts = n.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                self.dirs.add("/".join(parts[:i]) + "/")
        st = os.stat(self.old_path)
        self.stamp = (st.st_size, st.st_mtime_ns)

    def setup(self, t):
        if os.path.exists(t):
            shutil.rmtree(t)
        os.makedirs(os.path.join(t, "arc"))
        os.link(self.old_path, self.archive(t))   # extract only reads it; checked below

    def argv(self, t):
        return [self.bin, "extract", self.archive(t), "-C", os.path.join(t, "dest"), "--no-progress"]

    def check_extract(self, t, o):
        a = self.archive(t)
        st = os.stat(a) if os.path.exists(a) else None
        if not st or (st.st_size, st.st_mtime_ns) != self.stamp:
            o.problems.append("the archive read by extract was changed or removed")
        else:
            r = run([self.bin, "validate", a, "--level", "deep"])
            if r.returncode != 0:
                o.problems.append("validate --level deep of the source archive exited %d" % r.returncode)
        dest = os.path.join(t, "dest")
        present = 0
        for p in tree(dest):
            if p.endswith("/"):
                if p not in self.dirs:
                    o.leftovers.append("dest/" + p)
                continue
            if p in self.files:
                if file_sha1(os.path.join(dest, p)) != self.files[p]:
                    o.problems.append("dest/%s is not the member's bytes (size %d)" % (
                        p, os.path.getsize(os.path.join(dest, p))))
                else:
                    present += 1
            else:
                o.leftovers.append("dest/" + p)
        o.state = "old" if present == 0 else "new" if present == len(self.files) else "mixed"


SCENARIOS = {"create": Create, "append": Append, "update": Update, "extract": Extract}


def make(op, bin_path, tmpl, size, seed):
    rng = random.Random("%s/%s" % (seed, op))
    if op == "create-new":
        return Create(bin_path, tmpl, size, rng, replace=False)
    if op == "create-stdin":
        return CreateStdin(bin_path, tmpl, size, rng)
    if op == "create-replace":
        s = Create(bin_path, tmpl, size, rng, replace=True)
        s.name = "create-replace"
        return s
    return SCENARIOS[op](bin_path, tmpl, size, rng)
