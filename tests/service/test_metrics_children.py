"""Requests and verdicts counted through the kept children show what prometheus-client's own
``labels()`` on every call would show."""

from prometheus_client import generate_latest

from service.metrics import Metrics

SERVED = [
    ("/v1/sites/{site}/comments", "POST", 202, 0.004),
    ("/v1/sites/{site}/comments", "POST", 202, 0.03),
    ("/v1/sites/{site}/comments", "POST", 401, 0.001),
    ("/metrics", "GET", 200, 0.2),
    ("/v1/sites/{site}/comments", "POST", 202, 12.0),
    ("unmatched", "GET", 404, 0.0005),
]
VERDICTS = ["approved", "pending", "approved", "spam", "approved"]


def test_kept_children_count_as_labels_on_every_call() -> None:
    kept, looked_up = Metrics(), Metrics()
    for route, method, status, seconds in SERVED * 3:
        kept.observe_request(route, method, status, seconds)
        looked_up.requests.labels(route, method, str(status)).inc()
        looked_up.latency.labels(route, method).observe(seconds)
    for state in VERDICTS * 2:
        kept.observe_verdict(state)
        looked_up.verdicts.labels(state).inc()
    shown = values(kept)
    assert (
        'civility_http_requests_total{method="POST",route="/v1/sites/{site}/comments",'
        'status="202"} 9.0'
    ) in shown
    assert 'civility_verdicts_total{state="approved"} 6.0' in shown
    assert shown == values(looked_up)


def values(metrics: Metrics) -> list[str]:
    """Every sample but the moments each series was created at, which differ between two apps."""
    shown = generate_latest(metrics.registry).decode().splitlines()
    return [line for line in shown if "_created" not in line]
