"""The report's memory, start and activation, and CPU time sections."""
from common import (
    CONVERGED_STREAK, LABELS, MB, MIN_BATCH_RATIO, MIN_PREDICT_RATIO, MODELS,
)
from report_common import extra_uss, kib_mb, med


def memory(args, ctx, res: dict) -> list[str]:
    """USS and PSS per process, and what one more worker adds."""
    out = []
    add = out.append
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
            add(_memory_row(LABELS[model], workers, mem))
    shadow = res.get("memory_shadow", {})
    for model in MODELS:
        if model in shadow:
            add(_memory_row(f"{LABELS[model]}, with a shadow of a copy",
                            len(shadow[model]["workers"]), shadow[model]))
    ceiling = res.get("memory_ceiling")
    if ceiling:
        add(_memory_row("ceiling (`bench/ceiling.py`)", len(ceiling["workers"]),
                        ceiling))
    add("")
    for model in MODELS:
        if model in shadow:
            add(_second_model(LABELS[model], res["memory"][model], shadow[model]))
    if shadow:
        add("")
    if ceiling:
        add("The ceiling's row is the same Gunicorn configuration serving the "
            "hello-JSON app after the same load: what a worker of any Flask "
            "app on this Python holds. A service worker holds more chiefly "
            "because CPython 3.11 writes the reference count of every object "
            "a request touches, so each page of the master's modules and model "
            "objects that a request reads becomes a private copy in that "
            "worker; memory a request allocates and keeps is small in "
            "comparison ("
            + ", ".join(f"{LABELS[m]} {res['profile'][m]['retained_kib_60']:.0f} KiB"
                        for m in MODELS
                        if "retained_kib_60" in res.get("profile", {}).get(m, {}))
            + " over 60 requests after the first, by tracemalloc, in the "
            "profile's process). The first worker also refreshes the "
            "live-accuracy gauges.")
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
    return out


def _second_model(label: str, memory: dict, shadow: dict) -> str:
    """What the second model of a rollout costs, against the same worker count
    without one."""
    alone = memory[str(len(shadow["workers"]))]

    def worker_uss(m):
        return sum(w["uss_kib"] for w in m["workers"].values()) / len(m["workers"])

    def total_pss(m):
        return m["master"]["pss_kib"] + sum(w["pss_kib"] for w in
                                            m["workers"].values())

    def mb(kib):
        return f"{kib * 1024 / MB:+.1f} MB"

    return (f"- {label}: a rollout's second model (a shadow of a copy of the "
            f"version, after the same load), against the same "
            f"{len(shadow['workers'])} workers without one: master USS "
            f"{mb(shadow['master']['uss_kib'] - alone['master']['uss_kib'])}, "
            f"each worker's USS {mb(worker_uss(shadow) - worker_uss(alone))}, "
            f"total PSS {mb(total_pss(shadow) - total_pss(alone))} (the "
            "challenger is loaded once, in the master, and shared by the "
            "workers until their requests touch it).")


def _memory_row(label: str, workers, mem: dict) -> str:
    """One row of the memory table: the master, each worker, the total PSS."""
    ws = list(mem["workers"].values())
    total = mem["master"]["pss_kib"] + sum(w["pss_kib"] for w in ws)
    return (f"| {label} | {workers} | {mem['requests']:,} | "
            f"{kib_mb(mem['master']['uss_kib'])} / "
            f"{kib_mb(mem['master']['pss_kib'])} | "
            + ", ".join(kib_mb(w["uss_kib"]) for w in ws) + " | "
            + ", ".join(kib_mb(w["pss_kib"]) for w in ws) + " | "
            f"{kib_mb(total)} |")


def scoring(args, ctx, res: dict) -> list[str]:
    """housing-api score against in-process predict, and its memory."""
    found = res.get("scoring")
    if not found:
        return []
    out = []
    add = out.append
    add("## Scoring a file (`housing-api score`)")
    add("")
    add(f"`bench/scoring.py`: a file of {args.score_rows:,} real homes "
        "resampled from `kc_house_data.csv`, scored by the command (one "
        "native thread; its rows/s is its own, from the first read to the "
        "last write: parsing, validation, estimates, writing) against the "
        "same version's `predictor.predict` on the file's first 10,000 homes "
        "in-process (the chunk the command predicts at a time, one native "
        "thread), in alternation. Peak RSS by `bench/peak_rss.py`.")
    run = res.get("scoring_run")
    if run:
        add("")
        add(f"Measured in a run of its own: `{run['command']}`, commit "
            f"`{run['commit']}`, {run['started']} to {run['finished']} (UTC), "
            "on the same machine; the other sections are from the run above.")
    add("")
    add("| model | in-process rows/s | command rows/s | ratio (median; per round) "
        "| command wall s |")
    add("|---|---|---|---|---|")
    for model, scored in found.items():
        rounds = scored["rounds"]
        ratios = [r["command"]["rows_per_s"] / r["in-process"]["rows_per_s"]
                  for r in rounds]
        add(f"| {LABELS[model]} | "
            f"{med(r['in-process']['rows_per_s'] for r in rounds):,.0f} | "
            f"{med(r['command']['rows_per_s'] for r in rounds):,.0f} | "
            f"{med(ratios):.2f} (" + ", ".join(f"{x:.2f}" for x in ratios)
            + f") | {med(r['command']['wall_s'] for r in rounds):.1f} |")
    add("")
    add("| model | homes | peak RSS, MB | wall s |")
    add("|---|---|---|---|")
    for model, scored in found.items():
        for run in scored["memory"].values():
            add(f"| {LABELS[model]} | {run['rows']:,} | "
                f"{kib_mb(run['max_rss_kib'])} | {run['wall_s']:.1f} |")
    add("")
    return out


def start_and_activation(args, ctx, res: dict) -> list[str]:
    """Time to ready, where a start goes, and activation times."""
    out = []
    add = out.append
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
            "environment importing `housing_api.app`, then `create_app()` (config, "
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
    if res.get("bucket"):
        out += bucket_rows(args, res)
    return out


def bucket_rows(args, res: dict) -> list[str]:
    """What the store in a bucket adds to a start and an activation."""
    out = []
    add = out.append
    bucket = res["bucket"]
    add("**The store in a bucket** (`HOUSING_MODEL_STORE=s3://...`, "
        "`bench/bucket_store.py`): moto's S3 server on loopback holding both "
        "versions; each server starts with an empty cache folder, as a new "
        "pod does (the run's compiled trees beside it, so that these rows "
        "differ from the folder store's by the bucket alone). A start first "
        "downloads the active version and checks every file against its "
        "manifest; an activation to a version the server has not served yet "
        "downloads it too (`cold`), one it has served comes from its cache "
        "(`cached`). A real bucket adds its network's latency and bandwidth "
        "to the downloads.")
    add("")
    add("| model | starts | median s | slowest s | folder store's median s |")
    add("|---|---|---|---|---|")
    for model in MODELS:
        times = bucket["ready"][model]
        add(f"| {LABELS[model]} | {len(times)} | {med(times):.2f} | "
            f"{max(times):.2f} | {med(res['ready'][model]):.2f} |")
    add("")
    add("| path | to | cache | converged s | first new answer s | "
        "workers replaced s |")
    add("|---|---|---|---|---|---|")
    for a in bucket["activation"]:
        add(f"| {a['how']} | {LABELS[a['to']]} | {a['cache']} | "
            f"{a['seconds']:.2f} | {a['first_answer_s']:.2f} | "
            f"{a['workers_replaced_s']:.2f} |")
    add("")
    return out


def where_the_time_goes(args, ctx, res: dict) -> list[str]:
    """CPU per request in-process, and the profiles' shares."""
    out = []
    add = out.append
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
        # At a share r of the ceiling's rate a request may cost 1/r of the
        # ceiling's.
        goal = MIN_PREDICT_RATIO[model]
        budget = p["ceiling_cpu_ms"] / goal
        rest = budget - p["ceiling_cpu_ms"] - p["model_cpu_ms"]
        spent = p["service_cpu_ms"] - p["ceiling_cpu_ms"] - p["model_cpu_ms"]
        left = (f"which leaves {rest:.2f} ms" if rest >= 0 else
                f"already {-rest:.2f} ms over, with nothing left")
        add(f"- {LABELS[model]}: at {goal:.0%} of the ceiling, "
            f"a request may cost {budget:.2f} ms; the "
            f"ceiling's own work (HTTP, JSON) takes {p['ceiling_cpu_ms']:.2f} "
            f"and the model {p['model_cpu_ms']:.2f}, {left} for validation, "
            f"logging, metrics and the answer (the service spends "
            f"{spent:.2f}).")
    add("")
    batches = {m: res["profile"][m]["batch"] for m in MODELS
               if res["profile"][m].get("batch")}
    if batches:
        add(f"One `POST /v1/predict/batch` of {args.batch_rows:,} homes, CPU ms "
            "in the same process (10 requests): the whole request; the model's "
            "own `predict` on validated columns (the batch target's "
            "denominator); what any JSON service must do with such a body "
            "(read it, validate the homes into columns, write the answer); and "
            "the rest (the prediction log's rows and their insert, metrics, "
            "ids, rounding to the cent). The last column is what a "
            f"{MIN_BATCH_RATIO:.0%} ratio would leave for that rest once the "
            "model and the JSON work are paid; below zero, the JSON work alone "
            "is more than the target allows.")
        add("")
        add("| model | estimator | request | model | read JSON | validate | "
            f"write JSON | rest | model/request | left for the rest at "
            f"{MIN_BATCH_RATIO:.0%} |")
        add("|---|---|---|---|---|---|---|---|---|---|")
        for model, b in batches.items():
            fixed = b["read_json_ms"] + b["validate_ms"] + b["write_json_ms"]
            rest = b["request_ms"] - b["model_ms"] - fixed
            # At a ratio r, the request may cost model/r.
            room = b["model_ms"] / MIN_BATCH_RATIO - b["model_ms"] - fixed
            add(f"| {LABELS[model]} | `{b.get('estimator', '')}` | "
                f"{b['request_ms']:.1f} | {b['model_ms']:.1f} | "
                f"{b['read_json_ms']:.1f} | {b['validate_ms']:.1f} | "
                f"{b['write_json_ms']:.1f} | {rest:.1f} | "
                f"{b['model_ms'] / b['request_ms']:.0%} | {room:.1f} |")
        add("")
        for model, b in batches.items():
            if "model_c_api_ms" in b:
                add(f"- {LABELS[model]}: through LightGBM's C API instead of "
                    f"the compiled trees, the model's part of this batch takes "
                    f"{b['model_c_api_ms']:.1f} ms, not {b['model_ms']:.1f}: "
                    "the batch target is a ratio to the model's own speed, so "
                    "a faster model lowers it while the service's rows/s rise.")
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
    return out
