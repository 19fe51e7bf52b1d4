"""What `civility run` and `civility serve` do before they import the web stack and the model,
which the serving part does again: hold a reload asked while they start, and refuse an address
they cannot listen on.

Kept apart from both so that `serve`, on its way to becoming the supervisor of API processes,
imports neither scikit-learn nor aiohttp."""

import signal
import socket

from service.env_reader import SettingsError
from service.settings import Settings

# The SIGHUPs that came before the service could reload: see ``service.serving``.
held_reloads: list[int] = []


def hold_reload(signum: int, frame: object) -> None:
    held_reloads.append(signum)


def hold_reloads() -> None:
    """Hold a reload asked before this process (or the supervisor and API processes it becomes:
    the mask outlives exec) can act on it, rather than end. Blocking it is not enough alone: the
    threads native libraries started on import have it unblocked, and would take it."""
    signal.signal(signal.SIGHUP, hold_reload)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def refuse_a_taken_address(settings: Settings) -> None:
    """Bind CIVILITY_HOST:CIVILITY_PORT once as a lone server would, then let it go: a taken
    port is refused before the model loads, not a minute later.

    The API processes share the port through SO_REUSEPORT, which would as gladly share it with
    another service bound the same way (another `civility serve`, or its orphans): the kernel
    would split the connections between the two, and nothing would say so."""
    try:
        addresses = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, protocol, _, address in addresses:
            with socket.socket(family, kind, protocol) as probe:
                # As asyncio binds: connections of an earlier run lingering in TIME_WAIT are no
                # reason to refuse.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
    except OSError as error:
        raise cannot_listen(settings, error) from None


def cannot_listen(settings: Settings, error: OSError) -> SettingsError:
    return SettingsError(
        f"cannot listen on CIVILITY_HOST:CIVILITY_PORT {settings.host}:{settings.port}: "
        f"{error.strerror or error}"
    )
