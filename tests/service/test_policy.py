"""The policy alone: every rule, every reason code, their order and the state each one leads to."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from service.domain import AuthorStatus, Policy, PolicyPatch, Reason, State
from service.policy import (
    _LINK,
    LIMITS_KEPT,
    PolicyContext,
    _limits,
    count_links,
    decide,
    effective_thresholds,
    find_words,
    flagged,
    flagged_labels,
    priority,
    second_look_reasons,
)
from tests.seed import seed_article

THRESHOLDS = {
    "spam": {"hold": 0.5, "reject": 0.9},
    "toxicity": {"hold": 0.6, "reject": 0.95},
    "insult": {"hold": 0.7, "reject": 0.97},
}
LOW = {"spam": 0.02, "toxicity": 0.03, "insult": 0.01}
CLEAN = "A calm remark about the article."


def verdict_for(
    text: str = CLEAN,
    scores: dict[str, float] | None = None,
    policy: Policy | None = None,
    **context: object,
) -> tuple[State, tuple[Reason, ...]]:
    result = decide(
        scores if scores is not None else LOW,
        PolicyContext(text=text, **context),  # type: ignore[arg-type]
        policy or Policy(),
        THRESHOLDS,
    )
    return result.state, result.reasons


def test_low_scores_and_no_rule_publish() -> None:
    assert verdict_for() == (State.APPROVED, ())


PRE = Policy(mode="pre")
BANNED = Policy(banned_words=("muppet",))
SUSPECT = Policy(suspect_words=("scam",))
TWO_LINKS = "http://a.example www.b.example"
SINGLE_RULES: list[tuple[Reason, State, dict[str, object]]] = [
    (Reason.BANNED_WORD, State.REJECTED, {"text": "a muppet", "policy": BANNED}),
    (Reason.ARTICLE_CLOSED, State.REJECTED, {"article_closed": True}),
    (Reason.AUTHOR_BANNED, State.REJECTED, {"author_status": AuthorStatus.BANNED}),
    (Reason.SPAM, State.SPAM, {"scores": {"spam": 0.95}}),
    (Reason.TOXIC, State.REJECTED, {"scores": {"toxicity": 0.99}}),
    (Reason.TOXIC, State.REJECTED, {"scores": {"insult": 0.98}}),
    (Reason.DUPLICATE, State.PENDING, {"duplicate": True}),
    (Reason.FLOOD, State.PENDING, {"author_flood": True}),
    (Reason.FLOOD, State.PENDING, {"ip_flood": True}),
    (Reason.SUSPECT_WORD, State.PENDING, {"text": "a scam?", "policy": SUSPECT}),
    (Reason.LINKS, State.PENDING, {"text": TWO_LINKS, "policy": Policy(max_links=1)}),
    (Reason.NEW_AUTHOR, State.PENDING, {"policy": Policy(new_author_min_approved=1)}),
    (Reason.AUTHOR_PREMOD, State.PENDING, {"author_status": AuthorStatus.PREMOD}),
    (Reason.PREMOD, State.PENDING, {"policy": PRE}),
    (Reason.PREMOD, State.PENDING, {"article_premod": True}),
    (Reason.LANGUAGE, State.PENDING, {"scores": {}, "language_supported": False}),
    (Reason.SPAM, State.PENDING, {"scores": {"spam": 0.6}}),
    (Reason.TOXIC, State.PENDING, {"scores": {"toxicity": 0.7}}),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "state", "arguments"), SINGLE_RULES)
def test_each_rule_alone(reason: Reason, state: State, arguments: dict[str, object]) -> None:
    assert verdict_for(**arguments) == (state, (reason,))  # type: ignore[arg-type]


def test_every_reason_code_has_a_rule_except_reports() -> None:
    covered = {reason for reason, _, _ in SINGLE_RULES}
    # The second look's reason is given after intake, by second_look_reasons (below).
    assert set(Reason) - covered == {Reason.REPORTED, Reason.SECOND_LOOK}


@pytest.mark.parametrize(
    ("scores", "status", "reasons"),
    [
        ({"spam": 0.1, "toxicity": 0.2}, AuthorStatus.ACTIVE, ()),
        ({"spam": 0.1, "toxicity": 0.7}, AuthorStatus.ACTIVE, (Reason.SECOND_LOOK, Reason.TOXIC)),
        # Over the reject threshold a second look still only holds.
        ({"insult": 0.99}, AuthorStatus.ACTIVE, (Reason.SECOND_LOOK, Reason.TOXIC)),
        (
            {"spam": 0.6, "toxicity": 0.7},
            AuthorStatus.ACTIVE,
            (Reason.SECOND_LOOK, Reason.TOXIC, Reason.SPAM),
        ),
        ({"spam": 0.6}, AuthorStatus.ACTIVE, (Reason.SECOND_LOOK, Reason.SPAM)),
        ({"toxicity": 0.7}, AuthorStatus.TRUSTED, ()),
        ({"toxicity": 0.99}, AuthorStatus.TRUSTED, (Reason.SECOND_LOOK, Reason.TOXIC)),
    ],
)  # fmt: skip
def test_the_second_look_holds_what_the_blend_puts_over_a_threshold(
    scores: dict[str, float], status: AuthorStatus, reasons: tuple[Reason, ...]
) -> None:
    assert second_look_reasons(scores, THRESHOLDS, Policy(), status) == reasons


def test_the_second_look_applies_the_site_thresholds() -> None:
    strict = Policy(hold={"toxicity": 0.3})
    assert second_look_reasons({"toxicity": 0.35}, THRESHOLDS, strict) == (
        Reason.SECOND_LOOK,
        Reason.TOXIC,
    )


def test_every_reason_that_applied_is_listed_in_rule_order() -> None:
    policy = Policy(
        mode="pre",
        banned_words=("muppet",),
        suspect_words=("scam",),
        max_links=0,
        new_author_min_approved=3,
    )
    state, reasons = verdict_for(
        "muppet scam http://x.example",
        {"spam": 0.99, "toxicity": 0.99},
        policy,
        article_closed=True,
        author_status=AuthorStatus.BANNED,
        duplicate=True,
        author_flood=True,
    )
    assert state is State.REJECTED
    assert reasons == (
        Reason.BANNED_WORD,
        Reason.ARTICLE_CLOSED,
        Reason.AUTHOR_BANNED,
        Reason.SPAM,
        Reason.TOXIC,
        Reason.DUPLICATE,
        Reason.FLOOD,
        Reason.SUSPECT_WORD,
        Reason.LINKS,
        Reason.NEW_AUTHOR,
        Reason.PREMOD,
    )


def test_spam_over_reject_outranks_toxicity_and_holds() -> None:
    state, reasons = verdict_for(scores={"spam": 0.95, "toxicity": 0.99}, duplicate=True)
    assert state is State.SPAM
    assert reasons == (Reason.SPAM, Reason.TOXIC, Reason.DUPLICATE)


def test_rejecting_rules_outrank_spam() -> None:
    state, reasons = verdict_for("muppet", {"spam": 0.99}, Policy(banned_words=("muppet",)))
    assert (state, reasons) == (State.REJECTED, (Reason.BANNED_WORD, Reason.SPAM))


def test_hold_reasons_keep_rule_order_and_list_scores_last() -> None:
    state, reasons = verdict_for(
        "scam",
        {"spam": 0.6, "toxicity": 0.7},
        Policy(suspect_words=("scam",), mode="pre"),
        author_status=AuthorStatus.PREMOD,
        ip_flood=True,
    )
    assert state is State.PENDING
    assert reasons == (
        Reason.FLOOD,
        Reason.SUSPECT_WORD,
        Reason.AUTHOR_PREMOD,
        Reason.PREMOD,
        Reason.SPAM,
        Reason.TOXIC,
    )


def test_thresholds_are_inclusive() -> None:
    assert verdict_for(scores={"spam": 0.9})[0] is State.SPAM
    assert verdict_for(scores={"spam": 0.5})[0] is State.PENDING
    assert verdict_for(scores={"spam": 0.4999})[0] is State.APPROVED


def test_site_overrides_model_thresholds_per_label() -> None:
    lenient = Policy(hold={"spam": 0.8}, reject={"spam": 0.99})
    assert verdict_for(scores={"spam": 0.95}, policy=lenient) == (State.PENDING, (Reason.SPAM,))
    strict = Policy(hold={"toxicity": 0.1})
    assert verdict_for(scores={"toxicity": 0.2}, policy=strict) == (State.PENDING, (Reason.TOXIC,))


def test_labels_without_thresholds_are_ignored_unless_the_site_sets_one() -> None:
    assert verdict_for(scores={"threat": 0.99})[0] is State.APPROVED
    policy = Policy(reject={"threat": 0.9})
    assert verdict_for(scores={"threat": 0.99}, policy=policy) == (State.REJECTED, (Reason.TOXIC,))


def test_effective_thresholds_merge() -> None:
    merged = effective_thresholds(THRESHOLDS, Policy(hold={"spam": 0.3}, reject={"threat": 0.8}))
    assert merged["spam"] == {"hold": 0.3, "reject": 0.9}
    assert merged["threat"] == {"reject": 0.8}
    assert merged["toxicity"] == THRESHOLDS["toxicity"]


def test_kept_limits_are_each_pair_s_own_merge() -> None:
    # More pairs than are kept, each asked for twice: a kept merge is never another pair's.
    pairs = [
        (
            {**THRESHOLDS, "spam": {"hold": 0.5, "reject": 0.9 - n / 1000}},
            Policy(hold={"spam": n / 1000}),
        )
        for n in range(LIMITS_KEPT + 5)
    ]
    for _ in range(2):
        for thresholds, policy in pairs:
            assert _limits(thresholds, policy) == effective_thresholds(thresholds, policy)


def test_a_changed_policy_decides_with_its_own_thresholds() -> None:
    held = Policy(hold={"spam": 0.3})
    assert verdict_for(scores={"spam": 0.4}, policy=held) == (State.PENDING, (Reason.SPAM,))
    loosened = held.model_copy(update={"hold": {}})
    assert verdict_for(scores={"spam": 0.4}, policy=loosened) == (State.APPROVED, ())
    assert verdict_for(scores={"spam": 0.4}, policy=held) == (State.PENDING, (Reason.SPAM,))


def test_new_author_rule_counts_approved_comments_and_spares_trusted_authors() -> None:
    policy = Policy(new_author_min_approved=2)
    assert verdict_for(policy=policy, author_approved=1)[1] == (Reason.NEW_AUTHOR,)
    assert verdict_for(policy=policy, author_approved=2) == (State.APPROVED, ())
    trusted = verdict_for(policy=policy, author_status=AuthorStatus.TRUSTED)
    assert trusted == (State.APPROVED, ())


def test_links_over_the_limit() -> None:
    text = "see https://a.example/x and www.b.example and http://c.example"
    assert count_links(text) == 3
    assert verdict_for(text, policy=Policy(max_links=3)) == (State.APPROVED, ())
    assert verdict_for(text, policy=Policy(max_links=2)) == (State.PENDING, (Reason.LINKS,))


@given(st.text(alphabet="wW.:/hHtTpPsS\u017f \u212a<>'\"x\u00e9", max_size=24))
def test_the_quick_no_link_answer_agrees_with_the_pattern(text: str) -> None:
    assert count_links(text) == len(_LINK.findall(text))


def test_links_written_without_spaces_between_them_are_each_counted() -> None:
    assert count_links("https://a.example,https://b.example,https://c.example") == 3
    assert count_links("(http://a.example)(HTTPS://b.example/x)") == 2
    assert count_links("see https://a.example|www.b.example|WWW.c.example") == 3
    # One link, whatever it holds.
    assert count_links("https://www.a.example/www.b/?q=1") == 1
    assert count_links("http://sub.www.example/page") == 1
    assert count_links("https://a.example/go?to=www.b.example&x=-www.c") == 1
    verdict = verdict_for("https://a.example;https://b.example;https://c.example")
    assert verdict == (State.PENDING, (Reason.LINKS,))


def test_links_in_any_case_are_counted() -> None:
    assert count_links("WWW.a.example HTTPS://b.example Http://c.example wWw.d") == 4
    assert count_links("a www and a http: and a : // apart") == 0


def test_words_match_whole_words_and_phrases_case_insensitively() -> None:
    assert find_words("A classic class", ("ass",)) == ()
    assert find_words("You ASS!", ("ass",)) == ((4, 7),)
    assert find_words("buy cheap pills now", ("cheap pills", "pills")) == ((4, 15),)
    assert find_words("anything", ()) == ()


@given(
    st.lists(st.sampled_from(["\u200b", "\u200d", "\u00ad", "\u2060", "\ufeff"]), max_size=3),
    st.integers(min_value=1, max_value=4),
)
def test_invisible_characters_inside_a_word_do_not_hide_it(hidden: list[str], at: int) -> None:
    written = "idiot"[:at] + "".join(hidden) + "idiot"[at:]
    text = f"You {written.upper()}!"
    assert find_words(text, ("idiot",)) == ((4, 4 + len(written)),)


def test_words_and_text_compare_in_one_folded_form() -> None:
    assert find_words("nice ｃａｆｅ\u0301 here", ("café",)) == ((5, 10),)
    assert find_words("cafe\u0301", ("CAFE\u0301",)) == ((0, 5),)
    assert find_words("a calm remark", ("\u200b",)) == ()
    # An invisible space between words still parts them.
    assert find_words("you\u200bidiot, idiot", ("idiot",)) == ((4, 9), (11, 16))


def test_a_phrase_is_found_whatever_spacing_parts_its_words() -> None:
    assert find_words("buy cheap  pills now", ("cheap pills",)) == ((4, 16),)
    assert find_words("buy cheap\n\tpills now", ("cheap pills",)) == ((4, 16),)
    assert find_words("buy cheap\u00a0pills now", ("cheap pills",)) == ((4, 15),)
    assert find_words("cheappills", ("cheap pills",)) == ()


def test_a_banned_phrase_wins_over_a_banned_word_it_starts_with() -> None:
    # Alternation tries the phrase first; the other way round "cheap" alone would match.
    policy = Policy(banned_words=("cheap", "cheap pills"))
    result = decide(LOW, PolicyContext(text="buy cheap pills now"), policy, THRESHOLDS)
    assert result.evidence == {"banned_word": ((4, 15),)}
    assert find_words("cheap pills, cheap", ("cheap", "cheap pills")) == ((0, 11), (13, 18))


def test_a_score_over_the_reject_threshold_is_flagged_even_under_a_higher_hold_override() -> None:
    # The site may raise hold above the model's reject threshold; rejection still counts.
    policy = Policy(hold={"toxicity": 0.99, "spam": 0.99})
    assert flagged({"toxicity": 0.96}, THRESHOLDS, policy, spam=False)
    assert flagged({"spam": 0.92}, THRESHOLDS, policy, spam=True)
    assert not flagged({"toxicity": 0.94}, THRESHOLDS, policy, spam=False)
    # Each family reads only its own labels.
    assert not flagged({"toxicity": 0.96}, THRESHOLDS, policy, spam=True)
    assert not flagged({"spam": 0.92}, THRESHOLDS, policy, spam=False)


def test_word_evidence_is_reported_as_spans() -> None:
    policy = Policy(banned_words=("muppet",), suspect_words=("scam",))
    result = decide(LOW, PolicyContext(text="scam by a Muppet"), policy, THRESHOLDS)
    assert result.evidence == {"banned_word": ((10, 16),), "suspect_word": ((0, 4),)}


def test_priority_is_the_riskiest_label() -> None:
    assert priority({"spam": 0.2, "toxicity": 0.7}) == 0.7
    assert priority({}) == 0.0


def test_policy_bounds_and_consistency() -> None:
    with pytest.raises(ValidationError, match="above its reject threshold"):
        Policy(hold={"spam": 0.9}, reject={"spam": 0.5})
    with pytest.raises(ValidationError):
        Policy(hold={"spam": 1.5})
    with pytest.raises(ValidationError):
        Policy(max_links=-1)
    with pytest.raises(ValidationError):
        Policy(mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="above its reject threshold"):
        PolicyPatch(hold={"spam": 0.95}).apply(Policy(reject={"spam": 0.9}))
    assert PolicyPatch(max_links=7).apply(Policy(mode="pre")) == Policy(mode="pre", max_links=7)


def _seed_comments() -> list[str]:
    return [comment["text"] for comment in seed_article()["comments"]]


def test_default_policy_publishes_the_seed_comments_given_low_scores() -> None:
    for text in _seed_comments():
        assert decide(LOW, PolicyContext(text=text), Policy(), THRESHOLDS).state is State.APPROVED


def test_default_policy_stops_obvious_spam_and_abuse_given_high_scores() -> None:
    spam = decide(
        {"spam": 0.97, "toxicity": 0.05},
        PolicyContext(text="BUY CHEAP PILLS http://a.example http://b.example http://c.example"),
        Policy(),
        THRESHOLDS,
    )
    assert spam.state is State.SPAM
    assert spam.reasons == (Reason.SPAM, Reason.LINKS)
    abuse = decide(
        {"toxicity": 0.99, "insult": 0.98}, PolicyContext(text="x"), Policy(), THRESHOLDS
    )
    assert (abuse.state, abuse.reasons) == (State.REJECTED, (Reason.TOXIC,))
    rude = decide({"toxicity": 0.8}, PolicyContext(text="x"), Policy(), THRESHOLDS)
    assert (rude.state, rude.reasons) == (State.PENDING, (Reason.TOXIC,))


scores_strategy = st.dictionaries(
    st.sampled_from(["spam", "toxicity", "insult", "threat"]),
    st.floats(min_value=0.0, max_value=1.0),
)
context_strategy = st.builds(
    PolicyContext,
    text=st.text(max_size=60),
    author_status=st.sampled_from(list(AuthorStatus)),
    author_approved=st.integers(min_value=0, max_value=5),
    article_closed=st.booleans(),
    article_premod=st.booleans(),
    duplicate=st.booleans(),
    author_flood=st.booleans(),
    ip_flood=st.booleans(),
)


@given(scores=scores_strategy, context=context_strategy)
def test_state_follows_reasons(scores: dict[str, float], context: PolicyContext) -> None:
    result = decide(scores, context, Policy(new_author_min_approved=2), THRESHOLDS)
    assert len(set(result.reasons)) == len(result.reasons)
    assert (result.state is State.APPROVED) == (not result.reasons)
    if result.state is State.SPAM:
        assert Reason.SPAM in result.reasons


SEVERITY = {State.APPROVED: 0, State.PENDING: 1, State.REJECTED: 2, State.SPAM: 2}


@given(scores=scores_strategy, label=st.sampled_from(["spam", "toxicity"]), bump=st.floats(0, 1))
def test_a_higher_score_is_never_more_lenient(
    scores: dict[str, float], label: str, bump: float
) -> None:
    context = PolicyContext(text=CLEAN)
    before = decide(scores, context, Policy(), THRESHOLDS).state
    higher = {**scores, label: max(scores.get(label, 0.0), bump)}
    after = decide(higher, context, Policy(), THRESHOLDS).state
    assert SEVERITY[after] >= SEVERITY[before]


def test_a_language_the_model_cannot_read_holds_unless_the_site_publishes_it() -> None:
    assert verdict_for(scores={}, language_supported=False) == (State.PENDING, (Reason.LANGUAGE,))
    publish = Policy(other_languages="publish")
    assert verdict_for(scores={}, policy=publish, language_supported=False) == (State.APPROVED, ())
    # Rejecting rules still apply to text the model cannot read.
    banned = Policy(banned_words=("brücke",))
    state, reasons = verdict_for("Die Brücke", scores={}, policy=banned, language_supported=False)
    assert (state, reasons) == (State.REJECTED, (Reason.BANNED_WORD, Reason.LANGUAGE))
    trusted = verdict_for(scores={}, language_supported=False, author_status=AuthorStatus.TRUSTED)
    assert trusted == (State.APPROVED, ())


def test_flagged_labels_are_those_at_or_over_the_sites_hold_limit() -> None:
    scores = {"spam": 0.5, "toxicity": 0.59, "insult": 0.8, "threat": 0.99}
    assert flagged_labels(scores, THRESHOLDS, Policy()) == ("spam", "insult")
    site = Policy(hold={"toxicity": 0.5, "insult": 0.9}, reject={"threat": 0.9})
    assert flagged_labels(scores, THRESHOLDS, site) == ("spam", "toxicity", "threat")
    assert flagged_labels(LOW, THRESHOLDS, Policy()) == ()
