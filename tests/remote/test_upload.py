"""The S3 uploader (src/source/upload.c) against moto with IAM
authentication on (every request's SigV4 signature verified), through
tests/c/upload_driver, and through tests/remote/s3faultproxy.py for the
failures: a part refused or cut, CompleteMultipartUpload failing or
answering 200 with an <Error>.  Whatever fails leaves no object and no
pending multipart upload.

The driver: $TACOZIP_UPLOAD_DRIVER, else tests/c/upload_driver in the
build directory of $TACOZIP_BIN (so that the asan and tsan steps run it
with their sanitizer), else <repo>/build/tests/c/upload_driver."""

import json
import os
import pathlib
import random
import re
import subprocess
import zlib

import pytest

from conftest import BUCKET, ROOT, assert_nothing_left

MIB = 1 << 20


def driver_path() -> str:
    if os.environ.get("TACOZIP_UPLOAD_DRIVER"):
        return os.environ["TACOZIP_UPLOAD_DRIVER"]
    if os.environ.get("TACOZIP_BIN"):
        return str(pathlib.Path(os.environ["TACOZIP_BIN"]).parent / "tests" / "c" / "upload_driver")
    return str(ROOT / "build" / "tests" / "c" / "upload_driver")


@pytest.fixture(scope="session")
def driver() -> str:
    d = driver_path()
    if not (os.path.isfile(d) and os.access(d, os.X_OK)):
        pytest.fail(f"upload driver {d!r} not found: build the C tests (cmake --build build) or set "
                    f"TACOZIP_UPLOAD_DRIVER", pytrace=False)
    return d


class Run:
    def __init__(self, p: subprocess.CompletedProcess):
        self.rc = p.returncode
        self.stderr = p.stderr
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        assert len(lines) == 1, (p.stdout, p.stderr)
        self.stats = json.loads(lines[0])


def upload(driver, s3, proxy, path, key, *args, env=None, expect=0, timeout=180) -> Run:
    """Run the driver on "path" to s3://BUCKET/key through "proxy" (which
    logs the requests; moto's recorder is not used: its file is written
    by several threads at once, and large parallel requests interleave)."""
    e = dict(os.environ)
    for k, v in s3.env(AWS_ENDPOINT_URL=proxy.endpoint).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    e.update(ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    e.update(env or {})
    p = subprocess.run([driver, str(path), f"s3://{BUCKET}/{key}", *map(str, args)], capture_output=True,
                       text=True, env=e, timeout=timeout)
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
    return Run(p)


def data_file(tmp_path, n: int, seed: int = 7) -> tuple:
    data = random.Random(seed).randbytes(n)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def ops_of(proxy, key):
    """(S3 operation, part number) of each request for "key", in the order
    the proxy received them."""
    return [(r["op"], r["part"]) for r in proxy.requests() if r["path"].endswith(f"/{BUCKET}/{key}")]


def object_bytes(s3, key) -> bytes:
    return s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def assert_parts_answered_before_abort(proxy):
    """Every UploadPart was answered before AbortMultipartUpload arrived
    (a part stored after the abort would be left behind)."""
    ev = list(proxy.events)
    first_abort = ev.index(("start", "abort"))
    assert ("start", "part") not in ev[first_abort:] and ("end", "part") not in ev[first_abort:], ev


# --------------------------------------------------------------------------- success

def test_multipart_parallel_patched_head(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 23 * MIB)
    head = bytes(range(157))
    r = upload(driver, s3, proxy, path, "up/multi.bin", "--part-size", 5 * MIB, "--parallel", 3,
               "--patch", f"0:{head.hex()}", "--chunk", 100_003)
    assert object_bytes(s3, "up/multi.bin") == head + data[157:]
    ops = ops_of(proxy, "up/multi.bin")
    assert ops[0] == ("create", None) and ops[-1] == ("complete", None)
    assert sorted(p for o, p in ops if o == "part") == [1, 2, 3, 4, 5]
    assert len(ops) == 7
    # part 1 (the header) goes at commit, after the parts cut while writing
    order = [p for o, p in ops if o == "part"]
    assert order.index(1) > order.index(2) and order.index(1) > order.index(3)
    sent = r.stats.pop("bytes_sent")
    assert r.stats == {"rc": 0, "written": 23 * MIB, "requests": 7, "retries": 0, "parts": 5, "part_size": 5 * MIB}
    assert 23 * MIB + 300 < sent < 23 * MIB + 1000  # the parts and CompleteMultipartUpload's XML
    assert_nothing_left_but_object(s3, "up/multi.bin")


def test_requests_signed(driver, s3, proxy, tmp_path):
    """Every request signed with the IAM key, x-amz-content-sha256 among
    the signed headers: UNSIGNED-PAYLOAD with a body, the empty hash
    without; the query in canonical form."""
    from test_s3 import SIG

    path, _ = data_file(tmp_path, 6 * MIB, seed=15)
    upload(driver, s3, proxy, path, "up/signed.bin", "--part-size", 5 * MIB)
    upload(driver, s3, proxy, path, "up/signed-aborted.bin", "--part-size", 5 * MIB, "--abort")
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for key, expect in [("signed.bin", [("uploads=", empty), ("partNumber=", "UNSIGNED-PAYLOAD"),
                                        ("partNumber=", "UNSIGNED-PAYLOAD"), ("uploadId=", "UNSIGNED-PAYLOAD")]),
                        ("signed-aborted.bin", [("uploads=", empty), ("uploadId=", empty)])]:
        seen = []
        for r in proxy.requests():
            if not r["path"].endswith("/up/" + key):
                continue
            h = r["headers"]
            m = SIG.match(h.get("authorization", ""))
            assert m and m["ak"] == s3.access_key, h
            assert {"host", "x-amz-date", "x-amz-content-sha256"} <= set(m["signed"].split(";"))
            query = r["query"]
            if query.startswith("partNumber="):
                assert re.fullmatch(r"partNumber=[12]&uploadId=[A-Za-z0-9%._~-]+", query), query
            seen.append((query if query == "uploads=" else query.split("=")[0] + "=", h["x-amz-content-sha256"]))
        assert seen == expect, (key, seen)


def assert_nothing_left_but_object(s3, key):
    ups = s3.client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    assert [u for u in ups if u["Key"] == key] == []


@pytest.mark.parametrize("parallel", [1, 3])
def test_parts_in_flight_at_once(driver, s3, proxy, tmp_path, parallel):
    """At most "parallel" UploadPart requests at a time, and that many
    while later data is written (each part held 0.3 s by the proxy)."""
    path, data = data_file(tmp_path, 36 * MIB, seed=16)
    proxy.rule("part", "delay", seconds=0.3)
    r = upload(driver, s3, proxy, path, f"up/inflight{parallel}.bin", "--part-size", 5 * MIB, "--parallel",
               parallel)
    assert object_bytes(s3, f"up/inflight{parallel}.bin") == data
    assert r.stats["parts"] == 8
    assert proxy.max_active["part"] == parallel


def test_unknown_total(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 12 * MIB + 5, seed=3)
    r = upload(driver, s3, proxy, path, "up/unknown.bin", "--part-size", 5 * MIB, "--parallel", 2, "--total", "unknown")
    assert object_bytes(s3, "up/unknown.bin") == data
    ops = ops_of(proxy, "up/unknown.bin")
    assert ops[0] == ("create", None) and ops[-1] == ("complete", None) and len(ops) == 5
    assert r.stats["parts"] == 3 and r.stats["requests"] == 5


def test_unknown_total_default_part_size(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 17 * MIB, seed=4)
    r = upload(driver, s3, proxy, path, "up/unknown16.bin", "--total", "unknown")
    assert object_bytes(s3, "up/unknown16.bin") == data
    assert r.stats["part_size"] == 16 * MIB and r.stats["parts"] == 2


def test_one_put_for_a_small_object(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 300_000, seed=5)
    head = b"\x01" * 157
    r = upload(driver, s3, proxy, path, "up/small.bin", "--patch", f"0:{head.hex()}")
    assert object_bytes(s3, "up/small.bin") == head + data[157:]
    assert ops_of(proxy, "up/small.bin") == [("put", None)]
    assert r.stats["requests"] == 1 and r.stats["parts"] == 1 and r.stats["part_size"] == 8 * MIB


def test_small_object_larger_than_expected_turns_multipart(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 11 * MIB, seed=6)
    r = upload(driver, s3, proxy, path, "up/grew.bin", "--total", 1000, "--part-size", 5 * MIB)
    assert object_bytes(s3, "up/grew.bin") == data
    ops = ops_of(proxy, "up/grew.bin")
    assert ops[0] == ("create", None) and len(ops) == 5 and r.stats["parts"] == 3


def test_empty_object(driver, s3, proxy, tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    upload(driver, s3, proxy, path, "up/empty.bin")
    assert object_bytes(s3, "up/empty.bin") == b""
    assert ops_of(proxy, "up/empty.bin") == [("put", None)]


def test_hold_keeps_a_part_patchable(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 16 * MIB, seed=8)
    off = 5 * MIB + 1000  # in part 2
    patch = b"\xaa" * 30
    upload(driver, s3, proxy, path, "up/hold.bin", "--part-size", 5 * MIB, "--parallel", 2,
           "--hold", f"{off}:30@{off}", "--patch", f"{off}:{patch.hex()}@{12 * MIB}", "--release", 12 * MIB)
    assert object_bytes(s3, "up/hold.bin") == data[:off] + patch + data[off + 30:]


def test_patch_of_uploaded_bytes_fails_and_aborts(driver, s3, proxy, tmp_path):
    path, data = data_file(tmp_path, 16 * MIB, seed=9)
    r = upload(driver, s3, proxy, path, "up/late.bin", "--part-size", 5 * MIB, "--patch", f"{6 * MIB}:00@{15 * MIB}",
               expect=1)
    assert "already uploaded" in r.stderr
    assert_nothing_left(s3, "up/late.bin")
    ops = ops_of(proxy, "up/late.bin")
    assert ops[-1] == ("abort", None) and ("complete", None) not in ops
    assert_parts_answered_before_abort(proxy)


def test_abort(driver, s3, proxy, tmp_path):
    path, _ = data_file(tmp_path, 12 * MIB, seed=10)
    upload(driver, s3, proxy, path, "up/aborted.bin", "--part-size", 5 * MIB, "--abort")
    assert_nothing_left(s3, "up/aborted.bin")
    ops = ops_of(proxy, "up/aborted.bin")
    assert ops[0] == ("create", None) and ops[-1] == ("abort", None) and ("complete", None) not in ops
    assert_parts_answered_before_abort(proxy)


# --------------------------------------------------------------------------- credentials

def test_wrong_access_key(driver, s3, proxy, tmp_path):
    path, _ = data_file(tmp_path, 12 * MIB, seed=11)
    r = upload(driver, s3, proxy, path, "up/badkey.bin", env={"AWS_ACCESS_KEY_ID": "AKIANOTAREALKEY00000"}, expect=1)
    assert "S3 refused CreateMultipartUpload: 403 InvalidAccessKeyId" in r.stderr, r.stderr
    assert r.stats["requests"] == 0  # stats of a failed open: nothing to report
    assert_nothing_left(s3, "up/badkey.bin")
    assert ops_of(proxy, "up/badkey.bin") == [("create", None)]


def test_wrong_secret(driver, s3, proxy, tmp_path):
    path, _ = data_file(tmp_path, 12 * MIB, seed=12)
    r = upload(driver, s3, proxy, path, "up/badsecret.bin", env={"AWS_SECRET_ACCESS_KEY": "wrong" * 8}, expect=1)
    assert "S3 refused CreateMultipartUpload: 403 SignatureDoesNotMatch" in r.stderr, r.stderr
    assert_nothing_left(s3, "up/badsecret.bin")


def test_wrong_secret_single_put(driver, s3, proxy, tmp_path):
    path, _ = data_file(tmp_path, 1000, seed=13)
    r = upload(driver, s3, proxy, path, "up/badsecret1.bin", env={"AWS_SECRET_ACCESS_KEY": "wrong" * 8}, expect=1)
    assert "S3 refused PutObject: 403 SignatureDoesNotMatch" in r.stderr, r.stderr
    assert_nothing_left(s3, "up/badsecret1.bin")


def test_no_such_bucket(driver, s3, proxy, tmp_path):
    path, _ = data_file(tmp_path, 12 * MIB, seed=14)
    e = dict(os.environ)
    for k, v in s3.env().items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = subprocess.run([driver, str(path), "s3://no-such-bucket-here/k"], capture_output=True, text=True, env=e,
                       timeout=60)
    assert p.returncode == 1, p.stderr
    assert "S3 refused CreateMultipartUpload: 404 NoSuchBucket" in p.stderr, p.stderr


# --------------------------------------------------------------------------- faults

def fault_upload(driver, s3, proxy, tmp_path, key, *args, expect, size=16 * MIB, **kw):
    path, data = data_file(tmp_path, size, seed=zlib.crc32(key.encode()))
    r = upload(driver, s3, proxy, path, key, "--part-size", 5 * MIB, "--parallel", 2, *args, expect=expect, **kw)
    return r, data


@pytest.mark.parametrize("kind", ["500", "cut"])
def test_part_failing_for_good_aborts(driver, s3, proxy, tmp_path, kind):
    key = f"up/fail-part-{kind}.bin"
    if kind == "500":
        proxy.rule("part", "status", part=2, status=500)
    else:
        proxy.rule("part", "cut", part=2, after=1 << 20)
    r, _ = fault_upload(driver, s3, proxy, tmp_path, key, "--retries", 2, expect=1)
    assert "S3 UploadPart 2 failed after 3 attempts: " in r.stderr, r.stderr
    if kind == "500":
        assert "500 InternalError (injected by the fault proxy)" in r.stderr
    assert [p for o, p, _ in proxy.ops() if o == "part"].count(2) == 3
    assert proxy.ops()[-1][0] == "abort"
    assert_parts_answered_before_abort(proxy)
    assert ("complete", None) not in [(o, p) for o, p, _ in proxy.ops()]
    assert_nothing_left(s3, key)


def test_part_refused_fails_at_once(driver, s3, proxy, tmp_path):
    key = "up/refused-part.bin"
    proxy.rule("part", "status", part=3, status=403, code="AccessDenied", message="Access Denied")
    r, _ = fault_upload(driver, s3, proxy, tmp_path, key, "--retries", 4, expect=1)
    assert "S3 refused UploadPart 3: 403 AccessDenied (Access Denied)" in r.stderr, r.stderr
    assert [p for o, p, _ in proxy.ops() if o == "part"].count(3) == 1
    assert proxy.ops()[-1][0] == "abort"
    assert_parts_answered_before_abort(proxy)
    assert_nothing_left(s3, key)


@pytest.mark.parametrize("kind", ["500", "cut", "429"])
def test_part_transient_failure_is_retried(driver, s3, proxy, tmp_path, kind):
    key = f"up/transient-{kind}.bin"
    if kind == "cut":
        proxy.rule("part", "cut", part=2, times=1, after=1 << 20)
    else:
        proxy.rule("part", "status", part=2, times=1, status=int(kind), code="SlowDown" if kind == "429" else
                   "InternalError")
    r, data = fault_upload(driver, s3, proxy, tmp_path, key, expect=0)
    assert object_bytes(s3, key) == data
    assert r.stats["retries"] == 1 and r.stats["parts"] == 4 and r.stats["requests"] == 1 + 5 + 1
    assert [p for o, p, _ in proxy.ops() if o == "part"].count(2) == 2


def test_create_retried(driver, s3, proxy, tmp_path):
    key = "up/create-503.bin"
    proxy.rule("create", "status", times=2, status=503, code="SlowDown")
    r, data = fault_upload(driver, s3, proxy, tmp_path, key, expect=0)
    assert object_bytes(s3, key) == data and r.stats["retries"] == 2


@pytest.mark.parametrize("action", ["status", "error200"])
def test_complete_failing_aborts(driver, s3, proxy, tmp_path, action):
    key = f"up/complete-{action}.bin"
    proxy.rule("complete", action)
    r, _ = fault_upload(driver, s3, proxy, tmp_path, key, "--retries", 2, expect=1)
    assert "S3 CompleteMultipartUpload failed after 3 attempts: " in r.stderr, r.stderr
    assert ("500 InternalError" if action == "status" else "200 InternalError") in r.stderr
    assert [o for o, _, _ in proxy.ops()].count("complete") == 3
    assert proxy.ops()[-1][:2] == ("abort", None)
    assert_nothing_left(s3, key)


def test_complete_error200_once_is_retried(driver, s3, proxy, tmp_path):
    key = "up/complete-error200-once.bin"
    proxy.rule("complete", "error200", times=1)
    r, data = fault_upload(driver, s3, proxy, tmp_path, key, expect=0)
    assert object_bytes(s3, key) == data and r.stats["retries"] == 1
    assert [o for o, _, _ in proxy.ops()].count("complete") == 2


@pytest.mark.parametrize("retry_answer", ["200", "404"])
def test_complete_answer_lost(driver, s3, proxy, tmp_path, retry_answer):
    """CompleteMultipartUpload done but its answer lost.  The retry is
    answered 200 (what moto and S3 do for an upload just completed) or
    404 NoSuchUpload (an S3 that has forgotten it, injected): then the
    object, checked with a HEAD (size, ETag of 4 parts), is the one this
    upload made, and the upload succeeds."""
    key = f"up/complete-lost-{retry_answer}.bin"
    proxy.rule("complete", "lose", times=1)
    if retry_answer == "404":
        proxy.rule("complete", "status", times=1, status=404, code="NoSuchUpload",
                   message="The specified upload does not exist.")
    r, data = fault_upload(driver, s3, proxy, tmp_path, key, expect=0)
    assert object_bytes(s3, key) == data
    ops = [(o, w) for o, _, w in proxy.ops() if o in ("complete", "other", "abort")]
    if retry_answer == "200":
        assert ops == [("complete", "lost (upstream 200)"), ("complete", "forwarded 200")]
    else:
        assert ops == [("complete", "lost (upstream 200)"), ("complete", "status 404"), ("other", "forwarded 200")]
    # (the second CompleteMultipartUpload may be libcurl's own: it retries
    # a request whose reused connection was closed without an answer)
    assert r.stats["retries"] <= 1


def test_complete_gone_without_the_object_fails(driver, s3, proxy, tmp_path):
    """The same 404 after a lost answer, but the request had not reached
    S3 (nothing completed): the HEAD finds no object, the upload fails and
    is aborted."""
    key = "up/complete-gone.bin"
    proxy.rule("complete", "cut", times=1, after=0)
    proxy.rule("complete", "status", times=1, status=404, code="NoSuchUpload", message="gone")
    r, _ = fault_upload(driver, s3, proxy, tmp_path, key, expect=1)
    assert "S3 refused CompleteMultipartUpload: 404 NoSuchUpload (gone)" in r.stderr, r.stderr
    assert proxy.ops()[-1][0] == "abort"
    assert_nothing_left(s3, key)


def test_abort_failing_is_not_reported_but_retried(driver, s3, proxy, tmp_path):
    key = "up/abort-500.bin"
    proxy.rule("abort", "status", times=1, status=500)
    fault_upload(driver, s3, proxy, tmp_path, key, "--abort", expect=0)
    assert [o for o, _, _ in proxy.ops()].count("abort") == 2
    assert_nothing_left(s3, key)


# --------------------------------------------------------------------------- sizes and parameters

@pytest.mark.parametrize("total,want,expect", [
    (100_000_000_000, 0, 10 * MIB),        # 10,000 parts of whole MiB
    (50 * MIB, 0, 8 * MIB),                # at least 8 MiB
    ("unknown", 0, 16 * MIB),
    ("unknown", 6 * MIB, 6 * MIB),
    (60 * MIB, 5 * MIB, 5 * MIB),
])
def test_part_size_chosen(driver, s3, proxy, tmp_path, total, want, expect):
    path, _ = data_file(tmp_path, 1000, seed=17)
    key = f"up/size-{total}-{want}.bin"
    r = upload(driver, s3, proxy, path, key, "--total", total, "--part-size", want, "--abort")
    assert r.stats["part_size"] == expect
    assert ops_of(proxy, key) == [("create", None), ("abort", None)]
    assert_nothing_left(s3, key)


@pytest.mark.parametrize("args,message", [
    (["--part-size", 5 * MIB - 1], "part size 5242879 is outside S3's limits [5 MiB, 5 GiB]"),
    (["--part-size", (5 << 30) + 1], "is outside S3's limits"),
    (["--part-size", 5 * MIB, "--total", 10001 * 5 * MIB], "needs more than 10,000 parts of 5242880 bytes"),
    (["--total", 10000 * (5 << 30) + 1], "does not fit in 10,000 parts of 5 GiB"),
    (["--parallel", 33], "upload parallel = 33 is outside [1, 32]"),
])
def test_bad_parameters(driver, s3, proxy, tmp_path, args, message):
    path, _ = data_file(tmp_path, 1000, seed=18)
    r = upload(driver, s3, proxy, path, "up/bad.bin", *args, expect=1)
    assert message in r.stderr, r.stderr
    assert r.stats["rc"] == -4  # TACOZ_ERR_PARAM
    assert proxy.requests() == []


def test_not_s3(driver, s3, proxy, tmp_path):
    path, _ = data_file(tmp_path, 10, seed=19)
    p = subprocess.run([driver, str(path), "https://example.com/k"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "an upload goes to an s3://bucket/key URL" in p.stderr, p.stderr
