"""The deployment files, checked without a container engine: services, image, commands, env."""

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.commands import build_parser
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = {"api": ["civility", "serve"], "worker": ["civility", "worker"]}
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z_]+):\?.+\}$")
SHELL_BLOCK = re.compile(r"^```sh\n(?P<lines>.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def default_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in compose["services"].items() if "profiles" not in s}


def cluster_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {
        name: s for name, s in compose["services"].items() if "cluster" in s.get("profiles", ())
    }


def test_services_are_redis_and_the_two_processes_of_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(default_services(compose)) == {"redis", "api", "worker"}
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"civility:latest"}
    assert all(services[name]["build"] == "." for name in APP_SERVICES)


def test_redis_keeps_an_append_only_file_on_a_volume_and_reports_health(
    compose: dict[str, Any],
) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7"
    command = redis["command"]
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options == {"--appendonly": "yes", "--appendfsync": "everysec"}
    [volume] = redis["volumes"]
    name, mount = volume.split(":")
    assert mount == "/data"
    assert name in compose["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_each_process_runs_a_real_civility_command_once_redis_is_healthy(
    compose: dict[str, Any], service: str
) -> None:
    definition = compose["services"][service]
    command = definition["command"]
    assert command == APP_SERVICES[service]
    assert command[1] in subcommands()
    assert build_parser().parse_args(command[1:]).command == command[1]
    assert definition["depends_on"] == {"redis": {"condition": "service_healthy"}}


@pytest.mark.parametrize("service", sorted(APP_SERVICES))
def test_each_process_has_a_valid_production_environment(
    compose: dict[str, Any], service: str
) -> None:
    environment: dict[str, str] = compose["services"][service]["environment"]
    required = {
        name: match["name"]
        for name, value in environment.items()
        if (match := REQUIRED.match(str(value)))
    }
    # Secrets come from the operator's environment and compose refuses to start without them.
    assert required == {"CIVILITY_ADMIN_TOKEN": "CIVILITY_ADMIN_TOKEN"}
    assert environment["CIVILITY_ENV"] == "production"
    assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    resolved = {name: str(value) for name, value in environment.items()}
    resolved["CIVILITY_ADMIN_TOKEN"] = "x" * 32
    settings = Settings.from_env(resolved)
    assert settings.is_production
    unknown = [name for name in environment if name not in Settings.variables()]
    assert unknown == []


INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::(?P<kind>[?-])(?P<default>[^}]*))?\}")


def container_environment(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    """The environment compose gives the service's container when ``.env`` holds ``dotenv``:
    its ``env_file`` entries, then its ``environment`` (which wins), interpolated from ``.env``."""

    def value(match: re.Match[str]) -> str:
        if match["name"] in dotenv:
            return dotenv[match["name"]]
        assert match["kind"] == "-", f"compose refuses to start without {match['name']}"
        return str(match["default"])

    environment: dict[str, str] = {}
    for entry in service.get("env_file", []):
        assert (entry["path"] if isinstance(entry, dict) else entry) == ".env"
        environment.update(dotenv)
    for name, setting in service["environment"].items():
        environment[name] = INTERPOLATION.sub(value, str(setting))
    return environment


@pytest.mark.parametrize("service", sorted({*APP_SERVICES, "cluster-api", "cluster-worker"}))
def test_settings_written_into_the_env_file_reach_every_civility_process(
    compose: dict[str, Any], service: str
) -> None:
    # The README sends the operator to .env for the admin token, and a production /metrics
    # needs its own token, and two cores want two API processes: written there, they apply.
    dotenv = {
        "CIVILITY_ADMIN_TOKEN": "a" * 32,
        "CIVILITY_METRICS_TOKEN": "m" * 32,
        "CIVILITY_API_PROCESSES": "2",
        "CIVILITY_ENV": "development",
    }
    environment = container_environment(compose["services"][service], dotenv)
    settings = Settings.from_env(environment)
    assert (settings.metrics_token, settings.api_processes) == ("m" * 32, 2)
    # What the compose file sets itself still wins.
    assert settings.is_production


def test_the_worker_may_drain_before_it_is_killed(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    environment = {name: str(value) for name, value in worker["environment"].items()}
    environment["CIVILITY_ADMIN_TOKEN"] = "x" * 32
    drain = Settings.from_env(environment).delivery.drain_seconds
    grace = worker["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > drain


def test_the_image_installs_the_project_and_runs_as_a_user() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install") and line.endswith(" .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    assert lines[-1] == 'CMD ["civility", "serve"]'
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests", ".env"} <= set(ignored)


def test_the_cluster_profile_runs_both_processes_on_three_durable_nodes(
    compose: dict[str, Any],
) -> None:
    services = cluster_services(compose)
    nodes = {f"redis-node-{number}" for number in (1, 2, 3)}
    assert set(services) == {*nodes, "cluster-init", "cluster-api", "cluster-worker"}
    for node in nodes:
        command = services[node]["command"]
        options = dict(zip(command[1::2], command[2::2], strict=True))
        assert options == {
            "--cluster-enabled": "yes",
            "--appendonly": "yes",
            "--appendfsync": "everysec",
        }
        [volume] = services[node]["volumes"]
        assert volume.split(":")[0] in compose["volumes"]
    create = services["cluster-init"]["command"][0]
    assert "--cluster create" in create
    assert all(f"getent hosts {node} " in create for node in nodes)
    for name, expected in (("cluster-api", "serve"), ("cluster-worker", "worker")):
        service = services[name]
        assert service["command"] == ["civility", expected]
        assert service["image"] == "civility:latest"
        assert service["depends_on"] == {
            "cluster-init": {"condition": "service_completed_successfully"}
        }
        environment = {k: str(v) for k, v in service["environment"].items()}
        environment["CIVILITY_ADMIN_TOKEN"] = "x" * 32
        target = Settings.from_env(environment).redis_target
        assert target is not None
        assert target.topology == "cluster"
        assert {host for host, _ in target.nodes} == nodes
    assert services["cluster-api"]["ports"] == ["${CIVILITY_CLUSTER_PUBLISH_PORT:-8081}:8080"]


def readme_commands() -> list[str]:
    """The shell lines of the README's ``sh`` blocks, in order, without their comments."""
    blocks = SHELL_BLOCK.finditer((ROOT / "README.md").read_text())
    lines = [
        line.split("  #")[0].strip() for block in blocks for line in block["lines"].split("\n")
    ]
    return [line for line in lines if line]


def test_the_readme_keeps_the_admin_token_in_a_private_env_file_for_every_compose_command() -> None:
    # Compose refuses every command without CIVILITY_ADMIN_TOKEN: given on the first command line
    # alone, it would be missing from the next (scale, logs, down).
    commands = readme_commands()
    compose = [index for index, line in enumerate(commands) if "docker compose" in line]
    assert compose
    assert all(commands[index].startswith("docker compose ") for index in compose)
    [token] = [index for index, line in enumerate(commands) if "CIVILITY_ADMIN_TOKEN=" in line]
    assert commands[token].endswith(" >> .env")
    # The file is made private before the token goes in, and both before compose runs.
    private = commands.index("touch .env && chmod 600 .env")
    assert private < token < compose[0]
    assert ".env" in (ROOT / ".gitignore").read_text().split()
