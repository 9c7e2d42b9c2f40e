"""Two Gunicorn masters on one bucket, no disk shared: swaps under load,
and a bucket outage (moto in server mode, behind a gate that can cut it)."""
import time
from contextlib import ExitStack

import pytest
import requests

from buckets import Gate, endpoint_address, s3_env
from conftest import TOKEN
from housing_api.store import ModelStore, open_store
from housing_api.store.copying import copy_versions
from model_files import boosted_payload
from servers import Load, gunicorn_server, served, wait_converged, worker_pids

WORKERS = 2
WATCH_INTERVAL = 0.25
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def bucket(bucket_url, trained_store, tmp_path):
    """The bucket: the reference version A (active) and a boosted B."""
    store = open_store(bucket_url, tmp_path / "publisher")
    copy_versions(ModelStore(trained_store), store)
    store.activate(store.list_versions()[0])
    b = store.publish(*boosted_payload())
    return store, store.current(), b


@pytest.fixture
def gate(s3_endpoint):
    gate = Gate(endpoint_address(s3_endpoint))
    yield gate
    gate.stop()


def masters(stack, bucket_url, endpoint, tmp_path):
    """Two masters, each with its own cache folder, on the bucket."""
    env = {**s3_env(endpoint), "HOUSING_MODEL_STORE": bucket_url,
           "HOUSING_ADMIN_TOKENS": TOKEN,
           "HOUSING_MODEL_WATCH_INTERVAL": str(WATCH_INTERVAL),
           "HOUSING_RATELIMIT_ENABLED": "false"}
    return [stack.enter_context(gunicorn_server(tmp_path / f"machine-{i}",
                                                env=env, workers=WORKERS))
            for i in (1, 2)]


def converge(servers, version, old):
    return max(wait_converged(s, version, o) for s, o in zip(servers, old))


def test_two_masters_follow_activations_and_a_rollback_under_load(
        bucket, bucket_url, s3_endpoint, tmp_path, home):
    store, a, b = bucket
    with ExitStack() as stack:
        servers = masters(stack, bucket_url, s3_endpoint, tmp_path)
        loads = [stack.enter_context(Load(s.url, home, threads=1))
                 for s in servers]
        seconds = []
        for swap, version in enumerate([b, a] * 5):
            old = [worker_pids(s.pid) for s in servers]
            # Through either master's admin API: the other one follows the
            # bucket's pointer by itself.
            response = requests.post(
                f"{servers[swap % 2].url}/admin/models/{version}/activate",
                headers=ADMIN, timeout=60)
            assert response.status_code == 202, response.text
            seconds.append(converge(servers, version, old))
        old = [worker_pids(s.pid) for s in servers]
        response = requests.post(f"{servers[1].url}/admin/models/rollback",
                                 headers=ADMIN, timeout=60)
        assert response.status_code == 202 and response.json()["version"] == b
        seconds.append(converge(servers, b, old))
        for load in loads:
            load.__exit__()
    results = [r for load in loads for r in load.results]
    print(f"\n{len(results)} requests, "
          f"{sum(len(load.failures) for load in loads)} failed; both masters "
          f"converged per swap (s): {[round(s, 2) for s in seconds]}")
    assert [load.failures for load in loads] == [[], []]
    assert all(len(load.results) >= 100 for load in loads)
    assert all(set(load.results) == {a, b} for load in loads)
    assert store.current() == b
    # Each activation in order, then the rollback one step back:
    assert store.history() == [a] + [b, a] * 4 + [b]


def test_serving_goes_on_through_a_bucket_outage_and_swaps_after(
        bucket, bucket_url, gate, tmp_path, home):
    store, a, b = bucket
    with ExitStack() as stack:
        servers = masters(stack, bucket_url, gate.url, tmp_path)
        with Load(servers[0].url, home) as first, Load(servers[1].url, home) \
                as second:
            gate.close()
            store.activate(b)  # the publisher still reaches the bucket
            time.sleep(8 * WATCH_INTERVAL)
            assert [served(s.url) for s in servers] == [a, a]
            response = requests.get(f"{servers[0].url}/admin/models",
                                    headers=ADMIN, timeout=60)
            assert response.status_code == 503
            assert "unreachable" in response.json()["message"]
            old = [worker_pids(s.pid) for s in servers]
            gate.open()
            seconds = converge(servers, b, old)
        logs = [server.log_text() for server in servers]
    print(f"\n{len(first.results) + len(second.results)} requests, "
          f"{len(first.failures) + len(second.failures)} failed; "
          f"both on {b} {seconds:.1f} s after the bucket came back")
    assert first.failures == [] and second.failures == []
    assert set(first.results) | set(second.results) == {a, b}
    for log in logs:
        assert "the model store is unreachable" in log
        assert "the model store is reachable again" in log
