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
    return out


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
    assert "**Later sales** (the time split): the 80% interval covers" in text
    assert "lower third" in text.split("**Later sales**")[1].split("\n")[0]
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
