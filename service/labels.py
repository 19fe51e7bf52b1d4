"""Training labels: what people said a comment really was, kept per site for the next retrain.

Feedback through the compatibility endpoints (Perspective's ``comments:suggestscore``, Akismet's
``submit-spam`` and ``submit-ham``) and moderators' decisions each say, for one text, whether it
was spam, toxic, ... . ``LabelLog.record`` appends one entry to the site's label stream
(``civ:{site}:labels``, inside the site's hash tag); the stream keeps about the newest
``max_entries`` (Redis trims whole nodes, so slightly more may stay), so a busy site cannot grow
it without bound. ``LabelLog.export`` reads a site's entries back, oldest first, as JSON-able
dicts: the shape a retrain (or ``civility labels export``) consumes::

    {"id": "1732700000000-0", "site": "news", "text": "...", "labels": {"spam": 1},
     "source": "akismet.submit-spam", "model": "1.0.0", "comment_id": null, "reason": null,
     "author": null, "at": "2026-11-27T09:00:00Z"}

``labels`` maps label names (``spam``, ``toxicity``, ``insult``, ...) to 1 (it is) or 0 (it is
not); a label not named is unknown, not negative. ``model`` is the version that was active when
the label arrived, so a retrain can tell which model's mistakes it corrects.
"""

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any, cast

from service.domain import MAX_ID, MAX_TEXT
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.scripts import LuaScripts, RedisClient, store_errors
from service.times import from_ms, iso_from_ms, to_ms

DEFAULT_MAX_ENTRIES = 100_000
"""Per site: about a retrain's worth of feedback, a few tens of megabytes at most."""

EXPORT_PAGE = 500

_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SOURCE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


class LabelLog:
    def __init__(
        self,
        redis: RedisClient,
        prefix: str = DEFAULT_PREFIX,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` (seconds since the epoch) dates an entry recorded without ``at``."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.redis = redis
        self.keys = KeySpace(prefix)
        self.max_entries = max_entries
        self._clock = clock
        self._run = LuaScripts(redis, ("label_record",), with_library=False).run

    async def record(
        self,
        site: str,
        text: str,
        labels: Mapping[str, int],
        source: str,
        model_version: str | None,
        *,
        comment_id: str | None = None,
        reason: str | None = None,
        author_id: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Append one labelled text to the site's log; returns the entry id.

        ``source`` says who gave the label (``perspective.suggestscore``, ``akismet.submit-ham``,
        ``moderator``, ...); ``comment_id`` is the comment's id when the caller knows one, and
        ``reason`` the moderator's reason (``service.reasons`` made ``labels`` from it) and
        ``author_id`` the comment's author (so erasing an author can find the entry; while the
        erasure runs, and a request's lifetime after it, their labels are not written: "" is
        returned).
        Raises ``ValueError`` for an entry that could not train anything (no text, no labels,
        a value other than 0 or 1) before anything is written."""
        _check(text, labels, source, comment_id)
        moment = at or from_ms(int(self._clock() * 1000))
        fields = {
            "text": text,
            "labels": json.dumps(dict(labels), sort_keys=True),
            "source": source,
            "model": model_version or "",
            "comment_id": comment_id or "",
            "reason": reason or "",
            "author": author_id or "",
            "at": str(to_ms(moment)),
        }
        keys = [self.keys.labels(site)]
        if author_id:
            keys.append(self.keys.erasure(site, author_id))
        flat = [value for pair in fields.items() for value in pair]
        return str(await self._run("label_record", keys, [self.max_entries, *flat]))

    async def export(self, site: str, after: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every entry of the site's log (after the entry id ``after``), oldest first, read in
        pages."""
        key = self.keys.labels(site)
        start = "-" if after is None else f"({after}"
        while True:
            with store_errors():
                page = cast(
                    list[tuple[str, dict[str, str]]],
                    await self.redis.xrange(key, min=start, count=EXPORT_PAGE),
                )
            for entry_id, fields in page:
                yield _entry(site, entry_id, fields)
            if len(page) < EXPORT_PAGE:
                return
            start = f"({page[-1][0]}"

    async def forget_author(self, site: str, author_id: str) -> int:
        """Delete the author's entries from the site's log; returns how many there were."""
        doomed = [entry["id"] async for entry in self.export(site) if entry["author"] == author_id]
        for start in range(0, len(doomed), EXPORT_PAGE):
            with store_errors():
                await self.redis.xdel(self.keys.labels(site), *doomed[start : start + EXPORT_PAGE])
        return len(doomed)

    async def count(self, site: str) -> int:
        with store_errors():
            return int(await self.redis.xlen(self.keys.labels(site)))


def _check(text: str, labels: Mapping[str, int], source: str, comment_id: str | None) -> None:
    if not text or len(text) > MAX_TEXT:
        raise ValueError(f"a labelled text has 1 to {MAX_TEXT} characters")
    if not labels and comment_id is None:
        # A comment's entry may name none: its latest decision withdrew what earlier ones taught.
        raise ValueError("a label entry names at least one label")
    for name, value in labels.items():
        if not _LABEL.match(name) or value not in (0, 1) or isinstance(value, bool):
            raise ValueError(f"label {name!r}={value!r}: names are snake_case, values 0 or 1")
    if not _SOURCE.match(source):
        raise ValueError(f"source {source!r} is not a short lower-case name")
    if comment_id is not None and not 0 < len(comment_id) <= MAX_ID:
        raise ValueError(f"a comment id has 1 to {MAX_ID} characters")


def _entry(site: str, entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": entry_id,
        "site": site,
        "text": fields["text"],
        "labels": json.loads(fields["labels"]),
        "source": fields["source"],
        "model": fields["model"] or None,
        "comment_id": fields["comment_id"] or None,
        "reason": fields.get("reason") or None,
        "author": fields.get("author") or None,
        "at": iso_from_ms(fields["at"]),
    }
