"""``civility serve`` with CIVILITY_API_PROCESSES=2: both processes answer, count each other's
requests in ``/metrics``, score comments alike with the first one's verdict worker shared, follow
one reload and stop on signals."""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import redis

from classifier.model import activate, load_active
from service.keys import KeySpace
from service.signatures import HEADER, sign
from tests.ports import free_port

from .model_copies import copy_model

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
REQUESTS = 50
OLD, NEW = "processes-a", "processes-b"


@dataclass(frozen=True)
class Served:
    process: subprocess.Popen[str]
    log: Path
    port: int
    admin: dict[str, str]
    models_dir: Path
    temporary: Path
    """Where ``serve`` makes its temporary folders (the shared workers' sockets among them)."""


def serve_env(redis_url: str, port: int, **settings: str) -> dict[str, str]:
    """This environment for a ``civility serve`` on ``port``: Redis at ``redis_url``, the
    models the tests serve, development mode unless ``settings`` say otherwise."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_PORT": str(port),
        "CIVILITY_MODELS_DIR": os.environ.get("CIVILITY_MODELS_DIR", str(PROJECT_ROOT / "models")),
    }
    env.pop("CIVILITY_ENV", None)
    return env | settings


def _api_processes(parent: subprocess.Popen[str]) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(parent.pid).children()
        if child.cmdline()[-1:] == ["serve"]
    ]


def _listens_on(process: psutil.Process, port: int) -> bool:
    return any(
        connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        for connection in process.net_connections(kind="tcp")
    )


def _ready_status(url: str) -> int:
    # A new connection each time, so the kernel may hand it to either process.
    with urllib.request.urlopen(url, timeout=10) as response:
        status: int = response.status
        return status


def _scrape(url: str, headers: dict[str, str]) -> dict[str, float]:
    """Sample lines of a Prometheus text page: name with labels, and value."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        page: str = response.read().decode()
    samples = {}
    for line in page.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


# `serve`'s supervisor, run as a script with a SIGTERM arriving the moment its first API process
# exists, before the supervisor has recorded it.
SIGTERM_WHILE_STARTING = """
import os, signal, subprocess, sys
from service import api_processes

popen = subprocess.Popen
started = []

def start(*args, **kwargs):
    child = popen(*args, **kwargs)
    started.append(child)
    print("API process started", flush=True)
    if len(started) == 1:
        os.kill(os.getpid(), signal.SIGTERM)
    return child

subprocess.Popen = start
sys.exit(api_processes.serve_in_processes(2))
"""


def test_a_sigterm_while_the_api_processes_start_stops_them_and_starts_no_more(
    redis_url: str,
) -> None:
    env = serve_env(redis_url, free_port())
    process = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_WHILE_STARTING],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=STARTUP_SECONDS)
    finally:
        # Nothing may outlive the test: a lost stop leaves the API processes serving.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output
    assert output.count("API process started") == 1, output
    assert "failed" not in output


# `serve`'s supervisor, run as a script with a SIGHUP sent to each API process the moment it
# exists, long before it has loaded the model.
SIGHUP_WHILE_STARTING = """
import signal, subprocess, sys
from service import api_processes

popen = subprocess.Popen

def start(*args, **kwargs):
    child = popen(*args, **kwargs)
    child.send_signal(signal.SIGHUP)
    return child

subprocess.Popen = start
sys.exit(api_processes.serve_in_processes(2))
"""
# A lone `civility serve` sent SIGHUP while it loads the model.
SIGHUP_WHILE_LOADING = """
import os, signal, sys
from service import app, cli

start_scorer = app.start_scorer

async def reload_asked_first(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGHUP)
    return await start_scorer(*args, **kwargs)

app.start_scorer = reload_asked_first
sys.exit(cli.main(["serve"]))
"""
# The same, with the model given as argument activated once the one active before has loaded.
ACTIVATED_WHILE_LOADING = """
import os, signal, sys
from pathlib import Path
from classifier.model import activate
from service import app, cli

start_scorer = app.start_scorer

async def activated_meanwhile(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGHUP)
    started = await start_scorer(*args, **kwargs)
    activate(Path(os.environ["CIVILITY_MODELS_DIR"]), sys.argv[1])
    return started

app.start_scorer = activated_meanwhile
sys.exit(cli.main(["serve"]))
"""
RELOADED = re.compile(r" INFO model reloaded: (\S+ -> \S+)$", re.MULTILINE)


@pytest.mark.parametrize(
    ("script", "processes", "announced"),
    [
        (SIGHUP_WHILE_STARTING, 2, False),
        (SIGHUP_WHILE_LOADING, 1, False),
        (ACTIVATED_WHILE_LOADING, 1, False),
        # Another process had announced the new model: the follower, subscribing as the process
        # starts, reads it while the held reload asks for the same model; one of them loads it.
        (ACTIVATED_WHILE_LOADING, 1, True),
    ],
)
def test_a_sighup_while_an_api_process_starts_reloads_once_it_serves_if_the_model_changed(
    redis_url: str,
    model_source: Path,
    tmp_path: Path,
    script: str,
    processes: int,
    announced: bool,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    source = model_source
    activate(models, copy_model(source, models, OLD))
    new = copy_model(source, models, NEW)
    with redis.Redis.from_url(redis_url) as store:
        if announced:
            store.set(KeySpace().model_reloaded(), new)
        else:
            store.delete(KeySpace().model_reloaded())
    port = free_port()
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ADMIN_TOKEN": token,
        "CIVILITY_PORT": str(port),
        "CIVILITY_MODELS_DIR": str(models),
    }
    env.pop("CIVILITY_ENV", None)
    # A file, not a pipe: scoring workers of a killed API process may hold a pipe open.
    log = tmp_path / "serve.log"
    with log.open("w") as written:
        process = subprocess.Popen(
            [sys.executable, "-c", script, new],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=written,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait_until(done: Callable[[str], bool]) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not done(log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

    try:
        wait_until(lambda said: said.count("civility is running at") == processes)
        if script is not ACTIVATED_WHILE_LOADING:
            # Nothing changed while they loaded: the reload they held loaded nothing again.
            # The one asked now is the first, and each process logs it once.
            activate(models, new)
            reload = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/model:reload",
                method="POST",
                headers={"Authorization": f"Bearer {token}"},
            )
            with urllib.request.urlopen(reload, timeout=30) as response:
                assert json.load(response)["version"] == NEW
        wait_until(lambda said: len(RELOADED.findall(said)) >= processes)
        assert _ready_status(f"http://127.0.0.1:{port}/readyz") == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        # Nothing may outlive the test: a lost stop leaves the API processes serving.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    said = log.read_text()
    assert RELOADED.findall(said) == [f"{OLD} -> {NEW}"] * processes, said
    assert "failed" not in said, said
    assert said.count("civility stopped") == processes, said


@pytest.fixture
def model_source(request: pytest.FixtureRequest) -> Path:
    """The folder of the model these tests serve: the small one where the datasets are here to
    train it (each API process and each of its scoring workers loads the model, the committed
    one in half a second), else the committed one, so that these tests run without them too."""
    try:
        tiny: Path = request.getfixturevalue("tiny_model_path")
    except pytest.skip.Exception:
        return Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
    return tiny.parent


@pytest.fixture
def served(redis_url: str, model_source: Path, tmp_path: Path) -> Iterator[Served]:
    """Two API processes on one port, serving the old of two versions of the model."""
    models = tmp_path / "models"
    models.mkdir()
    # Not under tmp_path: socket paths there would be too long for the shared worker's.
    temporary = Path(tempfile.mkdtemp(prefix="civ-test-"))
    source = model_source
    activate(models, copy_model(source, models, OLD))
    copy_model(source, models, NEW)
    port = free_port()
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": token,
        # Production refuses /metrics without a token; the admin's serves for both here.
        "CIVILITY_METRICS_TOKEN": token,
        "CIVILITY_PORT": str(port),
        "CIVILITY_API_PROCESSES": "2",
        "CIVILITY_MODELS_DIR": str(models),
        "TMPDIR": str(temporary),
    }
    # A file, not a pipe: scoring workers of a killed API process may hold a pipe open.
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            children = _api_processes(process)
            if len(children) == 2 and all(_listens_on(child, port) for child in children):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"two API processes did not listen on {port} within {STARTUP_SECONDS} s")
        yield Served(process, log, port, {"Authorization": f"Bearer {token}"}, models, temporary)
    finally:
        # Nothing may outlive the test, whatever happened in it.
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait(timeout=30)
        shutil.rmtree(temporary, ignore_errors=True)


def test_a_port_another_service_shares_is_refused_before_any_api_process_starts(
    redis_url: str,
) -> None:
    # Bound as the API processes of another `civility serve` bind it: their own SO_REUSEPORT
    # binds would join it, and the kernel would split the connections between the two services.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = serve_env(
            redis_url,
            port,
            CIVILITY_ENV="production",
            CIVILITY_ADMIN_TOKEN=secrets.token_urlsafe(24),
            CIVILITY_API_PROCESSES="2",
        )
        # A group of its own: if it served anyway, every process it started is stopped below.
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0,
        )
        try:
            output, errors = process.communicate(timeout=STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"serve shared port {port} with another service instead of refusing it")
    assert (process.returncode, output) == (2, "")
    assert errors == (
        f"civility: cannot listen on CIVILITY_HOST:CIVILITY_PORT 127.0.0.1:{port}: "
        "Address already in use\n"
    )


def test_two_api_processes_share_the_port_and_stop_on_sigterm(served: Served) -> None:
    process, log, port = served.process, served.log, served.port
    children = _api_processes(process)
    statuses = [_ready_status(f"http://127.0.0.1:{port}/readyz") for _ in range(REQUESTS)]
    assert statuses == [200] * REQUESTS
    # Whichever process answers a scrape counts the requests both of them served.
    readyz = 'civility_http_requests_total{method="GET",route="/readyz",status="200"}'
    scrapes = [_scrape(f"http://127.0.0.1:{port}/metrics", served.admin) for _ in range(10)]
    assert [scrape[readyz] for scrape in scrapes] == [REQUESTS] * 10

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    output = log.read_text()
    assert output.count("civility stopped") == 2, output
    assert not any(child.is_running() for child in children)


def test_api_processes_stop_when_their_supervisor_is_killed(served: Served) -> None:
    process, log = served.process, served.log
    children = _api_processes(process)
    # Their scoring workers and the forkservers that started them as well.
    everything = [c for child in children for c in [child, *child.children(recursive=True)]]
    process.kill()  # SIGKILL (`kill -9`, the OOM killer): the supervisor forwards no signal
    process.wait(timeout=30)
    try:
        _, alive = psutil.wait_procs(everything, timeout=15)
        assert not alive, f"still running without their supervisor: {alive}"
    finally:
        # The fixture stops only what its live supervisor started.
        for leftover in everything:
            if leftover.is_running():
                leftover.kill()
    output = log.read_text()
    assert output.count("civility: the serve supervisor is gone; stopping") == 2, output
    assert output.count("civility stopped") == 2, output
    # The last of them removed the folders the supervisor would have.
    assert list(served.temporary.glob("civility-metrics-*")) == []
    assert list(served.temporary.glob("civ-scoring-*")) == []


def test_the_parent_holds_neither_the_model_nor_the_web_stack(served: Served) -> None:
    # It only starts the API processes and forwards signals to them: the same pid, a fresh
    # interpreter of the supervising module, none of the compiled code of numpy, scikit-learn,
    # aiohttp or pydantic (the settings' and the store's, which it never reads) mapped.
    parent = psutil.Process(served.process.pid)
    assert parent.cmdline()[-3:] == ["-m", "service.api_processes", "2"]
    mapped = {Path(region.path).name for region in parent.memory_maps()}
    compiled = ("_multiarray_umath", "_http_parser", "_pydantic_core")
    heavy = [name for name in mapped if name.startswith(compiled)]
    assert not heavy, heavy
    assert len(_api_processes(served.process)) == 2


# `serve` with two API processes, stopped the moment it would become their supervisor: the
# modules it imported to check its settings, Redis, port and model.
IMPORTED_BEFORE_SUPERVISING = """
import json, sys
from service import cli, serve_cli

def supervise(count):
    heavy = ("aiohttp", "numpy", "scipy", "sklearn", "classifier.model", "service.app")
    print(json.dumps(sorted(
        name for name in sys.modules for top in heavy
        if name == top or name.startswith(top + ".")
    )))
    sys.exit(0)

serve_cli.become_supervisor = supervise
sys.exit(cli.main(["serve"]))
"""


def test_serve_checks_its_model_before_supervising_without_the_web_stack_or_scikit_learn(
    redis_url: str,
) -> None:
    env = serve_env(redis_url, free_port(), CIVILITY_API_PROCESSES="2")
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_BEFORE_SUPERVISING],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    # Each API process imports them as it starts; the supervisor never needs them.
    assert json.loads(done.stdout) == []


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_both_processes_score_comments_as_the_model_does_with_one_worker_shared(
    served: Served,
) -> None:
    base = f"http://127.0.0.1:{served.port}"
    _, site = _post(
        f"{base}/v1/sites",
        json.dumps({"id": "news", "name": "News"}).encode(),
        {**served.admin, "Content-Type": "application/json"},
    )
    texts = [
        f"Comment {n}: the council's plan is {'idiotic' if n % 3 else 'sensible'}."
        for n in range(40)
    ]
    bodies = [
        json.dumps(
            {"id": f"c{n}", "article": {"id": "a1"}, "author": {"id": f"u{n}"}, "text": text}
        ).encode()
        for n, text in enumerate(texts)
    ]
    # Concurrent posts spread over both processes' connections and meet in the shared worker.
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda body: _post(
                    f"{base}/v1/sites/news/comments",
                    body,
                    {
                        "Content-Type": "application/json",
                        HEADER: sign(site["webhook_secret"], body),
                    },
                ),
                bodies,
            )
        )

    model = load_active(served.models_dir, semantic=False)
    for (status, verdict), expected in zip(answers, model.score(texts), strict=True):
        assert status == 202, verdict
        assert verdict["model"] == model.version
        assert verdict["scores"] == pytest.approx(expected, abs=1e-9)
    # The first process's verdict worker listens for the other's batches while they serve ...
    assert list(served.temporary.glob("civ-scoring-*/scoring-*.sock"))
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0, served.log.read_text()
    # ... and nothing of it is left once they stop.
    assert list(served.temporary.glob("civ-scoring-*")) == []


def test_a_reload_sent_to_one_process_switches_both(served: Served) -> None:
    activate(served.models_dir, f"civility-{NEW}")
    reload = urllib.request.Request(
        f"http://127.0.0.1:{served.port}/v1/model:reload", method="POST", headers=served.admin
    )
    with urllib.request.urlopen(reload, timeout=30) as response:
        assert json.load(response)["version"] == NEW
    # The other process follows the announcement: soon every connection, to either, serves NEW.
    model = urllib.request.Request(f"http://127.0.0.1:{served.port}/v1/model", headers=served.admin)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        versions = set()
        for _ in range(20):
            with urllib.request.urlopen(model, timeout=10) as response:
                versions.add(json.load(response)["version"])
        if versions == {NEW}:
            break
        assert time.monotonic() < deadline, f"still serving {versions}"
        time.sleep(0.2)


def test_a_reload_on_sighup_is_logged_by_each_process_with_its_time(served: Served) -> None:
    activate(served.models_dir, f"civility-{NEW}")
    served.process.send_signal(signal.SIGHUP)
    logged = re.compile(
        rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO model reloaded: {OLD} -> {NEW}$",
        re.MULTILINE,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    # Each API process got the signal, or followed the other's announcement: both say so.
    while len(logged.findall(served.log.read_text())) < 2:
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.2)


def test_one_api_process_dying_stops_the_other_and_fails(served: Served) -> None:
    process, log = served.process, served.log
    doomed, survivor = _api_processes(process)
    # Its scoring workers and the forkserver that started them.
    orphans = doomed.children(recursive=True)
    assert orphans
    doomed.kill()
    try:
        assert process.wait(timeout=30) == 1, log.read_text()
        # A killed process cannot stop them: they notice on their own and end.
        _, alive = psutil.wait_procs(orphans, timeout=10)
        assert not alive, alive
    finally:
        for orphan in orphans:
            if orphan.is_running():
                orphan.kill()
    output = log.read_text()
    assert f"API process {doomed.pid} failed" in output
    assert "civility stopped" in output
    assert not survivor.is_running()
