"""``/metrics``: HTTP metrics by endpoint, plus the service's own.

Under Gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set before Python starts) every
worker writes its samples to files there and ``/metrics`` sums them over
all workers, so counters survive rolling reloads. Without it (dev server,
tests) each app gets a registry of its own.
"""
import ipaddress
import os

from flask import request
from flask_smorest import abort
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from ..ops.metrics import ServiceMetrics


def init_app(app):
    """Expose ``/metrics`` and attach ``ServiceMetrics`` to the app."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        exporter = GunicornInternalPrometheusMetrics(app, group_by="endpoint")
        registry = None  # samples go to the multiprocess files
    else:
        registry = CollectorRegistry()
        exporter = PrometheusMetrics(app, group_by="endpoint", registry=registry)
    service = ServiceMetrics(registry)
    app.extensions["housing_metrics"] = service
    app.extensions["housing_exporter"] = exporter
    networks = [ipaddress.ip_network(n.strip(), strict=False)
                for n in str(app.config["METRICS_ALLOWED_NETWORKS"]).split(",")
                if n.strip()]
    if networks:
        @app.before_request
        def restrict_metrics():
            if request.path == "/metrics" and not any(
                ipaddress.ip_address(request.remote_addr) in n for n in networks
            ):
                abort(403, message="/metrics is not open to this address.")
    return service
