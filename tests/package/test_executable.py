"""The package ships the real ``tacozip`` executable (built from
cli/tacozip.c) in the environment's scripts directory; the command is not
compiled into the extension, so its exit() can never end a Python process."""
import os
import pathlib
import subprocess
import sys
import sysconfig

import tacozip
import tacozip.__main__


def _exe():
    p = pathlib.Path(os.path.dirname(sys.executable)) / "tacozip"
    assert p.is_file() and os.access(p, os.X_OK), f"no tacozip executable beside {sys.executable}"
    return p


def test_installed_command_is_the_executable():
    exe = _exe()
    head = exe.read_bytes()[:4096]
    if not head.startswith(b"\x7fELF"):
        # auditwheel repair moves an executable to <site>/tacozip.scripts and
        # leaves a launcher that execs it
        assert head.startswith(b"#!") and b"tacozip.scripts/tacozip" in head, head[:200]
        real = pathlib.Path(sysconfig.get_path("platlib")) / "tacozip.scripts" / "tacozip"
        assert real.read_bytes()[:4] == b"\x7fELF"
    assert tacozip.__main__.executable() == str(exe)


def test_help_and_usage_error():
    r = subprocess.run([str(_exe()), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("Usage: tacozip"), r
    r = subprocess.run([str(_exe()), "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command 'bogus'" in r.stderr and r.stdout == "", r


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "tacozip", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"tacozip {tacozip.__version__}", r
    r = subprocess.run([sys.executable, "-m", "tacozip", "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr, r


def test_bad_command_leaves_this_process_alone(monkeypatch, capfd):
    """main() runs the command as a child: a usage error is its exit status 2,
    and this interpreter goes on."""
    monkeypatch.setattr(sys, "argv", ["tacozip", "bogus"])
    assert tacozip.__main__.main() == 2
    assert "unknown command" in capfd.readouterr().err
    assert tacozip.read_header  # still here


def test_extension_does_not_contain_the_command():
    ext = pathlib.Path(tacozip._tacozip.__file__).read_bytes()
    assert b"Usage: tacozip COMMAND" not in ext
