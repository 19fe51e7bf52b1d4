"""What one evaluated set's report entry holds when the peer is scored beside the model."""

import numpy as np

from classifier.evaluate import IDENTITY_SOURCE, EvalSet, score_set
from classifier.model import Model
from classifier.report import Examples, evaluation_figures


def _identity_rows() -> tuple[list[str], np.ndarray]:
    """Rows that mention "gay" or "muslim", half of each insulting, so both subgroups count."""
    texts, target = [], []
    for index in range(30):
        for term in ("gay", "muslim"):
            texts.append(f"you are a stupid {term} idiot number {index}")
            target.append(1.0)
            texts.append(f"the {term} community met on day {index} to plan the fair")
            target.append(0.0)
    return texts, np.array(target)


def test_the_identity_set_reports_the_peers_subgroups_on_the_same_rows(tiny_model: Model) -> None:
    texts, target = _identity_rows()

    def peer_that_only_sees_gay_insults(batch: list[str]) -> np.ndarray:
        return np.array([float("stupid gay" in text) for text in batch])

    entry = score_set(
        tiny_model,
        EvalSet(IDENTITY_SOURCE, "all", "toxicity", texts, target),
        peer_that_only_sees_gay_insults,
    )
    assert set(entry["subgroups"]) == set(entry["peer_subgroups"]) == {"gay", "muslim"}
    assert entry["peer_subgroups"] == {"gay": 1.0, "muslim": 0.5}
    assert entry["peer_roc_auc"] == 0.75
    assert entry["peer_largest_subgroup_gap"] == 0.25
    low, high = entry["peer_difference_interval"]
    assert low <= entry["roc_auc"] - entry["peer_roc_auc"] <= high


def test_other_sets_carry_no_subgroups(tiny_model: Model) -> None:
    texts, target = _identity_rows()
    entry = score_set(
        tiny_model, EvalSet("kaggle-insults-social-commentary", "test", "toxicity", texts, target),
        lambda batch: np.zeros(len(batch)),
    )  # fmt: skip
    assert "subgroups" not in entry
    assert "peer_subgroups" not in entry
    assert entry["peer_roc_auc"] == 0.5


def test_a_set_with_identity_subgroups_gets_its_own_bias_figure(tiny_model: Model) -> None:
    texts, target = _identity_rows()
    entry = score_set(tiny_model, EvalSet(IDENTITY_SOURCE, "all", "toxicity", texts, target), None)
    plain = score_set(
        tiny_model, EvalSet("kaggle-insults-social-commentary", "test", "toxicity", texts, target),
        None,
    )  # fmt: skip
    report = {"peer": None, "sets": [entry, plain]}
    drawn = evaluation_figures(tiny_model, report, Examples({}))
    assert set(drawn) == {"roc", "reliability", f"bias-{IDENTITY_SOURCE}-toxicity"}
