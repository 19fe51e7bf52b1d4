"""What a moderator's decision teaches: the one table from reasons to training labels.

A kept comment is neither spam nor toxic, and one marked spam is spam, whatever reason comes with
them. A rejection teaches what its reason says: ``OFF_TOPIC`` that the text is not toxic (a
moderator who found it toxic would have said so), ``PERSONAL_INFO`` nothing at all. A rejection
with no reason is taken as the site's word for toxic; one whose reason the table does not know
teaches nothing, since nobody can tell what it meant. Reasons are matched by code, ignoring case
and separators, so ``off-topic`` and ``Off topic`` are ``OFF_TOPIC``; the decision keeps the
words the moderator sent.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from service.domain import Action

Teaches = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ModeratorReason:
    code: str
    description: str
    teaches: Teaches

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "description": self.description, "teaches": dict(self.teaches)}


def _reason(code: str, description: str, **teaches: int) -> ModeratorReason:
    return ModeratorReason(code, description, MappingProxyType(teaches))


REASONS: tuple[ModeratorReason, ...] = (
    _reason("TOXIC", "Abusive, hateful or insulting", toxicity=1),
    _reason("INSULT", "Insults a person", toxicity=1, insult=1),
    _reason("THREAT", "Threatens or wishes harm to someone", toxicity=1, threat=1),
    _reason(
        "IDENTITY_ATTACK",
        "Attacks people for who they are (origin, religion, gender, ...)",
        toxicity=1,
        identity_attack=1,
    ),
    _reason("PROFANITY", "Obscene or profane language", toxicity=1, profanity=1),
    _reason("UNCIVIL", "Hostile or dismissive beyond what the site accepts", toxicity=1),
    _reason("SPAM", "Advertising, scams or link farming", spam=1),
    _reason("OFF_TOPIC", "Not about the article or the discussion", toxicity=0),
    _reason("PERSONAL_INFO", "Reveals someone's private information"),
    _reason("MISINFORMATION", "False claims presented as fact"),
    _reason("LEGAL", "Unlawful to publish (defamation, contempt of court)"),
    _reason("DUPLICATE", "Already posted"),
    _reason("LANGUAGE", "Not in a language the site publishes"),
    _reason("OTHER", "None of these"),
)
"""The reasons a moderator may give for a rejection, in the order a console offers them."""

BY_CODE: Mapping[str, ModeratorReason] = MappingProxyType({r.code: r for r in REASONS})

KEPT: Teaches = MappingProxyType({"spam": 0, "toxicity": 0})
IS_SPAM: Teaches = MappingProxyType({"spam": 1})
REJECTED_WITHOUT_REASON: Teaches = BY_CODE["TOXIC"].teaches
NOTHING: Teaches = MappingProxyType({})

_SEPARATORS = re.compile(r"[^A-Z0-9]+")


def reason_code(reason: str) -> str:
    """The code a moderator's words name: ``off-topic`` is ``OFF_TOPIC``."""
    return _SEPARATORS.sub("_", reason.upper()).strip("_")


def find(reason: str) -> ModeratorReason | None:
    return BY_CODE.get(reason_code(reason))


def teaches(action: Action, reason: str | None) -> Teaches:
    """The training labels a decision gives its text (empty: it teaches nothing)."""
    if action is Action.APPROVE:
        return KEPT
    if action is Action.SPAM:
        return IS_SPAM
    if action is Action.REOPEN:
        # Back in the queue, the comment is undecided: its earlier label is withdrawn.
        return NOTHING
    if reason is None:
        return REJECTED_WITHOUT_REASON
    known = find(reason)
    return known.teaches if known is not None else NOTHING
