import pytest

from conftest import DATA_DIR, HousingCliRunner
from housing_api.cli.evaluate import default_versions


@pytest.fixture(scope="module")
def quick_report(trained_store, tmp_path_factory):
    """`housing-api evaluate --quick` on the session's reference version."""
    out = tmp_path_factory.mktemp("reports")
    runner = HousingCliRunner({"MODEL_DIR": trained_store, "DATA_DIR": DATA_DIR})
    result = runner.invoke(args=["evaluate", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (out / "progress.txt").write_text(result.stderr)
    return out


def test_progress_names_each_protocol_and_fold(quick_report):
    lines = (quick_report / "progress.txt").read_text().splitlines()
    ends = [line.split(": ", 1)[1].split(" in ")[0] for line in lines
            if ": done" in line]
    assert ends == ["learning curve: done 2 fractions", "2-fold CV: done 2 folds",
                    "time split, trained before 2015-01-01: done",
                    "rolling origin: done 2 cut-offs",
                    "split keeping repeat sales together: done"]
    assert all(": done" in line or line.endswith((" ...", " fractions", " folds",
                                                  " cut-offs"))
               for line in lines), lines


def test_report_states_every_protocol_with_its_numbers(quick_report):
    text = (quick_report / "evaluation.md").read_text()
    assert "| holdout | 0.728 | $102,057 |" in text
    for protocol in ("train split", "time split", "repeat sales grouped",
                     "2-fold shuffled cross-validation", "Learning curve",
                     "80% interval", "lower third", "most expensive quarter",
                     "Worst zipcodes"):
        assert protocol in text
    assert "over-fits" in text


def test_report_scores_later_sales_from_several_cut_offs(quick_report):
    text = (quick_report / "evaluation.md").read_text()
    assert "**Later sales** (the time split): the 80% interval as trained covers" \
        in text
    assert "lower third" in text.split("**Later sales**")[1].split("\n")[0]
    # The intervals the service gives once sales are reported keep their
    # promise on the later sales (issue 17's bounds: 77-83% overall, at
    # least 75% in each third of the price).
    adapted = text.split("**Adapted to reported sales**")[1].split("\n")[0]
    shares = [float(s.split("%")[0]) for s in adapted.split("cover ")[1].split(" ")
              if s.endswith(("%", "%,", "%;"))]
    assert len(shares) == 4 and 77 <= shares[0] <= 83, adapted
    assert all(share >= 75 for share in shares[1:]), adapted
    # Trained on the 11,751 sales before November 2014, scored on the
    # 9,862 from it on; and again from March 2015.
    assert "| 2014-11 | 11,751 | 9,862 |" in text
    assert "| 2015-03 | 16,861 | 4,752 |" in text


def test_report_plots_are_pngs(quick_report):
    text = (quick_report / "evaluation.md").read_text()
    for name in ("predicted-vs-actual", "residuals", "learning-curve",
                 "coverage", "rolling-origin"):
        path = quick_report / f"reference-{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({path.name})" in text


def test_default_versions_are_the_active_and_newest_of_each_trainer(store):
    active = store.current()
    assert default_versions(store) == [active]


def test_the_minimal_companion_is_scored_as_its_metadata_says(boosted_store):
    from housing_api.store import ModelStore
    from housing_api.training.data import Sales
    from housing_api.training.evaluation import score
    from housing_api.training.report import _row

    store = ModelStore(boosted_store)
    predictor = store.load(store.current())
    sales = Sales.read(DATA_DIR)
    _, holdout = sales.split()
    scored = score(predictor.minimal, sales, holdout)
    stored = store.metadata(store.current())["companions"]["minimal"]
    assert scored.metrics["n"] == 5404
    for name in ("r2", "mape", "mae", "coverage"):
        assert scored.metrics[name] == pytest.approx(
            stored["metrics"]["holdout"][name], rel=1e-12)
    row = _row("minimal companion", scored.metrics, "protocol")
    assert row.startswith(f"| minimal companion | {scored.metrics['r2']:.3f} |")
