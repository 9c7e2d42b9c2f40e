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
  little between them.
* ``/v1/predict`` with the reference model and with the boosted model active,
  at each connection count; ``/v1/predict/batch`` with 1,000-row JSON bodies
  against the same model's own batch predict in-process (``inprocess.py``,
  as many single-thread processes as busy workers); USS/PSS of the master and
  each worker after ``--memory-requests`` requests, for each worker count;
  time from start to ``/health/ready``; time for an activation (admin API,
  and the store/CLI path through the master's pointer watcher) to reach
  every worker; CPU per request in-process and a profile of where it goes
  (``profile_app.py``).
* Rate limits are off (``HOUSING_RATELIMIT_ENABLED=false``): at 50 requests
  per second per client they would cap the benchmark, not measure it. Every
  other setting is the production default (``HOUSING_*`` variables of the
  caller's environment and ``instance/config.py`` are not used), including
  one JSON log line per request at INFO; the same service with
  ``HOUSING_LOG_LEVEL=WARNING`` is measured alongside to show what that line
  costs.

Writes the report to ``docs/benchmarks.md`` (``--out``) and prints it.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from batch import bench_batch
from common import (
    CEILING_APP, CONVERGED_STREAK, LABELS, MAX_ACTIVATION_S, MAX_EXTRA_USS_MB,
    MAX_P99_RATIO, MAX_READY_S, MB, MIN_BATCH_RATIO, MIN_PREDICT_RATIO, MODELS,
    ROOT, say)
from load import Variant, bench_predict, service_variants
from machine import machine
from memory import bench_memory
from processes import gunicorn
from profiling import bench_profile
from start import bench_activation, bench_ready, import_profile
from stores import prepare_models, write_bodies

FULL = {"rounds": 3, "duration": 10, "warmup": 3, "memory_requests": 10_000,
        "starts": 3, "activations": 4, "cli_activations": 2,
        "profile_requests": 2000}
QUICK = {"rounds": 2, "duration": 2, "warmup": 1, "memory_requests": 1_000,
         "starts": 1, "activations": 2, "cli_activations": 1,
         "profile_requests": 300}


# -- Report -----------------------------------------------------------------

def med(values) -> float:
    return statistics.median(values)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def predict_summary(rounds: list, ceiling: str, label: str) -> dict:
    ratios = [r[label]["rps"] / r[ceiling]["rps"] for r in rounds]
    p99 = [r[label]["p99_ms"] / r[ceiling]["p99_ms"] for r in rounds]
    return {"ratio": med(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "p99_ratio": med(p99),
            "p99_ratio_max": max(p99)}


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(args, ctx, res: dict) -> str:
    m = res["machine"]
    out = []
    add = out.append
    production = next(v.label for v in ctx["variants"] if v.production)
    add("# Benchmarks")
    add("")
    add("What a price estimate costs, measured against the framework's own "
        "ceiling on the same machine, in one run (issue 6). Written by "
        "`make bench` (`bench/bench.py`); every number below is from the run "
        "described here.")
    add("")
    add("## The run")
    add("")
    add(f"- Command: `{res['command']}`"
        + (" (a `--quick` smoke run: too short and too few rounds to be "
           "a measurement)" if args.quick else ""))
    add(f"- When: {res['started']} to {res['finished']} (UTC)")
    add(f"- Machine: {m['nproc']} CPUs available (`nproc`), {m['cpu']}, "
        f"{m['memory_gib']:.1f} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}")
    add(f"- Load average (1, 5, 15 min) at start "
        f"{', '.join(f'{x:.2f}' for x in res['load_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in res['load_end'])}. **The machine is "
        "shared**: other jobs ran during the benchmark, and wrk itself runs on "
        "the same cores as the servers. Absolute numbers move with that load; "
        "the ratios compare runs made seconds apart, in alternation.")
    add(f"- Code: commit `{m['commit']}`"
        + (" with uncommitted changes in the working tree" if m["dirty"]
           else "") + f"; models {ctx['models_how']}: "
        + ", ".join(f"`{v}`" for v in ctx["versions"].values()))
    add("- Software: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + f", {m['wrk']}")
    add(f"- Servers: `deploy/entrypoint.sh` with `gunicorn.conf.py` (sync "
        f"workers, preload, GC frozen before fork, one native thread per "
        f"worker), `WEB_CONCURRENCY={args.workers}`, each on its own loopback "
        f"port with its own copy of the model store. The ceiling is "
        f"`{CEILING_APP}` through the same entrypoint and configuration.")
    add("- Service settings: production defaults, except "
        "`HOUSING_RATELIMIT_ENABLED=false` (the default 50 requests/s per "
        "client would cap the benchmark, not measure it). The production "
        "default logs one JSON line per request at INFO (to a file here); "
        "`service, log level WARNING` is the same service without that line."
        + ("" if ctx["lean_default"] is None else
           " `HOUSING_LEAN_INFERENCE` is measured both ways; the default is "
           f"`{str(ctx['lean_default']).lower()}`."))
    add(f"- Load: `wrk -t{args.wrk_threads} -c<C> -d{args.duration}s -s "
        "bench/post_rows.lua` for each connection count C "
        f"({', '.join(map(str, args.connections))}), rotating through the 100 rows of "
        "`data/future_unseen_examples.csv` (one home per request, zipcode as "
        f"a string), {args.rounds} interleaved rounds per connection count "
        f"(ceiling, then each service variant, then again), each run "
        f"{args.duration} s after a {args.warmup} s warm-up per server. "
        "Latencies are wrk's (no coordinated-omission correction).")
    add("")

    # Targets.
    add("## Issue 6's targets")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    for model in MODELS:
        rounds = res["predict"][model].get("16")
        if not rounds:
            continue
        s = predict_summary(rounds, "ceiling", production)
        add(f"| `/v1/predict`, {LABELS[model]}, c=16: req/s at least "
            f"{MIN_PREDICT_RATIO:.0%} of the ceiling's | {s['ratio']:.0%} "
            f"(median of {len(rounds)} rounds; {s['ratio_min']:.0%} to "
            f"{s['ratio_max']:.0%}) | {met(s['ratio'] >= MIN_PREDICT_RATIO)} |")
        add(f"| `/v1/predict`, {LABELS[model]}, c=16: p99 at most "
            f"{MAX_P99_RATIO:g}x the ceiling's | {s['p99_ratio']:.2f}x (median; "
            f"worst round {s['p99_ratio_max']:.2f}x) | "
            f"{met(s['p99_ratio'] <= MAX_P99_RATIO)} |")
    for model in MODELS:
        rounds = res["batch"][model].get("1")
        if not rounds:
            continue
        ratio = med(r["service"]["rows_per_s"] / r["in-process"]["rows_per_s"]
                    for r in rounds)
        add(f"| batch of {args.batch_rows:,}, {LABELS[model]}: at least "
            f"{MIN_BATCH_RATIO:.0%} of in-process batch predict (1 thread) | "
            f"{ratio:.0%} | {met(ratio >= MIN_BATCH_RATIO)} |")
    for model in MODELS:
        extra = extra_uss(res["memory"][model])
        if extra is None:
            continue
        add(f"| an extra worker adds at most {MAX_EXTRA_USS_MB:g} MB USS, "
            f"{LABELS[model]} | {extra['worst'] / MB:.1f} MB (see memory) | "
            f"{met(extra['worst'] <= MAX_EXTRA_USS_MB * MB)} |")
    for model in MODELS:
        times = res["ready"][model]
        add(f"| ready in under {MAX_READY_S:g} s, {LABELS[model]} | "
            f"{max(times):.2f} s (slowest of {len(times)} starts) | "
            f"{met(max(times) < MAX_READY_S)} |")
    admin = [a["seconds"] for a in res["activation"]["admin"]]
    if admin:
        add(f"| an activation converges on every worker in under "
            f"{MAX_ACTIVATION_S:g} s (admin API) | {max(admin):.2f} s (slowest "
            f"of {len(admin)}) | {met(max(admin) < MAX_ACTIVATION_S)} |")
    add("")

    # /v1/predict.
    add("## `/v1/predict`: one home per request")
    add("")
    add("Median over the rounds of each run's req/s and latency percentiles; "
        "the ratios are each round's service run over that round's ceiling "
        "run.")
    for model in MODELS:
        add("")
        add(f"### {LABELS[model]} active")
        add("")
        add("| c | server | median req/s | p50 ms | p99 ms | req/s ratio "
            "(median; per round) | p99 ratio (median) | errors |")
        add("|---|---|---|---|---|---|---|---|")
        for c, rounds in res["predict"][model].items():
            for label in rounds[0]:
                runs = [r[label] for r in rounds]
                cells = [c, label, fmt_rate(med(r["rps"] for r in runs)),
                         f"{med(r['p50_ms'] for r in runs):.2f}",
                         f"{med(r['p99_ms'] for r in runs):.2f}"]
                if label == "ceiling":
                    cells += ["", ""]
                else:
                    per = [r[label]["rps"] / r["ceiling"]["rps"] for r in rounds]
                    p99 = [r[label]["p99_ms"] / r["ceiling"]["p99_ms"]
                           for r in rounds]
                    cells += [f"{med(per):.2f} ("
                              + ", ".join(f"{x:.2f}" for x in per) + ")",
                              f"{med(p99):.2f}"]
                cells.append(str(sum(r["errors"] for r in runs)))
                add("| " + " | ".join(cells) + " |")
    add("")

    # Batch.
    add(f"## `/v1/predict/batch`: {args.batch_rows:,} homes per JSON body")
    add("")
    add("The limit is the same model version's own `predictor.predict` on the "
        "same homes' columns, in a process with one native thread "
        "(`bench/inprocess.py`: no HTTP, no JSON, no validation). At c=N, N "
        "such processes run at once, as N workers are busy. Rows/s are "
        "medians over the rounds; the ratio is per round."
        + ("" if ctx["lean_default"] is None else
           " Both sides load the version with the production default "
           f"`HOUSING_LEAN_INFERENCE={str(ctx['lean_default']).lower()}`; "
           "the estimator the in-process side ran: "
           + ", ".join(f"{LABELS[m]} `{rounds[0]['estimator']}`"
                       for m, c_rounds in res["batch"].items()
                       for rounds in list(c_rounds.values())[:1]) + "."))
    add("")
    add("| model | c | in-process rows/s | service rows/s | ratio (median; "
        "per round) | service p50 ms | service p99 ms | errors |")
    add("|---|---|---|---|---|---|---|---|")
    for model in MODELS:
        for c, rounds in res["batch"][model].items():
            per = [r["service"]["rows_per_s"] / r["in-process"]["rows_per_s"]
                   for r in rounds]
            add(f"| {LABELS[model]} | {c} | "
                f"{fmt_rate(med(r['in-process']['rows_per_s'] for r in rounds))} | "
                f"{fmt_rate(med(r['service']['rows_per_s'] for r in rounds))} | "
                f"{med(per):.2f} (" + ", ".join(f"{x:.2f}" for x in per) + ") | "
                f"{med(r['service']['p50_ms'] for r in rounds):.1f} | "
                f"{med(r['service']['p99_ms'] for r in rounds):.1f} | "
                f"{sum(r['service']['errors'] for r in rounds)} |")
    add("")

    # Memory.
    add("## Memory")
    add("")
    add(f"From `/proc/PID/smaps_rollup` after at least "
        f"{args.memory_requests:,} requests to `/v1/predict` (wrk, c=16). USS: "
        "pages only that process holds (what it adds); PSS: shared pages "
        "split between the processes mapping them (the PSS column adds up to "
        "the real footprint). MB = 10^6 bytes.")
    add("")
    add("| model | workers | requests | master USS / PSS | each worker USS "
        "| each worker PSS | total PSS |")
    add("|---|---|---|---|---|---|---|")
    for model in MODELS:
        for workers, mem in res["memory"][model].items():
            ws = list(mem["workers"].values())
            total = mem["master"]["pss_kib"] + sum(w["pss_kib"] for w in ws)
            add(f"| {LABELS[model]} | {workers} | {mem['requests']:,} | "
                f"{kib_mb(mem['master']['uss_kib'])} / "
                f"{kib_mb(mem['master']['pss_kib'])} | "
                + ", ".join(kib_mb(w["uss_kib"]) for w in ws) + " | "
                + ", ".join(kib_mb(w["pss_kib"]) for w in ws) + " | "
                f"{kib_mb(total)} |")
    add("")
    for model in MODELS:
        extra = extra_uss(res["memory"][model])
        if extra:
            add(f"- {LABELS[model]}: going from {extra['from']} to "
                f"{extra['to']} workers added {extra['delta'] / MB:.1f} MB of "
                f"USS per worker (all processes' USS, before and after); the "
                f"largest worker USS was {extra['largest'] / MB:.1f} MB. The "
                f"target is judged on the larger of the two.")
    add("")

    # Start and activation.
    add("## Start and activation")
    add("")
    add(f"Ready: from starting `deploy/entrypoint.sh` (a trained model in the "
        f"store, {args.workers} workers) to the first 200 from `/health/ready` "
        "naming the model (polled every 10 ms).")
    add("")
    add("| model | starts | median s | slowest s |")
    add("|---|---|---|---|")
    for model in MODELS:
        times = res["ready"][model]
        add(f"| {LABELS[model]} | {len(times)} | {med(times):.2f} | "
            f"{max(times):.2f} |")
    add("")
    if res.get("startup"):
        add("Where a start goes (medians): after each timed start, a bare "
            "`python` with the server's "
            "environment importing `housing_api`, then `create_app()` (config, "
            "blueprints, the libraries the active version needs imported, the "
            "version loaded and its checksums verified); the rest of the time "
            "to ready is the interpreter, "
            "Gunicorn, forking the workers and the first answer.")
        add("")
        add("| model | import s | create_app s | whole process s | ready s |")
        add("|---|---|---|---|---|")
        for model in MODELS:
            runs = res["startup"][model]
            add(f"| {LABELS[model]} | {med(r['import_s'] for r in runs):.2f} | "
                f"{med(r['create_app_s'] for r in runs):.2f} | "
                f"{med(r['process_s'] for r in runs):.2f} | "
                f"{med(res['ready'][model]):.2f} |")
        add("")
    if res.get("imports"):
        add("Imports during a start: `python -X importtime -c 'from housing_api "
            "import create_app; create_app()'` with the model active (one run "
            "each), self time by top-level package.")
        add("")
        add("| model | imports s | largest |")
        add("|---|---|---|")
        for model, imports in res["imports"].items():
            top = ", ".join(f"{name} {secs:.2f} s"
                            for name, secs in imports["packages"][:6])
            add(f"| {LABELS[model]} | {imports['total_s']:.2f} | {top} |")
        add("")
        if any(i["dont_write_bytecode"] for i in res["imports"].values()):
            add("`PYTHONDONTWRITEBYTECODE` is set in this environment, so modules "
                "without a cached `.pyc` are compiled at every start.")
            add("")
    add(f"Activation: on a running service ({args.workers} workers, idle), "
        "alternating between the two models; from the request (or the store "
        f"write) until {CONVERGED_STREAK} consecutive `/health/ready` answers, "
        "each on a new connection, name the new version and every worker of "
        "the master has been replaced. `admin`: `POST "
        "/admin/models/VERSION/activate` (the worker signals its master at "
        "once). `store`: `ModelStore.activate`, what `housing-api models "
        "activate` does; the master's watcher sees the pointer move on a poll "
        "every `HOUSING_MODEL_WATCH_INTERVAL` (3 s by default) and signals on "
        "the next one, so this path takes 3 to 6 s plus the swap by design.")
    add("")
    add("| path | to | converged s | first new answer s | workers replaced s |")
    add("|---|---|---|---|---|")
    for how in ("admin", "store"):
        for a in res["activation"][how]:
            add(f"| {how} | {LABELS[a['to']]} | {a['seconds']:.2f} | "
                f"{a['first_answer_s']:.2f} | {a['workers_replaced_s']:.2f} |")
    add("")
    add("## Where the time goes")
    add("")
    add(f"CPU time per `POST /v1/predict` inside one process, through Flask's "
        f"test client (no HTTP server, no network, one native thread; "
        f"`bench/profile_app.py`, {args.profile_requests:,} requests over the "
        "100 rows). The ceiling/service ratio is the most the service could "
        "reach of the ceiling's req/s if nothing but this work differed. The "
        "shares are cProfile's self time grouped by package; the profiler "
        "inflates Python-heavy code, so they are proportions, not costs.")
    add("")
    add("The model column is the loaded version's own `predict` for one "
        "home (features, estimator, interval, warnings) on already validated "
        "columns: what no serving layer can avoid.")
    add("")
    add("| model | ceiling CPU ms | service CPU ms | of which the model | "
        "ceiling/service | largest shares of the service's profiled time |")
    add("|---|---|---|---|---|---|")
    for model in MODELS:
        p = res["profile"][model]
        shares = ", ".join(f"{g['group']} {g['share']:.0%}"
                           for g in p["groups"][:8])
        model_ms = p.get("model_cpu_ms")
        add(f"| {LABELS[model]} | {p['ceiling_cpu_ms']:.2f} | "
            f"{p['service_cpu_ms']:.2f} | "
            f"{'' if model_ms is None else f'{model_ms:.2f}'} | "
            f"{p['ceiling_cpu_ms'] / p['service_cpu_ms']:.0%} | {shares} |")
    add("")
    for model in MODELS:
        p = res["profile"][model]
        if p.get("model_cpu_ms") is None:
            continue
        # At half the ceiling's rate a request may cost twice the ceiling's.
        rest = 2 * p["ceiling_cpu_ms"] - p["ceiling_cpu_ms"] - p["model_cpu_ms"]
        spent = p["service_cpu_ms"] - p["ceiling_cpu_ms"] - p["model_cpu_ms"]
        left = (f"which leaves {rest:.2f} ms" if rest >= 0 else
                f"already {-rest:.2f} ms over, with nothing left")
        add(f"- {LABELS[model]}: at {MIN_PREDICT_RATIO:.0%} of the ceiling, "
            f"a request may cost {2 * p['ceiling_cpu_ms']:.2f} ms; the "
            f"ceiling's own work (HTTP, JSON) takes {p['ceiling_cpu_ms']:.2f} "
            f"and the model {p['model_cpu_ms']:.2f}, {left} for validation, "
            f"logging, metrics and the answer (the service spends "
            f"{spent:.2f}).")
    add("")
    add("Largest single functions by self time:")
    add("")
    for model in MODELS:
        add(f"- {LABELS[model]}: " + "; ".join(
            f"`{f['function']}` {f['share']:.0%}"
            for f in res["profile"][model]["functions"][:5]))
    add("")
    if any(res["profile"][m].get("tree") for m in MODELS):
        add("Call trees of the same requests, from pyinstrument (a sampling "
            "profiler, so less distorted by Python-heavy code): "
            + ", ".join(f"[{LABELS[m]}](profiles/{m}.txt)" for m in MODELS
                        if res["profile"][m].get("tree")) + ".")
        add("")
    add("## Reproduce")
    add("")
    add("```sh")
    add("make bench                          # this report, about 20 minutes")
    add("make bench BENCH_ARGS=--quick       # a smoke run; prints, writes "
        "nothing")
    add(".venv/bin/python bench/bench.py --help")
    add("```")
    add("")
    add("`make bench` needs `wrk` (Debian/Ubuntu: `apt-get install wrk`). No "
        "test asserts any timing; `tests/test_bench.py` only checks that the "
        "ceiling app answers.")
    return "\n".join(out) + "\n"


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


# -- Main -------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 short rounds; prints the report, "
                             "writes it only with --out")
    parser.add_argument("--rounds", type=int,
                        help=f"interleaved rounds (default {FULL['rounds']})")
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
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch_connections is None:
        args.batch_connections = sorted({1, args.workers})
    if args.out is None and not args.quick:
        args.out = ROOT / "docs" / "benchmarks.md"
    return args


def write_report(args, res: dict, text: str) -> None:
    """The report at ``args.out``, and the call trees beside it."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    for model, profile in res.get("profile", {}).items():
        if profile.get("tree"):
            tree = args.out.parent / "profiles" / f"{model}.txt"
            tree.parent.mkdir(exist_ok=True)
            tree.write_text(profile["tree"])
    say(f"bench: wrote {args.out}")


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


def main(argv=None) -> int:
    args = parse_args(argv)
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
        variants, lean_default = service_variants(args)
        ctx = {"work": work, "source": source, "versions": versions,
               "models_how": how, "single": single, "batch": batch,
               "rows": rows, "variants": variants, "lean_default": lean_default}
        res["context"] = {"versions": versions, "models_how": how,
                          "lean_default": lean_default,
                          "variants": [v._asdict() for v in variants]}
        say("start to ready")
        res["ready"], res["startup"] = {}, {}
        for model in MODELS:
            res["ready"][model], res["startup"][model] = bench_ready(
                args, ctx, model)
        res["imports"] = {m: import_profile(ctx, m) for m in MODELS}
        say("activation")
        res["activation"] = bench_activation(args, ctx)
        say("/v1/predict")
        res["predict"] = {}
        with gunicorn("ceiling", source, app=CEILING_APP,
                      workers=args.workers) as ceiling:
            for model in MODELS:
                res["predict"][model] = bench_predict(args, ctx, model, ceiling)
        say("/v1/predict/batch")
        res["batch"] = {m: bench_batch(args, ctx, m) for m in MODELS}
        say("memory")
        res["memory"] = {m: bench_memory(args, ctx, m) for m in MODELS}
        say("profile")
        res["profile"] = {m: bench_profile(args, ctx, m) for m in MODELS}
    res["load_end"] = os.getloadavg()
    res["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    text = report(args, ctx, res)
    print(text)
    if args.out:
        write_report(args, res, text)
    if args.json_out:
        args.json_out.write_text(json.dumps(res, indent=1, default=str))
    errors = sum(run["errors"] for model in res["predict"].values()
                 for rounds in model.values() for r in rounds
                 for run in r.values())
    errors += sum(r["service"]["errors"] for model in res["batch"].values()
                  for rounds in model.values() for r in rounds)
    if errors:
        say(f"bench: {errors} requests failed; the numbers are not valid")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
