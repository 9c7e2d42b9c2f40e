"""``housing-api score`` against the same version's in-process batch
predict, and the command's memory for a small and a large file.

The portfolio is real homes resampled from ``kc_house_data.csv`` (the 18
columns of the future examples). Each round runs the in-process predict
(``inprocess.py --csv``: the first 10,000 homes, one native thread, the
chunk the command predicts at a time) and then the command on the whole
file (one native thread too); the command's rows/s is what it prints, its
own reading of the rows from the first read to the last write. Memory: the
peak RSS of the command scoring the small file and the large one
(``peak_rss.py``).
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from batch import InProcess
from common import DATA, HERE, MODELS, ROOT, say
from stores import store_copy

CHUNK_ROWS = 10_000


def portfolio(path: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` homes resampled (with replacement) from the county's sales."""
    columns = pd.read_csv(DATA / "future_unseen_examples.csv", nrows=0).columns
    sales = pd.read_csv(DATA / "kc_house_data.csv", dtype={"zipcode": str})
    sales[list(columns)].sample(rows, replace=True, random_state=seed).to_csv(
        path, index=False)
    return path


def run_score(store: Path, source: Path, work: Path) -> dict:
    """``housing-api score`` on ``source``: its rows/s, wall time, peak RSS."""
    env = {**os.environ, "HOUSING_MODEL_DIR": str(store),
           "HOUSING_INSTANCE_PATH": str(work / "instance"),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    out = work / f"scored-{source.stem}.csv"
    started = time.monotonic()
    # Through peak_rss.py: its small process forks the command (see there).
    proc = subprocess.run(
        [sys.executable, str(HERE / "peak_rss.py"), sys.executable, "-m",
         "housing_api", "score", str(source), str(out)], cwd=ROOT, env=env,
        capture_output=True, text=True)
    wall = time.monotonic() - started
    match = re.search(r"([\d,]+) estimates in .*\(([\d,]+) rows/s\)",
                      proc.stdout)
    if proc.returncode or not match:
        raise RuntimeError(f"housing-api score exited {proc.returncode}: "
                           f"{proc.stdout} {proc.stderr[-2000:]}")
    peak = json.loads(proc.stderr.strip().splitlines()[-1])
    out.unlink()
    return {"rows": int(match.group(1).replace(",", "")),
            "rows_per_s": float(match.group(2).replace(",", "")),
            "wall_s": wall, "max_rss_kib": peak["max_rss_kib"]}


def bench_scoring(args, ctx) -> dict:
    """Interleaved rounds per model, then the memory of a small and a large run."""
    work = ctx["work"]
    big = portfolio(work / "portfolio.csv", args.score_rows)
    small = portfolio(work / "portfolio-small.csv", args.score_small_rows, seed=1)
    huge = (portfolio(work / "portfolio-huge.csv", args.score_memory_rows,
                      seed=2) if args.score_memory_rows else None)
    results = {}
    for model in MODELS:
        store = store_copy(ctx["source"], ctx["versions"], model, work)
        rounds = []
        pool = InProcess(args, ctx, model, 1, csv=big, chunk_rows=CHUNK_ROWS)
        try:
            for r in range(args.rounds):
                inproc = pool.run()
                command = run_score(store, big, work)
                say(f"  score {model} round {r + 1}/{args.rounds}: in-process "
                    f"{inproc['rows_per_s']:,.0f} rows/s, command "
                    f"{command['rows_per_s']:,.0f} rows/s")
                rounds.append({"in-process": inproc, "command": command})
        finally:
            pool.close()
        memory = {"small": run_score(store, small, work)}
        if huge is not None:
            memory["large"] = run_score(store, huge, work)
        say(f"  score {model} memory: " + ", ".join(
            f"{m['rows']:,} rows {m['max_rss_kib'] / 1024:.0f} MiB peak RSS"
            for m in memory.values()))
        results[model] = {"rounds": rounds, "memory": memory}
    for path in (big, small, huge):
        if path is not None:
            path.unlink()
    return results
