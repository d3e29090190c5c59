"""The ``tacozip`` command, run from the compiled extension."""

import sys

from . import _tacozip


def main() -> int:
    argv = ["tacozip"] + sys.argv[1:]
    sys.stdout.flush()
    return _tacozip.cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
