"""Redis memory per stored comment, at real comment lengths.

    .venv/bin/python -m bench.memory [--comments 50000] [--seed 7]

Writes ``--comments`` comments drawn (fixed seed, with replacement) from the C3 and Civil
Comments texts, so their length distribution is the datasets', through ``Store.write_intake``
(the ingest script the API runs) into ``REDIS_URL`` (default: database 14 of the Redis at
127.0.0.1:6379, flushed first; another ``REDIS_URL`` must name an empty database). About 5 % are
held with evidence spans, as on a news site. Bytes per comment is the ``used_memory`` delta of
``INFO memory`` divided by the count; ``MEMORY USAGE`` of a sample of keys splits it by kind (the
delta also moves with other clients of a shared server, the split does not). Flood and duplicate
windows are left out: they expire within minutes.

Every comment also leaves events in the site's outbox, which the worker trims once it has
admitted them, down to ``CIVILITY_OUTBOX_KEEP`` (10,000) per site: a bound per site, not a cost
per comment. So the figure is given twice: right after the writes, with all 50,000 events still
in the outbox (no worker ran), and after the worker's own admission and trim ran on them (the
bench site has no callback, so its events are acknowledged when admitted, as the worker does).
Prints the result and writes bench/results/memory.json. Run on purpose; pytest never runs it.
"""

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.servers import DEFAULT_REDIS_URL, empty_database, redis_client
from classifier.labels import LABELS
from service.deliveries import DeliveryLog
from service.domain import Author, Policy, Site, State
from service.settings import DeliverySettings
from service.store import Store
from service.store.records import IntakeWrite, SiteRecord
from service.store.scripts import RedisClient
from service.times import from_ms
from service.worker import ADMIT_BATCH
from tests import records

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT_ROOT / "bench" / "results" / "memory.json"
DATASETS = Path(os.environ.get("CIVILITY_DATASETS", PROJECT_ROOT.parent / "shared" / "datasets"))
SITE = "bench"
HELD_SHARE = 0.05
AUTHORS = 8_000
ARTICLES = 600
BATCH = 16
SAMPLED_COMMENTS = 500


def real_texts(datasets: Path) -> list[str]:
    """Every non-empty comment of C3 and the Civil Comments sample, as written."""
    csv.field_size_limit(sys.maxsize)
    sources = (
        (datasets / "c3-constructive-comments-corpus" / "C3_anonymized.dedup.csv", "comment_text"),
        (datasets / "civil-comments-sample" / "civil_comments_10k.csv", "text"),
    )
    texts: list[str] = []
    for path, column in sources:
        with path.open(encoding="utf-8", newline="") as handle:
            texts.extend(row[column] for row in csv.DictReader(handle) if row[column].strip())
    return texts


def intake_write(number: int, text: str, rng: random.Random, now_ms: int) -> IntakeWrite:
    """A comment as the intake path writes it: every label scored, a few held with evidence."""
    held = rng.random() < HELD_SHARE
    state = State.PENDING if held else State.APPROVED
    scores = {label: rng.random() * (0.9 if held else 0.2) for label in LABELS}
    start = rng.randrange(max(1, len(text) - 20))
    evidence = {"toxicity": [(start, min(len(text), start + 12))]} if held else {}
    comment_id = f"c{number:07d}"
    return records.intake_write(
        comment_id,
        now_ms,
        state,
        text_hash=f"{rng.getrandbits(256):064x}",
        article_id=f"article-{rng.randrange(ARTICLES)}",
        author=Author(id=f"author-{rng.randrange(AUTHORS)}", name="A Reader"),
        text=text,
        reasons=["TOXICITY"] if held else [],
        scores=scores,
        evidence=evidence,
        model="model-2026.12",
        priority=max(scores.values()),
        event_id=f"evt_{rng.getrandbits(96):024x}",
    )


async def used_memory(client: RedisClient) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def usage_by_kind(client: RedisClient, store: Store, ids: Sequence[str]) -> dict[str, Any]:
    """Mean ``MEMORY USAGE`` of a sample of comments' own keys, and the shared streams' total."""
    keys = store.keys
    per_comment = {
        "comment hash": keys.comment,
        "text string": keys.comment_text,
        "history list": keys.history,
    }
    result: dict[str, Any] = {}
    for kind, key_of in per_comment.items():
        async with client.pipeline(transaction=False) as pipe:
            for comment_id in ids:
                pipe.memory_usage(key_of(SITE, comment_id), samples=0)
            sizes = [size or 0 for size in await pipe.execute()]
        result[kind] = round(statistics.fmean(sizes), 1)
    for kind, key in (("audit stream", keys.audit(SITE)), ("outbox stream", keys.outbox(SITE))):
        result[f"{kind} (total)"] = await client.memory_usage(key, samples=0) or 0
    async with client.pipeline(transaction=False) as pipe:
        for comment_id in ids:
            pipe.hgetall(keys.comment(SITE, comment_id))
        hashes = await pipe.execute()
    value_bytes = [sum(len(value.encode()) for value in fields.values()) for fields in hashes]
    result["comment hash values (mean bytes)"] = round(statistics.fmean(value_bytes), 1)
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    async with redis_client(redis_url) as client:
        await empty_database(client, redis_url, DEFAULT_REDIS_URL)
        return await _measure(args, client, redis_url)


async def _measure(args: argparse.Namespace, client: RedisClient, redis_url: str) -> dict[str, Any]:
    store = Store(client)
    texts = real_texts(Path(args.datasets))
    rng = random.Random(args.seed)
    drawn = [rng.choice(texts) for _ in range(args.comments)]
    now_ms = int(time.time() * 1000)
    await store.create_site(
        SiteRecord(
            site=Site(
                id=SITE,
                name="Bench",
                callback_url=None,
                policy=Policy(),
                created_at=from_ms(now_ms),
                updated_at=from_ms(now_ms),
            ),
            webhook_secret="s" * 32,
            previous_secret=None,
            previous_valid_until_ms=0,
            api_key_hash="k" * 64,
        )
    )
    before = await used_memory(client)
    started = time.perf_counter()
    for first in range(0, len(drawn), BATCH):
        await asyncio.gather(
            *(
                store.write_intake(SITE, intake_write(number, text, rng, now_ms))
                for number, text in enumerate(drawn[first : first + BATCH], start=first)
            )
        )
    elapsed = time.perf_counter() - started
    after = await used_memory(client)
    by_kind = await usage_by_kind(client, store, sample_ids(args.comments))
    trimmed = await deliver_and_trim(client, now_ms)
    after_trim = await used_memory(client)
    lengths = sorted(len(text) for text in drawn)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "comments": args.comments,
        "seed": args.seed,
        "text_chars": {
            "mean": round(statistics.fmean(lengths), 1),
            "p50": lengths[len(lengths) // 2],
            "p99": lengths[int(len(lengths) * 0.99)],
        },
        "bytes_per_comment": round((after_trim - before) / args.comments, 1),
        "bytes_per_comment_before_the_worker": round((after - before) / args.comments, 1),
        "outbox_entries_trimmed": trimmed,
        "outbox_keep": DeliverySettings().outbox_keep,
        "target_bytes_per_comment": 2000,
        "by_kind_bytes": by_kind,
        "write_seconds": round(elapsed, 1),
    }
    if redis_url == DEFAULT_REDIS_URL:
        await client.flushdb()
    return results


def sample_ids(comments: int) -> list[str]:
    step = max(1, comments // SAMPLED_COMMENTS)
    return [f"c{number:07d}" for number in range(0, comments, step)]


async def deliver_and_trim(client: RedisClient, now_ms: int) -> int:
    """The worker's admission of every outbox event, then its trim to the default keep: the
    outbox entries removed."""
    deliveries = DeliveryLog(client)
    while (await deliveries.admit(SITE, ADMIT_BATCH, now_ms)).read:
        pass
    return await deliveries.trim_outbox(SITE, DeliverySettings().outbox_keep)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--comments", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--datasets", default=str(DATASETS))
    return parser.parse_args(argv)


if __name__ == "__main__":
    outcome = asyncio.run(main(parse()))
    RESULTS.write_text(json.dumps(outcome, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(outcome, indent=2))
