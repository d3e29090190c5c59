import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PEER_NEW = os.environ.get("TACOZIP_PEER_PYTHON", "/tmp/tacozip-peer-venv/bin/python")
PEER_OLD = os.environ.get("TACOZIP_PEER_OLD_PYTHON", "/tmp/tacozip-peer-0114/bin/python")


def _peer(python):
    if not os.path.exists(python):
        pytest.fail(f"peer interpreter {python} missing: run scripts/setup.sh")
    out = subprocess.run([python, "-c", "import tacozip, sys; print(tacozip.__file__)"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.fail(f"peer tacozip not importable with {python}: {out.stderr}")
    return python


@pytest.fixture(scope="session")
def peer_new():
    """Python of a venv holding the original tacozip 0.13.0."""
    return _peer(PEER_NEW)


@pytest.fixture(scope="session")
def peer_old():
    """Python of a venv holding the original tacozip 0.11.4 (has validate)."""
    return _peer(PEER_OLD)


# Servers for the seed workflows (test_workflows.py): nginx, moto S3, and the
# per-test ``remote`` backend (runs each remote test over HTTP and over S3).
from conftest_servers import moto_s3, nginx_server, remote  # noqa: E402,F401


@pytest.fixture
def lock_holder():
    """hold(path) starts a process that holds the archive's writers' lock
    (an OFD write lock on the whole file, as a running writer does) and
    returns once it is held; the process is killed at the end of the test."""
    procs = []

    def hold(path):
        p = subprocess.Popen([sys.executable, "-c", (
            "import fcntl, os, struct, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
            "fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hh4xqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0))\n"
            "print('held', flush=True); time.sleep(30)\n"), str(path)], stdout=subprocess.PIPE)
        procs.append(p)
        assert p.stdout.readline().strip() == b"held"
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()
