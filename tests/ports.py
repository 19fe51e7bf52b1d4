"""Free loopback ports for the servers the tests start."""

import socket


def free_port() -> int:
    """A port nothing listens on now: the kernel's pick, so test processes side by side do not
    race for the same one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
