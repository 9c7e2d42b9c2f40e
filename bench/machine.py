"""The machine, software and commit a run measures on, for the report."""
import os
import platform
import subprocess
from importlib import metadata as pkg_metadata
from pathlib import Path

from common import ROOT


def machine(wrk: str) -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]

    def version(name):
        try:
            return pkg_metadata.version(name)
        except pkg_metadata.PackageNotFoundError:
            return "absent"

    def git(*argv):
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    wrk_v = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    return {
        "nproc": len(os.sched_getaffinity(0)), "cpu": cpu,
        "memory_gib": int(mem) / 2**20, "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in (
            "gunicorn", "flask", "flask-smorest", "marshmallow", "numpy",
            "scikit-learn", "lightgbm")},
        "wrk": (wrk_v.stdout + wrk_v.stderr).splitlines()[0].split(" [")[0],
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
