"""The console in a real Chromium against the real service: a ``civility serve`` process on a
loopback port (real Redis, real model), one browser for the module and a fresh context per test.

Debian's ``chromium`` is driven through Playwright (its own browser download is never used);
without it the tests skip with the command that installs it.
"""

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.console.support import PROJECT_ROOT, Service, Site, new_site
from tests.ports import free_port

CHROMIUM = Path(os.environ.get("CIVILITY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
STARTUP_SECONDS = 180
UI_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(or set CIVILITY_CHROMIUM)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def service(
    redis_server_url: str, redis_test_db: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """``civility serve`` on a free loopback port, on this run's own Redis database."""
    redis_url = f"{redis_server_url}/{redis_test_db}"
    port = free_port()
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CIVILITY_ENV": "production",
        "CIVILITY_ADMIN_TOKEN": token,
        "CIVILITY_PORT": str(port),
    }
    log = tmp_path_factory.mktemp("console") / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"civility serve did not start:\n{log.read_text()}"
            time.sleep(0.2)
        yield Service(url, token, client)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        client.close()


@pytest.fixture
def site(service: Service) -> Site:
    return new_site(service)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running on this thread while it
    # is open, and every asyncio test after this module needs that thread's loop free.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1100, "height": 900})
    opened.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(context: BrowserContext, service: Service) -> Page:
    opened = context.new_page()
    opened.goto(f"{service.url}/console")
    return opened
