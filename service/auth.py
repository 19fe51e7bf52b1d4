"""Who may call: the admin token, a site's moderator tokens, and a site's webhook signature."""

import hmac

from aiohttp import web

from service import signatures
from service.appkeys import CLOCK, MODERATION, SETTINGS
from service.domain import ADMIN_ACTOR, Moderator
from service.errors import SiteNotFound, Unauthorized

_BEARER = "bearer "


def _bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header[: len(_BEARER)].lower() == _BEARER or not header[len(_BEARER) :].strip():
        raise Unauthorized("missing bearer token in the Authorization header")
    return header[len(_BEARER) :].strip()


def _is_admin_token(request: web.Request, token: str) -> bool:
    expected = request.app[SETTINGS].admin_token
    if not expected:
        return False
    # A header that is not UTF-8 arrives with surrogate escapes; it must fail, not crash.
    return hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def require_admin(request: web.Request) -> None:
    if not request.app[SETTINGS].admin_token:
        raise Unauthorized("the admin API is disabled: CIVILITY_ADMIN_TOKEN is not set")
    if not _is_admin_token(request, _bearer_token(request)):
        raise Unauthorized("invalid admin token")


def require_metrics_access(request: web.Request) -> None:
    """The metrics token when one is set; without one, metrics are open only in development
    (they name every site and its queue depths)."""
    settings = request.app[SETTINGS]
    if settings.metrics_token is None:
        if settings.is_production:
            raise Unauthorized("metrics are disabled: CIVILITY_METRICS_TOKEN is not set")
        return
    token = _bearer_token(request).encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(token, settings.metrics_token.encode("utf-8")):
        raise Unauthorized("invalid metrics token")


def site_not_found(site_id: str) -> SiteNotFound:
    # The same answer whether the site does not exist or belongs to someone else (DESIGN §7).
    return SiteNotFound(site_id)


async def identify(request: web.Request) -> Moderator | None:
    """Whose token the request carries: a moderator, or ``None`` for the admin."""
    token = _bearer_token(request)
    if _is_admin_token(request, token):
        return None
    moderator = await request.app[MODERATION].moderator_for_token(token)
    if moderator is None:
        raise Unauthorized("invalid moderator token")
    return moderator


async def require_moderator(request: web.Request, site_id: str) -> str:
    """The actor id that acts on ``site_id``: a moderator of that site, or the admin."""
    moderator = await identify(request)
    if moderator is None:
        return ADMIN_ACTOR
    if not hmac.compare_digest(moderator.site_id.encode(), site_id.encode()):
        raise site_not_found(site_id)
    return moderator.id


async def require_signature(request: web.Request, site_id: str, raw_body: bytes) -> None:
    """Check the webhook signature on the raw body, before anything parses it."""
    try:
        header = signatures.parse(request.headers.get(signatures.HEADER))
        # Malformed and stale headers are refused before the secrets are looked up.
        # The app's clock, which the secrets' rotation windows and outbound signatures read too.
        signatures.check_timestamp(
            header,
            tolerance_seconds=request.app[SETTINGS].signature_tolerance_seconds,
            now=request.app[CLOCK](),
        )
        secrets = await request.app[MODERATION].webhook_secrets(site_id)
        signatures.check_signature(header, raw_body, secrets)
    except signatures.SignatureError as error:
        raise Unauthorized(str(error)) from None
