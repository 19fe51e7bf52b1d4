"""Civility's decisions into Coral: how the worker delivers an event of a comment from Coral.

A moderator's decision in civility becomes ``approveComment`` or ``rejectComment`` in Coral,
through the same delivery line as a webhook (ordered per comment, retried with backoff, dead
letter after the last try). Every other event needs nothing from Coral: the phase already gave
Coral the automatic verdict, and a decision made in Coral is already Coral's, unless civility's
call was in flight when it came (Coral may have applied the call after it: it is carried back,
see ``CoralLink.resend_version``). A reopen cannot reach it: no mutation of Coral's puts a
comment back in its queue (its status is set only by those two), so Coral keeps the last
decision until civility's next one. A decision goes only
while it is the comment's latest (a reopen aside): sent after a later one, whoever made it, it
would undo that one in Coral.
"""

from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from service.compat import coral, coral_graphql
from service.compat.coral_links import CoralIds, CoralLink
from service.delivery import Outcome
from service.domain import State
from service.errors import UpstreamUnavailable
from service.transitions import EVENT_TYPES

APPROVING = EVENT_TYPES[State.APPROVED]
REJECTING = frozenset({EVENT_TYPES[State.REJECTED], EVENT_TYPES[State.SPAM]})
# Said of every try, the last one's too: the delivery's state tells whether it is retried.
NOT_YET_LINKED = "Coral has not named this comment yet: a webhook of Coral's about it links it"
NOT_YET_STORED = "Coral's comment does not have the text civility moderated yet"
WAITING = frozenset({NOT_YET_LINKED, NOT_YET_STORED})
"""What an attempt says when it waits for Coral's ids, which Coral's webhooks link."""
SUPERSEDED = "not carried into Coral: a later decision on the comment replaced it"
"""Said of a decision settled as delivered without a call: sent now, it would undo the later
one in Coral (civility's, which follows it there, or Coral's own)."""
NOT_DELIVERABLE = (
    "not carried into Coral: its comment has an edit civility did not take (which comment it "
    "edited was unclear, or it left no text); decide the comment in Coral"
)


def made_in_civility(decided_by: str) -> bool:
    """Decided by a moderator in civility: not the automatic verdict, not Coral's own."""
    return not decided_by.startswith("auto") and decided_by != coral.ACTOR


def needs_coral(record: Mapping[str, str]) -> bool:
    """A moderator's decision made in civility (not the automatic verdict, not Coral's own)."""
    is_decision = record["type"] == APPROVING or record["type"] in REJECTING
    return is_decision and made_in_civility(record.get("decided_by", ""))


def carried_back(record: Mapping[str, str], link: CoralLink) -> bool:
    """A decision of Coral's moderators that a call of civility's in flight when it came may
    have undone in Coral."""
    is_decision = record["type"] == APPROVING or record["type"] in REJECTING
    made_in_coral = record.get("decided_by", "") == coral.ACTOR
    return is_decision and made_in_coral and link.resend_version == int(record["version"])


def status_set(record: Mapping[str, str]) -> str:
    """The status in Coral a decision made in civility sets (Coral has no spam status)."""
    return coral.APPROVED if record["type"] == APPROVING else coral.REJECTED


async def deliver(
    session: aiohttp.ClientSession,
    endpoint: coral_graphql.Endpoint,
    record: Mapping[str, str],
    link: CoralLink,
    relink: Callable[[CoralIds], Awaitable[None]],
    current: Callable[[str], Awaitable[bool]],
) -> Outcome:
    """``relink`` keeps the revision found for an edited comment; ``current`` tells whether
    the decision is still the comment's latest and, given a status, notes in the same step
    that a call setting it in Coral is about to be made."""
    if not needs_coral(record) and not carried_back(record, link):
        return Outcome(delivered=True)
    if int(record.get("version") or 0) < link.edited_version:
        # Decided on a text the author has since edited: the edit's phase answer gave Coral
        # civility's verdict on the new text, which this decision must not overturn.
        return Outcome(delivered=True)
    if link.ids is None and not await current(""):
        # Before looking or waiting for Coral's ids: a replaced decision has nothing left to
        # wait for. With the ids at hand, the check before the call is the only one needed.
        return Outcome(delivered=True, error=SUPERSEDED)
    ids = link.ids
    if ids is None and link.coral_id is not None:
        # Edited: the revision of the text civility moderated, once Coral has stored it.
        try:
            found = await coral_graphql.comment(session, endpoint, link.coral_id)
        except UpstreamUnavailable as error:
            return Outcome(delivered=False, error=error.message)
        if found is None or not found.revision_id or not coral.reads_as(link.text, found.body):
            if found is not None and found.revision_id and link.withheld:
                # Coral stored the edit civility withheld: its text will not turn back into
                # civility's unless the author edits again, which the phase answers anew.
                return Outcome(delivered=False, error=NOT_DELIVERABLE, final=True)
            return Outcome(delivered=False, error=NOT_YET_STORED)
        ids = CoralIds(found.id, found.revision_id)
        await relink(ids)
    if ids is None:
        return Outcome(delivered=False, error=NOT_YET_LINKED)
    if not await current(status_set(record)):
        # Replaced (while this attempt looked for Coral's ids, or before it).
        return Outcome(delivered=True, error=SUPERSEDED)
    return await coral_graphql.decide(
        session,
        endpoint,
        approve=record["type"] == APPROVING,
        comment_id=ids.comment_id,
        revision_id=ids.revision_id,
        mutation_id=record["id"],
    )
