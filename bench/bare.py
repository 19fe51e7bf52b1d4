"""The ceiling for bench/intake.py: an aiohttp endpoint that reads the body and answers JSON.

Run as its own process (``python bench/bare.py PORT``) so it has a core to itself, as the service
does; it does none of the service's work (no signature, validation, scoring or Redis).
"""

import sys

from aiohttp import web

ANSWER = b'{"id":"bare","state":"approved","reasons":[],"scores":{},"model":null,"version":1}'


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, status=202, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/sites/{site}/comments", accept)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
