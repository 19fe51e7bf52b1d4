"""Prometheus metrics of one application: requests, latency, verdicts and queue depth.

When ``civility serve`` runs several API processes on one port, a scrape reaches any one of them,
so each process also writes its values to files in a shared folder (prometheus-client's
multiprocess mode, switched on by ``MULTIPROCESS_DIR_VARIABLE``) and ``/metrics`` answers with
the sum over all of them.
"""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

# Read by prometheus-client when it is imported: set it before the API processes start.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Intake answers in a few milliseconds; the buckets resolve that range and still show stalls.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Each application owns its registry, so several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "civility_http_requests",
            "HTTP requests by route, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "civility_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method.",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.verdicts = Counter(
            "civility_verdicts",
            "Automatic verdicts on new or edited comments, by state.",
            ("state",),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "civility_queue_depth",
            "Comments waiting in a site's moderation queue, as of the last scrape.",
            ("site", "queue"),
            registry=self.registry,
            # Every process reads the same depths from Redis; the latest scrape's are current.
            multiprocess_mode="mostrecent",
        )

        self.site_model_refits = Gauge(
            "civility_site_model_refits",
            "Refits of a site's own model by outcome (adapted, global, failed), as of the last "
            "scrape.",
            ("site", "outcome"),
            registry=self.registry,
            # The worker counts them in Redis; every API process reads the same totals.
            multiprocess_mode="mostrecent",
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_verdict(self, state: str) -> None:
        self.verdicts.labels(state).inc()

    def set_queue_depth(self, site: str, queue: str, depth: int) -> None:
        self.queue_depth.labels(site, queue).set(depth)

    def set_site_model_refits(self, site: str, outcome: str, count: int) -> None:
        self.site_model_refits.labels(site, outcome).set(count)

    def render(self) -> bytes:
        folder = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if folder is None:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=folder)  # type: ignore[no-untyped-call]
        return generate_latest(every_process)
