"""Memory of a process from ``/proc/PID/smaps_rollup``, and its children.

USS (unique set size) is what the process alone holds: its private clean and
dirty pages, freed if it exits. PSS shares every shared page out between the
processes mapping it, so the PSS of a master and its workers adds up to
their real footprint.
"""
import argparse
import json
from pathlib import Path

_FIELDS = {"Rss": "rss_kib", "Pss": "pss_kib", "Private_Clean": "_clean",
           "Private_Dirty": "_dirty", "Swap": "swap_kib"}


def mem_kib(pid: int) -> dict:
    """Return ``{rss_kib, pss_kib, uss_kib, swap_kib}`` of ``pid``."""
    out = {"swap_kib": 0}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in _FIELDS:
            out[_FIELDS[key]] = int(rest.split()[0])
    out["uss_kib"] = out.pop("_clean", 0) + out.pop("_dirty", 0)
    return out


def children(pid: int) -> set[int]:
    """Return the pids of ``pid``'s live (not zombie) child processes."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def tree(pid: int) -> dict:
    """Memory of ``pid`` (``master``) and each child (``workers``, by pid)."""
    return {"master": mem_kib(pid),
            "workers": {w: mem_kib(w) for w in sorted(children(pid))}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pid", type=int)
    print(json.dumps(tree(parser.parse_args(argv).pid), indent=1))


if __name__ == "__main__":
    main()
