"""The live event stream on a Redis client whose socket timeout is shorter than a quiet read."""

import dataclasses
from typing import Any

import pytest

from service.appkeys import MODERATION
from service.settings import Settings
from tests.service.api.conftest import Client, api_settings
from tests.service.api.test_api_events import next_frame, open_stream
from tests.service.api.test_api_moderation import TEXTS
from tests.service.worker.support import eventually

SOCKET_TIMEOUT_SECONDS = 0.9
"""Allowed (CIVILITY_REDIS_SOCKET_TIMEOUT_SECONDS takes 0.05 to 60), and below the one second
a quiet stream's read used to wait for news."""


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return dataclasses.replace(
        api_settings(redis_url), redis_socket_timeout_seconds=SOCKET_TIMEOUT_SECONDS
    )


async def test_a_quiet_stream_outlives_a_short_redis_socket_timeout(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await create_site("held", mode="pre")
    store = client.app[MODERATION].store
    read = store.events_after
    quiet_reads: list[int] = []

    async def counted(site_id: str, after_id: str, *, block_ms: int) -> Any:
        entries = await read(site_id, after_id, block_ms=block_ms)
        if not entries:
            quiet_reads.append(block_ms)
        return entries

    monkeypatch.setattr(store, "events_after", counted)
    stream = await open_stream(client, moderator(site))

    async def waited_quietly() -> bool:
        return len(quiet_reads) >= 3

    # Reads that found no news came back within the timeout, and the stream is still open.
    await eventually(waited_quietly, within=15, what="three quiet reads")
    new_comment = {"id": "c1", "article": {"id": "a1"}, "author": {"id": "n"}, "text": TEXTS[0]}
    assert (await post_signed(site, new_comment)).status == 202
    created = await next_frame(stream)
    assert created["event"] == "comment.changed"
    assert (created["data"]["comment_id"], created["data"]["action"]) == ("c1", "create")
    stream.close()
