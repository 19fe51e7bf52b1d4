"""Moments as Redis keeps them (epoch milliseconds) and as the API writes them."""

from datetime import UTC, datetime


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(value: str | int | float) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def hour_bucket(now_ms: int) -> str:
    return from_ms(now_ms).strftime("%Y%m%d%H")


def iso_from_ms(ms: int) -> str:
    return from_ms(ms).isoformat().replace("+00:00", "Z")
