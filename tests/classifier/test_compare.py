"""A new model against an old one on the same held-out sets."""

import shutil
from pathlib import Path

from classifier.card import card_path, read_card, write_card
from classifier.compare import compare, format_comparison
from classifier.model import Model
from classifier.report import write_comparison


def saved_as(artifact: Path, folder: Path, version: str) -> Model:
    """The same trained model saved again under another version."""
    card = read_card(card_path(artifact))
    copy = folder / f"{card['name']}-{version}.joblib"
    shutil.copyfile(artifact, copy)
    write_card(card_path(copy), {**card, "version": version})
    return Model.load(copy)


def test_both_models_are_measured_on_the_same_sets(
    tiny_model_path: Path, datasets_dir: Path, tmp_path: Path
) -> None:
    new = Model.load(tiny_model_path)
    old = saved_as(tiny_model_path, tmp_path, "0.0.0-old")
    report = compare(new, old, datasets_dir, limit_per_set=60)
    assert (report["new"], report["old"]) == (new.stem, "civility-0.0.0-old")
    assert report["sets"]
    labels = {entry["label"] for entry in report["sets"]}
    assert labels <= set(new.labels)
    for entry in report["sets"]:
        assert 0 < entry["rows"] <= 60
        for metric in ("roc_auc", "pr_auc", "brier"):
            # The same model on the same texts: the difference is nothing.
            assert entry[metric]["new"] == entry[metric]["old"]
            assert entry[metric]["delta"] == 0
    table = format_comparison(report)
    assert table.splitlines()[0] == f"{new.stem} against civility-0.0.0-old"
    assert len(table.splitlines()) == 3 + len(report["sets"])
    # The same model twice: its curves lie on each other.
    for entry in report["sets"]:
        assert entry["roc_curve"]["new"] == entry["roc_curve"]["old"]
        assert entry["reliability"]["new"] == entry["reliability"]["old"]
    written = write_comparison(new, report)
    assert written.page.is_file()
    assert written.page.name == f"{new.stem}-vs-civility-0.0.0-old.report.html"
    assert [path.name for path in written.figures] == ["roc.png", "reliability.png"]
    html = written.page.read_text()
    assert html.count("data:image/png;base64,") == 2
    assert f"{new.stem} against civility-0.0.0-old" in html
