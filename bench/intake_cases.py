"""bench.intake's two cases beside its main rounds: held against approved comments, and one
site's flood of long abusive comments against another site's latency.

Held against approved: the benchmark's texts that the active model and the default policy would
hold (pending) and those it would publish, each sent alone to a site whose flood, duplicate and
author rules are off (so every text gets the verdict its scores give), interleaved within each
round. CPU per request is read once the scoring workers are idle again, so it includes the
evidence worked out after the answer. Target: a held comment costs at most twice an approved one.

Fairness: another site sends real comments from a few connections, alone and then while
``FLOOD_CONNECTIONS`` connections of a second site send 20,000-character abusive comments (toxic
Civil Comments joined end to end). Target: the first site's p99 stays under 100 ms.
"""

import argparse
import csv
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.intake_load import (
    Load,
    driver_result,
    measured,
    run_driver,
    server_summary,
    spread,
    start_driver,
)
from bench.memory import real_texts
from bench.servers import PROJECT_ROOT, SITE, create_site
from classifier.model import load_active
from service import language
from service import policy as rules
from service.domain import Policy, State

HELD_TARGET = 2.0
FAIRNESS_P99_MS_BELOW = 100.0
FLOOD_CONNECTIONS = 20
FLOOD_CHARS = 20_000
OTHER_SITE_CONNECTIONS = 4
VERDICT_SITE = "bench-verdicts"
FLOOD_SITE = "bench-flood"
# Every text gets the verdict of its scores: no flood, duplicate or author-history rule.
PLAIN_POLICY = {
    "flood_seconds_per_author": 0,
    "flood_seconds_per_ip": 0,
    "duplicate_window_seconds": 0,
    "author_premod_rejection_rate": 0.0,
}


def texts_by_verdict(texts: Sequence[str]) -> dict[str, list[str]]:
    """The texts the active model and the default policy would publish, and would hold."""
    model = load_active(PROJECT_ROOT / "models", semantic=False)
    policy = Policy.model_validate(PLAIN_POLICY)
    found: dict[str, list[str]] = {"approved": [], "held": []}
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        for text, scores in zip(chunk, model.score(chunk), strict=True):
            detected = language.detect(text)
            context = rules.PolicyContext(text=text, language_supported=detected.supported)
            state = rules.decide(scores, context, policy, model.thresholds).state
            if state is State.APPROVED:
                found["approved"].append(text)
            elif state is State.PENDING:
                found["held"].append(text)
    return found


def abusive_texts(datasets: Path, count: int, seed: int = 20) -> list[str]:
    """``count`` texts of ``FLOOD_CHARS`` characters: toxic Civil Comments in a random order."""
    csv.field_size_limit(sys.maxsize)
    path = datasets / "civil-comments-sample" / "civil_comments_10k.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        toxic = [row["text"] for row in csv.DictReader(handle) if row["label"] == "1"]
    chooser = random.Random(seed)
    made = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(part) + 1 for part in parts) < FLOOD_CHARS:
            parts.append(chooser.choice(toxic))
        made.append(" ".join(parts)[:FLOOD_CHARS])
    return made


def _write_texts(folder: Path, name: str, texts: Sequence[str]) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(list(texts)), encoding="utf-8")
    return path


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / max(denominator, 1e-9), 3)


def held_case(
    base: str, admin_token: str, args: argparse.Namespace, server: psutil.Process,
    redis_url: str, texts: Sequence[str], folder: Path,
) -> dict[str, Any]:  # fmt: skip
    secret = create_site(base, admin_token, VERDICT_SITE, PLAIN_POLICY)
    url = f"{base}/v1/sites/{VERDICT_SITE}/comments"
    chosen = texts_by_verdict(texts)
    files = {kind: _write_texts(folder, kind, found) for kind, found in chosen.items()}
    runs: dict[str, list[dict[str, Any]]] = {"approved": [], "held": []}
    for round_number in range(args.rounds):
        kinds = ("approved", "held") if round_number % 2 == 0 else ("held", "approved")
        for index, kind in enumerate(kinds):
            load = Load(args.concurrency, files[kind])
            seed = 1000 + 100 * round_number + index
            runs[kind].append(measured(url, secret, args, seed, server, redis_url, load))
    summary = {kind: server_summary(found) for kind, found in runs.items()}

    def median(kind: str, *path: str) -> float:
        value: Any = summary[kind]
        for part in path:
            value = value[part]
        return float(value["median"])

    held_over_approved = {
        "cpu_ms_per_request": _ratio(
            median("held", "cpu_ms_per_request", "total"),
            median("approved", "cpu_ms_per_request", "total"),
        ),
        "p50_ms": _ratio(median("held", "p50_ms"), median("approved", "p50_ms")),
        "p99_ms": _ratio(median("held", "p99_ms"), median("approved", "p99_ms")),
        "time_per_accepted": _ratio(
            median("approved", "accepted_per_second"), median("held", "accepted_per_second")
        ),
    }
    return {
        "texts": {kind: len(found) for kind, found in chosen.items()},
        "servers": summary,
        "held_over_approved": held_over_approved,
        "target_at_most": HELD_TARGET,
        "met": all(value <= HELD_TARGET for value in held_over_approved.values()),
        "runs": runs,
    }


def fairness_case(
    base: str, admin_token: str, args: argparse.Namespace, secret: str, folder: Path
) -> dict[str, Any]:
    """The benchmark site's latency alone and beside another site's flood of long abuse."""
    flood_secret = create_site(base, admin_token, FLOOD_SITE)
    flood_file = _write_texts(folder, "abusive", abusive_texts(Path(args.datasets), 64))
    url = f"{base}/v1/sites/{SITE}/comments"
    flood_url = f"{base}/v1/sites/{FLOOD_SITE}/comments"
    other = Load(OTHER_SITE_CONNECTIONS, bodies_per_second=4000)
    flood = Load(FLOOD_CONNECTIONS, flood_file, bodies_per_second=400)
    alone: list[dict[str, Any]] = []
    beside: list[dict[str, Any]] = []
    flooding: list[dict[str, Any]] = []
    for round_number in range(args.rounds):
        seed = 2000 + 100 * round_number
        alone.append(run_driver(url, secret, args, seed, other))
        flooder = start_driver(flood_url, flood_secret, args, seed + 1, flood)
        beside.append(run_driver(url, secret, args, seed + 2, other))
        flooding.append(driver_result(flooder))

    def summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "accepted_per_second": spread([run["accepted_per_second"] for run in runs]),
            "p50_ms": spread([run["p50_ms"] for run in runs]),
            "p99_ms": spread([run["p99_ms"] for run in runs]),
            "non_2xx": sum(run["non_2xx"] for run in runs),
        }

    p99 = float(summary(beside)["p99_ms"]["median"])
    return {
        "other_site_connections": OTHER_SITE_CONNECTIONS,
        "flood": {"connections": FLOOD_CONNECTIONS, "chars": FLOOD_CHARS, **summary(flooding)},
        "other_site_alone": summary(alone),
        "other_site_beside_flood": summary(beside),
        "target_p99_ms_below": FAIRNESS_P99_MS_BELOW,
        "met": p99 < FAIRNESS_P99_MS_BELOW,
        "runs": {"alone": alone, "beside": beside, "flood": flooding},
    }


CASES = ("held_vs_approved", "fairness")


def run_cases(
    base: str, admin_token: str, args: argparse.Namespace, server: psutil.Process,
    redis_url: str, secret: str, names: Sequence[str] = CASES,
) -> dict[str, Any]:  # fmt: skip
    """The cases ``names``, each with when it was measured (a run of some cases alone keeps the
    others' figures beside its own)."""
    texts = real_texts(Path(args.datasets))
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        if "held_vs_approved" in names:
            found["held_vs_approved"] = held_case(
                base, admin_token, args, server, redis_url, texts, Path(folder)
            )
        if "fairness" in names:
            found["fairness"] = fairness_case(base, admin_token, args, secret, Path(folder))
    return found
