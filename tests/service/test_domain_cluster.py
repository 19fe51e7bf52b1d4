"""The same store code on a real three-node Redis Cluster: every site's keys in one hash slot.

The cluster (``tests/conftest.py``) is built once for the session from ``redis-server``
processes without persistence, and torn down after it.
"""

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio.cluster import RedisCluster

from service.admin_store import SCAN_COUNT, AdminStore, PurgeStep
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
from service.errors import StoreUnavailable
from service.keys import DEFAULT_PREFIX, KeySpace
from service.labels import LabelLog
from service.moderation import Moderation
from service.site_models import SiteModels
from service.store import Store
from tests.records import list_moderators, site_record
from tests.service.test_store import NOW

THRESHOLDS = {"spam": {"hold": 0.5, "reject": 0.9}, "toxicity": {"hold": 0.6, "reject": 0.95}}


class OfferScorer:
    model_version = "test-1.0"

    async def score(self, text: str) -> dict[str, float]:
        return {"spam": 0.7 if "offer" in text else 0.01, "toxicity": 0.01}

    async def explain(
        self, text: str, site: str | None = None, labels: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, int]]]:
        return {}


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
        await list_moderators(store, site, "mod_1")
        await moderation.put_article(site, "a1", ArticleSpec(id="a1", title="First"))
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
            "news",
            "c1",
            ReportSpec(comment_id="c1", reporter_id=reader, reason=ReportReason.ABUSIVE),
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


async def test_a_deleted_sites_keys_are_purged_in_bounded_steps_and_no_other_sites(
    cluster: RedisCluster,
) -> None:
    store, admin = Store(cluster), AdminStore(cluster)
    # Sites share hash slots (16,384 of them): these two hash to the same one.
    doomed, kept = "site2812", "news"
    assert cluster.keyslot(f"civ:{{{doomed}}}:site") == cluster.keyslot(f"civ:{{{kept}}}:site")
    for site_id in (doomed, kept):
        await store.create_site(site_record(site_id, NOW))
    async with cluster.pipeline(transaction=False) as pipe:
        for number in range(SCAN_COUNT + 5):
            pipe.hset(f"civ:{{{doomed}}}:comment:c{number}", mapping={"id": f"c{number}"})
        pipe.hset(f"civ:{{{kept}}}:comment:c1", mapping={"id": "c1"})
        await pipe.execute()
    kept_before = sorted([key async for key in cluster.scan_iter(match=f"civ:{{{kept}}}:*")])

    await admin.delete_site(doomed)
    left = [key async for key in cluster.scan_iter(match=f"civ:{{{doomed}}}:*")]
    assert await admin.purging() == [doomed]
    steps = [await admin.purge_step(doomed)]
    while not steps[-1].done:
        steps.append(await admin.purge_step(doomed))
    # One SCAN's worth a step: more than one step for more keys than a SCAN's count.
    assert len(steps) > 1
    assert sum(step.removed for step in steps) == len(left)
    assert await admin.purging() == []
    assert await admin.purge_step(doomed) == PurgeStep(0, True)
    assert [key async for key in cluster.scan_iter(match=f"civ:{{{doomed}}}:*")] == []
    assert sorted([key async for key in cluster.scan_iter(match=f"civ:{{{kept}}}:*")]) == (
        kept_before
    )


async def test_a_refusal_inside_a_cluster_transaction_is_the_store_unavailable(
    cluster: RedisCluster,
) -> None:
    # The Cluster client words a pipeline's failed command its own way, Redis's reply as is.
    models = SiteModels(cluster)
    await models.advance("news", "0-1", 1)
    state = KeySpace(DEFAULT_PREFIX).site_model_state("news")
    node = cluster.get_node_from_key(state)
    await cluster.config_set("min-replicas-to-write", "1", target_nodes=node)
    try:
        with pytest.raises(StoreUnavailable):
            await models.advance("news", "0-2", 1)
    finally:
        await cluster.config_set("min-replicas-to-write", "0", target_nodes=node)
    assert await cluster.hgetall(state) == {"cursor": "0-1", "new_labels": "1"}
