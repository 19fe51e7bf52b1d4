"""The mutation report keeps every run's place in its history when a run rewrites it."""

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _report(module: str, seconds: int) -> dict[str, object]:
    line = {"mutants": 2, "killed": 2, "equivalent": 0, "survived": 0, "score": 1.0}
    return {
        "date": "2026-12-07",
        "parts": ["lua"],
        "seconds": seconds,
        "modules": {module: line},
        "survivors": [],
    }


def test_a_run_over_an_earlier_report_adds_itself_to_the_runs_it_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bench/ is not an installed package: imported from the checkout, as `python -m` does.
    monkeypatch.syspath_prepend(str(ROOT))
    mutation = importlib.import_module("bench.mutation")
    results = tmp_path / "mutation.json"
    monkeypatch.setattr(mutation, "RESULTS", results)
    first = mutation._merged(_report("service/lua/claim.lua", 60), "the first")
    results.write_text(json.dumps(first))
    second = mutation._merged(_report("service/lua/decide.lua", 30), "")
    first_run = {"part": "lua", "ran": ["service/lua/claim.lua"], "seconds": 60}
    second_run = {"part": "lua", "ran": ["service/lua/decide.lua"], "seconds": 30}
    assert second["runs"] == [
        {**first_run, "note": "2026-12-07: the first"},
        {**second_run, "note": "2026-12-07"},
    ]
    assert set(second["modules"]) == {"service/lua/claim.lua", "service/lua/decide.lua"}
    assert second["ran"] == ["service/lua/decide.lua"]
