"""A comment ages in a queue from when it entered it, not from when it was written: imported,
edited back into the queue, reopened or reported, it is as old as its wait."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from service.times import iso
from tests.clocks import Clock

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
DAY = 86_400
TEXTS = {
    "c0": "I disagree with the minister, but the summary of the talks is fair.",
    "c1": "Good article. The part about the negotiations was new to me.",
    "c2": "Does anyone know when the next round of talks is planned?",
}


def comment(comment_id: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": f"reader-{comment_id}"},
        "text": text or TEXTS[comment_id],
        **extra,
    }


def days_ago(clock: Clock, days: int) -> str:
    return iso(datetime.fromtimestamp(clock() - days * DAY, UTC))


async def oldest_first(
    client: Client, site: dict[str, str], moderator: Headers, queue: str
) -> list[str]:
    response = await client.get(
        f"/v1/sites/{site['id']}/queue?queue={queue}&order=oldest", headers=moderator(site)
    )
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def oldest_age(client: Client, site: dict[str, str], moderator: Headers, queue: str) -> Any:
    stats = await (
        await client.get(f"/v1/sites/{site['id']}/stats", headers=moderator(site))
    ).json()
    return stats["oldest_ages_seconds"][queue]


async def test_an_imported_comment_ages_in_the_pending_queue_from_its_intake(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    site = await create_site("held", mode="pre")
    assert (await post_signed(site, comment("c0"))).status == 202
    clock.advance(60)
    imported = await post_signed(site, comment("c1", created_at=days_ago(clock, 30)))
    assert (await imported.json())["state"] == "pending"
    assert await oldest_first(client, site, moderator, "pending") == ["c0", "c1"]
    assert 60 <= await oldest_age(client, site, moderator, "pending") < 120


async def test_an_edited_or_reopened_comment_joins_the_pending_queue_at_its_end(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    site = await create_site("held", mode="pre")
    for comment_id in ("c0", "c1", "c2"):
        assert (await post_signed(site, comment(comment_id))).status == 202
        clock.advance(60)
    for comment_id in ("c0", "c1"):
        decided = await client.post(
            f"/v1/sites/held/comments/{comment_id}/decision",
            json={"action": "approve"},
            headers=moderator(site),
        )
        assert decided.status == 200, await decided.text()
    clock.advance(60)
    # An edit of a comment still waiting keeps its place; one of a decided comment queues anew.
    edited = await post_signed(site, comment("c2", "Does anyone know when the talks resume?"))
    assert (await edited.json())["state"] == "pending"
    clock.advance(60)
    edited = await post_signed(site, comment("c0", "I disagree with the minister on this."))
    assert (await edited.json())["state"] == "pending"
    clock.advance(60)
    reopened = await client.post(
        "/v1/sites/held/comments/c1/decision", json={"action": "reopen"}, headers=moderator(site)
    )
    assert reopened.status == 200, await reopened.text()
    assert await oldest_first(client, site, moderator, "pending") == ["c2", "c0", "c1"]
    # c2 has waited since it was written, four minutes ago.
    assert 240 <= await oldest_age(client, site, moderator, "pending") < 300


async def test_a_reported_comment_ages_from_the_report_that_queued_it(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    written = {"c0": days_ago(clock, 30), "c1": days_ago(clock, 0)}
    for comment_id, created_at in written.items():
        verdict = await (await post_signed(site, comment(comment_id, created_at=created_at))).json()
        assert verdict["state"] == "approved", verdict
    # The new comment is reported first, the month-old one a minute later.
    for comment_id in ("c1", "c0"):
        for reader in ("r1", "r2", "r3"):
            response = await post_signed(
                site,
                {"comment_id": comment_id, "reporter_id": reader, "reason": "abusive"},
                path=f"/v1/sites/news/comments/{comment_id}/reports",
            )
            assert response.status == 202, await response.text()
        clock.advance(60)
    assert await oldest_first(client, site, moderator, "reported") == ["c1", "c0"]
    assert 120 <= await oldest_age(client, site, moderator, "reported") < 180


async def test_queue_items_say_when_they_entered_the_queue_in_every_view_of_them(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers, clock: Clock
) -> None:
    site = await create_site("held", mode="pre")

    async def queued_while(body: dict[str, Any]) -> tuple[float, float]:
        before = clock()
        assert (await post_signed(site, body)).status == 202
        return before, clock()

    c0 = await queued_while(comment("c0", created_at=days_ago(clock, 30)))
    clock.advance(60)
    c1 = await queued_while(comment("c1"))
    clock.advance(60)

    def within(value: str, bounds: tuple[float, float]) -> bool:
        at = datetime.fromisoformat(value).timestamp()
        return int(bounds[0] * 1000) / 1000 <= at <= bounds[1]

    for order in ("oldest", "priority"):
        response = await client.get(f"/v1/sites/held/queue?order={order}", headers=moderator(site))
        assert response.status == 200, await response.text()
        queued = {item["id"]: item["queued_at"] for item in (await response.json())["items"]}
        assert queued.keys() == {"c0", "c1"}
        assert within(queued["c0"], c0), queued
        assert within(queued["c1"], c1), queued
    single = await (await client.get("/v1/sites/held/comments/c0", headers=moderator(site))).json()
    assert single["queued_at"] == queued["c0"]
    claimed = await client.post(
        "/v1/sites/held/comments/c0/claim", json={}, headers=moderator(site)
    )
    assert claimed.status == 200, await claimed.text()
    assert (await claimed.json())["queued_at"] == queued["c0"]
    # Decided, it waits in no queue; reopened, it waits from then.
    decided = await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert decided.status == 200, await decided.text()
    assert "queued_at" not in await decided.json()
    clock.advance(60)
    before = clock()
    reopened = await client.post(
        "/v1/sites/held/comments/c0/decision", json={"action": "reopen"}, headers=moderator(site)
    )
    assert within((await reopened.json())["queued_at"], (before, clock()))


async def test_queue_items_carry_the_priority_the_risk_order_sorts_by(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    for comment_id in TEXTS:
        assert (await post_signed(site, comment(comment_id))).status == 202
    response = await client.get("/v1/sites/held/queue?order=priority", headers=moderator(site))
    assert response.status == 200, await response.text()
    listed = (await response.json())["items"]
    assert [item["priority"] for item in listed] == [
        max(item["scores"].values()) for item in listed
    ]
    assert [item["priority"] for item in listed] == sorted(
        (item["priority"] for item in listed), reverse=True
    )
    single = await (
        await client.get(f"/v1/sites/held/comments/{listed[0]['id']}", headers=moderator(site))
    ).json()
    assert single["priority"] == listed[0]["priority"]
