"""Python-side tools for the benchmark, timed inside the process.

    python pytool.py peer    OUT LISTFILE   # PyPI tacozip.create()
    python pytool.py zipfile OUT LISTFILE   # zipfile.ZipFile(..., ZIP_STORED)
    python pytool.py list    ARCHIVE        # zipfile.ZipFile(p).infolist()

LISTFILE holds one source path per line; members are named by base name.
Prints the seconds spent in the timed region (imports excluded, file list
already read) on stdout, then the number of members written or listed.
"""
import os
import sys
import time


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def main():
    tool = sys.argv[1]
    if tool == "peer":
        import tacozip

        out, files = sys.argv[2], read_list(sys.argv[3])
        names = [os.path.basename(p) for p in files]
        t0 = time.perf_counter()
        tacozip.create(out, files, arc_files=names, entries=[(0, 0)])
        t = time.perf_counter() - t0
        n = len(files)
    elif tool == "zipfile":
        import zipfile

        out, files = sys.argv[2], read_list(sys.argv[3])
        names = [os.path.basename(p) for p in files]
        t0 = time.perf_counter()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
            for src, name in zip(files, names):
                z.write(src, name)
        t = time.perf_counter() - t0
        n = len(files)
    elif tool == "list":
        import zipfile

        t0 = time.perf_counter()
        with zipfile.ZipFile(sys.argv[2]) as z:
            infos = z.infolist()
            n = len(infos)
        t = time.perf_counter() - t0
    else:
        sys.exit(f"unknown tool {tool}")
    print(f"{t:.6f} {n}")


if __name__ == "__main__":
    main()
