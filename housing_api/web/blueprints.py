"""The API: flask-smorest bound to the app, with every blueprint registered."""
from ..extensions import api
from . import (  # noqa: F401
    admin, admin_keys, admin_rollout, docs_assets, health, jobs, keys,
    model_info, monitoring, predict,
)
# (admin_keys and admin_rollout add their routes to admin.blp when imported,
# jobs and model_info their own to predict.blp)
from ..store import StoreUnavailableError
from .api import store_unreachable
from .schemas import openapi_property


def init_app(app) -> None:
    """Bind ``api`` to ``app`` and register every blueprint."""
    api.init_app(app)
    app.register_error_handler(StoreUnavailableError, store_unreachable)
    docs_assets.init_app(app)
    api.ma_plugin.converter.add_attribute_function(openapi_property)
    api.register_blueprint(predict.blp)  # with jobs' and model_info's
    api.register_blueprint(health.blp)
    api.register_blueprint(admin.blp)  # with admin_keys' and admin_rollout's
    api.register_blueprint(monitoring.blp)
    for name, scheme in keys.SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
