"""Swagger UI and ReDoc for /docs and /redoc, from an installed package.

``drf-spectacular-sidecar`` ships self-contained, pinned builds of both
(its version is pinned in ``setup.cfg``); they are served from here, so the
docs render offline, behind a strict proxy or in an air-gapped cluster.
Only the files are used: the package is never imported.
"""
from importlib.util import find_spec
from pathlib import Path

from flask import Blueprint

#: Where the pages load their assets (``OPENAPI_SWAGGER_UI_URL`` and
#: ``OPENAPI_REDOC_URL`` point into it).
URL_PATH = "/docs/assets"


def asset_folder() -> Path:
    """The folder of the package's static builds."""
    spec = find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("drf-spectacular-sidecar is not installed: "
                           "pip install -e . installs it")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "static" / "drf_spectacular_sidecar"


def init_app(app) -> None:
    """Serve the assets under :data:`URL_PATH`."""
    app.register_blueprint(Blueprint(
        "docs_assets", __name__, static_folder=asset_folder(),
        static_url_path=URL_PATH))
