#!/usr/bin/env python3
"""bench.py - the tacozip benchmark driver (Python 3.11 stdlib only).

Run through bench/run.sh, which builds the binaries this script needs and
passes their paths.  Every figure is a median over repetitions in which the
tools are interleaved run by run (the order rotates each repetition), so a
noisy shared machine disturbs all of them alike; results are reported as
ratios against peers measured in the same run.  Inputs are read once
first (warm page cache), outputs go to bench/work/out (same filesystem) and
are deleted after every run, and each run starts after prewarm() (see there).

Timing scope: commands (tacozip, zip, cat) are timed as whole processes from
the driver (fork/exec included); Python tools (the PyPI tacozip, zipfile) are
timed inside their process around the create()/write loop or the
ZipFile()+infolist() call (interpreter start and imports excluded; the
whole-process time is recorded too).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

FULL = dict(reps=7, big_files=8, big_mib=128, small_files=20000, small_kib=4,
            list_members=100000, rh_calls=200000)
QUICK = dict(reps=3, big_files=8, big_mib=16, small_files=2000, small_kib=4,
             list_members=10000, rh_calls=20000)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs)


# ---------------------------------------------------------------- data sets

def make_big(work, n, mib):
    """n files of mib MiB of random bytes (one urandom block, reused; the
    first 8 bytes of each file hold its index so files differ)."""
    d = os.path.join(work, f"big-{n}x{mib}M")
    files = [os.path.join(os.path.basename(d), f"b{i}.bin") for i in range(n)]
    if os.path.exists(os.path.join(d, ".ok")):
        return files
    log(f"generating {n} x {mib} MiB in {d}")
    os.makedirs(d, exist_ok=True)
    block = os.urandom(mib << 20)
    for i, f in enumerate(files):
        with open(os.path.join(work, f), "wb") as fh:
            fh.write(i.to_bytes(8, "little"))
            fh.write(memoryview(block)[8:])
    open(os.path.join(d, ".ok"), "w").close()
    return files


def make_small(work, n, kib):
    d = os.path.join(work, f"small-{n}x{kib}K")
    files = [os.path.join(os.path.basename(d), f"s{i:05d}.bin") for i in range(n)]
    if os.path.exists(os.path.join(d, ".ok")):
        return files
    log(f"generating {n} x {kib} KiB in {d}")
    os.makedirs(d, exist_ok=True)
    size = kib << 10
    block = os.urandom(n * size)
    for i, f in enumerate(files):
        with open(os.path.join(work, f), "wb") as fh:
            fh.write(block[i * size:(i + 1) * size])
    open(os.path.join(d, ".ok"), "w").close()
    return files


def write_list(work, name, files):
    p = os.path.join(work, name)
    with open(p, "w", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in files))
    return p


def warm(work, files):
    """Read every input once so the page cache is warm."""
    total = 0
    for f in files:
        with open(os.path.join(work, f), "rb", buffering=0) as fh:
            while True:
                b = fh.read(1 << 20)
                if not b:
                    break
                total += len(b)
    return total


# ---------------------------------------------------------------- running

def run_proc(cmd, cwd, stdout=subprocess.DEVNULL):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}... failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return t, r


def run_inner(cmd, cwd):
    """Run a Python tool that prints 'SECONDS COUNT'; return (inner, outer)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    outer = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}... failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return float(r.stdout.split()[0]), outer


def prewarm(work, outdir, files):
    """Put every run in the same memory state (untimed): write and delete a
    scratch copy of the inputs, then sync.  On this VM, memory freed more
    than ~2 s earlier is handed back to the host (virtio-balloon free page
    reporting) and the next large write pays host page faults (a 1 GiB cat
    takes ~700 ms instead of ~240 ms right after a 3 s zip run); without
    this step a tool's time depends on how long the tool before it ran."""
    scratch = os.path.join(outdir, "scratch")
    with open(scratch, "wb") as f:
        subprocess.run(["cat", *files], cwd=work, stdout=f, check=True)
    os.unlink(scratch)
    os.sync()  # no dirty data pending at the start of the run


def clean_outputs(outdir):
    for name in os.listdir(outdir):
        os.unlink(os.path.join(outdir, name))


def create_tools(a, work, files, listfile):
    # Tools run with cwd=work and relative paths; listfile is absolute.
    """(key, label, scope, run(out) -> (time, whole_process_time))."""
    def ours(extra, argv_files=True):
        def run(out):
            t, _ = run_proc([a.tacozip, "create", out, *extra, *(files if argv_files else [])], work)
            return t, t
        return run

    def py(tool, python):
        def run(out):
            return run_inner([python, os.path.join(HERE, "pytool.py"), tool, out, listfile], work)
        return run

    def zip0(out):
        t, _ = run_proc(["zip", "-0", "-q", out, *files], work)
        return t, t

    def cat(sync):
        def run(out):
            t0 = time.perf_counter()
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                r = subprocess.run(["cat", *files], cwd=work, stdout=fd, stderr=subprocess.PIPE)
                if r.returncode:
                    raise RuntimeError("cat failed: " + r.stderr.decode())
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            t = time.perf_counter() - t0
            return t, t
        return run

    def base(extra):
        def run(out):
            t, _ = run_proc([a.baseline_tacozip, "create", out, *extra, *files], work)
            return t, t
        return run

    rows = []
    if a.baseline_tacozip:
        rows = [("base", f"tacozip create, tree of {a.baseline_label}", "process", base([])),
                 ("base_nofsync", f"tacozip create --no-fsync, tree of {a.baseline_label}", "process",
                  base(["--no-fsync"]))]
    return rows + [
        ("ours", "tacozip create (ours, default: fsync)", "process", ours([])),
        ("ours_nofsync", "tacozip create --no-fsync (ours)", "process", ours(["--no-fsync"])),
    ] + ([
        # -T: the CLI reads the list instead of stat()ing every argv path
        ("ours_T_nofsync", "tacozip create --no-fsync -T LIST (ours)", "process",
         ours(["--no-fsync", "-T", listfile], argv_files=False)),
    ] if len(files) > 1000 else []) + [
        ("peer", "tacozip 0.13.0 (PyPI) create()", "in-process", py("peer", a.peer_python)),
        ("zipfile", "Python zipfile ZIP_STORED", "in-process", py("zipfile", sys.executable)),
        ("zip", "zip -0 -q", "process", zip0),
        ("cat", "cat FILES > out", "process", cat(False)),
        ("cat_fsync", "cat FILES > out + fsync(out)", "process", cat(True)),
    ]


def check_output(key, out, n_files, total_bytes, a, work):
    """Untimed sanity check of each tool's output (first repetition only)."""
    if key.startswith("cat"):
        assert os.path.getsize(out) == total_bytes, (key, os.path.getsize(out))
        return
    if key.startswith(("ours", "base")):
        r = subprocess.run([a.tacozip, "validate", out, "--level", "normal"], capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr
    with zipfile.ZipFile(out) as z:
        names = [i for i in z.infolist() if not i.filename.endswith("/")]
        want = n_files + (key.startswith(("ours", "base")) or key == "peer")  # + TACO_HEADER
        assert len(names) == want, (key, len(names), want)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in names), key
        assert sum(i.file_size for i in names if i.filename != "TACO_HEADER") == total_bytes, key


def bench_create(a, work, outdir, label, files, reps):
    listfile = write_list(work, f"{label}.list", files)
    total = warm(work, files)
    argv_bytes = sum(len(f) + 1 for f in files)
    log(f"[{label}] {len(files)} files, {total / 2**20:.1f} MiB, argv {argv_bytes / 1024:.0f} KiB, {reps} reps")
    tools = create_tools(a, work, files, listfile)
    times = {k: [] for k, *_ in tools}
    outer = {k: [] for k, *_ in tools}
    clean_outputs(outdir)
    for r in range(reps):
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for key, _, _, fn in order:
            out = os.path.join(outdir, f"{label}-{key}.zip")
            prewarm(work, outdir, files)
            t, t_outer = fn(out)
            if r == 0:
                check_output(key, out, len(files), total, a, work)
            times[key].append(t)
            outer[key].append(t_outer)
            clean_outputs(outdir)
        log(f"  rep {r + 1}/{reps}: " + ", ".join(f"{k} {times[k][-1]:.3f}" for k, *_ in tools))
    os.sync()
    res = {"files": len(files), "bytes": total, "argv_bytes": argv_bytes, "reps": reps, "tools": []}
    for key, name, scope, _ in tools:
        res["tools"].append({"key": key, "label": name, "scope": scope, "times": times[key],
                             "outer": outer[key], "median": median(times[key]),
                             "outer_median": median(outer[key])})
    return res


def bench_read_header(a, work, reps, calls):
    tiny = os.path.join(work, "tiny.bin")
    with open(tiny, "wb") as f:
        f.write(b"0123456789abcdef")
    arc = os.path.join(work, "read_header.taco")
    subprocess.run([a.tacozip, "create", arc, "-e", "157:1000", "-e", "2000:300", "--no-fsync", tiny],
                   check=True)
    log(f"[read_header] {calls} calls x {reps} reps, ours and peer interleaved")
    r = subprocess.run([os.path.join(a.bindir, "bench_read_header"), arc, str(calls), str(reps), a.peer_so],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("bench_read_header failed: " + r.stderr)
    rate = {"ours": [], "peer": []}
    for line in r.stdout.splitlines():
        who, _, secs, n = line.split()
        rate[who].append(int(n) / float(secs))
    return {"calls": calls, "reps": reps, "ours": rate["ours"], "peer": rate["peer"],
            "ours_median": median(rate["ours"]), "peer_median": median(rate["peer"])}


def bench_list(a, work, reps, members):
    tiny = os.path.join(work, "tiny.bin")
    with open(tiny, "wb") as f:
        f.write(b"0123456789abcdef")
    listfile = os.path.join(work, f"list-{members}.list")
    with open(listfile, "w") as f:
        f.write("".join(f"tiny.bin\td{i // 1000:03d}/m{i:06d}.bin\n" for i in range(members)))
    arc = os.path.join(work, f"list-{members}.taco")
    subprocess.run([a.tacozip, "create", arc, "-T", listfile, "--no-fsync", "--no-progress"], cwd=work,
                   check=True)
    with open(arc, "rb") as f:  # warm
        f.read()
    log(f"[list] archive of {members} + 1 members ({os.path.getsize(arc) / 2**20:.1f} MiB), {reps} reps")
    tools = [
        ("c_api", "C API: tacozip_open + member_at loop + close", "in-process",
         lambda: float(run_proc([os.path.join(a.bindir, "bench_list"), arc, "1"], work,
                                stdout=subprocess.PIPE)[1].stdout.split()[0])),
        ("cli_ls", "tacozip ls ARCHIVE > /dev/null", "process",
         lambda: run_proc([a.tacozip, "ls", arc], work)[0]),
        ("zipfile", "Python zipfile.ZipFile(p).infolist()", "in-process",
         lambda: run_inner([sys.executable, os.path.join(HERE, "pytool.py"), "list", arc], work)[0]),
    ]
    times = {k: [] for k, *_ in tools}
    for r in range(reps):
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for key, _, _, fn in order:
            times[key].append(fn())
    return {"members": members + 1, "reps": reps,
            "tools": [{"key": k, "label": l, "scope": s, "times": times[k], "median": median(times[k])}
                      for k, l, s, _ in tools]}


# ---------------------------------------------------------------- report

def machine_info(work):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.splitlines()[-1].split()
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "fs": f"{fs[1]} ({fs[0]})", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def fmt_s(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.3f} s"


def verdict(ok):
    return "**met**" if ok else "**MISSED**"


def report(res):
    m = res["machine"]
    out = []
    out.append(f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, filesystem {m['fs']}, "
               f"Python {m['python']}; {m['date']}; mode: {res['mode']}")
    for wl, title in (("big", "Create: large files"), ("small", "Create: many small files")):
        if wl not in res:
            continue
        w = res[wl]
        by = {t["key"]: t for t in w["tools"]}
        cat, catf = by["cat"]["median"], by["cat_fsync"]["median"]
        ours, ours_nf = by["ours"]["median"], by["ours_nofsync"]["median"]
        out.append("")
        out.append(f"### {title}: {w['files']} files, {w['bytes'] / 2**20:.0f} MiB "
                   f"(median of {w['reps']}, warm cache)")
        out.append("")
        out.append("| tool | timed | median | min | vs cat | vs cat+fsync | ours-default is N x faster "
                   "| whole process (median) |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for t in w["tools"]:
            md = t["median"]
            out.append(f"| {t['label']} | {t['scope']} | {fmt_s(md)} | {fmt_s(min(t['times']))} "
                       f"| {md / cat:.2f}x | {md / catf:.2f}x "
                       f"| {md / ours:.2f} | {fmt_s(t['outer_median'])} |")
        limit = 1.2 if wl == "big" else 1.3
        peer_need = 1.0 if wl == "big" else 1.5
        peer = by["peer"]["median"]
        out.append("")
        out.append(f"- within {limit}x of cat: --no-fsync {ours_nf / cat:.2f}x of cat "
                   f"{verdict(ours_nf / cat <= limit)}; default (fsync) {ours / catf:.2f}x of cat+fsync "
                   f"{verdict(ours / catf <= limit)} (default vs plain cat: {ours / cat:.2f}x)")
        cmp = "faster" if wl == "big" else f">= {peer_need}x faster"
        out.append(f"- {cmp} than PyPI tacozip: default {peer / ours:.2f}x {verdict(peer / ours > peer_need if wl == 'big' else peer / ours >= peer_need)}, "
                   f"--no-fsync {peer / ours_nf:.2f}x")
        for k in ("zipfile", "zip"):
            o = by[k]["median"]
            out.append(f"- >= 2x faster than {by[k]['label']}: default {o / ours:.2f}x {verdict(o / ours >= 2)}, "
                       f"--no-fsync {o / ours_nf:.2f}x")
        if "ours_T_nofsync" in by:
            t = by["ours_T_nofsync"]["median"]
            out.append(f"- --no-fsync with -T LIST instead of argv (the CLI then skips its per-argument "
                       f"stat() calls): {t / cat:.2f}x of cat {verdict(t / cat <= limit)}")
        if "base" in by:
            b, bn = by["base"]["median"], by["base_nofsync"]["median"]
            out.append(f"- before/after (the tree of {by['base']['label'].split(' of ')[-1]} -> working tree): "
                       f"default {fmt_s(b)} -> {fmt_s(ours)} ({b / catf:.2f}x -> {ours / catf:.2f}x of cat+fsync), "
                       f"--no-fsync {fmt_s(bn)} -> {fmt_s(ours_nf)} ({bn / cat:.2f}x -> {ours_nf / cat:.2f}x of cat)")
        out.append(f"- file list passed on the command line ({w['argv_bytes'] / 1024:.1f} KiB of argv, "
                   f"under ARG_MAX), so -T was not needed; Python tools read the same list from a file")
    if "read_header" in res:
        r = res["read_header"]
        out.append("")
        out.append(f"### tacozip_read_header(): {r['calls']} calls per batch, median of {r['reps']}")
        out.append("")
        out.append("| implementation | calls/s | us/call | ratio |")
        out.append("|---|---:|---:|---:|")
        for k, l in (("ours", "ours (libtacozip.so, linked)"), ("peer", "PyPI 0.13.0 libtacozip.so (dlopen)")):
            v = r[f"{k}_median"]
            out.append(f"| {l} | {v:,.0f} | {1e6 / v:.2f} | {v / r['peer_median']:.2f}x |")
    if "list" in res:
        r = res["list"]
        by = {t["key"]: t for t in r["tools"]}
        zf = by["zipfile"]["median"]
        out.append("")
        out.append(f"### Listing an archive of {r['members']} members (median of {r['reps']})")
        out.append("")
        out.append("| tool | timed | median | zipfile / this |")
        out.append("|---|---|---:|---:|")
        for t in r["tools"]:
            out.append(f"| {t['label']} | {t['scope']} | {fmt_s(t['median'])} | {zf / t['median']:.1f}x |")
        out.append("")
        out.append(f"- >= 5x faster than zipfile: C API {zf / by['c_api']['median']:.1f}x "
                   f"{verdict(zf / by['c_api']['median'] >= 5)}, CLI ls {zf / by['cli_ls']['median']:.1f}x "
                   f"{verdict(zf / by['cli_ls']['median'] >= 5)}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, smaller data (smoke run)")
    ap.add_argument("--reps", type=int, help="repetitions (default 7, quick 3)")
    ap.add_argument("--only", default="big,small,read_header,list",
                    help="comma-separated subset of big,small,read_header,list")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--tacozip", required=True, help="our tacozip CLI")
    ap.add_argument("--bindir", required=True, help="directory of bench_read_header and bench_list")
    ap.add_argument("--peer-python", required=True)
    ap.add_argument("--peer-so", required=True)
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--baseline-tacozip", help="a second tacozip build to time (before/after)")
    ap.add_argument("--baseline-label", default="baseline")
    a = ap.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.reps:
        cfg["reps"] = a.reps
    only = set(a.only.split(","))
    work = os.path.abspath(a.work)
    a.tacozip = os.path.abspath(a.tacozip)
    os.makedirs(work, exist_ok=True)
    outdir = os.path.join(work, "out")
    os.makedirs(outdir, exist_ok=True)
    t_start = time.perf_counter()
    res = {"machine": machine_info(work), "mode": "quick" if a.quick else "full", "config": cfg}
    reps = cfg["reps"]
    if "big" in only:
        res["big"] = bench_create(a, work, outdir, "big", make_big(work, cfg["big_files"], cfg["big_mib"]), reps)
    if "small" in only:
        res["small"] = bench_create(a, work, outdir, "small",
                                    make_small(work, cfg["small_files"], cfg["small_kib"]), reps)
    if "read_header" in only:
        res["read_header"] = bench_read_header(a, work, reps, cfg["rh_calls"])
    if "list" in only:
        res["list"] = bench_list(a, work, reps, cfg["list_members"])
    res["elapsed_s"] = time.perf_counter() - t_start
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(report(res))
    log(f"benchmark took {res['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
