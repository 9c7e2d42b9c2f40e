"""The report's /v1/predict and /v1/predict/batch sections."""
from common import BOOSTED, HELLO, LABELS, MODELS
from load import COMPILED_OFF, SHADOW, WITHOUT_PARTS
from report_common import fmt_rate, med


def cpu(runs) -> float | None:
    """Median worker CPU ms per request of ``runs`` (None if not recorded)."""
    values = [r["cpu_ms"] for r in runs if r.get("cpu_ms") is not None]
    return med(values) if values else None


def parts(args, ctx, res: dict) -> list[str]:
    """What each part of the production service costs, at c=16."""
    labels = {v.label: v for v in ctx["variants"]}
    production = next(v.label for v in ctx["variants"] if v.production)
    keyed = next((v.label for v in ctx["variants"] if v.api_key), None)
    lean_other = next((v.label for v in ctx["variants"]
                       if "lean=" in v.label and not v.production), None)
    explained = next((v.label for v in ctx["variants"] if "explain" in v.path),
                     None)
    # (part, the run with it, the run without it)
    pairs = [
        ("the rate limiter, `memory://` (default)", production,
         "service, rate limits off"),
        ("the rate limiter in Redis instead", "service, rate limits in Redis",
         "service, rate limits off"),
        ("the JSON access log line at INFO (default)", production,
         "service, log level WARNING"),
        ("a required API key, sent and checked", keyed, production),
        ("limiter, key check and prediction log together", keyed, WITHOUT_PARTS),
        ("the library path (`lean=false`) instead of the lean one", lean_other,
         production),
        ("`?explain=true` on every request", explained, production),
        ("a shadow rollout: a second predict and logged estimate per request",
         SHADOW, production),
        ("LightGBM's C API instead of the compiled trees (default)", COMPILED_OFF,
         production),
    ]
    #: Parts only one model has.
    only = {COMPILED_OFF: BOOSTED}
    out = []
    add = out.append
    add("## What each part costs")
    add("")
    add("From the `/v1/predict` rounds below at c=16: each part's run against "
        "the run without it, in the same round. The req/s cost is 1 minus the "
        "median of the per-round ratios; CPU is what the server's two workers "
        "spent per request (user + system, from `/proc`), the run with the "
        "part minus the run without, medians over the rounds.")
    add("")
    add("| part | model | req/s cost (median; per round) | worker CPU ms per "
        "request, with / without | CPU added, ms |")
    add("|---|---|---|---|---|")
    for model in MODELS:
        rounds = res["predict"].get(model, {}).get("16")
        if not rounds:
            continue
        for part, top, bottom in pairs:
            if top not in labels or bottom not in rounds[0] or top not in rounds[0]:
                continue
            if only.get(top, model) != model:
                continue
            per = [1 - r[top]["rps"] / r[bottom]["rps"] for r in rounds]
            with_cpu = cpu(r[top] for r in rounds)
            without_cpu = cpu(r[bottom] for r in rounds)
            cells = [part, LABELS[model],
                     f"{med(per):.0%} (" + ", ".join(f"{x:.0%}" for x in per) + ")"]
            if with_cpu is None or without_cpu is None:
                cells += ["", ""]
            else:
                cells += [f"{with_cpu:.2f} / {without_cpu:.2f}",
                          f"{with_cpu - without_cpu:+.2f}"]
            add("| " + " | ".join(cells) + " |")
    add("")
    return out


def predict(args, ctx, res: dict) -> list[str]:
    """``/v1/predict``: each run against its round's ceiling."""
    out = []
    add = out.append
    add("## `/v1/predict`: one home per request")
    add("")
    add("Median over the rounds of each run's req/s, latency percentiles and "
        "worker CPU per request; the ratios are each round's run over that "
        f"round's ceiling run (and over `{HELLO}`'s).")
    for model in MODELS:
        add("")
        add(f"### {LABELS[model]} active")
        add("")
        add("| c | server | median req/s | p50 ms | p99 ms | worker CPU ms/req "
            "| req/s ratio (median; per round) | p99 ratio (median) "
            f"| req/s over {HELLO}'s | errors |")
        add("|---|---|---|---|---|---|---|---|---|---|")
        for c, rounds in res["predict"][model].items():
            for label in rounds[0]:
                runs = [r[label] for r in rounds]
                spent = cpu(runs)
                cells = [c, label, fmt_rate(med(r["rps"] for r in runs)),
                         f"{med(r['p50_ms'] for r in runs):.2f}",
                         f"{med(r['p99_ms'] for r in runs):.2f}",
                         "" if spent is None else f"{spent:.2f}"]
                if label == "ceiling":
                    cells += ["", ""]
                else:
                    per = [r[label]["rps"] / r["ceiling"]["rps"] for r in rounds]
                    p99 = [r[label]["p99_ms"] / r["ceiling"]["p99_ms"]
                           for r in rounds]
                    cells += [f"{med(per):.2f} ("
                              + ", ".join(f"{x:.2f}" for x in per) + ")",
                              f"{med(p99):.2f}"]
                over_hello = (med(r[label]["rps"] / r[HELLO]["rps"] for r in rounds)
                              if HELLO in rounds[0] and label != HELLO else None)
                cells.append("" if over_hello is None else f"{over_hello:.2f}")
                cells.append(str(sum(r["errors"] for r in runs)))
                add("| " + " | ".join(cells) + " |")
    add("")
    return out


def batch(args, ctx, res: dict) -> list[str]:
    """``/v1/predict/batch`` against in-process batch predict."""
    out = []
    add = out.append
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
    return out


def explanations(args, ctx, res: dict) -> list[str]:
    """What ``?explain=true`` costs, and what the feature costs without it."""
    if "explain" not in res:
        return []
    out = []
    add = out.append
    add("## Explanations (`?explain=true`)")
    add("")
    add(f"In-process, one native thread, {args.batch_rows:,} homes per call "
        "(`bench/inprocess.py --explain`): batch predict alone, then predict "
        "and `predictor.explain` (explanation and 5 comparable sales) of "
        "every home.")
    add("")
    add("| model | predict rows/s | predict + explain rows/s | explanation, "
        "ms per home |")
    add("|---|---|---|---|")
    for model in MODELS:
        e = res["explain"][model]
        add(f"| {LABELS[model]} | {fmt_rate(e['plain']['rows_per_s'])} | "
            f"{fmt_rate(e['explained']['rows_per_s'])} | "
            f"{e['ms_per_home']:.2f} |")
    add("")
    explained = next((v.label for v in ctx["variants"] if "explain" in v.path),
                     None)
    baseline = next((v.label for v in ctx["variants"] if v.root), None)
    production = next(v.label for v in ctx["variants"] if v.production)
    if explained is None:
        return out
    add("Over HTTP, one home per request (from the `/v1/predict` rounds "
        "above): the explained service's req/s over the production service's "
        "in the same round"
        + (f", and the production service's over `{baseline}`: what the "
           "feature costs a request that does not ask for it" if baseline
           else "") + ".")
    add("")
    head = "| model | c | explained / production req/s (median; per round) |"
    add(head + (" production / baseline req/s (median; per round) |"
                if baseline else ""))
    add("|---|---|---|" + ("---|" if baseline else ""))
    for model in MODELS:
        for c, rounds in res["predict"][model].items():
            cells = [LABELS[model], c]
            pairs = [(explained, production)] + (
                [(production, baseline)] if baseline else [])
            for top, bottom in pairs:
                per = [r[top]["rps"] / r[bottom]["rps"] for r in rounds]
                cells.append(f"{med(per):.2f} ("
                             + ", ".join(f"{x:.2f}" for x in per) + ")")
            add("| " + " | ".join(cells) + " |")
    add("")
    return out
