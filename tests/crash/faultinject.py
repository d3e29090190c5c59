#!/usr/bin/env python3
"""Fault injection at every write-path call of the tacozip command (issue 8, item 5).

    python tests/crash/faultinject.py --bin build/tacozip
        [--ops create-new,create-replace,create-stdin,append,update,extract]
        [--json OUT] [--workdir DIR] [--seed S] [--size-mb M] [--keep]

Builds tests/crash/faultshim.c (cc -shared -fPIC -O2 -ldl) and, for each
operation:
  1. a baseline run under the shim with logging only: it must succeed with
     the new state; its log gives the counted calls and their call sites;
  2. runs with TACOZIP_FAULT_AT=K for K = 1, 2, 3, ... until a run makes no
     injected failure (K past the calls that run makes; that last run must
     succeed with the new state, like the baseline);
  3. after each run with an injected failure:
       - the exit status is exactly 1 (the command's failure status) with a
         message on stderr.  One exception: an error from close() of a
         descriptor that nothing was written through ("clean" in the shim's
         log: a source file, a directory, a lock) cannot lose data, and the
         command may ignore it, provided the result is the new state;
       - then crashlib.Scenario.check: recover first if the command has it,
         the archive old-or-new valid (create-new: absent or new), extracted
         files complete or absent, nothing left behind.
Reports per operation: counted calls of the baseline, distinct call sites
(function + caller offset, named with addr2line -f), failures injected,
passes, and each failing case with its site.  Exit status 0 when every
injected failure passed, 1 otherwise, 2 on a harness error.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crashlib  # noqa: E402

OPS = ["create-new", "create-replace", "create-stdin", "append", "update", "extract"]


def build_shim(work):
    out = os.path.join(work, "faultshim.so")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out, os.path.join(HERE, "faultshim.c"), "-ldl"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit("harness: cannot build the shim: %s" % r.stderr.decode(errors="replace"))
    return out


def parse_log(path):
    """[(index, func, offset, fd, state, injected)] of a shim log."""
    calls = []
    if not os.path.exists(path):
        return calls
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 5:
                continue
            calls.append((int(p[0]), p[1], p[2], p[3], p[4], "INJECTED" in p[5:]))
    calls.sort()
    return calls


class Symbols:
    """Caller offsets -> function names (addr2line -f), cached."""

    def __init__(self, bin_path):
        self.bin = bin_path
        self.names = {}
        self.tool = shutil.which("addr2line")

    def resolve(self, offsets):
        todo = sorted(set(o for o in offsets if o not in self.names))
        if not todo:
            return
        if self.tool:
            r = subprocess.run([self.tool, "-f", "-e", self.bin] + todo, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            lines = r.stdout.decode(errors="replace").splitlines()
            if r.returncode == 0 and len(lines) == 2 * len(todo):
                for i, o in enumerate(todo):
                    self.names[o] = lines[2 * i]
                return
        for o in todo:
            self.names[o] = "??"

    def site(self, func, off):
        return "%s@%s(%s)" % (func, self.names.get(off, "??"), off)


def run_shim(sc, t, shim, k, log):
    if os.path.exists(log):
        os.unlink(log)
    env = dict(os.environ, LD_PRELOAD=shim, TACOZIP_FAULT_LOG=log, TACOZIP_FAULT_AT=str(k))
    # an ASan command (gcc: libasan.so) refuses a library preloaded before
    # its runtime unless told not to check; its other options are kept
    env["ASAN_OPTIONS"] = ":".join(x for x in [os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"] if x)
    try:
        with crashlib.stdin_of(sc) as stdin:
            r = subprocess.run([str(a) for a in sc.argv(t)], stdin=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=120)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = "hung (killed after 120 s)", b""
    return rc, err, parse_log(log)


def run_op(op, args, work, shim, syms):
    tmpl = os.path.join(work, "tmpl-" + op)
    t = os.path.join(work, "trial-" + op)
    log = os.path.join(work, "log-" + op)
    sc = crashlib.make(op, args.bin, tmpl, args.size_mb << 20, args.seed)
    res = {"op": op, "recover": sc.recover, "counted_calls": 0, "sites": [], "sites_all": [], "sites_injected": [],
           "injected": 0, "passed": 0, "failed": 0, "tolerated_clean_close": 0, "failures": []}

    sc.setup(t)
    rc, err, calls = run_shim(sc, t, shim, 0, log)
    o = sc.check(t)
    if rc != 0 or o.state != "new" or o.leftovers:
        raise SystemExit("harness: baseline %s under the shim: exit %s, %s %s" % (
            op, rc, o.describe(), err.decode(errors="replace")))
    res["counted_calls"] = len(calls)
    base_sites = sorted(set((c[1], c[2]) for c in calls))
    all_sites = set(base_sites)
    inj_sites = set()
    k = 0
    limit = 4 * len(calls) + 50
    while True:
        k += 1
        if k > limit:
            raise SystemExit("harness: %s still injecting at K=%d (baseline made %d calls)" % (op, k, len(calls)))
        sc.setup(t)
        rc, err, calls = run_shim(sc, t, shim, k, log)
        all_sites.update((c[1], c[2]) for c in calls)
        inj = [c for c in calls if c[5]]
        o = sc.check(t)
        if not inj:
            # past the last call: a plain successful run
            if rc != 0 or o.state != "new" or o.leftovers:
                res["failures"].append({"k": k, "site": None, "call": None, "exit": rc,
                                        "why": "the run with no injected failure: exit %s, %s" % (rc, o.describe())})
                res["failed"] += 1
            break
        c = inj[0]
        res["injected"] += 1
        inj_sites.add((c[1], c[2]))
        why = []
        clean_close = c[1] == "close" and c[4] == "clean"
        if rc == 0 and clean_close and o.state == "new" and not o.leftovers:
            res["tolerated_clean_close"] += 1
        elif rc == 0:
            why.append("exit 0 after the injected failure (the error was swallowed)")
        elif rc != 1:
            why.append("exit %s, not 1" % rc)
        if rc != 0 and not err.strip():
            why.append("no message on stderr")
        if o.corrupt:
            why.append("corrupt: " + "; ".join(o.problems))
        if o.leftovers:
            why.append("left behind: " + ", ".join(o.leftovers[:4]))
        if why:
            res["failed"] += 1
            res["failures"].append({"k": k, "site": (c[1], c[2]), "call": "%s %s %s" % (c[1], c[3], c[4]),
                                    "exit": rc, "stderr": err.decode(errors="replace").strip()[:300],
                                    "state": o.state, "why": "; ".join(why)})
        else:
            res["passed"] += 1
    syms.resolve([s[1] for s in all_sites])
    res["sites"] = [syms.site(*s) for s in base_sites]
    res["sites_all"] = sorted(syms.site(*s) for s in all_sites)
    res["sites_injected"] = sorted(syms.site(*s) for s in inj_sites)
    for f in res["failures"]:
        if f["site"]:
            f["site"] = syms.site(*f["site"])
    shutil.rmtree(t, ignore_errors=True)
    shutil.rmtree(tmpl, ignore_errors=True)
    return res


def report(results):
    cols = ["op", "counted_calls", "sites", "sites_all", "injected", "passed", "failed", "tolerated"]
    rows = [cols]
    for r in results:
        rows.append([r["op"], str(r["counted_calls"]), str(len(r["sites"])), str(len(r["sites_all"])),
                     str(r["injected"]), str(r["passed"]), str(r["failed"]), str(r["tolerated_clean_close"])])
    w = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(v.rjust(w[i]) if i else v.ljust(w[i]) for i, v in enumerate(row)) for row in rows]
    lines.append("(sites: distinct call sites of the baseline run; sites_all: with the error paths reached; "
                 "tolerated: clean close() errors ignored with the new state)")
    for r in results:
        lines.append("%s sites injected: %s" % (r["op"], ", ".join(r["sites_injected"])))
    for r in results:
        # one line per failing site: how many K, the first reason
        by = {}
        for f in r["failures"]:
            by.setdefault(f["site"], []).append(f)
        for site, fs in by.items():
            f = fs[0]
            lines.append("  FAIL %s at %s (%d case%s, e.g. K=%d, %s, exit %s): %s" % (
                r["op"], site, len(fs), "" if len(fs) == 1 else "s", f["k"], f["call"], f["exit"], f["why"][:400]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the tacozip command")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--workdir", help="parent of the temporary directory (default: /dev/shm when writable)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--size-mb", type=int, default=18,
                    help="bulk data per operation (default 18: a member of 9 MiB takes the two-thread copy)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o not in OPS:
            ap.error("unknown op %r (ops: %s)" % (o, ",".join(OPS)))
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    else:
        args.workdir = crashlib.default_workdir()
    work = tempfile.mkdtemp(prefix="tacozip-fault-", dir=args.workdir)
    results = []
    try:
        shim = build_shim(work)
        syms = Symbols(args.bin)
        print("tacozip fault injection: %s, recover: %s" % (
            args.bin, "yes" if crashlib.has_recover(args.bin) else "no (command absent)"))
        for op in ops:
            t0 = time.time()
            r = run_op(op, args, work, shim, syms)
            r["seconds"] = round(time.time() - t0, 1)
            results.append(r)
            print("%-14s done in %.1f s" % (op, r["seconds"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(report(results))
    ok = all(r["failed"] == 0 for r in results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bin": args.bin, "ok": ok, "ops": results}, f, indent=1)
    print("PASS" if ok else "FAIL: some injected failures were not handled")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
