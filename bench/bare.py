"""The ceilings for bench/intake.py: an aiohttp endpoint that reads the body and answers JSON,
and the same with one Redis XADD of the body per request.

    python bench/bare.py PORT [REDIS_URL]

Run as its own process so it has a core to itself, as the service does, on uvloop as the service
runs. It does none of the service's other work (no signature, validation, scoring or script).
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import uvloop
from aiohttp import web

ANSWER = b'{"id":"bare","state":"approved","reasons":[],"scores":{},"model":null,"version":1}'
STREAM = "bench:bare:stream"
STREAM_MAXLEN = 10_000


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, status=202, content_type="application/json")


def accept_and_add(client: aioredis.Redis) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        await client.xadd(STREAM, {"body": body}, maxlen=STREAM_MAXLEN, approximate=True)
        return web.Response(body=ANSWER, status=202, content_type="application/json")

    return handler


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve(port: int, redis_url: str | None) -> None:
    app = web.Application()
    client = aioredis.Redis.from_url(redis_url) if redis_url else None
    app.router.add_post("/v1/sites/{site}/comments", accept_and_add(client) if client else accept)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        if client is not None:
            await client.aclose()


def main(port: int, redis_url: str | None) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(port, redis_url))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
