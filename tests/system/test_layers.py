"""The import contract of setup.cfg (``make lint``) holds, and can fail.

Each broken case copies the package, adds one module that breaks a rule,
and runs ``lint-imports`` on the copy, as ``make lint`` runs it.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LAYERS = "Layers, from the CLI and HTTP down to the artifact formats"
NO_FLASK = "Nothing below web imports Flask"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_the_package_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout
    assert f"{NO_FLASK} KEPT" in result.stdout


@pytest.mark.parametrize("module, source, broken, reported", [
    ("store/uses_flask.py", "from flask import current_app\n", NO_FLASK,
     "housing_api.store.uses_flask -> flask"),
    ("keys/uses_flask.py", "from flask import g\n", NO_FLASK,
     "housing_api.keys.uses_flask -> flask"),
    ("inference/uses_werkzeug.py", "import werkzeug.exceptions\n", NO_FLASK,
     "housing_api.inference.uses_werkzeug -> werkzeug"),
    # Through the package's own Flask code: indirect imports count too.
    ("training/uses_extensions.py", "from .. import extensions\n", NO_FLASK,
     "housing_api.training.uses_extensions -> housing_api.extensions"),
    ("inference/reaches_up.py", "from ..store import ModelStore\n", LAYERS,
     "housing_api.inference.reaches_up -> housing_api.store"),
    ("formats/reaches_web.py", "from ..web import schemas\n", LAYERS,
     "housing_api.formats.reaches_web -> housing_api.web"),
    # serving and training share a layer and stay independent of each other.
    ("serving/uses_training.py", "from ..training import jobs\n", LAYERS,
     "housing_api.serving.uses_training -> housing_api.training"),
    # The scoring jobs sit below the web layer and above what they run.
    ("jobs/uses_web.py", "from ..web import schemas\n", LAYERS,
     "housing_api.jobs.uses_web -> housing_api.web"),
    ("serving/uses_jobs.py", "from ..jobs import queue\n", LAYERS,
     "housing_api.serving.uses_jobs -> housing_api.jobs"),
    ("jobs/uses_flask.py", "from flask import request\n", NO_FLASK,
     "housing_api.jobs.uses_flask -> flask"),
])
def test_a_module_that_breaks_a_rule_fails_the_lint(tmp_path, module, source,
                                                    broken, reported):
    shutil.copytree(ROOT / "housing_api", tmp_path / "housing_api",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    (tmp_path / "housing_api" / module).write_text(source)
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout
    assert reported in result.stdout
