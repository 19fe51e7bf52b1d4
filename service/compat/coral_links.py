"""Which civility comment is which Coral comment.

Coral's external moderation phase names no comment, and its webhooks name nothing else: the two
meet here. A phase request records the comment among its author's in the thread (story and
parent), where an EDIT without ids finds the comment it updates (Coral lets an author edit only
for a short while after posting); a webhook, once Coral's GraphQL API has said whose comment it
is, links Coral's comment id and revision to civility's comment both ways.
"""

from dataclasses import dataclass
from typing import cast

from service.compat import coral
from service.compat.ids import digest
from service.deliveries import WaitedOn
from service.errors import SiteNotFound
from service.keys import DEFAULT_PREFIX, KeySpace
from service.store.records import DAY_MS, SiteRecord
from service.store.scripts import LuaScripts, RedisClient, store_errors

LATEST_SECONDS = 86_400
"""How long an author's comments in a thread are kept for id-less EDITs to find: the longest
edit window ``CIVILITY_CORAL_EDIT_WINDOW_SECONDS`` takes."""


def keep_seconds(record: SiteRecord) -> int:
    """How long a link is kept once its comment is gone: as long as a decided comment is."""
    return record.site.policy.retention_days * DAY_MS // 1000


@dataclass(frozen=True, slots=True)
class CoralIds:
    comment_id: str
    revision_id: str


@dataclass(frozen=True, slots=True)
class CoralCall:
    """A call that set a comment's status in Coral, timed by the worker's clock (ms)."""

    status: str
    started_at: int
    answered_at: int


@dataclass(frozen=True, slots=True)
class CoralLink:
    """A comment that came through Coral's phase, and Coral's ids once a webhook named them."""

    ids: CoralIds | None
    """Coral's comment and the revision of the text civility moderated (none until a webhook
    named them, or while Coral has not stored the text of an edit civility moderated)."""
    sent_at: int = 0
    """When civility's latest decision carried into Coral was made (ms; 0: none yet)."""
    reached_at: int = 0
    """When the worker began carrying that decision into Coral (ms, the worker's clock)."""
    sent_status: str = ""
    """The status (``APPROVED``, ``REJECTED``) civility's latest call into Coral set there
    ("": none yet): what Coral's webhooks echo of civility's own decisions."""
    answered_at: int = 0
    """When Coral answered that call (ms, the worker's clock): its echo is dated before."""
    calling_status: str = ""
    """The status a call of civility's sets in Coral from just before it is made until the
    worker notes its answer, or gives the decision up ("": none): Coral may apply it and send
    its webhook about it before answering. A failed call's is kept, since Coral may have
    applied it (its answer lost or too late), until the next call of the decision is answered
    or the decision is given up."""
    in_flight: int = 0
    """When the decision whose call is being made was made (ms; 0: no call in flight): from just
    before the call until it ends, answered or not. Coral's moderators deciding meanwhile decide
    after that decision went to Coral, which may apply the call after theirs."""
    resend_version: int = 0
    """The comment's version a decision of Coral's moderators made, recorded while a call of
    civility's setting another status was in flight, or whose webhook read the call in flight
    and recorded it once the call had ended (0: none): Coral may have applied the call after
    it, so it is carried back into Coral, as its own event's delivery."""
    coral_id: str | None = None
    """Coral's comment id, once a webhook named it (also while ``ids`` waits for a revision)."""
    text: str | None = None
    """A digest of the text Coral's phase last sent (``coral.text_digest``). None on a link
    written before links kept it, whose comment is in no thread set (those came after the
    digest, and each ``mark`` writes both): a webhook finds it by id, never by this."""
    edited_version: int = 0
    """The comment's version when an edit from Coral last changed its text."""
    check_text: bool = False
    """Coral's revision is taken only when its text is the one civility moderated: after an
    edit, or an edit civility could not tell was of this comment."""
    withheld: bool = False
    """Coral's phase was last sent an edit that may be of this comment and civility did not
    take (it could not tell which comment it edited, or it left the text blank): a text of
    Coral's other than civility's is that edit, not one Coral has yet to store."""


class CoralLinks:
    def __init__(self, redis: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.keys = KeySpace(prefix)
        self._run = LuaScripts(
            redis, ("coral_link", "coral_current", "coral_answered"), with_library=False
        ).run

    def _thread_key(self, site: str, story: str, author: str, parent: str | None) -> str:
        return self.keys.coral_thread(site, digest(story, author, parent or "")[:40])

    async def recent(
        self, site: str, story: str, author: str, parent: str | None
    ) -> list[tuple[str, int]]:
        """The author's comments in the thread in the last day, newest first, each with when
        the phase first saw it (ms)."""
        key = self._thread_key(site, story, author, parent)
        with store_errors():
            found = cast(
                list[tuple[str, float]],
                await self.redis.zrange(key, 0, -1, desc=True, withscores=True),
            )
        return [(str(member), int(score)) for member, score in found]

    async def forget_thread(self, site: str, story: str, author: str, parent: str | None) -> None:
        """The author's latest comment in the thread is none civility has: no comment of theirs
        there is a webhook's or an id-less EDIT's to take."""
        with store_errors():
            await self.redis.delete(self._thread_key(site, story, author, parent))

    def _link_keys(self, site: str, comment_id: str) -> list[str]:
        comment = self.keys.comment(site, comment_id)
        return [self.keys.site(site), self.keys.coral_link(site, comment_id), comment]

    async def _write(
        self,
        site: str,
        comment_id: str,
        keep_seconds: int,
        fields: list[str | int],
        named: tuple[str, str, int] | None = None,
        now_ms: int = 0,
    ) -> None:
        """Write the link's ``fields``, and ``named``: another name of the comment (its kind,
        ``coral`` or ``thread``, its key and lifetime in ms), in one script."""
        keys = self._link_keys(site, comment_id)
        kind, lifetime_ms = "", 0
        if named is not None:
            kind, key, lifetime_ms = named
            keys.append(key)
        if kind == "coral":
            # Coral's ids may be what the comment's waiting decision waits for.
            keys += [self.keys.deliveries_due(site), self.keys.delivery_line(site, comment_id)]
        args: list[str | int] = [keep_seconds * 1000, comment_id, lifetime_ms, kind, now_ms]
        args += [self.keys.site_prefix(site), *fields]
        # Nothing is written for a site deleted since its record was read (a process keeps it a
        # second): the caller answers 404, as for any other write.
        if not await self._run("coral_link", keys, args):
            raise SiteNotFound(site)

    async def mark(
        self,
        site: str,
        comment_id: str,
        thread: tuple[str, str, str | None],
        keep_seconds: int,
        now_ms: int,
        text: str,
        edited_version: int | None = None,
    ) -> None:
        """The comment came from Coral: its decisions go back to Coral, not to a webhook; and it
        is among its author's comments in the thread (story, author, parent) from ``now_ms`` on,
        in the same script, so a site deleted meanwhile gets neither. ``text`` is what Coral's
        phase sent; after an edit (``edited_version``) the revision decisions go to waits for
        Coral's revision of it."""
        fields: list[str | int] = ["origin", "coral", "text", coral.text_digest(text)]
        if edited_version is not None:
            # The edit taken is the text Coral stores next: one withheld before is replaced.
            fields += ["revision_id", "", "edited_version", edited_version, "withheld", ""]
        thread_key = self._thread_key(site, *thread)
        named = ("thread", thread_key, LATEST_SECONDS * 1000)
        await self._write(site, comment_id, keep_seconds, fields, named, now_ms)

    async def link(
        self, site: str, comment_id: str, coral: CoralIds, keep_seconds: int, now_ms: int
    ) -> None:
        """Both directions at once (one hash slot, one script); when the ids change, a decision
        on the comment waiting for its next retry is due at ``now_ms`` instead."""
        fields: list[str | int] = ["origin", "coral", "coral_id", coral.comment_id]
        fields += ["revision_id", coral.revision_id]
        named = ("coral", self.keys.coral_comment(site, coral.comment_id), keep_seconds * 1000)
        await self._write(site, comment_id, keep_seconds, fields, named, now_ms)

    async def of(self, site: str, comment_id: str) -> CoralLink | None:
        """None for a comment that did not come from Coral."""
        with store_errors():
            stored = await self.redis.hgetall(self.keys.coral_link(site, comment_id))
        if not stored:
            return None
        coral_id = str(stored["coral_id"]) if stored.get("coral_id") else None
        revision = str(stored.get("revision_id") or "")
        return CoralLink(
            CoralIds(coral_id, revision) if coral_id and revision else None,
            sent_at=int(stored.get("sent_at") or 0),
            reached_at=int(stored.get("reached_at") or 0),
            sent_status=str(stored.get("sent_status") or ""),
            answered_at=int(stored.get("answered_at") or 0),
            calling_status=str(stored.get("calling_status") or ""),
            in_flight=int(stored.get("in_flight") or 0),
            resend_version=int(stored.get("resend_version") or 0),
            coral_id=coral_id,
            text=str(stored["text"]) if stored.get("text") else None,
            edited_version=int(stored.get("edited_version") or 0),
            check_text=bool(stored.get("edited_version") or stored.get("check_text")),
            withheld=bool(stored.get("withheld")),
        )

    async def unsure(self, site: str, comment_ids: list[str], keep_seconds: int) -> None:
        """Coral may have edited any of these comments (civility could not tell which): each
        one's decisions wait for a revision whose text is the one civility moderated."""
        for comment_id in comment_ids:
            fields: list[str | int] = ["revision_id", "", "check_text", 1, "withheld", 1]
            await self._write(site, comment_id, keep_seconds, fields)

    async def sent(self, site: str, comment_id: str, decided_at_ms: int, keep_seconds: int) -> None:
        """Civility's decision made at ``decided_at_ms`` is done with without a call (one made
        is noted by ``answered``): delivered without one, or given up (see
        ``CoralDesk.webhook``)."""
        fields: list[str | int] = [item for pair in _given_up(decided_at_ms) for item in pair]
        await self._write(site, comment_id, keep_seconds, fields)

    def _call_keys(self, site: str, comment_id: str) -> list[str]:
        return [
            self.keys.site(site),
            self.keys.coral_link(site, comment_id),
            self.keys.history(site, comment_id),
        ]

    async def current(
        self, site: str, comment_id: str, version: int, status: str = "", decided_at_ms: int = 0
    ) -> bool:
        """Whether the decision that made the comment's ``version`` (at ``decided_at_ms``) is
        still its latest (a reopen aside, which Coral cannot take); if so, and ``status`` is
        given, a call that sets it in Coral is about to be made (see ``CoralLink``), noted in the
        same step. A decision replaced is given up: no call of it is in flight any more."""
        keys = self._call_keys(site, comment_id)
        args: list[str | int] = [version, status, decided_at_ms, coral.ACTOR]
        found = int(await self._run("coral_current", keys, args))
        if found < 0:
            raise SiteNotFound(site)
        return found == 1

    async def answered(
        self,
        site: str,
        comment_id: str,
        version: int,
        status: str,
        decided_at_ms: int,
        call: CoralCall | None,
        done: bool,
    ) -> None:
        """The call made for the decision that made ``version``, setting ``status``, has ended:
        answered (``call``), or failed; ``done`` when the decision is done with (answered, or
        given up), which notes it as ``sent`` does, in the same step; and a decision of Coral's
        moderators recorded during the call is noted to be carried back into Coral."""
        fields: list[str | int] = []
        if done:
            fields += [item for pair in _given_up(decided_at_ms) for item in pair]
        if call is not None:
            fields += ["reached_at", call.started_at, "answered_at", call.answered_at]
            fields += ["sent_status", call.status]
        answered = "1" if call is not None else ""
        args: list[str | int] = [version, status, coral.ACTOR, answered, *fields]
        if int(await self._run("coral_answered", self._call_keys(site, comment_id), args)) < 0:
            raise SiteNotFound(site)

    def waited_on(
        self, site: str, comment_id: str, link: CoralLink, last_try_of: int | None = None
    ) -> WaitedOn:
        """The link's hash and Coral's ids in ``link``: what an attempt waiting for them read.
        On the last try of the decision made at ``last_try_of`` (ms), the link says it was given
        up (as ``sent`` does) in the same step as it is dead-lettered, and not when a webhook
        linked the ids during the attempt, which makes it retried at once instead."""
        revision = link.ids.revision_id if link.ids is not None else ""
        ids = {"coral_id": link.coral_id or "", "revision_id": revision}
        given_up = dict(_given_up(last_try_of)) if last_try_of is not None else {}
        return WaitedOn(self.keys.coral_link(site, comment_id), ids, given_up)

    async def comment_of(self, site: str, coral_id: str) -> str | None:
        with store_errors():
            value = await self.redis.get(self.keys.coral_comment(site, coral_id))
        return str(value) if value else None


def _given_up(decided_at_ms: int) -> list[tuple[str, str | int]]:
    """The link's fields once civility's decision made at ``decided_at_ms`` has reached Coral
    or been given up: no longer on its way, and no call of it in flight."""
    return [("sent_at", decided_at_ms), ("calling_status", "")]
