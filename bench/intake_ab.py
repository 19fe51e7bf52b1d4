"""Intake CPU of this checkout against another one (an earlier commit), served side by side.

    git worktree add ../civility-before <commit>
    .venv/bin/python -m bench.intake_ab ../civility-before [--rounds 4] [--seconds 8]
    .venv/bin/python -m bench.intake_ab . --env CIVILITY_BATCH_WAIT_MS=5   # a setting, same code
    .venv/bin/python -m bench.intake_ab . --python VENV/bin/python   # another build of Python

Runs ``civility serve`` from each checkout (two API processes each, under this interpreter and
its venv's packages unless ``--python`` names another for this checkout, each checkout's own code
and models) against its own database of the Redis ``REDIS_URL`` names
(databases 14 and 15, flushed first: those of bench.intake and bench.delivery, so run it apart
from them; default the Redis at 127.0.0.1:6379), and drives them in turn with
bench/intake.py's driver (real comments, concurrency 32), the order alternating each round. On
a shared machine the load moves between rounds; a change shows in each round's pair, so the
figure is the median over rounds of this checkout's CPU per request over the other's, per
process (API, scoring workers of both lanes, the rest, Redis), with each kind of process's own
CPU per request (``bench.intake_load.process_kind``). It writes nothing; run on purpose, never
by pytest.
"""

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.intake_load import measured
from bench.memory import DATASETS
from bench.servers import PROJECT_ROOT, SITE, create_site, free_port, on_redis, wait_until_answers
from service.store.scripts import RedisClient

DEFAULT_REDIS = "redis://127.0.0.1:6379"
DATABASES = (14, 15)
"""Outside the databases test runs lease (1-13)."""
PARTS = ("api", "scoring", "other", "redis", "total")


@dataclass(frozen=True)
class Served:
    name: str
    url: str
    redis_url: str
    secret: str
    process: psutil.Process


async def _flush(client: RedisClient) -> None:
    await client.flushdb()


@contextmanager
def _serve(
    name: str, checkout: Path, redis_url: str, settings: dict[str, str], python: str
) -> Iterator[Served]:
    on_redis(redis_url, _flush)
    token, port = secrets.token_urlsafe(24), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": token,
        "CIVILITY_PORT": str(port),
        "CIVILITY_API_PROCESSES": "2",
        **settings,
    }
    # Run from the checkout, so its own ``service`` package is the one imported.
    process = subprocess.Popen(
        [python, "-m", "service", "serve"], cwd=checkout, env=env, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(base + "/readyz", process, 120)
        yield Served(
            name,
            f"{base}/v1/sites/{SITE}/comments",
            redis_url,
            create_site(base, token),
            psutil.Process(process.pid),
        )
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("other", type=Path, help="the checkout to compare this one with")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--datasets", default=str(DATASETS))
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for this checkout's server only (repeatable); with `.` as the other "
        "checkout, it compares the setting with the default on the same code",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of this checkout's server (default: this one), for instance another "
        "build of Python 3.11 in a venv of its own with the same packages",
    )
    args = parser.parse_args()
    if malformed := [pair for pair in args.env if "=" not in pair]:
        raise SystemExit(f"--env takes NAME=VALUE, not {malformed[0]!r}")
    settings = dict(pair.split("=", 1) for pair in args.env)
    if shutil.which(args.python) is None:
        raise SystemExit(f"--python: {args.python} is not an interpreter that can be run")
    if not (args.other / "service" / "__init__.py").is_file():
        raise SystemExit(f"{args.other} is not a civility checkout")
    redis = os.environ.get("REDIS_URL", DEFAULT_REDIS).rsplit("/", 1)
    base_url = redis[0] if redis[-1].isdigit() else "/".join(redis)
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "other": []}
    with ExitStack() as stack:
        servers = [
            stack.enter_context(_serve(name, checkout, f"{base_url}/{database}", own, python))
            for name, checkout, database, own, python in zip(
                ("this", "other"),
                (PROJECT_ROOT, args.other.resolve()),
                DATABASES,
                (settings, {}),
                (args.python, sys.executable),
                strict=True,
            )
        ]
        for round_number in range(args.rounds):
            order = servers if round_number % 2 == 0 else servers[::-1]
            for server in order:
                seed = 100 * round_number
                run = measured(
                    server.url, server.secret, args, seed, server.process, server.redis_url
                )
                runs[server.name].append(run)
                print(
                    f"round {round_number} {server.name}: {run['accepted_per_second']} req/s, "
                    f"p99 {run['p99_ms']} ms, non-2xx {run['non_2xx']}, "
                    f"CPU ms/request {run['cpu_ms_per_request']}",
                    flush=True,
                )
    for name, own in runs.items():
        cpu = {
            part: round(statistics.median(run["cpu_ms_per_request"][part] for run in own), 3)
            for part in PARTS
        }
        print(
            f"{name}: median CPU ms/request {cpu}, "
            f"{statistics.median(run['accepted_per_second'] for run in own)} req/s, "
            f"p99 {statistics.median(run['p99_ms'] for run in own)} ms"
        )
        kinds = sorted({kind for run in own for kind in run["cpu_ms_per_request_by_process"]})
        by_kind = {
            kind: round(
                statistics.median(
                    run["cpu_ms_per_request_by_process"].get(kind, 0.0) for run in own
                ),
                3,
            )
            for kind in kinds
        }
        print(f"{name}: median CPU ms/request by process kind {by_kind}")
    ratios = {
        part: round(
            statistics.median(
                mine["cpu_ms_per_request"][part] / max(theirs["cpu_ms_per_request"][part], 1e-9)
                for mine, theirs in zip(runs["this"], runs["other"], strict=True)
            ),
            3,
        )
        for part in PARTS
    }
    print(f"this / other, median of the rounds' ratios: {ratios}")


if __name__ == "__main__":
    main()
