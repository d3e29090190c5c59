"""``python -m tacozip``: runs the real ``tacozip`` executable that the wheel
installs into the environment's scripts directory (bin/), in place of this
Python process, so that its exit status and signals are the command's own.
"""

import os
import subprocess
import sys
import sysconfig

_NAME = "tacozip.exe" if os.name == "nt" else "tacozip"


def executable() -> str:
    """Path of the installed ``tacozip`` command (beside this interpreter,
    or in the scripts directory of this installation scheme)."""
    seen = []
    dirs = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    try:
        dirs.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    for d in dirs:
        if not d or d in seen:
            continue
        seen.append(d)
        p = os.path.join(d, _NAME)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError("the tacozip executable is not installed in %s" % " or ".join(seen))


def main() -> int:
    """Run the command with this process's arguments; return its exit status."""
    try:
        exe = executable()
    except FileNotFoundError as e:
        print("tacozip: %s" % e, file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.call([exe] + sys.argv[1:])


if __name__ == "__main__":
    try:
        exe = executable()
    except FileNotFoundError as e:
        print("tacozip: %s" % e, file=sys.stderr)
        sys.exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(exe, [exe] + sys.argv[1:])
    sys.exit(subprocess.call([exe] + sys.argv[1:]))
