"""The batch limit: a model version's own batch predict, in one process.

Loads ``--version`` from ``--model-dir`` with the service's ModelStore,
turns the homes of ``--bodies`` (a JSON ``{"instances": [...]}`` body) into
columns the way the service does, and times ``predictor.predict`` on them
(with ``--explain``, ``predictor.explain`` after it),
one native thread (threadpoolctl, and ``OMP_NUM_THREADS=1`` set by the
caller before Python starts). No HTTP, no JSON, no validation: what is left
is the model's own cost, which a batch request cannot beat.

Protocol (driven by batch.py): prints ``{"ready": ...}`` once loaded and
warmed up, then for each ``go`` line on stdin predicts for ``--duration``
seconds and prints one JSON line; exits at the end of stdin.
"""
import argparse
import json
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

from housing_api.inference.columns import records_to_columns
from housing_api.store import ModelStore
from housing_api.web.schemas import HomeSchema


def measure(predictor, columns, rows: int, duration: float,
            explain: bool = False) -> dict:
    calls = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        result = predictor.predict(columns)
        if explain:
            predictor.explain(columns, result.price)
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            break
    seconds = now - start
    return {"calls": calls, "rows": calls * rows, "seconds": seconds,
            "rows_per_s": calls * rows / seconds,
            "ms_per_call": seconds / calls * 1000}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--bodies", type=Path,
                        help="a JSON batch body: its homes are the batch")
    parser.add_argument("--csv", type=Path,
                        help="instead, the first --chunk-rows homes of a CSV "
                             "(what `housing-api score` predicts at a time)")
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--explain", action="store_true",
                        help="time predict plus the explanations of every home")
    parser.add_argument("--lean", choices=("true", "false"),
                        help="HOUSING_LEAN_INFERENCE of the server compared "
                             "(default: the store's own default)")
    args = parser.parse_args(argv)
    store_options = {} if args.lean is None else {"lean": args.lean == "true"}

    with threadpool_limits(1):
        predictor = ModelStore(args.model_dir, **store_options).load(args.version)
        if args.csv:
            import pandas as pd

            frame = pd.read_csv(args.csv, nrows=args.chunk_rows,
                                dtype={"zipcode": str})
            records = HomeSchema(many=True).load(frame.to_dict("records"))
        else:
            body = json.loads(args.bodies.read_text().splitlines()[0])
            records = HomeSchema(many=True).load(body["instances"])
        columns = records_to_columns(records)
        rows = len(records)
        measure(predictor, columns, rows, min(1.0, args.duration), args.explain)
        pools = sorted({p["num_threads"] for p in threadpool_info()})
        print(json.dumps({"ready": True, "rows": rows, "threads": pools,
                          "model": predictor.name,
                          "estimator": type(predictor.estimator).__name__}),
              flush=True)
        for line in sys.stdin:
            if line.strip() == "go":
                result = measure(predictor, columns, rows, args.duration,
                                 args.explain)
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
