"""Mutation testing of the security core: do the tests notice when the code is wrong?

Run on purpose with ``make mutate`` (never by ``make test``). Two parts:

- Python: mutmut mutates the modules named in ``[tool.mutmut]`` of ``pyproject.toml`` one change
  at a time and runs the tests that reach each change.
- Lua: mutmut cannot read Lua, so ``LUA_MUTANTS`` below is a hand-made list of faults (flipped
  comparisons, dropped calls, altered constants). Each is applied alone to a scratch copy of the
  project and the store tests run against it.

A mutant that survives is either a gap in the tests or equivalent (no test could tell it apart,
because the behaviour is the same). ``EQUIVALENT`` holds the second kind, each with its reason;
any other survivor makes the command exit 1. The report goes to ``bench/results/mutation.json``.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "mutation.json"
BIN = Path(sys.executable).parent
# The tests that reach each script: the store's, plus the API suites whose behaviour
# (reports, retention, moderation) the decision script carries.
LUA_TESTS = {
    "claim.lua": ("tests/service/test_store.py",),
    "decide.lua": (
        "tests/service/test_store.py",
        "tests/service/api/test_api_browse.py",
        "tests/service/api/test_api_moderation.py",
        "tests/service/api/test_api_reports.py",
        "tests/service/api/test_api_retention.py",
        "tests/service/api/test_api_idempotency.py",
    ),
}


@dataclass(frozen=True)
class LuaMutant:
    script: str
    original: str
    mutated: str
    equivalent: str | None = None
    """Why no test can tell this mutant from the original, when that is so."""


LUA_MUTANTS = (
    LuaMutant("claim.lua", "while #claimed < wanted do", "while #claimed <= wanted do"),
    LuaMutant("claim.lua", "KEYS[2], now + lease_ms, id)", "KEYS[2], now, id)"),
    LuaMutant("claim.lua", 'redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now)\n', ""),
    LuaMutant("claim.lua", 'moderator, "NX", "PX", lease_ms)', 'moderator, "PX", lease_ms)'),
    LuaMutant("claim.lua", "      if #claimed == wanted then\n        break\n      end\n", ""),
    LuaMutant(
        "claim.lua", 'local descending = ARGV[6] == "1"', 'local descending = ARGV[6] ~= "1"'
    ),
    LuaMutant("claim.lua", "return claimed", "return {}"),
    LuaMutant(
        "claim.lua",
        "local batch = 100",
        "local batch = 1",
        equivalent="the page size changes how many ids one ZRANGE reads, not which are claimed",
    ),
    LuaMutant(
        "claim.lua",
        "offset = offset + batch",
        "offset = offset + batch - 1",
        equivalent="re-reading the last id of a page tries a lease this call already holds; "
        "SET NX refuses it, so the same ids are claimed",
    ),
    LuaMutant("decide.lua", "if stored[6] == ARGV[11] then", "if false then"),
    LuaMutant(
        "decide.lua",
        'if ARGV[7] ~= "" and ARGV[7] ~= stored[2] then',
        'if ARGV[7] ~= "" and ARGV[7] == stored[2] then',
    ),
    LuaMutant(
        "decide.lua", "if holder and holder ~= actor then", "if holder and holder == actor then"
    ),
    LuaMutant("decide.lua", "if not listed(ARGV[13], previous) then", "if false then"),
    LuaMutant(
        "decide.lua",
        'redis.call("HINCRBY", KEYS[1], "version", 1)',
        'redis.call("HINCRBY", KEYS[1], "version", 2)',
    ),
    LuaMutant("decide.lua", 'dequeue(prefix, "pending", id, article, author, stored[10])\n', ""),
    LuaMutant("decide.lua", 'dequeue(prefix, "reported", id, article, author, stored[10])\n', ""),
    LuaMutant("decide.lua", 'redis.call("DEL", prefix .. "reports:" .. id)\n', ""),
    LuaMutant("decide.lua", 'redis.call("DEL", KEYS[5])\n', ""),
    LuaMutant("decide.lua", 'redis.call("ZREM", KEYS[8], id)\n', ""),
    LuaMutant(
        "decide.lua",
        'count_author(prefix .. "author:" .. author, previous, target, now, false)',
        'count_author(prefix .. "author:" .. author, target, previous, now, false)',
    ),
    LuaMutant("decide.lua", 'count_decision(KEYS[6], KEYS[7], "moderator", target)\n', ""),
    LuaMutant(
        "decide.lua", 'retain(prefix, id, target == "pending" and 0 or tonumber(ARGV[14]))\n', ""
    ),
    LuaMutant("decide.lua", 'if target == "approved" then', 'if target == "rejected" then'),
    LuaMutant(
        "decide.lua",
        'if ARGV[7] == "" and previous == target and stored[9] == actor',
        'if ARGV[7] == "" and previous ~= target and stored[9] == actor',
    ),
)


def _python_part(max_children: int) -> list[dict[str, str]]:
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    subprocess.run(
        [BIN / "mutmut", "run", "--max-children", str(max_children)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    listing = subprocess.run(
        [BIN / "mutmut", "results", "--all", "true"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = []
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        row = {"module": name.split(".x_")[0], "mutant": name, "status": status}
        if status != "killed":
            row["change"] = _python_change(name)
        rows.append(row)
    return rows


def _python_change(name: str) -> str:
    shown = subprocess.run(
        [BIN / "mutmut", "show", name], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    changed = [
        line for line in shown.splitlines() if re.match(r"^[-+](?![-+])", line) and line[1:].strip()
    ]
    return "\n".join(changed)


def _scratch_copy(folder: Path) -> None:
    for name in ("service", "tests"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("classifier", "models"):
        (folder / name).symlink_to(ROOT / name)
    shutil.copy2(ROOT / "pyproject.toml", folder / "pyproject.toml")


def _tests_pass(folder: Path, tests: tuple[str, ...]) -> bool:
    environment = {**os.environ, "PYTHONPATH": str(folder)}
    run = subprocess.run(
        [BIN / "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return run.returncode == 0


def _lua_part(scripts: set[str]) -> list[dict[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        _scratch_copy(folder)
        every_test = tuple(sorted({test for name in scripts for test in LUA_TESTS[name]}))
        if not _tests_pass(folder, every_test):
            raise SystemExit("the tests fail on the unmutated copy; fix them first")
        for mutant in (mutant for mutant in LUA_MUTANTS if mutant.script in scripts):
            script = folder / "service" / "lua" / mutant.script
            source = script.read_text(encoding="utf-8")
            if source.count(mutant.original) != 1:
                raise SystemExit(
                    f"{mutant.script}: {mutant.original!r} is not found exactly once; "
                    "the script changed, so update LUA_MUTANTS"
                )
            script.write_text(source.replace(mutant.original, mutant.mutated), encoding="utf-8")
            try:
                killed = not _tests_pass(folder, LUA_TESTS[mutant.script])
            finally:
                script.write_text(source, encoding="utf-8")
            rows.append(
                {
                    "module": f"service/lua/{mutant.script}",
                    "mutant": f"{mutant.original.strip()!r} -> {mutant.mutated.strip()!r}",
                    "status": "killed" if killed else "survived",
                    "change": f"-{mutant.original.strip()}\n+{mutant.mutated.strip()}",
                    **({"equivalent": mutant.equivalent} if mutant.equivalent else {}),
                }
            )
    return rows


def _mark_python_equivalents(rows: list[dict[str, str]]) -> None:
    for row in rows:
        if row["status"] != "killed":
            reason = PYTHON_EQUIVALENT.get(row.get("change", ""))
            if reason:
                row["equivalent"] = reason


PYTHON_EQUIVALENT: dict[str, str] = {
    # Codec names are case-insensitive, so these are the same codec.
    '-        expected = compute(secret, header.timestamp, body).encode("ascii")\n'
    '+        expected = compute(secret, header.timestamp, body).encode("ASCII")': (
        "codec names are case-insensitive"
    ),
    '-            matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))\n'
    '+            matched |= hmac.compare_digest(expected, candidate.encode("UTF-8", "replace"))': (
        "codec names are case-insensitive"
    ),
    '-    payload = str(timestamp).encode("ascii") + b"." + body\n'
    '+    payload = str(timestamp).encode("ASCII") + b"." + body': (
        "codec names are case-insensitive"
    ),
    '-    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()\n'
    '+    return hmac.new(secret.encode("UTF-8"), payload, hashlib.sha256).hexdigest()': (
        "codec names are case-insensitive"
    ),
    # The worker's TCPConnector only resolves stream addresses, and SOCK_STREAM is the default.
    "-        return socket.socket(family=family, type=kind, proto=proto)\n"
    "+        return socket.socket(family=family, proto=proto)": (
        "aiohttp's TCP connector only passes SOCK_STREAM, which is also socket's default type"
    ),
}


def _summary(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for module in sorted({row["module"] for row in rows}):
        mine = [row for row in rows if row["module"] == module]
        counts = Counter(row["status"] for row in mine)
        equivalent = sum(1 for row in mine if row["status"] != "killed" and "equivalent" in row)
        gaps = len(mine) - counts["killed"] - equivalent
        judged = len(mine) - equivalent
        table[module] = {
            "mutants": len(mine),
            "killed": counts["killed"],
            "equivalent": equivalent,
            "survived": gaps,
            "score": round(counts["killed"] / judged, 4) if judged else 1.0,
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-python", action="store_true", help="only the Lua mutants")
    parser.add_argument("--skip-lua", action="store_true", help="only the Python mutants")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutmut workers")
    parser.add_argument(
        "--lua", nargs="+", choices=sorted(LUA_TESTS), default=sorted(LUA_TESTS), help="scripts"
    )
    args = parser.parse_args()

    started = time.monotonic()
    rows: list[dict[str, str]] = []
    if not args.skip_python:
        python_rows = _python_part(args.max_children)
        _mark_python_equivalents(python_rows)
        rows += python_rows
    if not args.skip_lua:
        rows += _lua_part(set(args.lua))
    summary = _summary(rows)
    gaps = [row for row in rows if row["status"] != "killed" and "equivalent" not in row]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        # A run of one part only is not a complete report; say which parts it holds.
        "parts": [
            part
            for part, skipped in (("python", args.skip_python), ("lua", args.skip_lua))
            if not skipped
        ],
        "seconds": round(time.monotonic() - started),
        "modules": summary,
        "survivors": [row for row in rows if row["status"] != "killed"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(f"{'module':<32} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>6}")
    for module, line in summary.items():
        print(
            f"{module:<32} {line['mutants']:>7} {line['killed']:>7} {line['equivalent']:>7} "
            f"{line['survived']:>8} {line['score']:>6.1%}"
        )
    for row in gaps:
        print(f"\nSURVIVED {row['mutant']}\n{row.get('change', '')}")
    print(f"\nreport: {RESULTS.relative_to(ROOT)}")
    sys.exit(1 if gaps else 0)


if __name__ == "__main__":
    main()
