"""The application factory: everything is built here, and nothing connects at import time."""

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from service.admin_store import AdminStore
from service.administration import Administration
from service.appkeys import (
    ADMINISTRATION,
    AKISMET,
    CLOCK,
    CORAL,
    DELIVERIES,
    EVENT_STREAMS,
    GAUGES,
    HTTP,
    IDEMPOTENCY,
    LABELS,
    METRICS,
    MODERATION,
    REDIS,
    SCORER,
    SECOND_LOOKS,
    SETTINGS,
    SITE_MODELS,
    SITE_VERSIONS,
    STOPPING,
    Clock,
)
from service.compat.akismet_desk import AkismetDesk
from service.compat.akismet_usage import AkismetUsage
from service.compat.coral_desk import CoralDesk
from service.compat.coral_links import CoralLinks
from service.connection import connect
from service.deliveries import DeliveryLog
from service.egress import guarded_socket_factory
from service.env_reader import SettingsError
from service.event_streams import StreamPlaces
from service.gauges import SiteGauges
from service.idempotency import IdempotencyStore
from service.labels import LabelLog
from service.metrics import Metrics
from service.middleware import errors_and_metrics
from service.moderation import Moderation
from service.reload import follow_reloads
from service.routes import (
    admin,
    authors,
    compat_akismet,
    compat_coral,
    compat_perspective,
    console,
    events,
    health,
    intake,
    model,
    moderation,
    reasons,
    reports,
    revocation,
    site_model,
)
from service.routes import deliveries as delivery_routes
from service.scoring import start_scorer
from service.second_look_store import SecondLookLog
from service.settings import Settings
from service.shared_scoring import sharing_from_environment
from service.site_models import ActiveVersions, SiteModels
from service.store import Store

ROUTE_AREAS = (
    health,
    admin,
    intake,
    moderation,
    reasons,
    events,
    reports,
    site_model,
    authors,
    model,
    delivery_routes,
    compat_perspective,
    compat_akismet,
    compat_coral,
    revocation,
    console,
)


def create_app(settings: Settings, *, clock: Clock = time.time) -> web.Application:
    """The API; ``clock`` (seconds since the epoch) is the time every domain decision reads,
    so tests move it instead of waiting."""
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL is required to serve the API")
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[errors_and_metrics])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app[STOPPING] = asyncio.Event()
    app[EVENT_STREAMS] = StreamPlaces(
        settings.event_streams_limit,
        settings.event_streams_site_limit,
        settings.event_streams_moderator_limit,
    )
    app.on_shutdown.append(_stop_streams)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_scorer)
    app.cleanup_ctx.append(_labels)
    app.cleanup_ctx.append(_site_models)
    app.cleanup_ctx.append(_moderation)
    app.cleanup_ctx.append(_administration)
    app.cleanup_ctx.append(_http)
    app.cleanup_ctx.append(_akismet)
    app.cleanup_ctx.append(_coral)
    app.cleanup_ctx.append(_deliveries)
    app.cleanup_ctx.append(_gauges)
    app.cleanup_ctx.append(follow_reloads)
    for area in ROUTE_AREAS:
        app.router.add_routes(area.routes)
    return app


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    connection = connect(app[SETTINGS])
    app[REDIS] = connection.client
    yield
    await connection.aclose()


async def _scorer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    scorer = await start_scorer(
        settings.models_dir,
        workers=settings.scoring_workers,
        long_workers=settings.scoring_long_workers,
        batch_max_items=settings.batch_max_items,
        batch_wait_seconds=settings.batch_wait_ms / 1000,
        # Scoring workers read site models over a blocking client of their own.
        redis_url=settings.redis_url,
        prefix=settings.redis_prefix,
        sharing=sharing_from_environment(),
    )
    app[SCORER] = scorer
    try:
        yield
    finally:
        await scorer.close()


async def _moderation(app: web.Application) -> AsyncIterator[None]:
    scorer = app[SCORER]
    settings = app[SETTINGS]
    store = Store(
        app[REDIS],
        prefix=settings.redis_prefix,
        replicas=settings.redis_wait_replicas,
        replica_wait_ms=settings.redis_wait_ms,
    )
    app[MODERATION] = Moderation(
        store,
        scorer,
        thresholds=scorer.info.thresholds,
        labels=app[LABELS],
        clock=app[CLOCK],
        site_models=app[SITE_VERSIONS] if app[SETTINGS].site_models.enabled else None,
        second_look=app[SETTINGS].second_look.enabled,
        evidence_limit=settings.evidence_pending_max,
        on_evidence_dropped=app[METRICS].evidence_dropped.inc,
    )
    yield
    # Held comments answered before their evidence was worked out get it stored before the
    # scorer stops.
    await app[MODERATION].evidence.settled()


async def _administration(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = AdminStore(
        app[REDIS],
        prefix=settings.redis_prefix,
        replicas=settings.redis_wait_replicas,
        replica_wait_ms=settings.redis_wait_ms,
    )
    app[ADMINISTRATION] = Administration(
        store, app[MODERATION], app[LABELS], clock=app[CLOCK], site_models=app[SITE_MODELS]
    )
    yield


async def _akismet(app: web.Application) -> AsyncIterator[None]:
    usage = AkismetUsage(app[REDIS], prefix=app[SETTINGS].redis_prefix)
    app[AKISMET] = AkismetDesk(app[MODERATION], app[LABELS], usage, app[METRICS], clock=app[CLOCK])
    yield


async def _http(app: web.Application) -> AsyncIterator[None]:
    # Coral's GraphQL is called from here as webhooks are from the worker, so under the same
    # guard: no private or loopback address unless CIVILITY_CALLBACK_ALLOW names its range.
    allowed = app[SETTINGS].delivery.callback_allow
    connector = aiohttp.TCPConnector(socket_factory=guarded_socket_factory(allowed))
    async with aiohttp.ClientSession(connector=connector) as session:
        app[HTTP] = session
        yield


async def _coral(app: web.Application) -> AsyncIterator[None]:
    links = CoralLinks(app[REDIS], prefix=app[SETTINGS].redis_prefix)
    app[CORAL] = CoralDesk(
        app[MODERATION],
        links,
        app[METRICS],
        lambda: app[HTTP],
        clock=app[CLOCK],
        edit_window_seconds=app[SETTINGS].coral_edit_window_seconds,
        lookup_timeout_seconds=app[SETTINGS].delivery.timeout_seconds,
    )
    yield


async def _deliveries(app: web.Application) -> AsyncIterator[None]:
    app[DELIVERIES] = DeliveryLog(app[REDIS], prefix=app[SETTINGS].redis_prefix)
    app[SECOND_LOOKS] = SecondLookLog(app[REDIS], prefix=app[SETTINGS].redis_prefix)
    app[IDEMPOTENCY] = IdempotencyStore(app[REDIS], prefix=app[SETTINGS].redis_prefix)
    yield


async def _gauges(app: web.Application) -> AsyncIterator[None]:
    app[GAUGES] = SiteGauges(
        app[REDIS], app[SITE_MODELS], app[SECOND_LOOKS], prefix=app[SETTINGS].redis_prefix
    )
    yield


async def _labels(app: web.Application) -> AsyncIterator[None]:
    app[LABELS] = LabelLog(app[REDIS], prefix=app[SETTINGS].redis_prefix, clock=app[CLOCK])
    yield


async def _site_models(app: web.Application) -> AsyncIterator[None]:
    app[SITE_MODELS] = SiteModels(app[REDIS], prefix=app[SETTINGS].redis_prefix)
    app[SITE_VERSIONS] = ActiveVersions(app[SITE_MODELS])
    yield
