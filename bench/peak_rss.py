"""Run a command and report its peak RSS: `python peak_rss.py OUT_FILE CMD...` writes {"peak_rss_mb": ...} to OUT_FILE.

Linux counts the pre-exec image of a forked child in ru_maxrss, so the child is started from this small
process rather than from the big bench process; the command's stdout and exit code pass through.
"""

import json
import os
import subprocess
import sys

if __name__ == "__main__":
    out_file, argv = sys.argv[1], sys.argv[2:]
    process = subprocess.Popen(argv)
    _, status, usage = os.wait4(process.pid, 0)
    with open(out_file, "w") as out:
        json.dump({"peak_rss_mb": usage.ru_maxrss / 1024}, out)
    sys.exit(os.waitstatus_to_exitcode(status))
