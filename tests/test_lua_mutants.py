"""The mutation run's hand-written Lua mutants must still apply to the scripts as they are now:
a script edited under a mutant stops that run only when it reaches the mutant, hours in."""

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lua_mutants() -> ModuleType:
    # bench/ is not an installed package; the suite imports in importlib mode.
    spec = importlib.util.spec_from_file_location("lua_mutants", ROOT / "bench" / "lua_mutants.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MUTANTS = _lua_mutants()


@pytest.mark.parametrize("mutant", MUTANTS.LUA_MUTANTS, ids=lambda mutant: mutant.script)
def test_each_mutant_names_text_found_once_in_its_script(mutant: Any) -> None:
    source = (ROOT / "service" / "lua" / mutant.script).read_text(encoding="utf-8")
    assert source.count(mutant.original) == 1
    assert mutant.mutated != mutant.original


def test_each_mutated_script_has_tests_to_run() -> None:
    assert {mutant.script for mutant in MUTANTS.LUA_MUTANTS} <= set(MUTANTS.LUA_TESTS)
