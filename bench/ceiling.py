"""The ceiling: the smallest Flask app that does what every request must.

It parses the same JSON body the service receives and answers a constant
JSON object, no validation, no model. Served by the same ``gunicorn.conf.py``
(same workers, sync worker class, preload, GC freeze, hooks) and started
through ``deploy/entrypoint.sh`` like the service::

    deploy/entrypoint.sh 'bench.ceiling:create_app()'

so no prediction endpoint can beat it on the same machine.
"""
from types import SimpleNamespace

from flask import Flask, jsonify, request

#: Shaped like the service's answer, so that serialising it costs about the
#: same; the values never change.
ANSWER = {
    "currency": "USD",
    "interval": {"level": 0.8, "lower": 276263.06, "upper": 381825.2},
    "model": {"name": "ceiling", "version": "ceiling"},
    "prediction": 327128.83,
    "request_id": "00000000000000000000000000000000",
    "warnings": [],
}


def create_app():
    """Answer every JSON POST with :data:`ANSWER` once its body is parsed."""
    app = Flask(__name__)
    # gunicorn.conf.py's hooks read these from the service's app: no model
    # watcher (when_ready) and somewhere to record the master's pid
    # (post_fork). Nothing else of the service is here.
    app.config["MODEL_WATCH_INTERVAL"] = 0
    app.extensions["housing"] = SimpleNamespace(master_pid=None)

    @app.post("/<path:path>")
    def parse_and_answer(path):
        body = request.get_json()
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object"), 400
        return jsonify(ANSWER)

    @app.get("/health/ready")
    def ready():
        return jsonify(status="ready")

    return app
