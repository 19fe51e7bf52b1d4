"""Each open event stream holds a Redis connection, so an API process keeps at most
CIVILITY_EVENT_STREAMS_MAX open, at most CIVILITY_EVENT_STREAMS_PER_SITE of them for one site and
CIVILITY_EVENT_STREAMS_PER_MODERATOR for one moderator of it: one more is refused at once (503
streams_busy, Retry-After), other requests and other sites' and moderators' streams go on being
answered, and a stream gives its place back however it ends.

The server here runs as ``civility serve`` runs it: a client going away does not cancel the
handler (aiohttp's test server would), so the stream has to notice by itself."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from service.app import create_app
from service.appkeys import EVENT_STREAMS
from service.event_streams import StreamPlaces
from service.settings import Settings
from tests.clocks import Clock
from tests.service.api.conftest import api_settings
from tests.service.api.openapi_check import validating
from tests.service.api.test_api_events import next_frame, open_stream
from tests.service.api.test_api_moderation import held_site, second_moderator

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
STREAMS_MAX = 3
PER_SITE = 2
PER_MODERATOR = 1


class ServedServer(TestServer):
    """The test server without handler cancellation, as ``civility serve`` runs the app."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return dataclasses.replace(
        api_settings(redis_url),
        event_streams_max=STREAMS_MAX,
        event_streams_per_site=PER_SITE,
        event_streams_per_moderator=PER_MODERATOR,
    )


@pytest.fixture
async def client(
    settings: Settings, redis_client: aioredis.Redis, clock: Clock
) -> AsyncIterator[Client]:
    # redis_client flushes this test's database before and after the test.
    client = Client(ServedServer(create_app(settings, clock=clock)))
    await client.start_server()
    validating(client)
    try:
        yield client
    finally:
        await client.close()


def given_back(places: StreamPlaces, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set once a stream gives its place back."""
    freed = asyncio.Event()
    give_back = places.give_back

    def noted(site: str, moderator: str) -> None:
        give_back(site, moderator)
        freed.set()

    monkeypatch.setattr(places, "give_back", noted)
    return freed


async def refused(client: Client, site_id: str, headers: dict[str, str]) -> str:
    """The message of a stream refused with 503 streams_busy and Retry-After."""
    response = await client.get(f"/v1/sites/{site_id}/events", headers=headers)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    error = (await response.json())["error"]
    assert error["code"] == "streams_busy"
    message: str = error["message"]
    return message


async def test_a_stream_past_the_bound_is_refused_and_a_closed_one_frees_its_place(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_site(create_site, post_signed)
    other = await create_site("other", mode="pre")
    mo = moderator(site)
    places = client.app[EVENT_STREAMS]
    streams = [await open_stream(client, mo), await open_stream(client, admin)]
    others = [await open_stream(client, moderator(other), site_id="other")]
    assert places.taken == STREAMS_MAX

    # The other site and the admin are within their shares: the process's bound refuses them.
    assert "CIVILITY_EVENT_STREAMS_MAX" in await refused(client, "other", admin)
    assert places.taken == STREAMS_MAX
    assert places.by_site == {"held": PER_SITE, "other": 1}

    # The streams leave the rest of the connections to every other request.
    queue = await client.get("/v1/sites/held/queue", headers=mo)
    assert queue.status == 200
    claim = {"limit": 1, "order": "oldest"}
    assert (await client.post("/v1/sites/held/queue/claim", json=claim, headers=mo)).status == 200
    for stream in streams:
        assert (await next_frame(stream))["event"] == "comment.claimed"

    # The client goes away without a word; its stream notices within a read's wait.
    freed = given_back(places, monkeypatch)
    others[0].close()
    async with asyncio.timeout(10):
        await freed.wait()
    assert places.taken == STREAMS_MAX - 1
    assert places.by_site == {"held": PER_SITE}
    others[0] = await open_stream(client, moderator(other), site_id="other")
    assert places.taken == STREAMS_MAX
    for stream in streams + others:
        stream.close()


async def test_one_site_holds_at_most_its_share_and_the_others_still_go_live(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_site(create_site, post_signed)
    other = await create_site("other", mode="pre")
    places = client.app[EVENT_STREAMS]
    second = await second_moderator(client, admin, "held")
    # A moderator's console and the admin's together: the site's share, not the process's.
    streams = [await open_stream(client, moderator(site)), await open_stream(client, admin)]
    assert "CIVILITY_EVENT_STREAMS_PER_SITE" in await refused(client, "held", second)
    assert places.taken == PER_SITE < STREAMS_MAX

    # A place is still free for another site's console.
    live = await open_stream(client, moderator(other), site_id="other")
    assert places.by_site == {"held": PER_SITE, "other": 1}

    # Closing one of the site's streams gives the site its place back.
    freed = given_back(places, monkeypatch)
    streams[0].close()
    async with asyncio.timeout(10):
        await freed.wait()
    assert places.by_site == {"held": PER_SITE - 1, "other": 1}
    streams[0] = await open_stream(client, second)
    assert places.by_site == {"held": PER_SITE, "other": 1}
    for stream in [*streams, live]:
        stream.close()


async def test_one_moderator_holds_at_most_their_share_and_the_others_still_go_live(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_site(create_site, post_signed)
    second = await second_moderator(client, admin, "held")
    places = client.app[EVENT_STREAMS]
    tabs = [await open_stream(client, moderator(site)) for _ in range(PER_MODERATOR)]
    # One more console tab of the same moderator: the site has room, the moderator has not.
    message = await refused(client, "held", moderator(site))
    assert "CIVILITY_EVENT_STREAMS_PER_MODERATOR" in message
    assert places.by_site == {"held": PER_MODERATOR}
    assert PER_MODERATOR < PER_SITE

    # The site's other moderator still goes live.
    colleague = await open_stream(client, second)
    assert places.by_site == {"held": PER_MODERATOR + 1}

    # Closing the moderator's tab gives the moderator their place back.
    mine = ("held", site["moderator_id"])
    assert places.by_moderator[mine] == PER_MODERATOR
    freed = given_back(places, monkeypatch)
    tabs[0].close()
    async with asyncio.timeout(10):
        await freed.wait()
    assert mine not in places.by_moderator
    assert sum(places.by_moderator.values()) == 1
    tabs[0] = await open_stream(client, moderator(site))
    assert places.by_moderator[mine] == PER_MODERATOR
    for stream in [*tabs, colleague]:
        stream.close()


async def test_streams_stopped_by_the_server_shutting_down_give_their_places_back(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
) -> None:
    site = await held_site(create_site, post_signed)
    other = await create_site("other", mode="pre")
    places = client.app[EVENT_STREAMS]
    streams = [await open_stream(client, moderator(site)), await open_stream(client, admin)]
    streams.append(await open_stream(client, moderator(other), site_id="other"))
    assert places.taken == STREAMS_MAX

    await client.close()
    assert places.taken == 0
    assert places.by_site == {}
    assert places.by_moderator == {}
    for stream in streams:
        stream.close()


async def test_a_stream_ended_by_revocation_gives_its_place_back(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Headers,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = await held_site(create_site, post_signed)
    places = client.app[EVENT_STREAMS]
    second = await second_moderator(client, admin, "held")
    revoked_stream = await open_stream(client, moderator(site))
    admin_stream = await open_stream(client, admin)
    await refused(client, "held", second)

    freed = given_back(places, monkeypatch)
    revoked = await client.delete(
        f"/v1/sites/held/moderators/{site['moderator_id']}", headers=admin
    )
    assert revoked.status == 204
    assert (await next_frame(revoked_stream))["event"] == "error"
    async with asyncio.timeout(10):
        await freed.wait()
    assert places.taken == PER_SITE - 1
    assert places.by_site == {"held": PER_SITE - 1}
    another = await open_stream(client, second)
    for stream in (revoked_stream, admin_stream, another):
        stream.close()


async def test_a_refused_stream_says_when_to_retry_in_the_document(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    busy = document["paths"]["/v1/sites/{site}/events"]["get"]["responses"]["503"]
    assert "streams_busy" in busy["description"]
    assert "Retry-After" in busy["headers"]
