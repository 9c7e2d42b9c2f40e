"""``housing-api monitor``: live accuracy by week and the drift table, as text
or as a Markdown report with plots (the way ``reports/evaluation.md`` reads)."""
from datetime import datetime, timezone
from pathlib import Path


def _pct(x) -> str:
    return "" if x is None else f"{x:.1%}"


def _usd(x) -> str:
    return "" if x is None else f"${x:,.0f}"


def _num(x, digits=3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def accuracy_table(holdout: dict, weeks: list[dict]) -> list[str]:
    """Markdown rows: the holdout, then each week of reported sales."""
    rows = ["| sales | n | MAE | MAPE | median APE | R2 | bias | 80% coverage |",
            "|---|---|---|---|---|---|---|---|"]
    if holdout:
        rows.append(f"| holdout (training) | {holdout.get('n', '')} | "
                    f"{_usd(holdout.get('mae'))} | {_pct(holdout.get('mape'))} | "
                    f"{_pct(holdout.get('median_ape'))} | {_num(holdout.get('r2'))} | "
                    f"{_pct(holdout.get('bias'))} | {_pct(holdout.get('coverage'))} |")
    for w in weeks:
        if not w["n"]:
            continue
        rows.append(f"| week of {w['group']} | {w['n']} | {_usd(w['mae'])} | "
                    f"{_pct(w['mape'])} | {_pct(w['median_ape'])} | "
                    f"{_num(w['r2'])} | {_pct(w['bias'])} | {_pct(w['coverage'])} |")
    return rows


def drift_table(found: dict) -> list[str]:
    rows = ["| input | rows | PSI | verdict |", "|---|---|---|---|"]
    for f in found["features"]:
        rows.append(f"| {f['name']} | {f['rows']} | {_num(f['psi'])} | "
                    f"{f['verdict']} |")
    return rows


def text(version: str, holdout: dict, weeks: list[dict], found: dict | None) -> str:
    """What ``housing-api monitor`` prints."""
    lines = [f"model version {version}", "", "live accuracy by week of sale:",
             *accuracy_table(holdout, weeks)]
    if not any(w["n"] for w in weeks):
        lines.append("(no sales reported yet: POST /v1/sales)")
    lines += ["", "drift of the estimates against training:"]
    lines += drift_table(found) if found else [
        "(this version has no training distribution: train it again)"]
    return "\n".join(lines) + "\n"


def write_markdown(out: Path, version: str, holdout: dict, weeks: list[dict],
                   found: dict | None, command: str) -> Path:
    """Write ``out`` and its plots beside it; return the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    lines = [f"# Live accuracy and drift: {version}", "",
             f"Written by `{command}` on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from the prediction "
             "log and the sales reported back.", "", "## Accuracy by week of sale",
             "", *accuracy_table(holdout, weeks), ""]
    measured = [w for w in weeks if w["n"]]
    if measured:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot([w["group"] for w in measured], [w["mape"] for w in measured],
                marker="o", label="live MAPE")
        if holdout.get("mape") is not None:
            ax.axhline(holdout["mape"], color="black", lw=1, ls="--",
                       label="holdout MAPE")
            ax.axhline(1.3 * holdout["mape"], color="red", lw=1, ls=":",
                       label="alert (1.3x holdout)")
        ax.set(xlabel="week of sale", ylabel="MAPE", title="Live MAPE by week")
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.tick_params(axis="x", rotation=45)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(f"{stem}-mape.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        lines += [f"![Live MAPE by week]({path.name})", ""]
    else:
        lines += ["No sales reported yet (POST /v1/sales).", ""]
    lines += ["## Drift against the training data", ""]
    if found:
        lines += ["Population stability index of the logged estimates' inputs "
                  "and predicted prices against the version's training data: "
                  "below 0.1 none, 0.1 to 0.25 moderate, above 0.25 major.", "",
                  *drift_table(found), ""]
        scored = [f for f in found["features"] if f["psi"] is not None]
        if scored:
            fig, ax = plt.subplots(figsize=(7, 3.6))
            ax.barh([f["name"] for f in scored], [f["psi"] for f in scored])
            for limit in (0.1, 0.25):
                ax.axvline(limit, color="red", lw=1, ls=":")
            ax.set(xlabel="PSI", title="Drift by input")
            fig.tight_layout()
            path = Path(f"{stem}-drift.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            lines += [f"![Drift by input]({path.name})", ""]
    else:
        lines += ["This version has no training distribution; train it again.", ""]
    out.write_text("\n".join(lines))
    return out
