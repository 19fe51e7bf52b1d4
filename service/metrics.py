"""Prometheus metrics of one application: requests, latency, verdicts and queue depth.

When ``civility serve`` runs several API processes on one port, a scrape reaches any one of them,
so each process also writes its values to files in a shared folder (prometheus-client's
multiprocess mode, switched on by ``MULTIPROCESS_DIR_VARIABLE``) and ``/metrics`` answers with
the sum over all of them.
"""

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.gauges import SiteFigures
from service.second_look_store import Totals

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
        self.evidence_dropped = Counter(
            "civility_evidence_dropped",
            "Held comments whose model evidence was not worked out because too many waited for "
            "theirs (CIVILITY_EVIDENCE_PENDING_MAX); their verdicts and the rules' evidence stand.",
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

        self.second_look_backlog = Gauge(
            "civility_second_look_backlog",
            "Published comments waiting for the semantic stage's second look, as of the last "
            "scrape.",
            ("site",),
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.second_look_processed = Gauge(
            "civility_second_look_processed",
            "Second looks done (the blend read the comment), as of the last scrape.",
            ("site",),
            registry=self.registry,
            # The worker counts them in Redis; every API process reads the same totals.
            multiprocess_mode="mostrecent",
        )
        self.second_look_held = Gauge(
            "civility_second_look_held",
            "Published comments a second look moved to pending, as of the last scrape.",
            ("site",),
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.second_look_skipped = Gauge(
            "civility_second_look_skipped",
            "Queued comments a moderator decided before the second look, as of the last scrape.",
            ("site",),
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.second_look_failed = Gauge(
            "civility_second_look_failed",
            "Queued comments given up after the stage failed on their text alone, as of the "
            "last scrape.",
            ("site",),
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self._second_look_delay = SecondLookDelay()
        self.registry.register(self._second_look_delay)
        # Every request looks its children up by labels: prometheus-client checks and joins
        # the labels under a lock each time, so each child is looked up once and kept (these
        # metrics are never cleared, so a kept child stays the registry's own).
        self._served: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._verdict_counts: dict[str, Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._served.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._served[(route, method, status)] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)

    def observe_verdict(self, state: str) -> None:
        count = self._verdict_counts.get(state)
        if count is None:
            count = self._verdict_counts[state] = self.verdicts.labels(state)
        count.inc()

    def set_queue_depth(self, site: str, queue: str, depth: int) -> None:
        self.queue_depth.labels(site, queue).set(depth)

    def set_site_model_refits(self, site: str, outcome: str, count: int) -> None:
        self.site_model_refits.labels(site, outcome).set(count)

    def set_second_look(self, site: str, totals: Totals) -> None:
        self.second_look_backlog.labels(site).set(totals.backlog)
        self.second_look_processed.labels(site).set(totals.looked)
        self.second_look_held.labels(site).set(totals.held)
        self.second_look_skipped.labels(site).set(totals.skipped)
        self.second_look_failed.labels(site).set(totals.failed)
        self._second_look_delay.totals[site] = totals

    def show(self, figures: dict[str, SiteFigures]) -> None:
        """Every site's figures as the gauges hash holds them; a deleted site's go."""
        for gauge in (
            self.queue_depth,
            self.site_model_refits,
            self.second_look_backlog,
            self.second_look_processed,
            self.second_look_held,
            self.second_look_skipped,
            self.second_look_failed,
        ):
            gauge.clear()
        self._second_look_delay.totals.clear()
        for site, site_figures in figures.items():
            for queue, depth in site_figures.queue_depths.items():
                self.set_queue_depth(site, queue, depth)
            for outcome, count in site_figures.refits.items():
                self.set_site_model_refits(site, outcome, count)
            self.set_second_look(site, site_figures.second_look)

    def render(self) -> bytes:
        folder = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if folder is None:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=folder)  # type: ignore[no-untyped-call]
        # Read from Redis at this scrape, the same in every process: this process's copy.
        every_process.register(self._second_look_delay)
        return generate_latest(every_process)


class SecondLookDelay(Collector):
    """The delay from intake to the second look, a histogram the worker keeps in Redis (its
    buckets are counted by the script that records each look) and a scrape reads."""

    def __init__(self) -> None:
        self.totals: dict[str, Totals] = {}

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(
            "civility_second_look_delay_seconds",
            "Time from intake to the second look of a published comment.",
            labels=("site",),
        )
        for site, totals in sorted(self.totals.items()):
            family.add_metric(
                [site], _buckets(totals.delay_buckets), sum_value=totals.delay_seconds_sum
            )
        yield family


def _buckets(buckets: Iterable[tuple[str, int]]) -> list[tuple[str, float]]:
    return [(bound, float(count)) for bound, count in buckets]
