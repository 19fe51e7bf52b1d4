"""Requests and verdicts counted through the kept children show what prometheus-client's own
``labels()`` on every call would show."""

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import generate_latest

from service.metrics import MULTIPROCESS_DIR_VARIABLE, Metrics

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


SHOWN_AFTER_A_DELETION = """
from service.gauges import SiteFigures
from service.metrics import Metrics
from service.second_look_store import Totals

look = Totals(backlog=2, looked=5, held=1, skipped=0, delay_seconds_sum=1.5,
              delay_buckets=(("1.0", 4), ("+Inf", 5)))
figures = SiteFigures({"pending": 3, "reported": 0}, {"adapted": 1}, look)
metrics = Metrics()
metrics.show({"gone": figures, "news": figures})
metrics.show({"news": figures})
print(metrics.render().decode())
"""


def test_a_deleted_sites_figures_leave_the_metrics_of_several_api_processes(
    tmp_path: Path,
) -> None:
    # Several API processes share their values through files (prometheus-client reads the
    # folder's variable when it is imported): a process of its own runs the metrics that way.
    shown = subprocess.run(
        [sys.executable, "-c", SHOWN_AFTER_A_DELETION],
        env={**os.environ, MULTIPROCESS_DIR_VARIABLE: str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'civility_queue_depth{queue="pending",site="news"} 3.0' in shown
    assert 'civility_second_look_held{site="news"} 1.0' in shown
    assert 'civility_site_model_refits{outcome="adapted",site="news"} 1.0' in shown
    assert 'civility_second_look_delay_seconds_count{site="news"} 5.0' in shown
    assert 'site="gone"' not in shown
