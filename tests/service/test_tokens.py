"""Event ids: ``evt_`` and a version 4 UUID's hex, as ``uuid.uuid4`` would draw it."""

import uuid

from hypothesis import given
from hypothesis import strategies as st

from service.moderation.tokens import new_event_id, uuid4_hex


@given(st.binary(min_size=16, max_size=16))
def test_the_hex_is_uuid4_s_for_the_same_random_bytes(random: bytes) -> None:
    assert uuid4_hex(random) == uuid.UUID(bytes=random, version=4).hex


def test_every_bit_but_the_version_and_variant_is_drawn() -> None:
    assert uuid4_hex(bytes(16)) == "00000000000040008000000000000000"
    assert uuid4_hex(b"\xff" * 16) == "ffffffffffff4fffbfffffffffffffff"


def test_an_event_id_is_a_fresh_version_4_uuid() -> None:
    first, second = new_event_id(), new_event_id()
    assert first != second
    for event_id in (first, second):
        prefix, _, hex_part = event_id.partition("_")
        assert prefix == "evt"
        assert uuid.UUID(hex=hex_part).version == 4
        assert uuid.UUID(hex=hex_part).hex == hex_part
