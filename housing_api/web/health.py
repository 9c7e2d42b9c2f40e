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
        """Answer 200 with the model version once one is loaded, else 503

        With the rollout this process serves beside it, if any.
        """
        state = current_app.extensions["housing"]
        predictor, rollout = state.predictor, state.rollout
        if predictor is None:
            abort(503, message="No model version is loaded.")
        served = None if rollout is None or state.challenger is None else {
            "id": rollout.id, "mode": rollout.mode,
            "challenger": rollout.challenger, "share": rollout.share}
        return {"status": "ready", "rollout": served,
                "model": {"name": predictor.name, "version": predictor.version}}
