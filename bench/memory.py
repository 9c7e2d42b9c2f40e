"""USS and PSS of a service's master and workers after a load, per worker count."""
import time

import memstat
from common import say
from load import wrk
from processes import gunicorn
from stores import store_copy


def bench_memory(args, ctx, model: str) -> dict:
    """USS/PSS of the master and each worker after ``memory_requests``."""
    results = {}
    for workers in args.memory_workers:
        store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
        with gunicorn("service", store, workers=workers,
                      expect_version=ctx["versions"][model]) as server:
            total, rps = 0, 500.0
            while total < args.memory_requests:
                seconds = max(1, min(10, round((args.memory_requests - total)
                                               / rps + 0.5)))
                run = wrk(args, server.url, "/v1/predict", ctx["single"], 16,
                          seconds)
                if run["errors"]:
                    raise RuntimeError(f"memory run: {run['errors']} errors")
                total += run["requests"]
                rps = max(run["rps"], 1.0)
            time.sleep(1)
            mem = memstat.tree(server.pid)
            if len(mem["workers"]) != workers:
                raise RuntimeError(f"expected {workers} workers, found "
                                   f"{sorted(mem['workers'])}")
            results[str(workers)] = {"requests": total, **mem}
            say(f"  memory {model} {workers} workers after {total} requests: "
                + ", ".join(f"{w} USS {m['uss_kib'] / 1024:.1f} MiB"
                            for w, m in mem["workers"].items()))
    return results
