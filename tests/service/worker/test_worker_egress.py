"""Webhooks never reach the service's own network unless the operator allows a range: the
check is made on the address the worker connects to, after DNS resolution."""

import asyncio
import dataclasses
import errno
import ipaddress
import socket

import pytest
import redis.asyncio as aioredis
from aiohappyeyeballs import AddrInfoType

from service.egress import RefusedAddressError, check, guarded_socket_factory, parse_allowed
from service.env_reader import SettingsError
from service.settings import Settings

from .support import FAST, CreateSite, Events, Receiver, StartWorker, eventually, in_state, record

# The refusal comes from the address a name resolves to: the attempt's time limit must leave
# room for resolving it on a busy machine, or the attempt ends as a timeout instead.
STRICT = dataclasses.replace(FAST, callback_allow=(), max_attempts=1, timeout_seconds=10.0)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "0x7f000001", "[::ffff:127.0.0.1]", "[::127.0.0.1]"]
)
async def test_a_callback_on_loopback_is_refused_after_resolution(
    redis_client: aioredis.Redis,
    receiver: Receiver,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
    host: str,
) -> None:
    await create_site(receiver.url.replace("127.0.0.1", host))
    held = await events.held("c1")
    await start_worker(STRICT)

    await eventually(in_state(redis_client, held, "failed"), what="the refusal")

    stored = await record(redis_client, held)
    assert "not a public address" in stored["last_error"]
    assert stored["last_status"] == ""
    assert receiver.arrivals == []


async def test_an_allowed_range_is_reached(
    redis_client: aioredis.Redis,
    receiver: Receiver,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
) -> None:
    await create_site(receiver.url)
    held = await events.held("c1")
    await start_worker(dataclasses.replace(STRICT, callback_allow=parse_allowed("127.0.0.0/8")))
    await eventually(in_state(redis_client, held, "delivered"), what="the delivery")
    assert len(receiver.delivered()) == 1


async def test_last_error_shows_the_status_never_the_body(
    redis_client: aioredis.Redis,
    receiver: Receiver,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
) -> None:
    receiver.failures = 1
    await create_site(receiver.url)
    held = await events.held("c1")
    await start_worker(dataclasses.replace(FAST, max_attempts=1))
    await eventually(in_state(redis_client, held, "failed"), what="the dead letter")
    stored = await record(redis_client, held)
    assert (stored["last_status"], stored["last_error"]) == (
        "500",
        "HTTP 500 Internal Server Error",
    )


async def test_last_error_never_shows_what_a_receiver_that_is_no_http_server_sent(
    redis_client: aioredis.Redis,
    create_site: CreateSite,
    events: Events,
    start_worker: StartWorker,
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"db_password=hunter2\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await create_site(f"http://127.0.0.1:{port}/hooks")
        held = await events.held("c1")
        await start_worker(dataclasses.replace(FAST, max_attempts=1))
        await eventually(in_state(redis_client, held, "failed"), what="the dead letter")
    finally:
        server.close()
        await server.wait_closed()
    stored = await record(redis_client, held)
    assert stored["last_error"] == "ClientResponseError: not a valid HTTP response"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "224.0.0.1",
        # IPv4 inside IPv6 translation prefixes: NAT64 (RFC 6052, 8215) and 6to4.
        "64:ff9b::a00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",
        "2002:a9fe:a9fe::1",
        "2002:7f00:1::",
        # The deprecated IPv4-compatible form (RFC 4291), which Linux's sit tunnel carries to the
        # IPv4 address inside, and SIIT's IPv4-translated form (RFC 2765).
        "::127.0.0.1",
        "::169.254.169.254",
        "::ffff:0:a00:1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(RefusedAddressError):
        check(ipaddress.ip_address(address), ())


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:4700::1111", "64:ff9b::5db8:d70e", "2002:5db8:d70e::1"]
)
def test_public_addresses_pass(address: str) -> None:
    check(ipaddress.ip_address(address), ())


def test_named_ranges_open_only_themselves() -> None:
    allowed = parse_allowed("loopback, unique-local")
    check(ipaddress.ip_address("127.0.0.2"), allowed)
    check(ipaddress.ip_address("fd12::3"), allowed)
    with pytest.raises(RefusedAddressError):
        check(ipaddress.ip_address("10.0.0.1"), allowed)


def test_a_bad_allowed_range_stops_the_start() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"CIVILITY_CALLBACK_ALLOW": "loopback,intranet"})
    assert str(raised.value) == (
        "CIVILITY_CALLBACK_ALLOW: 'intranet' is neither a range name "
        "(loopback, private, link-local, unique-local) nor a CIDR"
    )


def test_the_refusal_carries_an_errno_so_the_connection_error_names_it() -> None:
    with pytest.raises(RefusedAddressError) as raised:
        check(ipaddress.ip_address("10.1.2.3"), ())
    assert raised.value.errno == errno.EACCES
    assert raised.value.strerror == "refused to connect to 10.1.2.3: not a public address"


def test_empty_items_between_commas_are_skipped() -> None:
    allowed = parse_allowed("loopback,, ,private,")
    check(ipaddress.ip_address("127.0.0.1"), allowed)
    check(ipaddress.ip_address("192.168.1.1"), allowed)


def _address_info(family: socket.AddressFamily, host: str) -> AddrInfoType:
    sockaddr: tuple[str, int] | tuple[str, int, int, int] = (
        (host, 443) if family == socket.AF_INET else (host, 443, 0, 0)
    )
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


@pytest.mark.parametrize(
    ("family", "host"),
    [(socket.AF_INET, "93.184.215.14"), (socket.AF_INET6, "2606:4700::1111")],
)
def test_the_factory_opens_the_socket_the_resolver_described(
    family: socket.AddressFamily, host: str
) -> None:
    opened = guarded_socket_factory(())(_address_info(family, host))
    with opened:
        assert (opened.family, opened.type, opened.proto) == (
            family,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
        )


def test_a_zoned_link_local_address_is_refused_unless_its_range_is_allowed() -> None:
    zoned = _address_info(socket.AF_INET6, "fe80::1%lo")
    with pytest.raises(RefusedAddressError):
        guarded_socket_factory(())(zoned)
    with guarded_socket_factory(parse_allowed("link-local"))(zoned) as opened:
        assert opened.family == socket.AF_INET6
