"""Runtime settings: one frozen object read from the environment and validated at start."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

Environment = Literal["development", "production"]
_Choice = TypeVar("_Choice", bound=str)


class SettingsError(ValueError):
    """The environment does not describe a runnable service; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """The webhook worker: timeouts, retry schedule, leases, concurrency and retention."""

    timeout_seconds: float = 5.0
    max_attempts: int = 10
    backoff_base_seconds: float = 360.0
    backoff_cap_seconds: float = 24 * 3600.0
    # A delivery leased by a worker that died is attempted again once its lease runs out.
    lease_seconds: float = 60.0
    concurrency: int = 16
    poll_ms: float = 100.0
    drain_seconds: float = 10.0
    delivered_retention_seconds: int = 7 * 24 * 3600
    delivered_keep: int = 10_000
    outbox_keep: int = 10_000

    @classmethod
    def from_reader(cls, reader: "_Reader") -> "DeliverySettings":
        settings = cls(
            timeout_seconds=reader.number(
                "CIVILITY_DELIVERY_TIMEOUT_SECONDS", 5.0, low=0.01, high=120.0
            ),
            max_attempts=reader.integer("CIVILITY_DELIVERY_MAX_ATTEMPTS", 10, low=1, high=100),
            backoff_base_seconds=reader.number(
                "CIVILITY_DELIVERY_BACKOFF_BASE_SECONDS", 360.0, low=0.001, high=86400.0
            ),
            backoff_cap_seconds=reader.number(
                "CIVILITY_DELIVERY_BACKOFF_CAP_SECONDS", 86400.0, low=0.001, high=7 * 86400.0
            ),
            lease_seconds=reader.number(
                "CIVILITY_DELIVERY_LEASE_SECONDS", 60.0, low=0.05, high=3600.0
            ),
            concurrency=reader.integer("CIVILITY_WORKER_CONCURRENCY", 16, low=1, high=1024),
            poll_ms=reader.number("CIVILITY_WORKER_POLL_MS", 100.0, low=1.0, high=10_000.0),
            drain_seconds=reader.number("CIVILITY_WORKER_DRAIN_SECONDS", 10.0, low=0.0, high=600.0),
            delivered_retention_seconds=reader.integer(
                "CIVILITY_DELIVERED_RETENTION_SECONDS", 7 * 24 * 3600, low=60, high=365 * 86400
            ),
            delivered_keep=reader.integer(
                "CIVILITY_DELIVERED_KEEP", 10_000, low=1, high=10_000_000
            ),
            outbox_keep=reader.integer("CIVILITY_OUTBOX_KEEP", 10_000, low=1, high=10_000_000),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.backoff_base_seconds > self.backoff_cap_seconds:
            raise SettingsError(
                "CIVILITY_DELIVERY_BACKOFF_BASE_SECONDS must not exceed "
                "CIVILITY_DELIVERY_BACKOFF_CAP_SECONDS"
            )
        if self.lease_seconds <= self.timeout_seconds:
            # Otherwise a slow but healthy delivery would be attempted twice at once.
            raise SettingsError(
                "CIVILITY_DELIVERY_LEASE_SECONDS must be longer than "
                "CIVILITY_DELIVERY_TIMEOUT_SECONDS"
            )


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".civility")
    models_dir: Path = Path("models")
    redis_url: str | None = None
    admin_token: str | None = None
    # Intake bodies hold at most 20,000 characters of text, which JSON may escape to six bytes each.
    max_body_bytes: int = 256 * 1024
    signature_tolerance_seconds: int = 300
    secret_grace_seconds: int = 24 * 3600
    scoring_workers: int = 1
    # Each API process is a whole app with its own Redis client and scoring pool; /metrics sums
    # the counters of all of them (prometheus-client's multiprocess mode).
    api_processes: int = 1
    batch_max_items: int = 64
    batch_wait_ms: float = 2.0
    delivery: DeliverySettings = field(default_factory=DeliverySettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read ``CIVILITY_*`` and ``REDIS_URL``; a ``SettingsError`` names the bad variable."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        settings = cls(
            env=reader.choice("CIVILITY_ENV", ("development", "production"), "development"),
            host=reader.text("CIVILITY_HOST", "127.0.0.1"),
            port=reader.integer("CIVILITY_PORT", 8080, low=1, high=65535),
            data_dir=Path(reader.text("CIVILITY_DATA_DIR", ".civility")),
            models_dir=Path(reader.text("CIVILITY_MODELS_DIR", "models")),
            redis_url=reader.optional("REDIS_URL"),
            admin_token=reader.optional("CIVILITY_ADMIN_TOKEN"),
            max_body_bytes=reader.integer(
                "CIVILITY_MAX_BODY_BYTES", 256 * 1024, low=1024, high=16 * 1024 * 1024
            ),
            signature_tolerance_seconds=reader.integer(
                "CIVILITY_SIGNATURE_TOLERANCE_SECONDS", 300, low=1, high=3600
            ),
            secret_grace_seconds=reader.integer(
                "CIVILITY_SECRET_GRACE_SECONDS", 24 * 3600, low=0, high=30 * 24 * 3600
            ),
            scoring_workers=reader.integer("CIVILITY_SCORING_WORKERS", 1, low=1, high=64),
            api_processes=reader.integer("CIVILITY_API_PROCESSES", 1, low=1, high=64),
            batch_max_items=reader.integer("CIVILITY_BATCH_MAX_ITEMS", 64, low=1, high=1024),
            batch_wait_ms=reader.number("CIVILITY_BATCH_WAIT_MS", 2.0, low=0.0, high=100.0),
            delivery=DeliverySettings.from_reader(reader),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
        if self.redis_url is not None and not self.redis_url.startswith("unix://"):
            _check_redis_url(self.redis_url)
        if self.is_production:
            if not self.admin_token:
                raise SettingsError(
                    "CIVILITY_ADMIN_TOKEN is required when CIVILITY_ENV=production: "
                    "set it to a long random string (for example `openssl rand -hex 32`)"
                )
            if len(self.admin_token) < 16:
                raise SettingsError("CIVILITY_ADMIN_TOKEN must be at least 16 characters long")


class _Reader:
    """Parses one variable at a time so every error names the variable at fault."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def choice(self, name: str, allowed: tuple[_Choice, ...], default: _Choice) -> _Choice:
        value = self.optional(name)
        if value is None:
            return default
        for option in allowed:
            if value == option:
                return option
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {number}")
        return number

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number, not {value!r}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, not {number}")
        return number


def _check_redis_url(url: str) -> None:
    """Refuse what redis-py would misread: a port out of range, a database that is no number
    (``/abc`` would silently mean database 0)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - reading it checks the range
    except ValueError:
        raise SettingsError(f"REDIS_URL has a port out of range: {url}") from None
    database = parts.path.lstrip("/")
    if (database and not database.isascii()) or (database and not database.isdigit()):
        raise SettingsError(f"REDIS_URL names database {database!r}; it must be a number")
