"""Where one ``POST /v1/predict`` spends its CPU time, without HTTP.

Creates the service's app (``create_app``, the store at ``--model-dir`` with
its active version, the rate limits raised in value only, everything else
the defaults) and the
ceiling app, posts the rows of ``--bodies`` through Flask's test client, one
native thread, and prints one JSON object: CPU ms per request of each app
without a profiler, and the service's self time per request grouped by the
package the code belongs to (cProfile; the profiler's own overhead inflates
Python-heavy code, so the groups are proportions, not exact costs), and
pyinstrument's call tree of the same requests (``tree``, text). With
``--batch-body``, also where one ``POST /v1/predict/batch`` of those homes
spends its CPU (``batch``): the whole request, the model's own ``predict``,
reading the JSON body, validating the homes and writing the answer.

Run by profiling.py with ``PROMETHEUS_MULTIPROC_DIR`` set (as under Gunicorn)
and ``OMP_NUM_THREADS=1`` before Python starts.
"""
import argparse
import cProfile
import json
import pstats
import sysconfig
import time
from collections import defaultdict
from pathlib import Path

from pyinstrument import Profiler
from threadpoolctl import threadpool_limits

from ceiling import create_app as create_ceiling  # bench/ is sys.path[0]
from processes import NEVER_TRIPPING_LIMITS
from housing_api import create_app
from housing_api.db import migrate
from housing_api.inference.columns import records_to_columns
from housing_api.web.schemas import HomeSchema

HERE = Path(__file__).resolve().parent

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def group(filename: str) -> str:
    """The package (or stdlib module) a profiled function belongs to."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C calls: numpy, json, dict, ...)"
    path = Path(filename).resolve()
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "housing_api" in parts:
        return "housing_api"
    try:
        return "stdlib " + path.relative_to(STDLIB).parts[0].removesuffix(".py")
    except ValueError:
        return path.name


def cpu_ms(client, rows, n: int) -> float:
    start = time.process_time()
    for i in range(n):
        response = client.post("/v1/predict", json=rows[i % len(rows)])
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.data[:300]}")
    return (time.process_time() - start) / n * 1000


def model_cpu_ms(app, rows, n: int) -> float:
    """CPU ms of the model alone per home: the loaded version's
    ``predict`` (features, estimator, interval, warnings) on validated
    columns, no HTTP, no validation, no JSON."""
    predictor = app.extensions["housing"].predictor
    schema = HomeSchema()
    columns = [records_to_columns([schema.fast_load(row)]) for row in rows]
    for c in columns:
        predictor.predict(c)
    start = time.process_time()
    for i in range(n):
        predictor.predict(columns[i % len(columns)])
    return (time.process_time() - start) / n * 1000


def retained_kib(client, rows, n: int = 60) -> float:
    """KiB that ``n`` requests allocate and keep (tracemalloc), after one."""
    import gc
    import tracemalloc

    cpu_ms(client, rows, 1)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    cpu_ms(client, rows, n)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(d.size_diff for d in after.compare_to(before, "filename")) / 1024


def batch_cpu_ms(app, client, body: str, n: int = 10) -> dict:
    """CPU ms of one batch request and of the parts no layer can skip."""
    predictor = app.extensions["housing"].predictor
    schema = HomeSchema()
    homes = json.loads(body)["instances"]
    columns = records_to_columns(schema.fast_load_many(homes))
    answer = client.post("/v1/predict/batch", data=body,
                         content_type="application/json")
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.status_code}: {answer.data[:300]}")
    answer = answer.get_json()

    def request():
        client.post("/v1/predict/batch", data=body,
                    content_type="application/json")

    parts = {"request": request,
             "model": lambda: predictor.predict(columns),
             "read_json": lambda: json.loads(body),
             "validate": lambda: records_to_columns(schema.fast_load_many(homes)),
             "write_json": lambda: json.dumps(answer, separators=(",", ":"))}
    store = app.extensions["housing"].store
    if type(predictor.estimator).__name__ == "CompiledTrees":
        # The same version through LightGBM's C API: what compiling saves.
        c_api = type(store)(store.root, compiled=False).load(predictor.version)
        parts["model_c_api"] = lambda: c_api.predict(columns)
    result = {"homes": len(homes), "estimator": type(predictor.estimator).__name__}
    for name, call in parts.items():
        call()
        start = time.process_time()
        for _ in range(n):
            call()
        result[f"{name}_ms"] = (time.process_time() - start) / n * 1000
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--batch-body", type=Path,
                        help="a JSON batch body ({\"instances\": [...]})")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.bodies.read_text().splitlines()]

    with threadpool_limits(1):
        service = create_app({"MODEL_DIR": args.model_dir,
                              "DATA_DIR": str(HERE.parent / "data"),
                              **{key.removeprefix("HOUSING_"): value for key, value
                                 in NEVER_TRIPPING_LIMITS.items()}}).test_client()
        # As deploy/entrypoint.sh does before the server starts: without the
        # tables, the prediction log would spool every estimate instead.
        migrate.upgrade(service.application.config["DATABASE_URL"])
        ceiling = create_ceiling().test_client()
        for client in (service, ceiling):
            cpu_ms(client, rows, 200)
        result = {"requests": args.requests,
                  "ceiling_cpu_ms": cpu_ms(ceiling, rows, args.requests),
                  "service_cpu_ms": cpu_ms(service, rows, args.requests),
                  "model_cpu_ms": model_cpu_ms(service.application, rows,
                                               args.requests)}
        result["retained_kib_60"] = retained_kib(service, rows)
        if args.batch_body:
            result["batch"] = batch_cpu_ms(service.application, service,
                                           args.batch_body.read_text())
        profile = cProfile.Profile()
        profile.enable()
        cpu_ms(service, rows, args.requests)
        profile.disable()
        # A sampling profiler's call tree, where cProfile gives flat self time.
        sampler = Profiler(interval=0.0002)
        with sampler:
            cpu_ms(service, rows, args.requests)
        tree = sampler.output_text(unicode=False, color=False)

    stats = pstats.Stats(profile).stats
    by_group = defaultdict(float)
    functions = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.items():
        by_group[group(filename)] += tottime
        functions.append((tottime, f"{group(filename)}: {name}"))
    total = sum(by_group.values())
    result["profiled_ms"] = total / args.requests * 1000
    result["groups"] = sorted(
        ({"group": g, "share": t / total} for g, t in by_group.items()),
        key=lambda item: -item["share"])
    result["functions"] = [{"function": f, "share": t / total}
                           for t, f in sorted(functions, reverse=True)[:args.top]]
    result["tree"] = tree
    print(json.dumps(result))


if __name__ == "__main__":
    main()
