"""The report's prediction-log section."""
from common import BOOSTED, LABELS
from prediction_log import MIN_BATCH_RATIO, MIN_PREDICT_RATIO, OFF
from report_common import fmt_rate, med


def prediction_log(args, ctx, res: dict) -> list[str]:
    """Each store against the same service with the log off, round by round."""
    log = res.get("prediction_log")
    if not log:
        return []
    out = []
    add = out.append
    add("## The prediction log")
    add("")
    add(f"{LABELS[BOOSTED]} active; the same service with "
        "`HOUSING_PREDICTION_LOG=false`, with the default log (SQLite in the "
        "instance folder) and with the log in PostgreSQL (a fresh database on "
        f"`--postgres`), in alternation ({len(log['predict'])} rounds, the "
        "order reversed every other round). `/v1/predict` at c=16; the batch of "
        f"{args.batch_rows:,} homes at c={args.workers}. Ratios are each "
        "round's run over that round's log-off run. Targets: at least "
        f"{MIN_PREDICT_RATIO:.2f} for one home, {MIN_BATCH_RATIO:.2f} for the "
        "batch.")
    add("")
    add("| store | /v1/predict req/s | ratio (median; per round) | "
        "batch rows/s | ratio (median; per round) | errors |")
    add("|---|---|---|---|---|---|")
    for label in log["stores"]:
        one = [r[label] for r in log["predict"]]
        many = [r[label] for r in log["batch"]]
        cells = [label, fmt_rate(med(r["rps"] for r in one)), "",
                 fmt_rate(med(r["rows_per_s"] for r in many)), ""]
        if label != OFF:
            for i, (rounds, key, target) in enumerate((
                    (log["predict"], "rps", MIN_PREDICT_RATIO),
                    (log["batch"], "rows_per_s", MIN_BATCH_RATIO))):
                per = [r[label][key] / r[OFF][key] for r in rounds]
                met = "met" if med(per) >= target else "**not met**"
                cells[2 + 2 * i] = (f"{med(per):.2f} ("
                                    + ", ".join(f"{x:.2f}" for x in per)
                                    + f"), {met}")
        cells.append(str(sum(r["errors"] for r in one + many)))
        add("| " + " | ".join(cells) + " |")
    add("")
    added = []
    for label in log["stores"]:
        if label == OFF:
            continue
        # What each logged row adds to the batch's time, in absolute terms:
        # a faster model lowers the ratio while this cost stays put.
        per = [1e6 / r[label]["rows_per_s"] - 1e6 / r[OFF]["rows_per_s"]
               for r in log["batch"]]
        added.append(f"{label} {med(per):.1f} us")
    add("Each logged row of the batch, in absolute terms (1/rows/s with the "
        "log minus without, medians of the rounds, at c="
        f"{args.workers}): " + ", ".join(added) + ". The ratio compares that "
        "with the batch's own cost, which the active model sets: the faster "
        "the model, the lower the ratio for the same cost per row.")
    if "log in PostgreSQL" not in log["stores"]:
        add("")
        add("No PostgreSQL was reachable at `--postgres`: its row is missing.")
    add("")
    return out
