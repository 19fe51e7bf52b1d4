"""What a site's live event stream says about each audit entry: which comment changed or was
claimed, by whom, and its new state and version, or that the model's evidence spans of a comment
were stored after its verdict. Never the comment's text, its spans or a moderator's note: a
console reads the comment through the API, which checks the token for that site."""

from collections.abc import Mapping
from typing import Any

from service.times import iso_from_ms

LiveEvent = dict[str, Any]

LEASE_ACTIONS = {"claim": "comment.claimed", "release": "comment.released"}
CHANGED = "comment.changed"
EVIDENCE = "comment.evidence"


def live_event(entry_id: str, fields: Mapping[str, str], names: Mapping[str, str]) -> LiveEvent:
    """The public form of one audit entry; ``names`` gives moderators' names by id."""
    action = fields.get("action", "")
    actor = fields.get("actor", "")
    event: LiveEvent = {
        "id": entry_id,
        "type": EVIDENCE if action == "evidence" else LEASE_ACTIONS.get(action, CHANGED),
        "comment_id": fields.get("comment_id", ""),
        "action": action,
        "actor": actor,
        "actor_name": names.get(actor),
        "at": _iso(fields.get("at")),
    }
    if action in LEASE_ACTIONS:
        event["lease_until"] = _iso(fields.get("lease_until"))
    elif action != "evidence":
        event["state"] = fields.get("to_state") or None
        event["version"] = int(fields["version"]) if fields.get("version") else None
    return event


def _iso(ms: str | None) -> str | None:
    return iso_from_ms(ms) if ms else None
