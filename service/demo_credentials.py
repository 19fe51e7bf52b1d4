"""The demo site's credentials, kept in the data folder so every ``civility run`` in
development prints the same ones."""

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from service.administration import Administration
from service.appkeys import ADMINISTRATION, MODERATION, SETTINGS
from service.demo import fill_demo_queue
from service.domain import SiteSpec
from service.errors import NotFound, StoreUnavailable
from service.logs import status_line
from service.moderation import Moderation

DEMO_SITE = "demo"
DEMO_CREDENTIALS = "demo-credentials.json"


class DemoFile:
    """Demo credentials kept in the data folder (mode 0600), so every start can print them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, str] = self._read()

    def _read(self) -> dict[str, str]:
        try:
            loaded: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {key: value for key, value in loaded.items() if isinstance(value, str)}

    def _write(self) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(self.values, file, indent=2)
        os.chmod(self.path, 0o600)

    def admin_token(self) -> str:
        if "admin_token" not in self.values:
            self.values["admin_token"] = secrets.token_urlsafe(32)
            self._write()
        return self.values["admin_token"]

    async def announce(self, app: web.Application, url: str) -> None:
        await self._ensure_demo_site(app[MODERATION], app[ADMINISTRATION])
        # Only a token this file generated is printed; one from CIVILITY_ADMIN_TOKEN is the
        # operator's own.
        admin_token = app[SETTINGS].admin_token
        if admin_token is None or admin_token != self.values.get("admin_token"):
            admin_token = "(from CIVILITY_ADMIN_TOKEN)"
        status_line(
            f"civility is running at {url} (development mode, Ctrl-C to stop)\n"
            f"  console:          {url}/console\n"
            f"  admin token:      {admin_token}\n"
            f"  demo site:        {DEMO_SITE}\n"
            f"  webhook secret:   {self.values['webhook_secret']}\n"
            f"  api key:          {self.values['api_key']}\n"
            f"  moderator token:  {self.values['moderator_token']}\n"
            f"  (kept in {self.path})"
        )
        # After the banner: scoring the demo comments must not delay the addresses and tokens,
        # and a store lost meanwhile is reported by the store watch, not by a traceback here.
        with contextlib.suppress(StoreUnavailable):
            await fill_demo_queue(app[MODERATION], DEMO_SITE)

    async def _ensure_demo_site(
        self, moderation: Moderation, administration: Administration
    ) -> None:
        if not await self._still_valid(moderation):
            await self._renew(moderation)
        api_key = self.values.get("api_key")
        site = None if api_key is None else await moderation.site_for_api_key(api_key)
        if site is None or site.id != DEMO_SITE:
            # A file from before api keys were kept, or a key rotated away: issue one now.
            rotation = await administration.rotate_api_key(DEMO_SITE, 0)
            self.values["api_key"] = rotation.api_key
            self._write()

    async def _renew(self, moderation: Moderation) -> None:
        try:
            await moderation.get_site(DEMO_SITE)
        except NotFound:
            _, credentials = await moderation.create_site(SiteSpec(id=DEMO_SITE, name="Demo site"))
            self.values["webhook_secret"] = credentials.webhook_secret
            self.values["api_key"] = credentials.api_key
        else:
            # The site exists but its secret was lost with the file: issue a new one at once.
            rotation = await moderation.rotate_secret(DEMO_SITE, 0)
            self.values["webhook_secret"] = rotation.webhook_secret
        _, token = await moderation.create_moderator(DEMO_SITE, "demo moderator")
        self.values["moderator_token"] = token
        self._write()

    async def _still_valid(self, moderation: Moderation) -> bool:
        secret = self.values.get("webhook_secret")
        token = self.values.get("moderator_token")
        if secret is None or token is None:
            return False
        try:
            valid_secrets = await moderation.webhook_secrets(DEMO_SITE)
        except NotFound:
            return False
        moderator = await moderation.moderator_for_token(token)
        return secret in valid_secrets and moderator is not None
