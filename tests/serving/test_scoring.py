"""housing-api score: any size of CSV, in chunks, estimates equal to the API's."""
import csv
import json

import pytest

from conftest import DATA_DIR, HousingCliRunner

EXAMPLES = DATA_DIR / "future_unseen_examples.csv"
HEADER = EXAMPLES.read_text().splitlines()[0]
GOOD = "4,1.0,1680,5043,1.5,0,0,4,6,1680,0,1911,0,98118,47.5354,-122.273,1560,5765"
#: (cells, the field its error names): each refused as the API refuses it.
BAD = [
    ("1,2,3", "_row"),
    (GOOD.replace("98118", "99999"), "zipcode"),
    ("x" + GOOD[1:], "bedrooms"),
    (GOOD.replace(",1680,0,1911", ",1600,0,1911"), "sqft_living"),
    (GOOD.replace("47.5354", "91"), "lat"),
]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, lines):
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def examples() -> list[str]:
    return EXAMPLES.read_text().splitlines()[1:]


@pytest.fixture
def runner(model_dir):
    return HousingCliRunner({"MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR})


@pytest.fixture
def work(tmp_path):
    """A folder holding only what a test writes, and what scoring does."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_every_valid_row_is_estimated_as_the_api_estimates_it(runner, client,
                                                              work):
    lines = examples()
    # The bad rows among the good ones, and a row the schema accepts though
    # the column-wise check does not (3.0 bedrooms).
    mixed = lines[:40] + [cells for cells, _ in BAD] + ["3.0" + GOOD[1:]] \
        + lines[40:]
    source = write_csv(work / "homes.csv", mixed)
    result = runner.invoke(args=["score", str(source), str(work / "out.csv"),
                                 "--chunk-rows", "16"])
    assert result.exit_code == 0, result.output
    assert "101 estimates in" in result.stdout
    assert "5 rows refused" in result.stdout

    scored = read(work / "out.csv")
    expected_rows = [i + 1 for i, line in enumerate(mixed)
                     if line not in [cells for cells, _ in BAD]]
    assert [int(r["row"]) for r in scored] == expected_rows  # input order
    csv_body = "\n".join([HEADER, *lines[:40], "3.0" + GOOD[1:], *lines[40:]])
    api = client.post("/v1/predict/batch", data=csv_body,
                      content_type="text/csv").get_json()
    version = client.get("/v1/model").get_json()["version"]
    assert len(api["predictions"]) == len(scored)
    for row, estimate in zip(scored, api["predictions"]):
        assert float(row["prediction"]) == estimate["prediction"]  # to the cent
        assert float(row["lower"]) == estimate["interval"]["lower"]
        assert float(row["upper"]) == estimate["interval"]["upper"]
        assert float(row["level"]) == estimate["interval"]["level"]
        assert row["model_version"] == version
        assert row["warnings"] == "; ".join(estimate["warnings"])


def test_refused_rows_keep_their_cells_and_the_apis_reason(runner, client,
                                                           work):
    source = write_csv(work / "homes.csv", [GOOD, *(c for c, _ in BAD)])
    runner.invoke(args=["score", str(source), str(work / "out.csv")])
    refused = read(work / "out.errors.csv")
    assert [int(r["row"]) for r in refused] == [2, 3, 4, 5, 6]
    for row, (cells, field) in zip(refused, BAD):
        reason = json.loads(row["reason"])
        assert list(reason) == [field]
        if field == "_row":
            continue
        assert ",".join(row[c] for c in HEADER.split(",")) == cells
        api = client.post("/v1/predict/batch", data=f"{HEADER}\n{cells}\n",
                          content_type="text/csv").get_json()
        assert api["errors"]["csv"]["0"] == reason


def test_the_chunk_size_changes_nothing_but_memory(runner, work):
    source = write_csv(work / "homes.csv", examples() * 3)
    outputs = []
    for rows in ("1", "7", "10000"):
        out = work / f"out-{rows}.csv"
        result = runner.invoke(args=["score", str(source), str(out),
                                     "--chunk-rows", rows])
        assert result.exit_code == 0, result.output
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 301
    assert not (work / "out-1.errors.csv").exists()


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    (HEADER + "\n", "a header but no homes"),
    (HEADER.replace("zipcode", "zip") + "\n" + GOOD + "\n",
     "unknown: zip; missing: zipcode"),
    (HEADER + ",notes\n" + GOOD + ",x\n", "unknown: notes"),
])
def test_a_file_that_cannot_be_scored_writes_nothing(runner, work, text,
                                                     message):
    source = work / "homes.csv"
    source.write_text(text)
    stale = work / "out.errors.csv"
    result = runner.invoke(args=["score", str(source), str(work / "out.csv")])
    assert result.exit_code == 1
    assert message in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["homes.csv"]
    assert not stale.exists()


def test_a_run_stopped_midway_leaves_no_half_written_result(model_dir, work,
                                                            monkeypatch):
    from housing_api.cli.score import _checks
    from housing_api.serving import scoring
    from housing_api.store import ModelStore

    store = ModelStore(model_dir)
    predictor = store.load(store.current())
    out = work / "out.csv"
    out.write_text("the previous result\n")
    calls = []
    real = predictor.predict

    def predict(columns, months=None):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(columns, months)
    monkeypatch.setattr(predictor, "predict", predict)
    source = write_csv(work / "homes.csv", examples())
    with pytest.raises(KeyboardInterrupt):
        scoring.score_csv(predictor, source, out, _checks(predictor),
                          chunk_rows=10)
    assert out.read_text() == "the previous result\n"
    assert sorted(p.name for p in work.iterdir()) == ["homes.csv", "out.csv"]


def test_a_clean_run_removes_an_old_errors_file(runner, work):
    source = write_csv(work / "homes.csv", [GOOD, "1,2"])
    out = work / "out.csv"
    runner.invoke(args=["score", str(source), str(out)])
    assert (work / "out.errors.csv").exists()
    write_csv(source, [GOOD])
    result = runner.invoke(args=["score", str(source), str(out)])
    assert result.exit_code == 0 and "refused" not in result.stdout
    assert not (work / "out.errors.csv").exists()


def test_explain_adds_what_the_api_explains(runner, client, work):
    lines = examples()[:5]
    source = write_csv(work / "homes.csv", lines)
    result = runner.invoke(args=["score", str(source), str(work / "out.csv"),
                                 "--explain"])
    assert result.exit_code == 0, result.output
    scored = read(work / "out.csv")
    api = client.post("/v1/predict/batch?explain=true",
                      data="\n".join([HEADER, *lines]),
                      content_type="text/csv").get_json()["predictions"]
    for row, estimate in zip(scored, api):
        assert json.loads(row["explanation"]) == estimate["explanation"]
        assert json.loads(row["comparables"]) == estimate["comparables"]


def test_progress_is_one_line_per_step_when_not_on_a_terminal(runner, work):
    source = write_csv(work / "homes.csv", examples())
    result = runner.invoke(args=["score", str(source), str(work / "out.csv")])
    lines = result.stderr.splitlines()
    assert lines[0].startswith("scoring homes.csv with ")
    assert lines[0].endswith(": 0 of 100 rows")
    assert ": done 100 rows" in lines[-1]
    assert "\r" not in result.stderr


def test_cells_are_read_as_exactly_the_numbers_the_api_reads(model_dir, work,
                                                             monkeypatch):
    """Every digit counts: each cell is the double Python's float() makes."""
    import numpy as np

    from housing_api.cli.score import _checks
    from housing_api.serving import scoring
    from housing_api.store import ModelStore

    store = ModelStore(model_dir)
    predictor = store.load(store.current())
    rng = np.random.default_rng(0)
    lats = [repr(x) for x in rng.uniform(47.2, 47.8, 2000).tolist()]
    longs = [f"{x:.17g}" for x in rng.uniform(-122.5, -121.5, 2000)]
    lines = [GOOD.replace("47.5354", lat).replace("-122.273", long)
             for lat, long in zip(lats, longs)]
    seen = []
    real = predictor.predict

    def predict(columns, months=None):
        seen.append(columns)
        return real(columns, months)
    monkeypatch.setattr(predictor, "predict", predict)
    scoring.score_csv(predictor, write_csv(work / "homes.csv", lines),
                      work / "out.csv", _checks(predictor), chunk_rows=500)
    assert np.concatenate([c["lat"] for c in seen]).tolist() == [
        float(x) for x in lats]
    assert np.concatenate([c["long"] for c in seen]).tolist() == [
        float(x) for x in longs]


def test_quoted_cells_are_read_as_csv(runner, work):
    quoted = ",".join(f'"{cell}"' for cell in GOOD.split(","))
    source = write_csv(work / "homes.csv", [GOOD, quoted, GOOD])
    result = runner.invoke(args=["score", str(source), str(work / "out.csv")])
    assert result.exit_code == 0, result.output
    prices = {r["prediction"] for r in read(work / "out.csv")}
    assert len(read(work / "out.csv")) == 3 and len(prices) == 1
