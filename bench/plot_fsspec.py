"""plot_fsspec.py - the ratios zip:// / taco:// of bench_fsspec.py's JSON.

    python bench/plot_fsspec.py RESULTS.json [-o docs/img/fsspec-vs-zip.png]

One group of bars per workload (a-e): bytes and wall time of fsspec's
zip:// divided by taco://'s (its defaults), over HTTP (nginx) and, when
measured, S3 (moto); black diamonds: the taco:// variant that moves the
fewest bytes (index_first, default_cache_type="none"...); log scale, with issue #9's targets drawn as lines
(>= 10x fewer bytes and >= 3x less time on a, b, d; c >= 10x faster).
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"a": "(a) Parquet\nrow group", "b": "(b) one tile\nof 20,000", "c": "(c) find over\n100,000",
          "d": "(d) NetCDF\ntime slice", "e": "(e) dd.read_parquet\n50 members"}


def ratios(results):
    """{(backend, workload): (bytes ratio, time ratio)} of taco:// defaults against zip://"""
    by = {}
    for r in results:
        if r.get("error") or "time" not in r:
            continue
        by.setdefault((r["backend"], r["workload"]), {})[r["kind"] if r["kind"] != "variant" else r["client"]] = r
    out, best = {}, {}
    for key, d in by.items():
        if "taco" in d and "zip" in d:
            t, z = d["taco"], d["zip"]
            out[key] = (z["bytes"] / max(t["bytes"], 1), z["time"] / t["time"])
            # the taco:// variant (index_first, another cache) that moves the fewest bytes
            vs = [v for k, v in d.items() if k not in ("taco", "zip")]
            if vs:
                v = min(vs, key=lambda v: v["bytes"])
                best[key] = (z["bytes"] / max(v["bytes"], 1), z["time"] / v["time"])
    return out, best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("-o", "--out", default="docs/img/fsspec-vs-zip.png")
    a = ap.parse_args()
    with open(a.json) as f:
        doc = json.load(f)
    rat, best = ratios(doc["results"])
    workloads = [w for w in "abcde" if any(k[1] == w for k in rat)]
    backends = [b for b in ("http", "s3") if any(k[0] == b for k in rat)]
    series = [(b, i) for b in backends for i in (0, 1)]  # i: 0 bytes, 1 time
    colors = {("http", 0): "#4c72b0", ("http", 1): "#dd8452", ("s3", 0): "#9db4d8", ("s3", 1): "#f0bd96"}
    names = {"http": "HTTP", "s3": "S3"}
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=90)
    for j, (b, i) in enumerate(series):
        xs, ys = [], []
        for x, w in enumerate(workloads):
            if (b, w) in rat:
                xs.append(x - 0.4 + width * (j + 0.5))
                ys.append(rat[(b, w)][i])
        bars = ax.bar(xs, ys, width, color=colors[(b, i)], hatch="//" if b == "s3" else None, edgecolor="white",
                      linewidth=0.5, label=f"{'bytes' if i == 0 else 'wall time'}, {names[b]}")
        vx = [x - 0.4 + width * (j + 0.5) for x, w in enumerate(workloads) if (b, w) in best]
        vy = [best[(b, w)][i] for w in workloads if (b, w) in best]
        ax.plot(vx, vy, "D", color="black", markersize=3.5, linestyle="none",
                label="taco:// variant: index_first, a smaller cache, pickle_directory" if j == 0 else None)
        for bar, y in zip(bars, ys):
            ax.text(bar.get_x() + bar.get_width() / 2, y * 1.08, f"{y:.0f}" if y >= 10 else f"{y:.1f}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.axhline(1, color="black", linewidth=0.8)
    ax.axhline(10, color="#c44e52", linestyle="--", linewidth=1, label="target: 10x bytes (a, b, d); 10x time (c)")
    ax.axhline(3, color="#55a868", linestyle=":", linewidth=1.5, label="target: 3x time (a, b, d)")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([LABELS[w] for w in workloads], fontsize=8)
    ax.set_ylabel("zip:// / taco:// (higher: taco:// better)", fontsize=8)
    top = max(max(v) for v in list(rat.values()) + list(best.values()))
    ax.set_ylim(0.1, top * 3)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title("fsspec: taco:// against zip://, same archives and servers (defaults of both)", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90, pil_kwargs={"optimize": True})
    print(f"plot_fsspec: wrote {a.out}")


if __name__ == "__main__":
    main()
