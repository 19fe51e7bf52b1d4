"""The worker on a real three-node Redis Cluster: each site's delivery work stays in one slot."""

import asyncio
import random
import shutil
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from service.deliveries import DeliveryLog, DeliveryQuery, DeliveryState
from service.domain import Policy, Site, State
from service.store import SiteRecord, Store, from_ms
from service.worker import Worker

from .support import FAST, SECRET, Events, Receiver, eventually, now_ms

NODES = 3
SERVER_OPTIONS = ("--bind", "127.0.0.1", "--cluster-enabled", "yes", "--save", "")
SITES = ("news", "blog", "forum", "shop")


def free_port_pair() -> int:
    """A port whose cluster bus port (port + 10000) is free as well."""
    while True:
        port = random.randrange(20_000, 30_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def answers(cli: str, port: int, command: list[str], expected: str) -> bool:
    reply = subprocess.run([cli, "-p", str(port), *command], capture_output=True, text=True)
    return expected in reply.stdout


@pytest.fixture(scope="module")
def cluster_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed to build a local cluster")
    folder: Path = tmp_path_factory.mktemp("worker-cluster")
    ports = [free_port_pair() for _ in range(NODES)]
    processes = [
        subprocess.Popen(
            [server, "--port", str(port), "--cluster-config-file", f"{port}.conf", *SERVER_OPTIONS],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 20
        while not all(answers(cli, port, ["ping"], "PONG") for port in ports):
            assert time.monotonic() < deadline, "cluster nodes did not start"
            time.sleep(0.05)
        nodes = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            check=True,
        )
        info = ["cluster", "info"]
        while not all(answers(cli, port, info, "cluster_state:ok") for port in ports):
            assert time.monotonic() < deadline + 20, "the cluster did not become ready"
            time.sleep(0.1)
        yield ports[0]
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
async def cluster(cluster_port: int) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_port, decode_responses=True)
    await client.initialize()
    try:
        yield client
    finally:
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        await client.aclose()


async def test_sites_in_different_slots_are_delivered_in_order(
    cluster: RedisCluster, receiver: Receiver
) -> None:
    store = Store(cluster)
    log = DeliveryLog(cluster)
    moment = from_ms(now_ms())
    for site_id in SITES:
        site = Site(
            id=site_id,
            name=site_id,
            callback_url=f"{receiver.url}?site={site_id}",
            policy=Policy(),
            created_at=moment,
            updated_at=moment,
        )
        await store.create_site(SiteRecord(site, SECRET, None, 0, f"key-{site_id}"))
    slots = {site_id: cluster.keyslot(store.keys.outbox(site_id)) for site_id in SITES}
    assert len(set(slots.values())) > 1
    expected: list[str] = []
    for site_id in SITES:
        events = Events(store, site_id)
        events.count = 100 * SITES.index(site_id)
        for comment in ("c1", "c2"):
            expected.append(await events.held(comment))
            expected.append(await events.decide(comment, State.APPROVED))
    receiver.failures = 3

    worker = Worker(cluster, FAST)
    running = asyncio.create_task(worker.run())
    try:

        async def all_delivered() -> bool:
            return {event["id"] for event in receiver.delivered()} == set(expected)

        await eventually(all_delivered, what="every site's events")
    finally:
        worker.stop()
        await running

    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for event in receiver.delivered():
        versions[event["site"], event["comment"]["id"]].append(event["comment"]["version"])
    assert versions == {(site, comment): [1, 2] for site in SITES for comment in ("c1", "c2")}
    for site_id in SITES:
        page = await log.page(site_id, DeliveryQuery(state=DeliveryState.DELIVERED))
        assert len(page.items) == 4
        assert await log.trim_outbox(site_id, keep=1) == 3
