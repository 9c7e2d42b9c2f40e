"""Run a command; print its exit status and peak RSS (KiB) as one JSON line.

``wait4``'s ``ru_maxrss`` of a child counts the RSS its parent had when it
forked (Linux keeps that high-water mark across exec): a child forked
from the benchmark, which holds hundreds of MB, would report them. Forked
from this small process instead, the figure is the command's own.
"""
import json
import os
import subprocess
import sys


def main() -> int:
    proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"returncode": code, "max_rss_kib": usage.ru_maxrss}),
          file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
