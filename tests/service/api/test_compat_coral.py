"""Coral Talk's external moderation phase end to end.

Requests are the examples of Coral's EXTERNAL_MODERATION_PHASES.md, serialised the way Coral does
(``JSON.stringify(request, null, 2)``) and signed the way it does (``X-Coral-Signature:
sha256=<hex HMAC-SHA256 of the body>``, one per active secret, comma-separated). Every answer is
checked against the response schema Coral validates phase results with.
"""

import copy
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from service.compat.coral import (
    PHASE_MAX_BODY_BYTES,
    ModerationRequest,
    article_id,
    author_id,
    comment_id,
)
from service.domain import MAX_TEXT

Client = TestClient[web.Request, web.Application]

SECRET = "ssc_7f3b0c1e9a2d4e8f9b6a5c4d3e2f1a0b"
PREVIOUS_SECRET = "ssc_0a1b2c3d4e5f60718293a4b5c6d7e8f9"

NEW_COMMENT: dict[str, Any] = {
    "action": "NEW",
    "comment": {"body": "Here's a comment!", "parentID": None},
    "author": {"id": "baf4e943-3594-4fcc-b2ba-3e8de7a76352", "role": "COMMENTER"},
    "story": {
        "id": "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6",
        "url": "http://localhost:1313/posts/a-story-url/",
    },
    "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
    "tenantID": "19ba5794-7eeb-4d46-a81b-c00c61672501",
    "tenantDomain": "localhost",
}
NEW_REPLY: dict[str, Any] = {
    **NEW_COMMENT,
    "comment": {"body": "Here's a reply!", "parentID": "d79b787f-f406-49a0-a179-72e3652e54be"},
}

# Coral's ExternalModerationResponseSchema: what its phase accepts.
CORAL_STATUSES = {"NONE", "APPROVED", "REJECTED", "PREMOD", "SYSTEM_WITHHELD"}
CORAL_FLAG_REASONS = {"COMMENT_DETECTED_TOXIC", "COMMENT_DETECTED_SPAM"}
CORAL_TAGS = {"FEATURED", "STAFF"}


def assert_coral_accepts(body: Any) -> None:
    """The body passes Coral's response schema, keeps no key it would strip, and is not one of
    the answers Coral reads as "nothing to say" (those must be a 204)."""
    assert isinstance(body, dict)
    assert body, "an empty result must be a 204"
    assert set(body) <= {"actions", "status", "tags"}
    if "status" in body:
        assert body["status"] in CORAL_STATUSES
    for action in body.get("actions", []):
        assert set(action) == {"actionType", "reason"}
        assert action["actionType"] == "FLAG"
        assert action["reason"] in CORAL_FLAG_REASONS
    for tag in body.get("tags", []):
        assert tag in CORAL_TAGS


def coral_body(request: dict[str, Any]) -> bytes:
    return json.dumps(request, indent=2, ensure_ascii=False).encode("utf-8")


def coral_signature(body: bytes, *secrets: str) -> str:
    return ",".join(
        f"sha256={hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}"
        for secret in secrets
    )


async def send(
    client: Client,
    request: dict[str, Any] | bytes,
    *,
    secrets: tuple[str, ...] = (SECRET,),
    site: str = "news",
    signature: str | None = None,
    content_type: str = "application/json",
) -> ClientResponse:
    body = request if isinstance(request, bytes) else coral_body(request)
    headers = {"Content-Type": content_type, "User-Agent": "Coral Moderation/9.0.0"}
    header = coral_signature(body, *secrets) if signature is None else signature
    if header:
        headers["X-Coral-Signature"] = header
    return await client.post(f"/v1/integrations/coral/{site}", data=body, headers=headers)


async def set_secret(client: Client, admin: dict[str, str], secret: str | None) -> ClientResponse:
    return await client.patch(
        "/v1/sites/news", json={"coral": {"signing_secret": secret}}, headers=admin
    )


@pytest.fixture
def make_coral_site(create_site: Any, client: Client, admin: dict[str, str]) -> Any:
    """Creates the site ``news`` with the given policy and its Coral signing secret set."""

    async def make(**policy: Any) -> dict[str, str]:
        site: dict[str, str] = await create_site("news", **policy)
        response = await set_secret(client, admin, SECRET)
        assert response.status == 200, await response.text()
        return site

    return make


@pytest.fixture
async def coral_site(make_coral_site: Any) -> dict[str, str]:
    site: dict[str, str] = await make_coral_site()
    return site


def our_id(request: dict[str, Any]) -> str:
    return comment_id(ModerationRequest.model_validate(request))


async def stored(client: Client, site: dict[str, str], request: dict[str, Any]) -> ClientResponse:
    headers = {"Authorization": f"Bearer {site['moderator_token']}"}
    return await client.get(f"/v1/sites/news/comments/{our_id(request)}", headers=headers)


async def keys_of(redis_client: aioredis.Redis) -> set[str]:
    return {key async for key in redis_client.scan_iter("*")}


# ---------------------------------------------------------------- the secret


async def test_the_signing_secret_is_write_only(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    response = await set_secret(client, admin, SECRET)
    assert response.status == 200
    assert SECRET not in await response.text()
    shown = await client.get("/v1/sites/news", headers=admin)
    assert SECRET not in await shown.text()
    assert (await send(client, NEW_COMMENT)).status == 204


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("short", "String should have at least 16 characters"),
        ("has spaces in the middle", "String should match pattern '^[\\x21-\\x7e]+$'"),
    ],
)
async def test_a_bad_secret_is_refused_and_changes_nothing(
    client: Client, site: dict[str, str], admin: dict[str, str], secret: str, message: str
) -> None:
    assert (await set_secret(client, admin, SECRET)).status == 200
    response = await set_secret(client, admin, secret)
    assert response.status == 422
    assert (await response.json())["error"]["details"] == [
        {"field": "coral.signing_secret", "message": message}
    ]
    assert (await send(client, NEW_COMMENT)).status == 204


async def test_a_removed_secret_refuses_every_request(
    client: Client, coral_site: dict[str, str], admin: dict[str, str]
) -> None:
    assert (await set_secret(client, admin, None)).status == 200
    response = await send(client, NEW_COMMENT)
    assert response.status == 401
    assert await response.json() == {
        "error": {
            "code": "unauthorized",
            "message": "no Coral signing secret is set for this site: set "
            "coral.signing_secret with PATCH /v1/sites/{site}",
            "details": None,
        }
    }


# ---------------------------------------------------------------- signatures


async def test_a_signature_by_any_active_secret_is_accepted(
    client: Client, coral_site: dict[str, str]
) -> None:
    # While Coral rotates, it signs with the old and the new secret; ours may be either.
    assert (await send(client, NEW_COMMENT, secrets=(PREVIOUS_SECRET, SECRET))).status == 204
    assert (await send(client, NEW_REPLY, secrets=(SECRET, PREVIOUS_SECRET))).status == 204


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("", "missing X-Coral-Signature header"),
        ("sha1=abc", "X-Coral-Signature has no sha256= signature"),
        ("t=1,v1=abc", "X-Coral-Signature has no sha256= signature"),
        ("sha256=" + "0" * 64, "X-Coral-Signature does not match the body"),
        (
            coral_signature(coral_body(NEW_REPLY), SECRET),
            "X-Coral-Signature does not match the body",
        ),
        (
            coral_signature(coral_body(NEW_COMMENT), PREVIOUS_SECRET, "another-secret-0000"),
            "X-Coral-Signature does not match the body",
        ),
    ],
)
async def test_a_bad_signature_is_refused_and_stores_nothing(
    client: Client,
    coral_site: dict[str, str],
    redis_client: aioredis.Redis,
    signature: str,
    message: str,
) -> None:
    before = await keys_of(redis_client)
    response = await send(client, NEW_COMMENT, signature=signature)
    assert response.status == 401
    assert await response.json() == {
        "error": {"code": "unauthorized", "message": message, "details": None}
    }
    assert await keys_of(redis_client) == before


async def test_the_signature_covers_the_exact_bytes(
    client: Client, coral_site: dict[str, str]
) -> None:
    body = coral_body(NEW_COMMENT)
    compact = json.dumps(NEW_COMMENT, separators=(",", ":")).encode()
    response = await send(client, compact, signature=coral_signature(body, SECRET))
    assert response.status == 401


async def test_an_unknown_site_is_not_found(client: Client, coral_site: dict[str, str]) -> None:
    response = await send(client, NEW_COMMENT, site="elsewhere")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


# ---------------------------------------------------------------- verdicts


async def test_a_publishable_comment_is_a_204_without_body_and_is_kept(
    client: Client, coral_site: dict[str, str]
) -> None:
    response = await send(client, NEW_COMMENT)
    assert response.status == 204
    assert await response.read() == b""
    comment = await (await stored(client, coral_site, NEW_COMMENT)).json()
    assert comment["state"] == "approved"
    assert comment["article_id"] == NEW_COMMENT["story"]["id"]
    assert comment["author"] == {
        "id": NEW_COMMENT["author"]["id"],
        "role": NEW_COMMENT["author"]["role"],
    }
    assert comment["parent_id"] is None


async def test_a_premoderated_reply_waits_in_both_queues_with_corals_ids(
    client: Client, make_coral_site: Any, moderator: Any
) -> None:
    coral_site = await make_coral_site(mode="pre")
    response = await send(client, NEW_REPLY)
    assert response.status == 200
    body = await response.json()
    assert_coral_accepts(body)
    assert body == {"status": "PREMOD"}
    page = await client.get("/v1/sites/news/queue", headers=moderator(coral_site))
    [item] = (await page.json())["items"]
    assert item["id"] == our_id(NEW_REPLY)
    assert item["article_id"] == NEW_REPLY["story"]["id"]
    assert item["parent_id"] == NEW_REPLY["comment"]["parentID"]
    assert item["author"]["id"] == NEW_REPLY["author"]["id"]
    # Our moderators can work it like any held comment.
    decided = await client.post(
        f"/v1/sites/news/comments/{item['id']}/decision",
        json={"action": "approve"},
        headers=moderator(coral_site),
    )
    assert (await decided.json())["state"] == "approved"


async def test_a_held_toxic_comment_is_withheld_and_flagged(
    client: Client, make_coral_site: Any, moderator: Any
) -> None:
    coral_site = await make_coral_site(hold={"toxicity": 0.0})
    response = await send(client, NEW_COMMENT)
    body = await response.json()
    assert_coral_accepts(body)
    assert body == {
        "status": "SYSTEM_WITHHELD",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
    }
    page = await client.get("/v1/sites/news/queue", headers=moderator(coral_site))
    assert [item["id"] for item in (await page.json())["items"]] == [our_id(NEW_COMMENT)]


@pytest.mark.parametrize(
    ("policy", "body", "flag"),
    [
        ({"suspect_words": ["comment"]}, "Here's a comment!", "COMMENT_DETECTED_TOXIC"),
        # The spam score alone would reject a link: its thresholds are raised so the link
        # count is the only rule that applies.
        (
            {"max_links": 0, "hold": {"spam": 1.0}, "reject": {"spam": 1.0}},
            "Here's a comment! https://example.org/more",
            "COMMENT_DETECTED_SPAM",
        ),
    ],
)
async def test_a_hold_for_a_content_rule_is_withheld_with_the_nearest_flag(
    client: Client, make_coral_site: Any, policy: dict[str, Any], body: str, flag: str
) -> None:
    await make_coral_site(**policy)
    request = copy.deepcopy(NEW_COMMENT)
    request["comment"]["body"] = body
    answer = await (await send(client, request)).json()
    assert_coral_accepts(answer)
    assert answer == {
        "status": "SYSTEM_WITHHELD",
        "actions": [{"actionType": "FLAG", "reason": flag}],
    }


async def test_a_toxic_comment_is_rejected_and_flagged(
    client: Client, make_coral_site: Any
) -> None:
    await make_coral_site(hold={"toxicity": 0.0}, reject={"toxicity": 0.0})
    body = await (await send(client, NEW_COMMENT)).json()
    assert_coral_accepts(body)
    assert body == {
        "status": "REJECTED",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
    }


async def test_spam_is_rejected_and_flagged_as_spam(client: Client, make_coral_site: Any) -> None:
    coral_site = await make_coral_site(hold={"spam": 0.0}, reject={"spam": 0.0})
    body = await (await send(client, NEW_COMMENT)).json()
    assert_coral_accepts(body)
    assert body == {
        "status": "REJECTED",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
    }
    comment = await (await stored(client, coral_site, NEW_COMMENT)).json()
    assert comment["state"] == "spam"


async def test_a_banned_word_is_rejected_with_the_toxic_flag(
    client: Client, make_coral_site: Any
) -> None:
    await make_coral_site(banned_words=["comment"])
    body = await (await send(client, NEW_COMMENT)).json()
    assert_coral_accepts(body)
    assert body == {
        "status": "REJECTED",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
    }


async def test_a_repeated_request_answers_the_same_and_keeps_one_comment(
    client: Client, make_coral_site: Any
) -> None:
    coral_site = await make_coral_site(mode="pre")
    first = await (await send(client, NEW_COMMENT)).json()
    again = await (await send(client, NEW_COMMENT)).json()
    assert first == again == {"status": "PREMOD"}
    assert (await (await stored(client, coral_site, NEW_COMMENT)).json())["version"] == 1


async def test_an_edit_is_moderated_too(client: Client, coral_site: dict[str, str]) -> None:
    edit = copy.deepcopy(NEW_COMMENT)
    edit["action"] = "EDIT"
    edit["comment"]["body"] = "Here's my edited comment!"
    assert (await send(client, edit)).status == 204
    assert (await (await stored(client, coral_site, edit)).json())["text"] == edit["comment"][
        "body"
    ]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        # Text format: Coral's server strips the tags of the comment's HTML and keeps its
        # entities as they are.
        ("Tom &amp; Jerry &lt;3 &#39;em, don&#39;t they?", "Tom & Jerry <3 'em, don't they?"),
        # HTML format: the comment's HTML as Coral's sanitizer wrote it.
        (
            "<p>Tom &amp; Jerry &lt;3 &#39;em,</p><p>don&#39;t they?</p>",
            "Tom & Jerry <3 'em,\ndon't they?",
        ),
        # An entity is decoded once: the author typed "&lt;" themselves.
        ("Write &amp;lt; for &lt; in HTML.", "Write &lt; for < in HTML."),
        # A ">" inside a quoted attribute value does not end its tag (Coral's serializer leaves
        # it unescaped there).
        (
            '<p>Read <a href="https://example.com/?a>b" title="a > b">the story</a> first.</p>',
            "Read the story first.",
        ),
    ],
)
async def test_a_comment_is_stored_and_scored_as_the_text_its_body_reads(
    client: Client, coral_site: dict[str, str], post_signed: Any, body: str, text: str
) -> None:
    request = copy.deepcopy(NEW_COMMENT)
    request["comment"]["body"] = body

    assert (await send(client, request)).status in (200, 204)

    kept = await (await stored(client, coral_site, request)).json()
    assert kept["text"] == text
    # Scored as the same text written through intake is.
    written = {"id": "written", "article": {"id": "a1"}, "author": {"id": "r1"}, "text": text}
    native = await (await post_signed(coral_site, written)).json()
    assert kept["scores"] == pytest.approx(native["scores"], abs=1e-9)


async def test_a_repeated_request_keeps_a_comment_stored_with_corals_entities_unchanged(
    client: Client, coral_site: dict[str, str], post_signed: Any
) -> None:
    # Stored as the phase sent it, entities and all, before civility read them as text.
    request = copy.deepcopy(NEW_COMMENT)
    request["comment"]["body"] = "Tom &amp; Jerry, again."
    parsed = ModerationRequest.model_validate(request)
    earlier = {
        "id": our_id(request),
        "article": {"id": article_id(parsed), "url": request["story"]["url"]},
        "author": {"id": author_id(parsed), "role": request["author"]["role"]},
        "text": request["comment"]["body"],
    }
    assert (await post_signed(coral_site, earlier)).status == 202

    assert (await send(client, request)).status == 204

    kept = await (await stored(client, coral_site, request)).json()
    assert (kept["text"], kept["version"]) == (request["comment"]["body"], 1)


async def test_a_comment_id_sent_by_coral_is_used(
    client: Client, coral_site: dict[str, str], admin: dict[str, str]
) -> None:
    with_id = copy.deepcopy(NEW_COMMENT)
    with_id["comment"]["id"] = "5f2e0c7a-1111-4222-8333-944455566677"
    assert (await send(client, with_id)).status == 204
    response = await client.get(
        f"/v1/sites/news/comments/{with_id['comment']['id']}", headers=admin
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "body",
    # The last two as Coral sends a blank line: its HTML, or in Text format its entities.
    ["  ", "\u200b\u200c\u00a0", "\u2800\u034f\ufe0f", "<p>&nbsp;</p>", "&nbsp;&#8203;"],
)
async def test_a_comment_without_text_is_a_204_and_stores_nothing(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis, body: str
) -> None:
    before = await keys_of(redis_client)
    empty = copy.deepcopy(NEW_COMMENT)
    empty["comment"]["body"] = body
    response = await send(client, empty)
    assert (response.status, await response.read()) == (204, b"")
    assert await keys_of(redis_client) == before


@pytest.mark.parametrize(
    ("rule", "status"),
    [("site premod", "PREMOD"), ("story closed", "REJECTED"), ("author banned", "REJECTED")],
)
async def test_a_comment_without_text_meets_the_rules_that_read_none(
    client: Client,
    make_coral_site: Any,
    post_signed: Any,
    moderator: Any,
    redis_client: aioredis.Redis,
    rule: str,
    status: str,
) -> None:
    # Nothing to read or store, but a pre-moderated site, a closed story or a banned author
    # decide it as they decide any comment: Coral must not publish it.
    site = await make_coral_site(mode="pre" if rule == "site premod" else "post")
    story, author = NEW_COMMENT["story"]["id"], NEW_COMMENT["author"]["id"]
    if rule == "story closed":
        spec = {"id": story, "closed": True}
        put = await post_signed(site, spec, path=f"/v1/sites/news/articles/{story}", method="PUT")
        assert put.status == 200
    if rule == "author banned":
        ban = await client.post(
            f"/v1/sites/news/authors/{author}/status",
            json={"status": "banned"},
            headers=moderator(site),
        )
        assert ban.status == 200, await ban.text()
    before = await keys_of(redis_client)
    empty = copy.deepcopy(NEW_COMMENT)
    empty["comment"]["body"] = "\u200b\u00a0"
    response = await send(client, empty)
    assert (response.status, await response.json()) == (200, {"status": status})
    assert_coral_accepts(await response.json())
    assert await keys_of(redis_client) == before


async def test_a_comment_too_long_to_moderate_is_withheld_not_left_to_coral(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    # Coral publishes a comment whose phase answers with an error, so the answer must be one.
    before = await keys_of(redis_client)
    long = copy.deepcopy(NEW_COMMENT)
    long["comment"]["body"] = "You are an idiot. " * 1_200
    response = await send(client, long)
    assert response.status == 200
    body = await response.json()
    assert body == {"status": "SYSTEM_WITHHELD"}
    assert_coral_accepts(body)
    assert await keys_of(redis_client) == before


async def test_a_comment_whose_entities_make_its_body_longer_than_its_text_is_moderated(
    client: Client, coral_site: dict[str, str]
) -> None:
    # 22,100 characters as Coral sends them, 16,900 as the text reads: within what civility
    # moderates.
    request = copy.deepcopy(NEW_COMMENT)
    request["comment"]["body"] = "Tom &amp; Jerry. " * 1_300
    assert len(request["comment"]["body"]) > MAX_TEXT

    assert (await send(client, request)).status == 204

    kept = await (await stored(client, coral_site, request)).json()
    assert kept["text"] == ("Tom & Jerry. " * 1_300).strip()


async def test_a_long_run_of_angle_brackets_is_read_at_once(
    client: Client, coral_site: dict[str, str]
) -> None:
    # Read as tags are, each "<" searched for its ">" to the end, it took minutes.
    request = copy.deepcopy(NEW_COMMENT)
    request["comment"]["body"] = "<" * 300_000

    response = await send(client, request)

    assert (response.status, await response.json()) == (200, {"status": "SYSTEM_WITHHELD"})


async def test_a_comment_of_an_author_being_erased_is_withheld_not_left_to_coral(
    client: Client,
    coral_site: dict[str, str],
    admin: dict[str, str],
    redis_client: aioredis.Redis,
) -> None:
    assert (await send(client, NEW_COMMENT)).status == 204
    author = NEW_COMMENT["author"]["id"]
    erased = await client.post(f"/v1/sites/news/authors/{author}:erase", headers=admin)
    assert erased.status == 200
    # Until a minute after the erasure, a new comment of the author is stored nowhere; an
    # error would let Coral publish it unmoderated, so it is held for Coral's moderators.
    before = await keys_of(redis_client)
    late = copy.deepcopy(NEW_COMMENT)
    late["comment"]["body"] = "You are an idiot, and you know it."
    response = await send(client, late)
    assert response.status == 200
    body = await response.json()
    assert body == {"status": "SYSTEM_WITHHELD"}
    assert_coral_accepts(body)
    # Nothing is written; the author's earlier comment is no longer their latest in the thread.
    assert await keys_of(redis_client) == {key for key in before if ":coral:thread:" not in key}
    assert (await stored(client, coral_site, late)).status == 404


async def test_a_signed_comment_longer_than_the_body_limit_is_withheld_not_refused(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    # A 413 would be an error too, and Coral would publish the comment unmoderated: the phase
    # reads further than intake, checks the signature on every byte and holds the comment.
    before = await keys_of(redis_client)
    long = copy.deepcopy(NEW_COMMENT)
    long["comment"]["body"] = "Ты идиот, и все это знают. " * 6_000
    body = coral_body(long)
    assert 256 * 1024 < len(body) < PHASE_MAX_BODY_BYTES
    response = await send(client, body)
    assert response.status == 200
    answer = await response.json()
    assert answer == {"status": "SYSTEM_WITHHELD"}
    assert_coral_accepts(answer)
    assert await keys_of(redis_client) == before


async def test_a_long_body_signed_only_in_part_is_refused_without_an_answer(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    before = await keys_of(redis_client)
    long = copy.deepcopy(NEW_COMMENT)
    long["comment"]["body"] = "Ты идиот. " * 20_000
    body = coral_body(long)
    response = await send(client, body, signature=coral_signature(body[:65_536], SECRET))
    assert response.status == 401
    assert (await response.json())["error"]["message"] == (
        "X-Coral-Signature does not match the body"
    )
    assert await keys_of(redis_client) == before


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_phase_body_too_large_to_verify_is_refused_not_answered(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis, chunked: bool
) -> None:
    # No signature can be checked without reading every byte, so past the bound nothing is
    # answered but the 413, signed or not: not even a hold.
    before = await keys_of(redis_client)
    long = copy.deepcopy(NEW_COMMENT)
    long["comment"]["body"] = "x" * PHASE_MAX_BODY_BYTES
    body = coral_body(long)
    headers = {
        "Content-Type": "application/json",
        "X-Coral-Signature": coral_signature(body, SECRET),
    }

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    response = await client.post(
        "/v1/integrations/coral/news",
        data=chunks() if chunked else io.BytesIO(body),
        headers=headers,
    )
    assert response.status == 413
    assert await response.json() == {
        "error": {
            "code": "payload_too_large",
            "message": f"request body is larger than {PHASE_MAX_BODY_BYTES} bytes",
            "details": None,
        }
    }
    assert await keys_of(redis_client) == before


async def test_a_story_url_too_long_to_keep_is_dropped_not_refused(
    client: Client, coral_site: dict[str, str]
) -> None:
    long_url = copy.deepcopy(NEW_COMMENT)
    long_url["story"]["url"] = "https://news.example/" + "a" * 2_100
    response = await send(client, long_url)
    assert response.status == 204
    assert (await stored(client, coral_site, long_url)).status == 200


async def test_fields_coral_may_add_are_ignored(client: Client, coral_site: dict[str, str]) -> None:
    extended = copy.deepcopy(NEW_COMMENT)
    extended["comment"]["media"] = {"type": "giphy"}
    extended["future"] = True
    assert (await send(client, extended)).status == 204


async def test_a_malformed_request_lists_every_bad_field(
    client: Client, coral_site: dict[str, str], redis_client: aioredis.Redis
) -> None:
    before = await keys_of(redis_client)
    broken = copy.deepcopy(NEW_COMMENT)
    broken["action"] = "DELETE"
    del broken["author"]["id"]
    response = await send(client, broken)
    assert response.status == 422
    fields = sorted(item["field"] for item in (await response.json())["error"]["details"])
    assert fields == ["action", "author.id"]
    not_json = await send(client, b"{nope")
    assert not_json.status == 400
    wrong_type = await send(client, coral_body(NEW_COMMENT), content_type="text/plain")
    assert wrong_type.status == 415
    assert await keys_of(redis_client) == before
