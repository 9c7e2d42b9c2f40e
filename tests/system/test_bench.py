"""The benchmark's pieces work (``make bench`` itself is not run here).

No timing is asserted anywhere: speed is measured by ``make bench`` and
reported in docs/benchmarks.md, never checked by the test suite.
"""
import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}",
                                                  BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ceiling():
    return load("ceiling").create_app().test_client()


def test_ceiling_parses_the_body_and_answers_a_constant(ceiling, home):
    module = load("ceiling")
    response = ceiling.post("/v1/predict", json=home)
    assert response.status_code == 200
    assert response.get_json() == module.ANSWER
    batch = ceiling.post("/v1/predict/batch", json={"instances": [home]})
    assert batch.status_code == 200


def test_ceiling_refuses_what_is_not_a_json_object(ceiling):
    assert ceiling.post("/v1/predict", json=[1, 2]).status_code == 400
    response = ceiling.post("/v1/predict", data="{not json",
                            content_type="application/json")
    assert response.status_code == 400


def test_ceiling_fits_the_gunicorn_hooks():
    # gunicorn.conf.py's when_ready and post_fork read these from the app.
    app = load("ceiling").create_app()
    assert app.config["MODEL_WATCH_INTERVAL"] == 0
    app.extensions["housing"].master_pid = 1234
    assert app.test_client().get("/health/ready").status_code == 200


def test_memstat_reads_this_process():
    memstat = load("memstat")
    mem = memstat.mem_kib(os.getpid())
    assert 0 < mem["uss_kib"] <= mem["rss_kib"]
    assert 0 < mem["pss_kib"] <= mem["rss_kib"]


def test_bench_defaults_are_what_issue_6_asks(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # bench.py imports its siblings
    args = load("bench").parse_args([])
    assert args.rounds >= 3 and args.duration >= 10
    assert {1, 16} <= set(args.connections) and args.workers == 2
    assert args.batch_rows == 1000 and args.memory_requests >= 10_000
    assert args.memory_workers == [2, 4]
    assert args.out.name == "benchmarks.md"


def test_no_bench_module_is_shadowed_by_a_test_helper():
    # bench.py imports its siblings by name; the suite imports its helpers
    # (tests/*.py) by name too, so a shared name loads the wrong module.
    helpers = {path.stem for path in BENCH.parent.joinpath("tests").glob("*.py")}
    assert not helpers & {path.stem for path in BENCH.glob("*.py")}


def test_hello_answers_without_reading_the_body():
    client = load("hello").app.test_client()
    response = client.post("/v1/predict", data="{not json",
                           content_type="application/json")
    assert response.status_code == 200 and response.get_json() == {"hello": "world"}


def test_each_part_costs_its_run_against_the_run_without_it(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    report_load, load_module = load("report_load"), load("load")
    variants = [load_module.Variant("service", {}, True),
                load_module.Variant("service, rate limits off", {}, False)]

    def run(rps, cpu_ms):
        return {"rps": rps, "cpu_ms": cpu_ms}

    rounds = [{"service": run(800, 2.5), "service, rate limits off": run(1000, 2.0)},
              {"service": run(900, 2.4), "service, rate limits off": run(1000, 2.1)},
              {"service": run(600, 2.9), "service, rate limits off": run(1000, 2.2)}]
    res = {"predict": {model: {"16": rounds} for model in ("reference-knn",)}}
    lines = report_load.parts(None, {"variants": variants}, res)
    (row,) = [line for line in lines if line.startswith("| the rate limiter, `memory")]
    assert "| 20% (20%, 10%, 40%) | 2.50 / 2.10 | +0.40 |" in row
