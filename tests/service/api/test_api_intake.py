"""Signed intake end to end: signatures, idempotent redelivery, edits, every refusal."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from service import signatures
from service.appkeys import CLOCK, MODERATION
from service.domain import AuthorStatus
from service.keys import KeySpace
from service.settings import Settings
from service.store.records import IntakeWrite, Observation, StaleContextError
from service.times import iso
from tests.clocks import Clock
from tests.seed import seed_article

Client = TestClient[web.Request, web.Application]
CIVIL = "Thanks for the careful reporting, the second paragraph answered my question."


def comment(
    comment_id: str = "c1",
    text: str = CIVIL,
    *,
    author: str = "reader-1",
    article: str = "a1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": article, "title": "An article"},
        "author": {"id": author, "name": "A Reader"},
        "text": text,
        **extra,
    }


def unauthorized(message: str) -> dict[str, Any]:
    return {"error": {"code": "unauthorized", "message": message, "details": None}}


async def test_a_signed_civil_comment_is_approved_at_once(
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str]
) -> None:
    response = await post_signed(site, comment())
    assert response.status == 202
    verdict = await response.json()
    model = await (await client.get("/v1/model", headers=admin)).json()
    assert verdict["id"] == "c1"
    assert verdict["state"] == "approved"
    assert verdict["reasons"] == []
    assert set(verdict["scores"]) >= {"spam", "toxicity"}
    assert all(0.0 <= p <= 1.0 for p in verdict["scores"].values())
    assert verdict["model"] == model["version"]
    assert verdict["version"] == 1
    assert set(verdict) == {"id", "state", "reasons", "scores", "model", "version"}


async def test_a_wrong_secret_is_refused_and_stores_nothing(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    response = await post_signed(site, comment(), secret="not-the-secret")
    assert response.status == 401
    assert await response.json() == unauthorized(
        "Civility-Signature does not match any valid secret for this site"
    )
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404


async def test_a_body_changed_after_signing_is_refused(
    client: Client, site: dict[str, str]
) -> None:
    signed = json.dumps(comment()).encode()
    tampered = json.dumps(comment(text="Buy cheap pills now")).encode()
    response = await client.post(
        "/v1/sites/news/comments",
        data=tampered,
        headers={
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(
                site["webhook_secret"], signed, timestamp=int(client.app[CLOCK]())
            ),
        },
    )
    assert response.status == 401
    assert await response.json() == unauthorized(
        "Civility-Signature does not match any valid secret for this site"
    )


async def test_a_signature_in_upper_case_hex_is_the_same_signature(
    client: Client, site: dict[str, str]
) -> None:
    # Hex digits have no case: senders whose HMAC library spells them in upper case (Java's
    # DatatypeConverter, .NET's Convert.ToHexString, RFC 4648's base16) sign just as well.
    raw = json.dumps(comment()).encode()
    now = int(client.app[CLOCK]())
    upper = signatures.compute(site["webhook_secret"], now, raw).upper()
    response = await client.post(
        "/v1/sites/news/comments",
        data=raw,
        headers={"Content-Type": "application/json", signatures.HEADER: f"t={now},v1={upper}"},
    )
    assert response.status == 202, await response.text()


@pytest.mark.parametrize("age", [301, -301, 3600])
async def test_a_stale_signature_is_refused(
    site: dict[str, str], post_signed: Any, clock: Clock, age: int
) -> None:
    response = await post_signed(site, comment(), timestamp=int(clock()) - age)
    assert response.status == 401
    assert await response.json() == unauthorized(
        "Civility-Signature timestamp is outside the 300 s tolerance"
    )


@pytest.mark.parametrize("shift", [3_600, -3_600])
async def test_a_signature_is_fresh_by_the_services_clock(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    clock: Clock,
    shift: float,
) -> None:
    clock.advance(shift)
    # Signed at the machine's time, an hour from the service's, it is stale.
    response = await post_signed(site, comment(), timestamp=int(time.time()))
    assert response.status == 401
    assert await response.json() == unauthorized(
        "Civility-Signature timestamp is outside the 300 s tolerance"
    )
    assert (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).status == 404
    for age in (299, -299):
        response = await post_signed(site, comment(f"c{age}"), timestamp=int(clock()) - age)
        assert response.status == 202, await response.text()


async def test_a_missing_or_malformed_signature_is_refused(
    client: Client, site: dict[str, str]
) -> None:
    body = json.dumps(comment()).encode()
    plain = {"Content-Type": "application/json"}
    response = await client.post("/v1/sites/news/comments", data=body, headers=plain)
    assert response.status == 401
    assert await response.json() == unauthorized("missing Civility-Signature header")
    response = await client.post(
        "/v1/sites/news/comments", data=body, headers={**plain, signatures.HEADER: "v1=abc"}
    )
    assert response.status == 401
    assert await response.json() == unauthorized("Civility-Signature header has no timestamp")


async def test_a_rotated_secret_keeps_the_old_one_valid_during_the_grace_period(
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str]
) -> None:
    response = await client.post("/v1/sites/news/secrets:rotate", headers=admin)
    assert response.status == 200
    rotation = await response.json()
    new_secret = rotation["webhook_secret"]
    assert new_secret != site["webhook_secret"]
    assert (await post_signed(site, comment("c1"))).status == 202
    assert (await post_signed(site, comment("c2"), secret=new_secret)).status == 202
    both = [site["webhook_secret"], new_secret]
    assert (await post_signed(site, comment("c3"), secret=both)).status == 202


async def test_twenty_concurrent_deliveries_of_one_comment_create_it_once(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    body = json.dumps(comment("dup")).encode()
    responses = await asyncio.gather(*(post_signed(site, body) for _ in range(20)))
    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * 19 + [202]
    bodies = [await response.json() for response in responses]
    assert all(answer == bodies[0] for answer in bodies)
    stored = await (await client.get("/v1/sites/news/comments/dup", headers=moderator(site))).json()
    assert stored["version"] == 1
    assert len(stored["history"]) == 1


async def test_a_redelivery_changes_nothing(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    first = await post_signed(site, comment())
    before = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    again = await post_signed(site, comment())
    after = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (first.status, again.status) == (202, 200)
    assert await first.json() == await again.json()
    assert before == after


async def test_the_same_id_with_new_text_is_moderated_again_as_an_edit(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    assert (await post_signed(site, comment(text=CIVIL))).status == 202
    edited = await post_signed(site, comment(text="Edited: buy cheap viagra at spam.example"))
    assert edited.status == 202
    verdict = await edited.json()
    assert verdict["version"] == 2
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert stored["text"] == "Edited: buy cheap viagra at spam.example"
    assert len(stored["history"]) == 2
    # The edit, delivered again, is a redelivery.
    again = await post_signed(site, comment(text="Edited: buy cheap viagra at spam.example"))
    assert again.status == 200
    assert await again.json() == verdict


FIRST_WRITTEN = "2026-11-27T09:00:00Z"
EDIT = "Edited: the third paragraph answered it too."
EDITED_AT = "2026-11-27T09:05:00.000Z"


@pytest.mark.parametrize(
    ("text", "dated"),
    [
        (CIVIL, {}),
        (CIVIL, {"edited_at": "2026-11-27T09:00:00Z"}),
        ("Edited: an earlier try at it.", {"edited_at": "2026-11-27T09:04:59.999Z"}),
        ("Edited: another text of that moment.", {"edited_at": "2026-11-27T10:05:00+01:00"}),
    ],
    ids=["the first text", "the first text dated", "an older edit", "an edit of the same time"],
)
async def test_a_delivery_dated_before_the_stored_edit_is_a_late_retry_and_changes_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    text: str,
    dated: dict[str, str],
) -> None:
    assert (await post_signed(site, comment(created_at=FIRST_WRITTEN))).status == 202
    edited = await post_signed(
        site, comment(text=EDIT, created_at=FIRST_WRITTEN, edited_at=EDITED_AT)
    )
    assert edited.status == 202
    before = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    late = await post_signed(site, comment(text=text, created_at=FIRST_WRITTEN, **dated))
    assert late.status == 200
    assert await late.json() == await edited.json()
    after = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert after == before
    assert (after["text"], after["version"], after["edited_at"]) == (EDIT, 2, EDITED_AT)
    assert len(after["history"]) == 2


async def test_an_edit_dated_after_the_stored_one_is_moderated_as_an_edit(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    assert (await post_signed(site, comment(created_at=FIRST_WRITTEN))).status == 202
    assert (await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))).status == 202
    later = await post_signed(
        site,
        comment(
            text="Edited again: buy cheap viagra at spam.example",
            edited_at="2026-11-27T09:05:00.001Z",
        ),
    )
    assert later.status == 202
    assert (await later.json())["version"] == 3
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert stored["text"] == "Edited again: buy cheap viagra at spam.example"
    assert stored["edited_at"] == "2026-11-27T09:05:00.001Z"
    assert stored["created_at"] == "2026-11-27T09:00:00.000Z"
    assert [entry.get("previous_text") for entry in stored["history"]][1:] == [CIVIL, EDIT]
    # The first text sent back now, dated when it was written, is stale too.
    assert (await post_signed(site, comment(edited_at=FIRST_WRITTEN))).status == 200


async def test_the_same_text_dated_later_moves_the_edit_time_past_a_late_edit(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    # The host edits the text at 09:05, again at 09:06 (that webhook is retried later) and
    # back to its 09:05 text at 09:07.
    assert (await post_signed(site, comment(created_at=FIRST_WRITTEN))).status == 202
    edited = await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))
    assert edited.status == 202
    saved_again = await post_signed(site, comment(text=EDIT, edited_at="2026-11-27T09:07:00Z"))
    assert saved_again.status == 200
    assert await saved_again.json() == await edited.json()
    late = await post_signed(site, comment(text="Edited twice.", edited_at="2026-11-27T09:06:00Z"))
    assert late.status == 200
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["text"], stored["version"]) == (EDIT, 2)
    assert stored["edited_at"] == "2026-11-27T09:07:00.000Z"
    # An older date of the same text leaves it.
    assert (await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))).status == 200
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert stored["edited_at"] == "2026-11-27T09:07:00.000Z"


async def test_each_edit_in_the_history_keeps_the_time_the_host_dated_it(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    admin: dict[str, str],
) -> None:
    assert (await post_signed(site, comment(created_at=FIRST_WRITTEN))).status == 202
    assert (await post_signed(site, comment(text="Edited, undated."))).status == 202
    assert (await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))).status == 202
    again = comment(
        text="Edited again: the fourth one too.", edited_at="2026-11-27T10:06:30.5+01:00"
    )
    assert (await post_signed(site, again)).status == 202
    path = "/v1/sites/news/comments/c1"
    stored = await (await client.get(path, headers=moderator(site))).json()
    assert [entry["action"] for entry in stored["history"]] == ["create", "edit", "edit", "edit"]
    dated = [None, None, EDITED_AT, "2026-11-27T09:06:30.500Z"]
    assert [entry.get("edited_at") for entry in stored["history"]] == dated
    # Erasing the author takes the old texts out of the history, not the edits' times.
    erased = await client.post("/v1/sites/news/authors/reader-1:erase", headers=admin)
    assert erased.status == 200, await erased.text()
    stored = await (await client.get(path, headers=moderator(site))).json()
    assert [entry.get("previous_text") for entry in stored["history"]] == [None] * 4
    assert [entry.get("edited_at") for entry in stored["history"]] == dated


async def test_an_edit_back_to_the_stored_text_keeps_its_time_for_the_edit_it_overtook(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    assert (await post_signed(site, comment(created_at=FIRST_WRITTEN))).status == 202
    # The host edited the text at 09:05, then back to the first one at 09:10; the second
    # edit's delivery came first, and changes nothing but the time of the text.
    back = await post_signed(site, comment(edited_at="2026-11-27T09:10:00Z"))
    assert (back.status, (await back.json())["version"]) == (200, 1)
    # The 09:05 edit, arriving now, is older than the text stored.
    overtaken = await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))
    assert (overtaken.status, (await overtaken.json())["version"]) == (200, 1)
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["text"], stored["version"]) == (CIVIL, 1)
    assert stored["edited_at"] == "2026-11-27T09:10:00.000Z"


@pytest.mark.parametrize(
    "first_dated", [EDITED_AT, None], ids=["delivered edited", "delivered undated"]
)
async def test_the_creation_entry_keeps_the_edit_time_the_comment_was_first_delivered_with(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    first_dated: str | None,
) -> None:
    dated = {"edited_at": first_dated} if first_dated else {}
    first = comment(text=EDIT, created_at=FIRST_WRITTEN, **dated)
    assert (await post_signed(site, first)).status == 202
    path = "/v1/sites/news/comments/c1"

    async def history() -> list[tuple[str, str | None]]:
        stored = await (await client.get(path, headers=moderator(site))).json()
        return [(entry["action"], entry.get("edited_at")) for entry in stored["history"]]

    assert await history() == [("create", first_dated)]
    # The host saving the same text again moves the comment's edit time, not the creation's.
    saved_again = comment(text=EDIT, edited_at="2026-11-27T09:07:00.000Z")
    assert (await post_signed(site, saved_again)).status == 200
    assert await history() == [("create", first_dated)]
    edit = comment(text="Edited once more.", edited_at="2026-11-27T09:08:00.000Z")
    assert (await post_signed(site, edit)).status == 202
    assert await history() == [("create", first_dated), ("edit", "2026-11-27T09:08:00.000Z")]


async def test_a_comment_first_delivered_with_an_edit_time_keeps_it(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    assert (await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))).status == 202
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["text"], stored["edited_at"]) == (EDIT, EDITED_AT)
    # The text as first written, arriving after its edit, is stale.
    assert (await post_signed(site, comment())).status == 200


@pytest.mark.parametrize(
    "created", [{}, {"created_at": FIRST_WRITTEN}], ids=["undated", "with its creation time"]
)
async def test_an_older_edit_of_a_comment_first_delivered_edited_is_a_late_retry(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    created: dict[str, str],
) -> None:
    # Created at its edit time (no created_at came with it), as a comment delivered with one is
    # kept by it: an edit the host made before, arriving late, changes nothing.
    first = await post_signed(site, comment(text=EDIT, edited_at=EDITED_AT))
    assert first.status == 202
    path = "/v1/sites/news/comments/c1"
    before = await (await client.get(path, headers=moderator(site))).json()
    assert before["created_at"] == EDITED_AT
    older = comment(text="Edited: an earlier try at it.", edited_at="2026-11-27T09:04:00Z")
    late = await post_signed(site, {**older, **created})
    assert late.status == 200
    assert await late.json() == await first.json()
    assert await (await client.get(path, headers=moderator(site))).json() == before


async def test_without_edit_times_the_first_text_sent_again_after_an_edit_is_an_edit(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    assert (await post_signed(site, comment())).status == 202
    assert (await post_signed(site, comment(text=EDIT))).status == 202
    again = await post_signed(site, comment())
    assert again.status == 202
    assert (await again.json())["version"] == 3
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["text"], stored["edited_at"]) == (CIVIL, None)


async def test_an_edit_time_before_the_creation_time_given_with_it_is_refused(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    response = await post_signed(
        site, comment(created_at=FIRST_WRITTEN, edited_at="2026-11-27T09:59:59.999+01:00")
    )
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["field"] == "edited_at"
    assert "is before the comment's created_at (2026-11-27T09:00:00.000Z)" in detail["message"]
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404
    # The same moment is a text edited as it was written.
    same = await post_signed(site, comment(created_at=FIRST_WRITTEN, edited_at=FIRST_WRITTEN))
    assert same.status == 202, await same.text()


async def test_an_edit_dated_before_the_stored_creation_time_is_taken(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    clock: Clock,
) -> None:
    # Created by the server's clock; the host's clock trails it by a few seconds.
    assert (await post_signed(site, comment())).status == 202
    path = "/v1/sites/news/comments/c1"
    created_at = (await (await client.get(path, headers=moderator(site))).json())["created_at"]
    clock.advance(2)
    edited_at = seconds_ahead(clock, -5)
    assert edited_at < created_at
    response = await post_signed(site, comment(text=EDIT, edited_at=edited_at))
    assert response.status == 202, await response.text()
    stored = await (await client.get(path, headers=moderator(site))).json()
    assert (stored["text"], stored["edited_at"], stored["version"]) == (EDIT, edited_at, 2)


async def test_a_comment_first_delivered_edited_without_a_creation_time_is_created_by_then(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    clock: Clock,
) -> None:
    edited_at = seconds_ahead(clock, -3_600)
    response = await post_signed(site, comment(text=EDIT, edited_at=edited_at))
    assert response.status == 202, await response.text()
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["created_at"], stored["edited_at"]) == (edited_at, edited_at)
    # Dated ahead of the server's clock, the edit leaves the creation time at the clock's.
    ahead = seconds_ahead(clock, 3_600)
    response = await post_signed(site, comment("c2", EDIT, edited_at=ahead))
    assert response.status == 202, await response.text()
    stored = await (await client.get("/v1/sites/news/comments/c2", headers=moderator(site))).json()
    assert stored["created_at"] < ahead == stored["edited_at"]


async def test_an_edit_time_that_cannot_be_stored_is_refused_and_stores_nothing(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    response = await post_signed(site, comment(edited_at="1969-12-31T23:59:59Z"))
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["field"] == "edited_at"
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404


async def test_an_unknown_site_answers_404(client: Client, post_signed: Any) -> None:
    ghost = {"id": "ghost", "webhook_secret": "whatever"}
    response = await post_signed(ghost, comment())
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_body_that_is_not_json_media_type_answers_415(
    client: Client, site: dict[str, str], post_signed: Any
) -> None:
    response = await post_signed(site, comment(), headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert await response.json() == {
        "error": {
            "code": "unsupported_media_type",
            "message": "request body must be application/json, not text/plain",
            "details": None,
        }
    }


async def test_an_oversized_body_answers_413_before_any_check(
    client: Client, site: dict[str, str], post_signed: Any
) -> None:
    body = comment(text="x" * 70_000)
    response = await post_signed(site, body)
    assert response.status == 413
    assert await response.json() == {
        "error": {
            "code": "payload_too_large",
            "message": "request body is larger than 65536 bytes",
            "details": None,
        }
    }


async def test_an_oversized_chunked_body_answers_413_too(
    client: Client, site: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 4096

    response = await client.post(
        "/v1/sites/news/comments",
        data=chunks(),
        headers={"Content-Type": "application/json", signatures.HEADER: "t=1,v1=00"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_the_signature_is_checked_before_the_body_is_parsed(
    site: dict[str, str], post_signed: Any
) -> None:
    response = await post_signed(site, b'{"id": "c1", "text": ', secret="not-the-secret")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_invalid_json_answers_400(site: dict[str, str], post_signed: Any) -> None:
    response = await post_signed(site, b'{"id": "c1", "text": ')
    assert response.status == 400
    assert await response.json() == {
        "error": {
            "code": "bad_request",
            "message": "request body is not valid JSON: EOF while parsing a value at line 1 "
            "column 21",
            "details": None,
        }
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Latin-1, and a surrogate encoded as if it were a character (CESU-8, Java's "modified").
        (b"caf\xe9", "request body is not valid UTF-8: byte 0xe9 at offset 123"),
        (b"\xed\xa0\xbd\xed\xb8\x80", "request body is not valid UTF-8: byte 0xed at offset 120"),
        # Half an emoji, as a UTF-16 string cut in two writes it.
        (
            b"\\ud83d",
            "request body is not valid JSON: a \\u escape near line 1 column 127 is half a "
            "UTF-16 surrogate pair, not a character",
        ),
        (
            b"\\ude00 smile",
            "request body is not valid JSON: a \\u escape near line 1 column 126 is half a "
            "UTF-16 surrogate pair, not a character",
        ),
    ],
    ids=["latin-1", "cesu-8", "lone high surrogate", "lone low surrogate"],
)
async def test_a_body_that_is_no_text_says_what_and_where_and_stores_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    text: bytes,
    message: str,
) -> None:
    raw = json.dumps(comment(text="")).encode()
    raw = raw.replace(b'"text": ""', b'"text": "' + text + b'"')
    response = await post_signed(site, raw)
    assert response.status == 400
    assert await response.json() == {
        "error": {"code": "bad_request", "message": message, "details": None}
    }
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404


async def test_every_failing_field_is_listed_with_422(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    body = {
        "id": "",
        "article": {"url": "not a url"},
        "author": {"id": "a1", "email": "nobody"},
        "text": "y" * 20_001,
        "colour": "red",
    }
    response = await post_signed(site, body)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    fields = sorted(item["field"] for item in error["details"])
    assert fields == ["article.id", "article.url", "author.email", "colour", "id", "text"]
    assert all(item["message"] for item in error["details"])


@pytest.mark.parametrize(
    "text",
    [
        " ",
        "\n\t \r\n",
        "\u00a0\u2003\u3000\u2028",  # no-break, em and ideographic spaces, a line separator
        "\u200b\u200d\u2060\ufeff",  # zero-width space, joiner, word joiner, BOM
        " \u200b\u00ad\u200e \u3164",  # soft hyphen, a direction mark, the Hangul filler
        "\u2800\u2800\u2800",  # Braille pattern blanks, which the model's normalisation keeps
        "\u115f\u1160\uffa0 \ufe0f\u034f\U000e0100",  # fillers, selectors, grapheme joiner
        "\u0301\u0301\u0301",  # accents with no letter to sit on
        "\u0336\u0334\u0321 \u035c\u0489\n\u20dd\u200b",  # a "Zalgo" text of marks alone
    ],
)
async def test_a_text_with_nothing_visible_is_refused_and_stores_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    text: str,
) -> None:
    response = await post_signed(site, comment(text=text))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert [item["field"] for item in error["details"]] == ["text"]
    assert "visible" in error["details"][0]["message"]
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404
    # Nor does an edit blank out a comment already stored.
    assert (await post_signed(site, comment())).status == 202
    assert (await post_signed(site, comment(text=text))).status == 422
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert ((await stored.json())["text"], (await stored.json())["version"]) == (CIVIL, 1)


@pytest.mark.parametrize(
    "name",
    [
        "\u200b",
        "\u2060\u200d\u00ad",
        " \u200e\u3164 ",
        "\u2800",
        "\ufe0f\u034f\u180b",
        "\u0301 \u0489",
    ],
)
async def test_an_author_name_with_nothing_visible_is_refused_and_stores_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    name: str,
) -> None:
    # Shown, it would be no name at all: the console would show the author as nobody rather
    # than by id, as it does an author without a name.
    body = comment()
    body["author"]["name"] = name
    response = await post_signed(site, body)
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["field"] == "author.name"
    assert "visible" in detail["message"]
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404


async def test_letters_under_combining_marks_are_read_and_stored(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    text = "Z\u0336a\u0334l\u0321g\u035co\u0489 says hi\u0301\u0301"
    body = comment(text=text)
    body["author"]["name"] = "Rene\u0301e"
    assert (await post_signed(site, body)).status == 202
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["text"], stored["author"]["name"]) == (text, "Rene\u0301e")


async def test_a_comment_whose_author_name_was_stored_invisible_is_still_read(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    # Stored before such names were refused: a rule for what arrives, not for what is kept.
    assert (await post_signed(site, comment())).status == 202
    stored_author = json.dumps({"id": "reader-1", "name": "\u200b"})
    await redis_client.hset(
        KeySpace(settings.redis_prefix).comment("news", "c1"), "author", stored_author
    )
    response = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert response.status == 200
    assert (await response.json())["author"] == {"id": "reader-1", "name": "\u200b"}


@pytest.mark.parametrize(
    "created_at", ["0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00"]
)
async def test_a_creation_time_that_cannot_be_stored_is_refused_and_stores_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    created_at: str,
) -> None:
    response = await post_signed(site, comment(created_at=created_at))
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["field"] == "created_at"
    assert "1970-01-01" in detail["message"]
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404
    queue = await (await client.get("/v1/sites/news/queue", headers=moderator(site))).json()
    assert queue["items"] == []


@pytest.mark.parametrize("field", ["created_at", "edited_at"])
@pytest.mark.parametrize("value", [1764234000, "1764234000", 1764234000000, "1764234000000"])
async def test_a_time_given_as_a_number_is_refused_and_stores_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    field: str,
    value: int | str,
) -> None:
    dated: dict[str, Any] = {field: value}
    response = await post_signed(site, comment(**dated))
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["field"] == field
    assert "ISO 8601" in detail["message"]
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404


def seconds_ahead(clock: Clock, seconds: float) -> str:
    """The moment ``seconds`` after the app's clock, as intake takes it."""
    return iso(datetime.fromtimestamp(clock() + seconds, UTC))


@pytest.mark.parametrize("field", ["created_at", "edited_at"])
async def test_a_time_more_than_a_day_ahead_of_the_clock_is_refused_and_stores_nothing(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    clock: Clock,
    field: str,
) -> None:
    ahead = seconds_ahead(clock, 86_400 + 60)
    response = await post_signed(site, comment(**{field: ahead}))
    assert response.status == 422
    [detail] = (await response.json())["error"]["details"]
    assert detail["field"] == field
    assert "more than a day ahead of the server's clock" in detail["message"]
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert stored.status == 404
    # The same time once the server's clock is within a day of it: a host a day ahead is taken.
    clock.advance(60)
    response = await post_signed(site, comment(**{field: ahead}))
    assert response.status == 202, await response.text()
    stored = await client.get("/v1/sites/news/comments/c1", headers=moderator(site))
    assert (await stored.json())[field] == ahead


async def test_a_space_for_the_t_is_read_as_the_same_moment(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    # The form Python's str(datetime) writes.
    created_at = str(datetime(2026, 11, 27, 10, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1))))
    assert created_at == "2026-11-27 10:00:00.250000+01:00"
    spaced = comment(created_at=created_at, edited_at="2026-11-27 09:05:00Z")
    response = await post_signed(site, spaced)
    assert response.status == 202, await response.text()
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["created_at"], stored["edited_at"]) == (
        "2026-11-27T09:00:00.250Z",
        "2026-11-27T09:05:00.000Z",
    )


async def test_a_leap_second_is_read_as_the_last_millisecond_before_the_next_minute(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    path = "/v1/sites/news/comments/c1"
    created = comment(created_at="2016-12-31T23:59:59.500Z", edited_at="2016-12-31T18:59:60-05:00")
    response = await post_signed(site, created)
    assert response.status == 202, await response.text()
    stored = await (await client.get(path, headers=moderator(site))).json()
    assert (stored["created_at"], stored["edited_at"]) == (
        "2016-12-31T23:59:59.500Z",
        "2016-12-31T23:59:59.999Z",
    )
    # Later within the leap second is no later than the stored text; the next minute is.
    late = await post_signed(site, comment(text=EDIT, edited_at="2016-12-31 23:59:60.750Z"))
    assert late.status == 200
    later = await post_signed(site, comment(text=EDIT, edited_at="2017-01-01T00:00:00Z"))
    assert later.status == 202
    stored = await (await client.get(path, headers=moderator(site))).json()
    assert (stored["text"], stored["edited_at"]) == (EDIT, "2017-01-01T00:00:00.000Z")


@pytest.mark.parametrize(
    "created_at", ["2004-08-09T21:35:34.567Z", "1978-09-17T02:04:49.905+02:00"]
)
async def test_a_creation_time_keeps_its_millisecond(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    created_at: str,
) -> None:
    # Imported comments: their times were once read a millisecond short.
    assert (await post_signed(site, comment(created_at=created_at))).status == 202
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert stored["created_at"] == iso(datetime.fromisoformat(created_at))


async def test_the_earliest_storable_creation_time_is_kept(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    response = await post_signed(site, comment(created_at="1970-01-01T00:00:00Z"))
    assert response.status == 202
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert stored["created_at"].startswith("1970-01-01T00:00:00")


async def test_a_resend_that_changes_author_or_article_is_refused_even_with_the_same_text(
    client: Client, site: dict[str, str], post_signed: Any, moderator: Callable[..., Any]
) -> None:
    assert (await post_signed(site, comment())).status == 202
    response = await post_signed(site, comment(author="someone-else", article="a2"))
    assert response.status == 422
    fields = sorted(item["field"] for item in (await response.json())["error"]["details"])
    assert fields == ["article.id", "author.id"]
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["author"]["id"], stored["article_id"], stored["version"]) == (
        "reader-1",
        "a1",
        1,
    )


@pytest.mark.parametrize(
    ("first", "then"),
    [("p1", "p2"), (None, "p2"), ("p1", None)],
    ids=["another parent", "a parent given later", "the parent left out"],
)
@pytest.mark.parametrize("text", [CIVIL, "Edited: the third paragraph answered it too."])
async def test_a_resend_or_edit_that_changes_the_parent_is_refused_naming_it(
    client: Client,
    site: dict[str, str],
    post_signed: Any,
    moderator: Callable[..., Any],
    first: str | None,
    then: str | None,
    text: str,
) -> None:
    assert (await post_signed(site, comment(parent_id=first))).status == 202
    response = await post_signed(site, comment(text=text, parent_id=then))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    assert error["details"] == [
        {"field": "parent_id", "message": "an existing comment cannot answer another comment"}
    ]
    stored = await (await client.get("/v1/sites/news/comments/c1", headers=moderator(site))).json()
    assert (stored["parent_id"], stored["text"], stored["version"]) == (first, CIVIL, 1)
    # The comment as first sent is still a redelivery, and an edit of its text alone still one.
    assert (await post_signed(site, comment(parent_id=first))).status == 200
    assert (await post_signed(site, comment(text="Edited.", parent_id=first))).status == 202


async def test_policy_reasons_are_returned_with_the_verdict(
    client: Client, create_site: Any, post_signed: Any
) -> None:
    # Scores never reject here, so each rule's own effect shows in the state.
    never = dict.fromkeys(("spam", "toxicity", "severe_toxicity", "insult", "threat"), 1.0)
    strict = await create_site(
        "strict",
        banned_words=["grobble"],
        suspect_words=["moonbeam"],
        max_links=1,
        reject={**never, "identity_attack": 1.0, "profanity": 1.0},
    )
    banned = await (await post_signed(strict, comment("b", "You grobble, all of you."))).json()
    assert banned["state"] == "rejected"
    assert "BANNED_WORD" in banned["reasons"]
    suspect = await (await post_signed(strict, comment("s", "A moonbeam over the harbour."))).json()
    assert suspect["state"] == "pending"
    assert "SUSPECT_WORD" in suspect["reasons"]
    links = "Sources: https://a.example/1 and https://b.example/2 and https://c.example/3"
    linked = await (await post_signed(strict, comment("l", links))).json()
    assert linked["state"] == "pending"
    assert "LINKS" in linked["reasons"]


async def test_links_joined_by_punctuation_count_one_by_one(
    create_site: Any, post_signed: Any
) -> None:
    never = dict.fromkeys(("spam", "toxicity", "severe_toxicity", "insult", "threat"), 1.0)
    linked = await create_site(
        "linked", max_links=2, reject={**never, "identity_attack": 1.0, "profanity": 1.0}
    )
    text = "Sources: https://a.example/1,https://b.example/2,https://c.example/3"
    verdict = await (await post_signed(linked, comment("l", text))).json()
    assert verdict["state"] == "pending"
    assert "LINKS" in verdict["reasons"]


async def test_a_banned_word_hidden_by_invisible_or_look_alike_characters_is_still_banned(
    client: Client, create_site: Any, post_signed: Any, moderator: Callable[..., Any]
) -> None:
    never = dict.fromkeys(("spam", "toxicity", "severe_toxicity", "insult", "threat"), 1.0)
    strict = await create_site(
        "strict",
        banned_words=["grobble", "café"],
        suspect_words=["moonbeam"],
        reject={**never, "identity_attack": 1.0, "profanity": 1.0},
        duplicate_window_seconds=0,
    )
    written = {
        "zero-width": ("You gro\u200bbble, all of you.", "gro\u200bbble", "BANNED_WORD"),
        "fullwidth": ("You ｇｒｏｂｂｌｅ, all of you.", "ｇｒｏｂｂｌｅ", "BANNED_WORD"),
        "decomposed": ("Meet me at the cafe\u0301 tonight.", "cafe\u0301", "BANNED_WORD"),
        "soft-hyphen": ("A moon\u00adbeam over the harbour.", "moon\u00adbeam", "SUSPECT_WORD"),
        # Offsets count code points: each emoji before the word is one, not two UTF-16 units.
        "emoji": ("\U0001f600\U0001f44d\U0001f3fd You grobble, all.", "grobble", "BANNED_WORD"),
    }
    for name, (text, word, reason) in written.items():
        verdict = await (await post_signed(strict, comment(name, text))).json()
        assert reason in verdict["reasons"], name
        stored = await (
            await client.get(f"/v1/sites/strict/comments/{name}", headers=moderator(strict))
        ).json()
        assert stored["text"] == text
        [(start, end)] = stored["evidence"][reason.lower()]
        assert text[start:end] == word


async def test_a_context_that_keeps_changing_answers_409_as_documented(
    client: Client, site: dict[str, str], post_signed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.app[MODERATION].store

    async def stale(site_id: str, write: IntakeWrite) -> Any:
        # Each attempt finds the author's standing moved again by another request.
        flip = write.assumed.author_status is AuthorStatus.ACTIVE
        status = AuthorStatus.PREMOD if flip else AuthorStatus.ACTIVE
        windows = write.assumed.windows_taken
        raise StaleContextError(Observation(author_status=status, windows_taken=windows))

    monkeypatch.setattr(store, "write_intake", stale)
    response = await post_signed(site, comment())
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "conflict"


async def test_a_closed_article_rejects_new_comments(
    client: Client, site: dict[str, str], post_signed: Any
) -> None:
    response = await post_signed(
        site,
        {"id": "a1", "title": "Closed for comments", "closed": True},
        path="/v1/sites/news/articles/a1",
        method="PUT",
    )
    assert response.status == 200
    assert (await response.json())["closed"] is True
    verdict = await (await post_signed(site, comment(article="a1"))).json()
    assert verdict["state"] == "rejected"
    assert "ARTICLE_CLOSED" in verdict["reasons"]


async def test_an_article_update_must_be_signed(client: Client, site: dict[str, str]) -> None:
    response = await client.put(
        "/v1/sites/news/articles/a1",
        json={"id": "a1", "closed": True},
        headers={signatures.HEADER: "t=1"},
    )
    assert response.status == 401


async def test_the_seed_article_comments_are_published(
    client: Client, site: dict[str, str], post_signed: Any
) -> None:
    seed = seed_article()
    for item in seed["comments"]:
        body = {
            "id": item["id"],
            "article": {"id": seed["article"]["id"], "title": seed["article"]["title"]},
            "author": item["author"],
            "text": item["text"],
        }
        verdict = await (await post_signed(site, body)).json()
        assert verdict["state"] == item["expected"], verdict


GERMAN = (
    "Die Regierung sollte die Brücke über den Fluss endlich reparieren, bevor der Winter kommt."
)


async def test_a_comment_in_a_language_the_model_cannot_read_is_held_unscored(
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str]
) -> None:
    response = await post_signed(site, comment("de1", GERMAN))
    verdict = await response.json()
    assert (verdict["state"], verdict["reasons"], verdict["scores"]) == (
        "pending",
        ["LANGUAGE"],
        {},
    )
    patched = await client.patch(
        "/v1/sites/news", json={"policy": {"other_languages": "publish"}}, headers=admin
    )
    assert patched.status == 200, await patched.text()
    published = await (await post_signed(site, comment("de2", GERMAN, author="r2"))).json()
    assert (published["state"], published["reasons"], published["scores"]) == (
        "approved",
        [],
        {},
    )
    # English is scored as before, whatever language the host names.
    english = await (await post_signed(site, comment("en1", lang="de", author="r3"))).json()
    assert english["state"] == "approved"
    assert english["scores"]


async def test_a_comment_shows_the_language_given_or_else_the_one_detected(
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str]
) -> None:
    given = await post_signed(site, comment("c1", lang="pt-PT"))
    assert given.status == 202, await given.text()
    detected = await post_signed(site, comment("c2"))
    assert detected.status == 202, await detected.text()
    views = [
        await (await client.get(f"/v1/sites/news/comments/{id_}", headers=admin)).json()
        for id_ in ("c1", "c2")
    ]
    assert [view["lang"] for view in views] == ["pt-PT", "en"]


async def test_a_byte_order_mark_before_the_json_is_ignored(
    client: Client, site: dict[str, str], post_signed: Any, admin: dict[str, str]
) -> None:
    # RFC 8259 (section 8.1) lets a parser ignore it; Windows tools write one.
    mark = b"\xef\xbb\xbf"
    response = await post_signed(site, mark + json.dumps(comment()).encode())
    assert response.status == 202, await response.text()
    view = await (await client.get("/v1/sites/news/comments/c1", headers=admin)).json()
    assert view["text"] == CIVIL
    decision = mark + json.dumps({"action": "reject", "reason": "off-topic"}).encode()
    response = await client.post(
        "/v1/sites/news/comments/c1/decision",
        data=decision,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["state"] == "rejected"
    # What is wrong after it is placed in the body as sent, the mark's bytes counted.
    response = await post_signed(site, mark + b'{"id": "c2", "text": ')
    assert response.status == 400
    message = (await response.json())["error"]["message"]
    assert message.endswith("EOF while parsing a value at line 1 column 24"), message
    response = await post_signed(site, mark + b'{"id": "caf\xe9"}')
    assert (await response.json())["error"]["message"] == (
        "request body is not valid UTF-8: byte 0xe9 at offset 14"
    )
