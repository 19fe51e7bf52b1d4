"""The seed article and its comments, read from `$CIVILITY_SEED` or `../shared/seed` (never
committed): the tests that need them skip, naming where they looked, when they are absent."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "seed"


def seed_article() -> dict[str, Any]:
    path = Path(os.environ.get("CIVILITY_SEED", DEFAULT)) / "seed-article.json"
    if not path.is_file():
        pytest.skip(f"seed article not found at {path} (set CIVILITY_SEED)")
    article: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return article
