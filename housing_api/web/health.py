"""Liveness and readiness probes."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from .api import Blueprint
from .schemas import HealthSchema

blp = Blueprint("health", __name__, url_prefix="/health",
                description="Probes for load balancers and Kubernetes.")


@blp.route("/live")
class Live(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Answer 200 while the process runs"""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, description="No model version is loaded yet.")
    def get(self):
        """Answer 200 with the model version once one is loaded, else 503"""
        predictor = current_app.extensions["housing"].predictor
        if predictor is None:
            abort(503, message="No model version is loaded.")
        return {"status": "ready",
                "model": {"name": predictor.name, "version": predictor.version}}
