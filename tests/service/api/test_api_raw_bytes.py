"""Bytes no client library would send: headers that are not UTF-8, forms that cannot be read.

Each is written on a raw socket, so what reaches the server is exactly these bytes; every one must
get a clear refusal in its API's own error shape, never a 500.
"""

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]
NOT_UTF8 = b"\xff\xfe"


async def raw_request(client: Client, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("path", [b"/v1/sites/news", b"/v1/sites/news/queue"])
async def test_a_bearer_token_that_is_not_utf8_is_refused(
    client: Client, site: dict[str, str], path: bytes
) -> None:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + NOT_UTF8 + b"\r\n"
    status, body = await raw_request(client, head)
    assert status == 401
    assert b'"unauthorized"' in body


async def test_a_coral_signature_that_is_not_utf8_is_refused(
    client: Client, site: dict[str, str], admin: dict[str, str]
) -> None:
    secret = {"coral": {"signing_secret": "whsec_coral_0123456789abcdef0123"}}
    assert (await client.patch("/v1/sites/news", json=secret, headers=admin)).status == 200
    head = (
        b"POST /v1/integrations/coral/news HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nX-Coral-Signature: sha256=" + NOT_UTF8 + b"\r\n"
    )
    status, body = await raw_request(client, head, b"{}")
    assert status == 401
    assert b"does not match" in body


async def test_a_perspective_key_that_is_not_utf8_is_refused(client: Client) -> None:
    head = (
        b"POST /v1alpha1/comments:analyze HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nX-Goog-Api-Key: " + NOT_UTF8 + b"\r\n"
    )
    status, body = await raw_request(client, head, b"{}")
    assert status == 400
    assert b"API key not valid" in body


@pytest.mark.parametrize(
    ("content_type", "form", "message"),
    [
        (
            b"application/x-www-form-urlencoded",
            b"blog=x&user_ip=1.2.3.4&comment_content=caf\xe9",
            b"the form is not valid UTF-8",
        ),
        (
            b"application/x-www-form-urlencoded",
            b"blog=x&user_ip=1.2.3.4&blog_charset=windows-1252&comment_content=%81",
            b"the form is not valid UTF-8 (or the charset it names)",
        ),
        (b"multipart/form-data", b"blog=x", b"the form cannot be read"),
        (
            b"application/x-www-form-urlencoded; charset=bogus",
            b"blog=x&user_ip=1.2.3.4",
            b"the form names an unknown charset: bogus",
        ),
    ],
)
async def test_an_akismet_form_that_cannot_be_read_is_answered_as_akismet_does(
    client: Client, site: dict[str, str], content_type: bytes, form: bytes, message: bytes
) -> None:
    head = b"POST /1.1/comment-check HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type + b"\r\n"
    status, body = await raw_request(
        client, head, b"api_key=" + site["api_key"].encode() + b"&" + form
    )
    assert status == 200
    assert body.startswith(message)


@pytest.mark.parametrize("encoding", [b"deflate", b"gzip"])
async def test_a_body_that_does_not_decode_as_its_content_encoding_is_refused(
    client: Client, site: dict[str, str], admin: dict[str, str], encoding: bytes
) -> None:
    head = (
        b"PATCH /v1/sites/news HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: " + admin["Authorization"].encode() + b"\r\n"
        b"Content-Encoding: " + encoding + b"\r\n"
    )
    status, body = await raw_request(client, head, b'{"name": "not compressed"}')
    assert status == 400
    assert b'"bad_request"' in body
    assert b"request body cannot be read" in body


async def test_an_akismet_form_that_does_not_decode_is_answered_as_akismet_does(
    client: Client, site: dict[str, str]
) -> None:
    head = (
        b"POST /1.1/comment-check HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Encoding: deflate\r\n"
    )
    status, body = await raw_request(client, head, b"api_key=" + site["api_key"].encode())
    assert status == 200
    assert body.startswith(b"request body cannot be read")
