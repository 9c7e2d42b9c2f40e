"""USS and PSS of a service's master and workers after a load, per worker count."""
import time

import memstat
from common import CEILING_APP, say
from load import wrk
from processes import gunicorn
from stores import start_shadow, store_copy


def bench_memory(args, ctx, model: str) -> dict:
    """USS/PSS of the master and each worker after ``memory_requests``."""
    results = {}
    for workers in args.memory_workers:
        store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
        with gunicorn("service", store, workers=workers,
                      expect_version=ctx["versions"][model]) as server:
            results[str(workers)] = after_load(args, ctx, server, model)
    return results


def bench_memory_shadow(args, ctx, model: str) -> dict:
    """The same with a shadow of a copy of the version: a second model in
    the master, and in every worker once its requests touch it."""
    workers = args.memory_workers[0]
    store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
    start_shadow(store, ctx["versions"][model])
    with gunicorn("service, shadow", store, workers=workers,
                  expect_version=ctx["versions"][model]) as server:
        return after_load(args, ctx, server, f"{model} with a shadow")


def bench_memory_ceiling(args, ctx) -> dict:
    """The same for the ceiling app, on the service's Gunicorn configuration."""
    workers = args.memory_workers[0]
    with gunicorn("ceiling", ctx["source"], app=CEILING_APP,
                  workers=workers) as server:
        return after_load(args, ctx, server, "ceiling")


def after_load(args, ctx, server, label: str) -> dict:
    """Memory of ``server``'s processes after ``memory_requests`` requests."""
    total, rps = 0, 500.0
    while total < args.memory_requests:
        seconds = max(1, min(10, round((args.memory_requests - total)
                                       / rps + 0.5)))
        run = wrk(args, server.url, "/v1/predict", ctx["single"], 16, seconds)
        if run["errors"]:
            raise RuntimeError(f"memory run: {run['errors']} errors")
        total += run["requests"]
        rps = max(run["rps"], 1.0)
    time.sleep(1)
    mem = memstat.tree(server.pid)
    if len(mem["workers"]) != server.workers:
        raise RuntimeError(f"expected {server.workers} workers, found "
                           f"{sorted(mem['workers'])}")
    say(f"  memory {label} {server.workers} workers after {total} requests: "
        + ", ".join(f"{w} USS {m['uss_kib'] / 1024:.1f} MiB"
                    for w, m in mem["workers"].items()))
    return {"requests": total, **mem}
