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

``--python service.idempotency ...`` and ``--lua revoke_moderator.lua ...`` run only those
modules and scripts (a full run takes a quarter of an hour); the report keeps the other modules'
figures from the last run that covered them and replaces only those run.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    **dict.fromkeys(
        ("revoke_moderator.lua", "rotate_api_key.lua", "delete_site.lua"),
        ("tests/service/api/test_api_revocation.py",),
    ),
    "erase_author.lua": (
        "tests/service/test_comment_layout.py",
        "tests/service/api/test_api_revocation.py",
    ),
    **dict.fromkeys(
        ("add_moderator.lua", "touch_moderator.lua"),
        ("tests/service/test_store.py", "tests/service/api/test_api_revocation.py"),
    ),
    "release.lua": ("tests/service/test_store.py",),
    "rotate_secret.lua": ("tests/service/test_store.py", "tests/service/api/test_api_rotation.py"),
    "report.lua": ("tests/service/test_store.py", "tests/service/api/test_api_reports.py"),
    "ingest.lua": ("tests/service/test_store.py", "tests/service/test_intake_verdicts.py"),
    "second_look_apply.lua": (
        "tests/service/worker/test_second_look.py",
        "tests/service/api/test_api_second_look.py",
    ),
    **dict.fromkeys(
        ("idempotency_begin.lua", "idempotency_finish.lua", "idempotency_release.lua"),
        (
            "tests/service/test_idempotency_store.py",
            "tests/service/api/test_api_idempotency.py",
            "tests/service/api/test_api_idempotency_outage.py",
        ),
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
    # Revocation: a revoked or deleted credential must fail at once and leave nothing behind.
    LuaMutant("revoke_moderator.lua", "if not stored then", "if stored then"),
    LuaMutant("revoke_moderator.lua", 'redis.call("HDEL", KEYS[1], ARGV[1])\n', ""),
    LuaMutant("revoke_moderator.lua", 'redis.call("HDEL", KEYS[2], ARGV[1])\n', ""),
    LuaMutant("revoke_moderator.lua", "return stored", "return false"),
    LuaMutant("revoke_moderator.lua", "return stored", 'return "{}"'),
    LuaMutant("rotate_api_key.lua", "if not current then", "if current then"),
    LuaMutant(
        "rotate_api_key.lua",
        '"previous_api_key_hash", current,',
        '"previous_api_key_hash", ARGV[1],',
    ),
    LuaMutant(
        "rotate_api_key.lua",
        '"previous_api_key_valid_until", ARGV[3],',
        '"previous_api_key_valid_until", ARGV[2],',
    ),
    LuaMutant("rotate_api_key.lua", '"updated_at", ARGV[2])', '"updated_at", ARGV[3])'),
    LuaMutant("rotate_api_key.lua", "return current", "return ARGV[1]"),
    LuaMutant("delete_site.lua", "if not keys[1] then", "if keys[1] then"),
    LuaMutant("delete_site.lua", 'if keys[2] and keys[2] ~= "" then', "if false then"),
    LuaMutant("delete_site.lua", 'reply[#reply + 1] = ""\n', ""),
    LuaMutant(
        "delete_site.lua",
        'ipairs(redis.call("HVALS", KEYS[2]))',
        "ipairs({})",
    ),
    LuaMutant(
        "delete_site.lua", 'redis.call("DEL", KEYS[1], KEYS[2])', 'redis.call("DEL", KEYS[2])'
    ),
    LuaMutant(
        "delete_site.lua", 'redis.call("DEL", KEYS[1], KEYS[2])', 'redis.call("DEL", KEYS[1])'
    ),
    LuaMutant("erase_author.lua", "if stored[1] == ARGV[1] then", "if stored[1] ~= ARGV[1] then"),
    LuaMutant("erase_author.lua", '"evidence", "{}", ', ""),
    LuaMutant("erase_author.lua", '"text_hash", "",', ""),
    LuaMutant(
        "erase_author.lua",
        'if not redis.call("SET", site_prefix .. "text:" .. stored[2], "", "KEEPTTL", "XX") then',
        "if true then",
    ),
    LuaMutant("erase_author.lua", '      redis.call("HSET", key, "text", "")\n', ""),
    LuaMutant(
        "erase_author.lua",
        'redis.call("LSET", history, index - 1, string.sub(entry, 1, at - 1) .. "}")',
        'redis.call("LSET", history, index - 1, entry)',
    ),
    LuaMutant("erase_author.lua", "erased[#erased + 1] = stored[2]", "erased[#erased + 1] = key"),
    LuaMutant("add_moderator.lua", 'if redis.call("EXISTS", KEYS[1]) == 0 then', "if false then"),
    LuaMutant("add_moderator.lua", 'redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])\n', ""),
    LuaMutant("add_moderator.lua", "  return 0", "  return 1"),
    LuaMutant(
        "touch_moderator.lua",
        'if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 then',
        "if false then",
    ),
    LuaMutant("touch_moderator.lua", 'redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])\n', ""),
    LuaMutant("touch_moderator.lua", "  return 0", "  return 1"),
    # Idempotency: a retry gets the first answer, never another request's, and never acts twice.
    LuaMutant(
        "idempotency_begin.lua",
        "if record[1] and tonumber(record[6]) > now then",
        "if record[1] and tonumber(record[6]) >= now then",
    ),
    LuaMutant(
        "idempotency_begin.lua",
        "if record[1] and tonumber(record[6]) > now then",
        "if false then",
    ),
    LuaMutant("idempotency_begin.lua", "if record[1] ~= ARGV[1] then", "if false then"),
    LuaMutant("idempotency_begin.lua", 'if record[2] == "done" then', "if false then"),
    LuaMutant(
        "idempotency_begin.lua",
        "if tonumber(record[7]) > now then",
        "if tonumber(record[7]) >= now then",
    ),
    LuaMutant("idempotency_begin.lua", "if tonumber(record[7]) > now then", "if false then"),
    LuaMutant("idempotency_begin.lua", "  expires_at = tonumber(record[6])\n", ""),
    LuaMutant(
        "idempotency_begin.lua",
        'redis.call("DEL", KEYS[1])\n',
        "",
        equivalent="what the HSET after it leaves of an expired record (status, answer, content "
        "type) is read only in state done, and finish writes all three when it sets done",
    ),
    LuaMutant(
        "idempotency_begin.lua",
        '"running_until", string.format("%d", now + tonumber(ARGV[3])))',
        '"running_until", string.format("%d", now))',
    ),
    LuaMutant(
        "idempotency_begin.lua",
        'redis.call("PEXPIRE", KEYS[1], math.max(1, expires_at - now))\n',
        "",
    ),
    LuaMutant(
        "idempotency_begin.lua",
        "local expires_at = now + tonumber(ARGV[4])",
        "local expires_at = now + tonumber(ARGV[3])",
    ),
    LuaMutant("idempotency_begin.lua", 'return {"started"}', 'return {"running"}'),
    LuaMutant(
        "idempotency_finish.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        "if record[1] ~= ARGV[1] then",
    ),
    LuaMutant(
        "idempotency_finish.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        'if record[2] ~= "running" then',
    ),
    LuaMutant(
        "idempotency_finish.lua",
        'redis.call("HSET", KEYS[1], "state", "done",',
        'redis.call("HSET", KEYS[1], "state", "running",',
    ),
    LuaMutant(
        "idempotency_finish.lua",
        'redis.call("HDEL", KEYS[1], "running_until")\n',
        "",
        equivalent="running_until is read only while the state is running, and this sets done",
    ),
    LuaMutant("idempotency_finish.lua", "return 1", "return 0"),
    LuaMutant(
        "idempotency_release.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        "if record[1] ~= ARGV[1] then",
    ),
    LuaMutant(
        "idempotency_release.lua",
        'if record[1] ~= ARGV[1] or record[2] ~= "running" then',
        'if record[2] ~= "running" then',
    ),
    LuaMutant("idempotency_release.lua", 'return redis.call("DEL", KEYS[1])', "return 1"),
    # Leases, webhook secrets and reports: only the holder releases, a secret's grace is kept and
    # bounded, a reader counts once and the threshold queues a comment once.
    LuaMutant("release.lua", "if #ARGV > 3 then", "if #ARGV > 4 then"),
    LuaMutant("release.lua", "for index = 4, #ARGV do", "for index = 5, #ARGV do"),
    LuaMutant("release.lua", 'ids = redis.call("ZRANGE", KEYS[1], 0, -1)', "ids = {}"),
    LuaMutant("release.lua", 'if redis.call("GET", lease) == moderator then', "if true then"),
    LuaMutant("release.lua", '    redis.call("DEL", lease)\n', ""),
    LuaMutant(
        "release.lua", '    record_lease(KEYS[2], id, "release", moderator, ARGV[3], ARGV[3])\n', ""
    ),
    LuaMutant("release.lua", "released[#released + 1] = id", "released[#released + 1] = nil"),
    LuaMutant("release.lua", '  redis.call("ZREM", KEYS[1], id)\n', ""),
    LuaMutant("rotate_secret.lua", "if not current then", "if current then"),
    LuaMutant(
        "rotate_secret.lua", "if tonumber(entry[2]) > now then", "if tonumber(entry[2]) >= now then"
    ),
    LuaMutant("rotate_secret.lua", "if tonumber(entry[2]) > now then", "if true then"),
    LuaMutant(
        "rotate_secret.lua", 'elseif stored[2] and stored[2] ~= "" then', "elseif false then"
    ),
    LuaMutant(
        "rotate_secret.lua",
        "fresh[#fresh + 1] = {current, tonumber(ARGV[3])}",
        "fresh[#fresh + 1] = {current, tonumber(ARGV[2])}",
    ),
    LuaMutant(
        "rotate_secret.lua",
        "while #fresh > tonumber(ARGV[4]) do",
        "while #fresh > tonumber(ARGV[4]) + 1 do",
    ),
    LuaMutant("rotate_secret.lua", "table.remove(fresh, 1)", "table.remove(fresh)"),
    LuaMutant("rotate_secret.lua", '"previous_secret", current,', '"previous_secret", ARGV[1],'),
    LuaMutant("rotate_secret.lua", '"updated_at", ARGV[2])', '"updated_at", ARGV[3])'),
    LuaMutant("report.lua", "if not state then", "if false then"),
    LuaMutant(
        "report.lua",
        'if redis.call("HEXISTS", KEYS[2], reporter) == 1 then',
        'if redis.call("HEXISTS", KEYS[2], reporter) == 2 then',
    ),
    LuaMutant("report.lua", "if not listed(ARGV[10], state) then", "if false then"),
    LuaMutant(
        "report.lua",
        "if queued == 0 and count >= threshold then",
        "if queued == 0 and count > threshold then",
    ),
    LuaMutant(
        "report.lua", "if queued == 0 and count >= threshold then", "if count >= threshold then"
    ),
    LuaMutant("report.lua", '  reasons[#reasons + 1] = "REPORTED"\n', ""),
    LuaMutant("report.lua", 'redis.call("HSET", KEYS[1], "reports", count)\n', ""),
    LuaMutant(
        "report.lua",
        'local version = redis.call("HINCRBY", KEYS[1], "version", 1)',
        'local version = redis.call("HINCRBY", KEYS[1], "version", 0)',
    ),
    LuaMutant("report.lua", "  retain(prefix, id, 0)\n", ""),
    LuaMutant("report.lua", '    redis.call("PEXPIRE", KEYS[2], ttl)\n', ""),
    # Intake and the second look: a verdict is stored only for the context it was decided for, a
    # redelivery changes nothing, and a look moves only a published, unedited, model-decided text.
    LuaMutant(
        "ingest.lua",
        "if stored[3] ~= article or stored[4] ~= author then",
        "if stored[3] ~= article then",
    ),
    LuaMutant(
        "ingest.lua",
        "if stored[3] ~= article or stored[4] ~= author then",
        "if stored[4] ~= author then",
    ),
    LuaMutant("ingest.lua", "if stored[2] == text_hash then", "if false then"),
    LuaMutant(
        "ingest.lua",
        'tonumber(approved or "0") >= tonumber(ARGV[23])',
        'tonumber(approved or "0") > tonumber(ARGV[23])',
    ),
    LuaMutant("ingest.lua", 'closed == "1" and "1" or "0"', '"0"'),
    LuaMutant("ingest.lua", 'premod == "1" and "1" or "0"', '"0"'),
    LuaMutant(
        "ingest.lua",
        'observed[#observed + 1] = (holder and holder ~= id) and "1" or "0"',
        'observed[#observed + 1] = holder and "1" or "0"',
    ),
    LuaMutant("ingest.lua", "if signature ~= ARGV[22] then", "if false then"),
    LuaMutant("ingest.lua", "if not listed(ARGV[21], previous) then", "if false then"),
    LuaMutant(
        "ingest.lua",
        'version = redis.call("HINCRBY", KEYS[1], "version", 1)',
        'version = redis.call("HINCRBY", KEYS[1], "version", 0)',
    ),
    LuaMutant("ingest.lua", '  dequeue(prefix, "pending", id, article, author, stored[5])\n', ""),
    LuaMutant("ingest.lua", '  dequeue(prefix, "reported", id, article, author, stored[5])\n', ""),
    LuaMutant("ingest.lua", '  redis.call("DEL", prefix .. "reports:" .. id)\n', ""),
    LuaMutant("ingest.lua", '  redis.call("HDEL", KEYS[1], "reports")\n', ""),
    LuaMutant("ingest.lua", '  redis.call("HDEL", KEYS[1], unpack(stale))\n', ""),
    LuaMutant("ingest.lua", '  redis.call("HDEL", KEYS[1], "evidence")\n', ""),
    LuaMutant("ingest.lua", '  redis.call("DEL", KEYS[9])\n', ""),
    LuaMutant(
        "ingest.lua",
        'if ttl > 0 and (when == "a" or not previous) then',
        "if ttl > 0 then",
    ),
    LuaMutant(
        "ingest.lua",
        'if state == "approved" and ARGV[29] == "1" then',
        'if state == "approved" then',
    ),
    LuaMutant("ingest.lua", 'retain(prefix, id, state == "pending" and 0 or retention_ms)\n', ""),
    LuaMutant("second_look_apply.lua", "if not state then", "if false then"),
    LuaMutant("second_look_apply.lua", "if stored[3] ~= ARGV[4] then", "if false then"),
    LuaMutant(
        "second_look_apply.lua",
        'local by_model = stored[2] and string.sub(stored[2], 1, 5) == "auto:"',
        "local by_model = true",
    ),
    LuaMutant(
        "second_look_apply.lua",
        "if not by_model or not listed(ARGV[12], state) then",
        "if not by_model then",
    ),
    LuaMutant(
        "second_look_apply.lua",
        "if not by_model or not listed(ARGV[12], state) then",
        "if not listed(ARGV[12], state) then",
    ),
    LuaMutant(
        "second_look_apply.lua",
        '"auto:"\nredis.call("ZREM", KEYS[5], id)\n',
        '"auto:"\n',
    ),
    LuaMutant(
        "second_look_apply.lua", 'redis.call("HSET", KEYS[1], "look_state", "skipped")\n', ""
    ),
    LuaMutant("second_look_apply.lua", 'if ARGV[8] ~= "1" then', 'if ARGV[8] == "1" then'),
    LuaMutant(
        "second_look_apply.lua",
        'local version = redis.call("HINCRBY", KEYS[1], "version", 1)',
        'local version = redis.call("HINCRBY", KEYS[1], "version", 0)',
    ),
    LuaMutant("second_look_apply.lua", "keep_creation(KEYS[1], KEYS[2])\n", ""),
    LuaMutant(
        "second_look_apply.lua", 'dequeue(prefix, "reported", id, article, author, stored[7])\n', ""
    ),
    LuaMutant(
        "second_look_apply.lua",
        'enqueue(prefix, "pending", id, article, author, ARGV[13], stored[6], ARGV[9])\n',
        "",
    ),
    LuaMutant(
        "second_look_apply.lua",
        'count_author(prefix .. "author:" .. author, state, "pending", now, false)\n',
        "",
    ),
    LuaMutant(
        "second_look_apply.lua",
        'remember_decision(prefix, author, id, "pending", now, tonumber(ARGV[14]))\n',
        "",
    ),
    LuaMutant("second_look_apply.lua", 'redis.call("HINCRBY", KEYS[6], "held", 1)\n', ""),
    LuaMutant("second_look_apply.lua", "retain(prefix, id, 0)\n", ""),
)


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


def _python_modules() -> list[str]:
    """The modules ``[tool.mutmut] only_mutate`` names, as mutmut names them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    paths = config["tool"]["mutmut"]["only_mutate"]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def _merged(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` over the last one: the modules it ran replace theirs, the others are kept."""
    try:
        previous = json.loads(RESULTS.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return report
    ran = set(report["modules"])
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
    gaps = [row for row in rows if row["status"] != "killed" and "equivalent" not in row]
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
        "survivors": [row for row in rows if row["status"] != "killed"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_merged(report), indent=2) + "\n", encoding="utf-8")

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
