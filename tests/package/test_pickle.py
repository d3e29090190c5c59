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
