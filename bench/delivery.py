"""Webhook delivery: events per second by 1 and 2 worker processes, and decision-to-delivery time.

    .venv/bin/python -m bench.delivery [--events 4000] [--rate 200] [--seconds 10]

Uses ``REDIS_URL`` (default: database 15 of the Redis at 127.0.0.1:6379, flushed first) and an
aiohttp receiver in this process on a loopback port that checks every signature. Throughput:
``--events`` outbox events (half ``comment.held`` at intake, half ``comment.approved`` by a
moderator) are written through the store's scripts before ``civility worker`` processes start;
the rate is counted from the first delivery to the last. Latency: with the workers running and
idle, moderators decide comments at ``--rate`` per second for ``--seconds``; each delivery's
arrival minus its decision time is one sample. Prints the figures and writes
bench/results/delivery.json. Run on purpose; pytest never runs it.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.servers import redis_client
from service import signatures
from service.domain import Author, Policy, Site
from service.settings import DeliverySettings
from service.store import Store
from service.store.records import SiteRecord
from service.store.scripts import RedisClient
from service.times import from_ms
from tests import records

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "delivery.json"
CIVILITY = str(Path(sys.executable).with_name("civility"))
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
SITE = "bench"
SECRET = "whsec_delivery_benchmark"


def now_ms() -> int:
    return int(time.time() * 1000)


class Receiver:
    """A host endpoint that verifies each signature and notes when each event arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.bad_signatures = 0
        self.url = ""
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        try:
            signatures.verify(request.headers.get(signatures.HEADER), body, [SECRET])
        except signatures.SignatureError:
            self.bad_signatures += 1
            return web.Response(status=401)
        self.arrivals.append((arrived, json.loads(body)))
        self._changed.set()
        return web.Response(status=204)

    def unique(self) -> dict[str, tuple[float, dict[str, Any]]]:
        first: dict[str, tuple[float, dict[str, Any]]] = {}
        for arrived, event in self.arrivals:
            first.setdefault(event["id"], (arrived, event))
        return first

    async def wait_for(self, count: int, within: float = 600.0) -> None:
        async with asyncio.timeout(within):
            while len(self.unique()) < count:
                self._changed.clear()
                await self._changed.wait()

    def reset(self) -> None:
        self.arrivals.clear()


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def workers(count: int, redis_url: str) -> AsyncIterator[None]:
    # The benchmark's receiver listens on loopback, which webhooks may not reach by default.
    env = {**os.environ, "REDIS_URL": redis_url, "CIVILITY_CALLBACK_ALLOW": "loopback"}
    env.pop("CIVILITY_ENV", None)
    processes = [
        await asyncio.create_subprocess_exec(
            CIVILITY, "worker", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            await process.wait()


class BenchSite:
    """The benchmark site and the state changes that fill its outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.events = 0

    async def create(self, callback_url: str) -> None:
        moment = from_ms(now_ms())
        site = Site(
            id=SITE,
            name="Benchmark",
            callback_url=callback_url,
            policy=Policy(),
            created_at=moment,
            updated_at=moment,
        )
        await self.store.create_site(SiteRecord(site, SECRET, None, 0, "bench-api-key-hash"))

    def _event_id(self) -> str:
        self.events += 1
        return f"evt_bench_{self.events:07d}"

    async def held(self, comment_id: str) -> None:
        write = records.intake_write(
            comment_id,
            now_ms(),
            text_hash=f"hash:{comment_id}",
            article_id="article-1",
            author=Author(id=f"reader-{comment_id}"),
            text="A remark a moderator will look at.",
            scores={"spam": 0.1, "toxicity": 0.3},
            model="bench",
            priority=0.3,
            event_id=self._event_id(),
        )
        await self.store.write_intake(SITE, write)

    async def approve(self, comment_id: str) -> None:
        write = records.decision_write(
            comment_id, now_ms(), actor="mod_bench", event_id=self._event_id()
        )
        await self.store.decide(SITE, write)


async def fresh_site(client: RedisClient, receiver: Receiver) -> BenchSite:
    await client.flushdb()
    receiver.reset()
    site = BenchSite(Store(client))
    await site.create(receiver.url)
    return site


async def throughput(
    client: RedisClient, receiver: Receiver, redis_url: str, count: int, events: int
) -> dict[str, Any]:
    site = await fresh_site(client, receiver)
    comments = [f"c{index}" for index in range(events // 2)]
    for comment in comments:
        await site.held(comment)
    for comment in comments:
        await site.approve(comment)
    async with workers(count, redis_url):
        await receiver.wait_for(site.events)
    times = sorted(arrived for arrived, _ in receiver.unique().values())
    seconds = times[-1] - times[0]
    return {
        "workers": count,
        "events": site.events,
        "seconds": round(seconds, 3),
        "events_per_second": round((len(times) - 1) / seconds, 1),
        "duplicates": len(receiver.arrivals) - len(times),
        "out_of_order_comments": out_of_order(receiver),
    }


async def latency(
    client: RedisClient,
    receiver: Receiver,
    redis_url: str,
    count: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    site = await fresh_site(client, receiver)
    decisions = int(rate * seconds)
    comments = [f"c{index}" for index in range(decisions)]
    for comment in comments:
        await site.held(comment)
    async with workers(count, redis_url):
        await receiver.wait_for(len(comments))
        receiver.reset()
        started = time.monotonic()
        for index, comment in enumerate(comments):
            # Paced against the start, so a slow call does not lower the rate that follows.
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            await site.approve(comment)
        await receiver.wait_for(len(comments))
    samples = sorted(
        (arrived - parse_iso(event["created_at"])) * 1000
        for arrived, event in receiver.unique().values()
    )
    return {
        "workers": count,
        "decisions_per_second": rate,
        "decisions": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 1),
        "max_ms": round(samples[-1], 1),
    }


def parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def out_of_order(receiver: Receiver) -> int:
    """Comments whose events arrived with a lower version after a higher one."""
    last: dict[str, int] = {}
    disordered: set[str] = set()
    for _, event in receiver.arrivals:
        comment, version = event["comment"]["id"], event["comment"]["version"]
        if version < last.get(comment, 0):
            disordered.add(comment)
        last[comment] = max(version, last.get(comment, 0))
    return len(disordered)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    async with redis_client(redis_url) as client:
        async with receiving() as receiver:
            rates = [
                await throughput(client, receiver, redis_url, count, args.events)
                for count in (1, 2)
            ]
            delays = [
                await latency(client, receiver, redis_url, count, args.rate, args.seconds)
                for count in (1, 2)
            ]
            bad_signatures = receiver.bad_signatures
        await client.flushdb()
    defaults = DeliverySettings()
    return {
        "benchmark": "delivery",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": [round(value, 2) for value in os.getloadavg()],
        },
        "worker_settings": {
            "concurrency": defaults.concurrency,
            "poll_ms": defaults.poll_ms,
            "timeout_seconds": defaults.timeout_seconds,
        },
        "throughput": rates,
        "latency": delays,
        "bad_signatures": bad_signatures,
    }


def report(results: dict[str, Any]) -> None:
    for row in results["throughput"]:
        print(
            f"{row['workers']} worker(s): {row['events_per_second']:8.1f} events/s "
            f"({row['events']} events in {row['seconds']} s, {row['duplicates']} duplicates, "
            f"{row['out_of_order_comments']} comments out of order)"
        )
    for row in results["latency"]:
        print(
            f"{row['workers']} worker(s), {row['decisions_per_second']:g} decisions/s: "
            f"decision to delivery p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
            f"max {row['max_ms']} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    outcome = asyncio.run(main(parser.parse_args()))
    report(outcome)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(outcome, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")
