"""The service's own Prometheus metrics: predictions, reloads, rejections, inputs.

Registered in the registry they are given, or, under Gunicorn, in the
multiprocess files that ``/metrics`` sums over all workers.
"""
import collections

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

PRICE_BUCKETS = (100e3, 200e3, 300e3, 400e3, 500e3, 650e3, 800e3, 1e6, 1.5e6,
                 2e6, 3e6, 5e6)
SQFT_BUCKETS = (500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 7500, 10000)
GRADE_BUCKETS = tuple(range(1, 14))
ROW_BUCKETS = (1, 10, 100, 1000, 5000, 10000)


class ServiceMetrics:
    """The service's own metrics, registered once per app."""

    def __init__(self, registry):
        def make(cls, name, doc, labels=(), **kwargs):
            return cls(name, doc, labels, registry=registry, **kwargs)

        self.predictions = make(Counter, "housing_predictions",
                                "Homes priced, by model version and endpoint.",
                                ("model_version", "endpoint"))
        self.batch_rows = make(Histogram, "housing_batch_rows",
                               "Homes per batch request.", buckets=ROW_BUCKETS)
        # One series per live worker's loaded version; dead workers drop out.
        self.model_info = make(Gauge, "housing_model_info",
                               "The model version loaded (1).", ("version", "name"),
                               multiprocess_mode="livemax")
        self.reloads = make(Counter, "housing_model_reloads",
                            "Model reloads, by result.", ("result",))
        self.validation_failures = make(Counter, "housing_validation_failures",
                                        "Rejected inputs, by field.", ("field",))
        self.price = make(Histogram, "housing_predicted_price_dollars",
                          "Predicted prices.", buckets=PRICE_BUCKETS)
        self.sqft_living = make(Histogram, "housing_input_sqft_living",
                                "sqft_living of priced homes.", buckets=SQFT_BUCKETS)
        self.grade = make(Histogram, "housing_input_grade",
                          "grade of priced homes.", buckets=GRADE_BUCKETS)
        self.zipcodes = make(Counter, "housing_input_zipcode",
                             "Priced homes by zipcode.", ("zipcode",))
        # By key name: keys are few, so the series are too.
        self.key_requests = make(Counter, "housing_api_key_requests",
                                 "Requests made with an API key, by key name "
                                 "and endpoint.", ("key", "endpoint"))
        self.key_estimates = make(Counter, "housing_api_key_estimates",
                                  "Homes priced for an API key, by key name.",
                                  ("key",))
        # Set by one process (monitoring.gauges), every few seconds at most;
        # the newest value of a live process is the one scraped.
        live = {"multiprocess_mode": "livemostrecent"}
        self.live_sales = make(Gauge, "housing_live_sales",
                               "Reported sales of the version's estimates.",
                               ("version",), **live)
        self.live_mape = make(Gauge, "housing_live_mape",
                              "Mean absolute % error on reported sales.",
                              ("version",), **live)
        self.live_coverage = make(Gauge, "housing_live_interval_coverage",
                                  "Share of reported sales inside their interval.",
                                  ("version",), **live)
        self.holdout_mape = make(Gauge, "housing_holdout_mape",
                                 "Mean absolute % error on the holdout split.",
                                 ("version",), **live)
        self.drift_psi = make(Gauge, "housing_drift_psi",
                              "Population stability index of recent estimates "
                              "against training.", ("version", "feature"), **live)
        self.rollout_auto_aborts = make(
            Counter, "housing_rollout_auto_aborts",
            "Canaries ended automatically for a worse live MAPE "
            "(ROLLOUT_AUTO_ABORT).")

    def observe_predictions(self, endpoint, version, columns, prices):
        """Record one request's priced homes."""
        self.predictions.labels(version, endpoint).inc(len(prices))
        if endpoint.endswith("Batch"):
            self.batch_rows.observe(len(prices))
        observe_many(self.price, prices)
        for name, histogram in (("sqft_living", self.sqft_living),
                                ("grade", self.grade)):
            if name in columns:
                observe_many(histogram, columns[name])
        for zipcode, count in collections.Counter(columns["zipcode"]).items():
            self.zipcodes.labels(zipcode).inc(count)

    def observe_key_use(self, name, endpoint, estimates):
        self.key_requests.labels(name, endpoint or "").inc()
        if estimates:
            self.key_estimates.labels(name).inc(estimates)

    def observe_rejection(self, errors):
        """Count each field named in a 422's ``errors``."""
        for field in _field_names(errors):
            self.validation_failures.labels(field).inc()

    def set_model(self, predictor):
        """Mark ``predictor``'s version as the loaded one (1), others 0."""
        # Zero, not clear(): under Gunicorn a cleared child would linger in
        # this process's sample file with its old value.
        for labels in list(self.model_info._metrics):
            self.model_info.labels(*labels).set(0)
        if predictor is not None:
            self.model_info.labels(predictor.version, predictor.name).set(1)


def observe_many(histogram, values) -> None:
    """``histogram.observe`` for every value, in one pass per bucket.

    A 10,000-home batch would otherwise cost 10,000 Python calls (and file
    writes under Gunicorn) per histogram. Uses the same per-bucket values
    that ``Histogram.observe`` increments.
    """
    if len(values) == 1:  # one home: the array work would cost more
        histogram.observe(float(values[0]))
        return
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"),
                         minlength=len(bounds))
    histogram._sum.inc(float(values.sum()))
    for bucket, count in zip(histogram._buckets, counts.tolist()):
        if count:
            bucket.inc(count)


def _field_names(errors):
    """Yield field names in webargs/marshmallow error dicts, rows flattened."""
    if not isinstance(errors, dict):
        return
    for key, value in errors.items():
        if key in ("json", "csv", "files", "instances") or str(key).isdigit():
            yield from _field_names(value)
        else:
            yield str(key)
