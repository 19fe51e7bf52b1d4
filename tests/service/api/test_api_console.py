"""The console's files and headers, and ``/v1/me``, which tells the console whose token it holds."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.routes.console import CONSOLE

Client = TestClient[web.Request, web.Application]
Headers = Callable[[dict[str, str]], dict[str, str]]
STRICT = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def test_the_console_page_is_served_with_strict_security_headers(client: Client) -> None:
    response = await client.get("/console")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == STRICT
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await response.text()
    assert '<script type="module" src="/console/app.js"></script>' in page
    # No inline script or style anywhere: the policy would block it, and it must not be needed.
    assert page.count("<script") == 1
    assert "<style" not in page
    assert re.search(r"\s(style|on[a-z]+)=", page) is None


async def test_every_console_file_is_served_with_its_type(client: Client) -> None:
    names = sorted(entry.name for entry in CONSOLE.iterdir() if entry.is_file())
    shipped = {"index.html", "app.js", "api.js", "render.js", "admin.js", "console.css", "icon.svg"}
    assert shipped <= set(names)
    for name in names:
        response = await client.get(f"/console/{name}")
        assert response.status == 200, name
        assert response.headers["X-Frame-Options"] == "DENY"
        assert await response.read() == (CONSOLE / name).read_bytes()
    script = await client.get("/console/app.js")
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    style = await client.get("/console/console.css")
    assert style.headers["Content-Type"] == "text/css; charset=utf-8"
    icon = await client.get("/console/icon.svg")
    assert icon.headers["Content-Type"] == "image/svg+xml"
    assert icon.headers["Content-Security-Policy"] == STRICT


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/console/missing.js", "no console file 'missing.js'"),
        ("/console/..%2Fapp.py", "no console file '../app.py'"),
        ("/console/.hidden.js", "no console file '.hidden.js'"),
        ("/console/app", "no console file 'app'"),
    ],
)
async def test_nothing_but_the_console_files_can_be_fetched(
    client: Client, path: str, message: str
) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": message, "details": None}
    }


async def test_the_root_leads_to_the_console(client: Client) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/console"


async def test_me_names_the_moderator_and_its_site_or_the_admin_and_every_site(
    client: Client, create_site: Any, moderator: Headers, admin: dict[str, str]
) -> None:
    news = await create_site("news")
    await create_site("blog")
    mine = await client.get("/v1/me", headers=moderator(news))
    assert await mine.json() == {
        "id": news["moderator_id"],
        "name": "Mo",
        "admin": False,
        "sites": ["news"],
    }
    everything = await client.get("/v1/me", headers=admin)
    assert await everything.json() == {
        "id": "admin",
        "name": "admin",
        "admin": True,
        "sites": ["blog", "news"],
    }
    wrong = await client.get("/v1/me", headers={"Authorization": "Bearer cmt_nope"})
    assert wrong.status == 401
    assert await wrong.json() == {
        "error": {"code": "unauthorized", "message": "invalid moderator token", "details": None}
    }
