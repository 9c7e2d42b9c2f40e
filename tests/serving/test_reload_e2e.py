"""Zero-downtime model swaps under real Gunicorn (2 workers, loopback).

The swaps go between two kinds of model: the reference k-NN (skops) and a
small boosted one (LightGBM text model with its neighbour context).
"""
import shutil
import time

import pytest
import requests

from conftest import TOKEN
from housing_api.store import ModelStore
from model_files import boosted_payload, publish_copy, tamper
from servers import (
    Load, gunicorn_server, rss_kib, served, wait_converged, worker_pids,
)

WORKERS = 2
WATCH_INTERVAL = 0.5
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
    env = {"HOUSING_ADMIN_TOKENS": TOKEN,
           "HOUSING_MODEL_WATCH_INTERVAL": str(WATCH_INTERVAL),
           "HOUSING_RATELIMIT_ENABLED": "false"}
    with gunicorn_server(store.root, env=env, workers=WORKERS) as server:
        yield server


def versions(store):
    a = store.current()
    return a, next(v for v in store.list_versions() if v != a)


def activate(server, version):
    response = requests.post(f"{server.url}/admin/models/{version}/activate",
                             headers=ADMIN, timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["reload"] == "rolling"


def test_swaps_under_load_drop_no_request(server, store, home):
    a, b = versions(store)
    artifact_kib = (store.path(a) / "model.skops").stat().st_size // 1024
    seconds, rss = [], {}
    with Load(server.url, home) as load:
        for swap, version in enumerate([b, a] * 5, start=1):
            old = worker_pids(server.pid)
            activate(server, version)
            seconds.append(wait_converged(server, version, old))
            rss[swap] = rss_kib(server.pid)
        old = worker_pids(server.pid)
        response = requests.post(f"{server.url}/admin/models/rollback",
                                 headers=ADMIN, timeout=30)
        assert response.status_code == 202
        assert response.json()["version"] == b
        seconds.append(wait_converged(server, b, old))
    print(f"\n{len(load.results)} requests, {len(load.failures)} failed; "
          f"convergence per swap (s): {[round(s, 2) for s in seconds]}; "
          f"master RSS (KiB) after swap 2: {rss[2]}, after swap 10: {rss[10]}")

    assert load.failures == []
    assert len(load.results) >= 100
    assert set(load.results) == {a, b}
    # The master releases the model it swaps out: 8 more swaps must not
    # add even half a model's worth of memory.
    assert rss[10] - rss[2] < artifact_kib // 2
    assert store.current() == b


def test_the_master_follows_the_pointer_and_survives_broken_versions(server,
                                                                     store):
    # One server for every step: each Gunicorn start costs seconds.
    _, b = versions(store)
    c = publish_copy(store)

    # An activation outside the API (the CLI, another replica) converges
    # through the master's watcher, with one reload.
    old = worker_pids(server.pid)
    store.activate(b)
    wait_converged(server, b, old, timeout=10 * WATCH_INTERVAL + 10)
    time.sleep(4 * WATCH_INTERVAL)
    assert server.log_text().count("Hang up") == 1

    # A tampered version is refused by the API; nothing reloads.
    workers = worker_pids(server.pid)
    artifact = store.path(c) / "model.skops"
    good_bytes = artifact.read_bytes()
    tamper(artifact)
    response = requests.post(f"{server.url}/admin/models/{c}/activate",
                             headers=ADMIN, timeout=30)
    assert response.status_code == 422
    assert "sha256" in response.json()["message"]
    assert store.current() == b
    time.sleep(4 * WATCH_INTERVAL)
    assert worker_pids(server.pid) == workers
    assert {served(server.url) for _ in range(3 * WORKERS)} == {b}

    # A pointer moved to it behind the API's back (a hand edit, a replica's
    # copy) is tried once: on_reload keeps the old model, the watcher does
    # not signal again, the server stays up.
    (store.root / "CURRENT").write_text(f"{c}\n")
    deadline = time.monotonic() + 10 * WATCH_INTERVAL + 10
    while "model reload failed" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.1)
    time.sleep(6 * WATCH_INTERVAL)
    assert server.log_text().count("Hang up") == 2
    assert {served(server.url) for _ in range(3 * WORKERS)} == {b}

    # Repaired, and activated again after the pointer went back: followed.
    artifact.write_bytes(good_bytes)
    store.activate(b)
    time.sleep(3 * WATCH_INTERVAL)
    old = worker_pids(server.pid)
    store.activate(c)
    wait_converged(server, c, old, timeout=10 * WATCH_INTERVAL + 10)
    assert server.log_text().count("Hang up") == 3
