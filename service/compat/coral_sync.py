"""Civility's decisions into Coral: how the worker delivers an event of a comment from Coral.

A moderator's decision in civility becomes ``approveComment`` or ``rejectComment`` in Coral,
through the same delivery line as a webhook (ordered per comment, retried with backoff, dead
letter after the last try). Every other event needs nothing from Coral: the phase already gave
Coral the automatic verdict, and a decision made in Coral is already Coral's.
"""

from collections.abc import Mapping

import aiohttp

from service.compat import coral, coral_graphql
from service.compat.coral_links import CoralLink
from service.delivery import Outcome
from service.domain import State
from service.transitions import EVENT_TYPES

APPROVING = EVENT_TYPES[State.APPROVED]
REJECTING = frozenset({EVENT_TYPES[State.REJECTED], EVENT_TYPES[State.SPAM]})
NOT_YET_LINKED = "Coral has not named this comment yet (its webhooks link it); will retry"


def made_in_civility(decided_by: str) -> bool:
    """Decided by a moderator in civility: not the automatic verdict, not Coral's own."""
    return not decided_by.startswith("auto") and decided_by != coral.ACTOR


def needs_coral(record: Mapping[str, str]) -> bool:
    """A moderator's decision made in civility (not the automatic verdict, not Coral's own)."""
    is_decision = record["type"] == APPROVING or record["type"] in REJECTING
    return is_decision and made_in_civility(record.get("decided_by", ""))


async def deliver(
    session: aiohttp.ClientSession,
    endpoint: coral_graphql.Endpoint,
    record: Mapping[str, str],
    link: CoralLink,
) -> Outcome:
    if not needs_coral(record):
        return Outcome(delivered=True)
    if link.ids is None:
        return Outcome(delivered=False, error=NOT_YET_LINKED)
    return await coral_graphql.decide(
        session,
        endpoint,
        approve=record["type"] == APPROVING,
        comment_id=link.ids.comment_id,
        revision_id=link.ids.revision_id,
        mutation_id=record["id"],
    )
