"""``REDIS_URL``: the Redis topology it names (one server, a cluster, a Sentinel service) and
where that topology's servers are."""

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from redis.asyncio.connection import AbstractConnection, Connection, ConnectKwargs, parse_url

from service.env_reader import SettingsError

RedisTopology = Literal["single", "cluster", "sentinel"]
SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where ``REDIS_URL`` points: one server (``url`` as redis-py reads it), the seed nodes of
    a Redis Cluster, or the sentinels watching ``service``."""

    topology: RedisTopology
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_redis_url(url: str) -> RedisTarget:
    """Read ``REDIS_URL``: ``redis://``, ``rediss://`` or ``unix://`` for one server,
    ``redis+cluster://host:port,host:port`` for a cluster's seed nodes,
    ``redis+sentinel://host:port,host:port/service[/db]`` for a Sentinel service (the
    ``rediss+`` forms use TLS). A ``SettingsError`` says what is wrong."""
    shown = without_credentials(url)
    if url.startswith("unix://"):
        options = _check_options(url, shown)
        return RedisTarget("single", url, db=options.get("db", 0))
    if url.startswith(SINGLE_SCHEMES):
        try:
            urlsplit(url).port  # noqa: B018 - reading it checks the range
        except ValueError as error:
            if "range" in str(error):
                raise SettingsError(f"REDIS_URL has a port out of range: {shown}") from None
        options = _check_options(url, shown)
        # A ?db= query names the database before the path does, as redis-py reads it.
        path_db = _database(urlsplit(url).path.lstrip("/"))
        return RedisTarget("single", url, db=options.get("db", path_db))
    if url.startswith(CLUSTER_SCHEMES + SENTINEL_SCHEMES):
        scheme, _, rest = url.partition("://")
        credentials, _, rest = rest.rpartition("@")
        netloc, _, path = rest.partition("/")
        path, _, query = path.partition("?")
        if query:
            raise SettingsError(f"REDIS_URL takes no query for {scheme}: {shown}")
        nodes = tuple(_node(shown, node) for node in netloc.split(","))
        username, _, password = credentials.partition(":")
        target = RedisTarget(
            "cluster",
            url,
            nodes=nodes,
            username=unquote(username) or None,
            password=unquote(password) or None,
            tls=scheme.startswith("rediss"),
        )
        if scheme.endswith("cluster"):
            if path.strip("/"):
                raise SettingsError(f"REDIS_URL: a cluster has only database 0, not /{path}")
            return target
        service, _, database = path.partition("/")
        if not service:
            raise SettingsError(
                "REDIS_URL names no Sentinel service: use "
                f"redis+sentinel://host:port,host:port/<service>[/<db>], not {shown}"
            )
        return dataclasses.replace(
            target, topology="sentinel", service=unquote(service), db=_database(database)
        )
    raise SettingsError(
        "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster://, "
        "rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
    )


def without_credentials(url: str) -> str:
    """``url`` as an error message may quote it: without its credentials."""
    scheme, separator, rest = url.partition("://")
    credentials, at, hosts = rest.rpartition("@")
    return f"{scheme}{separator}***@{hosts}" if at and credentials else url


def _check_options(url: str, shown: str) -> ConnectKwargs:
    """redis-py reads a server's URL only when it first connects, and an address or a query
    option it cannot take then ends the process in a traceback: say it at start instead. The
    options as redis-py reads them."""
    try:
        options = parse_url(url)
    except ValueError as error:
        raise SettingsError(f"REDIS_URL cannot be read ({error}): {shown}") from None
    connection: type[AbstractConnection] = options.get("connection_class", Connection)
    # The pool takes these two itself; every other option goes to the connection.
    known = _keywords(connection) | {"connection_class", "path", "max_connections", "timeout"}
    if unknown := sorted(set(options) - known):
        raise SettingsError(f"REDIS_URL has unknown options {', '.join(unknown)}: {shown}")
    return options


def _keywords(connection: type[AbstractConnection]) -> set[str]:
    """The keyword arguments ``connection`` and the classes it hands its others to accept."""
    return {
        name
        for cls in connection.__mro__
        if "__init__" in vars(cls)
        for name, parameter in inspect.signature(vars(cls)["__init__"]).parameters.items()
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    }


def _node(shown: str, node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"REDIS_URL: each node must be host:port with a port 1-65535: {shown}")
    return host, int(port)


def _database(database: str) -> int:
    # redis-py would silently read /abc as database 0.
    if database and not (database.isascii() and database.isdigit()):
        raise SettingsError(f"REDIS_URL names database {database!r}; it must be a number")
    return int(database or 0)
