"""tacozip create s3://... (the command, straight to S3) against moto with
IAM authentication on, directly and through tests/remote/s3faultproxy.py:
multipart and one-PUT archives read back byte for byte and validated deep,
header entries planned by name, standard input streamed, failures that
leave no object and no pending upload, credentials refused before any part
is sent, append refused on a URL."""

import os
import random
import subprocess
import zipfile

import pytest

from conftest import BUCKET, assert_nothing_left

MIB = 1 << 20


@pytest.fixture
def files(tmp_path):
    """Three files, 13 MiB in all: three parts of 5 MiB."""
    rnd = random.Random(5)
    out = {}
    for name, n in (("data/a.bin", 6 * MIB + 17), ("data/b.bin", 7 * MIB - 3), ("COLLECTION.json", 40)):
        p = tmp_path / "src" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(n))
        out[name] = p
    return out


def as_args(files):
    args = []
    for name, p in files.items():
        args += [p, "--as", name]
    return args


def ops(proxy, key):
    return [r["op"] for r in proxy.requests() if r["path"].endswith(f"/{BUCKET}/{key}")]


def test_multipart_archive_is_the_local_one(cli, s3, proxy, files, tmp_path):
    local = tmp_path / "local.taco"
    entries = ["-e", "data:COLLECTION.json", "-e", "span:data/", "-e", "directory"]
    cli.run("create", local, *as_args(files), *entries, "--mtime", "1700000000", ok=True)
    env = s3.env(AWS_ENDPOINT_URL=proxy.endpoint)
    cli.run("create", f"s3://{BUCKET}/w/multi.taco", *as_args(files), *entries, "--mtime", "1700000000",
            "--part-size", str(5 * MIB), "--upload-parallel", "2", env=env, ok=True)
    body = s3.client.get_object(Bucket=BUCKET, Key="w/multi.taco")["Body"].read()
    assert body == local.read_bytes()  # byte for byte the archive written locally
    got = ops(proxy, "w/multi.taco")
    assert got[0] == "create" and got[-1] == "complete" and got.count("part") == 3, got
    # part 1 (which holds the header) is sent last
    parts = [r["part"] for r in proxy.requests() if r["op"] == "part"]
    assert parts[-1] == 1, parts
    cli.run("validate", "--level", "deep", f"s3://{BUCKET}/w/multi.taco", env=s3.env(), ok=True)
    head = cli.run("header", f"s3://{BUCKET}/w/multi.taco", env=s3.env(), ok=True).stdout.decode().split()
    with zipfile.ZipFile(local) as z:
        info = z.getinfo("COLLECTION.json")
    assert int(head[1]) == 40 and int(head[0]) == info.header_offset + 30 + len("COLLECTION.json")
    assert int(head[4]) + int(head[5]) == len(body)  # the directory entry runs to the end


def test_small_archive_is_one_put(cli, s3, proxy, tmp_path):
    src = tmp_path / "small.txt"
    src.write_bytes(b"hello" * 1000)
    env = s3.env(AWS_ENDPOINT_URL=proxy.endpoint)
    cli.run("create", f"s3://{BUCKET}/w/small.taco", src, "-e", "data:small.txt", env=env, ok=True)
    assert ops(proxy, "w/small.taco") == ["put"]
    cli.run("validate", "--level", "deep", f"s3://{BUCKET}/w/small.taco", env=s3.env(), ok=True)
    out = cli.run("cat", f"s3://{BUCKET}/w/small.taco", "small.txt", env=s3.env(), ok=True).stdout
    assert out == b"hello" * 1000


def test_stdin_streamed_to_s3(cli, s3, tmp_path):
    blob = random.Random(9).randbytes(11 * MIB + 5)
    p = subprocess.run([cli.binary, "create", f"s3://{BUCKET}/w/stdin.taco", "-", "--as", "dump.bin",
                        "-e", "data:dump.bin", "--part-size", str(5 * MIB)], input=blob, capture_output=True,
                       env=cli.env(s3.env()))
    assert p.returncode == 0, p.stderr
    out = cli.run("cat", f"s3://{BUCKET}/w/stdin.taco", "dump.bin", env=s3.env(), ok=True).stdout
    assert out == blob
    cli.run("validate", "--level", "deep", f"s3://{BUCKET}/w/stdin.taco", env=s3.env(), ok=True)


@pytest.mark.parametrize("fault", [
    dict(op="part", action="status", part=2, status=500),
    dict(op="part", action="status", part=3, status=403, code="AccessDenied", message="Access Denied"),
    dict(op="part", action="cut", part=2, after=1 << 20),
    dict(op="complete", action="status", status=500),
    dict(op="complete", action="error200"),
])
def test_failure_leaves_nothing(cli, s3, proxy, files, fault):
    key = "w/fail-%s-%s.taco" % (fault["op"], fault["action"])
    proxy.rule(**fault)
    env = s3.env(AWS_ENDPOINT_URL=proxy.endpoint, TACOZIP_HTTP_RETRIES="2")
    p = cli.run("create", f"s3://{BUCKET}/{key}", *as_args(files), "--part-size", str(5 * MIB), env=env, ok=False)
    assert f"s3://{BUCKET}/{key}" in p.stderr and "S3" in p.stderr, p.stderr
    assert ops(proxy, key)[-1] == "abort", ops(proxy, key)
    assert_nothing_left(s3, key)


def test_transient_failure_is_retried(cli, s3, proxy, files):
    proxy.rule("part", "status", part=2, status=503, times=1)
    env = s3.env(AWS_ENDPOINT_URL=proxy.endpoint)
    cli.run("create", f"s3://{BUCKET}/w/retried.taco", *as_args(files), "--part-size", str(5 * MIB), env=env,
            ok=True)
    assert ops(proxy, "w/retried.taco").count("part") == 4  # 3 parts, one sent twice
    cli.run("validate", "--level", "deep", f"s3://{BUCKET}/w/retried.taco", env=s3.env(), ok=True)


@pytest.mark.parametrize("which,code", [("key", "InvalidAccessKeyId"), ("secret", "SignatureDoesNotMatch")])
def test_refused_credentials_before_any_part(cli, s3, proxy, files, which, code):
    over = {"AWS_ACCESS_KEY_ID": "AKIANOTAKEY00000000"} if which == "key" else {"AWS_SECRET_ACCESS_KEY": "wrong"}
    env = s3.env(AWS_ENDPOINT_URL=proxy.endpoint, **over)
    p = cli.run("create", f"s3://{BUCKET}/w/creds.taco", *as_args(files), "--part-size", str(5 * MIB), env=env,
                ok=False)
    assert code in p.stderr and "CreateMultipartUpload" in p.stderr, p.stderr
    assert ops(proxy, "w/creds.taco") == ["create"]  # nothing of the data was sent
    assert_nothing_left(s3, "w/creds.taco")


def test_unknown_entry_sends_nothing(cli, s3, proxy, files):
    env = s3.env(AWS_ENDPOINT_URL=proxy.endpoint)
    p = cli.run("create", f"s3://{BUCKET}/w/entry.taco", *as_args(files), "-e", "data:missing", env=env, ok=False)
    assert 'names "missing", which is not a member' in p.stderr
    assert ops(proxy, "w/entry.taco") == []


def test_index_and_other_schemes_refused(cli, s3, files):
    p = cli.run("create", f"s3://{BUCKET}/w/idx.taco", *as_args(files), "--index", env=s3.env(), ok=False)
    assert "written to local files only" in p.stderr
    p = subprocess.run([cli.binary, "create", "https://example.com/a.taco", *map(str, as_args(files))],
                       capture_output=True, text=True, env=cli.env(s3.env()))
    assert p.returncode == 2 and "local files and s3:// URLs only" in p.stderr, p.stderr
    assert_nothing_left(s3, "w/idx.taco")


def test_append_refused_on_remote(cli, s3, files):
    p = cli.run("append", f"s3://{BUCKET}/w/any.taco", files["COLLECTION.json"], env=s3.env(), ok=False)
    assert "cannot append to a remote archive (objects are immutable)" in p.stderr
