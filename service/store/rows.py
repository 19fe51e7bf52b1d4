"""Stored hashes read back as the API's comments, and the scores' stored form."""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from service.domain import (
    STORED,
    Author,
    Comment,
    CommentArticle,
    HistoryEntry,
    Report,
    SecondLook,
    SecondLookState,
    State,
)
from service.times import from_ms

SCORE_FIELD = "score:"
"""Each score is a field of its own (``score:toxicity``): one JSON of every label would exceed
Redis's ``hash-max-listpack-value`` and turn the whole hash into a far larger hashtable."""


def encode_scores(scores: Mapping[str, float]) -> str:
    """The ingest script's form, ``label=score;`` each; ``repr`` is JSON's exact float text."""
    for label in scores:
        if "=" in label or ";" in label:
            raise ValueError(f"score label {label!r} cannot be stored")
    return "".join(f"{label}={float(score)!r};" for label, score in scores.items())


def encode_evidence(evidence: Mapping[str, Sequence[tuple[int, int]]]) -> str:
    if not evidence:
        return "{}"  # most comments: json.dumps({}) without the encoder's cost
    return json.dumps({label: [list(span) for span in spans] for label, spans in evidence.items()})


def decode_scores(fields: Mapping[str, str]) -> dict[str, float]:
    """The scores of either layout: ``score:<label>`` fields, or the JSON of a comment stored
    before them."""
    stored = fields.get("scores")
    if stored is not None:
        return cast(dict[str, float], json.loads(stored))
    return {
        name[len(SCORE_FIELD) :]: float(value)
        for name, value in fields.items()
        if name.startswith(SCORE_FIELD)
    }


def comment_from_fields(
    fields: Mapping[str, str],
    *,
    history: tuple[HistoryEntry, ...] | None = None,
    reports: tuple[Report, ...] | None = None,
    claimed_by: str | None = None,
    lease_until: datetime | None = None,
) -> Comment:
    evidence = json.loads(fields.get("evidence") or "{}")
    return Comment(
        id=fields["id"],
        article_id=fields["article_id"],
        article=CommentArticle(
            id=fields["article_id"],
            title=fields.get("article_title"),
            url=fields.get("article_url"),
        ),
        parent_id=fields.get("parent_id") or None,
        author=Author.model_validate_json(fields["author"], context=STORED),
        text=fields["text"],
        state=State(fields["state"]),
        reasons=tuple(json.loads(fields["reasons"])),
        scores=decode_scores(fields),
        evidence={label: tuple(tuple(span) for span in spans) for label, spans in evidence.items()},
        model=fields.get("model") or None,
        version=int(fields["version"]),
        decided_by=fields["decided_by"],
        decided_at=from_ms(fields["decided_at"]),
        created_at=from_ms(fields["created_at"]),
        updated_at=from_ms(fields["updated_at"]),
        edited_at=from_ms(fields["edited_at"]) if fields.get("edited_at") else None,
        lang=fields.get("lang") or None,
        priority=float(fields.get("priority") or 0.0),
        queued_at=from_ms(float(fields["queued_at"])) if fields.get("queued_at") else None,
        history=history,
        report_count=int(fields.get("reports") or 0),
        reports=reports,
        claimed_by=claimed_by,
        lease_until=lease_until,
        second_look=second_look_from_fields(fields),
    )


def second_look_from_fields(fields: Mapping[str, str]) -> SecondLook | None:
    """The comment's second look, if it was ever queued for one."""
    state = fields.get("look_state")
    if not state:
        return None
    scores = fields.get("look_scores")
    looked_at = fields.get("look_at")
    return SecondLook(
        state=SecondLookState(state),
        queued_at=from_ms(fields["look_queued_at"]) if fields.get("look_queued_at") else None,
        looked_at=from_ms(looked_at) if looked_at else None,
        scores=json.loads(scores) if scores else None,
        model=fields.get("look_model") or None,
    )


def history_entry(entry: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        version=entry["version"],
        at=from_ms(entry["at"]),
        actor=entry["actor"],
        action=entry["action"],
        from_state=entry["from_state"],
        to_state=entry["to_state"],
        reasons=tuple(entry["reasons"]),
        note=entry["note"],
        model=entry["model"],
        previous_text=entry.get("previous_text"),
        edited_at=from_ms(entry["edited_at"]) if "edited_at" in entry else None,
    )


def creation_entry(fields: Mapping[str, str]) -> HistoryEntry:
    """The creation of a comment that has not changed since: the scripts leave it to the comment
    hash, not the history list, until the first change (``keep_creation`` in the Lua library)."""
    return history_entry(
        {
            "version": int(fields["version"]),
            "at": fields["decided_at"],
            "actor": fields["decided_by"],
            "action": "create",
            "from_state": None,
            "to_state": fields["state"],
            "reasons": json.loads(fields["reasons"]),
            "note": None,
            "model": fields.get("model"),
            # Until the first change (or a later date of the same text) the hash's edit time is
            # the one the comment was created with.
            **({"edited_at": fields["edited_at"]} if "edited_at" in fields else {}),
        }
    )


def text_fields(fields: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    # The store's client always decodes responses (checked in Store.__init__).
    return cast(dict[str, str], fields)


def pairs(flat: Sequence[str]) -> dict[str, str]:
    """A flat Redis reply ``[field, value, field, value, ...]`` as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def flatten(fields: Mapping[str, str | int]) -> list[str | int]:
    return [item for pair in fields.items() for item in pair]
