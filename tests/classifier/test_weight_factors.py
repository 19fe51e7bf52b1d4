"""``civility train --weight``: changing one source's weight, and refusing what cannot be meant."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classifier.datasets import Record
from classifier.labels import LABELS, SOURCES
from classifier.training_data import LabeledRows, WeightFactor

from .support import run_cli

JIGSAW = "jigsaw-toxic-predibase-sample"
GAB = "gab-hate-corpus"


def test_a_source_and_an_optional_label_are_read() -> None:
    assert WeightFactor.parse(f"{GAB}=0.5") == WeightFactor(GAB, None, 0.5)
    assert WeightFactor.parse(f"{JIGSAW}:toxicity=3") == WeightFactor(JIGSAW, "toxicity", 3.0)


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_any_positive_factor_is_read_back_exactly(factor: float) -> None:
    assert WeightFactor.parse(f"{JIGSAW}={factor!r}").factor == factor


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (JIGSAW, "expected SOURCE=FACTOR"),
        ("=2", "expected SOURCE=FACTOR"),
        (f"{JIGSAW}:=2", "expected SOURCE=FACTOR"),
        ("ethos=2", "'ethos' is not a training source"),
        ("no-such-set=2", "'no-such-set' is not a training source"),
        (f"{GAB}:spam=2", "gab-hate-corpus does not train 'spam'"),
        (f"{GAB}=", "factor must be a number"),
        (f"{GAB}=twice", "factor must be a number"),
        (f"{GAB}=0", "factor must be a positive number"),
        (f"{GAB}=-1", "factor must be a positive number"),
        (f"{GAB}=nan", "factor must be a positive number"),
        (f"{GAB}=inf", "factor must be a positive number"),
    ],
)
def test_what_cannot_be_meant_is_refused_with_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="^" + complaint):
        WeightFactor.parse(text)


def _rows() -> LabeledRows:
    rows = LabeledRows()
    rows.add(JIGSAW, Record("you fool", {"toxic": 1.0, "insult": 1.0}), LABELS)
    rows.add(GAB, Record("a post", {"hd": 0.0, "cv": 0.0, "vo": 0.0}), LABELS)
    return rows


def test_a_label_factor_scales_only_that_label_of_that_source() -> None:
    rows = _rows()
    before = rows.weight_matrix()
    WeightFactor(JIGSAW, "toxicity", 3.0).apply(rows, LABELS)
    after = rows.weight_matrix()
    toxicity = LABELS.index("toxicity")
    assert after[0, toxicity] == 3.0 * before[0, toxicity]
    after[0, toxicity] = before[0, toxicity]
    assert (after == before).all()


def test_a_source_factor_scales_every_label_of_that_source_only() -> None:
    rows = _rows()
    before = rows.weight_matrix()
    WeightFactor(GAB, None, 0.5).apply(rows, LABELS)
    after = rows.weight_matrix()
    assert (after[1] == 0.5 * before[1]).all()
    assert (after[0] == before[0]).all()


def test_train_records_the_factor_and_the_weights_it_trained_with(
    datasets_dir: Path, tmp_path: Path
) -> None:
    status = run_cli(
        "train", "--data", str(datasets_dir), "--out", str(tmp_path), "--no-activate",
        "--limit-per-source", "150", "--jobs", "1", "--no-semantic",
        "--weight", f"{JIGSAW}:toxicity=3",
        "--weight", f"{GAB}=0.5",
    )  # fmt: skip
    assert status == 0
    card = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert card["training"]["weight_factors"] == [
        {"source": JIGSAW, "label": "toxicity", "factor": 3.0},
        {"source": GAB, "label": None, "factor": 0.5},
    ]
    trained = card["training"]["sources"]
    jigsaw = SOURCES[JIGSAW]
    assert trained[JIGSAW]["labels"]["toxicity"]["weight"] == 3.0 * jigsaw.weight_for("toxicity")
    assert trained[JIGSAW]["labels"]["insult"]["weight"] == jigsaw.weight_for("insult")
    for label, entry in trained[GAB]["labels"].items():
        assert math.isclose(entry["weight"], 0.5 * SOURCES[GAB].weight_for(label))


def test_train_refuses_a_bad_weight_before_reading_anything(
    datasets_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli("train", "--data", str(datasets_dir), "--out", str(tmp_path), "--weight", "ethos=2")
    assert exited.value.code == 2
    assert "'ethos' is not a training source" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
