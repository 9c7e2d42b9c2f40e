"""``housing-api smoke``: check a running service with real homes, every answer."""
import csv
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from .context import config, fail


@dataclass
class SmokeReport:
    url: str
    rows: int = 0
    prices: list = field(default_factory=list)
    latencies_ms: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    versions: set = field(default_factory=set)
    #: (prediction_id, price, version) of each single estimate.
    estimates: list = field(default_factory=list)
    sales: str = ""
    #: Answers 429 (retried after their Retry-After), and seconds waited
    #: for the service's limits.
    limited: int = 0
    waited_s: float = 0.0
    #: How it reached the service (``Client``), for the sales check after.
    client: object = field(default=None, repr=False)

    def summary(self) -> str:
        lines = [f"smoke test of {self.url}: {self.rows} rows, "
                 f"{len(self.failures)} failures"]
        if self.prices:
            lines.append("price: min ${:,.2f}  median ${:,.2f}  max ${:,.2f}".format(
                min(self.prices), statistics.median(self.prices), max(self.prices)))
        if len(self.latencies_ms) > 1:
            q = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
            lines.append(f"latency (single): p50 {q[49]:.1f} ms  p90 {q[89]:.1f} ms"
                         f"  p99 {q[98]:.1f} ms  max {max(self.latencies_ms):.1f} ms")
        lines.append(f"model versions seen: {', '.join(sorted(self.versions))}")
        if self.limited or self.waited_s:
            lines.append(f"rate limits: {self.limited} answers 429 retried, "
                         f"{self.waited_s:.1f} s waited in all")
        if self.sales:
            lines.append(self.sales)
        lines.extend(f"FAIL {f}" for f in self.failures[:20])
        return "\n".join(lines)


def read_homes(path: Path) -> list[dict]:
    """Read homes from a CSV with the future-examples header, typed."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v if k == "zipcode" else float(v) if "." in v else int(v)
             for k, v in row.items()} for row in rows]


def _check_estimate(body, where, report) -> float | None:
    price = body.get("prediction")
    interval = body.get("interval") or {}
    if not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
        report.failures.append(f"{where}: bad prediction {price!r}")
        return None
    if not interval.get("lower", math.inf) <= price <= interval.get("upper", -1):
        report.failures.append(f"{where}: prediction outside its interval")
    return price


def wait_until_ready(url: str, seconds: float) -> bool:
    """Poll ``/health/ready`` until it answers 200 or ``seconds`` pass."""
    import requests  # here, not at the top: --help must not wait for it

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url.rstrip('/')}/health/ready", timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


class Client:
    """HTTP to the service at its own pace: an API key if given, a wait
    when a limit's window is used up, and on a 429 a retry after its
    Retry-After (up to ``patience`` seconds in all)."""

    def __init__(self, url: str, report: SmokeReport, api_key: str | None = None,
                 patience: float = 120.0):
        import requests

        self.url, self.report, self.patience = url.rstrip("/"), report, patience
        self.http = requests.Session()
        if api_key:
            self.http.headers["Authorization"] = f"Bearer {api_key}"

    def request(self, method: str, path: str, **kwargs):
        while True:
            response = self.http.request(method, f"{self.url}{path}", **kwargs)
            if response.status_code != 429:
                self._pace(response)
                return response
            retry = response.headers.get("Retry-After", "")
            delay = float(retry) if retry.isdigit() else 1.0
            if self.report.waited_s + delay > self.patience:
                return response
            self.report.limited += 1
            self._sleep(delay)

    def _pace(self, response) -> None:
        # The last request this window allows: wait for the next one
        # rather than be refused.
        if response.headers.get("X-RateLimit-Remaining") == "0":
            reset = response.headers.get("X-RateLimit-Reset", "")
            if reset.isdigit():
                self._sleep(min(max(0.0, int(reset) - time.time()), 60.0))

    def _sleep(self, seconds: float) -> None:
        self.report.waited_s += seconds
        time.sleep(seconds)

    def close(self) -> None:
        self.http.close()


def run_smoke(url: str, path: Path, timeout: float = 10.0,
              api_key: str | None = None) -> SmokeReport:
    """Post each home alone and all of them as one batch; check every answer."""
    import requests

    url = url.rstrip("/")
    homes = read_homes(path)
    report = SmokeReport(url=url, rows=len(homes))
    report.client = client = Client(url, report, api_key)
    singles = []
    for i, home in enumerate(homes):
        start = time.perf_counter()
        try:
            r = client.request("POST", "/v1/predict", json=home, timeout=timeout)
        except requests.RequestException as exc:
            report.failures.append(f"row {i}: {exc}")
            singles.append(None)
            continue
        report.latencies_ms.append((time.perf_counter() - start) * 1000)
        body = r.json() if r.headers.get("Content-Type", "").startswith(
            "application/json") else {}
        if r.status_code != 200:
            report.failures.append(f"row {i}: HTTP {r.status_code} {body}")
            singles.append(None)
            continue
        if not r.headers.get("X-Request-ID"):
            report.failures.append(f"row {i}: no X-Request-ID header")
        report.versions.add(body.get("model", {}).get("version", "?"))
        singles.append(_check_estimate(body, f"row {i}", report))
        if body.get("prediction_id"):
            report.estimates.append((body["prediction_id"], body["prediction"],
                                     body["model"]["version"]))
    r = client.request("POST", "/v1/predict/batch", json={"instances": homes},
                       timeout=timeout * 6)
    if r.status_code != 200:
        report.failures.append(f"batch: HTTP {r.status_code}")
        return report
    batch = r.json()["predictions"]
    if len(batch) != len(homes):
        report.failures.append(f"batch: {len(batch)} answers for {len(homes)}")
    for i, (one, many) in enumerate(zip(singles, batch)):
        price = _check_estimate(many, f"batch row {i}", report)
        if one is not None and price is not None and abs(one - price) > 0.005:
            report.failures.append(f"batch row {i}: {price} != single {one}")
        elif price is not None:
            report.prices.append(price)
    return report


def check_sales(url: str, report: SmokeReport, wait: float = 15.0) -> None:
    """Report each single estimate's own price as its sale; check the figures.

    The estimates reach the log within a flush interval of their answer, so
    a 422 (not logged yet) is retried until ``wait`` runs out. Then the live
    MAE of each version must be the rounding to cents: the whole path, from
    every worker's log to the SQL that measures it.
    """
    client = report.client
    if not report.estimates:
        report.failures.append("sales: no answer carried a prediction_id")
        return
    body = {"sales": [{"prediction_id": pid, "sale_price": price,
                       "sale_date": time.strftime("%Y-%m-%d", time.gmtime())}
                      for pid, price, _ in report.estimates]}
    deadline = time.monotonic() + wait
    while True:
        r = client.request("POST", "/v1/sales", json=body, timeout=30)
        if r.status_code != 422 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if r.status_code != 200:
        report.failures.append(f"sales: HTTP {r.status_code} {r.text[:300]}")
        return
    for version in sorted({v for _, _, v in report.estimates}):
        live = client.request("GET", "/v1/model/performance",
                              params={"version": version},
                              timeout=30).json()["live"][0]
        expected = sum(v == version for _, _, v in report.estimates)
        if live["n"] < expected or not live["mae"] <= 0.005:
            report.failures.append(f"sales: {version} measured {live}")
    report.sales = (f"sales: {len(report.estimates)} reported, "
                    f"{r.json()['recorded']} recorded; live MAE within a cent")


@click.command("smoke")
@click.option("--url", required=True, help="Base URL of a running service.")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Homes to send [default: DATA_DIR/"
                                 "future_unseen_examples.csv].")
@click.option("--wait", type=float, default=0, show_default=True,
              help="Seconds to wait for /health/ready first.")
@click.option("--report-sales", is_flag=True,
              help="Then report each estimate's own price as its sale and "
                   "check the live figures (a test server only: the sales "
                   "are fake).")
@click.option("--api-key", envvar="HOUSING_API_KEY", default=None,
              help="An API key to send (its scopes: predict, and sales for "
                   "--report-sales) [env: HOUSING_API_KEY].")
def smoke_command(url, csv_path, wait, report_sales, api_key):
    """Post every example to a running service and check every answer.

    It keeps to the service's rate limits: it waits when a window is used
    up, and retries a 429 after its Retry-After.
    """
    if wait and not wait_until_ready(url, wait):
        fail(f"{url} was not ready within {wait:g} s")
    path = Path(csv_path or config()["DATA_DIR"] / "future_unseen_examples.csv")
    report = run_smoke(url, path, api_key=api_key)
    if report_sales and not report.failures:
        check_sales(url, report)
    report.client.close()
    click.echo(report.summary())
    if report.failures:
        sys.exit(1)
