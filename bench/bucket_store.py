"""The model store in a bucket: what it adds to a start and an activation.

An S3 API over HTTP on loopback (moto's server, in this process), holding
both versions (``housing-api models copy`` from the run's folder store).
Each server gets an empty cache folder, as a new pod does (with the run's
compiled trees beside it, so that the rows differ from the folder store's
by the bucket alone): a start downloads and checks the active version
first; an activation to a version the server has not served yet downloads
it too (``cold``), one it has served comes from its cache (``cached``).
"""
import logging
import os
import secrets
import time
import uuid
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from common import BOOSTED, MODELS, REFERENCE, say
from processes import free_port, gunicorn
from start import admin_activation, converge
from stores import copy_compiled, store_copy

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}


def bench_bucket(args, ctx) -> dict:
    """Starts to ready, and activations, with the store in a bucket."""
    from housing_api.store import ModelStore, open_store
    from housing_api.store.copying import copy_versions

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        bucket = f"models-{uuid.uuid4().hex[:8]}"
        boto3.session.Session().client("s3").create_bucket(Bucket=bucket)
        url = f"s3://{bucket}/housing-api/models"
        versions = ctx["versions"]
        folder = store_copy(ctx["source"], versions, BOOSTED, ctx["work"])
        store = open_store(url, ctx["work"] / "bench-publisher")
        copy_versions(ModelStore(folder), store)
        server_env = {**env, "HOUSING_MODEL_STORE": url}

        def cache() -> Path:
            root = ctx["work"] / f"cache-{uuid.uuid4().hex[:8]}"
            copy_compiled(ctx["source"], root, versions.values())
            return root

        ready = {}
        for model in MODELS:
            store.activate(versions[model])
            ready[model] = []
            for _ in range(args.starts):
                with gunicorn("service, store in a bucket", cache(),
                              workers=args.workers, env=server_env,
                              expect_version=versions[model]) as server:
                    ready[model].append(server.ready_s)
                say(f"  ready from a bucket, {model}: {ready[model][-1]:.2f} s")
        activation = _activations(args, store, versions, cache(), server_env)
        return {"ready": ready, "activation": activation}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        moto.stop()


def _activations(args, store, versions, cache_root: Path, env: dict) -> list:
    """Alternating activations on one server: admin API, then the store
    path; the first to each version downloads it."""
    token = secrets.token_hex(16)
    store.activate(versions[BOOSTED])
    served, results, current = {BOOSTED}, [], BOOSTED
    with gunicorn("service, store in a bucket", cache_root, workers=args.workers,
                  env={**env, "HOUSING_ADMIN_TOKENS": token},
                  expect_version=versions[BOOSTED]) as server:
        plan = ["admin"] * args.activations + ["store"] * args.cli_activations
        for how in plan:
            target = REFERENCE if current == BOOSTED else BOOSTED
            version = versions[target]
            if how == "admin":
                action = admin_activation(server, token, version)
            else:
                def action(version=version):
                    store.activate(version)
            result = converge(server, version, action)
            result.update(how=how, to=target,
                          cache="cached" if target in served else "cold")
            served.add(target)
            results.append(result)
            current = target
            say(f"  activation from a bucket ({how}, {result['cache']}) -> "
                f"{target}: {result['seconds']:.2f} s")
            time.sleep(1)
    return results
