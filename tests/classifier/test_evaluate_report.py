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


def test_the_identity_set_keeps_its_subgroups_but_is_not_compared_with_the_peer(
    tiny_model: Model,
) -> None:
    """The peer was fitted on the Wikipedia identity set's texts: a figure there is not held out."""
    texts, target = _identity_rows()
    asked: list[list[str]] = []

    def peer(batch: list[str]) -> np.ndarray:
        asked.append(batch)
        return np.zeros(len(batch))

    entry = score_set(tiny_model, EvalSet(IDENTITY_SOURCE, "all", "toxicity", texts, target), peer)
    assert set(entry["subgroups"]) == {"gay", "muslim"}
    assert entry["peer_trained_on_it"] is True
    assert not asked
    assert not {key for key in entry if key.startswith("peer_")} - {"peer_trained_on_it"}


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
