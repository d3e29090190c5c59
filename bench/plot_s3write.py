#!/usr/bin/env python3
"""plot_s3write.py RESULTS.json -o OUT.png - the figure of bench_s3write.py:
wall time (stacked: write, upload) and peak local disk of each way of
getting an archive into S3, for both data sets."""
import argparse
import json
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"ours_s3": "ours,\nstraight to S3", "ours_then_up": "ours to disk,\nthen boto3",
         "pypi_then_up": "PyPI tacozip to disk,\nthen boto3"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    res = json.load(open(a.results))
    fig, axes = plt.subplots(2, len(res), figsize=(5 * len(res), 6.5), squeeze=False)
    for col, (name, r) in enumerate(res.items()):
        cases = list(r["runs"])
        write = [statistics.median(x["steps"][0] for x in r["runs"][c]) for c in cases]
        up = [statistics.median(x["steps"][1] for x in r["runs"][c]) if len(r["runs"][c][0]["steps"]) > 1 else 0
              for c in cases]
        ax = axes[0][col]
        labels = [NAMES[c] for c in cases]
        ax.bar(labels, write, color=["#1f77b4", "#7f7f7f", "#bcbd22"], label="write (straight: write and upload)")
        ax.bar(labels, up, bottom=write, color="#d62728", alpha=0.6, label="boto3 upload_file")
        ax.set_ylabel("wall time, s (median)")
        ax.set_title(r["label"])
        ax.legend(fontsize=7)
        ax.tick_params(axis="x", labelsize=8)
        disk = [max(x["peak_disk"] for x in r["runs"][c]) / 1048576 for c in cases]
        ax = axes[1][col]
        ax.bar(labels, disk, color="#9467bd")
        for i, d in enumerate(disk):
            ax.text(i, d, f"{d:.0f} MiB", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("peak local disk, MiB")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("Writing an archive to S3 (local moto server), bench/run.sh --s3write")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
