"""Metrics, rate limits and logs, in process (the Gunicorn ones: test_ops_e2e)."""
import json
import logging
import os
import threading
import time

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter
from prometheus_client.parser import text_string_to_metric_families

from conftest import DATA_DIR, TOKEN
from housing_api import create_app
from housing_api.extensions import limiter
from housing_api.ops import limit_storage
from housing_api.ops.limit_storage import WorkerMemoryStorage


def make_client(model_dir, **config):
    app = create_app({"TESTING": True, "MODEL_DIR": model_dir, "DATA_DIR": DATA_DIR,
                      "ADMIN_TOKENS": TOKEN, **config})
    return app.test_client()


def scrape(client) -> dict:
    """Return {(sample name, sorted labels): value} from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_count_predictions_by_version_and_endpoint(client, homes):
    version = client.get("/v1/model").get_json()["version"]
    for home in homes[:3]:
        client.post("/v1/predict", json=home)
    client.post("/v1/predict/batch", json={"instances": homes[:10]})
    samples = scrape(client)
    key = "housing_predictions_total"
    assert samples[(key, (("endpoint", "predict.Predict"),
                          ("model_version", version)))] == 3
    assert samples[(key, (("endpoint", "predict.Batch"),
                          ("model_version", version)))] == 10
    assert samples[("housing_batch_rows_count", ())] == 1
    assert samples[("housing_batch_rows_sum", ())] == 10
    assert samples[("housing_predicted_price_dollars_count", ())] == 13
    assert samples[("housing_input_sqft_living_count", ())] == 13
    assert samples[("housing_model_info", (("name", "reference-knn"),
                                           ("version", version)))] == 1
    zipcodes = sum(v for (name, _), v in samples.items()
                   if name == "housing_input_zipcode_total")
    assert zipcodes == 13


def test_bulk_histogram_equals_one_observe_per_value(client):
    from prometheus_client import CollectorRegistry, Histogram

    from housing_api.ops.metrics import PRICE_BUCKETS, observe_many

    values = [50e3, 100e3, 100e3 + 1, 2e6, 9e9, 450e3]
    registry = CollectorRegistry()
    loop = Histogram("loop", "", buckets=PRICE_BUCKETS, registry=registry)
    bulk = Histogram("bulk", "", buckets=PRICE_BUCKETS, registry=registry)
    for v in values:
        loop.observe(v)
    observe_many(bulk, values)
    [a], [b] = (list(m.collect()) for m in (loop, bulk))
    assert [(s.name[4:], s.labels, s.value) for s in a.samples
            if not s.name.endswith("_created")] == [
        (s.name[4:], s.labels, s.value) for s in b.samples
        if not s.name.endswith("_created")]


def test_http_metrics_are_grouped_by_endpoint(client, home):
    client.post("/v1/predict", json=home)
    client.get("/v1/zipcodes")
    samples = scrape(client)
    endpoints = {dict(labels).get("endpoint") for (name, labels) in samples
                 if name == "flask_http_request_duration_seconds_count"}
    assert {"predict.Predict", "predict.Zipcodes"} <= endpoints
    assert not any("/v1/" in str(e) for e in endpoints)


def test_validation_failures_are_counted_by_field(client, homes):
    bad = dict(homes[0], grade=99)
    client.post("/v1/predict", json=bad)
    client.post("/v1/predict/batch", json={"instances": [homes[1], bad]})
    samples = scrape(client)
    assert samples[("housing_validation_failures_total",
                    (("field", "grade"),))] == 2


@pytest.mark.parametrize("networks, status", [
    ("10.0.0.0/8", 403), ("10.0.0.0/8, 127.0.0.0/8", 200), ("", 200),
])
def test_metrics_can_be_restricted_by_network(model_dir, networks, status):
    client = make_client(model_dir, METRICS_ALLOWED_NETWORKS=networks)
    response = client.get("/metrics")
    assert response.status_code == status
    if status == 403:
        assert response.get_json()["code"] == 403


def test_rate_limit_answers_429_in_the_common_shape(model_dir, home):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="3 per minute")
    statuses = [client.post("/v1/predict", json=home).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.post("/v1/predict", json=home)
    body = response.get_json()
    assert response.status_code == 429
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert body["message"] and body["request_id"] == response.headers["X-Request-ID"]
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_headers_show_the_shortest_window_until_another_is_used_up(model_dir, home):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="10 per second; 3 per minute")
    first = client.post("/v1/predict", json=home)
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "10"
    assert first.headers["X-RateLimit-Remaining"] == "9"
    assert int(first.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert "Retry-After" not in first.headers  # nothing to wait for
    client.post("/v1/predict", json=home)
    client.post("/v1/predict", json=home)
    refused = client.post("/v1/predict", json=home)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "3"  # the minute's, used up
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "3 per 1 minute" in refused.get_json()["message"]


def test_a_one_second_window_still_says_wait_a_second(model_dir, home):
    """flask-limiter rounds the time to the window's end down: under
    "50 per 1 second" it said Retry-After: 0, and a client that honoured
    it was refused again at once."""
    client = make_client(model_dir, PREDICT_RATE_LIMIT="2 per second")
    for _ in range(12):  # refusals early and late in their second
        for _ in range(10):
            response = client.post("/v1/predict", json=home)
            if response.status_code == 429:
                break
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        time.sleep(0.27)


def test_probes_docs_and_metrics_are_not_rate_limited(model_dir):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="1 per minute",
                         ADMIN_RATE_LIMIT="1 per minute")
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
        assert all(client.get(path).status_code == 200 for _ in range(3)), path


def test_admin_has_its_own_stricter_limit(model_dir, home):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="100 per minute",
                         ADMIN_RATE_LIMIT="2 per minute")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    statuses = [client.get("/admin/models", headers=headers).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.post("/v1/predict", json=home).status_code == 200


def test_limits_can_be_switched_off(model_dir, home):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="1 per minute",
                         RATELIMIT_ENABLED=False)
    assert {client.post("/v1/predict", json=home).status_code
            for _ in range(3)} == {200}


def test_memory_limits_start_no_thread_per_request(model_dir, home, monkeypatch):
    """limits' own memory storage restarted a 10 ms timer thread on the
    first hit after each sweep: about a hundred threads a second per
    busy worker."""
    client = make_client(model_dir, PREDICT_RATE_LIMIT="1000 per second")
    assert isinstance(limiter.storage, WorkerMemoryStorage)
    client.post("/v1/predict", json=home)
    started = []
    original = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start",
                        lambda self: (started.append(self.name), original(self)))
    for _ in range(20):
        assert client.post("/v1/predict", json=home).status_code == 200
        time.sleep(0.015)  # past the old timer's 10 ms
    assert [name for name in started if "Timer" in name or "Thread" in name] == []


def test_expired_memory_counters_are_freed(monkeypatch):
    monkeypatch.setattr(limit_storage, "SWEEP_INTERVAL", 0.0)
    storage = WorkerMemoryStorage()
    item = parse("5 per second")
    strategy = FixedWindowRateLimiter(storage)
    assert strategy.hit(item, "client-a")
    assert len(storage.storage) == 1
    time.sleep(1.05)  # the window ends
    assert strategy.hit(item, "client-b")
    assert list(storage.storage) == [item.key_for("client-b")]
    # Counting stayed right: a new window for client-a too.
    assert all(strategy.hit(item, "client-a") for _ in range(5))
    assert not strategy.hit(item, "client-a")


@pytest.fixture
def redis_limits(model_dir):
    """(make_client, the redis-py client) with the limits in the Redis on
    127.0.0.1:6379 under a key prefix of their own, deleted afterwards."""
    import uuid

    import redis

    url = "redis://127.0.0.1:6379/15"
    connection = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.RedisError as exc:
        reason = f"no Redis at {url} ({exc})"
        if os.environ.get("HOUSING_REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason}, and HOUSING_REQUIRE_REDIS=1 requires it")
        pytest.skip(f"{reason}: `sudo apt-get install redis-server` installs "
                    "and starts one on 127.0.0.1:6379")
    prefix = f"housing-test-{uuid.uuid4().hex}"

    def make(limit):
        return make_client(model_dir, RATELIMIT_STORAGE_URI=url,
                           RATELIMIT_KEY_PREFIX=prefix, PREDICT_RATE_LIMIT=limit)

    yield make, connection
    for key in connection.scan_iter(match=f"*{prefix}*"):
        connection.delete(key)
    connection.close()


def test_redis_limits_take_one_round_trip_a_request(redis_limits, home, monkeypatch):
    make, _ = redis_limits
    client = make("50 per second; 3 per minute")
    client.post("/v1/predict", json=home)  # the script is loaded
    calls = []
    redis_client = limiter.storage.get_connection()
    original = redis_client.execute_command
    monkeypatch.setattr(redis_client, "execute_command",
                        lambda *args, **kw: calls.append(args[0])
                        or original(*args, **kw))
    second = client.post("/v1/predict", json=home)
    assert calls == ["EVALSHA"]
    assert second.headers["X-RateLimit-Limit"] == "50"
    assert second.headers["X-RateLimit-Remaining"] == "48"
    assert int(second.headers["X-RateLimit-Reset"]) >= int(time.time())
    client.post("/v1/predict", json=home)
    refused = client.post("/v1/predict", json=home)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_a_request_refused_by_one_window_is_not_counted_in_the_next(
        redis_limits, home):
    make, _ = redis_limits
    client = make("1 per second; 2 per minute")
    statuses = []
    for _ in range(2):  # two seconds: one granted, one refused in each
        statuses += [client.post("/v1/predict", json=home).status_code
                     for _ in range(2)]
        time.sleep(1.05)
    assert statuses == [200, 429, 200, 429]
    # The minute saw the two granted requests only: one more is refused by it.
    refused = client.post("/v1/predict", json=home)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "2"


@pytest.mark.parametrize("hops, same_bucket", [(0, True), (1, False)])
def test_client_identity_behind_a_proxy(model_dir, home, hops, same_bucket):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="1 per minute",
                         PROXY_COUNT=hops)

    def post(ip):
        return client.post("/v1/predict", json=home,
                           headers={"X-Forwarded-For": ip}).status_code

    assert post("203.0.113.7") == 200
    # With no trusted proxy, X-Forwarded-For is ignored: same client.
    assert post("198.51.100.9") == (429 if same_bucket else 200)


def test_redis_unreachable_keeps_predictions_flowing(model_dir, home, caplog):
    client = make_client(model_dir, PREDICT_RATE_LIMIT="1000 per minute",
                         RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING):
        statuses = {client.post("/v1/predict", json=home).status_code
                    for _ in range(5)}
    assert statuses == {200}
    assert any("storage" in r.getMessage().lower() for r in caplog.records)


def access_lines(capsys) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()
             if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "housing_api.access"]


def test_one_json_log_line_per_request(client, home, capsys):
    capsys.readouterr()
    client.post("/v1/predict", json=home, headers={"X-Request-ID": "trace-1"})
    [line] = access_lines(capsys)
    assert line["request_id"] == "trace-1"
    assert (line["method"], line["path"], line["status"]) == (
        "POST", "/v1/predict", 200)
    assert line["duration_ms"] > 0
    assert line["model_version"] == client.get("/v1/model").get_json()["version"]
    assert line["client"] == "127.0.0.1"
    assert line["level"] == "INFO" and "time" in line


def test_error_lines_carry_the_reason_not_the_body(client, home, capsys):
    capsys.readouterr()
    client.post("/v1/predict", json={**home, "zipcode": "10001", "lat": 47.123456})
    [line] = access_lines(capsys)
    assert line["status"] == 422 and line["error"] == "Unknown zipcode."
    assert "47.123456" not in json.dumps(line)


def test_admin_token_never_reaches_the_logs(client, capsys):
    capsys.readouterr()
    client.get("/admin/models", headers={"Authorization": f"Bearer {TOKEN}"})
    client.get("/admin/models", headers={"Authorization": "Bearer wrong-token-x"})
    client.get(f"/admin/models?token={TOKEN}")
    err = capsys.readouterr().err
    assert len(access_lines_from(err)) == 3
    assert TOKEN not in err and "wrong-token-x" not in err


def access_lines_from(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines()
            if line.startswith("{") and '"housing_api.access"' in line]


def test_text_log_format_for_development(model_dir, home, capsys):
    client = make_client(model_dir, LOG_FORMAT="text")
    capsys.readouterr()
    client.post("/v1/predict", json=home)
    err = capsys.readouterr().err
    assert "INFO housing_api.access: request" in err
