"""Akismet's 1.1 API end to end, driven by the real ``akismet`` client (sync and async).

The client only talks to ``https://rest.akismet.com``; an httpx transport hands its requests to
the test server instead, so every byte on the wire is what the real client sends.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote_from_bytes, urlencode

import akismet
import httpx
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from service.compat.akismet import BLATANT_SPAM_SCORE, MAX_FORM_BYTES, THANKS
from service.compat.akismet_usage import month_of
from service.domain import MAX_TEXT
from service.keys import KeySpace
from service.labels import LabelLog
from service.times import to_ms
from tests.clocks import Clock

Client = TestClient[web.Request, web.Application]
KEYS = KeySpace()
COUNTS = ("api_calls", "spam", "ham", "missed_spam", "false_positives")
BLOG = "https://blog.example"
CIVIL = "A calm remark about the harbour and its boats."
SPAMMY = "BUY CHEAP VIAGRA NOW!!! http://spam.example/pills http://x.example best price click here"
# A reader's complaint to the editors: toxic enough to reject as a comment, and no spam.
RUDE = "You are a bunch of useless morons. The article about the harbour closure is full of lies."
VISITOR = {
    "comment_type": "comment",
    "comment_author": "Ada Reader",
    "comment_author_email": "ada@example.org",
    "comment_author_url": "https://ada.example",
    "permalink": f"{BLOG}/2026/11/harbour",
    "referrer": f"{BLOG}/",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "blog_lang": "en_us",
    "blog_charset": "UTF-8",
}


class SyncToTestServer(httpx.BaseTransport):
    """Sends every request to the test server, whatever host the client addressed."""

    def __init__(self, base: httpx.URL) -> None:
        self.base = base
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self.base.scheme, host=self.base.host, port=self.base.port
        )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncToTestServer(httpx.AsyncBaseTransport):
    def __init__(self, base: httpx.URL) -> None:
        self.base = base
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self.base.scheme, host=self.base.host, port=self.base.port
        )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Clients:
    """The sync client (run in a thread: the server shares this event loop) and the async one,
    behind one awaitable interface so every test runs against both."""

    def __init__(
        self, base: httpx.URL, key: str, *, use_async: bool, params: dict[str, str] | None = None
    ) -> None:
        config = akismet.Config(key=key, url=BLOG)
        self.use_async = use_async
        self.sync = akismet.SyncClient(
            config=config,
            http_client=httpx.Client(transport=SyncToTestServer(base), timeout=30, params=params),
        )
        self.aio = akismet.AsyncClient(
            config=config,
            http_client=httpx.AsyncClient(
                transport=AsyncToTestServer(base), timeout=30, params=params
            ),
        )

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.use_async:
            return await getattr(self.aio, method)(*args, **kwargs)
        return await asyncio.to_thread(getattr(self.sync, method), *args, **kwargs)

    async def close(self) -> None:
        self.sync._http_client.close()
        await self.aio._http_client.aclose()


@pytest.fixture(params=["sync", "async"])
async def akismet_for(
    request: pytest.FixtureRequest, client: Client
) -> AsyncIterator[Callable[..., Clients]]:
    base = httpx.URL(str(client.make_url("/")))
    made: list[Clients] = []

    def make(key: str, params: dict[str, str] | None = None) -> Clients:
        made.append(Clients(base, key, use_async=request.param == "async", params=params))
        return made[-1]

    yield make
    for clients in made:
        await clients.close()


async def keys_of(redis_client: aioredis.Redis) -> set[str]:
    return {key async for key in redis_client.scan_iter("*")}


async def labels_of(redis_client: aioredis.Redis, site: str = "news") -> list[dict[str, Any]]:
    return [entry async for entry in LabelLog(redis_client).export(site)]


async def form(client: Client, path: str, fields: dict[str, str]) -> ClientResponse:
    return await client.post(path, data=fields)


def check_fields(site: dict[str, str], **fields: str) -> dict[str, str]:
    return {"api_key": site["api_key"], "blog": BLOG, "user_ip": "203.0.113.7", **fields}


# ---------------------------------------------------------------- the real client


async def test_verify_key_says_valid_for_a_sites_key_only(
    akismet_for: Callable[..., Clients], site: dict[str, str]
) -> None:
    assert await akismet_for(site["api_key"]).call("verify_key") is True
    assert await akismet_for("not-a-key").call("verify_key") is False
    assert await akismet_for("x").call("verify_key", site["api_key"], BLOG) is True


async def test_a_held_comment_is_spam_to_the_client_so_it_stays_unpublished(
    akismet_for: Callable[..., Clients],
    create_site: Any,
    client: Client,
    moderator: Any,
) -> None:
    site = await create_site("news", mode="pre")
    verdict = await akismet_for(site["api_key"]).call(
        "comment_check", "203.0.113.7", comment_content=CIVIL, **VISITOR
    )
    # Held for a moderator: Akismet has no "held", and a client publishes ham at once.
    assert verdict == akismet.CheckResponse.SPAM
    queue = await (await client.get("/v1/sites/news/queue", headers=moderator(site))).json()
    [item] = queue["items"]
    assert (item["text"], item["state"]) == (CIVIL, "pending")
    assert "PREMOD" in item["reasons"]
    assert item["author"]["name"] == "Ada Reader"
    assert item["author"]["email"] == "ada@example.org"
    assert item["author"]["ip"] == "203.0.113.7"
    assert item["id"].startswith("akismet-")


async def test_a_comment_the_policy_stops_is_spam(
    akismet_for: Callable[..., Clients], create_site: Any, client: Client, moderator: Any
) -> None:
    site = await create_site("news", banned_words=["harbour"])
    verdict = await akismet_for(site["api_key"]).call(
        "comment_check", "203.0.113.7", comment_content=CIVIL, **VISITOR
    )
    assert verdict == akismet.CheckResponse.SPAM
    page = await client.get("/v1/sites/news/queue", headers=moderator(site))
    assert (await page.json())["items"] == []


@pytest.mark.parametrize(
    "trigger",
    [
        {"comment_author": "akismet-guaranteed-spam"},
        {"comment_author_email": "akismet-guaranteed-spam@example.com"},
    ],
)
async def test_akismets_spam_triggers_answer_spam_and_store_nothing(
    akismet_for: Callable[..., Clients],
    site: dict[str, str],
    redis_client: aioredis.Redis,
    trigger: dict[str, str],
) -> None:
    before = await keys_of(redis_client)
    fields = {**VISITOR, **trigger}
    verdict = await akismet_for(site["api_key"]).call(
        "comment_check", "203.0.113.7", comment_content=CIVIL, **fields
    )
    assert verdict == akismet.CheckResponse.SPAM
    assert await keys_of(redis_client) == before


# WordPress sends every role of the user, comma-separated (a network's super admin too).
@pytest.mark.parametrize("role", ["administrator", "editor,administrator,super_admin"])
async def test_an_administrator_is_ham_even_where_the_policy_would_stop_the_text(
    akismet_for: Callable[..., Clients],
    create_site: Any,
    redis_client: aioredis.Redis,
    role: str,
) -> None:
    site = await create_site("news", banned_words=["harbour"])
    before = await keys_of(redis_client)
    verdict = await akismet_for(site["api_key"]).call(
        "comment_check", "203.0.113.7", comment_content=CIVIL, user_role=role
    )
    assert verdict == akismet.CheckResponse.HAM
    assert await keys_of(redis_client) == before


async def test_a_test_check_gets_the_policys_answer_and_stores_nothing(
    akismet_for: Callable[..., Clients], create_site: Any, redis_client: aioredis.Redis
) -> None:
    site = await create_site("news", banned_words=["harbour"])
    before = await keys_of(redis_client)
    clients = akismet_for(site["api_key"])
    stopped = await clients.call(
        "comment_check", "203.0.113.7", comment_content=CIVIL, is_test=True
    )
    assert stopped == akismet.CheckResponse.SPAM
    published = await clients.call(
        "comment_check", "203.0.113.7", comment_content="Lovely photos.", is_test=True
    )
    assert published == akismet.CheckResponse.HAM
    assert await keys_of(redis_client) == before


async def test_obvious_spam_is_spam_and_blatant_spam_says_discard(
    akismet_for: Callable[..., Clients], create_site: Any, client: Client, moderator: Any
) -> None:
    site = await create_site("news", hold={"spam": 0.5}, reject={"spam": 0.5})
    verdict = await akismet_for(site["api_key"]).call(
        "comment_check", "198.51.100.2", comment_content=SPAMMY, comment_author="Pills"
    )
    page = await client.get("/v1/sites/news/queue?limit=5", headers=moderator(site))
    assert (await page.json())["items"] == []  # spam is not held for anyone
    response = await form(
        client,
        "/1.1/comment-check",
        check_fields(site, user_ip="198.51.100.2", comment_content=SPAMMY, comment_author="Pills"),
    )
    comment_id = response.headers["X-akismet-guid"]
    stored = await (
        await client.get(f"/v1/sites/news/comments/{comment_id}", headers=moderator(site))
    ).json()
    assert stored["state"] == "spam"
    blatant = stored["scores"]["spam"] >= BLATANT_SPAM_SCORE
    assert verdict == (akismet.CheckResponse.DISCARD if blatant else akismet.CheckResponse.SPAM)


async def test_submit_spam_and_ham_keep_training_labels(
    akismet_for: Callable[..., Clients], site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    clients = akismet_for(site["api_key"])
    assert await clients.call("submit_spam", "198.51.100.2", comment_content=SPAMMY) is True
    assert await clients.call("submit_ham", "203.0.113.7", comment_content=CIVIL, **VISITOR)
    assert await clients.call("submit_ham", "203.0.113.7", comment_content=CIVIL, is_test=True)
    entries = await labels_of(redis_client)
    assert [(entry["text"], entry["labels"], entry["source"]) for entry in entries] == [
        (SPAMMY, {"spam": 1}, "akismet.submit-spam"),
        (CIVIL, {"spam": 0}, "akismet.submit-ham"),
    ]
    assert all(entry["model"] and entry["comment_id"].startswith("akismet-") for entry in entries)


async def test_a_submission_is_dated_by_the_services_clock(
    akismet_for: Callable[..., Clients],
    site: dict[str, str],
    redis_client: aioredis.Redis,
    clock: Clock,
) -> None:
    clock.advance(30 * 24 * 3600)
    clients = akismet_for(site["api_key"])
    before_ms = int(clock() * 1000)
    assert await clients.call("submit_spam", "198.51.100.2", comment_content=SPAMMY) is True
    assert await clients.call("submit_ham", "203.0.113.7", comment_content=CIVIL, **VISITOR)
    entries = await labels_of(redis_client)
    assert len(entries) == 2
    for entry in entries:
        assert before_ms <= to_ms(datetime.fromisoformat(entry["at"])) <= clock() * 1000


async def test_a_wrong_key_raises_the_clients_key_error(
    akismet_for: Callable[..., Clients], site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    clients = akismet_for("wrong-key")
    with pytest.raises(akismet.APIKeyError):
        await clients.call("comment_check", "203.0.113.7", comment_content=CIVIL)
    with pytest.raises(akismet.APIKeyError):
        await clients.call("submit_spam", "203.0.113.7", comment_content=CIVIL)
    assert await labels_of(redis_client) == []


async def test_the_validated_constructor_refuses_a_wrong_key(
    client: Client, site: dict[str, str]
) -> None:
    base = httpx.URL(str(client.make_url("/")))
    http_client = httpx.AsyncClient(transport=AsyncToTestServer(base), timeout=30)
    with pytest.raises(akismet.APIKeyError):
        await akismet.AsyncClient.validated_client(
            config=akismet.Config(key="wrong", url=BLOG), http_client=http_client
        )
    good = await akismet.AsyncClient.validated_client(
        config=akismet.Config(key=site["api_key"], url=BLOG), http_client=http_client
    )
    assert (
        await good.comment_check("203.0.113.7", comment_content=CIVIL) == akismet.CheckResponse.HAM
    )
    await http_client.aclose()


async def outbox_types(redis_client: aioredis.Redis, site_id: str) -> list[str]:
    entries = cast(
        list[tuple[str, dict[str, str]]], await redis_client.xrange(KEYS.outbox(site_id))
    )
    return [fields["type"] for _, fields in entries]


@pytest.mark.parametrize(
    ("method", "state", "event", "label"),
    [
        ("submit_ham", "approved", "comment.approved", {"spam": 0, "toxicity": 0}),
        ("submit_spam", "spam", "comment.spam", {"spam": 1}),
    ],
)
async def test_a_clients_correction_decides_the_held_comment(
    akismet_for: Callable[..., Clients],
    create_site: Any,
    client: Client,
    moderator: Any,
    redis_client: aioredis.Redis,
    method: str,
    state: str,
    event: str,
    label: dict[str, int],
) -> None:
    site = await create_site("news", mode="pre")
    clients = akismet_for(site["api_key"])
    assert (
        await clients.call("comment_check", "203.0.113.7", comment_content=CIVIL, **VISITOR)
        == akismet.CheckResponse.SPAM
    )
    # WordPress's moderator moves it out of (or keeps it in) the spam folder: the same fields.
    assert await clients.call(method, "203.0.113.7", comment_content=CIVIL, **VISITOR) is True
    queue = await (await client.get("/v1/sites/news/queue", headers=moderator(site))).json()
    assert queue["items"] == []
    [entry] = await labels_of(redis_client)
    stored = await (
        await client.get(f"/v1/sites/news/comments/{entry['comment_id']}", headers=moderator(site))
    ).json()
    assert (stored["state"], stored["decided_by"], stored["version"]) == (state, "akismet", 2)
    assert stored["history"][-1]["reasons"] == [f"akismet.{method.replace('_', '-')}"]
    assert await outbox_types(redis_client, "news") == ["comment.held", event]
    assert entry["labels"] == label
    # A second, identical correction changes nothing more.
    assert await clients.call(method, "203.0.113.7", comment_content=CIVIL, **VISITOR) is True
    assert await outbox_types(redis_client, "news") == ["comment.held", event]


async def checked_and_claimed(
    clients: Clients, client: Client, headers: dict[str, str]
) -> dict[str, Any]:
    """A visitor's comment checked (and held: the site pre-moderates), then claimed by a
    moderator; the claimed queue item."""
    await clients.call("comment_check", "203.0.113.7", comment_content=CIVIL, **VISITOR)
    claim = await client.post("/v1/sites/news/queue/claim", json={"limit": 1}, headers=headers)
    assert claim.status == 200, await claim.text()
    [held] = (await claim.json())["items"]
    return cast(dict[str, Any], held)


async def test_a_correction_leaves_a_claimed_comment_to_its_moderator(
    akismet_for: Callable[..., Clients], create_site: Any, client: Client, moderator: Any
) -> None:
    site = await create_site("news", mode="pre")
    clients = akismet_for(site["api_key"])
    await checked_and_claimed(clients, client, moderator(site))
    assert await clients.call("submit_ham", "203.0.113.7", comment_content=CIVIL, **VISITOR)
    queue = await (await client.get("/v1/sites/news/queue", headers=moderator(site))).json()
    assert [item["state"] for item in queue["items"]] == ["pending"]


async def test_a_moderators_reason_on_two_lines_reaches_the_client_on_one(
    client: Client, create_site: Any, moderator: Any
) -> None:
    site = await create_site("news", mode="pre")
    fields = check_fields(site, comment_content=CIVIL, **VISITOR)
    held = await form(client, "/1.1/comment-check", fields)
    guid = held.headers["X-akismet-guid"]
    decided = await client.post(
        f"/v1/sites/news/comments/{guid}/decision",
        json={"action": "reject", "reason": "Off topic\r\nsee the rules"},
        headers=moderator(site),
    )
    assert decided.status == 200, await decided.text()
    again = await form(client, "/1.1/comment-check", fields)
    assert (again.status, await again.text()) == (200, "true")
    assert again.headers["X-Civility-Reasons"] == "Off topic  see the rules"


async def test_erasing_an_author_erases_the_label_a_correction_kept(
    akismet_for: Callable[..., Clients],
    create_site: Any,
    client: Client,
    moderator: Any,
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    site = await create_site("news", mode="pre")
    clients = akismet_for(site["api_key"])
    held = await checked_and_claimed(clients, client, moderator(site))
    # Claimed, so the correction is kept as a label only; and one of a comment never checked.
    assert await clients.call("submit_spam", "203.0.113.7", comment_content=CIVIL, **VISITOR)
    assert await clients.call("submit_ham", "203.0.113.7", comment_content=SPAMMY, **VISITOR)
    entries = await labels_of(redis_client)
    assert [entry["author"] for entry in entries] == [held["author"]["id"]] * 2
    erased = await client.post(
        f"/v1/sites/news/authors/{held['author']['id']}:erase", headers=admin
    )
    assert (await erased.json())["labels_erased"] == 2
    assert await labels_of(redis_client) == []


async def test_a_german_comment_is_held_for_its_language_and_stays_unpublished(
    client: Client, site: dict[str, str]
) -> None:
    german = "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor es friert."
    response = await form(client, "/1.1/comment-check", check_fields(site, comment_content=german))
    assert await response.text() == "true"
    assert (response.headers["X-Civility-State"], response.headers["X-Civility-Reasons"]) == (
        "pending",
        "LANGUAGE",
    )
    assert "X-akismet-pro-tip" not in response.headers


async def test_usage_limit_and_key_sites_count_the_months_calls(
    akismet_for: Callable[..., Clients], create_site: Any, client: Client
) -> None:
    site = await create_site("news", banned_words=["viagra"])
    clients = akismet_for(site["api_key"])
    await clients.call("comment_check", "203.0.113.7", comment_content=CIVIL, **VISITOR)
    await clients.call("comment_check", "198.51.100.2", comment_content=SPAMMY)
    await clients.call("comment_check", "198.51.100.2", comment_content=CIVIL, is_test=True)
    await clients.call("submit_spam", "203.0.113.9", comment_content="Cheap pills here.")
    await clients.call("submit_ham", "198.51.100.2", comment_content=SPAMMY)
    assert await clients.call("usage_limit") == {
        "limit": "none",
        "usage": 2,
        "percentage": "0.00",
        "throttled": False,
    }
    month = datetime.now(UTC).strftime("%Y-%m")
    row = {
        "site": "The news site",
        "api_calls": "2",
        "spam": "1",
        "ham": "1",
        "missed_spam": "1",
        "false_positives": "1",
        "is_revoked": False,
    }
    # The client leaves the key out of key-sites (Akismet knows it from its account login);
    # civility needs it, so this client sends it with every request.
    keyed = akismet_for(site["api_key"], params={"api_key": site["api_key"]})
    assert await keyed.call("key_sites") == {month: [row], "limit": 500, "offset": 0, "total": 1}
    assert await keyed.call("key_sites", month="2001-01", url_filter="news") == {
        "2001-01": [{**row, **dict.fromkeys(COUNTS, "0")}],
        "limit": 500,
        "offset": 0,
        "total": 1,
    }
    assert await keyed.call("key_sites", result_format="csv") == (
        f"Active sites for this key during {month} (limit:500, offset: 0, total: 1)\n"
        "Site,Total API Calls,Spam,Ham,Missed Spam,False Positives,Is Revoked\n"
        "The news site,2,1,1,1,1,false\n"
    )
    refused = await client.get(
        "/1.2/key-sites", params={"api_key": site["api_key"], "month": "2026-13"}
    )
    assert (refused.status, await refused.text()) == (200, "month must be YYYY-MM, not '2026-13'")
    with pytest.raises(akismet.APIKeyError):
        await clients.call("key_sites")


async def test_get_stats_and_get_subscription_answer_what_wordpress_reads(
    client: Client, site: dict[str, str]
) -> None:
    await form(client, "/1.1/comment-check", check_fields(site, comment_content=CIVIL))
    keyed = {"key": site["api_key"], "blog": BLOG}
    stats = await form(client, "/1.1/get-stats", keyed)
    assert await stats.json() == {
        "spam": 0,
        "ham": 1,
        "missed_spam": 0,
        "false_positives": 0,
        "accuracy": 100.0,
    }
    subscription = await form(client, "/1.1/get-subscription", keyed)
    assert await subscription.json() == {
        "status": "active",
        "account_name": "The news site",
        "limit": "none",
    }
    refused = await form(client, "/1.1/get-stats", {"key": "wrong", "blog": BLOG})
    assert (refused.status, await refused.text()) == (200, "invalid")


# ---------------------------------------------------------------- the wire


async def test_a_repeated_check_is_the_stored_comment_with_its_guid(
    client: Client, site: dict[str, str], moderator: Any
) -> None:
    fields = check_fields(site, comment_content=CIVIL, **VISITOR)
    first = await form(client, "/1.1/comment-check", fields)
    again = await form(client, "/1.1/comment-check", {**fields, "recheck_reason": "edit"})
    assert (await first.text(), await again.text()) == ("false", "false")
    assert first.content_type == "text/plain"
    guid = first.headers["X-akismet-guid"]
    assert again.headers["X-akismet-guid"] == guid
    assert "X-akismet-pro-tip" not in first.headers
    stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    assert (await stored.json())["version"] == 1


async def test_the_same_words_answering_two_comments_are_two_comments(
    client: Client, site: dict[str, str], moderator: Any
) -> None:
    # "Agreed." under two comments of one post, by one reader: a comment never changes its
    # parent, so each reply is its own comment, and a top-level one keeps its id of before.
    fields = check_fields(site, comment_content=CIVIL, comment_post_ID="7", **VISITOR)
    answers = [
        await form(client, "/1.1/comment-check", {**fields, "comment_parent": parent})
        for parent in ("0", "41", "42", "41")
    ]
    # Moderated each (the later ones held as the same reader's flood and duplicate), not refused.
    assert [await answer.text() for answer in answers] == ["false", "true", "true", "true"]
    assert all("X-Civility-State" in answer.headers for answer in answers)
    guids = [answer.headers["X-akismet-guid"] for answer in answers]
    assert len(set(guids)) == 3
    assert guids[1] == guids[3]
    top = await form(client, "/1.1/comment-check", fields)
    assert top.headers["X-akismet-guid"] == guids[0]
    parents = []
    for guid in guids[:3]:
        stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
        parents.append((await stored.json())["parent_id"])
    assert parents[0] is None
    assert parents[1] != parents[2]


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("ISO-8859-1", "Un café très agréable au bord du port, où l'on mange des crêpes."),
        ("EUC-JP", "港の眺めはとても穏やかで、船がゆっくり行き来しています。"),
    ],
)
async def test_a_form_in_the_blog_charset_is_read_in_it(
    client: Client, site: dict[str, str], moderator: Any, charset: str, text: str
) -> None:
    # A blog not in UTF-8 sends its comments in its own charset, named by blog_charset (its
    # Content-Type need not name it), each byte percent-encoded as PHP's http_build_query does.
    fields = check_fields(
        site, comment_content=text, **{**VISITOR, "comment_author": "Zoë", "blog_charset": charset}
    )
    response = await client.post(
        "/1.1/comment-check",
        data=urlencode(fields, encoding=charset).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    guid = response.headers["X-akismet-guid"]
    stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    comment = await stored.json()
    assert (comment["text"], comment["author"]["name"]) == (text, "Zoë")


@pytest.mark.parametrize(
    ("content_type", "extra", "where"),
    [
        ("application/x-www-form-urlencoded", "", "body"),
        ("application/x-www-form-urlencoded", "&blog_charset=UTF-8", "body"),
        ("application/x-www-form-urlencoded; charset=UTF-8", "&blog_charset=ISO-8859-1", "body"),
        ("application/x-www-form-urlencoded", "", "query"),
    ],
    ids=["no-charset", "utf8-blog-charset", "utf8-content-type", "in-the-query"],
)
async def test_a_form_not_in_the_charset_it_is_read_in_is_refused_not_mangled(
    client: Client,
    site: dict[str, str],
    redis_client: aioredis.Redis,
    content_type: str,
    extra: str,
    where: str,
) -> None:
    # A Latin-1 blog that does not say so: "café" comes as caf%E9, which UTF-8 cannot read.
    fields = urlencode(check_fields(site, **VISITOR)).replace("blog_charset=UTF-8", "")
    latin1 = "comment_content=" + quote_from_bytes("Un café très agréable.".encode("latin-1"))
    body = f"{fields}{extra}&{latin1}" if where == "body" else f"{fields}{extra}"
    path = "/1.1/comment-check" if where == "body" else f"/1.1/comment-check?{latin1}"
    before = await keys_of(redis_client)
    response = await client.post(path, data=body.encode(), headers={"Content-Type": content_type})
    assert (response.status, await response.text()) == (
        200,
        "the form is not valid UTF-8 (or the charset it names)",
    )
    assert await keys_of(redis_client) == before


@pytest.mark.parametrize("named", ["rot13", "hex", "unicode_escape", "idna"])
async def test_a_blog_charset_that_is_no_charset_is_left_out_for_utf_8(
    client: Client, site: dict[str, str], moderator: Any, named: str
) -> None:
    # Python has codecs of these names, but none reads text as a charset does.
    text = "Un café au port, vu de C:\\nouveau\\dossier."
    fields = check_fields(site, comment_content=text, **{**VISITOR, "blog_charset": named})
    response = await client.post(
        "/1.1/comment-check",
        data=urlencode(fields).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status, await response.text()) == (200, "false")
    guid = response.headers["X-akismet-guid"]
    stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    assert (await stored.json())["text"] == text


async def test_an_author_name_with_nothing_visible_is_left_out(
    client: Client, site: dict[str, str], moderator: Any
) -> None:
    fields = check_fields(site, comment_content=CIVIL, **{**VISITOR, "comment_author": "\u200b"})
    response = await form(client, "/1.1/comment-check", fields)
    assert await response.text() == "false"
    guid = response.headers["X-akismet-guid"]
    stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    assert "name" not in (await stored.json())["author"]


async def test_a_filled_honeypot_is_discarded_unstored(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    before = await keys_of(redis_client)
    fields = check_fields(
        site, comment_content=CIVIL, honeypot_field_name="hidden_url", hidden_url="http://bot"
    )
    response = await form(client, "/1.1/comment-check", fields)
    assert (await response.text(), response.headers["X-akismet-pro-tip"]) == ("true", "discard")
    assert await keys_of(redis_client) == before
    empty_pot = await form(
        client, "/1.1/comment-check", {**fields, "hidden_url": "", "is_test": "1"}
    )
    assert await empty_pot.text() == "false"


@pytest.mark.parametrize(
    "trap",
    [
        # What Akismet's documentation shows, and many clients send: the value under the
        # documented example's name, whatever the form's field is called.
        {"honeypot_field_name": "contact_me_by_fax", "hidden_honeypot_field": "http://bot"},
        # WordPress's own comment form: its hidden textarea, sent as every posted field is.
        {"POST_ak_hp_textarea": "http://bot", "POST_ak_js": "1764000000000"},
    ],
)
async def test_a_honeypot_filled_as_clients_send_it_is_discarded_unstored(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis, trap: dict[str, str]
) -> None:
    before = await keys_of(redis_client)
    fields = check_fields(site, comment_content=CIVIL, **VISITOR, **trap)
    response = await form(client, "/1.1/comment-check", fields)
    assert (await response.text(), response.headers["X-akismet-pro-tip"]) == ("true", "discard")
    assert await keys_of(redis_client) == before
    # A person leaves it empty, and WordPress sends it empty all the same.
    empty = {**fields, **{name: "" for name in trap if name.endswith(("_field", "textarea"))}}
    published = await form(client, "/1.1/comment-check", {**empty, "is_test": "1"})
    assert await published.text() == "false"


@pytest.mark.parametrize("content", [None, " \n", "\u200b\u2060\ufeff", "\u2800\ufe0f"])
async def test_a_check_without_text_is_ham_and_stores_nothing(
    client: Client, site: dict[str, str], redis_client: aioredis.Redis, content: str | None
) -> None:
    # A signup check sends no comment; a text of spaces or invisible characters is none either.
    before = await keys_of(redis_client)
    fields = check_fields(site, comment_type="signup")
    if content is not None:
        fields["comment_content"] = content
    response = await form(client, "/1.1/comment-check", fields)
    assert await response.text() == "false"
    assert await keys_of(redis_client) == before


@pytest.mark.parametrize("content", [" \n", "\u200b\u2060\ufeff"])
@pytest.mark.parametrize(
    ("rule", "state", "reason"),
    [
        ("site premod", "pending", "PREMOD"),
        ("article closed", "rejected", "ARTICLE_CLOSED"),
        ("author banned", "rejected", "AUTHOR_BANNED"),
    ],
)
async def test_a_check_without_text_meets_the_rules_that_read_none(
    client: Client,
    create_site: Any,
    post_signed: Any,
    moderator: Any,
    redis_client: aioredis.Redis,
    content: str,
    rule: str,
    state: str,
    reason: str,
) -> None:
    # Nothing to read or store, but a pre-moderated site, a closed article or a banned author
    # decide it as they decide any comment: WordPress must not publish it.
    site = await create_site("news", mode="pre" if rule == "site premod" else "post")
    fields = check_fields(site, comment_post_ID="42", **VISITOR)
    if rule == "article closed":
        spec = {"id": "42", "closed": True}
        put = await post_signed(site, spec, path="/v1/sites/news/articles/42", method="PUT")
        assert put.status == 200
    if rule == "author banned":
        first = await form(client, "/1.1/comment-check", {**fields, "comment_content": CIVIL})
        guid = first.headers["X-akismet-guid"]
        stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
        author = (await stored.json())["author"]["id"]
        ban = await client.post(
            f"/v1/sites/news/authors/{author}/status",
            json={"status": "banned"},
            headers=moderator(site),
        )
        assert ban.status == 200, await ban.text()
    before = await keys_of(redis_client)
    response = await form(client, "/1.1/comment-check", {**fields, "comment_content": content})
    assert await response.text() == "true"
    assert response.headers["X-Civility-State"] == state
    assert response.headers["X-Civility-Reasons"] == reason
    assert await keys_of(redis_client) == before
    # A signup publishes nothing: the comment policy is not about it.
    signup = {**fields, "comment_type": "signup", "comment_content": content}
    assert await (await form(client, "/1.1/comment-check", signup)).text() == "false"
    assert await keys_of(redis_client) == before


def usage_key(clock: Clock) -> str:
    return KEYS.akismet_usage("news", month_of(int(clock() * 1000)))


@pytest.mark.parametrize("comment_type", ["contact-form", "message", "signup"])
async def test_a_rude_message_the_site_does_not_publish_is_ham_and_stored_nowhere(
    client: Client,
    site: dict[str, str],
    moderator: Any,
    redis_client: aioredis.Redis,
    clock: Clock,
    comment_type: str,
) -> None:
    # A complaint to the editors is nobody's to moderate: only whether it is spam answers.
    before = await keys_of(redis_client)
    fields = check_fields(site, comment_content=RUDE, **{**VISITOR, "comment_type": comment_type})
    response = await form(client, "/1.1/comment-check", fields)
    assert await response.text() == "false"
    assert (response.headers["X-Civility-State"], "X-Civility-Reasons" in response.headers) == (
        "approved",
        False,
    )
    # Counted as a check, and nothing else written: no comment, queue entry or webhook.
    assert await keys_of(redis_client) - before == {usage_key(clock)}
    guid = response.headers["X-akismet-guid"]
    stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    assert stored.status == 404
    stats = await form(client, "/1.1/get-stats", {"key": site["api_key"], "blog": BLOG})
    assert (await stats.json())["ham"] == 1
    # The same words as a comment are moderated as one.
    comment = await form(client, "/1.1/comment-check", {**fields, "comment_type": "comment"})
    assert (await comment.text(), comment.headers["X-Civility-State"]) == ("true", "rejected")
    assert comment.headers["X-Civility-Reasons"] == "TOXIC"
    assert await outbox_types(redis_client, "news") == ["comment.rejected"]


async def test_a_contact_form_message_the_model_cannot_read_is_ham(
    client: Client, site: dict[str, str]
) -> None:
    # Unscored, so nothing says it is spam; as a comment it would be held for its language.
    german = "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor es friert."
    fields = check_fields(site, comment_type="contact-form", comment_content=german)
    response = await form(client, "/1.1/comment-check", fields)
    assert (await response.text(), response.headers["X-Civility-State"]) == ("false", "approved")


@pytest.mark.parametrize(
    ("thresholds", "verdict"),
    [
        ({}, "true"),
        # Over the site's hold threshold is spam too: nobody here would look at it.
        ({"hold": {"spam": 0.5}, "reject": {"spam": 0.9999}}, "true"),
        ({"hold": {"spam": 0.9998}, "reject": {"spam": 0.9999}}, "false"),
    ],
)
async def test_a_spammy_contact_form_message_is_spam_by_the_sites_spam_thresholds(
    client: Client,
    create_site: Any,
    redis_client: aioredis.Redis,
    clock: Clock,
    thresholds: dict[str, dict[str, float]],
    verdict: str,
) -> None:
    site = await create_site("news", **thresholds)
    before = await keys_of(redis_client)
    fields = check_fields(site, comment_type="contact-form", comment_content=SPAMMY)
    response = await form(client, "/1.1/comment-check", fields)
    assert await response.text() == verdict
    state = "spam" if verdict == "true" else "approved"
    assert response.headers["X-Civility-State"] == state
    assert await keys_of(redis_client) - before == {usage_key(clock)}
    stats = await form(client, "/1.1/get-stats", {"key": site["api_key"], "blog": BLOG})
    assert (await stats.json())["spam"] == (1 if verdict == "true" else 0)
    # A test check gets the same answer, counted nowhere.
    tested = await form(client, "/1.1/comment-check", {**fields, "is_test": "1"})
    assert await tested.text() == verdict
    usage = await client.get("/1.2/usage-limit", params={"api_key": site["api_key"]})
    assert (await usage.json())["usage"] == 1


@pytest.mark.parametrize(
    ("path", "text", "label", "counter"),
    [
        ("/1.1/submit-spam", RUDE, {"spam": 1}, "missed_spam"),
        ("/1.1/submit-ham", SPAMMY, {"spam": 0}, "false_positives"),
    ],
    ids=["submit-spam", "submit-ham"],
)
async def test_a_correction_of_a_contact_form_message_is_kept_as_a_label(
    client: Client,
    site: dict[str, str],
    redis_client: aioredis.Redis,
    path: str,
    text: str,
    label: dict[str, int],
    counter: str,
) -> None:
    fields = check_fields(site, comment_content=text, **{**VISITOR, "comment_type": "contact-form"})
    checked = await form(client, "/1.1/comment-check", fields)
    response = await form(client, path, fields)
    assert (response.status, await response.text()) == (200, THANKS)
    [entry] = await labels_of(redis_client)
    assert (entry["text"], entry["labels"]) == (text, label)
    assert entry["comment_id"] == checked.headers["X-akismet-guid"]
    stats = await form(client, "/1.1/get-stats", {"key": site["api_key"], "blog": BLOG})
    assert (await stats.json())[counter] == 1
    assert await outbox_types(redis_client, "news") == []


@pytest.mark.parametrize("path", ["/1.1/comment-check", "/1.1/submit-spam", "/1.1/submit-ham"])
@pytest.mark.parametrize(
    ("change", "body", "help_text"),
    [
        ({"api_key": ""}, "invalid", 'Empty "api_key" value'),
        ({"api_key": "wrong"}, "invalid", "Invalid key"),
        ({"blog": ""}, "Missing required field: blog.", "Missing required field: blog."),
        ({"user_ip": " "}, "Missing required field: user_ip.", "Missing required field: user_ip."),
    ],
)
async def test_bad_calls_get_akismets_answer_and_store_nothing(
    client: Client,
    site: dict[str, str],
    redis_client: aioredis.Redis,
    path: str,
    change: dict[str, str],
    body: str,
    help_text: str,
) -> None:
    before = await keys_of(redis_client)
    response = await form(client, path, {**check_fields(site, comment_content=CIVIL), **change})
    assert response.status == 200
    assert await response.text() == body
    assert response.headers["X-akismet-debug-help"] == help_text
    assert await keys_of(redis_client) == before


async def test_a_comment_longer_than_intake_takes_gets_answers_akismets_clients_read(
    akismet_for: Callable[..., Clients],
    client: Client,
    site: dict[str, str],
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    # Akismet refuses no comment for its length, and a client answered neither true nor false
    # checks the comment again, failing the same way: it is held out of publication instead,
    # for the client's moderators, and the debug header says why it was not read.
    long = "x" * (MAX_TEXT + 1)
    before = await keys_of(redis_client)
    clients = akismet_for(site["api_key"])
    checked = await clients.call("comment_check", "203.0.113.7", comment_content=long, **VISITOR)
    assert checked == akismet.CheckResponse.SPAM
    for path, body, help_text in (
        (
            "/1.1/comment-check",
            "true",
            f"comment_content is longer than {MAX_TEXT} characters: not checked, held for review",
        ),
        (
            "/1.1/submit-spam",
            "Thanks for making the web a better place.",
            f"comment_content is longer than {MAX_TEXT} characters: not kept",
        ),
    ):
        response = await form(client, path, check_fields(site, comment_content=long))
        assert (response.status, await response.text()) == (200, body)
        assert response.headers["X-akismet-debug-help"] == help_text
    assert await clients.call("submit_ham", "203.0.113.7", comment_content=long) is True
    assert await keys_of(redis_client) == before
    # The longest comment intake takes is still moderated and stored.
    longest = check_fields(site, comment_content=long[:MAX_TEXT])
    response = await form(client, "/1.1/comment-check", longest)
    assert "X-akismet-debug-help" not in response.headers
    stored = await client.get(
        f"/v1/sites/news/comments/{response.headers['X-akismet-guid']}", headers=admin
    )
    assert (await stored.json())["text"] == long[:MAX_TEXT]


async def test_odd_details_a_form_sends_are_left_out_not_refused(
    client: Client, site: dict[str, str], moderator: Callable[..., Any]
) -> None:
    # What WordPress can send: no real IP behind some proxies, its zero date, a locale with
    # digits, a permalink with a space.
    fields = check_fields(
        site,
        comment_content=CIVIL,
        user_ip="unknown",
        comment_date_gmt="0000-00-00 00:00:00",
        blog_lang="pt_PT_ao90",
        permalink=f"{BLOG}/a page",
    )
    response = await form(client, "/1.1/comment-check", fields)
    assert (response.status, await response.text()) == (200, "false")
    guid = response.headers["X-akismet-guid"]
    stored = await (
        await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    ).json()
    assert stored["text"] == CIVIL
    assert "ip" not in stored["author"]


async def test_a_date_more_than_a_day_ahead_of_the_clock_is_left_out_not_refused(
    client: Client, site: dict[str, str], moderator: Callable[..., Any], clock: Clock
) -> None:
    checked_ms = int(clock() * 1000)
    ahead = datetime.fromtimestamp(checked_ms / 1000 + 86_400 + 60, UTC)
    fields = check_fields(
        site, comment_content=CIVIL, comment_date_gmt=ahead.strftime("%Y-%m-%d %H:%M:%S")
    )
    response = await form(client, "/1.1/comment-check", fields)
    assert (response.status, await response.text()) == (200, "false")
    guid = response.headers["X-akismet-guid"]
    stored = await (
        await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    ).json()
    # Dated when it was checked instead.
    created_ms = round(datetime.fromisoformat(stored["created_at"]).timestamp() * 1000)
    assert checked_ms <= created_ms <= clock() * 1000


async def test_a_recheck_with_the_date_finds_the_same_comment(
    client: Client, site: dict[str, str], moderator: Callable[..., Any]
) -> None:
    # WordPress's first check has no date; its recheck sends the stored row, date included.
    first = await form(client, "/1.1/comment-check", check_fields(site, comment_content=CIVIL))
    recheck = await form(
        client,
        "/1.1/comment-check",
        check_fields(site, comment_content=CIVIL, comment_date_gmt="2026-11-27 10:00:00"),
    )
    assert first.headers["X-akismet-guid"] == recheck.headers["X-akismet-guid"]
    assert await recheck.text() == "false"
    queue = await (await client.get("/v1/sites/news/queue", headers=moderator(site))).json()
    assert queue["items"] == []


@pytest.mark.parametrize(
    ("fields", "help_text"),
    [
        ({"blog": BLOG}, 'Empty "key" value'),
        ({"key": "wrong", "blog": BLOG}, "Invalid key"),
        ({"key": "any"}, 'Empty "blog" value'),
    ],
)
async def test_verify_key_says_invalid_and_why(
    client: Client, fields: dict[str, str], help_text: str
) -> None:
    response = await form(client, "/1.1/verify-key", fields)
    assert (response.status, await response.text()) == (200, "invalid")
    assert response.headers["X-akismet-debug-help"] == help_text


async def test_verify_key_takes_api_key_too(client: Client, site: dict[str, str]) -> None:
    response = await form(client, "/1.1/verify-key", {"api_key": site["api_key"], "blog": BLOG})
    assert await response.text() == "valid"


async def test_submissions_answer_thanks(client: Client, site: dict[str, str]) -> None:
    for path in ("/1.1/submit-spam", "/1.1/submit-ham"):
        response = await form(client, path, check_fields(site, comment_content=CIVIL))
        assert (response.status, await response.text()) == (200, THANKS)


def wordpress_form(site: dict[str, str], text: str) -> bytes:
    """comment-check as WordPress's Akismet plugin sends it: the comment's fields, every posted
    field again as POST_* (the comment twice), the request's server variables, percent-encoded
    as PHP's http_build_query does."""
    permalink = f"{BLOG}/2026/11/harbour"
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    agent += "Chrome/131.0.0.0 Safari/537.36"
    fields = {
        "comment_post_ID": "42",
        "comment_author": "Ada Reader",
        "comment_author_email": "ada@example.org",
        "comment_author_url": "",
        "comment_content": text,
        "comment_type": "comment",
        "comment_parent": "0",
        "user_ID": "0",
        "user_id": "0",
        "comment_author_IP": "203.0.113.7",
        "comment_agent": agent,
        "comment_date": "2026-12-07 06:00:00",
        "comment_date_gmt": "2026-12-07 05:00:00",
        "user_ip": "203.0.113.7",
        "user_agent": agent,
        "referrer": permalink,
        "blog": BLOG,
        "blog_lang": "hi_IN",
        "blog_charset": "UTF-8",
        "permalink": permalink,
        "api_key": site["api_key"],
        "akismet_comment_nonce": "passed",
        "POST_author": "Ada Reader",
        "POST_email": "ada@example.org",
        "POST_url": "",
        "POST_comment": text,
        "POST_submit": "Post Comment",
        "POST_comment_post_ID": "42",
        "POST_comment_parent": "0",
        "POST_akismet_comment_nonce": "0123456789",
        "POST_ak_hp_textarea": "",
        "POST_ak_js": "1765083600000",
        "HTTP_HOST": "blog.example",
        "HTTP_USER_AGENT": agent,
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "hi-IN,hi;q=0.9,en-US;q=0.8,en;q=0.7",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br, zstd",
        "HTTP_CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_CONTENT_LENGTH": str(len(text.encode()) * 3 + 180),
        "HTTP_ORIGIN": BLOG,
        "HTTP_REFERER": permalink,
        "HTTP_SEC_FETCH_DEST": "document",
        "HTTP_SEC_FETCH_MODE": "navigate",
        "HTTP_SEC_FETCH_SITE": "same-origin",
        "HTTP_SEC_FETCH_USER": "?1",
        "HTTP_UPGRADE_INSECURE_REQUESTS": "1",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "REMOTE_ADDR": "10.0.0.2",
        "REQUEST_URI": "/wp-comments-post.php",
        "DOCUMENT_URI": "/wp-comments-post.php",
    }
    return urlencode(fields).encode("ascii")


async def post_form(client: Client, path: str, body: bytes) -> ClientResponse:
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    return await client.post(path, data=io.BytesIO(body), headers=headers)


@pytest.mark.parametrize(
    "letters",
    [
        "नमस्ते दोस्तों, यह बंदरगाह बहुत सुंदर है। ",  # Devanagari: three bytes a letter
        "\U00020000\U00020001\U00020002",  # CJK Extension B: four, the most UTF-8 takes
    ],
)
async def test_the_longest_comment_wordpress_sends_twice_is_answered(
    client: Client, site: dict[str, str], moderator: Any, letters: str
) -> None:
    # WordPress keeps a comment whose check fails for a recheck, which would fail again: the
    # form must fit, though the comment is in it twice and every byte of it is written as %XX.
    text = (letters * (MAX_TEXT // len(letters) + 1))[:MAX_TEXT]
    body = wordpress_form(site, text)
    assert len(body) > 256 * 1024
    response = await post_form(client, "/1.1/comment-check", body)
    assert response.status == 200, await response.text()
    assert await response.text() in ("true", "false")
    guid = response.headers["X-akismet-guid"]
    stored = await client.get(f"/v1/sites/news/comments/{guid}", headers=moderator(site))
    assert (await stored.json())["text"] == text
    ham = await post_form(client, "/1.1/submit-ham", body)
    assert (ham.status, await ham.text()) == (200, THANKS)


async def test_a_body_over_the_limit_is_refused_in_plain_text(
    client: Client, site: dict[str, str]
) -> None:
    body = urlencode(check_fields(site, comment_content="x" * MAX_FORM_BYTES)).encode()
    response = await post_form(client, "/1.1/comment-check", body)
    message = f"request body is larger than {MAX_FORM_BYTES} bytes"
    assert response.status == 413
    assert await response.text() == message
    assert response.headers["X-akismet-debug-help"] == message
