"""CPU per request in-process, and where the service's goes (profile_app.py)."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import HERE, ROOT, say
from stores import store_copy


def bench_profile(args, ctx, model: str) -> dict:
    """CPU per request in-process (test client), and the service's profile."""
    store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
    metrics = Path(tempfile.mkdtemp(prefix="metrics-", dir=ctx["work"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOUSING_")}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                "HOUSING_INSTANCE_PATH": str(metrics / "instance"),
                **ctx["variants"][0].env})
    proc = subprocess.run(
        [sys.executable, str(HERE / "profile_app.py"), "--model-dir", str(store),
         "--bodies", str(ctx["single"]), "--batch-body", str(ctx["batch"]),
         "--requests", str(args.profile_requests)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, check=True)
    result = json.loads(proc.stdout)
    say(f"  profile {model}: service {result['service_cpu_ms']:.2f} CPU ms per "
        f"request, ceiling {result['ceiling_cpu_ms']:.2f}")
    return result
