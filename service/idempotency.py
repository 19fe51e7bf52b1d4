"""Idempotency keys: the first answer to a request sent with an ``Idempotency-Key`` is kept for
a day, and a retry with the same key gets it again instead of acting twice.

A record is keyed by the principal, method, path and key (a key names one request of one
caller) and holds the sha256 of the body, so the same key with another body is refused. Its
three steps are scripts on one key: ``begin`` takes the key (or finds the answer kept),
``finish`` keeps the answer, ``release`` gives the key back when Redis failed the request and
its outcome is unknown. A retry then runs the request again; writes that can be retried this way
derive their outbox event ids from the key (``event_id``), so the state-change script finds its
own change already made and emits no second event; a queue claim derives the id of the batch it
leased (``batch_id``), so its retry answers that batch rather than leasing another.

A kept answer may carry a credential (a new site's secret, a moderator's token), which civility
otherwise never stores in the clear. So it is sealed (AES-GCM) under a key derived from the
Idempotency-Key itself, which is never stored: only the caller who sent that key can read the
answer back, and Redis alone reveals nothing. An answer carrying comments names their authors
in its record, in the clear, so that erasing an author forgets the answers holding their data.
"""

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.errors import IdempotencyKeyReused
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.scripts import LuaScripts, RedisClient

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEEP_MS = 24 * 3600 * 1000
"""How long an answer is kept for retries: a day from the first request."""
RUNNING_MS = 60_000
"""How long a started request holds its key: longer than any request lives (a Redis call fails
within its socket timeout), short enough that a retry after a crash is not refused for long."""
SCRIPTS = ("idempotency_begin", "idempotency_finish", "idempotency_release")


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    status: int
    body: bytes
    content_type: str


Outcome = Literal["started", "reused", "running"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's hold on its key: where the record is and the body it was sent with."""

    record: str
    digest: str
    """Names the record: a site created by the request keeps it, and its deletion ends it."""
    site: str | None
    """The site the path names, if any: its authors' erasures forget the answers of theirs."""
    body_hash: str
    seed: str
    """Unique to principal, method, path, key and body: what retried writes derive ids from."""
    sealing_key: bytes
    """Seals the kept answer; derived from the Idempotency-Key, which no record holds."""


def digest(principal: str, method: str, path: str, key: str) -> str:
    named = "\0".join((principal, method, path, key))
    return hashlib.sha256(named.encode("utf-8", "surrogateescape")).hexdigest()


def event_id(seed: str, item: str = "") -> str:
    """The outbox event id of the write ``seed`` names (``item`` for one of a bulk request's)."""
    named = hashlib.sha256("\0".join((seed, item)).encode("utf-8", "surrogateescape"))
    return f"evt_{named.hexdigest()[:32]}"


def batch_id(seed: str) -> str:
    """What the queue claim ``seed`` names records the comments it leased under, so that its
    retry answers that batch instead of leasing another."""
    named = hashlib.sha256(f"{seed}\0claim".encode())
    return f"clm_{named.hexdigest()[:32]}"


class IdempotencyStore:
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.keys = KeySpace(prefix)
        self._run = LuaScripts(redis, SCRIPTS, with_library=False).run

    def claim(self, site: str | None, key_digest: str, key: str, body: bytes) -> Claim:
        body_hash = hashlib.sha256(body).hexdigest()
        # The seed names the request, body included: a key used again after its day with
        # another body is another write, with ids of its own.
        seed = hashlib.sha256(f"{key_digest}:{body_hash}".encode()).hexdigest()
        sealing_key = hmac.digest(key.encode(), f"civility answer:{key_digest}".encode(), "sha256")
        record = self.keys.idempotency(site, key_digest)
        return Claim(record, key_digest, site, body_hash, seed, sealing_key)

    async def begin(self, claim: Claim, now_ms: int) -> Outcome | KeptAnswer:
        reply = await self._run(
            "idempotency_begin", [claim.record], [claim.body_hash, now_ms, RUNNING_MS, KEEP_MS]
        )
        if reply[0] == "done":
            return KeptAnswer(int(reply[1]), _unseal(claim, reply[2]), reply[3])
        outcome: Outcome = reply[0]
        return outcome

    async def finish(
        self, claim: Claim, answer: KeptAnswer, *, authors: Collection[str] = ()
    ) -> bool:
        """Keep the answer; ``authors`` (whose comments it carries) are recorded unsealed, so
        that erasing one of them finds the answer and forgets it. An answer carrying an author
        whose erasure is running (or just ended) is not kept, as it may hold what the erasure
        removed: the key is given back."""
        erasures = [self.keys.erasure(claim.site, author) for author in authors if claim.site]
        kept = await self._run(
            "idempotency_finish",
            [claim.record, *erasures],
            [
                claim.body_hash,
                answer.status,
                _seal(claim, answer.body),
                answer.content_type,
                json.dumps(sorted(authors)) if authors else "",
            ],
        )
        return bool(kept)

    async def release(self, claim: Claim) -> None:
        await self._run("idempotency_release", [claim.record], [claim.body_hash])


NONCE_BYTES = 12


def _seal(claim: Claim, body: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(claim.sealing_key).encrypt(nonce, body, claim.record.encode())
    return base64.b64encode(nonce + sealed).decode()


def _unseal(claim: Claim, stored: str) -> bytes:
    raw = base64.b64decode(stored)
    try:
        return AESGCM(claim.sealing_key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], claim.record.encode()
        )
    except InvalidTag:
        # Only a record kept before answers were sealed gets here (its key matched): the client
        # is told to use a new key rather than given an answer nobody can read.
        raise IdempotencyKeyReused(
            "this Idempotency-Key's first answer cannot be replayed; send a new key"
        ) from None
