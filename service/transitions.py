"""The one table of allowed state changes, and the outbox event type each resulting state emits.

Scripts receive the allowed source states from here and check them atomically inside Redis, so
this table is the only place that knows which change may follow which state.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.domain import Action, State

NEW = "new"
"""The source of a comment that does not exist yet, as the scripts spell it."""


class Event(StrEnum):
    CREATE = "create"
    EDIT = "edit"
    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    REOPEN = "reopen"
    """A moderator sends a decided comment back to the queue, to be decided again."""
    REPORT = "report"
    """Readers' reports reach the site's threshold: the comment stays published, in the
    ``reported`` queue, for a moderator to keep (approve) or take down (reject, spam)."""
    SECOND_LOOK = "second_look"
    """The semantic stage's blend holds a comment the lexical verdict published."""
    BAN = "ban"
    """A ban rejects the author's held comments (recorded as a moderator's ``reject``)."""


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[str]
    """States (or ``NEW``) the comment may be in before the change."""
    targets: frozenset[State]
    """States the change may lead to."""


_EVERY_STATE = frozenset(State)
_EVERY_SOURCE = frozenset(state.value for state in State)
_DECIDED = _EVERY_SOURCE - {State.PENDING.value}

TRANSITIONS: Mapping[Event, Transition] = {
    Event.CREATE: Transition(frozenset({NEW}), _EVERY_STATE),
    # A host edit is moderated again from wherever the comment stood.
    Event.EDIT: Transition(_EVERY_SOURCE, _EVERY_STATE),
    # Deciding an already decided comment is allowed: that is the undo, and history keeps both.
    Event.APPROVE: Transition(_EVERY_SOURCE, frozenset({State.APPROVED})),
    Event.REJECT: Transition(_EVERY_SOURCE, frozenset({State.REJECTED})),
    Event.SPAM: Transition(_EVERY_SOURCE, frozenset({State.SPAM})),
    # Only a decided comment can go back: a held one is in the queue already.
    Event.REOPEN: Transition(_DECIDED, frozenset({State.PENDING})),
    # Readers see published comments only, so only those can be reported.
    Event.REPORT: Transition(frozenset({State.APPROVED.value}), frozenset({State.APPROVED})),
    # Only what the model published is looked at again, and a second look never rejects: a
    # person decides. (Its script also refuses a comment a moderator decided.)
    Event.SECOND_LOOK: Transition(frozenset({State.APPROVED.value}), frozenset({State.PENDING})),
    # The ban lists the held comments before it rejects them one by one: one a moderator decided
    # in between keeps that decision.
    Event.BAN: Transition(frozenset({State.PENDING.value}), frozenset({State.REJECTED})),
}

EVENT_TYPES: Mapping[State, str] = {
    State.APPROVED: "comment.approved",
    State.REJECTED: "comment.rejected",
    State.SPAM: "comment.spam",
    State.PENDING: "comment.held",
}
REPORTED_EVENT_TYPE = "comment.reported"
"""The event of a comment entering the ``reported`` queue (its state stays ``approved``)."""


def event_for(action: Action) -> Event:
    return Event(action.value)


def decided_state(event: Event) -> State:
    """The state a moderator's decision leads to: the one target its transition allows."""
    (target,) = TRANSITIONS[event].targets
    return target


def sources_argument(event: Event) -> str:
    """The allowed source states as one script argument (comma separated, sorted)."""
    return ",".join(sorted(TRANSITIONS[event].sources))
