"""Shadow and canary rollouts under real Gunicorn (2 workers, loopback).

Started, changed and ended under load with no failed request; a canary's
share and its clients' stickiness over 10,000 requests from 5,000 clients.
The challenger is a small boosted version, the champion the reference k-NN.
"""
import shutil
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import TOKEN
from housing_api.store import ModelStore
from model_files import boosted_payload
from servers import (
    Load, client_address, gunicorn_server, wait_converged, wait_rollout,
    worker_pids,
)

WORKERS = 2
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def boosted():
    return boosted_payload()


@pytest.fixture
def store(trained_store, tmp_path, boosted):
    """A private store: the reference version A (active) and a boosted B."""
    store = ModelStore(shutil.copytree(trained_store, tmp_path / "model"))
    store.publish(*boosted)
    return store


@pytest.fixture
def server(store):
    # One proxy trusted: the tests' clients are told apart by X-Forwarded-For.
    env = {"HOUSING_ADMIN_TOKENS": TOKEN, "HOUSING_MODEL_WATCH_INTERVAL": "0.5",
           "HOUSING_RATELIMIT_ENABLED": "false", "HOUSING_PROXY_COUNT": "1",
           "HOUSING_PREDICTION_LOG_FLUSH_INTERVAL": "0.2"}
    with gunicorn_server(store.root, env=env, workers=WORKERS) as server:
        yield server


def challenger_of(store):
    return next(v for v in store.list_versions() if v != store.current())


def admin(server, method, path, body=None):
    response = requests.request(method, f"{server.url}/admin/rollout{path}",
                                json=body, headers=ADMIN, timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["reload"] == "rolling"
    return response.json()["rollout"]


def served(rollout):
    """What readiness says of ``rollout`` (None: no rollout)."""
    return rollout and {k: rollout[k] for k in ("id", "mode", "challenger",
                                                "share")}


def change(server, method, path, body=None, expected=...):
    """Send an admin rollout request and wait until every worker follows;
    return the rollout as the answer gave it."""
    old = worker_pids(server.pid)
    rollout = admin(server, method, path, body)
    wait_rollout(server, served(rollout) if expected is ... else expected, old)
    return rollout


def test_shadow_and_canary_start_change_and_end_under_load(server, store, home):
    a, b = store.current(), challenger_of(store)
    phases = {}
    with Load(server.url, home, clients=500) as load:
        def phase(name):
            phases[name] = len(load.answers)

        change(server, "POST", "", {"version": b, "mode": "shadow"})
        phase("shadow")
        judged = wait_judged(server)
        change(server, "POST", "/abort", expected=None)
        phase("canary")
        change(server, "POST", "", {"version": b, "mode": "canary", "share": 0.2})
        change(server, "PATCH", "", {"share": 0.6})
        phase("wider")
        old = worker_pids(server.pid)
        admin(server, "POST", "/promote")
        wait_converged(server, b, old)
        wait_rollout(server, None, set())
        phase("promoted")
    print(f"\n{len(load.results)} requests, {len(load.failures)} failed; "
          f"the shadow's judgement rested on {judged} homes")

    assert load.failures == []
    answers = [v for _, v in load.answers]
    assert set(answers[phases["shadow"]:phases["canary"]]) == {a}
    assert set(answers[phases["wider"]:phases["promoted"]]) == {a, b}
    assert set(answers[phases["promoted"]:]) <= {b}
    assert store.current() == b and store.rollout() is None
    assert store.ended_rollout().outcome == "promoted"


def wait_judged(server, timeout=30.0) -> int:
    """Wait until the shadow's estimates reach the prediction log: GET
    /admin/rollout counts homes both versions priced."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = requests.get(f"{server.url}/admin/rollout", headers=ADMIN,
                             timeout=30).json()["judgement"]["price_ratio"]["n"]
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("no shadow estimate logged:\n" + server.log_text()[-3000:])


def test_a_canary_answers_its_share_and_each_client_keeps_its_version(
        server, store, home):
    b = challenger_of(store)
    change(server, "POST", "", {"version": b, "mode": "canary", "share": 0.2})
    clients = [client_address(i) for i in range(5000)]

    def ask(address):
        response = requests.post(f"{server.url}/v1/predict", json=home, timeout=30,
                                 headers={"X-Forwarded-For": address})
        assert response.status_code == 200, response.text
        return address, response.json()["model"]["version"]

    seen = defaultdict(list)
    with ThreadPoolExecutor(4) as pool:
        # Two rounds: each client's second request comes thousands later,
        # on whichever worker takes it.
        for address, version in pool.map(ask, clients + clients):
            seen[address].append(version)
    answered = Counter(v for versions in seen.values() for v in versions)
    share = answered[b] / sum(answered.values())
    print(f"\n{sum(answered.values())} requests: {share:.2%} answered by the "
          "canary (share 20%)")

    assert sum(answered.values()) == 10_000
    assert abs(share - 0.2) <= 0.02
    assert all(len(set(versions)) == 1 for versions in seen.values())
