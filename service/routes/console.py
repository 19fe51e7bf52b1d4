"""The moderator console: static HTML, CSS and JavaScript modules shipped in the package.

The console speaks only the public API, so these routes serve files and nothing else. Every
file served carries a strict Content-Security-Policy (no inline script, nothing from another
origin), refuses framing and sends no referrer, so a comment's text or links cannot act in the page.
"""

from importlib import resources
from typing import Any

from aiohttp import web

from service.errors import NotFound
from service.openapi import operation

routes = web.RouteTableDef()

CONSOLE = resources.files("service") / "console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
PAGE: dict[str, Any] = {"type": "string", "description": "The console's page or one of its files"}
ICON: dict[str, Any] = {"type": "string", "description": "The console's icon, an SVG drawing"}


@routes.get("/")
@operation(summary="Redirects to the console", tag="console", auth="none", status=302)
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


@routes.get("/console")
@operation(
    summary="The moderator console (sign in with a moderator or admin token)",
    tag="console",
    auth="none",
    response=PAGE,
    response_type="text/html",
)
async def page(request: web.Request) -> web.Response:
    return _file("index.html")


@routes.get("/console/{name}")
@operation(
    summary="A file of the console (its scripts, styles and icon)",
    tag="console",
    auth="none",
    response=PAGE,
    response_type="text/*",
    also_types={"image/svg+xml": ICON},
    errors=(404,),
)
async def asset(request: web.Request) -> web.Response:
    return _file(request.match_info["name"])


def _file(name: str) -> web.Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    # Only plain names of the folder with a known type: no path can leave it.
    if suffix not in CONTENT_TYPES or "/" in name or "\\" in name or name.startswith("."):
        raise NotFound(f"no console file {name!r}")
    source = CONSOLE / name
    if not source.is_file():
        raise NotFound(f"no console file {name!r}")
    return web.Response(
        body=source.read_bytes(),
        headers={"Content-Type": CONTENT_TYPES[suffix], **SECURITY_HEADERS},
    )
