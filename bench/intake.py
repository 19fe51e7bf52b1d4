"""Intake throughput: signed, scored, stored comments per second, against a bare aiohttp ceiling.

    .venv/bin/python bench/intake.py [--seconds 20] [--concurrency 32] [--api-processes 1]

Starts ``civility serve`` as its own process against ``REDIS_URL`` (default: database 14 of the
Redis at 127.0.0.1:6379, flushed first; another ``REDIS_URL`` must name an empty database),
creates a site, then drives signed webhooks with unique ids from another process at a fixed
concurrency for a bounded time. The same driver then runs against bench/bare.py, an aiohttp
endpoint that only reads the body. Prints accepted comments/s, p50/p99/p999 latency, errors and
CPU per request of each process, and writes bench/results/intake.json. Run on purpose; pytest
never runs it.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
import redis

from service import signatures

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "intake.json"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
SITE = "bench"
WARM_UP_SECONDS = 3.0

# Most comments on a news site are unremarkable; a few are spam or abuse and get evidence spans.
CIVIL = (
    "I think the minister has a point about the budget, but the timing is odd.",
    "Thanks for the clear summary of the talks. Is there a transcript anywhere?",
    "My town had the same problem with the bridge last year; it took months to fix.",
    "The second chart is hard to read on a phone, could you add the numbers?",
    "Good piece. I would like to see a follow-up on what happens to the workers.",
    "I disagree with the conclusion, the data from 2019 points the other way.",
    "Does anyone know whether the new rules apply to small businesses as well?",
    "Interesting interview, the part about the harbour was new to me.",
)
DOUBTFUL = (
    "Buy cheap watches now at http://cheap-watches.example and win a prize!!!",
    "You are an idiot and everyone who agrees with you is a moron.",
)
DOUBTFUL_SHARE = 0.05


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_answers(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


@contextmanager
def _process(
    command: list[str], env: dict[str, str], ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
    try:
        _wait_until_answers(ready_url, process, 120)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _create_site(base: str, admin_token: str) -> str:
    spec = {"id": SITE, "name": "Benchmark", "policy": {"flood_seconds_per_author": 0}}
    request = urllib.request.Request(
        f"{base}/v1/sites",
        data=json.dumps(spec).encode(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        created: dict[str, Any] = json.loads(response.read())
    return str(created["webhook_secret"])


def _bodies(count: int, secret: str, seed: int, doubtful_share: float) -> list[tuple[bytes, str]]:
    """Signed bodies with unique ids, made before the clock starts so the driver only sends."""
    chooser = random.Random(seed)
    made = []
    for number in range(count):
        doubtful = chooser.random() < doubtful_share
        text = chooser.choice(DOUBTFUL if doubtful else CIVIL)
        body = json.dumps(
            {
                "id": f"bench-{seed}-{number}",
                "article": {"id": f"article-{number % 50}"},
                "author": {"id": f"author-{number % 5000}", "ip": f"10.0.{number % 250}.1"},
                "text": f"{text} ({number})",
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
                if status != 202:
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
        "errors": errors,
        "statuses": statuses,
        "sent_in_total": cursor,
        "driver_cpu_ms_per_request": round(driver_cpu * 1000 / max(cursor, 1), 3),
    }


BODIES_PER_SECOND = 16000


def drive_command(args: argparse.Namespace) -> None:
    """The driver process: prepare bodies, send them, print the figures as JSON."""
    count = int(BODIES_PER_SECOND * (args.seconds + WARM_UP_SECONDS))
    bodies = _bodies(count, args.secret, seed=args.seed, doubtful_share=args.doubtful_share)
    result = asyncio.run(_drive(args.url, bodies, args.concurrency, args.seconds))
    print(json.dumps(result))


def _run_driver(url: str, secret: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "drive", "--url", url, "--secret", secret,
        "--concurrency", str(args.concurrency), "--seconds", str(args.seconds),
        "--seed", str(seed), "--doubtful-share", str(args.doubtful_share),
    ]  # fmt: skip
    output = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if output.returncode != 0:
        raise SystemExit(f"the driver failed:\n{output.stderr}")
    result: dict[str, Any] = json.loads(output.stdout)
    return result


def _cpu_seconds(process: psutil.Process) -> dict[str, float]:
    """CPU used so far by the API processes and, separately, by their scoring workers."""
    own = process.cpu_times()
    api, workers = own.user + own.system, 0.0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            # With several API processes the first one only starts and waits for the others.
            if child.cmdline()[-1:] == ["serve"]:
                api += times.user + times.system
            else:
                workers += times.user + times.system
    return {"api": api, "scoring": workers}


def _redis_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def bench_command(args: argparse.Namespace) -> None:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if redis_url == DEFAULT_REDIS_URL:
        redis.Redis.from_url(redis_url).flushdb()
    elif redis.Redis.from_url(redis_url).dbsize():
        # Someone else's data: the benchmark would add thousands of comments to it.
        raise SystemExit(f"{redis_url} is not empty; point REDIS_URL at an empty database")
    # Other work on the machine takes cores from every process measured here; it is recorded.
    load_before = os.getloadavg()[0]
    admin_token = secrets.token_urlsafe(24)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": admin_token,
        "CIVILITY_PORT": str(port),
        "CIVILITY_API_PROCESSES": str(args.api_processes),
    }
    serve = [sys.executable, "-m", "service", "serve"]
    store = redis.Redis.from_url(redis_url)
    with _process(serve, env, f"{base}/readyz") as served:
        secret = _create_site(base, admin_token)
        serving = psutil.Process(served.pid)
        cpu_before, redis_before = _cpu_seconds(serving), _redis_cpu_seconds(store)
        service = _run_driver(f"{base}/v1/sites/{SITE}/comments", secret, args, seed=1)
        cpu_after, redis_after = _cpu_seconds(serving), _redis_cpu_seconds(store)
    sent = max(service["sent_in_total"], 1)
    service["cpu_ms_per_request"] = {
        "api_process": round((cpu_after["api"] - cpu_before["api"]) * 1000 / sent, 3),
        "scoring_workers": round((cpu_after["scoring"] - cpu_before["scoring"]) * 1000 / sent, 3),
        "redis": round((redis_after - redis_before) * 1000 / sent, 3),
        "driver": service.pop("driver_cpu_ms_per_request"),
    }
    bare_port = _free_port()
    bare = [sys.executable, str(PROJECT_ROOT / "bench" / "bare.py"), str(bare_port)]
    bare_base = f"http://127.0.0.1:{bare_port}"
    with _process(bare, dict(os.environ), f"{bare_base}/healthz"):
        ceiling = _run_driver(f"{bare_base}/v1/sites/{SITE}/comments", secret, args, seed=2)
    fraction = service["accepted_per_second"] / max(ceiling["accepted_per_second"], 1e-9)
    report = {
        "service": service,
        "bare_aiohttp": ceiling,
        "fraction_of_bare": round(fraction, 3),
        "concurrency": args.concurrency,
        "api_processes": args.api_processes,
        "doubtful_share": args.doubtful_share,
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
            if key.startswith("CIVILITY_") and key != "CIVILITY_ADMIN_TOKEN"
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(
        f"service: {service['accepted_per_second']} accepted comments/s, "
        f"p50 {service['p50_ms']} ms, p99 {service['p99_ms']} ms, p999 {service['p999_ms']} ms, "
        f"errors {service['errors']}\n"
        f"CPU ms per request: {service['cpu_ms_per_request']}\n"
        f"bare aiohttp: {ceiling['accepted_per_second']} requests/s, p99 {ceiling['p99_ms']} ms\n"
        f"fraction of bare: {fraction:.1%}"
    )
    if not args.no_write:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--api-processes",
        type=int,
        default=1,
        help="API processes the service runs (CIVILITY_API_PROCESSES)",
    )
    parser.add_argument(
        "--doubtful-share",
        type=float,
        default=DOUBTFUL_SHARE,
        help="share of spam or abusive comments, which are held and explained",
    )
    commands = parser.add_subparsers(dest="command")
    drive = commands.add_parser("drive", help="(internal) the load-generating process")
    drive.add_argument("--url", required=True)
    drive.add_argument("--secret", required=True)
    drive.add_argument("--concurrency", type=int, required=True)
    drive.add_argument("--seconds", type=float, required=True)
    drive.add_argument("--seed", type=int, required=True)
    drive.add_argument("--doubtful-share", type=float, required=True)
    args = parser.parse_args()
    if args.command == "drive":
        drive_command(args)
    else:
        bench_command(args)


if __name__ == "__main__":
    main()
