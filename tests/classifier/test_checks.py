"""The focused checks' row choices: identity-term samples and the threat rows measured."""

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from classifier.checks import (
    implicit_hate,
    policy_score,
    sample_by_term,
    semantic_policy_scores,
    threat_recall,
    threat_rows,
)
from classifier.datasets import Record, SourceData
from classifier.model import Model


def test_a_limited_sample_takes_up_to_the_limit_per_term_and_of_rows_naming_none() -> None:
    texts = [f"a gay person {i}" for i in range(50)]
    texts += [f"a muslim person {i}" for i in range(7)]
    texts += [f"a person {i}" for i in range(30)]
    chosen = sample_by_term(texts, ["gay", "muslim", "deaf"], 10)
    picked = [texts[index] for index in chosen]
    assert sum("gay" in text for text in picked) == 10
    assert sum("muslim" in text for text in picked) == 7
    assert sum(text.startswith("a person") for text in picked) == 10
    # Spread over the rows, in file order, and the same every time.
    assert chosen == sorted(chosen)
    assert {"a gay person 0", "a gay person 45"} <= set(picked)
    assert sample_by_term(texts, ["gay", "muslim", "deaf"], 10) == chosen
    assert sample_by_term(texts, ["gay"], None) == list(range(len(texts)))


def test_threat_rows_are_every_threat_labelled_row_of_the_held_out_splits() -> None:
    gab = SourceData(
        "gab-hate-corpus",
        (),
        {
            "train": [Record("trained threat", {"hd": 0, "cv": 1, "vo": 0})],
            "test": [
                Record("i will hurt you", {"hd": 0, "cv": 1, "vo": 0}),
                Record("a calm post", {"hd": 0, "cv": 0, "vo": 0}),
                Record("seen in training", {"hd": 0, "cv": 1, "vo": 0}),
            ],
        },
    )
    kaggle = SourceData(
        "kaggle-insults-social-commentary", (), {"test": [Record("idiot", {"Insult": 1})]}
    )
    found = threat_rows(
        {"gab-hate-corpus": gab, "kaggle-insults-social-commentary": kaggle}, {"seenintraining"}
    )
    assert found == [("gab-hate-corpus", "test", ["i will hurt you"])]


def test_threat_recall_counts_the_rows_at_the_hold_threshold(tiny_model: Model) -> None:
    texts = ["i will find you and kill you", "i am going to hurt you badly", "nice weather"]
    threshold = tiny_model.thresholds["threat"]["hold"]
    held = int(
        (tiny_model.predict_matrix(texts)[:, tiny_model.labels.index("threat")] >= threshold).sum()
    )
    report = threat_recall(tiny_model, [("gab-hate-corpus", "test", texts)])
    assert report["threshold"] == threshold
    assert report["sets"][0]["found"] == report["pooled"]["found"] == held
    assert report["pooled"]["recall"] == round(held / 3, 4)


def test_threat_recall_with_a_stage_counts_what_intake_or_the_second_look_holds(
    tiny_semantic_model: Model,
) -> None:
    texts = ["i will find you and kill you", "your family will regret this", "nice weather"]
    model = tiny_semantic_model
    threshold = model.thresholds["threat"]["hold"]
    column = model.labels.index("threat")
    held = model.predict_matrix(texts)[:, column] >= threshold
    looked = held | (model.predict_blended(texts)[:, column] >= threshold)
    report = threat_recall(model, [("gab-hate-corpus", "test", texts)])
    assert report["pooled"]["found"] == int(held.sum())
    assert report["sets"][0]["found_with_second_look"] == int(looked.sum())
    assert report["pooled"]["recall_with_second_look"] == round(int(looked.sum()) / 3, 4)


def test_threat_recall_without_a_stage_reports_intake_alone(tiny_model: Model) -> None:
    report = threat_recall(tiny_model, [("gab-hate-corpus", "test", ["i will hurt you"])])
    assert "found_with_second_look" not in report["pooled"]


def test_the_policy_score_is_the_highest_label_but_spam(tiny_model: Model) -> None:
    texts = ["buy cheap pills at my site", "you stupid idiot", "thanks for the article"]
    matrix = tiny_model.predict_matrix(texts)
    without_spam = np.delete(matrix, tiny_model.labels.index("spam"), axis=1)
    assert np.array_equal(policy_score(tiny_model, texts), without_spam.max(axis=1))


def _statements() -> SourceData:
    rows = [
        ("women are too emotional to lead", 1, "women"), ("women lead many companies", 0, "women"),
        ("they should all go back home", 1, "immigrant"), ("immigrants open shops", 0, "immigrant"),
        ("muslims are all the same", 1, "muslim"),
    ]  # fmt: skip
    records = [Record(text, {"label": float(label)}, group=group) for text, label, group in rows]
    return SourceData("toxigen-implicit", (), {"all": records})


def test_implicit_hate_adds_the_blend_when_the_model_has_a_semantic_stage(
    tiny_model: Model, tiny_semantic_model: Model
) -> None:
    lexical = implicit_hate(tiny_model, _statements(), set(), None)
    assert set(lexical["groups"]) == {"women", "immigrant"}  # muslim has one class only
    assert "blended_roc_auc" not in lexical["overall"]
    assert "alone_roc_auc" not in lexical["overall"]
    both = implicit_hate(tiny_semantic_model, _statements(), set(), lambda b: np.zeros(len(b)))
    records = _statements().splits["all"]
    texts = [record.text for record in records]
    target = np.array([record.values["label"] for record in records])
    blended = tiny_semantic_model.predict_blended(texts)[:, 1:].max(axis=1)  # every label but spam
    assert tiny_semantic_model.labels[0] == "spam"
    np.testing.assert_array_equal(
        semantic_policy_scores(
            tiny_semantic_model, texts, tiny_semantic_model.predict_matrix(texts)
        )["blended"],
        blended,
    )
    assert not np.array_equal(blended, policy_score(tiny_semantic_model, texts))
    assert both["overall"]["blended_roc_auc"] == round(roc_auc_score(target, blended), 4)
    assert both["overall"]["peer_roc_auc"] == 0.5
    assert both["groups"]["women"]["rows"] == 2


def test_the_stage_alone_is_the_highest_fitted_semantic_head_but_spam(
    tiny_semantic_model: Model,
) -> None:
    stage = tiny_semantic_model.semantic
    assert stage is not None
    records = _statements().splits["all"]
    texts = [record.text for record in records]
    target = np.array([record.values["label"] for record in records])
    heads = stage.semantic_proba(stage.embed(texts))
    columns = [i for i, label in enumerate(stage.labels) if label != "spam" and stage.coef[i].any()]
    expected = heads[:, columns].max(axis=1)
    scores = semantic_policy_scores(
        tiny_semantic_model, texts, tiny_semantic_model.predict_matrix(texts)
    )
    np.testing.assert_array_equal(scores["alone"], expected)
    report = implicit_hate(tiny_semantic_model, _statements(), set(), None)
    assert report["overall"]["alone_roc_auc"] == round(roc_auc_score(target, expected), 4)
    women = [i for i, record in enumerate(records) if record.group == "women"]
    assert report["groups"]["women"]["alone_roc_auc"] == round(
        roc_auc_score(target[women], expected[women]), 4
    )


def test_a_head_never_fitted_is_left_out_of_the_stage_alone(
    tiny_semantic_model_path: Path,
) -> None:
    model = Model.load(tiny_semantic_model_path)  # a copy of its own: the stage is changed
    stage = model.semantic
    assert stage is not None
    texts = [record.text for record in _statements().splits["all"]]
    column = stage.labels.index("threat")
    others = [
        i
        for i, label in enumerate(stage.labels)
        if label not in ("spam", "threat") and stage.coef[i].any()
    ]
    # A head that was never fitted, calibrated to a high constant: counted, it would top every row.
    stage.coef[column] = 0.0
    stage.platt[column] = (1.0, 5.0)
    alone = semantic_policy_scores(model, texts, model.predict_matrix(texts))["alone"]
    expected = stage.semantic_proba(stage.embed(texts))[:, others].max(axis=1)
    np.testing.assert_array_equal(alone, expected)
    assert alone.max() < 1.0 / (1.0 + np.exp(-5.0))
