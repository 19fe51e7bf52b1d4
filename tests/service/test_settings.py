"""Settings come from the environment and refuse to start a service that would be unsafe."""

from pathlib import Path

import pytest

from service.env_reader import SettingsError
from service.redis_url import RedisTarget
from service.settings import SecondLookSettings, Settings


def test_defaults_describe_a_local_development_service() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path(".civility")
    assert settings.redis_url is None
    assert settings.admin_token is None
    assert settings.signature_tolerance_seconds == 300
    assert settings.coral_edit_window_seconds == 300


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "CIVILITY_ENV": "production",
            "CIVILITY_HOST": "0.0.0.0",
            "CIVILITY_PORT": "9000",
            "CIVILITY_DATA_DIR": "/var/lib/civility",
            "CIVILITY_MODELS_DIR": "/opt/models",
            "REDIS_URL": "redis://cache:6379/2",
            "CIVILITY_ADMIN_TOKEN": "a" * 32,
            "CIVILITY_MAX_BODY_BYTES": "65536",
            "CIVILITY_SIGNATURE_TOLERANCE_SECONDS": "120",
            "CIVILITY_SECRET_GRACE_SECONDS": "60",
            "CIVILITY_SCORING_WORKERS": "3",
            "CIVILITY_SCORING_LONG_WORKERS": "0",
            "CIVILITY_BATCH_MAX_ITEMS": "16",
            "CIVILITY_BATCH_WAIT_MS": "0.5",
            "CIVILITY_CORAL_EDIT_WINDOW_SECONDS": "30",
        }
    )
    assert settings == Settings(
        env="production",
        host="0.0.0.0",
        port=9000,
        data_dir=Path("/var/lib/civility"),
        models_dir=Path("/opt/models"),
        redis_url="redis://cache:6379/2",
        admin_token="a" * 32,
        max_body_bytes=65536,
        signature_tolerance_seconds=120,
        secret_grace_seconds=60,
        scoring_workers=3,
        scoring_long_workers=0,
        batch_max_items=16,
        batch_wait_ms=0.5,
        coral_edit_window_seconds=30,
    )


def test_production_without_an_admin_token_stops_with_a_clear_message() -> None:
    with pytest.raises(SettingsError, match="CIVILITY_ADMIN_TOKEN is required"):
        Settings.from_env({"CIVILITY_ENV": "production"})


def test_production_refuses_a_short_admin_token() -> None:
    with pytest.raises(SettingsError, match="at least 16 characters"):
        Settings.from_env({"CIVILITY_ENV": "production", "CIVILITY_ADMIN_TOKEN": "short"})


def test_production_refuses_a_short_metrics_token() -> None:
    with pytest.raises(
        SettingsError, match="CIVILITY_METRICS_TOKEN must be at least 16 characters"
    ):
        Settings.from_env(
            {
                "CIVILITY_ENV": "production",
                "CIVILITY_ADMIN_TOKEN": "a" * 32,
                "CIVILITY_METRICS_TOKEN": "short",
            }
        )


def test_plain_digits_decimals_and_a_long_metrics_token_are_read() -> None:
    settings = Settings.from_env(
        {
            "CIVILITY_ENV": " production ",
            "CIVILITY_ADMIN_TOKEN": "a" * 32,
            "CIVILITY_METRICS_TOKEN": "m" * 16,
            "CIVILITY_PORT": " 08080 ",
            "CIVILITY_BATCH_WAIT_MS": ".5",
            "CIVILITY_REDIS_SOCKET_TIMEOUT_SECONDS": "2.",
        }
    )
    assert (settings.env, settings.port, settings.batch_wait_ms) == ("production", 8080, 0.5)
    assert settings.metrics_token == "m" * 16


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CIVILITY_ENV", "staging", "CIVILITY_ENV must be one of development, production"),
        ("CIVILITY_PORT", "eighty", "CIVILITY_PORT must be a whole number"),
        ("CIVILITY_PORT", "70000", "CIVILITY_PORT must be between 1 and 65535"),
        # Port 0 would bind somewhere the start-up line could not name.
        ("CIVILITY_PORT", "0", "CIVILITY_PORT must be between 1 and 65535"),
        ("CIVILITY_SCORING_WORKERS", "0", "CIVILITY_SCORING_WORKERS must be between"),
        ("CIVILITY_SCORING_LONG_WORKERS", "-1", "CIVILITY_SCORING_LONG_WORKERS must be between"),
        ("CIVILITY_BATCH_WAIT_MS", "soon", "CIVILITY_BATCH_WAIT_MS must be a number"),
        # int() and float() take these; an operator never means them as a setting.
        ("CIVILITY_PORT", "1_000", "CIVILITY_PORT must be a whole number, not '1_000'"),
        ("CIVILITY_PORT", "\u0668\u0660\u0668\u0660", "CIVILITY_PORT must be a whole number"),
        ("CIVILITY_PORT", "\uff18\uff10", "CIVILITY_PORT must be a whole number"),
        ("CIVILITY_PORT", "+80", "CIVILITY_PORT must be a whole number"),
        ("CIVILITY_PORT", "9" * 5000, "CIVILITY_PORT must be a whole number"),
        ("CIVILITY_BATCH_WAIT_MS", "1_0", "CIVILITY_BATCH_WAIT_MS must be a number"),
        ("CIVILITY_BATCH_WAIT_MS", "\u0661.5", "CIVILITY_BATCH_WAIT_MS must be a number"),
        ("CIVILITY_BATCH_WAIT_MS", "1e1", "CIVILITY_BATCH_WAIT_MS must be a number"),
        ("CIVILITY_BATCH_WAIT_MS", "nan", "CIVILITY_BATCH_WAIT_MS must be a number"),
        # Set but empty is most likely a variable meant to be filled in, not development.
        ("CIVILITY_ENV", "", "CIVILITY_ENV must be one of development, production, not ''"),
        ("CIVILITY_ENV", "  ", "CIVILITY_ENV must be one of development, production, not ''"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must start with"),
        ("REDIS_URL", "redis://127.0.0.1:99999/0", "REDIS_URL has a port out of range"),
        # redis-py would read this as database 0.
        ("REDIS_URL", "redis://127.0.0.1:6379/abc", "REDIS_URL names database 'abc'"),
        # redis-py would read these only when it first connects, and end in a traceback.
        ("REDIS_URL", "redis://[::1/0", r"REDIS_URL cannot be read \(Invalid IPv6 URL\)"),
        ("REDIS_URL", "redis://h:6379/0?socket_timeout=soon", "REDIS_URL cannot be read"),
        ("REDIS_URL", "unix:///run/redis.sock?db=two", "REDIS_URL cannot be read"),
        ("REDIS_URL", "redis://h:6379/0?sockettimeout=1", "REDIS_URL has unknown options"),
        ("REDIS_URL", "redis+cluster://a:7000,b/", "each node must be host:port"),
        ("REDIS_URL", "redis+cluster://a:7000,b:0", "each node must be host:port"),
        ("REDIS_URL", "redis+cluster://a:7000/3", "a cluster has only database 0"),
        ("REDIS_URL", "redis+sentinel://a:26379,b:26379", "names no Sentinel service"),
        ("REDIS_URL", "redis+sentinel://a:26379/main/x", "REDIS_URL names database 'x'"),
        ("REDIS_URL", "redis+sentinel://a:26379/main?db=1", "takes no query"),
        ("CIVILITY_REDIS_PREFIX", "civ:{x}", "CIVILITY_REDIS_PREFIX must be 1-32 letters"),
        ("CIVILITY_REDIS_WAIT_REPLICAS", "-1", "CIVILITY_REDIS_WAIT_REPLICAS must be between"),
        ("CIVILITY_SECOND_LOOK", "yes", "CIVILITY_SECOND_LOOK must be one of on, off"),
        ("CIVILITY_SECOND_LOOK_THREADS", "0", "CIVILITY_SECOND_LOOK_THREADS must be between"),
        # An author's comments in a thread are kept a day: a window beyond would find none.
        (
            "CIVILITY_CORAL_EDIT_WINDOW_SECONDS",
            "86401",
            "CIVILITY_CORAL_EDIT_WINDOW_SECONDS must be between 1 and 86400",
        ),
        ("CIVILITY_CORAL_EDIT_WINDOW_SECONDS", "0", "CIVILITY_CORAL_EDIT_WINDOW_SECONDS must be"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@localhost:99999/0",
        "rediss+cluster://ada:hunter2@a:7000,b/",
        "redis+sentinel://:hunter2@a:26379/main?db=1",
        "redis+sentinel://:hunter2@a:26379",
    ],
)
def test_a_refused_redis_url_is_shown_without_its_credentials(url: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"REDIS_URL": url})
    assert "hunter2" not in str(refused.value)
    assert "***@" in str(refused.value)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("unix:///run/redis.sock?db=2", RedisTarget("single", "unix:///run/redis.sock?db=2", db=2)),
        ("rediss://h:6380/4", RedisTarget("single", "rediss://h:6380/4", db=4)),
        # The query names the database before the path, as redis-py reads it.
        ("redis://h/4?db=5", RedisTarget("single", "redis://h/4?db=5", db=5)),
        (
            "redis+cluster://app:s%40cret@n1:7000,n2:7001",
            RedisTarget(
                "cluster",
                "redis+cluster://app:s%40cret@n1:7000,n2:7001",
                nodes=(("n1", 7000), ("n2", 7001)),
                username="app",
                password="s@cret",
            ),
        ),
        (
            "rediss+sentinel://:pw@s1:26379,s2:26379,s3:26379/civility/2",
            RedisTarget(
                "sentinel",
                "rediss+sentinel://:pw@s1:26379,s2:26379,s3:26379/civility/2",
                nodes=(("s1", 26379), ("s2", 26379), ("s3", 26379)),
                service="civility",
                db=2,
                password="pw",
                tls=True,
            ),
        ),
    ],
)
def test_redis_url_names_one_server_a_cluster_or_a_sentinel_service(
    url: str, target: RedisTarget
) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_target == target


def test_waiting_for_replicas_is_refused_on_a_cluster() -> None:
    environ = {"REDIS_URL": "redis+cluster://a:7000", "CIVILITY_REDIS_WAIT_REPLICAS": "1"}
    with pytest.raises(SettingsError, match="needs a single server or Sentinel, not a cluster"):
        Settings.from_env(environ)


def test_the_second_look_is_on_unless_switched_off() -> None:
    assert Settings.from_env({}).second_look == SecondLookSettings()
    assert SecondLookSettings().enabled
    read = Settings.from_env(
        {
            "CIVILITY_SECOND_LOOK": "off",
            "CIVILITY_SECOND_LOOK_THREADS": "2",
            "CIVILITY_SECOND_LOOK_BATCH": "64",
            "CIVILITY_SECOND_LOOK_LEASE_SECONDS": "30",
            "CIVILITY_SECOND_LOOK_POLL_SECONDS": "0.5",
        }
    ).second_look
    assert read == SecondLookSettings(
        enabled=False, batch_size=64, lease_seconds=30.0, poll_seconds=0.5, threads=2
    )
    assert "CIVILITY_SECOND_LOOK" in Settings.variables()


def test_event_streams_take_at_most_a_quarter_of_the_connections_unless_told() -> None:
    assert Settings.from_env({}).event_streams_limit == 64
    fewer = Settings.from_env({"CIVILITY_REDIS_MAX_CONNECTIONS": "10"})
    assert fewer.event_streams_limit == 2
    told = {"CIVILITY_REDIS_MAX_CONNECTIONS": "10", "CIVILITY_EVENT_STREAMS_MAX": "5"}
    assert Settings.from_env(told).event_streams_limit == 5
    assert "CIVILITY_EVENT_STREAMS_MAX" in Settings.variables()


def test_one_site_takes_at_most_a_quarter_of_the_event_streams_unless_told() -> None:
    assert Settings.from_env({}).event_streams_site_limit == 16
    few = Settings.from_env({"CIVILITY_EVENT_STREAMS_MAX": "3"})
    assert few.event_streams_site_limit == 1
    told = {"CIVILITY_EVENT_STREAMS_MAX": "8", "CIVILITY_EVENT_STREAMS_PER_SITE": "8"}
    assert Settings.from_env(told).event_streams_site_limit == 8
    assert "CIVILITY_EVENT_STREAMS_PER_SITE" in Settings.variables()


def test_one_moderator_takes_at_most_half_the_site_share_of_event_streams_unless_told() -> None:
    assert Settings.from_env({}).event_streams_moderator_limit == 8
    one = Settings.from_env({"CIVILITY_EVENT_STREAMS_MAX": "4"})
    assert one.event_streams_moderator_limit == 1
    told = {"CIVILITY_EVENT_STREAMS_PER_SITE": "6", "CIVILITY_EVENT_STREAMS_PER_MODERATOR": "6"}
    assert Settings.from_env(told).event_streams_moderator_limit == 6
    assert "CIVILITY_EVENT_STREAMS_PER_MODERATOR" in Settings.variables()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CIVILITY_EVENT_STREAMS_MAX": "0"}, "CIVILITY_EVENT_STREAMS_MAX must be between 1"),
        ({"CIVILITY_EVENT_STREAMS_MAX": "many"}, "CIVILITY_EVENT_STREAMS_MAX must be a whole"),
        # Streams holding more than half the connections would starve every other request.
        (
            {"CIVILITY_REDIS_MAX_CONNECTIONS": "10", "CIVILITY_EVENT_STREAMS_MAX": "6"},
            r"CIVILITY_EVENT_STREAMS_MAX must be at most half of CIVILITY_REDIS_MAX_CONNECTIONS "
            r"\(5\), not 6",
        ),
        (
            {"CIVILITY_EVENT_STREAMS_PER_SITE": "0"},
            "CIVILITY_EVENT_STREAMS_PER_SITE must be between 1",
        ),
        (
            {"CIVILITY_EVENT_STREAMS_PER_SITE": "half"},
            "CIVILITY_EVENT_STREAMS_PER_SITE must be a whole",
        ),
        # A share above the whole is no share: the setting is mistaken.
        (
            {"CIVILITY_EVENT_STREAMS_MAX": "8", "CIVILITY_EVENT_STREAMS_PER_SITE": "9"},
            r"CIVILITY_EVENT_STREAMS_PER_SITE must be at most CIVILITY_EVENT_STREAMS_MAX "
            r"\(8\), not 9",
        ),
        (
            {"CIVILITY_EVENT_STREAMS_PER_MODERATOR": "0"},
            "CIVILITY_EVENT_STREAMS_PER_MODERATOR must be between 1",
        ),
        (
            {"CIVILITY_EVENT_STREAMS_PER_SITE": "4", "CIVILITY_EVENT_STREAMS_PER_MODERATOR": "5"},
            r"CIVILITY_EVENT_STREAMS_PER_MODERATOR must be at most "
            r"CIVILITY_EVENT_STREAMS_PER_SITE \(4\), not 5",
        ),
    ],
)
def test_event_streams_bound_is_refused_when_it_would_starve_requests(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)
