"""A callback URL is where webhooks go with their signatures: no credentials in it."""

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]


async def test_a_callback_url_with_credentials_is_refused(
    client: Client, admin: dict[str, str]
) -> None:
    spec = {"id": "blog", "name": "Blog", "callback_url": "https://user:pw@hooks.example/civility"}
    response = await client.post("/v1/sites", json=spec, headers=admin)
    assert response.status == 422
    assert await response.json() == {
        "error": {
            "code": "validation_failed",
            "message": "request validation failed",
            "details": [
                {
                    "field": "callback_url",
                    "message": "Value error, must not carry a user name or password",
                }
            ],
        }
    }
    assert (await client.get("/v1/sites/blog", headers=admin)).status == 404
