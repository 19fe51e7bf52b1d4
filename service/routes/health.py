"""Operations: liveness, readiness, Prometheus metrics and the OpenAPI document."""

import asyncio
import itertools
from importlib.metadata import version
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS
from redis.exceptions import ClusterError, OutOfMemoryError, ReadOnlyError, SlotNotCoveredError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service import openapi
from service.appkeys import GAUGES, METRICS, REDIS, SCORER, SETTINGS
from service.auth import require_metrics_access
from service.errors import CivilityError, StoreUnavailable
from service.keys import KeySpace
from service.metrics import CONTENT_TYPE
from service.openapi import operation

routes = web.RouteTableDef()

API_VERSION = version("civility")

STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "model": {"type": "string"}},
}


@routes.get("/healthz")
@operation(summary="The process is up", tag="operations", auth="none", response=STATUS)
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@operation(
    summary="Redis takes writes and a model is loaded",
    tag="operations",
    auth="none",
    response=STATUS,
    errors=(503,),
)
async def readyz(request: web.Request) -> web.Response:
    # A PING is answered by a primary a failover demoted or one at its maxmemory, which refuse
    # every write: a write is asked instead, one as cheap as a PING (a load balancer asks every
    # few seconds) that changes nothing. On the primary the client writes to: Sentinel's follows
    # the new one after this refusal; on a Cluster, every primary is asked, as each serves the
    # sites of its own slots. A replica may be set to take writes, and then loses them: its role
    # is asked as well.
    redis = request.app[REDIS]
    keys = KeySpace(request.app[SETTINGS].redis_prefix)
    try:
        if isinstance(redis, RedisCluster):
            await _every_primary_takes_writes(redis, keys)
        else:
            await _server_takes_writes(redis, keys)
    except ReadOnlyError as error:
        raise StoreUnavailable(
            "not ready: Redis is a replica and refuses writes (a failover under way), retry later"
        ) from error
    except OutOfMemoryError as error:
        raise StoreUnavailable(
            "not ready: Redis is at its maxmemory and refuses writes (noeviction) until it has "
            "room, retry later"
        ) from error
    return web.json_response({"status": "ready", "model": request.app[SCORER].model_version})


async def _server_takes_writes(redis: aioredis.Redis, keys: KeySpace) -> None:
    """The readiness write, then the server's role: a replica set to take writes
    (``replica-read-only no``) takes it, and drops every write at its next sync."""
    await redis.set(keys.readiness(), "", xx=True)
    role, *_ = await redis.role()
    if role != "master":
        raise StoreUnavailable(
            "not ready: Redis is a replica that takes writes (replica-read-only no) and drops "
            "them at its next sync with its primary: REDIS_URL must name the primary"
        )


async def _every_primary_takes_writes(cluster: RedisCluster, keys: KeySpace) -> None:
    """The readiness write on every primary at once, each sent to its node alone and not tried
    again (a load balancer's check must not wait out the client's retries): a primary down, or
    a Cluster that no longer serves every slot, refuses it."""
    try:
        await cluster.initialize()
        await asyncio.gather(
            *(
                cluster.execute_command("SET", key, "", "XX", target_nodes=node)
                for node, key in _one_key_per_primary(cluster, keys)
            )
        )
    except (RedisConnectionError, RedisTimeoutError, ClusterError, SlotNotCoveredError) as error:
        raise StoreUnavailable(
            "not ready: a Redis Cluster primary does not answer or the cluster does not serve "
            "every slot (a node down, a failover under way), so the sites in those slots can "
            "take no comments; retry later"
        ) from error


def _one_key_per_primary(cluster: RedisCluster, keys: KeySpace) -> list[tuple[ClusterNode, str]]:
    """A readiness key in a slot of each primary the client knows, by trying tags in turn: a few
    tries while the slots are shared out evenly."""
    owners = {slot: nodes[0] for slot, nodes in cluster.nodes_manager.slots_cache.items()}
    if len(owners) < REDIS_CLUSTER_HASH_SLOTS:
        # Slots of no node's (cluster-require-full-coverage no): the sites there take nothing.
        raise SlotNotCoveredError("the cluster serves only some of its slots")
    primaries = len({node.name for node in owners.values()})
    found: dict[str, tuple[ClusterNode, str]] = {}
    tags = itertools.count()
    while len(found) < primaries:
        key = keys.readiness(str(next(tags)))
        owner = owners[cluster.keyslot(key)]
        found.setdefault(owner.name, (owner, key))
    return list(found.values())


@routes.get("/metrics")
@operation(
    summary="Prometheus metrics",
    tag="operations",
    auth="metrics",
    response={"type": "string"},
    response_type="text/plain",
    errors=(401,),
)
async def metrics(request: web.Request) -> web.Response:
    require_metrics_access(request)
    registry = request.app[METRICS]
    gauges = request.app[GAUGES]
    # One read of the figures the writes keep current, whatever the number of sites.
    try:
        await gauges.refresh_changed()
        registry.show(await gauges.figures())
    except CivilityError:
        pass  # a scrape must not fail because Redis blinked
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@routes.get("/openapi.json")
@operation(summary="This document", tag="operations", auth="none", response={"type": "object"})
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi.build_document(request.app, API_VERSION))
