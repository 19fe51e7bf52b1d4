"""Intake at real comment lengths: civility beside bare aiohttp and bare aiohttp + one XADD.

    .venv/bin/python -m bench.intake [--seconds 20] [--rounds 3] [--api-processes 2]

Starts three servers as their own processes: ``civility serve`` against ``REDIS_URL`` (default:
database 14 of the Redis at 127.0.0.1:6379, flushed first; another ``REDIS_URL`` must name an
empty database), and bench/bare.py twice, on uvloop as civility runs: once answering at once,
once after one XADD of the body. Each round drives every server in turn (the order rotates each
round) from another process at a fixed concurrency for a bounded time, with signed webhooks
carrying real comments drawn with a fixed seed from the C3 and Civil Comments texts, so their
length distribution is the datasets'. Per server it reports the median and range over the rounds
of accepted requests/s, p50/p99 latency, non-2xx answers and CPU ms per request of each process
(API, scoring workers of both lanes, the rest such as fork servers, Redis; from /proc through
psutil and Redis's INFO cpu; and per kind of process), the ratios to the bare servers, and the
targets met or missed. Then, unless ``--no-cases``, it runs the two cases
of bench/intake_cases.py on the same servers (held against approved comments; one site's flood
of long abusive comments against another site's latency). It writes bench/results/intake.json.
``--case fairness`` (or ``held_vs_approved``, repeatable) runs only that case, on civility
alone, and replaces only that case's figures in the results. The
machine is shared: read the ratios and CPU figures, not the absolute rates. Run on purpose;
pytest never runs it.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from bench.intake_cases import CASES, run_cases
from bench.intake_load import BODIES_PER_SECOND, measured, server_summary
from bench.memory import DATASETS, real_texts
from bench.servers import (
    DEFAULT_REDIS_URL,
    PROJECT_ROOT,
    SITE,
    create_site,
    empty_database,
    free_port,
    on_redis,
    started,
)
from service import signatures

RESULTS = PROJECT_ROOT / "bench" / "results" / "intake.json"
WARM_UP_SECONDS = 3.0
SERVERS = ("bare_aiohttp", "bare_aiohttp_xadd", "civility")
TARGETS = {
    "cpu_ms_per_request_at_most": 0.8,
    "fraction_of_bare_xadd_at_least": 0.4,
    "p99_ms_below": 50.0,
    "non_2xx": 0,
}


_NOT_SETTINGS = frozenset({"CIVILITY_ADMIN_TOKEN", "CIVILITY_DATASETS", "CIVILITY_SEED"})


def _bodies(count: int, secret: str, seed: int, texts: Sequence[str]) -> list[tuple[bytes, str]]:
    """Signed bodies with unique ids and real texts, made before the clock starts so the driver
    only sends."""
    chooser = random.Random(seed)
    made = []
    for number in range(count):
        body = json.dumps(
            {
                "id": f"bench-{seed}-{number}",
                "article": {"id": f"article-{number % 50}"},
                "author": {"id": f"author-{seed}-{number % 5000}", "ip": f"10.0.{number % 250}.1"},
                "text": chooser.choice(texts),
            }
        ).encode()
        made.append((body, signatures.sign(secret, body)))
    return made


async def _drive(
    url: str, bodies: list[tuple[bytes, str]], concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    cursor = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    measure_from = started + WARM_UP_SECONDS
    stop_at = measure_from + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal cursor, errors
        while time.perf_counter() < stop_at and cursor < len(bodies):
            body, signature = bodies[cursor]
            cursor += 1
            headers = {"Content-Type": "application/json", signatures.HEADER: signature}
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = 0
            answered = time.perf_counter()
            if sent >= measure_from and answered <= stop_at:
                latencies.append(answered - sent)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if not 200 <= status < 300:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    if cursor >= len(bodies):
        raise SystemExit("the driver ran out of prepared bodies; raise BODIES_PER_SECOND")
    driver_cpu = time.process_time() - cpu_started
    latencies.sort()
    accepted = statuses.get("202", 0)

    def quantile(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "seconds": seconds,
        "requests": len(latencies),
        "accepted": accepted,
        "accepted_per_second": round(accepted / seconds, 1),
        "p50_ms": quantile(0.50),
        "p99_ms": quantile(0.99),
        "p999_ms": quantile(0.999),
        "non_2xx": errors,
        "statuses": statuses,
        "sent_in_total": cursor,
        "driver_cpu_ms_per_request": round(driver_cpu * 1000 / max(cursor, 1), 3),
    }


def drive_command(args: argparse.Namespace) -> None:
    """The driver process: prepare bodies, send them, print the figures as JSON."""
    count = int(args.bodies_per_second * (args.seconds + WARM_UP_SECONDS))
    if args.texts:
        texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    else:
        texts = real_texts(Path(args.datasets))
    bodies = _bodies(count, args.secret, seed=args.seed, texts=texts)
    result = asyncio.run(_drive(args.url, bodies, args.concurrency, args.seconds))
    print(json.dumps(result))


def _civility_env(
    args: argparse.Namespace, redis_url: str, admin_token: str, port: int
) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": admin_token,
        "CIVILITY_PORT": str(port),
        "CIVILITY_API_PROCESSES": str(args.api_processes),
    }


def _print_cases(cases: dict[str, Any]) -> None:
    if "held_vs_approved" in cases:
        held = cases["held_vs_approved"]
        print(f"held / approved: {held['held_over_approved']} (texts {held['texts']})")
    if "fairness" in cases:
        fairness = cases["fairness"]
        print(
            "fairness: other site p99 "
            f"{fairness['other_site_alone']['p99_ms']['median']} ms alone, "
            f"{fairness['other_site_beside_flood']['p99_ms']['median']} ms beside the flood "
            f"({fairness['flood']['accepted_per_second']['median']} long comments/s accepted)"
        )


def cases_command(args: argparse.Namespace) -> None:
    """Only the cases ``--case`` names, on civility alone: their figures replace those cases'
    in bench/results/intake.json, each with the run's date, rounds and load."""
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    on_redis(redis_url, lambda client: empty_database(client, redis_url, DEFAULT_REDIS_URL))
    load_before = os.getloadavg()[0]
    admin_token = secrets.token_urlsafe(24)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _civility_env(args, redis_url, admin_token, port)
    command = [sys.executable, "-m", "service", "serve"]
    with started(command, env, base + "/readyz") as civility:
        secret = create_site(base, admin_token)
        cases = run_cases(
            base, admin_token, args, psutil.Process(civility.pid), redis_url, secret, args.case
        )
    run = {
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "api_processes": args.api_processes,
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _print_cases(cases)
    if not args.no_write:
        report = json.loads(RESULTS.read_text(encoding="utf-8"))
        for name, found in cases.items():
            report["cases"][name] = {**found, "run": run}
        RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"{', '.join(cases)} written to {RESULTS.relative_to(PROJECT_ROOT)}")


def bench_command(args: argparse.Namespace) -> None:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    on_redis(redis_url, lambda client: empty_database(client, redis_url, DEFAULT_REDIS_URL))
    # Other work on the machine takes cores from every process measured here; it is recorded.
    load_before = os.getloadavg()[0]
    admin_token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in SERVERS}
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = _civility_env(args, redis_url, admin_token, ports["civility"])
    bare = [sys.executable, str(PROJECT_ROOT / "bench" / "bare.py")]
    commands = {
        "civility": ([sys.executable, "-m", "service", "serve"], env, "/readyz"),
        "bare_aiohttp": ([*bare, str(ports["bare_aiohttp"])], dict(os.environ), "/healthz"),
        "bare_aiohttp_xadd": (
            [*bare, str(ports["bare_aiohttp_xadd"]), redis_url],
            dict(os.environ),
            "/healthz",
        ),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    with ExitStack() as servers:
        processes = {
            name: psutil.Process(
                servers.enter_context(started(command, environ, bases[name] + ready)).pid
            )
            for name, (command, environ, ready) in commands.items()
        }
        secret = create_site(bases["civility"], admin_token)
        for round_number in range(args.rounds):
            shift = round_number % len(SERVERS)
            for index, name in enumerate(SERVERS[shift:] + SERVERS[:shift]):
                url = f"{bases[name]}/v1/sites/{SITE}/comments"
                seed = 100 * round_number + index
                runs[name].append(measured(url, secret, args, seed, processes[name], redis_url))
        cases: dict[str, Any] = {}
        if not args.no_cases:
            cases = run_cases(
                bases["civility"], admin_token, args, processes["civility"], redis_url, secret
            )
    servers_summary = {name: server_summary(runs[name]) for name in SERVERS}
    civility = servers_summary["civility"]

    def fraction(of: str) -> float:
        rate = float(servers_summary[of]["accepted_per_second"]["median"])
        return round(float(civility["accepted_per_second"]["median"]) / max(rate, 1e-9), 3)

    fractions = {
        "of_bare_aiohttp": fraction("bare_aiohttp"),
        "of_bare_xadd": fraction("bare_aiohttp_xadd"),
    }
    targets = {
        "cpu_ms_per_request": {
            "measured": civility["cpu_ms_per_request"]["total"]["median"],
            "target": TARGETS["cpu_ms_per_request_at_most"],
        },
        "fraction_of_bare_xadd": {
            "measured": fractions["of_bare_xadd"],
            "target": TARGETS["fraction_of_bare_xadd_at_least"],
        },
        "p99_ms": {"measured": civility["p99_ms"]["median"], "target": TARGETS["p99_ms_below"]},
        "non_2xx": {"measured": civility["non_2xx"], "target": TARGETS["non_2xx"]},
    }
    met = {
        "cpu_ms_per_request": targets["cpu_ms_per_request"]["measured"] <= 0.8,
        "fraction_of_bare_xadd": targets["fraction_of_bare_xadd"]["measured"] >= 0.4,
        "p99_ms": targets["p99_ms"]["measured"] < 50.0,
        "non_2xx": targets["non_2xx"]["measured"] == 0,
    }
    for name, target in targets.items():
        target["met"] = met[name]
    lengths = sorted(len(text) for text in real_texts(Path(args.datasets)))
    report = {
        "servers": servers_summary,
        "civility_fraction": fractions,
        "targets": targets,
        "runs": runs,
        "cases": cases,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "concurrency": args.concurrency,
        "api_processes": args.api_processes,
        "texts": {
            "sources": ["c3-constructive-comments-corpus", "civil-comments-sample"],
            "count": len(lengths),
            "mean_chars": round(statistics.fmean(lengths), 1),
            "p50_chars": lengths[len(lengths) // 2],
            "p99_chars": lengths[int(len(lengths) * 0.99)],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            key: value
            for key, value in os.environ.items()
            # The service's settings: not its secret, nor where this machine keeps the data.
            if key.startswith("CIVILITY_") and key not in _NOT_SETTINGS
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name in SERVERS:
        summary = servers_summary[name]
        print(
            f"{name}: {summary['accepted_per_second']['median']} req/s "
            f"({summary['accepted_per_second']['min']}-{summary['accepted_per_second']['max']}), "
            f"p50 {summary['p50_ms']['median']} ms, p99 {summary['p99_ms']['median']} ms, "
            f"non-2xx {summary['non_2xx']}, CPU ms/request "
            f"{ {part: value['median'] for part, value in summary['cpu_ms_per_request'].items()} }"
        )
    print(f"civility / bare: {fractions}")
    print(f"targets: {json.dumps(targets)}")
    _print_cases(cases)
    if not args.no_write:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--datasets", default=str(DATASETS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--no-cases", action="store_true", help="main rounds only (no held or fairness case)"
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=CASES,
        help="run only this case (repeatable), on civility alone; its figures replace that "
        "case's in the results",
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=2,
        help="API processes the service runs (CIVILITY_API_PROCESSES)",
    )
    commands = parser.add_subparsers(dest="command")
    drive = commands.add_parser("drive", help="(internal) the load-generating process")
    drive.add_argument("--url", required=True)
    drive.add_argument("--secret", required=True)
    drive.add_argument("--concurrency", type=int, required=True)
    drive.add_argument("--seconds", type=float, required=True)
    drive.add_argument("--seed", type=int, required=True)
    drive.add_argument("--datasets", required=True)
    drive.add_argument("--texts", help="a JSON list of texts to send instead of the datasets'")
    drive.add_argument("--bodies-per-second", type=int, default=BODIES_PER_SECOND)
    args = parser.parse_args()
    if args.command == "drive":
        drive_command(args)
    elif args.case:
        cases_command(args)
    else:
        bench_command(args)


if __name__ == "__main__":
    main()
