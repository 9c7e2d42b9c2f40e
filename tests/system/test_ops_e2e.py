"""Metrics, rate limits and logs under real Gunicorn (2 workers, loopback).

test_ops checks them in process; these prove what only the real
multi-process server shows: metrics summed over workers and kept across
rolling reloads, one Redis-backed limit shared by every worker, predictions
that keep flowing while Redis is away, and JSON on every log line.

Redis: the shared limit uses the server on 127.0.0.1:6379 (keys under a
prefix of their own, deleted afterwards); the outage uses a private
``redis-server`` on a free port. Without them these tests skip, unless
``HOUSING_REQUIRE_REDIS=1`` (set by ``.ci/run``) turns the skip into a failure.
"""
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from conftest import TOKEN
from model_files import publish_copy, tamper
from servers import free_port, gunicorn_server, worker_pids

WORKERS = 2
SHARED_REDIS = "redis://127.0.0.1:6379/0"
REDIS_REQUIRED = os.environ.get("HOUSING_REQUIRE_REDIS") == "1"
FALLBACK = "rate limits: storage unreachable"
RECOVERED = "rate limits: storage reachable again"


def unavailable(reason: str):
    """Skip for want of Redis, or fail where Redis is required (CI)."""
    if REDIS_REQUIRED:
        pytest.fail(f"{reason}, and HOUSING_REQUIRE_REDIS=1 requires it")
    pytest.skip(f"{reason}: `sudo apt-get install redis-server` installs and "
                "starts one on 127.0.0.1:6379")


# --- helpers -------------------------------------------------------------

def post_many(url: str, home: dict, n: int, threads: int = 4) -> list:
    """POST ``home`` ``n`` times from ``threads`` clients, each on a new
    connection (the sync workers take them in turn)."""
    def one(_):
        return requests.post(f"{url}/v1/predict", json=home, timeout=30)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def matching(samples, name: str, **labels) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(s.value for s in samples if s.name == name
               and all(s.labels.get(k) == v for k, v in labels.items()))


def scrape(url: str) -> list:
    """Every sample of ``/metrics``, parsed by prometheus_client."""
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return [s for family in text_string_to_metric_families(response.text)
            for s in family.samples]


def worker_samples(metrics_dir: Path, pid: int) -> list:
    """The samples one process wrote to its multiprocess files."""
    files = [str(f) for f in metrics_dir.glob(f"*_{pid}.db")]
    return [s for metric in MultiProcessCollector.merge(files)
            for s in metric.samples]


def loaded(samples) -> set:
    """The versions ``housing_model_info`` reports as loaded (value 1)."""
    info = [s for s in samples if s.name == "housing_model_info"]
    assert {s.value for s in info} <= {0.0, 1.0}, info
    return {s.labels["version"] for s in info if s.value == 1}


def scrape_loaded(url: str, expected: set, timeout: float = 15) -> list:
    """Scrape until ``housing_model_info`` reports exactly ``expected``.

    An old worker's gauge lingers until the master reaps it (child_exit) a
    moment after a rolling reload; bounded, so a gauge that never goes
    still fails.
    """
    deadline = time.monotonic() + timeout
    samples = scrape(url)
    while loaded(samples) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        samples = scrape(url)
    assert loaded(samples) == expected
    return samples


def reloads(samples) -> dict:
    return {s.labels["result"]: s.value for s in samples
            if s.name == "housing_model_reloads_total"}


def wait_workers(server, old: frozenset = frozenset(), timeout: float = 30) -> set:
    """Wait for ``WORKERS`` live workers, none of them in ``old``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = worker_pids(server.pid)
        if len(workers) == WORKERS and not workers & old:
            return workers
        time.sleep(0.05)
    pytest.fail(f"no {WORKERS} fresh workers within {timeout:g} s:\n"
                + server.log_text()[-3000:])


def ready_version(url: str) -> str | None:
    try:
        response = requests.get(f"{url}/health/ready", timeout=5)
    except requests.ConnectionError:
        return None
    return response.json()["model"]["version"] if response.ok else None


def rolling_reload(server, version: str, timeout: float = 30) -> set:
    """HUP the master; wait until only new workers answer, with ``version``."""
    old = frozenset(worker_pids(server.pid))
    os.kill(server.pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = wait_workers(server, old, timeout)
        if {ready_version(server.url) for _ in range(2 * WORKERS)} == {version}:
            return workers
        time.sleep(0.05)
    pytest.fail(f"{version} not served after HUP within {timeout:g} s:\n"
                + server.log_text()[-3000:])


def serve_on_every_worker(server, metrics_dir, home, workers, cap=200) -> int:
    """Send concurrent predictions until each of ``workers`` has priced
    homes; return how many were sent (all answered 200)."""
    sent = 0
    while sent < cap:
        statuses = [r.status_code for r in post_many(server.url, home, 8)]
        assert statuses == [200] * 8, statuses
        sent += 8
        priced = {pid: matching(worker_samples(metrics_dir, pid),
                                "housing_predictions_total") for pid in workers}
        if all(priced.values()):
            return sent
    pytest.fail(f"not every worker served in {cap} requests: {priced}")


def wait_for(condition, what: str, timeout: float, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout:g} s" + (f":\n{log()[-3000:]}" if log else ""))


def exited(pid: int) -> bool:
    """True once ``pid`` (our child) has exited, reaped or not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


# --- metrics ---------------------------------------------------------------

def test_metrics_are_summed_over_workers_and_survive_reloads(store, tmp_path, home):
    metrics_dir = tmp_path / "metrics"
    a = store.current()
    b = publish_copy(store)
    env = {"HOUSING_RATELIMIT_ENABLED": "false",
           # Only this test's HUPs reload: no pointer watcher.
           "HOUSING_MODEL_WATCH_INTERVAL": "0",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with gunicorn_server(store.root, env=env, workers=WORKERS) as server:
        workers = wait_workers(server)
        n = serve_on_every_worker(server, metrics_dir, home, workers)
        per_worker = [matching(worker_samples(metrics_dir, pid),
                               "housing_predictions_total") for pid in workers]
        assert all(per_worker) and sum(per_worker) == n

        samples = scrape(server.url)
        assert matching(samples, "housing_predictions_total") == n
        assert matching(samples, "housing_predictions_total",
                        endpoint="predict.Predict", model_version=a) == n
        assert matching(samples, "flask_http_request_duration_seconds_count",
                        endpoint="predict.Predict") == n
        assert matching(samples, "housing_predicted_price_dollars_count") == n
        assert loaded(samples) == {a}
        # The master's first load; workers inherit it, they do not load.
        assert reloads(samples) == {"loaded": 1}

        # A rolling reload on the same version: new workers, counters kept,
        # and no model reload counted (nothing was loaded).
        workers = rolling_reload(server, a)
        m = serve_on_every_worker(server, metrics_dir, home, workers)
        samples = scrape_loaded(server.url, {a})
        assert matching(samples, "housing_predictions_total") == n + m
        assert matching(samples, "flask_http_request_duration_seconds_count",
                        endpoint="predict.Predict") == n + m
        assert loaded(samples) == {a}
        assert reloads(samples) == {"loaded": 1}

        # A new version: counted as loaded, and the only one reported.
        store.activate(b)
        workers = rolling_reload(server, b)
        k = serve_on_every_worker(server, metrics_dir, home, workers)
        samples = scrape_loaded(server.url, {b})
        assert matching(samples, "housing_predictions_total",
                        model_version=a) == n + m
        assert matching(samples, "housing_predictions_total",
                        model_version=b) == k
        assert loaded(samples) == {b}
        assert reloads(samples) == {"loaded": 2}

        # A version that no longer loads: counted as failed, b keeps serving.
        c = publish_copy(store)
        store.activate(c)
        artifact = store.metadata(c)["artifact"]["file"]
        tamper(store.path(c) / artifact)
        workers = rolling_reload(server, b)
        samples = scrape_loaded(server.url, {b})
        assert reloads(samples) == {"loaded": 2, "failed": 1}
        assert matching(samples, "housing_predictions_total") == n + m + k

        # Dead workers' live gauges are dropped (child_exit), so only live
        # processes can report a loaded version. The master reaps a worker
        # (and runs child_exit) a moment after it is gone: wait, bounded.
        live = workers | {server.pid}

        def gauge_pids():
            return {int(f.stem.rsplit("_", 1)[1])
                    for f in metrics_dir.glob("gauge_live*_*.db")}

        deadline = time.monotonic() + 15
        while not gauge_pids() <= live and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gauge_pids() <= live, sorted(gauge_pids() - live)


# --- rate limits in Redis ----------------------------------------------------

@pytest.fixture
def shared_redis():
    """(client, key prefix) on 127.0.0.1:6379; the prefix's keys are
    deleted afterwards."""
    client = redis.Redis.from_url(SHARED_REDIS, socket_connect_timeout=1,
                                  socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"no Redis reachable at {SHARED_REDIS} ({exc})")
    prefix = f"housing-e2e-{uuid.uuid4().hex}"
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)
        assert not list(client.scan_iter(match=f"*{prefix}*"))
        client.close()


def test_a_redis_limit_is_shared_by_every_worker(model_dir, tmp_path, home,
                                                 shared_redis):
    client, prefix = shared_redis
    metrics_dir = tmp_path / "metrics"
    env = {"HOUSING_RATELIMIT_STORAGE_URI": SHARED_REDIS,
           "HOUSING_RATELIMIT_KEY_PREFIX": prefix,
           "HOUSING_PREDICT_RATE_LIMIT": "10 per minute",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with gunicorn_server(model_dir, env=env, workers=WORKERS) as server:
        workers = wait_workers(server)
        responses = post_many(server.url, home, 15, threads=5)
        answered = {pid: {status: matching(
            worker_samples(metrics_dir, pid),
            "flask_http_request_duration_seconds_count",
            endpoint="predict.Predict", status=str(status)) for status in (200, 429)}
            for pid in workers}
        assert list(client.scan_iter(match=f"*{prefix}*")), "no limit kept in Redis"

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 10 + [429] * 5, statuses
    # Every worker answered; with memory:// none could say 429 before
    # granting 10 itself (15 requests would give up to 15 successes).
    assert all(sum(counts.values()) for counts in answered.values()), answered
    assert any(c[429] and c[200] < 10 for c in answered.values()), answered

    refused = next(r for r in responses if r.status_code == 429)
    body = refused.json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert body["message"]
    assert body["request_id"] == refused.headers["X-Request-ID"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "10"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0


class PrivateRedis:
    """A throwaway redis-server on a free loopback port, no persistence."""

    def __init__(self, binary: str, folder: Path):
        self.binary, self.folder = binary, folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self, timeout: float = 10) -> None:
        with open(self.folder / "redis.log", "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail("redis-server did not start:\n"
                    + (self.folder / "redis.log").read_text(errors="replace"))

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=1,
                           socket_timeout=1)

    def keys(self) -> int:
        with self.client() as client:
            return client.dbsize()

    def kill(self) -> None:
        """Go away abruptly, the way a crashed Redis does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        unavailable("no redis-server binary to start a private Redis")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(binary, folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Predictions:
    """Clients posting predictions, each on new connections, until stopped
    (or ``cap`` requests each)."""

    def __init__(self, url, home, threads=2, cap=2000):
        self.url, self.home, self.cap = url, home, cap
        self.statuses, self.errors = [], []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self):
        for _ in range(self.cap):
            if self._stop.is_set():
                return
            try:
                response = requests.post(f"{self.url}/v1/predict", json=self.home,
                                         timeout=30)
                self.statuses.append(response.status_code)
            except requests.RequestException as exc:  # the finding itself
                self.errors.append(repr(exc))

    def wait_more(self, n: int, timeout: float = 30) -> None:
        target = len(self.statuses) + n
        wait_for(lambda: len(self.statuses) >= target or not self.running(),
                 f"{n} more answers", timeout)

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)


def test_predictions_keep_flowing_while_redis_is_away(model_dir, home,
                                                      private_redis):
    # Generous: the per-worker in-memory fallback must never refuse here.
    env = {"HOUSING_RATELIMIT_STORAGE_URI": private_redis.url,
           "HOUSING_PREDICT_RATE_LIMIT": "100000 per minute"}
    with gunicorn_server(model_dir, env=env, workers=WORKERS) as server:
        with Predictions(server.url, home) as load:
            load.wait_more(10)
            assert private_redis.keys() > 0, "limits not kept in Redis"

            private_redis.kill()
            load.wait_more(20)
            wait_for(lambda: FALLBACK in server.log_text(),
                     "no fallback warning logged", 10, server.log_text)
            load.wait_more(10)

            private_redis.start()  # same port, empty
            # The quota probes the storage again with a backoff (1, 2, 4
            # s...) and only when requests come: keep them coming.
            wait_for(lambda: private_redis.keys() > 0
                     and RECOVERED in server.log_text(),
                     "limits did not return to Redis", 30, server.log_text)
            load.wait_more(10)
        log = server.log_text()

    assert load.errors == []
    assert len(load.statuses) >= 50
    assert set(load.statuses) == {200}, sorted(set(load.statuses))
    records = [json.loads(line) for line in log.splitlines()
               if FALLBACK in line or RECOVERED in line]
    assert {(r["logger"], r["level"]) for r in records
            if r["message"].startswith(FALLBACK)} == {("housing_api.web.limits",
                                                       "WARNING")}


# --- logs -----------------------------------------------------------------------

def test_every_gunicorn_log_line_is_json_and_holds_no_token(model_dir, home):
    env = {"HOUSING_ADMIN_TOKENS": TOKEN, "HOUSING_RATELIMIT_ENABLED": "false",
           "HOUSING_MODEL_WATCH_INTERVAL": "0"}
    with gunicorn_server(model_dir, env=env, workers=WORKERS) as server:
        url = server.url
        version = ready_version(url)
        assert requests.get(f"{url}/admin/models", timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"}).ok
        for headers, query in (({"Authorization": "Bearer wrong-token-x"}, ""),
                               ({}, f"?token={TOKEN}"),
                               ({"X-Admin-Token": TOKEN}, "")):
            response = requests.get(f"{url}/admin/models{query}", headers=headers,
                                    timeout=10)
            assert response.status_code == 401
        bad = requests.post(f"{url}/v1/predict", timeout=10,
                            json={**home, "zipcode": "10001"})
        assert bad.status_code == 422
        before = requests.post(f"{url}/v1/predict", json=home, timeout=10,
                               headers={"X-Request-ID": "before-reload"})
        assert before.status_code == 200

        rolling_reload(server, version)
        after = requests.post(f"{url}/v1/predict", json=home, timeout=10,
                              headers={"X-Request-ID": "after-reload"})
        assert after.status_code == 200

        # Stop it here, to read the shutdown lines too.
        os.kill(server.pid, signal.SIGTERM)
        wait_for(lambda: exited(server.pid), "gunicorn still running", 30)
        log = server.log_text()

    lines = log.splitlines()
    not_json = []
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not not_json, "\n".join(not_json[:20])
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)

    gunicorn = [r["message"] for r in records if r["logger"] == "gunicorn.error"]
    for expected in ("Starting gunicorn", "Booting worker", "Handling signal: hup",
                     "model reload: already on", "Handling signal: term",
                     "Shutting down"):
        assert any(m.startswith(expected) for m in gunicorn), (expected, gunicorn)

    access = {r["request_id"]: r for r in records
              if r["logger"] == "housing_api.access"}
    assert access["before-reload"]["status"] == 200
    # Workers forked by the reload still log through the app's handler.
    assert access["after-reload"]["model_version"] == version
    assert any(r["status"] == 422 and r["error"] == "Unknown zipcode."
               for r in access.values())
    assert sum(r["path"] == "/admin/models" and r["status"] == 401
               for r in access.values()) == 3
    assert TOKEN not in log and "wrong-token-x" not in log


def test_every_worker_widens_its_intervals_after_sales_fall_outside(model_dir, home):
    """Sales reported above their intervals reach every Gunicorn worker's
    next answers within the refresh interval (each reads the counts)."""
    import math

    env = {"HOUSING_INTERVAL_ADAPTATION_REFRESH": "0.5",
           "HOUSING_PREDICTION_LOG_FLUSH_INTERVAL": "0.2",
           "HOUSING_RATELIMIT_ENABLED": "false"}
    with gunicorn_server(model_dir, env=env, workers=WORKERS) as server:
        answers = [r.json() for r in post_many(server.url, home, 10)]
        upper = answers[0]["interval"]["upper"]
        sales = {"sales": [{"prediction_id": a["prediction_id"],
                            "sale_price": 3 * a["prediction"],
                            "sale_date": "2015-06-01"} for a in answers]}

        def reported():
            response = requests.post(f"{server.url}/v1/sales", json=sales, timeout=10)
            return response.status_code == 200  # a 422 until the log is flushed

        wait_for(reported, "the sales recorded", 10, server.log_text)
        widened = upper * math.exp(10 * 0.9 * 0.005)

        def everywhere():
            uppers = [r.json()["interval"]["upper"]
                      for r in post_many(server.url, home, 16, threads=8)]
            # Within a cent: the answer rounds the widened bound, not the
            # rounded one widened.
            return all(abs(u - widened) <= 0.01 for u in uppers)

        wait_for(everywhere, "every answer widened", 10, server.log_text)
