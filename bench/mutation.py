"""Mutation testing of the security core: do the tests notice when the code is wrong?

Run on purpose with ``make mutate`` (never by ``make test``). Two parts:

- Python: mutmut mutates the modules named in ``[tool.mutmut]`` of ``pyproject.toml`` one change
  at a time and runs the tests that reach each change.
- Lua: mutmut cannot read Lua, so ``bench/lua_mutants.py`` holds a hand-made list of faults
  (flipped comparisons, dropped calls, altered constants). Each is applied alone to a scratch copy
  of the project and the store tests run against it.

A mutant that survives is either a gap in the tests or equivalent (no test could tell it apart,
because the behaviour is the same). ``PYTHON_EQUIVALENT`` below and each Lua mutant's
``equivalent`` hold the second kind, each with its reason; any other survivor makes the command
exit 1. The report goes to ``bench/results/mutation.json``.

``--python service.idempotency ...`` and ``--lua revoke_moderator.lua ...`` run only those
modules and scripts (a full run takes about two hours on a shared 2-core machine); the report
keeps the other modules' figures from the last run that covered them and replaces only those
run.
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
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from bench.lua_mutants import LUA_MUTANTS, LUA_TESTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "mutation.json"
BIN = Path(sys.executable).parent


CAUGHT = ("killed", "timeout")
"""A mutant whose tests ran past mutmut's limit, (their time + 5 s) x 15, did not pass them (those
seen break a store's construction, which fails the app's startup when pytest runs alone)."""


def _module(mutant: str) -> str:
    """``service.admin_store`` of ``service.admin_store.x_f__mutmut_1`` and of a method's
    ``service.admin_store.xǁAdminStoreǁf__mutmut_1``."""
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def _python_part(max_children: int, modules: list[str], every: bool) -> list[dict[str, str]]:
    # A run of some modules keeps mutmut's folder: its statistics of which tests reach which
    # function (a run of the whole selection) are reused while the code they cover is unchanged,
    # and the mutants named are run again whatever their last result.
    if every:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    subprocess.run(
        [
            BIN / "mutmut",
            "run",
            "--max-children",
            str(max_children),
            *(f"{module}.*" for module in modules),
        ],
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
        module = _module(name)
        if module not in modules:
            continue
        row = {"module": module, "mutant": name, "status": status}
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
            # A run of many scripts takes a while: say how each mutant went as it goes.
            print(f"{rows[-1]['status']:>8} {mutant.script}: {rows[-1]['mutant']}", flush=True)
    return rows


def _mark_python_equivalents(rows: list[dict[str, str]]) -> None:
    for row in rows:
        if row["status"] not in CAUGHT:
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
    # Found by the first fork-server run over admin_store and idempotency.
    '-    named = hashlib.sha256("\\0".join((seed, item)).encode("utf-8", "surrogateescape"))\n'
    '+    named = hashlib.sha256("\\0".join((seed, item)).encode("utf-8", ))': (
        "no lone surrogate reaches it: the item is a comment id of the URL path (aiohttp "
        "refuses raw non-ASCII bytes there and keeps undecodable %-escapes as they are) or a "
        "bulk item's printable-ASCII id, and the seed is hex"
    ),
    '-    named = hashlib.sha256("\\0".join((seed, item)).encode("utf-8", "surrogateescape"))\n'
    '+    named = hashlib.sha256("\\0".join((seed, item)).encode("UTF-8", "surrogateescape"))': (
        "codec names are case-insensitive"
    ),
    '-    named = hashlib.sha256("\\0".join((seed, item)).encode("utf-8", "surrogateescape"))\n'
    '+    named = hashlib.sha256("\\0".join((seed, item))'
    '.encode("utf-8", "XXsurrogateescapeXX"))': (
        "an error handler is looked up only on an encoding error, which no reachable item "
        "raises (see the mutant without a handler)"
    ),
    '-    named = hashlib.sha256("\\0".join((seed, item)).encode("utf-8", "surrogateescape"))\n'
    '+    named = hashlib.sha256("\\0".join((seed, item)).encode("utf-8", "SURROGATEESCAPE"))': (
        "an error handler is looked up only on an encoding error, which no reachable item "
        "raises (see the mutant without a handler)"
    ),
    "-        async with self.redis.pipeline(transaction=False) as pipe:\n"
    "+        async with self.redis.pipeline(transaction=None) as pipe:": (
        "redis-py tests transaction for truth: None makes the same plain pipeline as False"
    ),
    "-        async with self.redis.pipeline(transaction=False) as pipe:\n"
    "+        async with self.redis.pipeline(transaction=True) as pipe:": (
        "three reads answer the same inside MULTI/EXEC; only their isolation from a write "
        "landing between them differs, and no test can place a write there"
    ),
    '-    reply = await self._run("delete_site", keys, [])\n'
    '+    reply = await self._run("delete_site", keys, None)': (
        "redis-py sends a script's args as `args or []`: None is no arguments"
    ),
    "-        return sorted(cast(list[str], await self.redis.hkeys(self.keys.purges())))\n"
    "+        return sorted(cast(None, await self.redis.hkeys(self.keys.purges())))": (
        "typing.cast does nothing at run time"
    ),
    '-    return cast(list[str], await self._run("erase_author", keys, '
    "[author_id, remains, now_ms]))\n"
    '+    return cast(None, await self._run("erase_author", keys, [author_id, remains, now_ms]))': (
        "typing.cast does nothing at run time"
    ),
    "-            next_cursor = 0 if len(found) < SCAN_COUNT else 1\n"
    "+            next_cursor = 0 if len(found) < SCAN_COUNT else 2": (
        "on a cluster the stored cursor is only tested for presence: any non-zero value means "
        "more may follow"
    ),
    "-        async for key in self.redis.scan_iter(match=pattern, count=SCAN_COUNT):\n"
    "+        async for key in self.redis.scan_iter(match=pattern, count=None):": (
        "COUNT only sizes each SCAN reply; scan_iter still walks every key and the script "
        "batches are cut by ERASE_BATCH"
    ),
    "-        async for key in self.redis.scan_iter(match=pattern, count=SCAN_COUNT):\n"
    "+        async for key in self.redis.scan_iter(match=pattern, ):": (
        "COUNT only sizes each SCAN reply; scan_iter still walks every key and the script "
        "batches are cut by ERASE_BATCH"
    ),
    '-    return hashlib.sha256(named.encode("utf-8", "surrogateescape")).hexdigest()\n'
    '+    return hashlib.sha256(named.encode("UTF-8", "surrogateescape")).hexdigest()': (
        "codec names are case-insensitive"
    ),
    '-    sealing_key = hmac.digest(key.encode(), f"civility answer:{key_digest}".encode(), '
    '"sha256")\n'
    '+    sealing_key = hmac.digest(key.encode(), f"civility answer:{key_digest}".encode(), '
    '"SHA256")': (
        "hash names are case-insensitive to hmac (OpenSSL): SHA256 is sha256, the same key"
    ),
    "-    self._run = LuaScripts(redis, SCRIPTS, with_library=False).run\n"
    "+    self._run = LuaScripts(redis, SCRIPTS, with_library=None).run": (
        "LuaScripts tests with_library for truth: None is False"
    ),
    "-    self._run = LuaScripts(redis, SCRIPTS, with_library=False).run\n"
    "+    self._run = LuaScripts(redis, SCRIPTS, with_library=True).run": (
        "the library prepended only defines local helpers and constants, which these scripts "
        "never call: they run the same"
    ),
}


def _summary(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for module in sorted({row["module"] for row in rows}):
        mine = [row for row in rows if row["module"] == module]
        counts = Counter(row["status"] for row in mine)
        caught = counts["killed"] + counts["timeout"]
        equivalent = sum(1 for row in mine if row["status"] not in CAUGHT and "equivalent" in row)
        gaps = len(mine) - caught - equivalent
        judged = len(mine) - equivalent
        table[module] = {
            "mutants": len(mine),
            "killed": caught,
            "timed_out": counts["timeout"],
            "equivalent": equivalent,
            "survived": gaps,
            "score": round(caught / judged, 4) if judged else 1.0,
        }
    return table


def _python_modules() -> list[str]:
    """The modules ``[tool.mutmut] only_mutate`` names, as mutmut names them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    paths = config["tool"]["mutmut"]["only_mutate"]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def _merged(report: dict[str, Any], note: str) -> dict[str, Any]:
    """``report`` over the last one: the modules it ran replace theirs, the others are kept, and
    the run joins the history of runs (with ``note``, why it was made)."""
    ran = set(report["modules"])
    run = {"part": "+".join(report["parts"]), "ran": sorted(ran), "seconds": report["seconds"]}
    run["note"] = f"{report['date']}: {note}" if note else report["date"]
    try:
        previous = json.loads(RESULTS.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {**report, "ran": sorted(ran), "runs": [run]}
    modules = {
        **{name: line for name, line in previous["modules"].items() if name not in ran},
        **report["modules"],
    }
    kept = [row for row in previous["survivors"] if row["module"] not in ran]
    return {
        **report,
        "parts": sorted(set(previous.get("parts", [])) | set(report["parts"])),
        "ran": sorted(ran),
        "modules": dict(sorted(modules.items())),
        "survivors": kept + report["survivors"],
        "runs": [*previous.get("runs", []), run],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-python", action="store_true", help="only the Lua mutants")
    parser.add_argument("--skip-lua", action="store_true", help="only the Python mutants")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutmut workers")
    modules = _python_modules()
    parser.add_argument("--python", nargs="+", choices=modules, default=modules, help="modules")
    parser.add_argument(
        "--lua", nargs="+", choices=sorted(LUA_TESTS), default=sorted(LUA_TESTS), help="scripts"
    )
    parser.add_argument("--note", default="", help="why this run was made, kept in its history")
    args = parser.parse_args()

    started = time.monotonic()
    rows: list[dict[str, str]] = []
    if not args.skip_python:
        python_rows = _python_part(args.max_children, args.python, args.python == modules)
        _mark_python_equivalents(python_rows)
        rows += python_rows
    if not args.skip_lua:
        rows += _lua_part(set(args.lua))
    summary = _summary(rows)
    gaps = [row for row in rows if row["status"] not in CAUGHT and "equivalent" not in row]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        # Which parts the report holds: those of this run and of the runs it was merged over.
        "parts": [
            part
            for part, skipped in (("python", args.skip_python), ("lua", args.skip_lua))
            if not skipped
        ],
        "seconds": round(time.monotonic() - started),
        "modules": summary,
        "survivors": [row for row in rows if row["status"] not in CAUGHT],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_merged(report, args.note), indent=2) + "\n", encoding="utf-8")

    print(f"{'module':<40} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'score':>6}")
    for module, line in summary.items():
        print(
            f"{module:<40} {line['mutants']:>7} {line['killed']:>7} {line['equivalent']:>7} "
            f"{line['survived']:>8} {line['score']:>6.1%}"
        )
    for row in gaps:
        print(f"\nSURVIVED {row['mutant']}\n{row.get('change', '')}")
    print(f"\nreport: {RESULTS.relative_to(ROOT)}")
    sys.exit(1 if gaps else 0)


if __name__ == "__main__":
    main()
