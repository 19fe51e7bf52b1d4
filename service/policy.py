"""The moderation policy: scores plus context in, a verdict with every reason that applied out.

Pure (no I/O) so every rule is unit-tested. Rules run in the order WordPress and Coral Talk use:
banned words, closed article and banned author reject; spam or toxicity over the reject threshold
give ``spam`` or ``rejected``; duplicates, floods, suspect words, too many links, new or
pre-moderated authors, pre-moderation, a language the model does not read and scores over the
hold threshold hold the comment as ``pending``; anything else is ``approved``. The first rule
that applies decides the state, and the verdict still lists every reason that applied, so a
moderator sees the whole picture. A trusted author skips every hold; the rejecting rules (banned
words included) still apply.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from classifier.normalize import fold_characters, fold_characters_with_offsets
from service.domain import AuthorStatus, Policy, Reason, State

SPAM_LABEL = "spam"
"""Every other label is a toxicity attribute and gives ``TOXIC``."""

HOLD = "hold"
REJECT = "reject"

Thresholds = Mapping[str, Mapping[str, float]]
"""Per label, the ``hold`` and ``reject`` probabilities (the model card's suggested ones)."""

Span = tuple[int, int]

# A link ends where another begins, not only at a space: "https://a.example,https://b.example"
# and "https://a.example|www.b.example" are two links each. A "www." where a link's host, path
# or query may hold one ("//www.", ".www.", "-www.", "=www.") is part of the link it is in.
_LINK = re.compile(
    r"(?:https?://|www\.)(?:(?!https?://|(?<![\w/.=?&%#~+:@-])www\.)[^\s<>\"'])+",
    re.IGNORECASE,
)
_REJECTING = (Reason.BANNED_WORD, Reason.ARTICLE_CLOSED, Reason.AUTHOR_BANNED)

LIMITS_KEPT = 64
"""Merged thresholds kept (one per model and site policy in use), so intake does not merge the
same two mappings again for every comment."""


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What the store knows about a comment's surroundings when it arrives."""

    text: str
    author_status: AuthorStatus = AuthorStatus.ACTIVE
    author_approved: int = 0
    article_closed: bool = False
    article_premod: bool = False
    duplicate: bool = False
    author_flood: bool = False
    ip_flood: bool = False
    language_supported: bool = True
    """False: the text is in a language the model does not read (its scores are empty)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    reasons: tuple[Reason, ...]
    evidence: Mapping[str, tuple[Span, ...]] = field(default_factory=dict)
    """Spans of the banned and suspect words found (keys ``banned_word``, ``suspect_word``)."""


def effective_thresholds(model: Thresholds, policy: Policy) -> dict[str, dict[str, float]]:
    """The model's suggested thresholds with the site's per-label overrides applied."""
    merged = {label: dict(levels) for label, levels in model.items()}
    for level, overrides in ((HOLD, policy.hold), (REJECT, policy.reject)):
        for label, value in overrides.items():
            merged.setdefault(label, {})[level] = value
    return merged


_kept_limits: dict[tuple[int, int], tuple[Thresholds, Policy, Thresholds]] = {}


def _limits(thresholds: Thresholds, policy: Policy) -> Thresholds:
    """``effective_thresholds``, merged once per pair of objects: intake decides comment after
    comment with the model's same thresholds and the site's same cached policy (both immutable
    in use: a reload or a policy change brings new objects)."""
    key = (id(thresholds), id(policy))
    kept = _kept_limits.get(key)
    # The entry holds both objects, so their ids cannot be reused while it is kept.
    if kept is not None and kept[0] is thresholds and kept[1] is policy:
        return kept[2]
    if len(_kept_limits) >= LIMITS_KEPT:
        _kept_limits.clear()
    limits = effective_thresholds(thresholds, policy)
    _kept_limits[key] = (thresholds, policy, limits)
    return limits


def decide(
    scores: Mapping[str, float], context: PolicyContext, policy: Policy, thresholds: Thresholds
) -> Verdict:
    """The verdict for one comment; ``thresholds`` are the model's, ``policy`` may override them."""
    limits = _limits(thresholds, policy)
    banned = find_words(context.text, policy.banned_words)
    suspect = find_words(context.text, policy.suspect_words)
    reasons: list[Reason] = []

    def add(reason: Reason, applies: bool) -> None:
        if applies and reason not in reasons:
            reasons.append(reason)

    add(Reason.BANNED_WORD, bool(banned))
    add(Reason.ARTICLE_CLOSED, context.article_closed)
    add(Reason.AUTHOR_BANNED, context.author_status is AuthorStatus.BANNED)
    spam_rejected = _over(scores, limits, REJECT, spam=True)
    toxic_rejected = _over(scores, limits, REJECT, spam=False)
    add(Reason.SPAM, spam_rejected)
    add(Reason.TOXIC, toxic_rejected)

    if context.author_status is not AuthorStatus.TRUSTED:
        add(Reason.DUPLICATE, context.duplicate)
        add(Reason.FLOOD, context.author_flood or context.ip_flood)
        add(Reason.SUSPECT_WORD, bool(suspect))
        add(Reason.LINKS, count_links(context.text) > policy.max_links)
        add(Reason.NEW_AUTHOR, is_new_author(context, policy))
        add(Reason.AUTHOR_PREMOD, context.author_status is AuthorStatus.PREMOD)
        add(Reason.PREMOD, policy.mode == "pre" or context.article_premod)
        add(
            Reason.LANGUAGE,
            not context.language_supported and policy.other_languages == "hold",
        )
        add(Reason.SPAM, _over(scores, limits, HOLD, spam=True))
        add(Reason.TOXIC, _over(scores, limits, HOLD, spam=False))

    evidence = {
        name: spans for name, spans in (("banned_word", banned), ("suspect_word", suspect)) if spans
    }
    return Verdict(_state(reasons, spam_rejected, toxic_rejected), tuple(reasons), evidence)


def decide_spam(scores: Mapping[str, float], policy: Policy, thresholds: Thresholds) -> Verdict:
    """The verdict on a message the site does not publish (a contact form, a signup): ``spam``
    when its spam score reaches the site's hold or reject threshold, else ``approved``. Nobody
    moderates such a message, so nothing is held, and toxicity, words and the rules about
    comments have no say: a rude complaint to the editors is still a message to read."""
    if flagged(scores, thresholds, policy, spam=True):
        return Verdict(State.SPAM, (Reason.SPAM,))
    return Verdict(State.APPROVED, ())


def flagged(
    scores: Mapping[str, float], thresholds: Thresholds, policy: Policy, *, spam: bool
) -> bool:
    """Whether the model alone would have held (or rejected) the text: spam, or any toxicity
    label, at or over its hold threshold (the site's override applied)."""
    limits = effective_thresholds(thresholds, policy)
    return _over(scores, limits, HOLD, spam=spam) or _over(scores, limits, REJECT, spam=spam)


def flagged_labels(
    scores: Mapping[str, float], thresholds: Thresholds, policy: Policy
) -> tuple[str, ...]:
    """The labels at or over their hold (or reject) threshold, the site's overrides applied:
    what a held or rejected comment's model evidence explains (a label under its limits did not
    make the verdict, and its strongest words would mark what a moderator need not look at)."""
    limits = _limits(thresholds, policy)
    return tuple(
        label
        for label, score in scores.items()
        if any(
            limit is not None and score >= limit
            for limit in (limits.get(label, {}).get(HOLD), limits.get(label, {}).get(REJECT))
        )
    )


def second_look_reasons(
    scores: Mapping[str, float],
    thresholds: Thresholds,
    policy: Policy,
    author_status: AuthorStatus = AuthorStatus.ACTIVE,
) -> tuple[Reason, ...]:
    """Why the blended scores of a published comment hold it (empty: it stays published).

    A second look only ever holds: over a reject threshold too, a person decides, since the
    comment was already public. A trusted author skips holds at intake, so only scores over a
    reject threshold hold a trusted author's comment here."""
    limits = effective_thresholds(thresholds, policy)
    levels = (REJECT,) if author_status is AuthorStatus.TRUSTED else (HOLD, REJECT)
    found = [
        reason
        for reason, spam in ((Reason.TOXIC, False), (Reason.SPAM, True))
        if any(_over(scores, limits, level, spam=spam) for level in levels)
    ]
    return (Reason.SECOND_LOOK, *found) if found else ()


def _state(reasons: list[Reason], spam_rejected: bool, toxic_rejected: bool) -> State:
    if any(reason in reasons for reason in _REJECTING):
        return State.REJECTED
    if spam_rejected:
        return State.SPAM
    if toxic_rejected:
        return State.REJECTED
    return State.PENDING if reasons else State.APPROVED


def _over(scores: Mapping[str, float], limits: Thresholds, level: str, *, spam: bool) -> bool:
    for label, score in scores.items():
        if (label == SPAM_LABEL) != spam:
            continue
        limit = limits.get(label, {}).get(level)
        if limit is not None and score >= limit:
            return True
    return False


def is_new_author(context: PolicyContext, policy: Policy) -> bool:
    """Fewer approved comments than the site asks for (trusted authors never count as new)."""
    return (
        context.author_status is not AuthorStatus.TRUSTED
        and context.author_approved < policy.new_author_min_approved
    )


def count_links(text: str) -> int:
    # Most comments hold no link: two substring scans rule that out at a fraction of the
    # pattern's cost. Only "W" lowers to "w" (and nothing else to "www."), so the lowered scan
    # finds every "www." the case-insensitive pattern would; "https?://" holds "://".
    if "://" not in text and "www." not in text.lower():
        return 0
    return len(_LINK.findall(text))


def priority(scores: Mapping[str, float]) -> float:
    """Queue priority: the highest label score, so the riskiest comment comes first."""
    return max(scores.values(), default=0.0)


@lru_cache(maxsize=16)
def folded(text: str) -> str:
    """``text`` in the form words and duplicates are compared in, kept for the few texts being
    decided: each is read for banned words, suspect words and its duplicate window."""
    return fold_characters(text)


def find_words(text: str, words: tuple[str, ...]) -> tuple[Span, ...]:
    """Spans of whole-word, case-insensitive matches of any of ``words`` (phrases allowed).

    Text and words are compared in the form the model reads (invisible characters removed,
    NFKC, look-alikes folded), so a zero-width space, a fullwidth letter or a decomposed accent
    does not hide a word; the spans are of the text as written."""
    pattern = _word_pattern(words) if words else None
    if pattern is None:
        return ()
    form = folded(text)
    # Removing an invisible character joins the words it parted ("you\u200bidiot"): the text
    # as written is read too, unless folding only lowered it.
    spans = [] if form == text.lower() else [match.span() for match in pattern.finditer(text)]
    # The offsets cost several times the folding (17 ms for 20,000 accented characters), and
    # most comments hold no listed word: only a text that does pays for them.
    if pattern.search(form) is not None:
        form, offsets = fold_characters_with_offsets(text)
        for match in pattern.finditer(form):
            end = offsets[match.end() - 1] + 1
            # A folded accent drops its combining mark, which still belongs to the word written.
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1
            spans.append((offsets[match.start()], end))
    found: list[Span] = []
    for start, end in sorted(spans):
        if found and start < found[-1][1]:
            found[-1] = (found[-1][0], max(end, found[-1][1]))
        else:
            found.append((start, end))
    return tuple(found)


@lru_cache(maxsize=256)
def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    forms = {fold_characters(word).strip() for word in words} - {""}
    if not forms:
        return None
    # Longest first so a phrase wins over a word inside it; \w boundaries keep "ass" out of "class".
    ordered = sorted(forms, key=lambda word: (-len(word), word))
    # A phrase's words may be apart by any run of spaces or line breaks, as a reader sees them.
    alternatives = "|".join(r"\s+".join(map(re.escape, word.split())) for word in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
