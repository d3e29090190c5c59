#!/usr/bin/env python3
"""bench_remote.py - remote reading: tacozip vs zipfile over fsspec/s3fs.

Run through `bench/run.sh --remote`, which builds the CLI, the library and
bench/bench_remote.c, and runs this script with a Python that has our
package, fsspec, aiohttp, s3fs and moto[server] (bench/requirements-remote.txt).

One run:
  1. builds (once, reused from bench/work/remote/) a TACO archive of 4,096
     members of 256 KiB (1 GiB) with our CLI;
  2. serves it with a local nginx (generated config; access log with
     $request $status $http_range $body_bytes_sent) and uploads it to a local
     moto S3 server (ThreadedMotoServer in its own process; every request it
     answers is logged with its status and body bytes);
  3. picks 100 members scattered over the archive (fixed seed; given to every
     client in archive order, which helps the read-ahead caches of the peers)
     and, for each client, in a fresh process: open + list every member +
     fetch those 100 members.  Ours runs with the default gap, with
     max_gap=0 and (S3) with 16 MiB; a variant of the s3fs peer uses a 5 MiB
     read-ahead.  The bytes are checked against the local file (untimed).
     Requests and body bytes are counted on the SERVER side (nginx log /
     moto log), per run;
  4. repeats every client several times, interleaved (the order rotates each
     repetition), and prints a Markdown report of the medians, with ratios
     against ours measured in the same run.

Timing scope: inside the client process, from before the open to the last
member's bytes in hand (interpreter start and imports excluded; the
whole-process time is recorded too).  Server processes run beside the
clients on the same 2 cores.

About moto: a stock moto S3 reads the WHOLE object into memory for every GET,
ranged or not (FakeKey.value), so each range request of a 1 GiB object
costs 0.4-0.75 s here and the server, not the client, would be measured.
The server process started here patches that one thing: a GET with a single
"bytes=" range reads just that range from moto's stored copy.  Status codes,
headers, ETags and everything else are moto's own.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261122
BUCKET = "tacozip-bench"
TAIL = 64 * 1024 + 1024  # the suffix request of our open (src/zipread.c TAIL_MAX)
DEFAULT_GAP = 1 << 20     # tacozip's default coalescing gap
MAX_GROUP = 64 << 20      # tacozip's largest coalesced request

FULL = dict(reps=7, members=4096, member_kib=256, pick=100)
QUICK = dict(reps=2, members=512, member_kib=256, pick=100)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the archive

def make_archive(work, cli, n, kib):
    """n members of kib KiB, names tiles/GG/NNNNN.bin; each member distinct
    (its index in the first 8 bytes, then a slice of one random block)."""
    d = os.path.join(work, "remote")
    os.makedirs(d, exist_ok=True)
    arc = os.path.join(d, f"remote-{n}x{kib}K.taco")
    if os.path.exists(arc + ".ok"):
        return arc
    src = os.path.join(d, "src")
    shutil.rmtree(src, ignore_errors=True)
    log(f"generating {n} x {kib} KiB and building {arc}")
    size = kib << 10
    block = os.urandom(32 << 20)
    for i in range(n):
        p = os.path.join(src, "tiles", f"{i // 256:02d}")
        if i % 256 == 0:
            os.makedirs(p, exist_ok=True)
        off = (i * 8191 * 8) % (len(block) - size)
        with open(os.path.join(p, f"{i:05d}.bin"), "wb") as f:
            f.write(i.to_bytes(8, "little"))
            f.write(memoryview(block)[off:off + size - 8])
    subprocess.run([cli, "create", arc, "--no-fsync", "--no-progress", "tiles"], cwd=src, check=True)
    subprocess.run([cli, "validate", arc], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(src)
    open(arc + ".ok", "w").close()
    return arc


def layout(arc):
    """Members and directory position of the local archive (our reader for
    the offsets, zipfile's own EOCD parser for the directory)."""
    import tacozip
    with tacozip.open(arc) as a:
        members = list(a.members)
    with open(arc, "rb") as f:
        end = zipfile._EndRecData(f)
    size = os.path.getsize(arc)
    return members, size, end[zipfile._ECD_OFFSET], end[zipfile._ECD_SIZE]


def expected_ours(picks, size, cd_off, cd_size, gap):
    """What our reader should transfer, by the rules in src/zipread.c and
    src/archive.c: the 65 KiB tail; when the directory does not fit in the
    tail, the part of it before the tail; then each picked member from its
    local header to the end of its data, neighbours at most `gap` apart
    merged (groups <= 64 MiB)."""
    tail = min(TAIL, size)
    dir_req = min(cd_off + cd_size, size - tail) - cd_off if cd_off < size - tail else 0
    groups = []
    for m in sorted(picks, key=lambda m: m.header_offset):
        o, e = m.header_offset, m.offset + m.size
        if groups and o <= groups[-1][1] + gap and e - groups[-1][0] <= MAX_GROUP:
            groups[-1][1] = max(groups[-1][1], e)
        else:
            groups.append([o, e])
    fetched = sum(e - o for o, e in groups)
    lfh = sum(m.offset - m.header_offset for m in picks)
    needed = sum(m.size for m in picks)
    return {"requests": 1 + (dir_req > 0) + len(groups), "bytes": tail + dir_req + fetched, "tail": tail,
            "directory": dir_req, "local_headers": lfh, "gaps": fetched - lfh - needed, "groups": len(groups)}


# ---------------------------------------------------------------- servers

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from taco_nginx import NginxError, NginxProcess, find_nginx  # noqa: E402


class Nginx(NginxProcess):
    """The shared throwaway nginx (tests/support/taco_nginx.py), logging
    request, status, Range and body bytes."""

    def __init__(self, root):
        binary = find_nginx()
        if binary is None:
            sys.exit("bench_remote: nginx is required (apt-get install nginx, or set TACOZIP_NGINX)")
        self.tmpdir = tempfile.mkdtemp(prefix="tacozip-bench-nginx-")
        super().__init__(binary, self.tmpdir, root, "$request\\t$status\\t$http_range\\t$body_bytes_sent")
        try:
            self.start()
        except NginxError as e:
            sys.exit(f"bench_remote: {e}")

    def reset(self):
        self.truncate_log()

    def records(self):
        recs = []
        for ln in settled_lines(str(self.access_log)):
            request, status, rng, body = ln.split("\t")
            recs.append((request.split(" ")[0], int(status), None if rng == "-" else rng, int(body)))
        return recs

    def stop(self):
        super().stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def settled_lines(path, settle=0.05, timeout=3.0):
    """The log's lines once no new one arrived for `settle` seconds (servers
    write a request's line just after its last byte went out)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        with open(path) as f:
            lines = [ln for ln in f.read().split("\n") if ln]
        if lines == last or time.monotonic() > deadline:
            return lines
        last = lines
        time.sleep(settle)


class Moto:
    """moto's ThreadedMotoServer in a child process (serve_moto below), so
    that it does not share an interpreter (GIL) with the benchmark driver."""

    def __init__(self, python):
        self.tmp = tempfile.mkdtemp(prefix="tacozip-bench-moto-")
        self.log = os.path.join(self.tmp, "requests.log")
        env = dict(os.environ, TMPDIR=self.tmp)  # moto's copies of the object go here
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "_moto", self.log], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            sys.exit(f"bench_remote: moto did not start ({line!r}); pip install 'moto[server]'")
        self.endpoint = f"http://127.0.0.1:{line}"
        self.env = dict(AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                        AWS_REGION="us-east-1")

    def upload(self, path, key):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
        c = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="bench",
                         aws_secret_access_key="bench", config=Config(s3={"addressing_style": "path"}))
        c.create_bucket(Bucket=BUCKET)
        c.upload_file(path, BUCKET, key, Config=TransferConfig(multipart_threshold=8 << 30))  # one PUT
        head = c.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == os.path.getsize(path), head

    def reset(self):
        open(self.log, "w").close()

    def records(self):
        recs = []
        for ln in settled_lines(self.log):
            method, status, rng, body, _path = ln.split("\t")
            recs.append((method, int(status), None if rng == "-" else rng, int(body)))
        return recs

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def serve_moto(logpath):
    """(child process) moto S3 on 127.0.0.1, a free port printed on stdout;
    logs every request (method, status, Range, body bytes, path) once its
    response is sent; stops when stdin closes."""
    import logging

    from moto.moto_server import werkzeug_app
    from moto.s3 import models, responses
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    ranged = threading.local()
    simple_range = re.compile(r"bytes=(\d+-\d*|-\d+)")

    class RangeView:
        """Stands for FakeKey.value during a ranged GET: moto takes len() and
        one slice of it (S3Response._handle_range_header)."""

        def __init__(self, key):
            self.key = key

        def __len__(self):
            return self.key.size

        def __getitem__(self, s):
            start, stop, _ = s.indices(self.key.size)
            with self.key.lock:
                self.key._value_buffer.seek(start)
                return self.key._value_buffer.read(max(0, stop - start))

    value = models.FakeKey.value

    def value_get(self):
        return RangeView(self) if getattr(ranged, "on", False) else value.fget(self)

    models.FakeKey.value = property(value_get, value.fset)
    key_response = responses.S3Response.key_response

    def key_response_ranged(self, request, full_url, headers):
        ranged.on = request.method == "GET" and bool(simple_range.fullmatch(request.headers.get("range", "")))
        try:
            status, hdrs, body = key_response(self, request, full_url, headers)
        finally:
            ranged.on = False
        if isinstance(body, RangeView):  # not sliced after all: the whole object
            body = body[0:len(body)]
        return status, hdrs, body

    responses.S3Response.key_response = key_response_ranged

    out = open(logpath, "a", buffering=1)
    out_lock = threading.Lock()

    class Counted:
        def __init__(self, body, environ, status):
            self.body, self.environ, self.status, self.n = body, environ, status, 0

        def __iter__(self):
            for chunk in self.body:
                self.n += len(chunk)
                yield chunk

        def close(self):
            if hasattr(self.body, "close"):
                self.body.close()
            e = self.environ
            n = 0 if e["REQUEST_METHOD"] == "HEAD" else self.n
            with out_lock:
                out.write(f"{e['REQUEST_METHOD']}\t{self.status[0] if self.status else 0}\t"
                          f"{e.get('HTTP_RANGE') or '-'}\t{n}\t{e.get('PATH_INFO')}\n")

    call = werkzeug_app.DomainDispatcherApplication.__call__

    def counted_call(self, environ, start_response):
        status = []

        def sr(s, hdrs, exc_info=None):
            status[:] = [s.split()[0]]
            return start_response(s, hdrs, exc_info)

        return Counted(call(self, environ, sr), environ, status)

    werkzeug_app.DomainDispatcherApplication.__call__ = counted_call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the driver closes our stdin
    server.stop()


# ---------------------------------------------------------------- clients

def run_client(kind, url, picks_file, local, gap):
    """(child process) one measurement; prints a JSON line."""
    with open(picks_file) as f:
        picks = [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]
    names = [p[0] for p in picks]
    max_gap = None if gap in ("default", "-") else int(gap)
    stats = None
    if kind == "ours":
        import tacozip
        t0 = time.perf_counter()
        a = tacozip.open(url)
        listed = len(a.members)
        data = a.read_many(names, max_gap=max_gap)
        t = time.perf_counter() - t0
        stats = a.stats
        a.close()
    elif kind in ("zipfile_http", "zipfile_s3", "zipfile_s3_5m"):
        import fsspec
        if kind != "zipfile_http":
            import s3fs
        t0 = time.perf_counter()
        if kind == "zipfile_http":
            f = fsspec.filesystem("http").open(url, "rb")
        else:
            opts = {"default_block_size": 5 << 20} if kind == "zipfile_s3_5m" else {}
            fs = s3fs.S3FileSystem(key=os.environ["AWS_ACCESS_KEY_ID"], secret=os.environ["AWS_SECRET_ACCESS_KEY"],
                                   client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"],
                                                  "region_name": "us-east-1"}, **opts)
            f = fs.open(url[len("s3://"):], "rb")
        z = zipfile.ZipFile(f)
        listed = len(z.infolist())
        data = {n: z.read(n) for n in names}
        t = time.perf_counter() - t0
        z.close()
        f.close()
    elif kind == "zipfs_http":
        import fsspec
        t0 = time.perf_counter()
        fs = fsspec.filesystem("zip", fo=url)  # = "zip::" + url
        listed = len(fs.find(""))
        data = fs.cat(names)
        t = time.perf_counter() - t0
    else:
        raise SystemExit(f"unknown client {kind}")
    # untimed: every byte against the local archive
    with open(local, "rb") as f:
        for name, off, size in picks:
            f.seek(int(off))
            if data[name] != f.read(int(size)):
                raise SystemExit(f"{kind}: member {name} differs from the local archive")
    print(json.dumps({"t": t, "listed": listed, "stats": stats}))


# ---------------------------------------------------------------- driver

def machine_info():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import platform
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def versions():
    out = {}
    for mod in ("tacozip", "fsspec", "aiohttp", "s3fs", "aiobotocore", "moto", "boto3"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a version is context only
            out[mod] = "?"
    out["nginx"] = subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-v"], capture_output=True,
                                  text=True).stderr.strip().split("/")[-1]
    try:
        out["libcurl"] = subprocess.run(["curl-config", "--version"], capture_output=True, text=True).stdout.split()[-1]
    except OSError:
        out["libcurl"] = "?"
    return out


def clients(a, http_url, s3_url, env_s3):
    """(key, protocol, label, argv, env, reference key)"""
    me = [sys.executable, os.path.abspath(__file__), "_client"]
    rows = [
        ("ours_http", "http", "ours: tacozip.open(url) + .members + .read_many(names)",
         me + ["ours", http_url, a.picks, a.archive, "default"], None),
        ("ours_http_gap0", "http", "ours, read_many(..., max_gap=0) (no coalescing)",
         me + ["ours", http_url, a.picks, a.archive, "0"], None),
    ]
    if a.cbin:
        rows.append(("c_http", "http", "ours, C API: tacozip_open_ex + member_at + tacozip_read_members",
                     [a.cbin, http_url, a.picks, a.archive, "default"], None))
    rows += [
        ("zipfile_http", "http", "zipfile.ZipFile(fsspec.filesystem('http').open(url))",
         me + ["zipfile_http", http_url, a.picks, a.archive, "-"], None),
        ("zipfs_http", "http", "fsspec ZipFileSystem (zip::http://...), .find + .cat(names)",
         me + ["zipfs_http", http_url, a.picks, a.archive, "-"], None),
        ("ours_s3", "s3", "ours: tacozip.open('s3://...') + .members + .read_many(names)",
         me + ["ours", s3_url, a.picks, a.archive, "default"], env_s3),
        ("ours_s3_gap0", "s3", "ours, read_many(..., max_gap=0) (no coalescing)",
         me + ["ours", s3_url, a.picks, a.archive, "0"], env_s3),
        ("ours_s3_gap16m", "s3", "ours, read_many(..., max_gap=16 MiB) (coalescing like a 50 MiB read-ahead)",
         me + ["ours", s3_url, a.picks, a.archive, str(16 << 20)], env_s3),
        ("zipfile_s3", "s3", "zipfile.ZipFile(s3fs.S3FileSystem(...).open(key))",
         me + ["zipfile_s3", s3_url, a.picks, a.archive, "-"], env_s3),
        ("zipfile_s3_5m", "s3", "same, S3FileSystem(default_block_size=5 MiB) (fsspec HTTP's read-ahead)",
         me + ["zipfile_s3_5m", s3_url, a.picks, a.archive, "-"], env_s3),
    ]
    return rows


def run_one(key, argv, env, server, expect_listed):
    server.reset()
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    outer = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(f"{key} failed ({r.returncode}): {r.stderr[-3000:]}")
    recs = server.records()
    if key == "c_http":
        t, req, nbytes, listed = r.stdout.split()
        res = {"t": float(t), "listed": int(listed), "stats": [int(req), int(nbytes)]}
    else:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    if res["listed"] != expect_listed:
        raise RuntimeError(f"{key} listed {res['listed']} members, the archive has {expect_listed}")
    bad = [x for x in recs if x[1] not in (200, 206)]
    if bad:
        raise RuntimeError(f"{key}: unexpected answers {bad[:5]}")
    return {"t": res["t"], "outer": outer, "requests": len(recs), "bytes": sum(x[3] for x in recs),
            "heads": sum(1 for x in recs if x[0] == "HEAD"), "full_gets": sum(1 for x in recs if x[2] is None
                                                                               and x[0] == "GET"),
            "client_stats": res["stats"], "log": recs}


def fmt_s(t):
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def fmt_b(n):
    return f"{n / 2**20:,.1f} MiB" if abs(n) >= 2**20 else f"{n / 1024:,.1f} KiB"


def verdict(ok):
    return "**met**" if ok else "**MISSED**"


def report(res):
    m, v = res["machine"], res["versions"]
    out = [f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, Python {m['python']}; {m['date']}; "
           f"mode: {res['mode']}",
           "Software: " + ", ".join(f"{k} {x}" for k, x in v.items()),
           f"Archive: {res['members']:,} members + TACO_HEADER, {fmt_b(res['size'])} ({res['size']:,} bytes), "
           f"directory {res['cd_size']:,} bytes; {res['pick']} members picked (seed {SEED}), "
           f"{res['needed']:,} bytes needed; median of {res['reps']} interleaved runs"]
    by = {c["key"]: c for c in res["clients"]}
    for proto, title, ref in (("http", "HTTP (nginx)", "ours_http"), ("s3", "S3 (moto)", "ours_s3")):
        rows = [c for c in res["clients"] if c["protocol"] == proto]
        o = by[ref]
        out += ["", f"### {title}", "",
                "| client | requests | bytes transferred | bytes needed | transferred - needed | wall time "
                "| min | requests / ours | bytes / ours | time / ours | whole process |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for c in rows:
            req = f"{c['requests']:g}" + (f" ({c['heads']:g} HEAD)" if c["heads"] else "")
            out.append(f"| {c['label']} | {req} | {c['bytes']:,.0f} ({fmt_b(c['bytes'])}) | {res['needed']:,} "
                       f"| {fmt_b(c['bytes'] - res['needed'])} | {fmt_s(c['median'])} | {fmt_s(c['min'])} "
                       f"| {c['requests'] / o['requests']:.2f} | {c['bytes'] / o['bytes']:.2f} "
                       f"| {c['median'] / o['median']:.2f} | {fmt_s(c['outer_median'])} |")
        e = res["expected"]["default"]
        peers = [c for c in rows if not c["key"].startswith(("ours", "c_"))]
        out.append("")
        fewest = min(peers, key=lambda c: c["requests"])
        out.append(f"- fewer requests than any peer: ours {o['requests']:g}, fewest peer {fewest['requests']:g} "
                   f"({fewest['key']}) {verdict(o['requests'] < fewest['requests'])}")
        out.append(f"- bytes: ours transferred {o['bytes']:,.0f} = needed {res['needed']:,} + "
                   f"{o['bytes'] - res['needed']:,.0f}; predicted overhead: tail {e['tail']:,} + directory "
                   f"{e['directory']:,} + local headers {e['local_headers']:,} + gaps {e['gaps']:,} "
                   f"({e['groups']} groups) = {e['bytes'] - res['needed']:,} "
                   f"{verdict(o['bytes'] <= e['bytes'])}")
        for c in peers:
            out.append(f"- >= 2x faster than {c['key']}: {c['median'] / o['median']:.2f}x "
                       f"{verdict(c['median'] / o['median'] >= 2)}")
        g0 = by[ref + "_gap0"]
        e0 = res["expected"]["gap0"]
        out.append(f"- max_gap=0: {g0['requests']:g} requests (predicted {e0['requests']}), "
                   f"{g0['bytes']:,.0f} bytes (predicted {e0['bytes']:,}), time {g0['median'] / o['median']:.2f}x "
                   f"of the default gap")
        if ref + "_gap16m" in by:
            g = by[ref + "_gap16m"]
            e16 = res["expected"]["gap16m"]
            out.append(f"- max_gap=16 MiB: {g['requests']:g} requests (predicted {e16['requests']}), "
                       f"{g['bytes']:,.0f} bytes (predicted {e16['bytes']:,}), time {g['median'] / o['median']:.2f}x "
                       f"of the default gap")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 repetitions, 128 MiB archive (smoke run)")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--tacozip", required=True, help="our tacozip CLI (builds the archive)")
    ap.add_argument("--cbin", help="bench_remote (C API client); omitted: no C row")
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.reps:
        cfg["reps"] = a.reps
    t_start = time.perf_counter()
    work = os.path.abspath(a.work)
    a.archive = make_archive(work, os.path.abspath(a.tacozip), cfg["members"], cfg["member_kib"])
    root, fname = os.path.split(a.archive)
    members, size, cd_off, cd_size = layout(a.archive)
    cand = [m for m in members if m.name != "TACO_HEADER"]
    picks = sorted(random.Random(SEED).sample(cand, cfg["pick"]), key=lambda m: m.offset)
    a.picks = os.path.join(root, "picks.tsv")
    with open(a.picks, "w") as f:
        f.write("".join(f"{m.name}\t{m.offset}\t{m.size}\n" for m in picks))
    needed = sum(m.size for m in picks)
    with open(a.archive, "rb") as f:  # warm page cache (nginx serves it from there)
        while f.read(16 << 20):
            pass

    nginx = moto = None
    res = {"machine": machine_info(), "versions": versions(), "mode": "quick" if a.quick else "full",
           "reps": cfg["reps"], "members": len(cand), "size": size, "cd_offset": cd_off, "cd_size": cd_size,
           "pick": len(picks), "needed": needed, "picks": [m.name for m in picks],
           "expected": {"default": expected_ours(picks, size, cd_off, cd_size, DEFAULT_GAP),
                        "gap0": expected_ours(picks, size, cd_off, cd_size, 0),
                        "gap16m": expected_ours(picks, size, cd_off, cd_size, 16 << 20)}}
    try:
        nginx = Nginx(root)
        log(f"nginx on {nginx.base}; starting moto and uploading {fmt_b(size)}")
        moto = Moto(sys.executable)
        t0 = time.perf_counter()
        moto.upload(a.archive, fname)
        log(f"moto on {moto.endpoint}; upload took {time.perf_counter() - t0:.1f} s")
        env_s3 = dict(os.environ, **moto.env)
        for k in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_NO_SIGN_REQUEST",
                  "AWS_PROFILE"):
            env_s3.pop(k, None)
        rows = clients(a, f"{nginx.base}/{fname}", f"s3://{BUCKET}/{fname}", env_s3)
        runs = {r[0]: [] for r in rows}
        total = len(members)
        log(f"{len(rows)} clients x ({cfg['reps']} reps + 1 warm-up), {len(picks)} members of {len(members)}")
        for rep in range(cfg["reps"] + 1):
            order = rows[rep % len(rows):] + rows[:rep % len(rows)]
            for key, proto, _, argv, env in order:
                r = run_one(key, argv, env, nginx if proto == "http" else moto, total)
                if rep:  # rep 0 warms up (page cache, .pyc, server threads) and checks every client once
                    runs[key].append(r)
            if rep:
                log(f"  rep {rep}/{cfg['reps']}: " + ", ".join(
                    f"{k} {runs[k][-1]['t']:.3f}s/{runs[k][-1]['requests']}" for k in runs))
        res["clients"] = []
        for key, proto, label, _, _ in rows:
            rs = runs[key]
            res["clients"].append({
                "key": key, "protocol": proto, "label": label, "runs": rs,
                "median": statistics.median(r["t"] for r in rs), "min": min(r["t"] for r in rs),
                "outer_median": statistics.median(r["outer"] for r in rs),
                "requests": statistics.median(r["requests"] for r in rs),
                "bytes": statistics.median(r["bytes"] for r in rs),
                "heads": statistics.median(r["heads"] for r in rs)})
    finally:
        if moto:
            moto.stop()
        if nginx:
            nginx.stop()
    res["elapsed_s"] = time.perf_counter() - t_start
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(report(res))
    log(f"remote benchmark took {res['elapsed_s']:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_moto":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve_moto(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_client":
        run_client(*sys.argv[2:7])
    else:
        main()
