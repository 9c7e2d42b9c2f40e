"""API keys under real Gunicorn with 2 workers: the smoke test with a key,
and a revocation reaching every worker within the refresh interval."""
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from concurrent.futures import ThreadPoolExecutor

from conftest import TOKEN
from housing_api.keys.records import PREFIX_LENGTH
from servers import gunicorn_server
from test_ops_e2e import SHARED_REDIS, shared_redis  # noqa: F401 (a fixture)

HOUSING_API = Path(sys.executable).with_name("housing-api")
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def cli(env, *args) -> str:
    run = subprocess.run([str(HOUSING_API), *args], env={**env, "PATH": str(
        HOUSING_API.parent)}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_the_smoke_test_passes_with_a_key_and_its_quota(model_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'housing.db'}"
    env = {"HOUSING_DATABASE_URL": url, "HOUSING_REQUIRE_API_KEY": "true"}
    cli(env, "db", "upgrade")
    created = cli(env, "keys", "create", "--name", "smoke", "--scope", "predict",
                  "--scope", "sales", "--quota", "20 per second")
    (secret,) = re.findall(r"^key: (\S+)$", created, re.M)
    with gunicorn_server(model_dir, env=env) as server:
        assert requests.post(f"{server.url}/v1/predict", json={},
                             timeout=5).status_code == 401
        run = subprocess.run(
            [str(HOUSING_API), "smoke", "--url", server.url, "--report-sales"],
            env={"PATH": str(HOUSING_API.parent), "HOUSING_API_KEY": secret},
            capture_output=True, text=True, timeout=300)
        log = server.log_text()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100 rows, 0 failures" in run.stdout
    # 20 per second (per worker, in memory): it waited for the limits.
    assert "rate limits: " in run.stdout, run.stdout
    assert secret not in log and secret[PREFIX_LENGTH:] not in log
    assert f'"api_key": "{secret[:PREFIX_LENGTH]}"' in log


def test_a_revocation_reaches_every_worker_within_the_interval(model_dir, home):
    env = {"HOUSING_ADMIN_TOKENS": TOKEN, "HOUSING_RATELIMIT_ENABLED": "false"}
    with gunicorn_server(model_dir, env=env) as server:
        key = requests.post(f"{server.url}/admin/keys", headers=ADMIN, timeout=5,
                            json={"name": "a", "scopes": ["predict"]}).json()

        def statuses(n=20):
            # A new connection each: the two workers take turns.
            return [requests.post(f"{server.url}/v1/predict", json=home,
                                  headers={"X-API-Key": key["key"]},
                                  timeout=5).status_code for _ in range(n)]

        # Made by one worker: the other knows it at its next refresh.
        time.sleep(5.5)
        assert statuses() == [200] * 20
        revoked = requests.delete(f"{server.url}/admin/keys/{key['id']}",
                                  headers=ADMIN, timeout=5)
        assert revoked.status_code == 200
        # Each worker re-reads the keys every 5 s (the default): by then
        # both refuse it. (Which worker takes a request is the kernel's
        # choice, so only the bound is tested, not each worker's moment.)
        time.sleep(5.5)
        assert set(statuses(40)) == {403}


def test_a_keys_quota_is_shared_by_every_worker_through_redis(
        model_dir, tmp_path, home, shared_redis):  # noqa: F811
    client, prefix = shared_redis
    url = f"sqlite:///{tmp_path / 'housing.db'}"
    env = {"HOUSING_DATABASE_URL": url, "HOUSING_REQUIRE_API_KEY": "true",
           "HOUSING_RATELIMIT_STORAGE_URI": SHARED_REDIS,
           "HOUSING_RATELIMIT_KEY_PREFIX": prefix}
    cli(env, "db", "upgrade")
    (secret,) = re.findall(r"^key: (\S+)$", cli(
        env, "keys", "create", "--name", "q", "--scope", "predict",
        "--quota", "6 per minute"), re.M)
    with gunicorn_server(model_dir, env=env) as server:
        def one(_):
            return requests.post(f"{server.url}/v1/predict", json=home,
                                 headers={"X-API-Key": secret}, timeout=30)

        with ThreadPoolExecutor(3) as pool:
            statuses = sorted(r.status_code for r in pool.map(one, range(10)))
        # Keys are required: a request without one is a 401, never a 429.
        assert requests.post(f"{server.url}/v1/predict", json=home,
                             timeout=30).status_code == 401
    # In memory each of the 2 workers would have granted 6.
    assert statuses == [200] * 6 + [429] * 4, statuses
    assert any(b"key:" in k for k in client.scan_iter(match=f"*{prefix}*"))
