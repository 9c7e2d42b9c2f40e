"""The report: its sections in order, and where it is written."""
import report_load
import report_log
import report_resources
from common import (
    CEILING_APP, HELLO, HELLO_APP, LABELS, MAX_ACTIVATION_S, MAX_EXTRA_USS_MB,
    MAX_P99_RATIO, MAX_PARTS_COST, MAX_READY_S, MAX_SCORE_EXTRA_MB, MB,
    MIN_BATCH_RATIO, MIN_PREDICT_RATIO, MIN_SCORE_RATIO, MODELS, say)
from load import COMPILED_OFF, SHADOW, WITHOUT_PARTS
from report_common import extra_uss, med, met


def report(args, ctx, res: dict) -> str:
    """The run's report, in Markdown: every section, in order."""
    out = []
    for part in (the_run, targets, report_load.parts, report_load.predict,
                 report_load.batch, report_load.explanations,
                 report_resources.scoring, report_log.prediction_log,
                 report_resources.memory, report_resources.start_and_activation,
                 report_resources.where_the_time_goes, reproduce):
        out += part(args, ctx, res)
    return "\n".join(out) + "\n"


def the_run(args, ctx, res: dict) -> list[str]:
    """The title, and how, where and on what the run was made."""
    m = res["machine"]
    out = []
    add = out.append
    add("# Benchmarks")
    add("")
    add("What a price estimate costs, measured against the framework's own "
        "ceiling on the same machine, in one run (issues 6 and 16). Written by "
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
        f"`{CEILING_APP}` through the same entrypoint and configuration; "
        f"`{HELLO}` is `gunicorn -w {args.workers} {HELLO_APP}` with "
        "Gunicorn's own defaults (no body read, no configuration file), in "
        "the same rounds.")
    add("- Service settings: the production defaults, with the rate limits "
        "raised in value only (the same two limits per client, the same "
        "`memory://` storage, checked on every request, never tripping; at "
        "the default 50 requests/s per client they would cap the benchmark, "
        "not measure it). The production default logs one JSON line per "
        "request at INFO (to a file here); `service, rate limits off` is the "
        "same service without the limiter, `service, rate limits in Redis` "
        "keeps its counters in Redis (`--redis`), `service, log level "
        "WARNING` drops the log line; `service, API key required` requires "
        "keys and sends a known one in every request (looked up in each "
        "worker's copy of the keys, no "
        f"database round trip); `{WITHOUT_PARTS}` has the limiter and the "
        "prediction log switched off and sends no key; `service, every "
        "request ?explain=true` asks "
        "for an explanation and 5 comparable sales in every request"
        + (f"; `{SHADOW}` runs a shadow rollout of a copy of the active "
           "version (`housing-api rollout start COPY --mode shadow`): every "
           "request is estimated by both, and both estimates are logged"
           if any(v.shadow for v in ctx["variants"]) else "")
        + (f"; `{COMPILED_OFF}` serves the boosted model through LightGBM's C "
           "API instead of its compiled trees (`HOUSING_COMPILED_TREES=false`; "
           "the k-NN has none, so its row is the default service again, a "
           "measure of the noise between identical runs)"
           if any(v.label == COMPILED_OFF for v in ctx["variants"]) else "")
        + ("; `service at REF (baseline)` is the project as of commit REF "
           "(`--baseline-ref`), same models and settings"
           if any(v.root for v in ctx["variants"]) else "") + "."
        + ("" if ctx["lean_default"] is None else
           " `HOUSING_LEAN_INFERENCE` is measured both ways; the default is "
           f"`{str(ctx['lean_default']).lower()}`.")
        + (" The scoring jobs' process that Gunicorn keeps beside its workers "
           "is off (`HOUSING_JOB_WORKERS=0`): it serves no request; "
           "`housing-api score` has its own section."
           if ctx.get("job_workers") == 0 else ""))
    add(f"- Load: `wrk -t{args.wrk_threads} -c<C> -d{args.duration}s -s "
        "bench/post_rows.lua` for each connection count C "
        f"({', '.join(map(str, args.connections))}), rotating through the 100 rows of "
        "`data/future_unseen_examples.csv` (one home per request, zipcode as "
        f"a string), {args.rounds} interleaved rounds per connection count "
        f"(ceiling, then each service variant, then again), each run "
        f"{args.duration} s after a {args.warmup} s warm-up per server. "
        "Latencies are wrk's (no coordinated-omission correction).")
    add("")
    return out


def predict_summary(rounds: list, ceiling: str, label: str) -> dict:
    ratios = [r[label]["rps"] / r[ceiling]["rps"] for r in rounds]
    p99 = [r[label]["p99_ms"] / r[ceiling]["p99_ms"] for r in rounds]
    return {"ratio": med(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "p99_ratio": med(p99),
            "p99_ratio_max": max(p99)}


def targets(args, ctx, res: dict) -> list[str]:
    """The targets, each met or not."""
    production = next(v.label for v in ctx["variants"] if v.production)
    keyed = next((v.label for v in ctx["variants"] if v.api_key), None)
    out = []
    add = out.append
    add("## Targets")
    add("")
    add("Issue 16's, for the production defaults (issue 6's for start-up and "
        "activation, issue 19's for `housing-api score`). The ceiling is "
        "`bench/ceiling.py` on the service's own "
        f"Gunicorn configuration; `{HELLO}`, the stricter reference, is given "
        "beside it.")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    for model in MODELS:
        rounds = res["predict"][model].get("16")
        if not rounds:
            continue
        s = predict_summary(rounds, "ceiling", production)
        goal = MIN_PREDICT_RATIO[model]
        hello = (f"; {predict_summary(rounds, HELLO, production)['ratio']:.0%} "
                 f"of {HELLO}'s" if HELLO in rounds[0] else "")
        add(f"| `/v1/predict`, {LABELS[model]}, c=16: req/s at least "
            f"{goal:.0%} of the ceiling's | {s['ratio']:.0%} "
            f"(median of {len(rounds)} rounds; {s['ratio_min']:.0%} to "
            f"{s['ratio_max']:.0%}){hello} | {met(s['ratio'] >= goal)} |")
        add(f"| `/v1/predict`, {LABELS[model]}, c=16: p99 at most "
            f"{MAX_P99_RATIO:g}x the ceiling's | {s['p99_ratio']:.2f}x (median; "
            f"worst round {s['p99_ratio_max']:.2f}x) | "
            f"{met(s['p99_ratio'] <= MAX_P99_RATIO)} |")
        if keyed and WITHOUT_PARTS in rounds[0]:
            cost = 1 - med(r[keyed]["rps"] / r[WITHOUT_PARTS]["rps"]
                           for r in rounds)
            add(f"| {LABELS[model]}, c=16: limiter, key check and prediction "
                f"log together cost at most {MAX_PARTS_COST:.0%} of req/s "
                f"(`{keyed}` against `{WITHOUT_PARTS}`) | {cost:.0%} (median "
                f"of per-round ratios) | {met(cost <= MAX_PARTS_COST)} |")
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
    for model, scored in res.get("scoring", {}).items():
        ratio = med(r["command"]["rows_per_s"] / r["in-process"]["rows_per_s"]
                    for r in scored["rounds"])
        add(f"| `housing-api score`, {LABELS[model]}: rows/s at least "
            f"{MIN_SCORE_RATIO:.0%} of in-process batch predict (1 thread) | "
            f"{ratio:.1%} (median of {len(scored['rounds'])} rounds) | "
            f"{met(ratio >= MIN_SCORE_RATIO)} |")
        memory = scored["memory"]
        if "large" in memory:
            extra = (memory["large"]["max_rss_kib"]
                     - memory["small"]["max_rss_kib"]) * 1024
            add(f"| `housing-api score`, {LABELS[model]}: "
                f"{memory['large']['rows']:,} homes take at most "
                f"{MAX_SCORE_EXTRA_MB:g} MB more than "
                f"{memory['small']['rows']:,} (peak RSS) | {extra / MB:+.1f} MB "
                f"| {met(extra <= MAX_SCORE_EXTRA_MB * MB)} |")
    admin = [a["seconds"] for a in res["activation"]["admin"]]
    if admin:
        add(f"| an activation converges on every worker in under "
            f"{MAX_ACTIVATION_S:g} s (admin API) | {max(admin):.2f} s (slowest "
            f"of {len(admin)}) | {met(max(admin) < MAX_ACTIVATION_S)} |")
    add("")
    return out


def reproduce(args, ctx, res: dict) -> list[str]:
    """The commands that make this report again."""
    out = []
    add = out.append
    add("## Reproduce")
    add("")
    add("```sh")
    add("make bench                          # this report, about 45 minutes")
    add("make bench BENCH_ARGS=--quick       # a smoke run; prints, writes "
        "nothing")
    add(".venv/bin/python bench/bench.py --help")
    add("```")
    add("")
    add("`make bench` needs `wrk` (Debian/Ubuntu: `apt-get install wrk`). No "
        "test asserts any timing; `tests/system/test_bench.py` only checks that the "
        "ceiling app answers.")
    return out


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
