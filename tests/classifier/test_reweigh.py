"""Identity-term reweighing: each term's rows as often toxic as the mix, no label changed."""

import math

import numpy as np
import pytest

from classifier.reweigh import MAX_FACTOR, MIN_TERM_ROWS, reweigh_identity_rows
from classifier.training_data import LabeledRows

LABELS = ("toxicity", "identity_attack")


def _rows(entries: list[tuple[str, float, float]]) -> LabeledRows:
    """(text, toxicity target, identity_attack target) rows, every weight 1."""
    return LabeledRows(
        texts=[text for text, _, _ in entries],
        targets=[[toxic, attack] for _, toxic, attack in entries],
        weights=[[1.0, 1.0] for _ in entries],
        sources=["s"] * len(entries),
        groups=[""] * len(entries),
    )


def _rate(rows: LabeledRows, indices: list[int]) -> float:
    target = rows.target_matrix()[indices, 0]
    return float(np.average(target, weights=rows.weight_matrix()[indices, 0]))


def test_a_term_met_mostly_in_abuse_gets_the_mix_rate_and_keeps_its_weight() -> None:
    queer = [(f"queer insult {i}", 1.0, 1.0) for i in range(8)]
    queer += [(f"a queer film {i}", 0.0, 0.0) for i in range(4)]
    others = [(f"you idiot {i}", 1.0, 0.0) for i in range(4)]
    others += [(f"nice article {i}", 0.0, 0.0) for i in range(20)]
    rows = _rows(queer + others)
    base = _rate(rows, list(range(len(rows.texts))))
    report = reweigh_identity_rows(rows, LABELS)
    term_rows = list(range(len(queer)))
    assert _rate(rows, term_rows) == pytest.approx(base)
    assert rows.weight_matrix()[term_rows, 0].sum() == pytest.approx(len(queer))
    factors = report["toxicity"]["factors"]["queer"]
    assert factors["toxic"] < 1.0 < factors["civil"]
    assert report["toxicity"]["base_rate"] == pytest.approx(round(base, 4))
    # Nothing else moves: rows naming no one, the identity-attack label, every target.
    assert rows.weight_matrix()[len(queer) :].tolist() == [[1.0, 1.0]] * len(others)
    assert rows.weight_matrix()[:, 1].tolist() == [1.0] * len(rows.texts)
    assert rows.target_matrix().tolist() == _rows(queer + others).target_matrix().tolist()


def test_rows_that_do_not_know_the_label_are_left_alone() -> None:
    entries = [(f"gay slur {i}", 1.0, 1.0) for i in range(9)]
    entries += [(f"gay pride {i}", 0.0, 0.0) for i in range(3)]
    entries += [(f"nice {i}", 0.0, 0.0) for i in range(12)]
    entries.append(("gay tweet with no toxicity label", math.nan, 1.0))
    rows = _rows(entries)
    reweigh_identity_rows(rows, LABELS)
    assert rows.weights[-1] == [1.0, 1.0]
    assert rows.weights[0][0] < 1.0 < rows.weights[9][0]


def test_a_term_on_too_few_rows_or_one_class_gets_no_factor() -> None:
    few = [(f"muslim {i}", float(i % 2), 0.0) for i in range(MIN_TERM_ROWS - 1)]
    one_class = [(f"jewish insult {i}", 1.0, 1.0) for i in range(MIN_TERM_ROWS + 2)]
    rest = [(f"text {i}", float(i % 3 == 0), 0.0) for i in range(30)]
    rows = _rows(few + one_class + rest)
    report = reweigh_identity_rows(rows, LABELS)
    assert report["toxicity"]["factors"] == {}
    assert rows.weight_matrix().tolist() == [[1.0, 1.0]] * len(rows.texts)


def test_factors_are_capped_and_a_row_naming_two_terms_takes_their_mean() -> None:
    # One civil "queer" row in twenty: uncapped its weight would grow about twelvefold.
    queer = [(f"queer insult {i}", 1.0, 1.0) for i in range(19)] + [("queer film", 0.0, 0.0)]
    gay = [(f"gay insult {i}", 1.0, 1.0) for i in range(6)]
    gay += [(f"gay film {i}", 0.0, 0.0) for i in range(6)]
    rest = [(f"nice {i}", 0.0, 0.0) for i in range(40)] + [("both gay and queer", 1.0, 0.0)]
    rows = _rows(queer + gay + rest)
    report = reweigh_identity_rows(rows, LABELS)
    factors = report["toxicity"]["factors"]
    assert factors["queer"]["civil"] == MAX_FACTOR
    assert rows.weights[19][0] == MAX_FACTOR
    expected = (factors["queer"]["toxic"] + factors["gay"]["toxic"]) / 2
    assert rows.weights[-1][0] == pytest.approx(expected, abs=1e-3)
