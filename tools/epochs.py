"""Keep only some epochs of ``scratchnet train`` output read on stdin (for ``make docs``):
the table's header (not with ``--no-header``), the rows of the epochs given and the lines
under them (the ``--health`` table), and what follows the last row (the summary) with
``--summary``.

    scratchnet train CONFIG --health | python tools/epochs.py 1 50
"""

import re
import sys

from docs import HEALTH_LINE as UNDER  # the --health lines under a row (tools/ is on the path)

ROW = re.compile(r"^ {0,5}\d+ ")  # an epoch row: the number right-aligned in 6 columns


def main() -> None:
    args = sys.argv[1:]
    summary, header = "--summary" in args, "--no-header" not in args
    keep = {int(a) for a in args if a.isdigit()}
    lines = sys.stdin.read().splitlines()
    rows = [i for i, line in enumerate(lines) if ROW.match(line) and not UNDER.match(line)]
    showing = header
    for i, line in enumerate(lines):
        if UNDER.match(line):  # (layer 10's line starts as an epoch row does) with its row
            pass
        elif not rows or i < rows[0]:
            showing = header and line.startswith(" epoch ")
        elif ROW.match(line):
            showing = int(line.split()[0]) in keep
        elif i > rows[-1]:
            showing = summary
        if showing:
            print(line)


if __name__ == "__main__":
    main()
