"""make bench: the service measured against its own ceiling, side by side.

Everything runs on this machine, started the way production starts:
``deploy/entrypoint.sh`` (hence ``gunicorn.conf.py``: sync workers, preload,
GC freeze, one native thread per worker), ``WEB_CONCURRENCY`` workers, each
server on its own free loopback port with its own copy of the model store.

* The ceiling (``bench/ceiling.py``) is the smallest Flask app that parses the
  same JSON body and answers a constant JSON object, on the same Gunicorn
  configuration. ``wrk`` (``bench/post_rows.lua``) posts the 100 rows of
  ``data/future_unseen_examples.csv`` in interleaved rounds: ceiling,
  service, ceiling, service, ...; each round's service/ceiling ratio compares
  two runs made a few seconds apart, so the shared machine's load drifts
  little between them. A hello-JSON Flask app on bare Gunicorn
  (``bench/hello.py``: no body read, Gunicorn's own defaults) runs in the
  same rounds as a stricter reference. Each run also records the CPU the
  server's workers spent per request (``/proc``).
* ``/v1/predict`` with the reference model and with the boosted model active,
  at each connection count; ``/v1/predict/batch`` with 1,000-row JSON bodies
  against the same model's own batch predict in-process (``inprocess.py``,
  as many single-thread processes as busy workers); USS/PSS of the master and
  each worker after ``--memory-requests`` requests, for each worker count;
  ``housing-api score`` on a 200,000-home file against the same model's
  in-process predict of its 10,000-home chunks, and its peak memory for
  10,000 and 1,000,000 homes (``scoring.py``); time from start to
  ``/health/ready``; time for an activation (admin API,
  and the store/CLI path through the master's pointer watcher) to reach
  every worker, and both again with the store in a bucket (``bucket_store.py``);
  CPU per request in-process and a profile of where it goes
  (``profile_app.py``).
* The prediction log: the service with it off, on SQLite (the default, as
  in every other row) and on PostgreSQL (``--postgres``), in alternation.
* The service runs the production defaults (``HOUSING_*`` variables of the
  caller's environment and ``instance/config.py`` are not used): the rate
  limiter on with its default storage (``memory://``), the default limits
  raised in value only so that they never trip (at 50 requests per second
  per client they would cap the benchmark, not measure it), one JSON log
  line per request at INFO, metrics, the prediction log in SQLite, keys
  checked when sent. Rows beside it show what each part costs: limits off,
  limits in Redis (``--redis``), the log line at WARNING, keys required,
  limits, keys and the prediction log all off, and a shadow rollout (a
  copy of the version estimating beside it: a second predict per request),
  with its memory beside the service's.

Writes the report to ``docs/benchmarks.md`` (``--out``) and prints it.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from batch import bench_batch, bench_explain
from bucket_store import bench_bucket
from common import CEILING_APP, HELLO, HELLO_APP, MODELS, ROOT, say
from load import Variant, bench_predict, service_variants
from machine import machine
from memory import bench_memory, bench_memory_ceiling, bench_memory_shadow
from prediction_log import bench_prediction_log
from scoring import bench_scoring
from processes import bare_gunicorn, gunicorn
from profiling import bench_profile
from report import report, write_report
from start import bench_activation, bench_ready, import_profile
from stores import prepare_models, write_bodies

FULL = {"rounds": 3, "log_rounds": 6, "duration": 10, "warmup": 3,
        "memory_requests": 10_000, "score_rows": 200_000,
        "score_memory_rows": 1_000_000,
        "starts": 3, "activations": 4, "cli_activations": 2,
        "profile_requests": 2000}
QUICK = {"rounds": 2, "log_rounds": 2, "duration": 2, "warmup": 1,
         "memory_requests": 1_000, "score_rows": 20_000,
         "score_memory_rows": 50_000,
         "starts": 1, "activations": 2, "cli_activations": 1,
         "profile_requests": 300}


# -- Main -------------------------------------------------------------------

def checkout(ref: str, folder: Path) -> Path:
    """The project's files as of ``ref``, in ``folder`` (not a work tree)."""
    folder.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 short rounds; prints the report, "
                             "writes it only with --out")
    parser.add_argument("--rounds", type=int,
                        help=f"interleaved rounds (default {FULL['rounds']})")
    parser.add_argument("--log-rounds", type=int,
                        help="rounds of the prediction log's section (default "
                             f"{FULL['log_rounds']})")
    parser.add_argument("--duration", type=int,
                        help=f"seconds per wrk run (default {FULL['duration']})")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per server")
    parser.add_argument("--connections", default="1,16",
                        type=lambda s: [int(x) for x in s.split(",")],
                        help="wrk connection counts for /v1/predict")
    parser.add_argument("--workers", type=int, default=2,
                        help="Gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--batch-connections",
                        type=lambda s: [int(x) for x in s.split(",")],
                        help="connection counts for the batch endpoint "
                             "(default 1 and --workers)")
    parser.add_argument("--memory-requests", type=int,
                        help=f"default {FULL['memory_requests']}")
    parser.add_argument("--score-rows", type=int,
                        help="homes in the file `housing-api score` is timed on "
                             f"(default {FULL['score_rows']:,})")
    parser.add_argument("--score-small-rows", type=int, default=10_000,
                        help="the small file of the command's memory figure")
    parser.add_argument("--score-memory-rows", type=int,
                        help="the large one (default "
                             f"{FULL['score_memory_rows']:,}; 0: none)")
    parser.add_argument("--memory-workers", default="2,4",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--starts", type=int, help="timed starts per model")
    parser.add_argument("--activations", type=int,
                        help="activations through the admin API")
    parser.add_argument("--cli-activations", type=int,
                        help="activations through the store (watcher)")
    parser.add_argument("--profile-requests", type=int,
                        help="requests profiled in-process per model")
    parser.add_argument("--no-log-variant", dest="log_variant",
                        action="store_false",
                        help="skip the service with HOUSING_LOG_LEVEL=WARNING")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@"
                        "127.0.0.1:5432/postgres",
                        help="a PostgreSQL server for the prediction log's row "
                             "(a database is created and dropped); empty: none")
    parser.add_argument("--baseline-ref", metavar="REF",
                        help="also serve the project as of this git commit "
                             "(same models, same settings), side by side")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15",
                        help="a Redis for the row with the limits' counters in "
                             "it; empty: no such row")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model",
                        help="copy both models from this store if it has them")
    parser.add_argument("--train", action="store_true",
                        help="train both models instead of copying them")
    parser.add_argument("--out", type=Path,
                        help="report file (default docs/benchmarks.md; none "
                             "with --quick)")
    parser.add_argument("--json-out", type=Path, help="also write raw results")
    parser.add_argument("--report-from", type=Path, metavar="JSON",
                        help="measure nothing: write the report of a run "
                             "saved with --json-out")
    parser.add_argument("--rescore", type=Path, metavar="JSON",
                        help="measure `housing-api score` alone, again, into "
                             "the run saved in JSON (the report says so), and "
                             "write the report")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch_connections is None:
        args.batch_connections = sorted({1, args.workers})
    if args.out is None and not args.quick:
        args.out = ROOT / "docs" / "benchmarks.md"
    return args


def rerender(args) -> int:
    """Write the report of a previous run's ``--json-out`` again."""
    res = json.loads(args.report_from.read_text())
    ctx = dict(res["context"])
    ctx["variants"] = [Variant(**v) for v in ctx["variants"]]
    text = report(argparse.Namespace(**res["args"]), ctx, res)
    print(text)
    if args.out:
        write_report(args, res, text)
    return 0


def rescore(args) -> int:
    """``housing-api score``'s section measured again, into a saved run."""
    res = json.loads(args.rescore.read_text())
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        work = Path(work)
        source, versions, _ = prepare_models(args, work)
        variants = [Variant(**v) for v in res["context"]["variants"]]
        res["scoring"] = bench_scoring(args, {
            "work": work, "source": source, "versions": versions,
            "variants": variants})
    res["scoring_run"] = {
        "command": " ".join(["python", "bench/bench.py", *sys.argv[1:]]),
        "commit": machine(args.wrk)["commit"], "started": started,
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")}
    args.rescore.write_text(json.dumps(res, indent=1, default=str))
    args.report_from = args.rescore
    return rerender(args)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rescore:
        return rescore(args)
    if args.report_from:
        return rerender(args)
    if shutil.which(args.wrk) is None:
        say(f"bench: {args.wrk} not found. Install it first, e.g. "
            "`sudo apt-get install wrk` (Debian/Ubuntu).")
        return 2
    res = {"command": " ".join(["python", "bench/bench.py",
                                *(argv if argv is not None else sys.argv[1:])]),
           "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
           "load_start": os.getloadavg(), "machine": machine(args.wrk),
           "args": vars(args)}
    say(f"bench: load average {res['load_start']}, {res['machine']['nproc']} "
        "CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        work = Path(work)
        source, versions, how = prepare_models(args, work)
        single, batch, rows = write_bodies(work, args.batch_rows)
        baseline = None
        if args.baseline_ref:
            baseline = checkout(args.baseline_ref, work / "baseline")
        variants, lean_default = service_variants(args, baseline)
        ctx = {"work": work, "source": source, "versions": versions,
               "models_how": how, "single": single, "batch": batch,
               "rows": rows, "variants": variants, "lean_default": lean_default,
               "job_workers": 0}
        res["context"] = {"versions": versions, "models_how": how,
                          "lean_default": lean_default,
                          # HOUSING_JOB_WORKERS of every server (processes.py)
                          "job_workers": 0,
                          "variants": [v._asdict() for v in variants]}
        say("start to ready")
        res["ready"], res["startup"] = {}, {}
        for model in MODELS:
            res["ready"][model], res["startup"][model] = bench_ready(
                args, ctx, model)
        res["imports"] = {m: import_profile(ctx, m) for m in MODELS}
        say("activation")
        res["activation"] = bench_activation(args, ctx)
        say("the store in a bucket")
        res["bucket"] = bench_bucket(args, ctx)
        say("/v1/predict")
        res["predict"] = {}
        with gunicorn("ceiling", source, app=CEILING_APP,
                      workers=args.workers) as ceiling, \
                bare_gunicorn(HELLO, HELLO_APP, workers=args.workers) as hello:
            for model in MODELS:
                res["predict"][model] = bench_predict(args, ctx, model, ceiling,
                                                      hello)
        say("/v1/predict/batch")
        res["batch"] = {m: bench_batch(args, ctx, m) for m in MODELS}
        say("explanations, in-process")
        res["explain"] = {m: bench_explain(args, ctx, m) for m in MODELS}
        say("housing-api score")
        res["scoring"] = bench_scoring(args, ctx)
        say("prediction log")
        res["prediction_log"] = bench_prediction_log(args, ctx)
        say("memory")
        res["memory"] = {m: bench_memory(args, ctx, m) for m in MODELS}
        res["memory_ceiling"] = bench_memory_ceiling(args, ctx)
        res["memory_shadow"] = {m: bench_memory_shadow(args, ctx, m)
                                for m in MODELS}
        say("profile")
        res["profile"] = {m: bench_profile(args, ctx, m) for m in MODELS}
    res["load_end"] = os.getloadavg()
    res["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    if args.json_out:  # first: a report that fails can be written again
        args.json_out.write_text(json.dumps(res, indent=1, default=str))
    text = report(args, ctx, res)
    print(text)
    if args.out:
        write_report(args, res, text)
    errors = sum(run["errors"] for model in res["predict"].values()
                 for rounds in model.values() for r in rounds
                 for run in r.values())
    errors += sum(r["service"]["errors"] for model in res["batch"].values()
                  for rounds in model.values() for r in rounds)
    errors += sum(run["errors"] for kind in ("predict", "batch")
                  for r in res.get("prediction_log", {}).get(kind, [])
                  for run in r.values())
    if errors:
        say(f"bench: {errors} requests failed; the numbers are not valid")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
