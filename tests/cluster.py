"""A real Redis Cluster for the tests: three primaries, each a ``redis-server`` process of our own
on a free port (its bus port free too), joined by ``redis-cli --cluster create``, killed at the
end; one may be stopped and started again on its port to stand for a shard going down."""

import random
import socket
import subprocess
import time
from pathlib import Path

CLUSTER_NODES = 3
CLUSTER_BUS_OFFSET = 10_000
NODE_OPTIONS = (
    *("--bind", "127.0.0.1", "--cluster-enabled", "yes"),
    *("--save", "", "--appendonly", "no"),
)
STARTUP_SECONDS = 20.0


def _free_cluster_port() -> int:
    """A free port whose cluster bus port is free as well."""
    while True:
        port = random.randrange(20_000, 30_000)
        try:
            for candidate in (port, port + CLUSTER_BUS_OFFSET):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


class LocalCluster:
    """Three primaries owning a third of the slots each; ``ports[0]`` is the seed node."""

    def __init__(self, server: str, cli: str, folder: Path) -> None:
        self.server = server
        self.cli = cli
        self.folder = folder
        self.ports = [_free_cluster_port() for _ in range(CLUSTER_NODES)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not all(self._answers(port, ["ping"], "PONG") for port in self.ports):
            assert time.monotonic() < deadline, "cluster nodes did not start"
            time.sleep(0.05)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            check=True,
        )
        info = ["cluster", "info"]
        while not all(self._answers(port, info, "cluster_state:ok") for port in self.ports):
            assert time.monotonic() < deadline + STARTUP_SECONDS, "the cluster did not become ready"
            time.sleep(0.1)

    def start_node(self, port: int) -> None:
        """Start (or start again, with the cluster configuration it saved) the node on ``port``."""
        self.processes[port] = subprocess.Popen(
            [
                self.server,
                "--port",
                str(port),
                "--cluster-config-file",
                f"{port}.conf",
                *NODE_OPTIONS,
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_node(self, port: int) -> None:
        """Kill the node on ``port``: its slots have no primary until it is started again."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        for port in list(self.processes):
            self.stop_node(port)

    def _answers(self, port: int, command: list[str], expected: str) -> bool:
        reply = subprocess.run(
            [self.cli, "-p", str(port), *command], capture_output=True, text=True, check=False
        )
        return expected in reply.stdout
