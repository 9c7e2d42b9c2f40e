"""The stricter reference: a hello-JSON Flask app on bare Gunicorn.

Unlike the ceiling (``ceiling.py``), it reads no body and runs under
Gunicorn's own defaults (``gunicorn -w N bench.hello:app``: no
``gunicorn.conf.py``, no entrypoint, no preload, no hooks). It is what
Flask on Gunicorn can do at all on this machine.
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/<path:path>")
def hello(path):
    return jsonify(hello="world")


@app.get("/health/ready")
def ready():
    return jsonify(status="ready")
