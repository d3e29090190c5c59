"""Pickled archives and member files, reopened in another process (a fresh
``python`` reading the pickle from stdin): over nginx (HTTP), moto (S3,
credentials from the environment, never in the pickle) and local paths.
A reopened archive is pinned to the identity it had (ETag; a local file's
size and mtime): an object replaced in between gives TACOZ_ERR_CHANGED
(-42), never bytes of the new version.  Archives over file objects refuse
to pickle."""

import io
import json
import os
import pickle
import subprocess
import sys

import pytest

import tacozip

ERR_CHANGED = -42
assert tacozip.TACOZ_ERR_CHANGED == ERR_CHANGED

# The other process: unpickle (archive, member file), read, report as JSON.
CHILD = r"""
import json, pickle, sys
import tacozip
name = sys.argv[1]
try:
    ar, f = pickle.loads(sys.stdin.buffer.read())
    out = {"path": ar.path, "names": ar.names(), "member": ar.read(name).hex(), "pos": f.tell(),
           "rest": f.read().hex(), "header": ar.header, "identity": ar.identity}
except tacozip.TacozipError as e:
    out = {"code": e.code, "detail": e.detail}
print(json.dumps(out))
"""


def in_child(blob: bytes, name: str, cwd, env=None) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, name], input=blob, capture_output=True, cwd=cwd,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


ENTRIES = [(157, 1000), (5, 6)]


def make(tmp_path, tag: bytes = b"v1"):
    """An archive: a small member, a 200 KB one (beyond the tail read at
    open), and one that differs between versions."""
    d = tmp_path / ("src_" + tag.decode())
    d.mkdir()
    files = {"a/small.txt": b"small " * 50, "a/big.bin": os.urandom(200_000), "a/tag.txt": tag * 100}
    for n, b in files.items():
        (d / n).parent.mkdir(parents=True, exist_ok=True)
        (d / n).write_bytes(b)
    out = tmp_path / f"arc_{tag.decode()}.taco"
    tacozip.create(out, [d / n for n in files], list(files), entries=ENTRIES)
    return out, files


def check_reopened(got: dict, files, name: str, pos: int):
    assert "code" not in got, got
    assert got["member"] == files[name].hex()
    assert got["pos"] == pos and got["rest"] == files["a/big.bin"][pos:].hex()
    assert [tuple(e) for e in got["header"]] == ENTRIES
    assert set(files) <= set(got["names"])


# --------------------------------------------------------------------------- HTTP (nginx)

def test_pickle_http_reopens_and_refuses_a_replaced_object(nginx_server, tmp_path):
    path, files = make(tmp_path)
    key = "pickle/http.taco"
    dest = nginx_server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(path.read_bytes())
    url = f"{nginx_server.base}/{key}"
    with tacozip.open(url, index_first=True, retries=1) as ar:
        f = ar.open("a/big.bin")
        f.seek(123_456)
        etag = ar.identity
        assert etag  # nginx sends one
        blob = pickle.dumps((ar, f))
        assert pickle.loads(blob)[0].identity == etag  # known before any request, pinned
    got = in_child(blob, "a/small.txt", tmp_path)
    check_reopened(got, files, "a/small.txt", 123_456)
    assert got["identity"] == etag and got["path"] == url

    # replaced in between (other size and mtime: another ETag): -42, no bytes
    other, _ = make(tmp_path, b"v2-longer")
    dest.write_bytes(other.read_bytes())
    st = os.stat(dest)
    os.utime(dest, (st.st_atime, st.st_mtime + 100))
    got = in_child(blob, "a/small.txt", tmp_path)
    assert got["code"] == ERR_CHANGED, got
    assert got["detail"].startswith(url + ": ") and "changed" in got["detail"]
    # the same in this process
    with pytest.raises(tacozip.TacozipError) as e:
        pickle.loads(blob)
    assert e.value.code == ERR_CHANGED


# --------------------------------------------------------------------------- S3 (moto)

def test_pickle_s3_credentials_from_the_environment(moto_s3, tmp_path, monkeypatch):
    path, files = make(tmp_path)
    key = "pickle/s3.taco"
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=path.read_bytes())
    secret, key_id = "pickle-s3cr3t-value", "AKIDPICKLETEST"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    url = f"s3://{moto_s3.bucket}/{key}"
    with tacozip.open(url, endpoint_url=moto_s3.endpoint, s3_addressing="path") as ar:
        assert ar.read("a/tag.txt") == files["a/tag.txt"]
        f = ar.open("a/big.bin")
        f.seek(7)
        blob = pickle.dumps((ar, f))
        etag = ar.identity
    # what the caller gave is kept; credentials from the environment are not
    assert secret.encode() not in blob and key_id.encode() not in blob
    assert moto_s3.endpoint.encode() in blob
    env = dict(os.environ)
    got = in_child(blob, "a/big.bin", tmp_path, env)
    check_reopened(got, files, "a/big.bin", 7)
    assert got["identity"] == etag

    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=make(tmp_path, b"v2")[0].read_bytes())
    got = in_child(blob, "a/big.bin", tmp_path, env)
    assert got["code"] == ERR_CHANGED, got


# --------------------------------------------------------------------------- local files

def test_pickle_local_path(tmp_path):
    path, files = make(tmp_path)
    with tacozip.open(path) as ar:
        f = ar.open("a/big.bin")
        f.seek(199_999)
        blob = pickle.dumps((ar, f))
    got = in_child(blob, "a/tag.txt", tmp_path)
    check_reopened(got, files, "a/tag.txt", 199_999)
    assert got["path"] == str(path)
    # a member file alone brings its archive
    with tacozip.open(path) as ar:
        g = pickle.loads(pickle.dumps(ar.open("a/small.txt")))
        assert g.read() == files["a/small.txt"] and g.tell() == len(files["a/small.txt"])
    # rewritten since (size or mtime differs): -42
    other, _ = make(tmp_path, b"v3")
    path.write_bytes(other.read_bytes())
    got = in_child(blob, "a/tag.txt", tmp_path)
    assert got["code"] == ERR_CHANGED, got
    assert got["detail"].startswith(f"{path}: ")


# --------------------------------------------------------------------------- refusals

def test_file_objects_and_closed_archives_refuse_to_pickle(tmp_path):
    path, _files = make(tmp_path)
    for src in (io.BytesIO(path.read_bytes()), open(path, "rb")):
        with src, tacozip.open(src) as ar:
            with pytest.raises(TypeError, match="cannot pickle a tacozip.TacoArchive over a file object"):
                pickle.dumps(ar)
            with pytest.raises(TypeError, match="over a file object"):
                pickle.dumps(ar.open("a/small.txt"))
    ar = tacozip.open(path)
    f = ar.open("a/small.txt")
    f.close()
    with pytest.raises(ValueError, match="closed tacozip.MemberFile"):
        pickle.dumps(f)
    ar.close()
    with pytest.raises(ValueError, match="closed tacozip.TacoArchive"):
        pickle.dumps(ar)


# --------------------------------------------------------------------------- pickle_directory

def _publish(nginx_server, path, key):
    dest = nginx_server.root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(path.read_bytes())
    return f"{nginx_server.base}/{key}", dest


def _many(tmp_path, n=3000):
    """n small members: a directory larger than the tail read at open."""
    d = tmp_path / "many_src"
    d.mkdir()
    files = {f"m/{i:05d}.bin": os.urandom(40 + i % 13) for i in range(n)}
    for name, data in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    out = tmp_path / "many.taco"
    tacozip.create(out, [d / n for n in files], list(files), entries=ENTRIES)
    return out, files


@pytest.mark.parametrize("size", ["small", "large"])
def test_pickle_directory_unpickles_without_a_request(nginx_server, tmp_path, size):
    """pickle_directory=True: the pickle carries the central directory and end
    records; unpickling makes no request, the first read makes one, with
    If-Match (the pinned ETag), and a replaced object gives -42 at that
    read.  A directory in the tail read at open costs nothing more to
    pickle; a larger one one request, once."""
    path, files = make(tmp_path) if size == "small" else _many(tmp_path)
    url, dest = _publish(nginx_server, path, f"pickle/dir-{size}.taco")
    nginx_server.settled_log()  # nginx logs a request just after its answer: let earlier lines land
    nginx_server.reset_log()
    ar = tacozip.open(url, pickle_directory=True)
    opened = len(nginx_server.settled_log())
    assert opened == (1 if size == "small" else 2)  # the tail (and the directory)
    nginx_server.reset_log()
    blob = pickle.dumps(ar)
    assert len(nginx_server.settled_log()) == (0 if size == "small" else 1)
    nginx_server.reset_log()
    assert pickle.dumps(ar) and nginx_server.settled_log() == []  # read once, kept
    cd_off, cd_size = ar._raw.directory_range()
    assert len(blob) > path.stat().st_size - cd_off  # the bytes are in it

    # in another process (with a member file, as CHILD expects)
    got = in_child(pickle.dumps((ar, ar.open(sorted(files)[0]))), sorted(files)[-1], tmp_path)
    assert "code" not in got, got
    assert got["names"] == ar.names() and got["member"] == files[sorted(files)[-1]].hex()

    nginx_server.reset_log()
    re = pickle.loads(blob)
    assert nginx_server.settled_log() == []  # no request at all
    assert re.names() == ar.names() and re.pickle_directory
    name = sorted(files)[0]
    assert re.read(name) == files[name]
    log = nginx_server.read_log(expect=1)
    assert len(log) == 1 and log[0]["status"] == 206, log
    # a re-pickle in the worker carries the same bytes without reading them
    nginx_server.reset_log()
    assert pickle.loads(pickle.dumps(re)).names() == ar.names()
    assert nginx_server.settled_log() == []

    # replaced since: the unpickled archive lists (from the pickle) but its
    # first read fails with -42, never a byte of the new object
    other, _ = make(tmp_path, b"v9-other")
    dest.write_bytes(other.read_bytes())
    st = os.stat(dest)
    os.utime(dest, (st.st_atime, st.st_mtime + 100))
    re2 = pickle.loads(blob)
    with pytest.raises(tacozip.TacozipError) as e:
        re2.read(name)
    assert e.value.code == ERR_CHANGED
    print(f"{size}: open {opened} requests, pickle {len(blob)} bytes")
    ar.close()


def test_pickle_directory_is_ignored_for_local_files(tmp_path):
    path, files = make(tmp_path)
    ar = tacozip.open(path, pickle_directory=True)
    blob = pickle.dumps(ar)
    assert len(blob) < 1000  # path, flags, stamp: no directory
    assert pickle.loads(blob).read("a/tag.txt") == files["a/tag.txt"]
