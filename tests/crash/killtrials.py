#!/usr/bin/env python3
"""kill -9 trials of the tacozip command's writing operations (issue 8, items 1-2).

    python tests/crash/killtrials.py --bin build/tacozip [--trials N]
        [--ops create,append,update,extract] [--json OUT] [--workdir DIR]
        [--seed S] [--size-mb M] [--keep]
    (--ops also takes create-new: create where no file exists yet)

For each operation, N trials (default 100) of:
  1. a fresh trial directory holding the old state (an existing valid
     archive; for extract, an archive and no destination);
  2. the command started, and SIGKILLed after a uniform random delay in
     [0, 1.2 x D] (update: [0, D]), D being the operation's typical
     duration, the median of three runs measured first (these also check
     that an unkilled run gives exactly the new state);
  3. the check of crashlib.Scenario.check: recover first (if the command
     has it), then old-or-new valid archive, extracted files complete or
     absent, nothing left behind.
The bulk data is --size-mb MiB per operation (default 64, extract 128 in all),
so that create, append and extract last ~50-300 ms; update is a few ms,
mostly process start, and is timed with a busy-wait clock.

Prints a table per operation: trials, killed before exit, old, new, mixed
(extract: some files there, each complete), corrupt, leftover (trials that
left a stray file), with examples; --json writes the same figures.
Exit status: 0 when no trial is corrupt or left anything behind, 1
otherwise, 2 on a harness error (the command failing an unkilled run...).
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402

OPS = ["create", "append", "update", "extract"]
EXTRA_OPS = ["create-new",   # create of a file that does not exist yet (old state: no file)
             "create-stdin"]  # create replacing a file, a member from standard input


def spawn(argv, sc=None):
    with crashlib.stdin_of(sc) if sc else open(os.devnull, "rb") as stdin:
        p = subprocess.Popen([str(a) for a in argv], stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    return p, time.perf_counter()


def timed_run(argv, sc=None):
    p, t0 = spawn(argv, sc)
    _, err = p.communicate()
    return p.returncode, time.perf_counter() - t0, err


def sleep_until(target):
    """Sleep, then spin the last millisecond: sub-millisecond kill times."""
    while True:
        left = target - time.perf_counter()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(left - 0.001)


def measure(sc, t):
    """Median duration of three unkilled runs; each must give the new state."""
    times = []
    for _ in range(3):
        sc.setup(t)
        rc, dt, err = timed_run(sc.argv(t), sc)
        if rc != 0:
            raise SystemExit("harness: unkilled %s exited %d: %s" % (sc.name, rc, err.decode(errors="replace")))
        o = sc.check(t)
        if o.state != "new" or o.leftovers:
            raise SystemExit("harness: unkilled %s did not give the new state: %s" % (sc.name, o.describe()))
        times.append(dt)
    return statistics.median(times)


def trial_once(sc, t, delay):
    sc.setup(t)
    p, t0 = spawn(sc.argv(t), sc)
    sleep_until(t0 + delay)
    # the child is not reaped yet, so its pid is still its own
    os.kill(p.pid, signal.SIGKILL)
    _, err = p.communicate()
    return p.returncode, err


def run_op(op, args, work, rng):
    tmpl = os.path.join(work, "tmpl-" + op)
    t = os.path.join(work, "trial-" + op)
    size = args.size_mb << 20
    sc = crashlib.make(op, args.bin, tmpl, size * (2 if op == "extract" else 1), args.seed)
    dur = measure(sc, t)
    span = dur * (1.0 if op == "update" else 1.2)
    res = {"op": op, "trials": 0, "duration_ms": round(dur * 1000, 2), "kill_window_ms": round(span * 1000, 2),
           "killed": 0, "exited_0": 0, "exited_other": 0, "old": 0, "new": 0, "mixed": 0, "corrupt": 0,
           "leftover": 0, "corrupt_examples": [], "leftover_examples": [], "other_exit_examples": [],
           "recover": sc.recover}
    for i in range(args.trials):
        delay = rng.uniform(0, span)
        rc, err = trial_once(sc, t, delay)
        res["trials"] += 1
        if rc == -signal.SIGKILL:
            res["killed"] += 1
        elif rc == 0:
            res["exited_0"] += 1
        else:
            res["exited_other"] += 1
            if len(res["other_exit_examples"]) < 5:
                res["other_exit_examples"].append("trial %d: exit %d: %s" % (i, rc, err.decode(errors="replace").strip()[:200]))
        o = sc.check(t)
        if o.corrupt:
            res["corrupt"] += 1
            if len(res["corrupt_examples"]) < 5:
                res["corrupt_examples"].append("trial %d (kill at %.2f ms): %s" % (i, delay * 1000, "; ".join(o.problems)))
        else:
            res[o.state] += 1
        if o.leftovers:
            res["leftover"] += 1
            if len(res["leftover_examples"]) < 5:
                res["leftover_examples"].append("trial %d (kill at %.2f ms): %s" % (i, delay * 1000, ", ".join(o.leftovers[:4])))
    shutil.rmtree(t, ignore_errors=True)
    shutil.rmtree(tmpl, ignore_errors=True)
    return res


def table(results):
    cols = ["op", "trials", "killed", "old", "new", "mixed", "corrupt", "leftover", "duration_ms"]
    rows = [cols] + [[str(r[c]) for c in cols] for r in results]
    w = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(v.rjust(w[i]) if i else v.ljust(w[i]) for i, v in enumerate(row)) for row in rows]
    for r in results:
        for key in ("corrupt_examples", "leftover_examples", "other_exit_examples"):
            for e in r[key]:
                lines.append("  %s %s: %s" % (r["op"], key.split("_")[0], e))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the tacozip command")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--workdir", help="parent of the temporary directory (default: /dev/shm when it is a "
                    "writable directory, else the system's temporary directory)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--size-mb", type=int, default=64, help="bulk data per operation (extract: twice this)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o not in OPS + EXTRA_OPS:
            ap.error("unknown op %r (ops: %s)" % (o, ",".join(OPS + EXTRA_OPS)))
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    else:
        args.workdir = crashlib.default_workdir()
    work = tempfile.mkdtemp(prefix="tacozip-kill-", dir=args.workdir)
    rng = random.Random(args.seed)
    results = []
    try:
        print("tacozip kill -9 trials: %s, %d per op, seed %s, recover: %s" % (
            args.bin, args.trials, args.seed, "yes" if crashlib.has_recover(args.bin) else "no (command absent)"))
        for op in ops:
            t0 = time.time()
            r = run_op(op, args, work, rng)
            r["seconds"] = round(time.time() - t0, 1)
            results.append(r)
            print("%-8s done in %.1f s (typical run %.1f ms)" % (op, r["seconds"], r["duration_ms"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    ok = all(r["corrupt"] == 0 and r["leftover"] == 0 for r in results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bin": args.bin, "trials": args.trials, "seed": args.seed, "ok": ok, "ops": results}, f, indent=1)
    print("PASS" if ok else "FAIL: corrupt or leftover trials")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
