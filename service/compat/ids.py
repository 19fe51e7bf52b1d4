"""Ids from other systems, made fit for ours (printable ASCII without spaces, at most 128)."""

import hashlib
import re

from service.domain import MAX_ID

_FITS = re.compile(r"^[\x21-\x7e]+$")


def digest(*parts: str) -> str:
    """A stable hex digest of ``parts``; no part can run into the next."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()


def external_id(value: str, prefix: str) -> str:
    """``value`` itself when it fits our ids, else ``<prefix>-<digest of value>``: the same
    foreign id always maps to the same one of ours."""
    if len(value) <= MAX_ID and _FITS.match(value):
        return value
    return f"{prefix}-{digest(value)[:40]}"
