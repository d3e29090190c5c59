"""Shared fixtures for the tacozip CLI test suite.

Environment:
  TACOZIP_BIN          the tacozip binary (default: <repo>/build/tacozip)
  TACOZIP_PEER_PYTHON  python of a venv holding PyPI tacozip 0.13.0
                       (default: /tmp/tacozip-peer-venv/bin/python;
                       scripts/setup.sh creates it)

A missing binary, peer or external tool makes the tests that need it FAIL
with a message saying what to install; nothing is skipped.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

DEFAULT_BIN = os.path.join(REPO, "build", "tacozip")
DEFAULT_PEER = "/tmp/tacozip-peer-venv/bin/python"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: multi-gigabyte ZIP64 tests (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "http: tests that read over HTTP from a local server (need libcurl; "
                            "deselected by scripts/test.sh nocurl)")
    config.addinivalue_line("markers", "crash: kill -9 and fault-injection runs of the writers (tests/crash; "
                            "not repeated by scripts/test.sh nocurl, whose writers are the same code)")
    config.addinivalue_line("markers", "noproc: runs the command with /proc hidden (not with an ASan build, "
                            "whose runtime needs /proc: deselected by scripts/test.sh asan)")
    config.addinivalue_line("markers", "threads: tests of the command's threaded paths (run under TSan by "
                            "scripts/test.sh tsan)")


class Runner:
    """Runs the tacozip binary and returns the CompletedProcess (bytes)."""

    def __init__(self, path):
        self.path = path

    def __call__(self, *args, input=None, cwd=None, preexec_fn=None, timeout=1800, env=None):
        return subprocess.run([self.path] + [str(a) for a in args], input=input, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=preexec_fn, timeout=timeout, env=env)

    def ok(self, *args, **kw):
        """Run and require exit status 0; return stdout (bytes)."""
        r = self(*args, **kw)
        assert r.returncode == 0, "tacozip %s exited %d\nstdout: %r\nstderr: %r" % (
            " ".join(str(a) for a in args), r.returncode, r.stdout[-2000:], r.stderr[-2000:])
        return r.stdout

    def ls(self, archive):
        """ls --json as a list of dicts."""
        return json.loads(self.ok("ls", archive, "--json"))

    def header(self, archive):
        return json.loads(self.ok("header", archive, "--json"))


@pytest.fixture(scope="session")
def tacozip_bin():
    path = os.environ.get("TACOZIP_BIN", DEFAULT_BIN)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("tacozip binary not found at %s: build it (cmake -S . -B build && cmake --build build) "
                    "or set TACOZIP_BIN" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def tz(tacozip_bin):
    return Runner(tacozip_bin)


def need_tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail("external tool '%s' is not installed (scripts/setup.sh installs unzip, zip, "
                    "p7zip-full and libarchive-tools)" % name, pytrace=False)
    return path


@pytest.fixture(scope="session")
def tools():
    """Callable: tools('7z') -> path, failing the test if it is missing."""
    return need_tool


class Peer:
    """Runs Python snippets inside the peer venv (PyPI tacozip 0.13.0)."""

    def __init__(self, python):
        self.python = python

    def run(self, code, *args):
        r = subprocess.run([self.python, "-c", code] + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        assert r.returncode == 0, "peer python failed:\n%s" % r.stderr.decode(errors="replace")
        return r.stdout.decode()

    def read_header(self, path):
        out = self.run("import sys, json, tacozip; print(json.dumps(tacozip.read_header(sys.argv[1])))", path)
        return [tuple(x) for x in json.loads(out)]

    def create(self, out, sources, names, entries):
        code = ("import sys, json, tacozip; a = json.loads(sys.argv[1]); "
                "tacozip.create(a['out'], a['src'], arc_files=a['names'], "
                "entries=[tuple(e) for e in a['entries']])")
        self.run(code, json.dumps({"out": str(out), "src": [str(s) for s in sources],
                                   "names": names, "entries": entries}))


@pytest.fixture(scope="session")
def peer():
    python = os.environ.get("TACOZIP_PEER_PYTHON", DEFAULT_PEER)
    if not os.path.exists(python):
        pytest.fail("peer venv python not found at %s: run scripts/setup.sh (installs PyPI tacozip 0.13.0 "
                    "into /tmp/tacozip-peer-venv) or set TACOZIP_PEER_PYTHON" % python, pytrace=False)
    r = subprocess.run([python, "-c", "import tacozip; print(tacozip.__version__)"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.fail("peer python %s cannot import tacozip: %s" % (python, r.stderr.decode(errors="replace")),
                    pytrace=False)
    return Peer(python)
