"""Keys, tokens and ids drawn at random, and the sha256 form secrets are stored in."""

import hashlib
import os
import secrets

API_KEY_DRAWS = 3
"""New keys tried when a drawn one is already another site's."""


def new_api_key() -> str:
    # Akismet's key format, 12 lowercase hex digits: WordPress's Akismet plugin strips anything
    # else from a key and refuses one of another length. Keys are checked by hash, never listed,
    # and a guess has one chance in 2**48 per request.
    return secrets.token_hex(6)


def sha256_hex(value: str) -> str:
    # aiohttp keeps header bytes that are not UTF-8 as surrogate escapes: a key sent that way
    # hashes to its raw bytes and matches nothing, instead of failing to encode.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)
"""The variant (RFC 4122) and version (4) bits ``uuid.uuid4`` sets in its 128 random bits."""


def new_event_id() -> str:
    return f"evt_{uuid4_hex(os.urandom(16))}"


def uuid4_hex(random: bytes) -> str:
    """``uuid.UUID(bytes=random, version=4).hex``, without building a UUID (half of an event
    id's cost, and every intake draws one)."""
    value = (int.from_bytes(random, "big") & _UUID4_CLEAR) | _UUID4_SET
    return f"{value:032x}"
