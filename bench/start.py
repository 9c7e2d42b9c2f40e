"""Start to ready, where a start's time goes, and activations reaching workers."""
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import memstat
from common import BOOSTED, CONVERGED_STREAK, REFERENCE, ROOT, say
from processes import Server, call, gunicorn, server_env
from stores import store_copy


def bench_ready(args, ctx, model: str) -> tuple[list[float], list[dict]]:
    """Time to ready of ``starts`` starts, each followed by a bare process
    doing the app's part of a start (:func:`startup`), so that the two see
    about the same machine load."""
    times, parts = [], []
    for _ in range(args.starts):
        store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
        with gunicorn("service", store, workers=args.workers,
                      expect_version=ctx["versions"][model]) as server:
            times.append(server.ready_s)
        parts.append(startup(args, ctx, store))
        say(f"  ready {model}: {times[-1]:.2f} s (import "
            f"{parts[-1]['import_s']:.2f} s, create_app "
            f"{parts[-1]['create_app_s']:.2f} s)")
    return times, parts


_STARTUP = """
import json, sys, time
started = time.perf_counter()
from housing_api.app import create_app
imported = time.perf_counter()
create_app()
created = time.perf_counter()
print(json.dumps({"import_s": imported - started,
                  "create_app_s": created - imported}))
"""


def startup(args, ctx, store: Path) -> dict:
    """Where a start's time goes: a bare Python process importing the app's
    package, then ``create_app()`` (config, blueprints, the model version
    loaded and checked), with the server's environment; wall times."""
    tmp = Path(tempfile.mkdtemp(prefix="startup-", dir=ctx["work"]))
    env = server_env(store, tmp, 0, args.workers, {})
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    (tmp / "metrics").mkdir()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _STARTUP], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, check=True)
    result = json.loads(proc.stdout)
    result["process_s"] = time.monotonic() - started
    return result


def import_profile(ctx, model: str) -> dict:
    """``python -X importtime``, importing the app and creating it with
    ``model`` active: self time summed by top-level package (nothing counted
    twice), in seconds."""
    store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOUSING_")}
    env.update(OMP_NUM_THREADS="1", HOUSING_MODEL_DIR=str(store))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "from housing_api import create_app; create_app()"],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=True)
    by_package: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        package = fields[2].strip().split(".")[0]
        by_package[package] = by_package.get(package, 0) + int(fields[0]) / 1e6
    return {"total_s": sum(by_package.values()),
            "packages": sorted(by_package.items(), key=lambda kv: -kv[1]),
            "dont_write_bytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}


def converge(server: Server, version: str, action, timeout: float = 60) -> dict:
    """Run ``action`` (an activation); return how long until every worker
    serves ``version``: ``CONVERGED_STREAK`` consecutive answers, each on a
    new connection, name it, and none of the master's workers from before
    is left (``WEB_CONCURRENCY`` new ones)."""
    old = memstat.children(server.pid)
    started = time.monotonic()
    action()
    streak = polls = 0
    first_new = replaced_at = None
    while True:
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise RuntimeError(f"no convergence on {version} in {timeout} s")
        try:
            status, body = call(server.url, "GET", "/health/ready", timeout=5)
        except OSError:
            status, body = None, None
        polls += 1
        if status == 200 and body["model"]["version"] == version:
            streak += 1
            if first_new is None:
                first_new = time.monotonic() - started
        else:
            streak = 0
        now = memstat.children(server.pid)
        replaced = len(now) == server.workers and not now & old
        if replaced and replaced_at is None:
            replaced_at = time.monotonic() - started
        elif not replaced:
            replaced_at = None
        if streak >= CONVERGED_STREAK and replaced:
            return {"seconds": time.monotonic() - started,
                    "first_answer_s": first_new, "workers_replaced_s": replaced_at,
                    "polls": polls}
        time.sleep(0.005)


def admin_activation(server: Server, token: str, version: str):
    """An activation of ``version`` through ``server``'s admin API."""
    def action():
        status, body = call(server.url, "POST",
                            f"/admin/models/{version}/activate",
                            headers={"Authorization": f"Bearer {token}"})
        if status not in (200, 202):
            raise RuntimeError(f"activate -> {status} {body}")
    return action


def bench_activation(args, ctx) -> dict:
    """Activations on a running service (2 workers), alternating models."""
    from housing_api.store import ModelStore

    token = secrets.token_hex(16)
    versions = ctx["versions"]
    store = store_copy(ctx["source"], versions, BOOSTED, ctx["work"])
    results = {"admin": [], "store": []}
    current = BOOSTED
    with gunicorn("service", store, workers=args.workers,
                  env={"HOUSING_ADMIN_TOKENS": token},
                  expect_version=versions[BOOSTED]) as server:
        plan = ([("admin", i) for i in range(args.activations)]
                + [("store", i) for i in range(args.cli_activations)])
        for how, _ in plan:
            target = REFERENCE if current == BOOSTED else BOOSTED
            version = versions[target]
            if how == "admin":
                action = admin_activation(server, token, version)
            else:
                def action(version=version):
                    ModelStore(store).activate(version)
            result = converge(server, version, action)
            result["to"] = target
            results[how].append(result)
            current = target
            say(f"  activation ({how}) -> {target}: {result['seconds']:.2f} s")
            time.sleep(1)
    return results
