"""The rule that lets a site's own model into use, on its figures alone."""

import math

from hypothesis import assume, given
from hypothesis import strategies as st

from classifier.site_model import FitSettings
from classifier.switch_on import Decision, decide, short_of_labels

RULE = FitSettings(min_labels=500, min_positives=40, switch_on_gain=0.005, keep_gain=0.0)

counts = st.integers(min_value=0, max_value=5_000)
aucs = st.floats(min_value=0.0, max_value=1.0)
bounds = st.floats(min_value=-1.0, max_value=1.0)
rules = st.builds(
    FitSettings,
    min_labels=st.integers(min_value=1, max_value=2_000),
    min_positives=st.integers(min_value=1, max_value=500),
    switch_on_gain=st.floats(min_value=-0.1, max_value=0.5),
    keep_gain=st.floats(min_value=-0.1, max_value=0.5),
)


def _decide(
    *,
    count: int = 10_000,
    positives: int = 5_000,
    auc_global: float = 0.80,
    auc_adapted: float = 0.85,
    lower_bound: float = 0.01,
    in_use: bool = False,
    thresholds: FitSettings = RULE,
) -> Decision:
    return decide(
        count=count,
        positives=positives,
        auc_global=auc_global,
        auc_adapted=auc_adapted,
        lower_bound=lower_bound,
        features="lexical",
        thresholds=thresholds,
        in_use=in_use,
    )


def test_a_clear_gain_above_its_noise_switches_on_and_says_by_how_much() -> None:
    assert _decide() == Decision(
        True,
        "out of fold the site model (lexical) adds +0.0500 ROC-AUC (bootstrap lower bound +0.0100)",
    )


def test_labels_are_counted_against_the_minimum_inclusively() -> None:
    assert short_of_labels(499, 100, RULE) == "499 labels, needs 500"
    assert short_of_labels(500, 100, RULE) is None
    assert _decide(count=499, positives=100) == Decision(False, "499 labels, needs 500")
    assert _decide(count=500, positives=100).used


def test_each_class_needs_the_minimum_of_positives_inclusively() -> None:
    few_positive = "39 positive and 961 negative labels, needs 40 of each"
    assert short_of_labels(1_000, 39, RULE) == few_positive
    assert _decide(count=1_000, positives=39) == Decision(False, few_positive)
    assert short_of_labels(1_000, 40, RULE) is None
    # The rarer class may be either: a site that rejects almost everything has few negatives.
    few_negative = "961 positive and 39 negative labels, needs 40 of each"
    assert short_of_labels(1_000, 961, RULE) == few_negative
    assert _decide(count=1_000, positives=961) == Decision(False, few_negative)
    assert short_of_labels(1_000, 960, RULE) is None
    assert _decide(count=1_000, positives=960).used


def test_a_gain_of_exactly_the_minimum_is_not_enough() -> None:
    # Figures a binary fraction holds exactly, so the gain is the minimum to the last bit.
    rule = FitSettings(min_labels=500, min_positives=40, switch_on_gain=0.125, keep_gain=0.0)
    at = _decide(auc_global=0.5, auc_adapted=0.625, thresholds=rule)
    assert at == Decision(
        False, "out of fold the site model (lexical) adds +0.1250 ROC-AUC, needs more than +0.1250"
    )
    assert _decide(auc_global=0.5, auc_adapted=0.6251, thresholds=rule).used


def test_a_lower_bound_of_zero_is_noise() -> None:
    assert _decide(lower_bound=0.0) == Decision(
        False,
        "out of fold the site model (lexical) adds +0.0500 ROC-AUC, "
        "within its noise (bootstrap lower bound +0.0000)",
    )
    assert _decide(lower_bound=1e-9).used


def test_a_model_in_use_stays_on_the_keep_gain_and_without_the_bootstrap() -> None:
    assert not _decide(auc_global=0.8, auc_adapted=0.802, lower_bound=-0.01).used
    kept = _decide(auc_global=0.8, auc_adapted=0.802, lower_bound=-0.01, in_use=True)
    assert kept == Decision(
        True,
        "out of fold the site model (lexical) adds +0.0020 ROC-AUC (bootstrap lower bound -0.0100)",
    )
    # It goes out of use once it ranks no better than the global model, against the keep gain.
    assert _decide(auc_global=0.8, auc_adapted=0.8, in_use=True) == Decision(
        False, "out of fold the site model (lexical) adds +0.0000 ROC-AUC, needs more than +0.0000"
    )
    assert _decide(auc_global=0.8, auc_adapted=0.78, in_use=True).why.endswith(
        "adds -0.0200 ROC-AUC, needs more than +0.0000"
    )


def test_too_few_labels_keep_even_a_model_in_use_off() -> None:
    assert _decide(count=10, positives=5, in_use=True) == Decision(False, "10 labels, needs 500")


def test_figures_that_are_not_numbers_keep_it_off() -> None:
    assert not _decide(auc_adapted=math.nan).used
    assert not _decide(lower_bound=math.nan).used
    assert not _decide(auc_global=math.nan, in_use=True).used


@given(
    count=counts,
    positives=counts,
    auc_global=aucs,
    auc_adapted=aucs,
    low=bounds,
    in_use=st.booleans(),
    rule=rules,
)
def test_never_on_below_the_minimum_labels_or_either_class(
    count: int,
    positives: int,
    auc_global: float,
    auc_adapted: float,
    low: float,
    in_use: bool,
    rule: FitSettings,
) -> None:
    positives = min(positives, count)
    decision = _decide(
        count=count,
        positives=positives,
        auc_global=auc_global,
        auc_adapted=auc_adapted,
        lower_bound=low,
        in_use=in_use,
        thresholds=rule,
    )
    short = (
        count < rule.min_labels
        or positives < rule.min_positives
        or count - positives < rule.min_positives
    )
    assert (short_of_labels(count, positives, rule) is not None) == short
    if short:
        assert decision == Decision(False, short_of_labels(count, positives, rule) or "")


@given(auc_global=aucs, auc_adapted=aucs, low=st.floats(max_value=0.0), rule=rules)
def test_never_switched_on_when_the_lower_bound_is_not_above_zero(
    auc_global: float, auc_adapted: float, low: float, rule: FitSettings
) -> None:
    decision = _decide(
        auc_global=auc_global,
        auc_adapted=auc_adapted,
        lower_bound=low,
        thresholds=rule,
    )
    assert not decision.used


@given(auc_global=aucs, auc_adapted=aucs, low=bounds, in_use=st.booleans(), rule=rules)
def test_never_on_without_more_gain_than_needed(
    auc_global: float, auc_adapted: float, low: float, in_use: bool, rule: FitSettings
) -> None:
    needed = rule.keep_gain if in_use else rule.switch_on_gain
    assume(auc_adapted - auc_global <= needed)
    decision = _decide(
        auc_global=auc_global,
        auc_adapted=auc_adapted,
        lower_bound=low,
        in_use=in_use,
        thresholds=rule,
    )
    assert not decision.used
    assert decision.why.endswith(f", needs more than {needed:+.4f}")


@given(
    auc_global=aucs,
    gains=st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)),
    low=bounds,
    in_use=st.booleans(),
    rule=rules,
)
def test_more_gain_never_switches_it_off(
    auc_global: float, gains: tuple[float, float], low: float, in_use: bool, rule: FitSettings
) -> None:
    smaller, larger = sorted(gains)
    on = [
        _decide(
            auc_global=auc_global,
            auc_adapted=auc_global + gain,
            lower_bound=low,
            in_use=in_use,
            thresholds=rule,
        ).used
        for gain in (smaller, larger)
    ]
    assert on[1] or not on[0]


@given(auc_global=aucs, auc_adapted=aucs, low=bounds, rule=rules)
def test_a_model_in_use_is_kept_on_whatever_would_switch_it_on(
    auc_global: float, auc_adapted: float, low: float, rule: FitSettings
) -> None:
    assume(rule.keep_gain <= rule.switch_on_gain)
    switched_on, kept = (
        _decide(
            auc_global=auc_global,
            auc_adapted=auc_adapted,
            lower_bound=low,
            in_use=in_use,
            thresholds=rule,
        ).used
        for in_use in (False, True)
    )
    assert kept or not switched_on
    # And exactly when the gain is above the keep gain, with any lower bound.
    assert kept == (auc_adapted - auc_global > rule.keep_gain)
