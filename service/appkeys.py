"""What handlers find on the application: each resource under its own typed key.

Below the routes, so the domain glue (auth, middleware, reload, cli) reads them without
importing a route module.
"""

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web

from service.administration import Administration
from service.compat.akismet_desk import AkismetDesk
from service.compat.coral_desk import CoralDesk
from service.deliveries import DeliveryLog
from service.event_streams import StreamPlaces
from service.gauges import SiteGauges
from service.idempotency import IdempotencyStore
from service.labels import LabelLog
from service.metrics import Metrics
from service.moderation import Moderation
from service.scoring import PoolScorer
from service.second_look_store import SecondLookLog
from service.settings import Settings
from service.site_models import ActiveVersions, SiteModels
from service.store.scripts import RedisClient

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time`` gives them."""

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey[Clock]("clock")
METRICS = web.AppKey("metrics", Metrics)
REDIS = web.AppKey[RedisClient]("redis")
SCORER = web.AppKey("scorer", PoolScorer)
MODERATION = web.AppKey("moderation", Moderation)
LABELS = web.AppKey("labels", LabelLog)
DELIVERIES = web.AppKey("deliveries", DeliveryLog)
ADMINISTRATION = web.AppKey("administration", Administration)
AKISMET = web.AppKey("akismet", AkismetDesk)
CORAL = web.AppKey("coral", CoralDesk)
HTTP = web.AppKey("http", aiohttp.ClientSession)
"""The process's one HTTP client for outbound calls (Coral's GraphQL API)."""
STOPPING = web.AppKey("stopping", asyncio.Event)
"""Set when the server shuts down, so long-lived responses (event streams) end."""
EVENT_STREAMS = web.AppKey("event_streams", StreamPlaces)
"""The places for event streams this process keeps open at once (CIVILITY_EVENT_STREAMS_MAX)."""
SITE_MODELS = web.AppKey("site_models", SiteModels)
SITE_VERSIONS = web.AppKey("site_versions", ActiveVersions)
SECOND_LOOKS = web.AppKey("second_looks", SecondLookLog)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
GAUGES = web.AppKey("gauges", SiteGauges)
