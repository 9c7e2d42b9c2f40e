"""/v1/predict/batch rounds against the model's own batch predict in-process."""
import json
import os
import statistics
import subprocess
import sys

from common import HERE, ROOT, say
from load import short, wrk
from processes import call, gunicorn
from stores import store_copy


def lean_option(ctx) -> list[str]:
    """inprocess.py's --lean for the production variant, if there is one."""
    production = next(v for v in ctx["variants"] if v.production)
    lean = production.env.get("HOUSING_LEAN_INFERENCE")
    return [] if lean is None else ["--lean", lean]


class InProcess:
    """``n`` single-thread processes running inprocess.py, in step."""

    def __init__(self, args, ctx, model: str, n: int, explain: bool = False,
                 csv=None, chunk_rows: int = 10_000):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}
        self.procs = [subprocess.Popen(
            [sys.executable, str(HERE / "inprocess.py"),
             "--model-dir", str(ctx["source"]),
             "--version", ctx["versions"][model],
             *(["--bodies", str(ctx["batch"])] if csv is None else
               ["--csv", str(csv), "--chunk-rows", str(chunk_rows)]),
             "--duration", str(args.duration),
             *lean_option(ctx), *(["--explain"] if explain else [])],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True) for _ in range(n)]
        self.info = [self._line(p) for p in self.procs]

    @staticmethod
    def _line(proc) -> dict:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"inprocess.py exited with {proc.wait()}")
        return json.loads(line)

    def run(self) -> dict:
        for p in self.procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        each = [self._line(p) for p in self.procs]
        return {"rows_per_s": sum(e["rows_per_s"] for e in each),
                "ms_per_call": statistics.mean(e["ms_per_call"] for e in each),
                "processes": each, "load1": os.getloadavg()[0]}

    def close(self) -> None:
        for p in self.procs:
            p.stdin.close()
            p.wait(30)


def bench_batch(args, ctx, model: str) -> dict:
    """Interleaved rounds: in-process batch predict, then the batch endpoint
    at the same number of busy processes (one native thread each)."""
    rows = args.batch_rows
    store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
    results = {}
    with gunicorn("service", store, workers=args.workers,
                  expect_version=ctx["versions"][model]) as server:
        body = json.loads(ctx["batch"].read_text())
        status, answer = call(server.url, "POST", "/v1/predict/batch", body)
        if status != 200 or answer["count"] != rows:
            raise RuntimeError(f"batch request -> {status}")
        wrk(args, server.url, "/v1/predict/batch", ctx["batch"], 1, args.warmup)
        for c in args.batch_connections:
            pool = InProcess(args, ctx, model, c)
            try:
                rounds = results.setdefault(str(c), [])
                for r in range(args.rounds):
                    inproc = pool.run()
                    say(f"  batch {model} c={c} round {r + 1}/{args.rounds} "
                        f"in-process: {inproc['rows_per_s']:,.0f} rows/s")
                    svc = wrk(args, server.url, "/v1/predict/batch",
                              ctx["batch"], c, args.duration)
                    svc["rows_per_s"] = svc["rps"] * rows
                    say(f"  batch {model} c={c} round {r + 1}/{args.rounds} "
                        f"service: {svc['rows_per_s']:,.0f} rows/s "
                        f"({short(svc)})")
                    rounds.append({"in-process": inproc, "service": svc,
                                   "threads": pool.info[0]["threads"],
                                   "estimator": pool.info[0]["estimator"]})
            finally:
                pool.close()
    return results


def bench_explain(args, ctx, model: str) -> dict:
    """One process: batch predict, then with every home explained too."""
    out = {}
    for explain in (False, True):
        pool = InProcess(args, ctx, model, 1, explain=explain)
        try:
            out["explained" if explain else "plain"] = pool.run()
        finally:
            pool.close()
    plain, explained = out["plain"], out["explained"]
    out["ms_per_home"] = 1000 / explained["rows_per_s"] - 1000 / plain["rows_per_s"]
    say(f"  explain {model}: {out['ms_per_home']:.3f} ms more per home")
    return out
