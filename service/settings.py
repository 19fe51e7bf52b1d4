"""Runtime settings: one frozen object read from the environment and validated at start."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.egress import Network
from service.env_reader import EnvReader, RecordingEnviron, SettingsError
from service.keys import DEFAULT_PREFIX
from service.redis_url import RedisTarget, parse_redis_url

Environment = Literal["development", "production"]
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,32}")


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
    callback_allow: tuple[Network, ...] = ()
    """Non-public ranges webhooks may still go to (tests and development need loopback)."""

    @classmethod
    def from_reader(cls, reader: EnvReader) -> "DeliverySettings":
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
            callback_allow=reader.networks("CIVILITY_CALLBACK_ALLOW"),
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
class SiteModelSettings:
    """When a site's own model may go into use, and how often the worker refits it.

    The defaults come from ``bench/adaptation.py``: below about 500 labels a site model is
    noise, and it needs positives to learn what the site rejects."""

    enabled: bool = True
    min_labels: int = 500
    min_positives: int = 40
    refit_every: int = 200
    poll_seconds: float = 5.0

    @classmethod
    def from_reader(cls, reader: EnvReader) -> "SiteModelSettings":
        return cls(
            enabled=reader.choice("CIVILITY_SITE_MODELS", ("on", "off"), "on") == "on",
            min_labels=reader.integer(
                "CIVILITY_SITE_MODEL_MIN_LABELS", 500, low=20, high=10_000_000
            ),
            min_positives=reader.integer(
                "CIVILITY_SITE_MODEL_MIN_POSITIVES", 40, low=5, high=10_000_000
            ),
            refit_every=reader.integer(
                "CIVILITY_SITE_MODEL_REFIT_EVERY", 200, low=1, high=10_000_000
            ),
            poll_seconds=reader.number(
                "CIVILITY_SITE_MODEL_POLL_SECONDS", 5.0, low=0.01, high=3600.0
            ),
        )


@dataclass(frozen=True, slots=True)
class SecondLookSettings:
    """The semantic stage's second look at published comments (``service/second_look.py``).

    On by default; it does anything only while the active model has a semantic stage."""

    enabled: bool = True
    batch_size: int = 8
    """Texts per call to the stage: the encoder's cost is per text, so a small batch reads as
    fast as a large one, keeps each pass (and what a dead worker leaves leased) short, and the
    memory low (the scoring process peaked at 430 MB with 8, 820 MB with 32, before the encoder
    capped its own runs)."""
    # A comment taken by a worker that died is taken again once its lease ends.
    lease_seconds: float = 60.0
    poll_seconds: float = 0.2
    threads: int = 1
    """onnxruntime threads of the one scoring process (the intake pool keeps the other core)."""

    @classmethod
    def from_reader(cls, reader: EnvReader) -> "SecondLookSettings":
        return cls(
            enabled=reader.choice("CIVILITY_SECOND_LOOK", ("on", "off"), "on") == "on",
            batch_size=reader.integer("CIVILITY_SECOND_LOOK_BATCH", 8, low=1, high=256),
            lease_seconds=reader.number(
                "CIVILITY_SECOND_LOOK_LEASE_SECONDS", 60.0, low=1.0, high=3600.0
            ),
            poll_seconds=reader.number(
                "CIVILITY_SECOND_LOOK_POLL_SECONDS", 0.2, low=0.01, high=60.0
            ),
            threads=reader.integer("CIVILITY_SECOND_LOOK_THREADS", 1, low=1, high=16),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".civility")
    models_dir: Path = Path("models")
    redis_url: str | None = None
    redis_prefix: str = DEFAULT_PREFIX
    # Replicas that must hold a state change before it is acknowledged (Redis WAIT), so a
    # Sentinel failover loses no acknowledged comment; 0 answers once the primary has it.
    redis_wait_replicas: int = 0
    redis_wait_ms: int = 1000
    # A Redis call that gets no answer within this fails (503) instead of hanging the request.
    redis_socket_timeout_seconds: float = 5.0
    # Connections each process may open; a request finding them all busy waits this long for one
    # (a burst queues instead of failing: only a real outage answers 503).
    redis_max_connections: int = 256
    redis_pool_timeout_seconds: float = 5.0
    # Event streams one process keeps open at once: each holds a Redis connection almost all the
    # time (XREAD BLOCK), so unbounded they would leave other requests none. None: a quarter of
    # redis_max_connections (``event_streams_limit``).
    event_streams_max: int | None = None
    # Of those, the most one site may hold, so one site's consoles never take every place and
    # leave the other sites' consoles without live events. None: a quarter of the limit
    # (``event_streams_site_limit``).
    event_streams_per_site: int | None = None
    # Of a site's, the most one moderator (or the admin) may hold, so one moderator's console
    # tabs never take the whole share of the site. None: half the site's share.
    event_streams_per_moderator: int | None = None
    # None: the first free port from 16379 up.
    valkey_port: int | None = None
    admin_token: str | None = None
    # Intake bodies hold at most 20,000 characters of text, which JSON may escape to six bytes each.
    max_body_bytes: int = 256 * 1024
    signature_tolerance_seconds: int = 300
    secret_grace_seconds: int = 24 * 3600
    metrics_token: str | None = None
    scoring_workers: int = 1
    # Scoring workers of their own for comments longer than 4,000 characters and for evidence,
    # so neither holds up ordinary comments' verdicts (0: they share the scoring workers).
    scoring_long_workers: int = 1
    # Each API process is a whole app with its own Redis client and scoring pool; /metrics sums
    # the counters of all of them (prometheus-client's multiprocess mode).
    api_processes: int = 1
    batch_max_items: int = 64
    batch_wait_ms: float = 2.0
    # Held comments waiting for their model evidence in one API process, at most.
    evidence_pending_max: int = 256
    # Coral's edit window as the site sets it in Coral (30 s by default there): of an author's
    # several comments in a thread, an EDIT naming none is of the one written within it.
    coral_edit_window_seconds: int = 300
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    site_models: SiteModelSettings = field(default_factory=SiteModelSettings)
    second_look: SecondLookSettings = field(default_factory=SecondLookSettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def event_streams_limit(self) -> int:
        if self.event_streams_max is not None:
            return self.event_streams_max
        return max(1, self.redis_max_connections // 4)

    @property
    def event_streams_site_limit(self) -> int:
        if self.event_streams_per_site is not None:
            return self.event_streams_per_site
        return max(1, self.event_streams_limit // 4)

    @property
    def event_streams_moderator_limit(self) -> int:
        if self.event_streams_per_moderator is not None:
            return self.event_streams_per_moderator
        return max(1, self.event_streams_site_limit // 2)

    @property
    def redis_target(self) -> RedisTarget | None:
        return None if self.redis_url is None else parse_redis_url(self.redis_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read ``CIVILITY_*`` and ``REDIS_URL``; a ``SettingsError`` names the bad variable."""
        env = os.environ if environ is None else environ
        reader = EnvReader(env)
        settings = cls(
            env=reader.choice("CIVILITY_ENV", ("development", "production"), "development"),
            host=reader.text("CIVILITY_HOST", "127.0.0.1"),
            port=reader.integer("CIVILITY_PORT", 8080, low=1, high=65535),
            data_dir=Path(reader.text("CIVILITY_DATA_DIR", ".civility")),
            models_dir=Path(reader.text("CIVILITY_MODELS_DIR", "models")),
            redis_url=reader.optional("REDIS_URL"),
            redis_prefix=reader.text("CIVILITY_REDIS_PREFIX", DEFAULT_PREFIX),
            redis_wait_replicas=reader.integer("CIVILITY_REDIS_WAIT_REPLICAS", 0, low=0, high=16),
            redis_wait_ms=reader.integer("CIVILITY_REDIS_WAIT_MS", 1000, low=1, high=60_000),
            redis_socket_timeout_seconds=reader.number(
                "CIVILITY_REDIS_SOCKET_TIMEOUT_SECONDS", 5.0, low=0.05, high=60.0
            ),
            redis_max_connections=reader.integer(
                "CIVILITY_REDIS_MAX_CONNECTIONS", 256, low=4, high=65_536
            ),
            redis_pool_timeout_seconds=reader.number(
                "CIVILITY_REDIS_POOL_TIMEOUT_SECONDS", 5.0, low=0.01, high=60.0
            ),
            event_streams_max=reader.optional_integer(
                "CIVILITY_EVENT_STREAMS_MAX", low=1, high=32_768
            ),
            event_streams_per_site=reader.optional_integer(
                "CIVILITY_EVENT_STREAMS_PER_SITE", low=1, high=32_768
            ),
            event_streams_per_moderator=reader.optional_integer(
                "CIVILITY_EVENT_STREAMS_PER_MODERATOR", low=1, high=32_768
            ),
            valkey_port=reader.optional_integer("CIVILITY_VALKEY_PORT", low=1, high=65535),
            admin_token=reader.optional("CIVILITY_ADMIN_TOKEN"),
            metrics_token=reader.optional("CIVILITY_METRICS_TOKEN"),
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
            scoring_long_workers=reader.integer("CIVILITY_SCORING_LONG_WORKERS", 1, low=0, high=64),
            api_processes=reader.integer("CIVILITY_API_PROCESSES", 1, low=1, high=64),
            batch_max_items=reader.integer("CIVILITY_BATCH_MAX_ITEMS", 64, low=1, high=1024),
            batch_wait_ms=reader.number("CIVILITY_BATCH_WAIT_MS", 2.0, low=0.0, high=100.0),
            evidence_pending_max=reader.integer(
                "CIVILITY_EVIDENCE_PENDING_MAX", 256, low=0, high=100_000
            ),
            # An author's comments in a thread are kept a day for EDITs to find (coral_links'
            # LATEST_SECONDS): the window cannot reach further back.
            coral_edit_window_seconds=reader.integer(
                "CIVILITY_CORAL_EDIT_WINDOW_SECONDS", 300, low=1, high=86_400
            ),
            delivery=DeliverySettings.from_reader(reader),
            site_models=SiteModelSettings.from_reader(reader),
            second_look=SecondLookSettings.from_reader(reader),
        )
        settings.validate()
        return settings

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        """Every environment variable ``from_env`` reads, in that order (for ``--help``)."""
        recording = RecordingEnviron()
        cls.from_env(recording)
        return tuple(dict.fromkeys(recording.read))

    def validate(self) -> None:
        target = self.redis_target
        if not _PREFIX.fullmatch(self.redis_prefix):
            raise SettingsError(
                "CIVILITY_REDIS_PREFIX must be 1-32 letters, digits, '_' or '-', "
                f"not {self.redis_prefix!r}"
            )
        if self.event_streams_limit > self.redis_max_connections // 2:
            # Each stream holds a connection: the other half stays for every other request.
            raise SettingsError(
                "CIVILITY_EVENT_STREAMS_MAX must be at most half of "
                f"CIVILITY_REDIS_MAX_CONNECTIONS ({self.redis_max_connections // 2}), "
                f"not {self.event_streams_limit}"
            )
        if self.event_streams_site_limit > self.event_streams_limit:
            raise SettingsError(
                "CIVILITY_EVENT_STREAMS_PER_SITE must be at most CIVILITY_EVENT_STREAMS_MAX "
                f"({self.event_streams_limit}), not {self.event_streams_site_limit}"
            )
        if self.event_streams_moderator_limit > self.event_streams_site_limit:
            raise SettingsError(
                "CIVILITY_EVENT_STREAMS_PER_MODERATOR must be at most "
                f"CIVILITY_EVENT_STREAMS_PER_SITE ({self.event_streams_site_limit}), "
                f"not {self.event_streams_moderator_limit}"
            )
        if self.redis_wait_replicas and target is not None and target.topology == "cluster":
            # WAIT goes to the node that took the write; a cluster client cannot pin it there.
            raise SettingsError(
                "CIVILITY_REDIS_WAIT_REPLICAS needs a single server or Sentinel, not a cluster"
            )
        if self.is_production:
            if not self.admin_token:
                raise SettingsError(
                    "CIVILITY_ADMIN_TOKEN is required when CIVILITY_ENV=production: "
                    "set it to a long random string (for example `openssl rand -hex 32`)"
                )
            if len(self.admin_token) < 16:
                raise SettingsError("CIVILITY_ADMIN_TOKEN must be at least 16 characters long")
            if self.metrics_token is not None and len(self.metrics_token) < 16:
                raise SettingsError("CIVILITY_METRICS_TOKEN must be at least 16 characters long")
