"""The API's enumerations: states, queues, orders, actions, reasons and statuses."""

from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SPAM = "spam"


class Queue(StrEnum):
    PENDING = "pending"
    REPORTED = "reported"


class Order(StrEnum):
    PRIORITY = "priority"
    OLDEST = "oldest"


class Action(StrEnum):
    """A moderator's decision; the state each leads to is in ``service.transitions``."""

    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    REOPEN = "reopen"


class Reason(StrEnum):
    """Machine-readable reason codes of automatic verdicts."""

    BANNED_WORD = "BANNED_WORD"
    ARTICLE_CLOSED = "ARTICLE_CLOSED"
    AUTHOR_BANNED = "AUTHOR_BANNED"
    SPAM = "SPAM"
    TOXIC = "TOXIC"
    DUPLICATE = "DUPLICATE"
    FLOOD = "FLOOD"
    SUSPECT_WORD = "SUSPECT_WORD"
    LINKS = "LINKS"
    NEW_AUTHOR = "NEW_AUTHOR"
    AUTHOR_PREMOD = "AUTHOR_PREMOD"
    PREMOD = "PREMOD"
    REPORTED = "REPORTED"
    LANGUAGE = "LANGUAGE"
    """Written in a language the model does not read: held for a person, never scored."""
    SECOND_LOOK = "SECOND_LOOK"
    """Published on the lexical verdict, then held when the semantic stage's blend crossed a
    hold or reject threshold (the reasons after it say which: ``TOXIC``, ``SPAM``)."""


class AuthorStatus(StrEnum):
    ACTIVE = "active"
    PREMOD = "premod"
    BANNED = "banned"
    TRUSTED = "trusted"


class ReportReason(StrEnum):
    """Why a reader flagged a published comment."""

    OFFENSIVE = "offensive"
    ABUSIVE = "abusive"
    SPAM = "spam"
    OTHER = "other"


class SecondLookState(StrEnum):
    """Where a published comment stands with the semantic stage's second look."""

    QUEUED = "queued"
    DONE = "done"
    """Looked at: the blend kept it published."""
    HELD = "held"
    """Looked at: the blend moved it to pending (reason ``SECOND_LOOK``)."""
    SKIPPED = "skipped"
    """Not looked at: a moderator decided it first."""
    FAILED = "failed"
    """Not looked at: the stage failed on its text alone, each time it was tried."""
