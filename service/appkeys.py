"""What handlers find on the application: each resource under its own typed key.

Below the routes, so the domain glue (auth, middleware, reload, cli) reads them without
importing a route module.
"""

import redis.asyncio as aioredis
from aiohttp import web

from service.administration import Administration
from service.deliveries import DeliveryLog
from service.labels import LabelLog
from service.metrics import Metrics
from service.moderation import Moderation
from service.scoring import PoolScorer
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
REDIS = web.AppKey("redis", aioredis.Redis)
SCORER = web.AppKey("scorer", PoolScorer)
MODERATION = web.AppKey("moderation", Moderation)
LABELS = web.AppKey("labels", LabelLog)
DELIVERIES = web.AppKey("deliveries", DeliveryLog)
ADMINISTRATION = web.AppKey("administration", Administration)
