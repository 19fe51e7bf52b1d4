"""The second look: what it costs intake, how fast it reads, how soon, and how it catches up.

    .venv/bin/python -m bench.second_look --models <folder with a model that has a semantic
        stage> [--rounds 3] [--round-seconds 15] [--rate 5] [--burst 2000]

Starts two ``civility serve`` processes against one Redis (``REDIS_URL``, default database 14 of
127.0.0.1:6379, flushed first), one with ``CIVILITY_SECOND_LOOK=on`` and one with ``off``, and
one ``civility worker`` (second look on, site models off). Comment texts are drawn from the
civil-comments-sample news comments, so their lengths follow that set's distribution.

1. Interleaved rounds: the same paced stream of comments (``--rate`` per second, open loop) goes
   to the ``on`` API, then to the ``off`` one (the order alternates by round), and each round's
   verdict latencies are kept; after an ``on`` round the worker finishes its backlog before the
   next round starts, so an ``off`` round never runs beside leftover second looks. The delay
   from intake to the second look comes from the stored times of each comment's look.
2. A burst: ``--burst`` comments at once (concurrency 32) to the ``on`` API, while a paced
   probe stream goes to the ``off`` API: the time until the backlog is empty, the second look's
   throughput, and the probe's verdict latency during the catch-up.

The worker's memory (its process and its scoring process, resident) is sampled throughout.
Prints the figures and writes bench/results/second_look.json. Run on purpose; pytest never
runs it.
"""

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from bench.servers import (
    DEFAULT_REDIS_URL,
    PROJECT_ROOT,
    SITE,
    create_site,
    empty_database,
    free_port,
    on_redis,
    redis_client,
    started,
)
from service import signatures
from service.keys import KeySpace
from service.store.scripts import RedisClient

RESULTS = PROJECT_ROOT / "bench" / "results" / "second_look.json"
DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
COMMENTS = Path("civil-comments-sample") / "civil_comments_10k.csv"
KEYS = KeySpace("civ")
MAX_TEXT = 20_000
BURST_CONCURRENCY = 32
WORKER_EXITED = threading.Event()


def news_comments(datasets: Path) -> list[str]:
    with (datasets / COMMENTS).open(encoding="utf-8", newline="") as handle:
        return [row["text"][:MAX_TEXT] for row in csv.DictReader(handle) if row["text"].strip()]


class Bodies:
    """Signed intake bodies with unique ids and texts drawn from real news comments."""

    def __init__(self, texts: Sequence[str], secret: str, seed: int) -> None:
        self.texts = texts
        self.secret = secret
        self.chooser = random.Random(seed)
        self.count = 0

    def next(self, tag: str) -> tuple[str, bytes, str]:
        self.count += 1
        comment_id = f"{tag}-{self.count}"
        body = json.dumps(
            {
                "id": comment_id,
                "article": {"id": f"article-{self.count % 50}"},
                "author": {"id": f"author-{self.count % 5000}"},
                "text": self.chooser.choice(self.texts),
            }
        ).encode()
        return comment_id, body, signatures.sign(self.secret, body)


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, signature: str
) -> tuple[float, int]:
    headers = {"Content-Type": "application/json", signatures.HEADER: signature}
    sent = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except aiohttp.ClientError:
        status = 0
    return time.perf_counter() - sent, status


async def paced(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Bodies,
    tag: str,
    rate: float,
    seconds: float,
    stop: asyncio.Event | None = None,
) -> tuple[list[float], list[str], int]:
    """An open-loop stream at ``rate`` per second: each comment is sent on schedule, whether or
    not the previous ones have been answered. Latencies (s), ids sent, errors."""
    tasks: list[asyncio.Task[tuple[float, int]]] = []
    ids: list[str] = []
    started = time.perf_counter()
    for number in range(int(rate * seconds)):
        if stop is not None and stop.is_set():
            break
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        comment_id, body, signature = bodies.next(tag)
        ids.append(comment_id)
        tasks.append(asyncio.create_task(_post(session, url, body, signature)))
    answers = await asyncio.gather(*tasks)
    return [latency for latency, _ in answers], ids, sum(1 for _, s in answers if s != 202)


async def burst(
    session: aiohttp.ClientSession, url: str, bodies: Bodies, count: int
) -> tuple[list[float], list[str], int]:
    queue = [bodies.next("burst") for _ in range(count)]
    ids = [comment_id for comment_id, _, _ in queue]
    latencies: list[float] = []
    errors = 0

    async def sender() -> None:
        nonlocal errors
        while queue:
            _, body, signature = queue.pop()
            latency, status = await _post(session, url, body, signature)
            latencies.append(latency)
            errors += status != 202

    await asyncio.gather(*(sender() for _ in range(BURST_CONCURRENCY)))
    return latencies, ids, errors


def quantiles(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * scale, 2)

    return {"count": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)}


async def until_drained(client: RedisClient, within: float) -> float:
    """Seconds until the site's second-look backlog is empty."""
    started = time.perf_counter()
    while await client.zcard(KEYS.second_look_queue(SITE)):
        if WORKER_EXITED.is_set():
            raise SystemExit("the worker exited")
        if time.perf_counter() - started > within:
            raise SystemExit(f"the second-look backlog did not drain within {within} s")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def looks(client: RedisClient, ids: Sequence[str]) -> list[tuple[int, int, str]]:
    """(queued at, looked at, look state) of each comment that was queued, in ms."""
    async with client.pipeline(transaction=False) as pipe:
        for comment_id in ids:
            pipe.hmget(KEYS.comment(SITE, comment_id), "look_queued_at", "look_at", "look_state")
        replies = await pipe.execute()
    found = []
    for queued, looked, state in replies:
        if queued is not None and looked is not None:
            found.append((int(queued), int(looked), str(state)))
    return found


class MemoryWatch:
    """Peak resident memory of a process and its children, sampled twice a second."""

    def __init__(self, worker: subprocess.Popen[bytes]) -> None:
        self.worker = worker
        self.process = psutil.Process(worker.pid)
        self.peak_mb = 0.0
        self.last_mb = 0.0
        self.peak_look_process_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            if self.worker.poll() is not None:
                WORKER_EXITED.set()
                return
            try:
                children = self.process.children(recursive=True)
                sizes = [child.memory_info().rss for child in children]
                total = self.process.memory_info().rss + sum(sizes)
            except psutil.Error:
                continue  # a child ended between the listing and the reading
            self.last_mb = total / 2**20
            self.peak_mb = max(self.peak_mb, self.last_mb)
            self.peak_look_process_mb = max(
                self.peak_look_process_mb, max(sizes, default=0) / 2**20
            )


async def measure(
    args: argparse.Namespace,
    urls: dict[str, str],
    secret: str,
    redis_url: str,
    watch: MemoryWatch,
) -> dict[str, Any]:
    async with redis_client(redis_url) as client:
        return await _measure(args, urls, secret, client, watch)


async def _measure(
    args: argparse.Namespace,
    urls: dict[str, str],
    secret: str,
    client: RedisClient,
    watch: MemoryWatch,
) -> dict[str, Any]:
    texts = news_comments(args.datasets)
    bodies = Bodies(texts, secret, seed=7)
    lengths = sorted(len(text) for text in texts)
    rounds: dict[str, list[float]] = {"on": [], "off": []}
    errors = {"on": 0, "off": 0}
    delays: list[float] = []
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm up both APIs and the worker's scoring process (it starts on the first look).
        for mode in ("on", "off"):
            await paced(session, urls[mode], bodies, f"warm-{mode}", args.rate, 3.0)
        await until_drained(client, 600)
        for number in range(args.rounds):
            order = ("on", "off") if number % 2 == 0 else ("off", "on")
            for mode in order:
                tag = f"round{number}-{mode}"
                latencies, ids, failed = await paced(
                    session, urls[mode], bodies, tag, args.rate, args.round_seconds
                )
                rounds[mode] += latencies
                errors[mode] += failed
                if mode == "on":
                    await until_drained(client, 600)
                    delays += [
                        (looked - queued) / 1000 for queued, looked, _ in await looks(client, ids)
                    ]
            print(f"round {number + 1}/{args.rounds} done", flush=True)
        on, off = quantiles(rounds["on"]), quantiles(rounds["off"])

        stop = asyncio.Event()
        probe = asyncio.create_task(
            paced(session, urls["off"], bodies, "probe", args.rate, 3600.0, stop)
        )
        burst_started = time.perf_counter()
        burst_latencies, burst_ids, burst_errors = await burst(
            session, urls["on"], bodies, args.burst
        )
        intake_seconds = time.perf_counter() - burst_started
        await until_drained(client, 1800)
        drained_seconds = time.perf_counter() - burst_started
        stop.set()
        probe_latencies, _, probe_errors = await probe
    burst_looks = await looks(client, burst_ids)
    first = min(queued for queued, _, _ in burst_looks)
    last = max(looked for _, looked, _ in burst_looks)
    held = sum(1 for _, _, state in burst_looks if state == "held")
    return {
        "texts": {
            "source": str(COMMENTS),
            "count": len(texts),
            "length_p50": lengths[len(lengths) // 2],
            "length_p90": lengths[int(0.9 * len(lengths))],
            "length_max": lengths[-1],
        },
        "rate_per_second": args.rate,
        "rounds": args.rounds,
        "round_seconds": args.round_seconds,
        "intake_ms": {
            "second_look_on": on,
            "second_look_off": off,
            "p50_ratio_on_to_off": round(on["p50"] / off["p50"], 3),
            "p99_ratio_on_to_off": round(on["p99"] / off["p99"], 3),
            "errors": errors,
        },
        "delay_intake_to_second_look_seconds": quantiles(delays, scale=1.0),
        "burst": {
            "comments": args.burst,
            "intake_seconds": round(intake_seconds, 2),
            "intake_ms": quantiles(burst_latencies),
            "errors": burst_errors,
            "backlog_empty_after_seconds": round(drained_seconds, 2),
            "second_look_per_second": round(len(burst_looks) / max((last - first) / 1000, 1e-9), 1),
            "held_by_second_look": held,
            "probe_intake_ms_during_catch_up": quantiles(probe_latencies),
            "probe_errors": probe_errors,
        },
        "worker_memory_mb": {
            "peak_with_scoring_process": round(watch.peak_mb, 1),
            "peak_scoring_process": round(watch.peak_look_process_mb, 1),
            "at_end": round(watch.last_mb, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="models folder (ACTIVE)")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=5.0, help="comments per second")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="CIVILITY_SECOND_LOOK_THREADS")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    on_redis(redis_url, lambda client: empty_database(client, redis_url, DEFAULT_REDIS_URL))
    load_before = os.getloadavg()[0]
    admin_token = secrets.token_urlsafe(24)
    common = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": admin_token,
        "CIVILITY_MODELS_DIR": str(args.models.resolve()),
        "CIVILITY_SITE_MODELS": "off",
        "CIVILITY_SECOND_LOOK_THREADS": str(args.threads),
    }
    ports = {"on": free_port(), "off": free_port()}
    urls = {
        mode: f"http://127.0.0.1:{port}/v1/sites/{SITE}/comments" for mode, port in ports.items()
    }
    serve = [sys.executable, "-m", "service", "serve"]
    worker = [sys.executable, "-m", "service", "worker"]

    def env(mode: str, port: int | None = None) -> dict[str, str]:
        where = {} if port is None else {"CIVILITY_PORT": str(port)}
        return {**common, "CIVILITY_SECOND_LOOK": mode, **where}

    with (
        started(
            serve, env("on", ports["on"]), f"http://127.0.0.1:{ports['on']}/readyz", quiet=True
        ),
        started(
            serve, env("off", ports["off"]), f"http://127.0.0.1:{ports['off']}/readyz", quiet=True
        ),
        started(worker, env("on"), quiet=True) as worker_process,
        MemoryWatch(worker_process) as watch,
    ):
        secret = create_site(f"http://127.0.0.1:{ports['on']}", admin_token)
        results = asyncio.run(measure(args, urls, secret, redis_url, watch))
    results["model"] = (args.models / "ACTIVE").read_text(encoding="utf-8").strip()
    results["threads"] = args.threads
    results["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report(results)
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


def report(results: dict[str, Any]) -> None:
    intake, burst_ = results["intake_ms"], results["burst"]
    delay = results["delay_intake_to_second_look_seconds"]
    print(
        f"intake at {results['rate_per_second']}/s, second look on: p50 "
        f"{intake['second_look_on']['p50']} ms, p99 {intake['second_look_on']['p99']} ms; off: "
        f"p50 {intake['second_look_off']['p50']} ms, p99 {intake['second_look_off']['p99']} ms "
        f"(p99 ratio {intake['p99_ratio_on_to_off']})\n"
        f"delay intake -> second look: p50 {delay.get('p50')} s, p99 {delay.get('p99')} s\n"
        f"burst of {burst_['comments']}: backlog empty after "
        f"{burst_['backlog_empty_after_seconds']} s, "
        f"{burst_['second_look_per_second']} second looks/s, probe intake p99 "
        f"{burst_['probe_intake_ms_during_catch_up'].get('p99')} ms during the catch-up\n"
        f"worker memory: peak {results['worker_memory_mb']['peak_with_scoring_process']} MB "
        f"(scoring process {results['worker_memory_mb']['peak_scoring_process']} MB)"
    )


if __name__ == "__main__":
    main()
