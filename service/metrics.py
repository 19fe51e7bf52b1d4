"""Prometheus metrics of one application: requests, latency, verdicts and queue depth.

When ``civility serve`` runs several API processes on one port, a scrape reaches any one of them,
so each process also writes its values to files in a shared folder (prometheus-client's
multiprocess mode, switched on by ``MULTIPROCESS_DIR_VARIABLE``) and ``/metrics`` answers with
the sum over all of them.
"""

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.api_processes import MULTIPROCESS_DIR_VARIABLE as MULTIPROCESS_DIR_VARIABLE
from service.gauges import SiteFigures

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
        self._site_figures = SiteFigureGauges()
        self.registry.register(self._site_figures)
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

    def show(self, figures: dict[str, SiteFigures]) -> None:
        """Every site's figures as the gauges hash holds them; a deleted site's go."""
        self._site_figures.figures = dict(figures)

    def render(self) -> bytes:
        folder = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if folder is None:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=folder)  # type: ignore[no-untyped-call]
        # Read from Redis at this scrape, the same in every process: this process's copy. Kept
        # out of the shared files, which would show a deleted site's figures until a restart.
        every_process.register(self._site_figures)
        return generate_latest(every_process)


class SiteFigureGauges(Collector):
    """Each site's figures (queue depths, site-model refits, the second look, its delay
    histogram) as the last scrape read them from Redis."""

    def __init__(self) -> None:
        self.figures: dict[str, SiteFigures] = {}

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "civility_queue_depth",
            "Comments waiting in a site's moderation queue, as of the last scrape.",
            labels=("queue", "site"),
        )
        refits = GaugeMetricFamily(
            "civility_site_model_refits",
            "Refits of a site's own model by outcome (adapted, global, failed), as of the last "
            "scrape.",
            labels=("outcome", "site"),
        )
        looks = {
            name: GaugeMetricFamily(f"civility_second_look_{name}", text, labels=("site",))
            for name, text in SECOND_LOOK_GAUGES.items()
        }
        delay = HistogramMetricFamily(
            "civility_second_look_delay_seconds",
            "Time from intake to the second look of a published comment.",
            labels=("site",),
        )
        for site, figures in sorted(self.figures.items()):
            for queue, count in figures.queue_depths.items():
                depth.add_metric([queue, site], count)
            for outcome, count in figures.refits.items():
                refits.add_metric([outcome, site], count)
            look = figures.second_look
            values = {
                "backlog": look.backlog,
                "processed": look.looked,
                "held": look.held,
                "skipped": look.skipped,
                "failed": look.failed,
            }
            for name, family in looks.items():
                family.add_metric([site], values[name])
            delay.add_metric([site], _buckets(look.delay_buckets), sum_value=look.delay_seconds_sum)
        yield depth
        yield refits
        yield from looks.values()
        yield delay


SECOND_LOOK_GAUGES = {
    "backlog": "Published comments waiting for the semantic stage's second look, as of the last "
    "scrape.",
    "processed": "Second looks done (the blend read the comment), as of the last scrape.",
    "held": "Published comments a second look moved to pending, as of the last scrape.",
    "skipped": "Queued comments a moderator decided before the second look, as of the last scrape.",
    "failed": "Queued comments given up after the stage failed on their text alone, as of the "
    "last scrape.",
}


def _buckets(buckets: Iterable[tuple[str, int]]) -> list[tuple[str, float]]:
    return [(bound, float(count)) for bound, count in buckets]
