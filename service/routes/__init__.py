"""HTTP routes, one module per area; handlers parse, call one domain function, shape the answer."""

from aiohttp import web

from service.routes import (
    admin,
    compat_akismet,
    compat_coral,
    compat_perspective,
    health,
    intake,
    moderation,
)


def add_routes(app: web.Application) -> None:
    areas = (health, admin, intake, moderation, compat_perspective, compat_akismet, compat_coral)
    for area in areas:
        app.router.add_routes(area.routes)
