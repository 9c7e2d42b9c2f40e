"""The deployment files agree with the app they deploy.

Docker and Kubernetes do not run here: the manifests are parsed and checked
against the app (paths, ports, config keys, metric names), and the
entrypoint and the seed script are run for real.
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.exceptions import MethodNotAllowed, NotFound

from housing_api import config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "housing-api.json"
DATA_DIR = ROOT / "data"
BIN = Path(sys.executable).parent

#: Variables the code reads from the environment itself, not via app.config.
DIRECT_ENV = {"HOUSING_INSTANCE_PATH", "HOUSING_MASTER_PID"}
YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])


def read_yaml(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects(kind=None):
    objects = [doc for path in sorted(K8S.glob("*.yaml"))
               if path.name != "kustomization.yaml" for doc in read_yaml(path)]
    return [o for o in objects if kind is None or o["kind"] == kind]


def k8s_object(kind, name):
    (found,) = [o for o in k8s_objects(kind) if o["metadata"]["name"] == name]
    return found


def api_pod():
    return k8s_object("Deployment", "housing-api")["spec"]["template"]


def api_containers():
    spec = api_pod()["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def compose():
    return read_yaml(DEPLOY / "docker-compose.yml")[0]


def dockerfile():
    """(INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def dockerfile_env():
    env = {}
    for instruction, args in dockerfile():
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def final_stage():
    """The instructions after the last FROM."""
    instructions = dockerfile()
    last = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last:]


def dockerignore_excludes(path):
    """Whether .dockerignore keeps ``path`` out of the build context."""
    excluded = False
    parts = Path(path).parts
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern = line.lstrip("!")
        if any(fnmatch("/".join(parts[:i]), pattern)
               for i in range(1, len(parts) + 1)):
            excluded = not line.startswith("!")
    return excluded


def all_env():
    """Every environment variable set by the image, compose and Kubernetes."""
    names = set(dockerfile_env())
    names |= set(compose()["services"]["housing-api"]["environment"])
    for configmap in k8s_objects("ConfigMap"):
        names |= set(configmap["data"])
    for secret in k8s_objects("Secret"):
        names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for container in api_containers():
        names |= {item["name"] for item in container.get("env", [])}
    return names


def port_of(bind):
    return int(bind.rsplit(":", 1)[1])


def gunicorn_port():
    """The port in gunicorn.conf.py (read, not imported: it has side effects)."""
    match = re.search(r'^bind = "([^"]+)"', (ROOT / "gunicorn.conf.py").read_text(),
                      re.MULTILINE)
    return port_of(match.group(1))


def expressions():
    """Every PromQL expression of the dashboard and of the alerting rules."""
    dashboard = json.loads(DASHBOARD.read_text())
    rules = read_yaml(DEPLOY / "alerts.yml")[0]
    return [*(t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])),
            *(rule["expr"] for group in rules["groups"] for rule in group["rules"])]


@pytest.fixture
def url_adapter(app):
    return app.url_map.bind("localhost")


def serves(url_adapter, path):
    try:
        url_adapter.match(path, method="GET")
    except MethodNotAllowed:
        return True
    except NotFound:
        return False
    return True


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path):
    docs = read_yaml(path)
    assert docs and all(isinstance(doc, dict) for doc in docs)


def test_dashboard_parses():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert dashboard["uid"] and len(ids) == len(set(ids))


def test_kustomization_lists_every_manifest_but_the_example_secret():
    listed = set(read_yaml(K8S / "kustomization.yaml")[0]["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    (secret,) = k8s_objects("Secret")
    assert all("PLACEHOLDER" in value for value in secret["stringData"].values())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_builds_into_one_namespace():
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True,
                           text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    objects = list(yaml.safe_load_all(built.stdout))
    assert {o["metadata"].get("namespace") for o in objects
            if o["kind"] != "Namespace"} == {"housing"}


def test_probe_paths_exist_in_the_app(url_adapter):
    paths = {probe["httpGet"]["path"] for container in api_containers()
             for kind in ("startupProbe", "readinessProbe", "livenessProbe")
             if (probe := container.get(kind))}
    assert paths == {"/health/live", "/health/ready"}
    assert all(serves(url_adapter, path) for path in paths)


def test_readiness_waits_for_the_model():
    (api,) = api_pod()["spec"]["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_healthcheck_path_exists_in_the_app(url_adapter):
    (check,) = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    url = re.search(r"http://[^'\"]+", check).group(0)
    assert port_of(url.split("/")[2]) == gunicorn_port()
    assert serves(url_adapter, "/" + url.split("/", 3)[3])


def test_ingress_paths_exist_in_the_app(url_adapter):
    paths = [path["path"] for ingress in k8s_objects("Ingress")
             for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    rules = [rule.rule for rule in url_adapter.map.iter_rules()]
    assert paths and all(any(rule.startswith(path) for rule in rules)
                         for path in paths)
    assert not any(path.startswith(("/admin", "/metrics")) for path in paths)


def test_metrics_path_exists_in_the_app(url_adapter):
    scrape = read_yaml(DEPLOY / "prometheus.yml")[0]["scrape_configs"]
    annotations = api_pod()["metadata"]["annotations"]
    paths = {job["metrics_path"] for job in scrape if job["job_name"] == "housing-api"}
    assert paths == {annotations["prometheus.io/path"]}
    assert all(serves(url_adapter, path) for path in paths)


def test_every_port_is_the_app_port():
    port = gunicorn_port()
    (api,) = api_pod()["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert named == {"http": port}
    probes = [api[kind]["httpGet"]["port"]
              for kind in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert all(named.get(p, p) == port for p in probes)
    service = k8s_object("Service", "housing-api")
    assert [named.get(p["targetPort"]) for p in service["spec"]["ports"]] == [port]
    assert int(api_pod()["metadata"]["annotations"]["prometheus.io/port"]) == port
    assert dockerfile_env()["GUNICORN_CMD_ARGS"] == f"--bind 0.0.0.0:{port}"
    [published] = compose()["services"]["housing-api"]["ports"]
    assert port_of(published) == port
    (job,) = [j for j in read_yaml(DEPLOY / "prometheus.yml")[0]["scrape_configs"]
              if j["job_name"] == "housing-api"]
    assert {sd["port"] for sd in job["dns_sd_configs"]} == {port}


def test_housing_env_vars_are_config_keys():
    keys = {f"HOUSING_{key}" for key in dir(config) if key.isupper()} | DIRECT_ENV
    housing = {name for name in all_env() if name.startswith("HOUSING_")}
    assert housing and housing <= keys, housing - keys


def test_the_image_points_the_app_at_its_files():
    env = dockerfile_env()
    assert env["HOUSING_MODEL_DIR"] == "/app/model"
    assert env["HOUSING_INSTANCE_PATH"] == "/app/instance"
    assert env["OMP_NUM_THREADS"] == "1"


def test_metrics_folder_is_left_to_the_entrypoint():
    # Set for Gunicorn alone: a CLI run by `kubectl exec` would otherwise
    # leave a dead process's samples (a stale model version) in /metrics.
    assert "PROMETHEUS_MULTIPROC_DIR" not in all_env()


def test_dockerfile_is_multi_stage_and_runs_as_non_root():
    froms = [args for name, args in dockerfile() if name == "FROM"]
    assert len(froms) >= 2 and froms[0].endswith(" AS builder")
    (user,) = [args for name, args in final_stage() if name == "USER"]
    uid, gid = map(int, user.split(":"))
    context = api_pod()["spec"]["securityContext"]
    assert uid != 0 and (uid, gid) == (context["runAsUser"], context["runAsGroup"])


def test_dockerfile_entrypoint_is_the_start_script():
    (entrypoint,) = [args for name, args in final_stage() if name == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["/app/deploy/entrypoint.sh"]
    assert os.access(DEPLOY / "entrypoint.sh", os.X_OK)


def test_build_context_holds_what_the_dockerfile_copies():
    sources = [src for name, args in dockerfile() if name == "COPY"
               and not args.startswith("--from") for src in args.split()[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source), source


@pytest.mark.parametrize("path", [".venv", "model", "instance/config.py", ".git",
                                  "housing_api/__pycache__", "tests"])
def test_build_context_leaves_out_local_state(path):
    assert dockerignore_excludes(path)


def test_pods_run_non_root_on_a_read_only_root():
    pod = api_pod()["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in api_containers():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert "emptyDir" in mounts["/tmp"]
        claim = mounts[dockerfile_env()["HOUSING_MODEL_DIR"]]["persistentVolumeClaim"]
        pvc = k8s_object("PersistentVolumeClaim", claim["claimName"])
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_rolling_update_never_drops_capacity():
    spec = k8s_object("Deployment", "housing-api")["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # The HPA owns the count; a replicas field would reset it on every apply.
    assert "replicas" not in spec


def test_config_and_secret_references_resolve():
    names = {(o["kind"], o["metadata"]["name"]) for o in k8s_objects()}
    for container in api_containers():
        for source in container["envFrom"]:
            if "configMapRef" in source:
                assert ("ConfigMap", source["configMapRef"]["name"]) in names
            else:
                assert ("Secret", source["secretRef"]["name"]) in names


def test_selectors_find_the_api_pods():
    labels = api_pod()["metadata"]["labels"]
    deployment = k8s_object("Deployment", "housing-api")
    selectors = [deployment["spec"]["selector"]["matchLabels"],
                 k8s_object("Service", "housing-api")["spec"]["selector"],
                 k8s_object("PodDisruptionBudget", "housing-api")["spec"]["selector"]
                 ["matchLabels"]]
    assert all(selector.items() <= labels.items() for selector in selectors)
    target = k8s_object("HorizontalPodAutoscaler", "housing-api")["spec"]
    assert target["scaleTargetRef"]["name"] == "housing-api"
    assert target["minReplicas"] >= 2


def test_rate_limits_point_at_the_redis_service():
    (configmap,) = k8s_objects("ConfigMap")
    host, port = re.match(r"redis://([^:/]+):(\d+)/",
                          configmap["data"]["HOUSING_RATELIMIT_STORAGE_URI"]).groups()
    service = k8s_object("Service", host)
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    uri = compose()["services"]["housing-api"]["environment"][
        "HOUSING_RATELIMIT_STORAGE_URI"]
    assert urllib.parse.urlsplit(uri).hostname in compose()["services"]


def test_grafana_uses_the_provisioned_prometheus():
    (source,) = read_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml"
                          )[0]["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"]
            for t in p.get("targets", [])}
    assert uids == {source["uid"]}
    (provider,) = read_yaml(DEPLOY / "grafana/provisioning/dashboards/housing-api.yml"
                            )[0]["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


def family(name):
    return re.sub(r"_(bucket|count|sum|total)$", "", name)


def test_queries_use_only_exported_metrics(client):
    client.get("/health/live")
    exported = {family(f.name) for f in
                text_string_to_metric_families(client.get("/metrics").text)}
    queried = {family(name) for expr in expressions()
               for name in re.findall(r"\b(?:flask|housing)_[a-z_]+", expr)}
    assert queried and queried <= exported, queried - exported


def test_endpoint_matchers_match_app_endpoints(url_adapter):
    endpoints = {rule.endpoint for rule in url_adapter.map.iter_rules()}
    matchers = [value.replace("\\\\", "\\") for expr in expressions()
                for value in re.findall(r'endpoint=~?"([^"]+)"', expr)]
    assert matchers
    for matcher in matchers:
        assert any(re.fullmatch(matcher, e) for e in endpoints), matcher


def test_queries_select_the_scrape_job():
    (job,) = [j["job_name"] for j in read_yaml(DEPLOY / "prometheus.yml")[0][
        "scrape_configs"] if j["job_name"] != "prometheus"]
    selected = {m for expr in expressions() for m in re.findall(r'job="([^"]+)"', expr)}
    assert selected == {job}


def run_entrypoint(env, *args, **kwargs):
    return subprocess.Popen([str(DEPLOY / "entrypoint.sh"), *args], cwd=ROOT,
                            env=env, **kwargs)


@pytest.fixture
def entrypoint_env(model_dir, tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1234.db").write_bytes(b"left by a previous run")
    return dict(
        os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        # Gunicorn's control socket goes under ~: keep it private to the test.
        HOME=str(tmp_path), HOUSING_MODEL_DIR=str(model_dir),
        HOUSING_DATA_DIR=str(DATA_DIR), PROMETHEUS_MULTIPROC_DIR=str(metrics),
        WEB_CONCURRENCY="2",
    )


def wait_ready(process, url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{url} not ready within {timeout} s")


def test_entrypoint_serves_then_stops_on_sigterm(entrypoint_env, model_dir, tmp_path):
    port = free_port()
    env = dict(entrypoint_env, GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}")
    metrics = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = run_entrypoint(env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(process, f"http://127.0.0.1:{port}/health/ready")
        assert ready["model"]["version"] == (model_dir / "CURRENT").read_text().strip()
        assert metrics.is_dir() and not (metrics / "counter_1234.db").exists()
        # The pid started is Gunicorn's master: the script exec'd it.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_entrypoint_refuses_to_wipe_root(entrypoint_env, tmp_path):
    # A stand-in rm: were the guard gone, nothing would be deleted anyway.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "rm").write_text(f"#!/bin/sh\ntouch {tmp_path}/rm-called\nexit 99\n")
    (fake_bin / "rm").chmod(0o755)
    env = dict(entrypoint_env, PROMETHEUS_MULTIPROC_DIR="/",
               PATH=f"{fake_bin}{os.pathsep}{entrypoint_env['PATH']}")
    process = run_entrypoint(env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert b"refusing" in err
    assert not (tmp_path / "rm-called").exists()


def fake_trainer(bin_dir):
    """A stand-in `housing-api` that records its calls and stores a version.

    The real first training (both models) runs in tests/smoke.sh, through
    this same entrypoint; here only the entrypoint's own decisions matter.
    """
    bin_dir.mkdir()
    script = bin_dir / "housing-api"
    script.write_text(
        '#!/bin/sh\necho "$@" >> "$CALLS"\n'
        'echo "metrics: ${PROMETHEUS_MULTIPROC_DIR:-unset}" >> "$CALLS"\n'
        'mkdir -p "$HOUSING_MODEL_DIR/versions/v1"\n')
    script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("seeded", [False, True])
def test_entrypoint_migrates_and_trains_only_into_an_empty_store(
        entrypoint_env, tmp_path, seeded):
    store = tmp_path / "store"
    if seeded:
        (store / "versions" / "v0").mkdir(parents=True)
    bin_dir = fake_trainer(tmp_path / "bin")
    # As in the image: no PROMETHEUS_MULTIPROC_DIR, the entrypoint picks one.
    calls = tmp_path / "calls"
    env = dict(entrypoint_env, HOUSING_MODEL_DIR=str(store), TMPDIR=str(tmp_path),
               PATH=f"{bin_dir}{os.pathsep}{entrypoint_env['PATH']}",
               CALLS=str(calls))
    del env["PROMETHEUS_MULTIPROC_DIR"]
    process = run_entrypoint(env, "--check-config", stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out.decode()
    # The database is migrated on every start; training happens only into
    # an empty store, with every default. Both outside the workers' metrics.
    migrated = "db upgrade\nmetrics: unset\n"
    if seeded:
        assert calls.read_text() == migrated
    else:
        assert calls.read_text() == "train\nmetrics: unset\n" + migrated
    assert (tmp_path / "housing-api-metrics").is_dir()


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock not installed")
def test_seed_model_trains_once_for_pods_starting_together(tmp_path):
    (seed,) = [c for c in api_pod()["spec"]["initContainers"]
               if c["name"] == "seed-model"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # A slow stand-in for `housing-api train` that counts its calls.
    (fake_bin / "housing-api").write_text(
        '#!/bin/sh\nsleep 0.5\necho train >> "$HOUSING_MODEL_DIR/../calls"\n'
        'mkdir -p "$HOUSING_MODEL_DIR/versions/v1"\n')
    (fake_bin / "housing-api").chmod(0o755)
    store = tmp_path / "model"
    store.mkdir()
    env = dict(os.environ, HOUSING_MODEL_DIR=str(store),
               PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    pods = [subprocess.Popen(seed["command"] + seed["args"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(3)]
    outputs = [pod.communicate(timeout=30)[0].decode() for pod in pods]
    assert [pod.returncode for pod in pods] == [0, 0, 0]
    assert (tmp_path / "calls").read_text() == "train\n"
    assert sum("already holds a version" in out for out in outputs) == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_object_store_variant_shares_no_volume():
    built = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "k8s-object-store")],
        capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    objects = list(yaml.safe_load_all(built.stdout))
    assert {o["metadata"].get("namespace") for o in objects
            if o["kind"] != "Namespace"} == {"housing"}
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap"]
    settings = configmap["data"]
    keys = {f"HOUSING_{key}" for key in dir(config) if key.isupper()}
    assert {k for k in settings if k.startswith("HOUSING_")} <= keys
    # The app takes the variant's settings as they are.
    from housing_api.settings import configured_app

    app = configured_app({k[len("HOUSING_"):]: v for k, v in settings.items()
                          if k.startswith("HOUSING_")})
    assert app.config["MODEL_STORE"].startswith("s3://")
    assert app.config["JOBS_DIR"].startswith("s3://")
    pods = [o["spec"]["template"]["spec"] for o in objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] != "redis"]
    assert len(pods) == 2
    for pod in pods:
        assert not any("persistentVolumeClaim" in v for v in pod["volumes"])
        assert not pod.get("initContainers")  # no pod trains on its own
        assert pod["serviceAccountName"] == "housing-api"
        for container in pod["containers"]:
            refs = {e.get("configMapRef", e.get("secretRef", {})).get("name")
                    for e in container["envFrom"]}
            assert refs == {"housing-api-config", "housing-api-secrets"}
