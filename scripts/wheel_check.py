"""wheel_check.py - run by scripts/wheel.sh with the Python of a fresh venv
into which only the repaired wheel was installed (no pytest, no -dev
packages used, LD_LIBRARY_PATH empty).  Checks that the installed package and
its tacozip executable work: local reads and writes, and HTTPS reads from a
throwaway nginx whose certificate is verified against a test CA made here.

    python wheel_check.py REPO_ROOT WORK_DIR

Prints one line per check and a closing 'N passed, N failed' line; exits 1
if any check failed.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile

ROOT = pathlib.Path(sys.argv[1]).resolve()
WORK = pathlib.Path(sys.argv[2]).resolve()
sys.path.insert(0, str(ROOT / "tests" / "support"))
from taco_nginx import NginxProcess, find_nginx  # noqa: E402

passed, failed = 0, 0


def check(name, fn):
    global passed, failed
    try:
        fn()
    except Exception as e:  # a failed check is reported, the others still run
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")
    else:
        passed += 1
        print(f"ok   {name}")


WORK.mkdir(parents=True, exist_ok=True)
os.chdir(WORK)
import tacozip  # noqa: E402

BIN = pathlib.Path(sysconfig.get_path("scripts")) / "tacozip"
SITE = pathlib.Path(sysconfig.get_path("platlib"))


def t_imported_from_the_venv():
    assert pathlib.Path(tacozip.__file__).resolve().is_relative_to(SITE.resolve()), tacozip.__file__
    assert os.environ.get("LD_LIBRARY_PATH", "") == "", os.environ.get("LD_LIBRARY_PATH")
    v = tacozip.__version__
    assert v and v == tacozip.get_library_version(), (v, tacozip.get_library_version())


def t_libraries_inside_the_wheel():
    """Every shared library the extension and the executable load, except
    glibc's and zlib's (manylinux policy: always on the system), comes from
    the wheel's own tacozip.libs directory."""
    libs = SITE / "tacozip.libs"
    assert libs.is_dir(), libs
    elves = list((SITE / "tacozip").glob("_tacozip*.so")) + list((SITE / "tacozip.scripts").glob("*"))
    assert len(elves) == 2, elves
    for elf in elves:
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=True,
                             env=dict(os.environ, LD_LIBRARY_PATH="")).stdout
        seen = set()
        for line in out.splitlines():
            parts = line.split()
            if "=>" not in parts:
                continue
            soname, path = parts[0], parts[2]
            assert path != "not", f"{elf.name}: {line.strip()}"
            seen.add(soname.split("-")[0].split(".")[0])
            system_ok = soname.startswith(("libc.so", "libm.so", "libpthread", "libdl.so", "librt.so",
                                           "libresolv.so", "libz.so"))
            if not system_ok:
                assert pathlib.Path(path).resolve().parent == libs.resolve(), f"{elf.name}: {line.strip()}"
        for want in ("libcurl", "libdeflate"):
            assert want in seen, (elf.name, sorted(seen))


def t_local_roundtrip():
    src = WORK / "src"
    (src / "d").mkdir(parents=True, exist_ok=True)
    (src / "meta.bin").write_bytes(b"m" * 1000)
    (src / "d" / "a.txt").write_bytes(b"hello wheel\n")
    out = WORK / "local.taco"
    tacozip.create(str(out), [str(src / "meta.bin"), str(src / "d" / "a.txt")], arc_files=["meta.bin", "d/a.txt"],
                   entries=[(0, 0)])
    with tacozip.open(out) as ar:
        tacozip.update_header(str(out), [ar.span(["meta.bin"], data_only=True)])
        assert ar.read("d/a.txt") == b"hello wheel\n"
    off, length = tacozip.read_header(str(out))[0]
    assert out.read_bytes()[off:off + length] == b"m" * 1000
    assert zipfile.ZipFile(out).testzip() is None


def t_executable():
    assert BIN.is_file(), BIN
    r = subprocess.run([str(BIN), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Usage" in r.stdout, r
    r = subprocess.run([str(BIN), "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown command" in r.stderr, r
    r = subprocess.run([str(BIN), "validate", str(WORK / "local.taco"), "--level", "deep"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r
    r = subprocess.run([sys.executable, "-m", "tacozip", "ls", str(WORK / "local.taco")], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "d/a.txt" in r.stdout, r


def t_https_verified():
    openssl = shutil.which("openssl")
    nginx = find_nginx()
    assert openssl and nginx, "openssl and nginx are needed"
    tls = WORK / "tls"
    www = tls / "www"
    www.mkdir(parents=True, exist_ok=True)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(tls / "key.pem"),
                    "-out", str(tls / "cert.pem")], check=True, capture_output=True)
    shutil.copy(WORK / "local.taco", www / "r.taco")
    srv = NginxProcess(nginx, tls, www, "$server_protocol\\t$status\\t$http_range", listen=" ssl http2",
                       server_extra=f"        ssl_certificate {tls}/cert.pem;\n"
                                    f"        ssl_certificate_key {tls}/key.pem;")
    srv.start()
    try:
        url = srv.base + "/r.taco"
        env = {k: v for k, v in os.environ.items() if k not in ("TACOZIP_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")}
        r = subprocess.run([str(BIN), "header", url], capture_output=True, text=True, env=env)
        assert r.returncode == 1 and ("certificate" in r.stderr.lower() or "ssl" in r.stderr.lower()), r
        env["TACOZIP_CA_BUNDLE"] = str(tls / "cert.pem")
        r = subprocess.run([str(BIN), "cat", url, "d/a.txt"], capture_output=True, env=env)
        assert r.returncode == 0 and r.stdout == b"hello wheel\n", r
        os.environ["TACOZIP_CA_BUNDLE"] = str(tls / "cert.pem")
        with tacozip.open(url) as ar:
            assert ar.read("d/a.txt") == b"hello wheel\n"
            assert ar.read("meta.bin") == b"m" * 1000
    finally:
        srv.stop()


for name, fn in [("imported from the fresh venv, LD_LIBRARY_PATH empty", t_imported_from_the_venv),
                 ("libcurl and libdeflate resolved inside tacozip.libs", t_libraries_inside_the_wheel),
                 ("local create, update, read", t_local_roundtrip),
                 ("the tacozip executable (exit 0, usage error 2, python -m tacozip)", t_executable),
                 ("HTTPS with a verified test CA (command and package)", t_https_verified)]:
    check(name, fn)
print(f"wheel: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
