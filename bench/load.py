"""wrk runs, the service variants, and the interleaved /v1/predict rounds."""
import json
import os
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from common import LUA, say
from processes import Server, call, gunicorn, worker_cpu_seconds
from stores import start_shadow, store_copy

PREDICT = "/v1/predict"
#: The label of the row with the limiter, the key check and the prediction
#: log all off: what the three cost together, against "API key required".
WITHOUT_PARTS = "service, limits, keys and prediction log off"


def wrk(args, url: str, path: str, bodies: Path, connections: int,
        duration: int, header: str | None = None) -> dict:
    """One wrk run with post_rows.lua; its JSON line, plus the load average."""
    threads = max(1, min(args.wrk_threads, connections))
    cmd = [args.wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s",
           "--timeout", "10s", "-s", str(LUA), url, "--", path, str(bodies),
           *([header] if header else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=duration + 120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n"
                           f"{proc.stderr}")
    result = json.loads(lines[-1])
    result["load1"] = os.getloadavg()[0]
    return result


def check_predict(server: Server, row: dict, model: str | None,
                  headers: dict | None = None, path: str = PREDICT) -> None:
    status, body = call(server.url, "POST", path, row, headers)
    if status != 200 or (model and body["model"]["name"] != model):
        raise RuntimeError(f"{server.label}: POST {path} -> {status} {body}")
    if "explain=true" in path and "explanation" not in body:
        raise RuntimeError(f"{server.label}: POST {path} explained nothing")


def short(result: dict) -> str:
    errors = f", {result['errors']} ERRORS" if result["errors"] else ""
    return (f"{result['rps']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms{errors}")


#: The boosted model through LightGBM's C API, not its compiled trees.
COMPILED_OFF = "service, compiled trees off"
#: A shadow rollout of a copy of the active version: a second predict (and a
#: second logged estimate) per request.
SHADOW = "service, shadow rollout of a copy"


class Variant(NamedTuple):
    label: str
    env: dict
    production: bool
    #: Keys required, and every request sends a known one.
    api_key: bool = False
    #: What wrk posts to.
    path: str = PREDICT
    #: Another source tree of the project to serve (``--baseline-ref``).
    root: str | None = None
    #: A shadow of a copy of the active version runs beside it.
    shadow: bool = False


def reachable(url: str) -> bool:
    """Whether something listens at the host and port of ``url``."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 6379), 1).close()
    except OSError:
        return False
    return True


def service_variants(args, baseline: Path | None = None
                     ) -> tuple[list[Variant], bool | None]:
    """The service as deployed, plus the variants measured alongside it;
    ``baseline`` is the source tree of ``--baseline-ref``."""
    from housing_api import config

    variants = []
    lean_default = None
    if hasattr(config, "LEAN_INFERENCE"):
        lean_default = bool(config.LEAN_INFERENCE)
        for lean in (lean_default, not lean_default):
            flag = "true" if lean else "false"
            variants.append(Variant(
                f"service, lean={flag}" + (" (default)" if lean == lean_default
                                           else ""),
                {"HOUSING_LEAN_INFERENCE": flag}, lean == lean_default))
    else:
        variants.append(Variant("service", {}, True))
    if hasattr(config, "COMPILED_TREES"):
        variants.append(Variant(COMPILED_OFF,
                                {**variants[0].env, "HOUSING_COMPILED_TREES": "false"},
                                False))
    variants.append(Variant("service, rate limits off",
                            {**variants[0].env, "HOUSING_RATELIMIT_ENABLED": "false"},
                            False))
    if args.redis and not reachable(args.redis):
        say(f"bench: no Redis at {args.redis}; no row for limits in Redis")
    elif args.redis:
        variants.append(Variant("service, rate limits in Redis",
                                {**variants[0].env,
                                 "HOUSING_RATELIMIT_STORAGE_URI": args.redis},
                                False))
    if args.log_variant:
        variants.append(Variant("service, log level WARNING",
                                {**variants[0].env, "HOUSING_LOG_LEVEL": "WARNING"},
                                False))
    variants.append(Variant("service, API key required (X-API-Key)",
                            {**variants[0].env, "HOUSING_REQUIRE_API_KEY": "true"},
                            False, api_key=True))
    variants.append(Variant(WITHOUT_PARTS,
                            {**variants[0].env, "HOUSING_RATELIMIT_ENABLED": "false",
                             "HOUSING_PREDICTION_LOG": "false"}, False))
    variants.append(Variant(SHADOW, variants[0].env, False, shadow=True))
    variants.append(Variant("service, every request ?explain=true",
                            variants[0].env, False,
                            path=f"{PREDICT}?explain=true"))
    if baseline is not None:
        variants.append(Variant(f"service at {args.baseline_ref} (baseline)",
                                variants[0].env, False, root=str(baseline)))
    return variants, lean_default


def api_key_for(work: Path) -> tuple[dict, str]:
    """A database with one API key: the server's environment, and the header."""
    import re
    import sys
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="keys-", dir=work))
    env = {**os.environ, "HOUSING_DATABASE_URL": f"sqlite:///{folder / 'housing.db'}"}
    cli = str(Path(sys.executable).with_name("housing-api"))
    subprocess.run([cli, "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    out = subprocess.run([cli, "keys", "create", "--name", "bench", "--scope",
                          "predict"], env=env, check=True, capture_output=True,
                         text=True).stdout
    (secret,) = re.findall(r"^key: (\S+)$", out, re.M)
    return {"HOUSING_DATABASE_URL": env["HOUSING_DATABASE_URL"]}, \
        f"X-API-Key: {secret}"


def measured_wrk(args, side: Server, path: str, bodies: Path, connections: int,
                 duration: int, header: str | None = None) -> dict:
    """One wrk run, and the CPU the server's workers spent per request."""
    before = worker_cpu_seconds(side)
    result = wrk(args, side.url, path, bodies, connections, duration, header)
    spent = worker_cpu_seconds(side) - before
    result["cpu_ms"] = spent / result["requests"] * 1000 if result["requests"] else None
    return result


def bench_predict(args, ctx, model: str, ceiling: Server,
                  hello: Server | None = None) -> dict:
    """Interleaved rounds on /v1/predict: ceiling, the bare hello-JSON app,
    then each service variant."""
    results = {}
    with ExitStack() as stack:
        sides = [ceiling, *([hello] if hello else [])]
        headers = {}
        for variant in ctx["variants"]:
            store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
            if variant.shadow:
                start_shadow(store, ctx["versions"][model])
            env = variant.env
            if variant.api_key:
                key_env, headers[variant.label] = api_key_for(ctx["work"])
                env = {**env, **key_env}
            sides.append(stack.enter_context(gunicorn(
                variant.label, store, workers=args.workers, env=env,
                expect_version=ctx["versions"][model],
                root=variant.root and Path(variant.root))))
        paths = {v.label: v.path for v in ctx["variants"]}
        for side in sides:
            header = headers.get(side.label)
            path = paths.get(side.label, PREDICT)
            check_predict(side, ctx["rows"][0],
                          None if side in (ceiling, hello) else model,
                          dict([header.split(": ", 1)]) if header else None,
                          path)
            wrk(args, side.url, path, ctx["single"], 16, args.warmup, header)
        for c in args.connections:
            rounds = results.setdefault(str(c), [])
            for r in range(args.rounds):
                row = {}
                for side in sides:
                    row[side.label] = measured_wrk(
                        args, side, paths.get(side.label, PREDICT),
                        ctx["single"], c, args.duration, headers.get(side.label))
                    say(f"  predict {model} c={c} round {r + 1}/{args.rounds} "
                        f"{side.label}: {short(row[side.label])}")
                rounds.append(row)
    return results
