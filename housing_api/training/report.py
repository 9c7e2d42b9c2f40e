"""Write the evaluation as Markdown with PNG plots (``housing-api evaluate``)."""
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .evaluation import Evaluation


def _pct(x):
    return f"{x:.1%}"


def _usd(x):
    return f"${x:,.0f}"


def _row(label, m, protocol):
    return (f"| {label} | {m['r2']:.3f} | {_usd(m['mae'])} | {_usd(m['rmse'])} | "
            f"{_pct(m['mape'])} | {_pct(m['median_ape'])} | {m['n']:,} | {protocol} |")


HEADER = ("| | R2 | MAE | RMSE | MAPE | median APE | n | protocol |\n"
          "|---|---|---|---|---|---|---|---|")


def fit_verdict(ev: Evaluation) -> str:
    """Say whether the model over- or under-fits, from the numbers."""
    gap = ev.train.metrics["r2"] - ev.holdout.metrics["r2"]
    curve = [p["holdout"]["r2"] for p in ev.learning_curve]
    still_learning = len(curve) > 1 and curve[-1] - curve[-2] > 0.005
    if gap > 0.05:
        verdict = (f"over-fits: train R2 exceeds holdout R2 by {gap:.3f}")
    else:
        verdict = f"fits without a large gap (train - holdout R2 = {gap:.3f})"
    if ev.holdout.metrics["r2"] < 0.8:
        verdict += ("; it also under-fits the signal: even on its training rows "
                    "it leaves much of the variance unexplained, so the features "
                    "(no location within a zipcode, no quality or age) limit it")
    verdict += ("; the holdout score still rises with more training data"
                if still_learning else
                "; more data of the same kind would barely help (the learning "
                "curve is flat at the end)")
    return verdict


def _later_sales(ev: Evaluation) -> list[str]:
    """The time split's interval and the rolling origin, as text and table."""
    t = ev.time_split
    thirds = ", ".join(f"{g['group']} {_pct(g['coverage'])}" for g in t["by_third"])
    a = t["adapted"]
    lines = [
        f"**Later sales** (the time split): the 80% interval as trained covers "
        f"{_pct(t['coverage'])} of the {t['n_test']:,} sales after "
        f"{t['cutoff'][:4]}-{t['cutoff'][4:6]}-{t['cutoff'][6:]} "
        f"(by actual price: {thirds}).", "",
        f"**Adapted to reported sales** (`INTERVAL_ADAPTATION_STEP`, the "
        f"default): the intervals the service gives when each sale is "
        f"reported the day it sells, the sales of a day estimated with "
        f"what the days before reported, cover {_pct(a['coverage'])} "
        f"(by actual price: " + ", ".join(
            f"{g['group']} {_pct(g['coverage'])}" for g in a["by_third"])
        + f"; mean width {_usd(a['mean_width'])} against "
        f"{_usd(t['mean_width'])} as trained). The estimates are the same.", "",
        "**Rolling origin**: for each cut-off month, refit on the sales before "
        "it and score every sale from it on, each estimated as the service "
        "estimates \"now\": at the latest market level of its training data.", "",
        "| cut-off | trained on | scored | R2 | MAPE | MAE | 80% coverage | "
        "adapted | coverage by months ahead (adapted) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ev.rolling:
        ahead = ", ".join(
            f"{g['group']}: {_pct(g['coverage'])} ({_pct(h['coverage'])})"
            for g, h in zip(r["by_months_ahead"], r["adapted_by_months_ahead"]))
        lines.append(f"| {r['cutoff']} | {r['n_train']:,} | {r['n']:,} | "
                     f"{r['r2']:.3f} | {_pct(r['mape'])} | {_usd(r['mae'])} | "
                     f"{_pct(r['coverage'])} | {_pct(r['adapted_coverage'])} | "
                     f"{ahead} |")
    return lines + [""]


def _section(ev: Evaluation, plots: dict) -> list[str]:
    m = ev.holdout.metrics
    cv = {k: (np.mean([f[k] for f in ev.cv]), np.std([f[k] for f in ev.cv]))
          for k in ("r2", "mape", "mae")}
    lines = [
        f"## {ev.name} (`{ev.version}`)", "",
        HEADER,
        _row("holdout", m, "train_test_split(random_state=42), 25% holdout, "
                           "model as stored" + (", each home as of its sale month"
                                                if ev.market else "")),
        _row("train split", ev.train.metrics, "the same model on its own 75%"),
        *([_row("minimal companion", ev.minimal.metrics,
                "the same holdout, from the 7 sales columns and the zipcode "
                "(`/v1/predict/minimal`), each home as of its sale month; "
                f"80% interval coverage {_pct(ev.minimal.metrics['coverage'])}")]
          if ev.minimal is not None else []),
        _row("time split", ev.time_split,
             f"refit on sales before {ev.time_split['cutoff']}, tested on "
             "later ones" + (", estimated at the latest level of its training "
                             "data" if ev.market else "")),
        _row("repeat sales grouped", ev.group_split,
             "refit; GroupShuffleSplit by house id, 25% test "
             f"({ev.group_split['repeat_sales']} repeat sales never split)"),
        "",
        f"**{len(ev.cv)}-fold shuffled cross-validation** (all sales, refit per "
        f"fold, KFold(shuffle=True, random_state=42)): R2 {cv['r2'][0]:.3f} ± "
        f"{cv['r2'][1]:.3f}, MAPE {_pct(cv['mape'][0])} ± {_pct(cv['mape'][1])}, "
        f"MAE {_usd(cv['mae'][0])} ± {_usd(cv['mae'][1])} (mean ± std).", "",
        f"**Fit**: the model {fit_verdict(ev)}.", "",
        *_later_sales(ev),
        "Learning curve (refit on a random share of the training split; "
        "scored on that share and on the holdout):", "",
        "| share of train | n | train R2 | holdout R2 | holdout MAPE |",
        "|---|---|---|---|---|",
        *(f"| {p['fraction']:.0%} | {p['n']:,} | {p['train']['r2']:.3f} | "
          f"{p['holdout']['r2']:.3f} | {_pct(p['holdout']['mape'])} |"
          for p in ev.learning_curve),
        "",
        f"**80% interval** on the holdout: coverage {_pct(m['coverage'])}, mean "
        f"width {_usd(m['mean_width'])} (calibrated on out-of-fold residuals of "
        "the training split only).", "",
        "Where the model is bad (holdout, by actual price and by zipcode tier "
        "from training prices; R2 within a narrow price band is low by "
        "construction, compare MAE and MAPE):", "",
        "| group | R2 | MAE | MAPE | interval coverage | mean width | n |",
        "|---|---|---|---|---|---|---|",
        *(f"| {g['group']} | {g['r2']:.3f} | {_usd(g['mae'])} | {_pct(g['mape'])} "
          f"| {_pct(g['coverage'])} | {_usd(g['mean_width'])} | {g['n']:,} |"
          for g in ev.by_third + ev.by_zipcode_tier),
        "",
        "Worst zipcodes by holdout MAPE (at least 20 sales): " + ", ".join(
            f"{z} ({_pct(mape)}, n={n})" for z, mape, n in ev.worst_zipcodes) + ".",
        "",
        *(f"![{title}]({path.name})" for title, path in plots.items()),
        "",
    ]
    return lines


def _plots(ev: Evaluation, out: Path) -> dict:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'housing-api[eval]'")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slug = ev.trainer
    paths = {}
    h = ev.holdout

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(h.actual / 1e3, h.price / 1e3, s=3, alpha=0.3)
    top = np.percentile(h.actual, 99.5) / 1e3
    ax.plot([0, top], [0, top], color="black", lw=1)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="actual price ($k)",
           ylabel="predicted price ($k)", title=f"{ev.name}: predicted vs actual")
    paths["Predicted vs actual"] = _save(fig, out / f"{slug}-predicted-vs-actual.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(h.actual / 1e3, (h.price - h.actual) / h.actual, s=3, alpha=0.3)
    ax.axhline(0, color="black", lw=1)
    ax.set(xscale="log", ylim=(-1, 1), xlabel="actual price ($k, log scale)",
           ylabel="relative error", title=f"{ev.name}: residuals vs price")
    paths["Residuals vs price"] = _save(fig, out / f"{slug}-residuals.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    n = [p["n"] for p in ev.learning_curve]
    ax.plot(n, [p["train"]["r2"] for p in ev.learning_curve], "o-", label="train")
    ax.plot(n, [p["holdout"]["r2"] for p in ev.learning_curve], "o-",
            label="holdout")
    ax.set(xlabel="training rows", ylabel="R2", title=f"{ev.name}: learning curve")
    ax.legend()
    paths["Learning curve"] = _save(fig, out / f"{slug}-learning-curve.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    groups = [g["group"].replace(" third", "") for g in ev.by_third]
    ax.bar(groups, [g["coverage"] for g in ev.by_third])
    ax.axhline(ev.holdout.metrics["coverage"], color="black", lw=1,
               label="overall")
    ax.axhline(0.8, color="red", lw=1, ls="--", label="target 80%")
    ax.set(ylim=(0, 1), ylabel="share of actual prices inside the interval",
           xlabel="price third (holdout)", title=f"{ev.name}: interval coverage")
    ax.legend()
    paths["Interval coverage"] = _save(fig, out / f"{slug}-coverage.png")

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    for r in ev.rolling:
        ahead = [g["group"] for g in r["by_months_ahead"]]
        line, = left.plot(ahead, [g["coverage"] for g in r["by_months_ahead"]],
                          "o-", label=f"cut-off {r['cutoff']}")
        left.plot(ahead, [g["coverage"] for g in r["adapted_by_months_ahead"]],
                  "s--", color=line.get_color())
        right.plot(ahead, [g["mape"] for g in r["by_months_ahead"]], "o-",
                   label=f"cut-off {r['cutoff']}")
    left.axhline(0.8, color="red", lw=1, ls=":", label="target 80%")
    left.set(ylim=(0.5, 1), xlabel="months after the cut-off",
             ylabel="80% interval coverage",
             title="coverage of later sales\n(solid: as trained; dashed: adapted "
                   "to reported sales)")
    right.set(ylim=(0, None), xlabel="months after the cut-off", ylabel="MAPE",
              title="error on later sales")
    left.legend(fontsize=7, ncol=2, loc="upper right")
    fig.suptitle(f"{ev.name}: rolling origin")
    paths["Rolling origin"] = _save(fig, out / f"{slug}-rolling-origin.png")
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write_report(evaluations: list[Evaluation], out: Path, command: str) -> Path:
    """Write ``out/evaluation.md`` and its plots; return the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Model evaluation", "",
        f"Regenerate with `{command}` "
        f"(written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC).", "",
        "Every protocol below refits the model on its own training rows; "
        "nothing fitted on prices (neighbourhood features, interval "
        "calibration) sees the rows it is scored on. The holdout rows are the "
        "25% of Sound Realty's `train_test_split(random_state=42)`.", "",
        "## Side by side (holdout)", "",
        HEADER,
        *(_row(ev.name, ev.holdout.metrics, "25% holdout") for ev in evaluations),
        "",
    ]
    for ev in evaluations:
        lines += _section(ev, _plots(ev, out))
    path = out / "evaluation.md"
    path.write_text("\n".join(lines))
    return path
