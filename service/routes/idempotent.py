"""``@idempotent``: a write that honours the ``Idempotency-Key`` header (see
``service/idempotency.py``). Without the header the handler runs as before."""

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.appkeys import CLOCK, IDEMPOTENCY
from service.auth import require_admin, require_moderator, require_signature
from service.errors import (
    ClaimConflict,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    SiteBeingDeleted,
    SiteNotFound,
    StoreUnavailable,
    ValidationFailed,
)
from service.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    Claim,
    IdempotencyStore,
    KeptAnswer,
    digest,
)
from service.middleware import as_civility_error, error_response
from service.routes.body import JSON, read_raw, unmarked

log = logging.getLogger(__name__)

Principal = Callable[[web.Request], Awaitable[str]]
"""Authenticates the request and names who sent it: a key is private to its principal."""
SEED = web.RequestKey("idempotency_seed", str)
DIGEST = web.RequestKey("idempotency_digest", str)
AUTHORS = web.RequestKey[frozenset[str]]("idempotency_authors")
UNKEPT = web.RequestKey("idempotency_unkept", bool)
# Keeping the answer is retried this often before the request is answered 503: an answer given
# without its record would let a retry act a second time.
FINISH_ATTEMPTS = 3
# A site that does not exist may be created next, and one being deleted created anew once
# purged; another moderator's claim ends with its lease: a retry then acts rather than being
# answered the 404 (409) again for the key's day.
NOT_KEPT = (SiteNotFound, SiteBeingDeleted, ClaimConflict)


async def by_site_moderator(request: web.Request) -> str:
    return f"moderator:{await require_moderator(request, request.match_info['site'])}"


async def by_admin(request: web.Request) -> str:
    require_admin(request)
    return "admin"


async def by_site_signature(request: web.Request) -> str:
    site = request.match_info["site"]
    await require_signature(request, site, await read_raw(request))
    return f"site:{site}"


def seed(request: web.Request) -> str | None:
    """The request's idempotency seed when it came with a key: writes derive their ids from it."""
    return request.get(SEED)


def record_digest(request: web.Request) -> str | None:
    """What names the request's record when it came with a key: a site the request creates
    keeps it, so that deleting the site ends the kept answer with it."""
    return request.get(DIGEST)


def holds_authors(request: web.Request, author_ids: Iterable[str]) -> None:
    """Name the authors whose data (comments, counts) the answer carries: erasing one of them
    forgets the kept answer (a retry then runs the request again) rather than leave their data
    replayable."""
    request[AUTHORS] = request.get(AUTHORS, frozenset()) | frozenset(author_ids)


def not_kept(request: web.Request) -> None:
    """The answer is not kept for the key: a part of it is a failure that ends by itself (a bulk
    item refused for another moderator's claim, which ends with their lease), so the retry runs
    the request again, as it would after a single decision's ``NOT_KEPT`` error."""
    request[UNKEPT] = True


def _checked_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ValidationFailed([(HEADER, f"must be 1-{MAX_KEY_LENGTH} printable ASCII characters")])
    return key


def idempotent(principal: Principal) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            sent = request.headers.get(HEADER)
            if sent is None:
                return await handler(request)
            key = _checked_key(sent)
            who = await principal(request)
            store = request.app[IDEMPOTENCY]
            claim = store.claim(
                request.match_info.get("site"),
                digest(who, request.method, request.path, key),
                key,
                # Compared as the API reads it: a byte-order mark added or dropped on a retry
                # changes nothing the request says (the signature still covers it).
                unmarked(await read_raw(request)),
            )
            begun = await store.begin(claim, int(request.app[CLOCK]() * 1000))
            if isinstance(begun, KeptAnswer):
                replay = web.Response(status=begun.status)
                if begun.body:
                    replay.body = begun.body
                    replay.headers[hdrs.CONTENT_TYPE] = _content_type(begun.content_type)
                replay.headers[REPLAYED_HEADER] = "true"
                return replay
            if begun == "reused":
                raise IdempotencyKeyReused()
            if begun == "running":
                raise IdempotencyInProgress()
            request[SEED] = claim.seed
            request[DIGEST] = claim.digest
            return await _answer(request, handler, store, claim)

        setattr(run, "__idempotent__", True)  # noqa: B010  # read by service.openapi
        return run

    return wrap


async def _answer(
    request: web.Request, handler: Handler, store: IdempotencyStore, claim: Claim
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Exception as error:
        known = as_civility_error(error)
        if known is None or known.status >= 500 or isinstance(known, NOT_KEPT):
            await _release(store, claim)
            raise
        response = error_response(known)
    if not isinstance(response, web.Response) or response.status >= 500 or request.get(UNKEPT):
        await _release(store, claim)
        return response
    body = response.body if isinstance(response.body, bytes) else b""
    # The header whole, with its charset, so that the replay says what the first answer said.
    content_type = response.headers.get(hdrs.CONTENT_TYPE, response.content_type)
    answer = KeptAnswer(response.status, body, content_type)
    for attempt in range(FINISH_ATTEMPTS):
        try:
            await store.finish(claim, answer, authors=request.get(AUTHORS, frozenset()))
            return response
        except StoreUnavailable:
            if attempt == FINISH_ATTEMPTS - 1:
                raise
    return response


def _content_type(kept: str) -> str:
    # An answer kept before the header was kept whole has the media type alone; every such
    # answer was JSON written as UTF-8.
    return f"{kept}; charset=utf-8" if kept == JSON else kept


async def _release(store: IdempotencyStore, claim: Claim) -> None:
    try:
        await store.release(claim)
    except StoreUnavailable:
        # The key stays held until its running lease ends; a retry then runs the request again.
        log.warning("idempotency key left held after a store failure")
