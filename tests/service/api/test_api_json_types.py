"""The native API's bodies take JSON's own types, as /openapi.json names them: a string for an
integer or a boolean, a fraction for an integer or a number for a string is 422 naming the field,
and nothing is written. Query strings, enumerations and times written as strings are read as
before."""

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from service import signatures
from service.openapi import NATIVE, documented_routes
from tests.service.api.openapi_check import refuses_body

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
TEXT = "A calm remark about the harbour and its boats."


def comment(comment_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": comment_id,
        "article": {"id": "a1"},
        "author": {"id": f"author-{comment_id}"},
        "text": TEXT,
        **fields,
    }


async def refused(
    client: Client,
    method: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    secret: str | None = None,
    documented: bool = True,
) -> list[str]:
    """Send ``body``, check the API refuses it with 422 (and the document too, where JSON Schema
    tells the types apart), and give the fields the answer names."""
    raw = json.dumps(body).encode()
    sent = {**(headers or {}), "Content-Type": "application/json"}
    if secret is not None:
        sent[signatures.HEADER] = signatures.sign(secret, raw)
    if documented:
        assert refuses_body(client.app, method, path, sent, raw), f"{method} {path} {body}"
    response = await client.request(method, path, data=raw, headers=sent)
    assert response.status == 422, f"{method} {path} {body}: {await response.text()}"
    error = (await response.json())["error"]
    assert error["code"] == "validation_failed"
    return sorted(item["field"] for item in error["details"])


async def test_intake_articles_and_reports_take_json_types(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("news")
    secret = site["webhook_secret"]
    mo = moderator(site)
    # Read as an IPv4 address by a lax reader (16909060 is 1.2.3.4).
    as_number = comment("c1", author={"id": "u1", "ip": 16909060})
    assert await refused(client, "POST", "/v1/sites/news/comments", as_number, secret=secret) == [
        "author.ip"
    ]
    assert (await client.get("/v1/sites/news/comments/c1", headers=mo)).status == 404

    for closed in ("true", 1):
        body = {"id": "a1", "closed": closed}
        path = "/v1/sites/news/articles/a1"
        assert await refused(client, "PUT", path, body, secret=secret) == ["closed"]
    # Nothing closed the article: a comment on it is published.
    verdict = await (await post_signed(site, comment("c2"))).json()
    assert verdict["state"] == "approved", verdict

    path = "/v1/sites/news/comments/c2/reports"
    report = {"comment_id": "c2", "reporter_id": 7, "reason": "spam"}
    assert await refused(client, "POST", path, report, secret=secret) == ["reporter_id"]
    view = await (await client.get("/v1/sites/news/comments/c2", headers=mo)).json()
    assert view["reports"] == []


async def test_sites_and_moderators_take_json_types(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    created = {"id": "blog", "name": "Blog", "policy": {"max_links": "1"}}
    assert await refused(client, "POST", "/v1/sites", created, admin) == ["policy.max_links"]
    assert (await client.get("/v1/sites/blog", headers=admin)).status == 404

    before = await (await client.get("/v1/sites/news", headers=admin)).json()
    rate = "author_premod_rejection_rate"
    patches: list[tuple[dict[str, Any], str, bool]] = [
        ({"policy": {"hold": {"toxicity": "0.5"}}}, "policy.hold.toxicity", True),
        ({"policy": {rate: "0.5"}}, f"policy.{rate}", True),
        ({"policy": {"report_threshold": True}}, "policy.report_threshold", True),
        # JSON Schema counts 5.0 as an integer; the API asks for one written as such.
        ({"policy": {"report_threshold": 5.0}}, "policy.report_threshold", False),
        ({"name": 5}, "name", True),
    ]
    for body, field, documented in patches:
        fields = await refused(
            client, "PATCH", "/v1/sites/news", body, admin, documented=documented
        )
        assert fields == [field]
    after = await (await client.get("/v1/sites/news", headers=admin)).json()
    assert after == before

    path = "/v1/sites/news/moderators"
    assert await refused(client, "POST", path, {"name": 5}, admin) == ["name"]
    listed = await (await client.get(path, headers=admin)).json()
    assert [item["name"] for item in listed["moderators"]] == ["Mo"]


async def test_decisions_and_author_statuses_take_json_types(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    mo = moderator(site)
    assert (await post_signed(site, comment("c1"))).status == 202

    path = "/v1/sites/held/comments/c1/decision"
    for version in ("1", True):
        body: dict[str, Any] = {"action": "approve", "version": version}
        assert await refused(client, "POST", path, body, mo) == ["version"]
    body = {"action": "approve", "version": 1.0}
    assert await refused(client, "POST", path, body, mo, documented=False) == ["version"]
    path = "/v1/sites/held/decisions"
    bulk: dict[str, Any] = {"decisions": [{"id": "c1", "action": "spam", "version": "1"}]}
    # Only the item's field: the request holds one decision, refused, not none.
    assert await refused(client, "POST", path, bulk, mo) == ["decisions.0.version"]
    assert await refused(client, "POST", path, {"decisions": []}, mo) == ["decisions"]
    view = await (await client.get("/v1/sites/held/comments/c1", headers=mo)).json()
    assert (view["state"], view["version"]) == ("pending", 1)

    path = "/v1/sites/held/authors/author-c1/status"
    body = {"status": "banned", "reject_pending": "true"}
    assert await refused(client, "POST", path, body, mo) == ["reject_pending"]
    author = await (await client.get("/v1/sites/held/authors/author-c1", headers=mo)).json()
    assert author["status"] == "active"
    view = await (await client.get("/v1/sites/held/comments/c1", headers=mo)).json()
    assert view["state"] == "pending"


async def test_claims_take_json_types_and_queries_stay_strings(
    client: Client, create_site: Any, post_signed: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    mo = moderator(site)
    for number in range(3):
        assert (await post_signed(site, comment(f"c{number}"))).status == 202

    claim: dict[str, Any] = {"limit": "2", "queue": "pending"}
    assert await refused(client, "POST", "/v1/sites/held/queue/claim", claim, mo) == ["limit"]
    path = "/v1/sites/held/comments/c0/claim"
    assert await refused(client, "POST", path, {"lease_seconds": "60"}, mo) == ["lease_seconds"]
    body = {"lease_seconds": 60.0}
    assert await refused(client, "POST", path, body, mo, documented=False) == ["lease_seconds"]
    path = "/v1/sites/held/queue/release"
    assert await refused(client, "POST", path, {"ids": "c0"}, mo) == ["ids"]
    queue = await (await client.get("/v1/sites/held/queue?limit=5", headers=mo)).json()
    assert len(queue["items"]) == 3
    assert not any("claimed_by" in item for item in queue["items"])

    # Enumerations are strings in JSON, and a query's numbers arrive as strings.
    claim = {"limit": 2, "lease_seconds": 60, "queue": "pending", "order": "oldest"}
    response = await client.post("/v1/sites/held/queue/claim", json=claim, headers=mo)
    assert response.status == 200, await response.text()
    assert [item["id"] for item in (await response.json())["items"]] == ["c0", "c1"]
    queue = await (await client.get("/v1/sites/held/queue?limit=1", headers=mo)).json()
    assert len(queue["items"]) == 1


async def test_a_number_may_be_written_as_an_integer(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    body = {"policy": {"hold": {"toxicity": 1}, "author_premod_rejection_rate": 0}}
    response = await client.patch("/v1/sites/news", json=body, headers=admin)
    assert response.status == 200, await response.text()
    policy = (await response.json())["policy"]
    assert (policy["hold"]["toxicity"], policy["author_premod_rejection_rate"]) == (1.0, 0.0)


def _lax_leaves(schema: Any, path: str = "") -> list[str]:
    """Where a model's validation schema reads an integer, number or boolean leniently."""
    if isinstance(schema, list):
        return [leaf for item in schema for leaf in _lax_leaves(item, path)]
    if not isinstance(schema, dict):
        return []
    found = []
    if schema.get("type") in ("int", "float", "bool") and not schema.get("strict"):
        found.append(path or "body")
    for key, value in schema.items():
        found += _lax_leaves(value, f"{path}.{key}" if path else key)
    return found


async def test_every_native_body_reads_numbers_and_booleans_strictly(client: Client) -> None:
    bodies = {
        op.body
        for _, _, op in documented_routes(client.app)
        if op is not None and op.auth in NATIVE and isinstance(op.body, type)
    }
    assert len(bodies) >= 12
    lax: dict[str, list[str]] = {}
    for body in bodies:
        assert issubclass(body, BaseModel)
        if leaves := _lax_leaves(body.__pydantic_core_schema__):
            lax[body.__name__] = leaves
    assert lax == {}


async def test_a_query_strings_integer_is_written_in_digits(
    client: Client, create_site: Any, moderator: Headers
) -> None:
    site = await create_site("held", mode="pre")
    mo = moderator(site)
    listings = (
        "/v1/sites/held/queue?",
        "/v1/sites/held/comments?state=approved&",
        "/v1/sites/held/deliveries?",
    )
    for listing in listings:
        for limit in ("5.0", "5e0", "5.5", "0x5"):
            response = await client.get(f"{listing}limit={limit}", headers=mo)
            assert response.status == 422, f"{listing} {limit}: {await response.text()}"
            details = (await response.json())["error"]["details"]
            assert [detail["field"] for detail in details] == ["limit"]
            assert "digits" in details[0]["message"]
        response = await client.get(f"{listing}limit=5", headers=mo)
        assert response.status == 200, f"{listing}: {await response.text()}"
        response = await client.get(f"{listing}limit=0", headers=mo)
        assert response.status == 422
        details = (await response.json())["error"]["details"]
        assert "greater than or equal to 1" in details[0]["message"]
