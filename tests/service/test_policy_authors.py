"""The policy's author rules, pure: trusted authors skip holds, never the rejecting rules."""

from service.domain import AuthorStatus, Policy, Reason, State
from service.policy import PolicyContext, decide, flagged

THRESHOLDS = {
    "spam": {"hold": 0.5, "reject": 0.9},
    "toxicity": {"hold": 0.6, "reject": 0.95},
}
CALM = {"spam": 0.01, "toxicity": 0.02}


def context(status: AuthorStatus, text: str = "A calm remark", **flags: bool) -> PolicyContext:
    return PolicyContext(text=text, author_status=status, **flags)


def test_a_trusted_author_skips_every_hold() -> None:
    policy = Policy(mode="pre", suspect_words=("summit",), max_links=0, new_author_min_approved=5)
    held_scores = {"spam": 0.6, "toxicity": 0.7}
    text = "The summit, see https://example.org"
    trusted = decide(
        held_scores,
        context(AuthorStatus.TRUSTED, text, duplicate=True, author_flood=True),
        policy,
        THRESHOLDS,
    )
    assert (trusted.state, trusted.reasons) == (State.APPROVED, ())
    active = decide(
        held_scores,
        context(AuthorStatus.ACTIVE, text, duplicate=True, author_flood=True),
        policy,
        THRESHOLDS,
    )
    assert active.state is State.PENDING
    assert set(active.reasons) == {
        Reason.DUPLICATE,
        Reason.FLOOD,
        Reason.SUSPECT_WORD,
        Reason.LINKS,
        Reason.NEW_AUTHOR,
        Reason.PREMOD,
        Reason.SPAM,
        Reason.TOXIC,
    }


def test_a_trusted_author_is_still_rejected_by_banned_words_and_scores() -> None:
    policy = Policy(banned_words=("scoundrel",))
    banned = decide(CALM, context(AuthorStatus.TRUSTED, "What a scoundrel"), policy, THRESHOLDS)
    assert (banned.state, banned.reasons) == (State.REJECTED, (Reason.BANNED_WORD,))
    spam = decide({"spam": 0.99}, context(AuthorStatus.TRUSTED), policy, THRESHOLDS)
    assert (spam.state, spam.reasons) == (State.SPAM, (Reason.SPAM,))
    closed = decide(CALM, context(AuthorStatus.TRUSTED, article_closed=True), policy, THRESHOLDS)
    assert closed.state is State.REJECTED


def test_a_premoderated_author_is_held_with_its_reason() -> None:
    verdict = decide(CALM, context(AuthorStatus.PREMOD), Policy(), THRESHOLDS)
    assert (verdict.state, verdict.reasons) == (State.PENDING, (Reason.AUTHOR_PREMOD,))


def test_flagged_tells_whether_the_model_alone_would_have_stopped_the_text() -> None:
    policy = Policy()
    assert flagged({"spam": 0.5, "toxicity": 0.0}, THRESHOLDS, policy, spam=True)
    assert not flagged({"spam": 0.49, "toxicity": 0.99}, THRESHOLDS, policy, spam=True)
    assert flagged({"spam": 0.0, "toxicity": 0.6}, THRESHOLDS, policy, spam=False)
    assert not flagged({"spam": 0.99, "toxicity": 0.59}, THRESHOLDS, policy, spam=False)
    # The site's overrides count.
    strict = Policy(hold={"toxicity": 0.1})
    assert flagged({"toxicity": 0.2}, THRESHOLDS, strict, spam=False)
