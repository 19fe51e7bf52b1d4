"""Write records for tests and benchmarks: what intake and a decision hand the store, with
plain defaults, so each caller names only what it is about (the benchmarks import them too)."""

from typing import Any

from service.domain import Author, Moderator, Policy, Site, State
from service.store import Store
from service.store.records import DecisionWrite, IntakeWrite, Observation, SiteRecord
from service.times import from_ms
from service.transitions import EVENT_TYPES, Event, sources_argument

ACTIONS = {State.APPROVED: "approve", State.REJECTED: "reject", State.SPAM: "spam"}


def site_record(
    site_id: str, now_ms: int, secret: str = "whsec_test", callback_url: str | None = None
) -> SiteRecord:
    """A site with the default policy, created at ``now_ms``; its API key's hash is
    ``hash-of-<site_id>``."""
    moment = from_ms(now_ms)
    site = Site(
        id=site_id,
        name=site_id.title(),
        callback_url=callback_url,
        policy=Policy(),
        created_at=moment,
        updated_at=moment,
    )
    return SiteRecord(site, secret, None, 0, f"hash-of-{site_id}")


def intake_write(
    comment_id: str, now_ms: int, state: State = State.PENDING, **fields: Any
) -> IntakeWrite:
    """A new comment's intake at ``now_ms`` in ``state``; ``fields`` replace any default."""
    text = fields.pop("text", "A civil remark about the article.")
    defaults: dict[str, Any] = {
        "text_hash": f"hash:{text}",
        "article_id": "a1",
        "parent_id": None,
        "author": Author(id="reader-1"),
        "lang": "en",
        "reasons": [] if state is State.APPROVED else ["NEW_AUTHOR"],
        "scores": {"spam": 0.1, "toxicity": 0.2},
        "evidence": {},
        "model": "test-model-1",
        "priority": 0.2,
        "created_at_ms": now_ms,
        "event_id": f"evt-{comment_id}",
        "edit_sources": sources_argument(Event.EDIT),
        "windows": (),
        "assumed": Observation(),
        "min_approved": 0,
    }
    return IntakeWrite(
        comment_id=comment_id,
        text=text,
        state=state,
        now_ms=now_ms,
        event_type=EVENT_TYPES[state],
        **{**defaults, **fields},
    )


def decision_write(
    comment_id: str, now_ms: int, target: State = State.APPROVED, **fields: Any
) -> DecisionWrite:
    """A moderator's decision on ``comment_id`` at ``now_ms``; ``fields`` replace any default."""
    action = fields.pop("action", ACTIONS[target])
    defaults: dict[str, Any] = {
        "actor": "mod_1",
        "expected_version": None,
        "reasons": ["OFF_TOPIC"] if target is State.REJECTED else [],
        "note": None,
        "event_id": f"evt-{action}-{comment_id}",
    }
    return DecisionWrite(
        comment_id=comment_id,
        target=target,
        action=action,
        now_ms=now_ms,
        event_type=EVENT_TYPES[target],
        sources=sources_argument(Event(action)),
        **{**defaults, **fields},
    )


async def list_moderators(store: Store, site_id: str, *moderator_ids: str) -> None:
    """List moderators of these ids on the site, as the admin API adds them: a claim takes
    leases only for a moderator its site lists."""
    for moderator_id in moderator_ids:
        moderator = Moderator(
            id=moderator_id, site_id=site_id, name=moderator_id, created_at=from_ms(0)
        )
        await store.add_moderator(moderator, f"token-of-{site_id}-{moderator_id}")
