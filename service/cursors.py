"""Opaque page cursors: a small JSON object in URL-safe base64, refused whole when garbled."""

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from service.errors import BadRequest


def encode_cursor(body: Mapping[str, str | None]) -> str:
    packed = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The object ``encode_cursor`` packed; ``BadRequest`` for anything else."""
    try:
        body = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise BadRequest("invalid cursor") from None
    if not isinstance(body, dict):
        raise BadRequest("invalid cursor")
    return body
