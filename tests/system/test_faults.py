"""Faults under real Gunicorn (2 workers, loopback) and on a real disk.

One server serves every Gunicorn fault here (each start costs seconds);
each test first checks that it is whole again. Its config is the real
gunicorn.conf.py plus a short worker timeout and one injected fault: a
home with 33 bedrooms makes the predictor raise in the workers.
"""
import errno
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
import requests
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from conftest import DATA_DIR, TOKEN, HousingCliRunner
from housing_api import create_app
from housing_api.store import ModelStore
from model_files import payload, publish_copy, tamper
from servers import (
    ROOT, Load, gunicorn_server, served, wait_converged, worker_pids,
)

WORKERS = 2
WORKER_TIMEOUT = 5
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
FAULT_BEDROOMS = 33

FAULTY_CONFIG = f"""
# The service's own Gunicorn config, then one injected fault.
exec(compile(open({str(ROOT / "gunicorn.conf.py")!r}).read(),
             "gunicorn.conf.py", "exec"))

_real_post_fork = post_fork


def post_fork(server, worker):
    _real_post_fork(server, worker)
    import numpy as np
    from housing_api.inference.predictor import Predictor

    predict = Predictor.predict

    def faulty(self, columns, months=None):
        if np.any(np.asarray(columns["bedrooms"]) == {FAULT_BEDROOMS}):
            raise RuntimeError("injected fault: secret internals")
        return predict(self, columns, months)

    Predictor.predict = faulty
"""


@pytest.fixture(scope="module")
def store(trained_store, tmp_path_factory):
    """A private store: the trained version A (active) and a copy B."""
    root = tmp_path_factory.mktemp("faults") / "model"
    store = ModelStore(shutil.copytree(trained_store, root))
    publish_copy(store)
    return store


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "gunicorn_faults.py"
    config.write_text(FAULTY_CONFIG)
    env = {"HOUSING_ADMIN_TOKENS": TOKEN, "HOUSING_RATELIMIT_ENABLED": "false",
           "HOUSING_MODEL_WATCH_INTERVAL": "0.5", "GUNICORN_CONFIG": str(config)}
    args = f"--timeout {WORKER_TIMEOUT} --graceful-timeout {WORKER_TIMEOUT}"
    with gunicorn_server(store.root, env=env, workers=WORKERS, args=args) as server:
        yield server


@pytest.fixture
def healthy(server, store):
    """The server with every worker up and serving the active version."""
    wait_for(lambda: len(worker_pids(server.pid)) == WORKERS, server)
    assert served(server.url) == store.current()
    return server


def wait_for(condition, server, timeout=30.0, what="condition"):
    """Wait (bounded) until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout:g} s:\n"
                        + server.log_text()[-3000:])
        time.sleep(0.05)


def settled(server, quiet=3.0, timeout=30.0):
    """Wait (bounded) until no signal has been handled for ``quiet`` seconds.

    The master handles queued HUPs one after the other, each a full rolling
    reload, so the last one may come seconds after it was sent.
    """
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() - since < quiet:
        now = (server.log_text().count("Handling signal"),
               frozenset(worker_pids(server.pid)))
        if now != last:
            last, since = now, time.monotonic()
        if time.monotonic() > deadline:
            pytest.fail("the master kept reloading:\n" + server.log_text()[-3000:])
        time.sleep(0.1)
    assert len(last[1]) == WORKERS


def predict(server, home, **kwargs):
    return requests.post(f"{server.url}/v1/predict", json=home, timeout=30,
                         **kwargs)


def log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.log_text().splitlines()
            if line.startswith("{")]


# --- workers and reloads ---------------------------------------------------

def test_a_worker_killed_under_load_is_replaced(healthy, home):
    server = healthy
    clients = 4
    before = worker_pids(server.pid)
    victim = min(before)
    with Load(server.url, home, threads=clients) as load:
        wait_for(lambda: len(load.results) >= 50, server, what="load")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(worker_pids(server.pid) - before) == 1
                 and len(worker_pids(server.pid)) == WORKERS, server,
                 what="a replacement worker")
        replaced_at, failed_at = len(load.results), len(load.failures)
        wait_for(lambda: len(load.results) >= replaced_at + 100, server,
                 what="load after the replacement")
    total = len(load.results) + sum(1 for f in load.failures
                                    if not isinstance(f[0], int))
    print(f"\nSIGKILL under load: {total} requests from {clients} clients, "
          f"{len(load.failures)} failed: {load.failures}")
    # Only what was in flight on the killed worker may fail: a sync worker
    # has one request at a time, and no client has more than one open.
    assert len(load.failures) <= clients
    assert victim not in worker_pids(server.pid)
    # Recovered: every request after the replacement succeeded.
    assert len(load.failures) == failed_at
    assert predict(server, home).status_code == 200


def test_five_hups_in_one_second_under_load(healthy, store, home):
    server = healthy
    a = store.current()
    b = next(v for v in store.list_versions() if v != a)
    hups = server.log_text().count("Handling signal: hup")
    with Load(server.url, home, threads=3) as load:
        wait_for(lambda: len(load.results) >= 30, server, what="load")
        # The pointer moves between the signals, as with overlapping
        # activations from several operators; it ends on b.
        for version in [b, b, a, a, b]:
            store.activate(version)
            old = worker_pids(server.pid)
            os.kill(server.pid, signal.SIGHUP)
            time.sleep(0.2)
        wait_converged(server, b, old)
        settled(server)
        done = len(load.results)
        wait_for(lambda: len(load.results) >= done + 50, server,
                 what="load after the reloads")
    # Pending signals of one kind merge in the kernel: 5 HUPs may be fewer
    # reloads, each idempotent; all that matters is where they end.
    handled = server.log_text().count("Handling signal: hup") - hups
    print(f"\n5 HUPs in 1 s ({handled} handled): {len(load.results)} requests, "
          f"{len(load.failures)} failed, versions seen {set(load.results)}")
    assert load.failures == []
    assert set(load.results) <= {a, b}
    assert handled >= 1
    # One consistent version: every worker, on every connection.
    assert len(worker_pids(server.pid)) == WORKERS
    assert {served(server.url) for _ in range(4 * WORKERS)} == {b}


# --- broken versions -------------------------------------------------------

def _delete(path):
    path.unlink()


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("spoil, reason", [
    (lambda folder: _delete(folder / "model.skops"), "missing file"),
    (lambda folder: _truncate(folder / "model.skops"), "does not match its sha256"),
    (lambda folder: tamper(folder / "demographics.csv"),
     "demographics.csv does not match its sha256"),
], ids=["artifact deleted", "artifact truncated", "demographics tampered"])
def test_a_version_spoiled_after_publishing_is_never_activated(
        healthy, store, spoil, reason):
    server = healthy
    active = store.current()
    workers = worker_pids(server.pid)
    broken = publish_copy(store)
    spoil(store.path(broken))

    response = requests.post(f"{server.url}/admin/models/{broken}/activate",
                             headers={**ADMIN, "X-Request-ID": broken},
                             timeout=30)
    assert response.status_code == 422
    assert reason in response.json()["message"]
    assert store.current() == active
    # Nothing reloaded: the same workers, the same version on every one.
    assert worker_pids(server.pid) == workers
    assert {served(server.url) for _ in range(3 * WORKERS)} == {active}
    [line] = [line for line in log_lines(server)
              if line.get("request_id") == broken
              and line["logger"] == "housing_api.access"]
    assert line["status"] == 422 and reason in line["error"]


def reloads_failed(server) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(r'^housing_model_reloads_total\{result="failed"\} (\S+)$',
                      text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_pointer_to_a_spoiled_version_fails_the_reload_visibly(healthy, store):
    # The CLI or another replica moved CURRENT past the API's checks.
    server = healthy
    active = store.current()
    broken = publish_copy(store)
    _truncate(store.path(broken) / "model.skops")
    failed = reloads_failed(server)
    (store.root / "CURRENT").write_text(f"{broken}\n")
    try:
        wait_for(lambda: reloads_failed(server) > failed, server,
                 what="housing_model_reloads_total{result=failed}")
        log = server.log_text()
        assert "model reload failed; the loaded model keeps serving" in log
        assert "InvalidModelError: model.skops does not match its sha256" in log
        assert {served(server.url) for _ in range(3 * WORKERS)} == {active}
    finally:
        (store.root / "CURRENT").write_text(f"{active}\n")
        settled(server)  # the HUP still replaces the workers (same model)


# --- the predictor raising -------------------------------------------------

def test_an_exception_in_the_predictor_is_a_clean_500(healthy, home):
    server = healthy
    workers = worker_pids(server.pid)
    bad = {**home, "bedrooms": FAULT_BEDROOMS}
    for i in range(10):
        response = predict(server, bad, headers={"X-Request-ID": f"fault-{i}"})
        assert response.status_code == 500
        body = response.json()
        assert body["code"] == 500 and body["message"]
        assert body["request_id"] == response.headers["X-Request-ID"] == f"fault-{i}"
        assert "secret" not in response.text and "Traceback" not in response.text
        assert response.headers["Content-Type"] == "application/json"
        assert predict(server, home).status_code == 200
    batch = requests.post(f"{server.url}/v1/predict/batch", timeout=30,
                          json={"instances": [home, bad]})
    assert batch.status_code == 500 and "secret" not in batch.text
    # The workers keep serving: none died or was replaced.
    assert worker_pids(server.pid) == workers
    # The traceback is logged once per failure, with the request id.
    errors = [line for line in log_lines(server)
              if str(line.get("request_id", "")).startswith("fault-")
              and line.get("level") == "ERROR"]
    assert len(errors) == 10
    assert all("injected fault" in line["exc_info"] for line in errors)


# --- slow, half-sent and abandoned requests --------------------------------

def _open(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _raw_request(path, document, request_id="raw") -> tuple[bytes, bytes]:
    """The head and body of a POST of ``document`` as JSON."""
    body = json.dumps(document).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Request-ID: {request_id}\r\n"
            f"Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def test_a_stalled_body_holds_one_worker_until_the_timeout(healthy, home):
    server = healthy
    before = worker_pids(server.pid)
    head, body = _raw_request("/v1/predict", home)
    stalled = _open(server)
    stalled.sendall(head + body[:10])  # then nothing
    try:
        # The other worker serves meanwhile.
        statuses = [predict(server, home).status_code for _ in range(20)]
        assert statuses == [200] * 20
        # The master kills the stuck worker at the timeout and forks another.
        wait_for(lambda: len(worker_pids(server.pid) - before) == 1
                 and len(worker_pids(server.pid)) == WORKERS, server,
                 timeout=WORKER_TIMEOUT + 15, what="the stuck worker replaced")
        assert "WORKER TIMEOUT" in server.log_text()
        # The stalled client gets Gunicorn's own 500 page as the worker is
        # killed (or a closed connection), never a price.
        stalled.settimeout(10)
        try:
            answer = stalled.recv(1024)
        except ConnectionResetError:
            answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 500 "), answer
    finally:
        stalled.close()
    # Both workers serve again: two stalled-free requests at once.
    with Load(server.url, home, threads=WORKERS) as load:
        wait_for(lambda: len(load.results) >= 40, server, what="load")
    assert load.failures == []


@pytest.mark.parametrize("how, reset", [
    ("mid-body", False), ("mid-body", True), ("before the answer", True),
], ids=["mid-body close", "mid-body reset", "reset before the answer"])
def test_a_client_that_disconnects_mid_request(healthy, home, homes, how, reset):
    server = healthy
    before = worker_pids(server.pid)
    logged = len(server.log_text())
    tag = f"gone-{how[:3]}-{reset:d}"
    for i in range(5):
        if how == "mid-body":
            head, body = _raw_request("/v1/predict", home, f"{tag}-{i}")
            data = head + body[: len(body) // 2]
        else:
            # A batch big enough that the answer may still be computed.
            head, body = _raw_request("/v1/predict/batch",
                                      {"instances": homes * 20}, f"{tag}-{i}")
            data = head + body
        conn = _open(server)
        conn.sendall(data)
        if reset:  # RST instead of FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        conn.close()
    # No worker is stuck or was replaced; both serve at once.
    with Load(server.url, home, threads=WORKERS) as load:
        wait_for(lambda: len(load.results) >= 40, server, what="load")
    assert load.failures == []
    assert worker_pids(server.pid) == before
    # At most one line each in the access log (400: the body never came
    # whole; 200: only the answer was lost; none: the reset came before
    # Gunicorn read the request), and no unhandled error.
    lines = [json.loads(line) for line in server.log_text()[logged:].splitlines()
             if line.startswith("{")]
    assert not [line for line in lines if line["level"] == "ERROR"]
    statuses = [line["status"] for line in lines
                if str(line.get("request_id")).startswith(tag)]
    assert len(statuses) <= 5
    assert set(statuses) <= ({400} if how == "mid-body" else {200, 400})
    print(f"\nclient gone {how} ({'RST' if reset else 'FIN'}): {statuses}")


# --- the disk refusing writes ----------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs of our own (needs CAP_SYS_ADMIN, as root here)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)]).returncode:
            subprocess.run(["umount", "-l", str(mount_point)])


def _fill(disk: Path, leave: int = 0) -> None:
    """Fill ``disk`` until at most ``leave`` bytes are free."""
    with open(disk / "filler", "ab", buffering=0) as f:
        while (free := shutil.disk_usage(disk).free) > leave:
            try:
                f.write(b"\0" * min(1 << 20, max(free - leave, 4096)))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break


def _remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


def _state(store: ModelStore) -> dict:
    """Every file of the store but the jobs' (name -> bytes' digest)."""
    return {str(p.relative_to(store.root)): p.read_bytes()
            for p in sorted(store.root.rglob("*"))
            if p.is_file() and p.relative_to(store.root).parts[0] != "jobs"
            and p.name != ".lock"}


def test_a_disk_that_refuses_writes(small_disk, trained_store, home):
    store = ModelStore(shutil.copytree(trained_store, small_disk / "model"))
    first = store.current()
    second = publish_copy(store)
    store.activate(second)
    store.activate(first)  # history: first, second, first
    app = create_app({"TESTING": True, "MODEL_DIR": store.root,
                      "DATA_DIR": DATA_DIR, "ADMIN_TOKENS": TOKEN,
                      "RATELIMIT_ENABLED": False})
    client = app.test_client()
    runner = HousingCliRunner({"MODEL_DIR": store.root, "DATA_DIR": DATA_DIR})
    files, metadata = payload(store)
    before = _state(store)

    def upload():
        boundary, body = encode_multipart(MultiDict({
            "artifact": FileStorage(io.BytesIO(files["model.skops"]), "a"),
            "metadata": FileStorage(io.BytesIO(json.dumps(metadata).encode()),
                                    "m")}))
        return client.post("/admin/models", data=body, headers=ADMIN,
                           content_type=f"multipart/form-data; boundary={boundary}")

    operations = {
        "upload": upload,
        "activate": lambda: client.post(f"/admin/models/{second}/activate",
                                        headers=ADMIN),
        "rollback": lambda: client.post("/admin/models/rollback", headers=ADMIN),
        "train": lambda: client.post("/admin/models/train", headers=ADMIN,
                                     json={"algorithm": "reference"}),
    }
    seen = {}
    # 1 MiB left: a publish gets part of the way, then the disk is full.
    _fill(small_disk, leave=1 << 20)
    seen["full, 1 MiB left", "upload"] = upload()
    _fill(small_disk)
    for name, send in operations.items():
        seen["full", name] = send()
    _remount(small_disk, "ro")
    try:
        for name, send in operations.items():
            seen["read-only", name] = send()
        seen["read-only", "delete"] = client.delete(f"/admin/models/{second}",
                                                    headers=ADMIN)
        cli = runner.invoke(args=["models", "activate", second])
    finally:
        _remount(small_disk, "rw")

    for (disk, name), response in seen.items():
        body = response.get_json()
        assert response.status_code == 503, (disk, name, body)
        reason = "Read-only file system" if disk == "read-only" else \
            "No space left on device"
        assert reason in body["message"], (disk, name, body)
        assert body["request_id"] == response.headers["X-Request-ID"]
        # The store is exactly as it was, with nothing half-written in it.
        assert _state(store) == before, (disk, name)
        assert client.post("/v1/predict", json=home).status_code == 200
    assert cli.exit_code == 1 and "Read-only file system" in cli.output
    assert "Traceback" not in cli.output
    assert not [p for p in store.root.rglob("*")
                if p.name.endswith(".tmp") or p.name.startswith(".staging")]
    assert store.current() == first and store.list_versions() == sorted(
        [first, second])

    # With space again, the same operation works: nothing was left broken.
    (small_disk / "filler").unlink()
    response = client.post(f"/admin/models/{second}/activate", headers=ADMIN)
    assert response.status_code == 202
    assert client.post("/v1/predict", json=home).get_json()["model"][
        "version"] == second
    print(f"\ndisk refusing writes: {len(seen)} operations refused with 503, "
          f"store unchanged after each")


# --- versions that would fail later, and training jobs that die -------------

def test_a_version_whose_interval_would_fail_some_homes_is_refused(
        client, admin_headers, store, home):
    # Fewer interval bands than its edges need: every future example falls
    # in the first bands, so only expensive homes would hit the hole (500).
    files, metadata = payload(store)
    metadata["interval"] = {"level": 0.8, "edges": [3e6], "lower": [-0.2],
                            "upper": [0.2]}
    before = sorted(p.name for p in store.versions_dir.iterdir())
    boundary, body = encode_multipart(MultiDict({
        "artifact": FileStorage(io.BytesIO(files["model.skops"]), "a"),
        "metadata": FileStorage(io.BytesIO(json.dumps(metadata).encode()), "m")}))
    response = client.post("/admin/models", data=body, headers=admin_headers,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 422
    assert "interval needs" in response.get_json()["message"]
    assert sorted(p.name for p in store.versions_dir.iterdir()) == before


def _children(command: bytes) -> list[int]:
    """Pids of this process's children running ``command``."""
    found = []
    for pid in worker_pids(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(command):
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_killed_training_job_frees_its_slot(model_dir, tmp_path, monkeypatch):
    from housing_api.training import jobs

    # A stand-in for the training process that runs until killed.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(jobs.sys, "executable", str(fake))
    client = create_app({"TESTING": True, "MODEL_DIR": model_dir,
                         "DATA_DIR": DATA_DIR, "ADMIN_TOKENS": TOKEN,
                         "RATELIMIT_ENABLED": False,
                         "MAX_TRAINING_JOBS": 1}).test_client()

    def train():
        return client.post("/admin/models/train", json={"algorithm": "reference"},
                           headers=ADMIN)

    first = train()
    assert first.status_code == 202
    assert train().status_code == 409  # the slot is held by the job's process
    [pid] = _children(b"sleep\0")
    os.kill(pid, signal.SIGKILL)
    job = first.headers["Location"]
    deadline = time.monotonic() + 10
    while client.get(job, headers=ADMIN).get_json()["state"] != "failed":
        assert time.monotonic() < deadline, "the job was not marked failed"
        time.sleep(0.05)
    assert "exited with status -9" in client.get(job, headers=ADMIN).get_json()[
        "reason"]
    again = train()  # the dead job's slot is free again
    assert again.status_code == 202
    for pid in _children(b"sleep\0"):
        os.kill(pid, signal.SIGKILL)
