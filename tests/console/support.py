"""What the console's browser tests share: the service, a site of a test's own, signing in."""

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from playwright.sync_api import Locator, Page

from service import signatures

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "build" / "screenshots"
LABELS = ("spam", "toxicity", "severe_toxicity", "insult", "threat", "identity_attack", "profanity")


@dataclass
class Service:
    url: str
    admin_token: str
    redis: redis.Redis
    sites: int = 0

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        """One API request as a script would make it; (status, parsed body or None)."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None


@dataclass
class Site:
    service: Service
    id: str
    webhook_secret: str
    tokens: dict[str, str] = field(default_factory=dict)
    moderator_ids: dict[str, str] = field(default_factory=dict)

    def add_moderator(self, name: str) -> str:
        status, created = self.service.call(
            "POST", f"/v1/sites/{self.id}/moderators", {"name": name}
        )
        assert status == 201, created
        self.tokens[name] = created["token"]
        self.moderator_ids[name] = created["id"]
        return str(created["token"])

    def post_comment(self, comment_id: str, text: str, **extra: Any) -> dict[str, Any]:
        body = {
            "id": comment_id,
            "article": extra.pop("article", {"id": "a1"}),
            "author": {"id": extra.pop("author", f"reader-{comment_id}"), "name": "A reader"},
            "text": text,
            **extra,
        }
        verdict = self._signed_post(f"/v1/sites/{self.id}/comments", body)
        assert verdict["state"] == "pending", verdict
        return verdict

    def report(self, comment_id: str, reporter: str) -> dict[str, Any]:
        """A reader's report, as the host sends it."""
        body = {"comment_id": comment_id, "reporter_id": reporter, "reason": "abusive"}
        return self._signed_post(f"/v1/sites/{self.id}/comments/{comment_id}/reports", body)

    def _signed_post(self, path: str, body: Any) -> dict[str, Any]:
        raw = json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.service.url}{path}",
            raw,
            {
                "Content-Type": "application/json",
                signatures.HEADER: signatures.sign(self.webhook_secret, raw),
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def queue_ids(self) -> list[str]:
        status, page = self.service.call("GET", f"/v1/sites/{self.id}/queue?order=oldest&limit=100")
        assert status == 200, page
        return [item["id"] for item in page["items"]]

    def comment(self, comment_id: str) -> dict[str, Any]:
        status, body = self.service.call("GET", f"/v1/sites/{self.id}/comments/{comment_id}")
        assert status == 200, body
        return dict(body)


def new_site(service: Service) -> Site:
    """A pre-moderated site with one moderator, Mo: every comment is held, none rejected (the
    console shows the worst the model finds instead of the model removing it)."""
    service.sites += 1
    site_id = f"site{service.sites}-{secrets.token_hex(3)}"
    policy = {
        "mode": "pre",
        "reject": dict.fromkeys(LABELS, 1.0),
        "flood_seconds_per_author": 0,
        "duplicate_window_seconds": 0,
    }
    spec = {"id": site_id, "name": site_id, "policy": policy}
    status, created = service.call("POST", "/v1/sites", spec)
    assert status == 201, created
    held = Site(service, site_id, created["webhook_secret"])
    held.add_moderator("Mo")
    return held


def sign_in(page: Page, token: str) -> None:
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def screenshot(shown: Page | Locator, name: str) -> Path:
    """A PNG of the page (or one element of it) in the git-ignored screenshots folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    shown.screenshot(path=str(target))
    return target
