"""The evaluation as something to look at: PNG figures and one self-contained HTML page, written
beside the model's card (``<stem>.report.html`` and ``<stem>.figures/``).

Built only from the evaluation's result structure (``classifier.evaluate``, ``classifier.compare``)
and, for the score histograms, the model's scores of a few example texts.
"""

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from classifier import figures
from classifier.card import ARTIFACT_SUFFIX
from classifier.checks import BIAS_MEASURES
from classifier.model import Model

REPORT_SUFFIX = ".report.html"
FIGURES_SUFFIX = ".figures"
SET_COLUMNS = ("source", "split", "label", "rows")


@dataclass(frozen=True)
class Examples:
    """Named groups of texts whose scores the report shows as histograms."""

    groups: Mapping[str, Sequence[str]]

    @classmethod
    def read(cls, seed: Path | None, hand_written: Path | None) -> "Examples":
        """The seed article's comments, and a JSON Lines file of ``{"kind", "text"}`` grouped by
        kind; a path that is None or absent adds nothing."""
        groups: dict[str, list[str]] = {}
        if seed is not None and seed.is_file():
            article = json.loads(seed.read_text(encoding="utf-8"))
            groups["seed"] = [comment["text"] for comment in article.get("comments", [])]
        if hand_written is not None and hand_written.is_file():
            for line in hand_written.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    groups.setdefault(str(row.get("kind", "other")), []).append(row["text"])
        return cls(groups)


@dataclass(frozen=True)
class Written:
    page: Path
    figures: tuple[Path, ...]


def _stem(artifact: Path) -> str:
    return artifact.name.removesuffix(ARTIFACT_SUFFIX)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _write(folder: Path, drawn: Mapping[str, tuple[str, Figure]]) -> dict[str, tuple[str, bytes]]:
    folder.mkdir(parents=True, exist_ok=True)
    rendered = {}
    for name, (caption, figure) in drawn.items():
        data = _png(figure)
        (folder / f"{name}.png").write_bytes(data)
        rendered[name] = (caption, data)
    return rendered


def _reliability_lines(
    sets: Sequence[Mapping[str, Any]], style: str = "-"
) -> dict[str, list[tuple[str, Sequence[Mapping[str, Any]], str]]]:
    by_label: dict[str, list[tuple[str, Sequence[Mapping[str, Any]], str]]] = {}
    for entry in sets:
        by_label.setdefault(entry["label"], []).append(
            (entry["source"], entry["reliability"], style)
        )
    return by_label


def evaluation_figures(
    model: Model, report: Mapping[str, Any], examples: Examples
) -> dict[str, tuple[str, Figure]]:
    """Every figure of one model's evaluation, by file name, with its caption."""
    peer = report.get("peer")
    sets = report["sets"]
    drawn = {
        "roc": (
            f"ROC curve of each held-out set and label: {model.stem} (solid) and {peer} "
            "(dashed; * it was trained on that set's texts).",
            figures.roc_curves(sets, model.stem, peer),
        ),
        "reliability": (
            "Reliability per label: the observed rate of the label against the mean predicted "
            "probability in each tenth of the scale, one line per set (on the dotted diagonal "
            "a score is a frequency).",
            figures.reliability(_reliability_lines(sets)),
        ),
    }
    for entry in sets:
        if entry.get("subgroups"):
            name = f"bias-{entry['source']}-{entry['label']}"
            drawn[name] = (
                f"Identity-term bias on {entry['source']}: ROC-AUC within the rows that name each "
                "term (rows in brackets, 90% bootstrap interval), ours and the peer's.",
                figures.subgroup_aucs(entry, model.stem, peer),
            )
    if examples.groups:
        scores = {name: model.score(list(texts)) for name, texts in examples.groups.items()}
        drawn["examples"] = (
            "Scores of the seed article's comments and of the hand-written examples by kind, "
            "with the model's hold and reject thresholds.",
            figures.score_histograms(scores, model.thresholds, model.labels),
        )
    return drawn


def write_evaluation(model: Model, report: Mapping[str, Any], examples: Examples) -> Written:
    """``<stem>.report.html`` and ``<stem>.figures/*.png`` beside the model's card."""
    stem = _stem(model.artifact)
    folder = model.artifact.with_name(stem + FIGURES_SUFFIX)
    rendered = _write(folder, evaluation_figures(model, report, examples))
    page = model.artifact.with_name(stem + REPORT_SUFFIX)
    limit = report.get("limit_per_set")
    facts = [
        f"evaluated {report.get('evaluated', '?')} in {report.get('seconds', '?')} s",
        f"peer: {report.get('peer') or 'none'}",
        f"at most {limit} rows per set (a quick check)" if limit else "every row of each set",
    ]
    page.write_text(
        _page(
            f"{model.stem}: evaluation",
            facts,
            _sets_table(report["sets"]) + _checks_tables(report),
            rendered,
        ),
        encoding="utf-8",
    )
    return Written(page, tuple(folder / f"{name}.png" for name in rendered))


def write_comparison(new: Model, report: Mapping[str, Any]) -> Written:
    """``<new>-vs-<old>.report.html`` and its figures beside the new model's card."""
    stem = f"{_stem(new.artifact)}-vs-{report['old']}"
    folder = new.artifact.with_name(stem + FIGURES_SUFFIX)
    sets = report["sets"]
    lines = _reliability_lines(
        [{**entry, "reliability": entry["reliability"]["new"]} for entry in sets]
    )
    old = [
        {**entry, "source": f"{entry['source']} (old)", "reliability": entry["reliability"]["old"]}
        for entry in sets
    ]
    for label, old_lines in _reliability_lines(old, style="--").items():
        lines[label].extend(old_lines)
    drawn = {
        "roc": (
            f"ROC curve of each held-out set and label: {report['new']} (solid) over "
            f"{report['old']} (dashed), on the same texts.",
            figures.roc_comparison(sets, report["new"], report["old"]),
        ),
        "reliability": (
            f"Reliability per label: {report['new']} (solid) and {report['old']} (dashed).",
            figures.reliability(lines),
        ),
    }
    rendered = _write(folder, drawn)
    page = new.artifact.with_name(stem + REPORT_SUFFIX)
    rows = [
        [entry["source"], entry["split"], entry["label"], str(entry["rows"])]
        + [_versus(entry[metric]) for metric in ("roc_auc", "pr_auc", "brier")]
        for entry in sets
    ]
    table = _table([*SET_COLUMNS, "ROC-AUC new / old (Δ)", "PR-AUC", "Brier"], rows)
    facts = [f"{report['new']} against {report['old']} on the same texts"]
    page.write_text(
        _page(f"{report['new']} against {report['old']}", facts, table, rendered),
        encoding="utf-8",
    )
    return Written(page, tuple(folder / f"{name}.png" for name in rendered))


def _versus(values: Mapping[str, float]) -> str:
    return f"{values['new']:.3f} / {values['old']:.3f} ({values['delta']:+.3f})"


def _sets_table(sets: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for entry in sets:
        peer = entry.get("peer_roc_auc")
        trained = "*" if entry.get("peer_trained_on_it") else ""
        interval = entry.get("peer_difference_interval")
        rows.append(
            [
                *(str(entry[column]) for column in SET_COLUMNS),
                str(entry["positives"]),
                f"{entry['roc_auc']:.3f}",
                "" if peer is None else f"{peer:.3f}{trained}",
                "" if interval is None else f"{interval[0]:+.3f} to {interval[1]:+.3f}",
                f"{entry['brier']:.3f}",
            ]
        )
    header = [*SET_COLUMNS, "positives", "ROC-AUC", "peer", "ours − peer (90%)", "Brier"]
    return _table(header, rows)


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _checks_tables(report: Mapping[str, Any]) -> str:
    """The focused checks (``classifier.checks``): identity-term bias, implicit hate, threats."""
    parts = []
    if bias := report.get("identity_bias"):
        scorers = list(bias["mean_bpsn"])
        summary = "; ".join(
            f"{scorer}: mean BPSN {_figure(bias['mean_bpsn'][scorer])}"
            + (
                f", lowest {bias['lowest'][scorer]['value']:.3f} "
                f"({bias['lowest'][scorer]['term']}, {bias['lowest'][scorer]['measure']})"
                if bias["lowest"][scorer]
                else ""
            )
            for scorer in scorers
        )
        rows = [
            [term, str(entry["rows"])]
            + [_figure(entry[scorer][measure]) for scorer in scorers for measure in BIAS_MEASURES]
            for term, entry in sorted(
                bias["terms"].items(), key=lambda item: item[1]["ours"]["bpsn_auc"] or 0.0
            )
        ]
        header = ["term", "rows"] + [
            f"{scorer} {measure.removesuffix('_auc')}"
            for scorer in scorers
            for measure in BIAS_MEASURES
        ]
        parts.append(
            f"<h2>Identity-term bias ({html.escape(bias['source'])}, {bias['rows']} rows)</h2>"
            f"<p>Subgroup, BPSN and BNSP ROC-AUC of the {html.escape(bias['label'])} score per "
            f"identity term (Borkan et al. 2019). {html.escape(summary)}.</p>"
            + _table(header, rows)
        )
    if implicit := report.get("implicit_hate"):
        rows = [
            [name, str(entry["rows"]), str(entry["positives"]), _figure(entry["roc_auc"]),
             _figure(entry.get("blended_roc_auc")), _figure(entry.get("alone_roc_auc")),
             _figure(entry.get("peer_roc_auc"))]
            for name, entry in [("overall", implicit["overall"]), *implicit["groups"].items()]
        ]  # fmt: skip
        parts.append(
            f"<h2>Implicit hate ({html.escape(implicit['source'])})</h2>"
            f"<p>ROC-AUC of the {html.escape(implicit['score'])}, per identity group.</p>"
            + _table(
                ["group", "rows", "positives", "ROC-AUC", "blended", "stage alone", "peer"], rows
            )
        )
    if threats := report.get("threat_recall"):
        pooled = threats["pooled"]
        rows = [
            [
                entry["source"],
                entry["split"],
                str(entry["positives"]),
                str(entry["found"]),
                _figure(entry["recall"]),
            ]
            for entry in threats["sets"]
        ] + [["all", "", str(pooled["positives"]), str(pooled["found"]), _figure(pooled["recall"])]]
        parts.append(
            f"<h2>Threat recall at the hold threshold ({threats['threshold']})</h2>"
            + _table(["source", "split", "threats", "held", "recall"], rows)
        )
    return "".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
figure { margin: 2em 0; } img { max-width: 100%; } figcaption { color: #555; }
"""


def _page(
    title: str, facts: Sequence[str], table: str, rendered: Mapping[str, tuple[str, bytes]]
) -> str:
    """One HTML file with every figure embedded, so it can be mailed or opened anywhere."""
    shown = "".join(
        f'<figure><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, (caption, data) in rendered.items()
    )
    listed = "".join(f"<li>{html.escape(fact)}</li>" for fact in facts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><ul>{listed}</ul>{table}{shown}</body></html>\n"
    )
