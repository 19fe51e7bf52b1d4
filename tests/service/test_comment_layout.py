"""A comment's text lives in its own key and each score in its own field, so the comment hash
stays a compact listpack; comments stored before, text and scores JSON inside the hash, still
read, list, claim, decide, edit and erase exactly as before."""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from service.admin_store import ERASE_BATCH, AdminStore
from service.domain import Comment, Order, Queue, QueueQuery
from service.store import Store
from service.store.records import Observation
from tests.records import list_moderators, site_record
from tests.service.test_store import KEYS, NOW, SITE, decision, intake

LONG_TEXT = "A long and considered reply about the harbour budget, line after line. " * 30
SCORES = {
    "spam": 0.012345678901234567,
    "toxicity": 0.7345678901234567,
    "severe_toxicity": 1e-07,
    "insult": 0.3333333333333333,
    "threat": 0.0,
    "identity_attack": 0.25,
    "profanity": 0.999999999999,
}


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> Store:
    store = Store(redis_client, prefix="civ")
    await store.create_site(site_record(SITE, NOW))
    await list_moderators(store, SITE, "mod_x")
    return store


async def write(
    store: Store, comment_id: str, text: str = LONG_TEXT, *, edit: bool = False
) -> Comment:
    _, comment = await store.write_intake(
        SITE,
        replace(
            intake(comment_id, text=text, assumed=Observation(edit=edit)),
            scores=SCORES,
            text_hash=hashlib.sha256(text.encode()).hexdigest(),
            event_id=f"evt_{hashlib.sha256(text.encode()).hexdigest()[:24]}",
        ),
    )
    return comment


async def store_the_old_way(redis: aioredis.Redis, comment_id: str) -> None:
    """Rewrite a comment as the ingest script stored it before: text and scores JSON in the hash."""
    key = KEYS.comment(SITE, comment_id)
    fields = cast(dict[str, str], await redis.hgetall(key))
    scores = {name[6:]: float(value) for name, value in fields.items() if name.startswith("score:")}
    text = cast(str, await redis.get(KEYS.comment_text(SITE, comment_id)))
    await redis.hdel(key, *(name for name in fields if name.startswith("score:")))
    await redis.hset(key, mapping={"text": text, "scores": json.dumps(scores)})
    await redis.delete(KEYS.comment_text(SITE, comment_id))


async def test_a_long_comment_keeps_a_listpack_hash_and_every_score_exactly(
    store: Store, redis_client: aioredis.Redis
) -> None:
    written = await write(store, "c1")
    assert await redis_client.object("encoding", KEYS.comment(SITE, "c1")) == "listpack"
    assert await redis_client.get(KEYS.comment_text(SITE, "c1")) == LONG_TEXT
    read = await store.comment(SITE, "c1", NOW)
    assert read.text == LONG_TEXT
    assert read.scores == SCORES
    assert list(read.scores) == list(SCORES)
    assert read.model_dump(exclude={"history", "reports"}) == written.model_dump(
        exclude={"history", "reports"}
    )


async def test_a_comment_stored_the_old_way_reads_lists_claims_and_decides_the_same(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await write(store, "new")
    await write(store, "old")
    await store_the_old_way(redis_client, "old")
    assert await redis_client.hget(KEYS.comment(SITE, "old"), "text") == LONG_TEXT

    def same(comment: Comment) -> dict[str, object]:
        return comment.model_dump(exclude={"id"})

    new, old = await store.comment(SITE, "new", NOW), await store.comment(SITE, "old", NOW)
    assert same(old) == same(new)
    assert (old.text, old.scores) == (LONG_TEXT, SCORES)

    page = await store.page(SITE, QueueQuery(queue=Queue.PENDING, order=Order.OLDEST), NOW)
    listed = {comment.id: comment for comment in page.items}
    assert same(listed["old"]) == same(listed["new"])
    assert (listed["old"].text, listed["old"].scores) == (LONG_TEXT, SCORES)

    claimed = await store.claim(SITE, "mod_x", Queue.PENDING, Order.OLDEST, 2, 60_000, NOW)
    by_id = {comment.id: comment for comment in claimed}
    assert same(by_id["old"]) == same(by_id["new"])

    decided_new = await store.decide(SITE, decision("new", actor="mod_x"))
    decided_old = await store.decide(SITE, decision("old", actor="mod_x"))
    assert same(decided_old) == same(decided_new)
    assert decided_old.text == LONG_TEXT


async def test_an_edit_of_an_old_comment_moves_it_to_the_compact_layout(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await write(store, "old")
    await store_the_old_way(redis_client, "old")
    await write(store, "old", text="A shorter second thought.", edit=True)
    key = KEYS.comment(SITE, "old")
    assert not await redis_client.hexists(key, "text")
    assert not await redis_client.hexists(key, "scores")
    read = await store.comment(SITE, "old", NOW)
    assert (read.text, read.scores, read.version) == ("A shorter second thought.", SCORES, 2)
    assert read.history is not None
    assert read.history[-1].previous_text == LONG_TEXT


async def test_erasure_empties_the_text_of_either_layout(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await write(store, "new")
    await write(store, "old")
    await store_the_old_way(redis_client, "old")
    erased = await AdminStore(redis_client, prefix="civ").erase_author(SITE, "u1", NOW)
    assert sorted(erased) == ["new", "old"]
    for comment_id in ("new", "old"):
        assert (await store.comment(SITE, comment_id, NOW)).text == ""


async def test_erasure_leaves_no_text_hash_no_text_field_and_no_replaced_text(
    store: Store, redis_client: aioredis.Redis
) -> None:
    await write(store, "edited")
    await write(store, "edited", text="A shorter second thought.", edit=True)
    erased = await AdminStore(redis_client, prefix="civ").erase_author(SITE, "u1", NOW)
    assert erased == ["edited"]
    key = KEYS.comment(SITE, "edited")
    assert await redis_client.hget(key, "text_hash") == ""
    # The text is emptied where it lives, its own key; the hash gains no text field.
    assert not await redis_client.hexists(key, "text")
    read = await store.comment(SITE, "edited", NOW)
    assert read.text == ""
    assert read.history is not None
    assert [entry.previous_text for entry in read.history] == [None, None]
    assert read.version == 2


async def test_erasure_and_reindexing_reach_every_comment_past_one_batch(
    store: Store, redis_client: aioredis.Redis
) -> None:
    count = 2 * ERASE_BATCH + 3
    for number in range(count):
        await write(store, f"c{number}", text=f"Comment number {number}.")
    # Half of them by another author, whom the erasure must not touch.
    async with redis_client.pipeline(transaction=False) as pipe:
        for number in range(1, count, 2):
            pipe.hset(KEYS.comment(SITE, f"c{number}"), "author_id", "u2")
        await pipe.execute()
    admin = AdminStore(redis_client, prefix="civ")
    # Each script call is handed one full batch of comment hashes, the rest in a last call.
    batches: list[tuple[str, int]] = []
    run, run_with_library = admin._run, admin._run_with_library

    async def counted(name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        batches.append((name, len(keys)))
        return await (run_with_library if name == "reindex" else run)(name, keys, args)

    admin._run = admin._run_with_library = counted
    erased = await admin.erase_author(SITE, "u1", NOW)
    assert sorted(erased) == sorted(f"c{number}" for number in range(0, count, 2))
    assert (await store.comment(SITE, "c1", NOW)).text == "Comment number 1."
    assert await admin.reindex(SITE) == count
    for name in ("erase_author", "reindex"):
        sizes = [size for called, size in batches if called == name]
        assert sizes == [ERASE_BATCH, ERASE_BATCH, 3]
