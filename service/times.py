"""Moments as Redis keeps them (epoch milliseconds) and as the API writes them (ISO 8601)."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


# Both ways counted exactly: through a float of seconds some milliseconds fell short and were
# cut off (2004-08-09T21:35:34.567Z was stored as ...566, and 2257's ...873 read as ...872).
def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def ceil_ms(moment: datetime) -> int:
    """The first stored millisecond not before ``moment``: a bound finer than the store keeps
    must not take in the millisecond it falls within."""
    return -((_EPOCH - moment) // _MS)


def from_ms(value: str | int | float) -> datetime:
    return _EPOCH + int(value) * _MS


HOUR_MS = 3_600_000


def hour_bucket(now_ms: int) -> str:
    # Every intake names its hour: the name is worked out once per hour, not once per comment.
    return _hour_name(now_ms // HOUR_MS)


@lru_cache(maxsize=64)
def _hour_name(hour: int) -> str:
    return from_ms(hour * HOUR_MS).strftime("%Y%m%d%H")


def iso(moment: datetime) -> str:
    """The one form of a moment in every answer, event and export: UTC to the millisecond the
    store keeps, ``2026-12-05T20:25:12.345Z`` (fixed width, so the strings sort as the moments)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_ms(ms: str | int) -> str:
    return iso(from_ms(ms))


Moment = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A datetime field of an answer: JSON has it in ``iso``'s form."""
