"""The same store code on a real three-node Redis Cluster: every site's keys in one hash slot.

The cluster is built for this module from ``redis-server`` processes (no persistence) in a
temporary folder, and torn down after it.
"""

import asyncio
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from service.domain import (
    Action,
    ArticleSpec,
    AuthorStatus,
    AuthorStatusChange,
    ClaimRequest,
    Decision,
    Policy,
    Queue,
    QueueQuery,
    ReportReason,
    ReportSpec,
    SiteSpec,
    State,
    Submission,
)
from service.labels import LabelLog
from service.moderation import Moderation
from service.store import Store

NODES = 3
BUS_OFFSET = 10_000
SERVER_OPTIONS = (
    "--bind",
    "127.0.0.1",
    "--cluster-enabled",
    "yes",
    "--save",
    "",
    "--appendonly",
    "no",
)
THRESHOLDS = {"spam": {"hold": 0.5, "reject": 0.9}, "toxicity": {"hold": 0.6, "reject": 0.95}}


class OfferScorer:
    model_version = "test-1.0"

    async def score(self, text: str) -> dict[str, float]:
        return {"spam": 0.7 if "offer" in text else 0.01, "toxicity": 0.01}

    async def explain(self, text: str) -> dict[str, list[tuple[int, int]]]:
        return {}


def bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free as well."""
    candidates = random.sample(range(20_000, 30_000), 200)
    ports = [port for port in candidates if bindable(port) and bindable(port + BUS_OFFSET)]
    return ports[:count]


def cluster_ready(cli: str, port: int) -> bool:
    info = subprocess.run(
        [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, check=False
    ).stdout
    return "cluster_state:ok" in info


@pytest.fixture(scope="module")
def cluster_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed to build a local cluster")
    folder: Path = tmp_path_factory.mktemp("cluster")
    ports = free_cluster_ports(NODES)
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
        deadline = time.monotonic() + 10
        while not all(
            subprocess.run([cli, "-p", str(port), "ping"], capture_output=True, check=False)
            .stdout.strip()
            .endswith(b"PONG")
            for port in ports
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("cluster nodes did not start")
            time.sleep(0.05)
        nodes = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            check=True,
        )
        deadline = time.monotonic() + 20
        while not all(cluster_ready(cli, port) for port in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not become ready")
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


def submission(comment_id: str, text: str, author: str = "u1") -> Submission:
    return Submission.model_validate(
        {"id": comment_id, "article": {"id": "a1"}, "author": {"id": author}, "text": text}
    )


async def test_the_whole_flow_runs_on_a_cluster_with_each_site_in_one_slot(
    cluster: RedisCluster,
) -> None:
    store = Store(cluster)
    moderation = Moderation(store, OfferScorer(), THRESHOLDS)
    sites = ["news", "blog", "forum", "shop"]
    for site in sites:
        await moderation.create_site(SiteSpec(id=site, name=site))
        await moderation.put_article(site, "a1", ArticleSpec(title="First"))
        held = await moderation.ingest(site, submission("c1", "A special offer"))
        await moderation.ingest(site, submission("c2", "Plain words", author="u2"))
        assert held.comment.state is State.PENDING
        [claimed] = await moderation.claim(site, "mod_1", ClaimRequest(limit=5))
        assert claimed.id == "c1"
        decided = await moderation.decide(
            site, "c1", Decision(action=Action.REJECT, version=1), "mod_1"
        )
        assert (decided.state, decided.version) == (State.REJECTED, 2)
        comment = await moderation.get_comment(site, "c1")
        assert comment.history is not None
        assert len(comment.history) == 2
        assert (await moderation.list_queue(site, QueueQuery())).items == ()
        stats = await moderation.stats(site)
        assert (stats.decisions["auto"], stats.decisions["moderator"]) == (2, 1)

    slots_used = set()
    for site in sites:
        keys = [key async for key in cluster.scan_iter(match=f"civ:{{{site}}}:*")]
        assert len(keys) > 10
        slots = {cluster.keyslot(key) for key in keys}
        assert len(slots) == 1, site
        slots_used |= slots
    nodes_used = {cluster.nodes_manager.get_node_from_slot(slot).name for slot in slots_used}
    assert len(nodes_used) > 1  # the sites really are spread over the cluster


async def test_concurrent_deliveries_on_a_cluster_create_one_comment(
    cluster: RedisCluster,
) -> None:
    moderation = Moderation(Store(cluster), OfferScorer(), THRESHOLDS)
    await moderation.create_site(SiteSpec(id="news", name="News"))

    results = await asyncio.gather(
        *(moderation.ingest("news", submission("c1", "Same words")) for _ in range(20))
    )

    assert sum(result.created for result in results) == 1


async def test_reports_authors_and_labels_run_on_a_cluster_in_the_sites_slot(
    cluster: RedisCluster,
) -> None:
    moderation = Moderation(Store(cluster), OfferScorer(), THRESHOLDS, labels=LabelLog(cluster))
    await moderation.create_site(
        SiteSpec(id="news", name="News", policy=Policy(report_threshold=2))
    )
    await moderation.ingest("news", submission("c1", "Plain words"))
    for reader in ("r1", "r2"):
        outcome = await moderation.report(
            "news", "c1", ReportSpec(reporter_id=reader, reason=ReportReason.ABUSIVE)
        )
    assert (outcome.reports, outcome.reported) == (2, True)
    page = await moderation.list_queue("news", QueueQuery(queue=Queue.REPORTED))
    assert [item.id for item in page.items] == ["c1"]
    assert await cluster.exists("civ:{news}:reports:c1") == 1
    await moderation.ingest("news", submission("c2", "A special offer", author="u2"))
    banned = await moderation.set_author_status(
        "news",
        "u2",
        AuthorStatusChange(status=AuthorStatus.BANNED, reject_pending=True),
        "mod_1",
    )
    assert banned.rejected == ("c2",)
    assert banned.author.counts.rejected == 1
    await moderation.decide("news", "c1", Decision(action=Action.APPROVE), "mod_1")
    author = await moderation.author("news", "u1")
    assert (author.counts.approved, author.recent.decided) == (1, 1)
    labels = [entry async for entry in LabelLog(cluster).export("news")]
    assert [(entry["comment_id"], entry["labels"]) for entry in labels] == [
        ("c1", {"spam": 0, "toxicity": 0})
    ]
    keys = [key async for key in cluster.scan_iter(match="civ:{news}:*")]
    # Keeping the comment cleared its reports.
    assert "civ:{news}:reports:c1" not in keys
    assert {"civ:{news}:recent:u1", "civ:{news}:author:u2", "civ:{news}:labels"} <= set(keys)
    assert len({cluster.keyslot(key) for key in keys}) == 1
