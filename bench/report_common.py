"""Medians, number formats and per-worker USS, shared by the report's sections."""
import statistics

from common import MB


def med(values) -> float:
    return statistics.median(values)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def kib_mb(kib: float) -> str:
    return f"{kib * 1024 / MB:.1f}"


def extra_uss(memory: dict) -> dict | None:
    """USS one more worker adds: the change in all processes' USS per added
    worker between the smallest and largest worker counts, and the largest
    single worker's USS."""
    if len(memory) < 2:
        return None
    counts = sorted(memory, key=int)
    lo, hi = memory[counts[0]], memory[counts[-1]]

    def total(m):
        return m["master"]["uss_kib"] + sum(w["uss_kib"] for w in
                                            m["workers"].values())

    delta = (total(hi) - total(lo)) * 1024 / (int(counts[-1]) - int(counts[0]))
    largest = max(w["uss_kib"] for m in memory.values()
                  for w in m["workers"].values()) * 1024
    return {"from": counts[0], "to": counts[-1], "delta": delta,
            "largest": largest, "worst": max(delta, largest)}
