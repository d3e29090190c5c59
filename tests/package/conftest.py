import os
import pathlib
import subprocess

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
