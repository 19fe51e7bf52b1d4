"""The semantic stage: a verified encoder, its vectors, the stage's artifact and its blend."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from classifier.card import file_sha256
from classifier.datasets import load_source
from classifier.embedding_cache import EmbeddingCache
from classifier.encoder import (
    MODEL_FILE,
    TOKENIZER_FILE,
    Encoder,
    EncoderChecksumError,
    EncoderFiles,
)
from classifier.evaluate import EvalSet
from classifier.labels import LABELS
from classifier.model import ChecksumMismatchError, InvalidCardError, Model
from classifier.semantic import SemanticStage, semantic_artifact_path
from classifier.semantic_eval import format_semantic, semantic_comparison
from classifier.semantic_fit import BLEND_GRID

TEXTS = [
    "Go back where you came from.",
    "The council should publish the traffic study before it votes on the new parking rules.",
    "ok",
    "People like you are what's wrong with this country, and everyone in this thread knows it "
    "even if nobody has the courage to say so out loud. " * 4,
]


def _tampered(original: Path, tmp_path: Path) -> Path:
    copy = tmp_path / original.name
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    return copy


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    installed = EncoderFiles.installed()
    files = EncoderFiles(model=_tampered(installed.model, tmp_path), tokenizer=installed.tokenizer)
    with pytest.raises(EncoderChecksumError, match=r"model\.onnx has sha256 .* but 8199be6f"):
        Encoder(files=files).embed(["hello"])


def test_a_tampered_tokenizer_is_refused(tmp_path: Path) -> None:
    installed = EncoderFiles.installed()
    files = EncoderFiles(model=installed.model, tokenizer=_tampered(installed.tokenizer, tmp_path))
    with pytest.raises(EncoderChecksumError, match=r"tokenizer\.json has sha256 .* is pinned"):
        Encoder(files=files).embed(["hello"])


def test_the_installed_files_are_the_pinned_ones() -> None:
    installed = EncoderFiles.installed()
    assert file_sha256(installed.model) == MODEL_FILE.sha256
    assert file_sha256(installed.tokenizer) == TOKENIZER_FILE.sha256
    assert installed.model.stat().st_size == 22_928_619


def test_vectors_are_unit_length_and_deterministic(encoder: Encoder) -> None:
    first = encoder.embed(TEXTS)
    assert first.shape == (len(TEXTS), 384)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, encoder.embed(TEXTS))
    assert encoder.embed([]).shape == (0, 384)


def test_similar_sentences_are_closer_than_unrelated_ones(encoder: Encoder) -> None:
    threat, paraphrase, unrelated = encoder.embed(
        [
            "I hope someone finds out where you live and makes you pay.",
            "Someone should track down your address and make you regret this.",
            "The library opens at nine on Saturdays and closes at noon.",
        ]
    )
    assert float(threat @ paraphrase) > float(threat @ unrelated) + 0.2


def test_a_batch_gives_each_text_the_vector_it_gets_alone(encoder: Encoder) -> None:
    # Texts of very different lengths, so the batch is padded.
    batch = Encoder(batch_size=3, max_run_tokens=10_000).embed(TEXTS)
    alone = np.stack([encoder.embed([text])[0] for text in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=1e-5)


def test_runs_keep_to_the_batch_and_token_caps() -> None:
    encoder = Encoder(batch_size=3, max_run_tokens=20)
    lengths = [5, 1, 30, 4, 4, 2, 6]
    runs = encoder._runs([[0] * length for length in lengths])
    assert sorted(index for run in runs for index in run) == list(range(len(lengths)))
    for run in runs:
        padded = len(run) * max(lengths[index] for index in run)
        assert len(run) <= 3
        assert padded <= 20 or len(run) == 1
    assert [2] in runs  # longer than the budget alone: a run of its own


def test_the_cache_returns_stored_vectors_without_the_encoder(
    encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EmbeddingCache(tmp_path, encoder)
    first = cache.embed("some-set", TEXTS[:2])
    assert cache.path("some-set").is_file()

    def refuse(texts: object) -> None:
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(encoder, "embed", refuse)
    again = EmbeddingCache(tmp_path, encoder).embed("some-set", list(reversed(TEXTS[:2])))
    assert np.array_equal(again, first[::-1])


def test_training_writes_the_stage_and_records_it_in_the_card(
    tiny_semantic_model_path: Path,
) -> None:
    card = json.loads(tiny_semantic_model_path.with_suffix(".json").read_text())
    semantic = card["semantic"]
    stage_file = semantic_artifact_path(tiny_semantic_model_path)
    assert stage_file.name == "civility-0.0.0-semantic-test.semantic.joblib"
    assert semantic["artifact"]["sha256"] == file_sha256(stage_file)
    assert semantic["encoder"]["model"]["sha256"] == MODEL_FILE.sha256
    assert semantic["encoder"]["tokenizer"]["sha256"] == TOKENIZER_FILE.sha256
    assert semantic["max_length"] == 128
    assert set(semantic["weights"]) == set(LABELS)
    assert all(weight in BLEND_GRID for weight in semantic["weights"].values())


def test_a_model_with_a_stage_blends_and_keeps_score_lexical(tiny_semantic_model: Model) -> None:
    stage = tiny_semantic_model.semantic
    assert stage is not None
    assert stage.labels == tiny_semantic_model.labels
    assert dict(stage.weights) == tiny_semantic_model.card["semantic"]["weights"]
    lexical = tiny_semantic_model.predict_matrix(TEXTS)
    blended = tiny_semantic_model.predict_blended(TEXTS)
    assert np.array_equal(blended, stage.blend(TEXTS, lexical))
    assert [list(row.values()) for row in tiny_semantic_model.score(TEXTS)] == lexical.tolist()
    scores = tiny_semantic_model.score_blended(TEXTS)
    assert [list(row.values()) for row in scores] == blended.tolist()
    assert all(0.0 <= value <= 1.0 for row in scores for value in row.values())
    for column, label in enumerate(stage.labels):
        if stage.weights[label] == 0:
            assert np.array_equal(blended[:, column], lexical[:, column])
    assert tiny_semantic_model.score_blended([]) == []


def _stage_with(stage: SemanticStage, weights: dict[str, float]) -> SemanticStage:
    return SemanticStage(
        stage.labels, stage.coef, stage.intercept, stage.platt, weights, stage.encoder
    )


def test_a_zero_weight_returns_the_lexical_probability_exactly(tiny_semantic_model: Model) -> None:
    stage = tiny_semantic_model.semantic
    assert stage is not None
    lexical = tiny_semantic_model.predict_matrix(TEXTS)
    zero = _stage_with(stage, dict.fromkeys(stage.labels, 0.0))
    assert np.array_equal(zero.blend(TEXTS, lexical), lexical)
    half = _stage_with(stage, {**dict.fromkeys(stage.labels, 0.0), "toxicity": 0.5})
    blended = half.blend(TEXTS, lexical)
    toxicity = stage.labels.index("toxicity")
    others = [column for column in range(len(stage.labels)) if column != toxicity]
    assert np.array_equal(blended[:, others], lexical[:, others])
    # Half way between the two logits: the semantic side moves the score.
    semantic = stage.semantic_logits(stage.embed(TEXTS))[:, toxicity]
    lexical_logit = np.log(lexical[:, toxicity] / (1 - lexical[:, toxicity]))
    expected = 1 / (1 + np.exp(-(0.5 * lexical_logit + 0.5 * semantic)))
    np.testing.assert_allclose(blended[:, toxicity], expected, rtol=1e-9)


def test_a_model_without_a_stage_loads_lexical_only(tiny_model_path: Path) -> None:
    model = Model.load(tiny_model_path)
    assert model.semantic is None
    assert model.score_blended(TEXTS) == model.score(TEXTS)
    assert np.array_equal(model.predict_blended(TEXTS), model.predict_matrix(TEXTS))


def test_semantic_false_skips_the_stage(tiny_semantic_model_path: Path) -> None:
    model = Model.load(tiny_semantic_model_path, semantic=False)
    assert model.semantic is None
    assert model.score_blended(TEXTS) == model.score(TEXTS)


@pytest.fixture
def semantic_copy(tiny_semantic_model_path: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny semantic model, its card and its stage."""
    stage = semantic_artifact_path(tiny_semantic_model_path)
    for source in (tiny_semantic_model_path, tiny_semantic_model_path.with_suffix(".json"), stage):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path / tiny_semantic_model_path.name


def test_a_changed_stage_artifact_is_refused(semantic_copy: Path) -> None:
    stage = semantic_artifact_path(semantic_copy)
    stage.write_bytes(stage.read_bytes() + b"\0")
    with pytest.raises(ChecksumMismatchError, match=r"\.semantic\.joblib has sha256 "):
        Model.load(semantic_copy)
    assert Model.load(semantic_copy, semantic=False).semantic is None


def test_a_stage_trained_on_another_encoder_is_refused(semantic_copy: Path) -> None:
    stage = SemanticStage.read(semantic_artifact_path(semantic_copy))
    other = EncoderFiles(
        model=stage.encoder.files.model,
        tokenizer=stage.encoder.files.tokenizer,
        model_sha256="0" * 64,
    )
    moved = _stage_with(stage, dict(stage.weights))
    moved.encoder = Encoder(files=other)
    moved.save(semantic_artifact_path(semantic_copy))
    card_file = semantic_copy.with_suffix(".json")
    card = json.loads(card_file.read_text())
    card["semantic"]["artifact"]["sha256"] = file_sha256(semantic_artifact_path(semantic_copy))
    card_file.write_text(json.dumps(card))
    with pytest.raises(InvalidCardError, match="trained on another encoder"):
        Model.load(semantic_copy)


def test_evaluation_reports_each_set_lexical_and_blended(
    tiny_semantic_model: Model, datasets_dir: Path, tmp_path: Path
) -> None:
    records = load_source(datasets_dir, "kaggle-insults-social-commentary").splits["test"][:80]
    texts = [record.text for record in records]
    target = np.array([record.values["Insult"] for record in records], dtype=np.float64)
    measured = [
        EvalSet("kaggle-insults-social-commentary", "test", label, texts, target)
        for label in ("insult", "spam")
    ]
    semantic = semantic_comparison(tiny_semantic_model, measured, cache_dir=tmp_path)
    stage = tiny_semantic_model.semantic
    assert stage is not None
    assert semantic["weights"] == dict(stage.weights)
    lexical = tiny_semantic_model.predict_matrix(texts)
    blended = tiny_semantic_model.predict_blended(texts)
    for entry in semantic["sets"]:
        column = stage.labels.index(entry["label"])
        assert entry["rows"] == len(texts)
        assert entry["lexical_roc_auc"] == round(roc_auc_score(target, lexical[:, column]), 4)
        assert entry["blended_roc_auc"] == round(roc_auc_score(target, blended[:, column]), 4)
        assert 0.0 <= entry["semantic_roc_auc"] <= 1.0
    # The source's texts were embedded once, into its cache file.
    assert [path.name for path in tmp_path.iterdir()] == [
        EmbeddingCache(tmp_path, stage.encoder).path("kaggle-insults-social-commentary").name
    ]
    table = "\n".join(format_semantic({"semantic": semantic}))
    assert "semantic stage, ROC-AUC (w: the label's blend weight):" in table
    assert f"{semantic['sets'][0]['blended_roc_auc']:>8.3f}" in table
    assert format_semantic({"sets": []}) == []


def test_an_unreadable_cache_file_is_computed_again(encoder: Encoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, encoder)
    cache.path("broken").write_bytes(b"PK\x03\x04 half a file")
    vectors = cache.embed("broken", TEXTS[:1])
    assert np.array_equal(vectors, encoder.embed(TEXTS[:1]))
    assert np.array_equal(EmbeddingCache(tmp_path, encoder).embed("broken", TEXTS[:1]), vectors)
    assert [path.name for path in tmp_path.iterdir()] == [cache.path("broken").name]
