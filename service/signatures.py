"""Webhook signatures in the Stripe scheme: ``Civility-Signature: t=<unix>,v1=<hex>``.

The signed payload is ``b"<t>." + raw_body`` and each ``v1`` is its HMAC-SHA256 under one webhook
secret. During a secret rotation a sender may include one ``v1`` per secret, and a receiver accepts
the header when any ``v1`` matches any of its currently valid secrets.
"""

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

HEADER = "Civility-Signature"
SCHEME = "v1"
# Bounds the work one forged header can cause: every v1 is compared with every valid secret.
MAX_SIGNATURES = 8
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """The header is missing, malformed, stale, or matches no valid secret."""


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def compute(secret: str, timestamp: int, body: bytes) -> str:
    payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def sign(secrets: str | Iterable[str], body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed with one secret, or with each of several."""
    when = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    parts = [f"t={when}"] + [f"{SCHEME}={compute(key, when, body)}" for key in keys]
    return ",".join(parts)


def parse(header: str | None) -> SignatureHeader:
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {HEADER} header")
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise SignatureError(f"malformed timestamp in {HEADER} header")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
        # Other schemes are ignored, as Stripe does, so senders can add newer ones first.
    if timestamp is None:
        raise SignatureError(f"{HEADER} header has no timestamp")
    if not signatures:
        raise SignatureError(f"{HEADER} header has no {SCHEME} signature")
    if len(signatures) > MAX_SIGNATURES:
        raise SignatureError(f"{HEADER} header has more than {MAX_SIGNATURES} signatures")
    return SignatureHeader(timestamp=timestamp, signatures=tuple(signatures))


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> int:
    """Check ``header`` against ``body``; return its timestamp or raise ``SignatureError``."""
    parsed = parse(header)
    check_timestamp(parsed, tolerance_seconds=tolerance_seconds, now=now)
    check_signature(parsed, body, secrets)
    return parsed.timestamp


def check_timestamp(
    header: SignatureHeader, *, tolerance_seconds: int = 300, now: float | None = None
) -> None:
    current = time.time() if now is None else now
    if abs(current - header.timestamp) > tolerance_seconds:
        raise SignatureError(f"{HEADER} timestamp is outside the {tolerance_seconds} s tolerance")


def check_signature(header: SignatureHeader, body: bytes, secrets: Iterable[str]) -> None:
    matched = False
    for secret in secrets:
        expected = compute(secret, header.timestamp, body).encode("ascii")
        for candidate in header.signatures:
            # No early exit: the time taken must not tell which secret or signature matched.
            # Hex has no case; some libraries spell it in upper case.
            sent = candidate.encode("utf-8", "replace").lower()
            matched |= hmac.compare_digest(expected, sent)
    if not matched:
        raise SignatureError(f"{HEADER} does not match any valid secret for this site")
