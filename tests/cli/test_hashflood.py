"""Hash flooding (issue 8, item 6): member names chosen to collide under the
old unkeyed name hash (FNV-1a, then h ^ h >> 29, masked by the table size)
must not make create or ls quadratic.

The names are generated here: "collide/" + 6 characters, kept when their
old hash lands in the first WINDOW buckets of a 2^17-slot table (the size
both the reader's table for N + 1 members and the writer's table for N
names use, modulo 2^16 for the latter: a window in one is a window in the
other).  Linear probing turns such names into one cluster, so each insert
walked the whole cluster: 32768 names took seconds instead of
milliseconds.  The keyed hash (SipHash-1-3, random key per table) spreads
them like any other names.  The assertion is a ratio against ordinary names
of the same length in the same run, not an absolute time."""
import os
import random
import time

N = 32768
WINDOW = 512
TABLE_BITS = 17
PREFIX = b"collide/"
ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
FNV_OFF, FNV_P, M64 = 1469598103934665603, 1099511628211, (1 << 64) - 1
MAX_RATIO = 5.0


def old_bucket(name, bits=TABLE_BITS):
    """The bucket of the old name_hash (src/common/names.c before 1.1)."""
    h = FNV_OFF
    for b in name:
        h = ((h ^ b) * FNV_P) & M64
    return (h ^ (h >> 29)) & ((1 << bits) - 1)


def colliding_names(n=N):
    """n names of len(PREFIX) + 6 bytes whose old bucket is < WINDOW."""
    import numpy as np  # in the test venv (tests/package needs it too)
    a = np.frombuffer(ALPHA, dtype=np.uint8).astype(np.uint64)
    P = np.uint64(FNV_P)
    h = FNV_OFF
    for b in PREFIX:
        h = ((h ^ b) * FNV_P) & M64
    base = np.array([h], dtype=np.uint64)
    for _ in range(3):  # every 3-character continuation: 262144 states
        base = ((base[:, None] ^ a[None, :]) * P).ravel()
    idx3 = np.arange(base.size)
    out = []
    mask = np.uint64((1 << TABLE_BITS) - 1)
    for c4 in range(64):
        h4 = (base ^ a[c4]) * P
        for c5 in range(64):
            h5 = (h4 ^ a[c5]) * P
            for c6 in range(64):
                h6 = (h5 ^ a[c6]) * P
                v = (h6 ^ (h6 >> np.uint64(29))) & mask
                for k in idx3[v < WINDOW]:
                    k = int(k)
                    out.append(PREFIX + bytes([ALPHA[(k >> 12) & 63], ALPHA[(k >> 6) & 63], ALPHA[k & 63],
                                               ALPHA[c4], ALPHA[c5], ALPHA[c6]]))
                    if len(out) == n:
                        return out
    raise AssertionError("not enough colliding names")


def ordinary_names(n=N, seed=8):
    rng = random.Random(seed)
    seen = set()
    while len(seen) < n:
        seen.add(PREFIX + bytes(rng.choice(ALPHA) for _ in range(6)))
    return sorted(seen)


def best_of(tz, reps, *args):
    best = None
    for _ in range(reps):
        t = time.perf_counter()
        tz.ok(*args)
        t = time.perf_counter() - t
        best = t if best is None else min(best, t)
    return best


def test_colliding_names_are_not_quadratic(tz, tmp_path):
    bad = colliding_names()
    assert len(set(bad)) == N
    assert all(old_bucket(nm) < WINDOW for nm in bad[:: N // 64])  # what the generator promises
    assert all(old_bucket(nm, 16) < WINDOW for nm in bad[:: N // 64])  # the writer's 2^16 table too
    good = ordinary_names()
    src = tmp_path / "empty"
    src.write_bytes(b"")
    times = {}
    for label, names in (("ordinary", good), ("colliding", bad)):
        lst = tmp_path / (label + ".list")
        lst.write_bytes(b"".join(str(src).encode() + b"\t" + nm + b"\n" for nm in names))
        out = tmp_path / (label + ".taco")
        # create builds the writer's name table (duplicate check); ls and
        # ls --index-first the reader's (from the directory, from TACO_INDEX)
        times[label, "create"] = best_of(tz, 2, "create", out, "-T", lst, "--index")
        times[label, "ls"] = best_of(tz, 3, "ls", out)
        times[label, "ls-index"] = best_of(tz, 3, "ls", out, "--index-first")
        listed = tz.ok("ls", out).splitlines()
        assert len(listed) == N + 2  # TACO_HEADER, TACO_INDEX and the N names
    report = ", ".join("%s %s %.3f s" % (k[0], k[1], v) for k, v in sorted(times.items()))
    print(report)
    for what in ("create", "ls", "ls-index"):
        # 20 ms of slack: process start-up dominates the ordinary runs
        assert times["colliding", what] < MAX_RATIO * times["ordinary", what] + 0.02, report
