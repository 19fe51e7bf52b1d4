"""A real Redis Sentinel set-up for the tests: a primary and a replica (AOF on) watched by three
sentinels, each a ``redis-server`` process of our own on a free port, stopped at the end."""

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.ports import free_port

SERVICE = "civility"
SENTINELS = 3
STARTUP_SECONDS = 30.0
DURABLE = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
# A primary waits five seconds by default before it streams its data to a replica, for others
# that might ask meanwhile: here one replica asks, at start and after each failover.
REPLICATION = ("--repl-diskless-sync-delay", "0")


def until(condition: Callable[[], bool], what: str, seconds: float = STARTUP_SECONDS) -> None:
    """Poll a real outside process (a server starting, sentinels agreeing) until it is ready."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except (redis.ConnectionError, redis.ResponseError):
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class SentinelSetup:
    """Primary + replica + three sentinels; ``failover()`` makes the replica the primary."""

    def __init__(self, server: str, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{SERVICE}"

    def start(self) -> None:
        primary, replica = self.data_ports
        self._spawn("primary", ["--port", str(primary)])
        self._spawn("replica", ["--port", str(replica), "--replicaof", "127.0.0.1", str(primary)])
        # A sentinel learns the replicas from the primary's INFO, asked on connecting and then
        # every ten seconds: started before the replica is linked, it would wait for the next.
        until(lambda: self._replica_linked(primary), "the replica to sync with the primary")
        for port in self.sentinel_ports:
            config = self.folder / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n",
                encoding="utf-8",
            )
            self.processes.append(
                subprocess.Popen(
                    [self.server, str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        until(self._sentinels_see_everyone, "the sentinels to find the replica and each other")

    def _spawn(self, name: str, arguments: list[str]) -> None:
        folder = self.folder / name
        folder.mkdir(exist_ok=True)
        options = (*DURABLE, *REPLICATION, *arguments)
        self.processes.append(
            subprocess.Popen(
                [self.server, "--bind", "127.0.0.1", "--dir", str(folder), *options],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def primary_port(self, sentinel_port: int | None = None) -> int:
        """The primary's port as one sentinel (the first, unless named) sees it."""
        asked = self.sentinel_ports[0] if sentinel_port is None else sentinel_port
        with redis.Redis(port=asked, decode_responses=True) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)

    def failover(self) -> None:
        """A forced failover, returning once every sentinel names the replica as primary and the
        old primary follows it."""
        old = self.primary_port()
        (new,) = (port for port in self.data_ports if port != old)
        # Under write load the replica may not count as promotable yet (NOGOODSLAVE): the
        # request is made again until a sentinel takes it.
        until(self._failover_taken, "a sentinel to take the failover")
        # A client asks whichever sentinel answers first: all of them must know.
        until(
            lambda: all(self.primary_port(port) == new for port in self.sentinel_ports),
            "every sentinel to name the new primary",
        )
        until(lambda: self._replica_linked(new), "the old primary to follow the new one")

    def _failover_taken(self) -> bool:
        with redis.Redis(port=self.sentinel_ports[0], decode_responses=True) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        return True

    def _replica_linked(self, primary: int) -> bool:
        with redis.Redis(port=primary, decode_responses=True) as client:
            info = client.info("replication")
            return bool(
                info["role"] == "master"
                and info.get("connected_slaves") == 1
                and info["slave0"]["state"] == "online"
            )

    def _sentinels_see_everyone(self) -> bool:
        for port in self.sentinel_ports:
            with redis.Redis(port=port, decode_responses=True) as sentinel:
                replicas = sentinel.sentinel_slaves(SERVICE)
                others = sentinel.sentinel_sentinels(SERVICE)
                if len(replicas) != 1 or len(others) != SENTINELS - 1:
                    return False
        return True

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait(timeout=10)
