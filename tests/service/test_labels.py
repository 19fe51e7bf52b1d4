"""The label log on a real Redis: entries round-trip, the log is bounded, bad ones write nothing."""

from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.keys import KeySpace
from service.labels import EXPORT_PAGE, LabelLog


async def exported(log: LabelLog, site: str) -> list[dict[str, Any]]:
    return [entry async for entry in log.export(site)]


async def test_an_entry_round_trips_with_its_source_model_and_time(
    redis_client: aioredis.Redis,
) -> None:
    log = LabelLog(redis_client)
    at = datetime(2026, 11, 27, 9, 0, 0, 250_000, tzinfo=UTC)
    entry_id = await log.record(
        "news",
        "Buy cheap watches now",
        {"spam": 1},
        "akismet.submit-spam",
        "1.0.0",
        comment_id="c-42",
        at=at,
    )
    [entry] = await exported(log, "news")
    assert entry == {
        "id": entry_id,
        "site": "news",
        "text": "Buy cheap watches now",
        "labels": {"spam": 1},
        "source": "akismet.submit-spam",
        "model": "1.0.0",
        "comment_id": "c-42",
        "reason": None,
        "author": None,
        "at": "2026-11-27T09:00:00.250Z",
    }
    assert await redis_client.exists(KeySpace().labels("news")) == 1


async def test_sites_keep_separate_logs_in_their_own_hash_slot(
    redis_client: aioredis.Redis,
) -> None:
    log = LabelLog(redis_client)
    await log.record("news", "fine words", {"toxicity": 0}, "perspective.suggestscore", None)
    await log.record("blog", "awful words", {"toxicity": 1}, "perspective.suggestscore", None)
    news = await exported(log, "news")
    assert [(entry["text"], entry["model"], entry["comment_id"]) for entry in news] == [
        ("fine words", None, None)
    ]
    assert [entry["labels"] for entry in await exported(log, "blog")] == [{"toxicity": 1}]
    assert KeySpace().labels("news").startswith("civ:{news}:")


async def test_export_pages_through_every_entry_oldest_first(
    redis_client: aioredis.Redis,
) -> None:
    log = LabelLog(redis_client)
    total = EXPORT_PAGE * 2 + 3
    for number in range(total):
        await log.record("news", f"text {number}", {"spam": number % 2}, "moderator", "1.0.0")
    texts = [entry["text"] for entry in await exported(log, "news")]
    assert texts == [f"text {number}" for number in range(total)]


async def test_erasing_an_author_deletes_their_entries_and_reading_resumes_after_an_id(
    redis_client: aioredis.Redis,
) -> None:
    log = LabelLog(redis_client)
    kept = await log.record("news", "mine", {"toxicity": 0}, "moderator", None, author_id="ann")
    await log.record("news", "theirs", {"toxicity": 1}, "moderator", None, author_id="bob")
    await log.record("news", "again", {"toxicity": 0}, "moderator", None, author_id="bob")
    await log.record("blog", "elsewhere", {"toxicity": 1}, "moderator", None, author_id="bob")
    assert await log.forget_author("news", "bob") == 2
    assert [entry["text"] for entry in await exported(log, "news")] == ["mine"]
    assert [entry["author"] for entry in await exported(log, "blog")] == ["bob"]
    later = await log.record("news", "later", {"spam": 1}, "moderator", None)
    assert [entry["id"] async for entry in log.export("news", after=kept)] == [later]


async def test_the_log_keeps_about_the_newest_entries(redis_client: aioredis.Redis) -> None:
    log = LabelLog(redis_client, max_entries=10)
    for number in range(500):
        await log.record("news", f"text {number}", {"spam": 0}, "moderator", None)
    kept = await exported(log, "news")
    # Trimming is approximate (whole stream nodes go at once), but it is a bound.
    assert 10 <= len(kept) < 500
    assert kept[-1]["text"] == "text 499"
    assert await log.count("news") == len(kept)


@pytest.mark.parametrize(
    ("text", "labels", "source", "comment_id"),
    [
        ("", {"spam": 1}, "moderator", None),
        ("x" * 20_001, {"spam": 1}, "moderator", None),
        ("text", {}, "moderator", None),
        ("text", {"spam": 2}, "moderator", None),
        ("text", {"spam": True}, "moderator", None),
        ("text", {"Not A Label": 1}, "moderator", None),
        ("text", {"spam": 1}, "", None),
        ("text", {"spam": 1}, "Who Knows", None),
        ("text", {"spam": 1}, "moderator", ""),
    ],
)
async def test_an_entry_that_cannot_train_anything_is_refused_and_nothing_is_written(
    redis_client: aioredis.Redis,
    text: str,
    labels: dict[str, int],
    source: str,
    comment_id: str | None,
) -> None:
    log = LabelLog(redis_client)
    with pytest.raises(ValueError, match=r"text|label|source|comment id"):
        await log.record("news", text, labels, source, None, comment_id=comment_id)
    assert await exported(log, "news") == []


def test_a_log_needs_room_for_one_entry(redis_client: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LabelLog(redis_client, max_entries=0)
