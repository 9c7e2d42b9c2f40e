"""The API: flask-smorest bound to the app, with every blueprint registered."""
from ..extensions import api
from . import admin, health, monitoring, predict
from .schemas import openapi_property


def init_app(app) -> None:
    """Bind ``api`` to ``app`` and register every blueprint."""
    api.init_app(app)
    api.ma_plugin.converter.add_attribute_function(openapi_property)
    api.register_blueprint(predict.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(admin.blp)
    api.register_blueprint(monitoring.blp)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer"}
    )
