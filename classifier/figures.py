"""The evaluation's figures, drawn with matplotlib from the report's result structure.

Only ``civility evaluate`` imports this module: the serving path never loads matplotlib. Figures
use matplotlib's object API (no pyplot, no global state) and are rendered by the Agg canvas.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from classifier.metrics import ROC_POINTS

OURS, PEER, OLD = "#1f5fa8", "#c0504d", "#7f7f7f"
GROUP_COLOURS = ("#4c9a2a", "#1f5fa8", "#c0504d", "#e1a100", "#7f3f98", "#555555")
LineStyle = Literal["-", "--"]
PANEL_INCHES = 2.6
COLUMNS = 4
FALSE_RATES = np.linspace(0.0, 1.0, ROC_POINTS)


def _grid(count: int, columns: int = COLUMNS) -> tuple[Figure, list[Axes]]:
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows * 1.05), dpi=100)
    axes = [figure.add_subplot(rows, columns, index + 1) for index in range(count)]
    return figure, axes


def _set_name(entry: Mapping[str, Any]) -> str:
    return f"{entry['source']} ({entry['split']})\n{entry['label']}, {entry['rows']} rows"


def _roc_axes(axes: Axes) -> None:
    axes.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=0.8, linestyle=":")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.tick_params(labelsize=6)


def roc_curves(sets: Sequence[Mapping[str, Any]], ours: str, peer: str | None) -> Figure:
    """One panel per evaluated set and label: our ROC curve, and the peer's beside it."""
    drawn = [entry for entry in sets if "roc_curve" in entry]
    figure, panels = _grid(len(drawn))
    for axes, entry in zip(panels, drawn, strict=True):
        _roc_axes(axes)
        axes.plot(FALSE_RATES, entry["roc_curve"], color=OURS, linewidth=1.4, drawstyle="steps")
        title = f"{_set_name(entry)}\n{ours} {entry['roc_auc']:.3f}"
        if entry.get("peer_roc_curve") is not None and peer is not None:
            axes.plot(
                FALSE_RATES,
                entry["peer_roc_curve"],
                color=PEER,
                linewidth=1.1,
                linestyle="--",
                drawstyle="steps",
            )
            trained = "*" if entry.get("peer_trained_on_it") else ""
            title += f" · peer {entry['peer_roc_auc']:.3f}{trained}"
        axes.set_title(title, fontsize=6.5)
    entries: list[tuple[str, str, LineStyle]] = [(ours, OURS, "-")]
    if peer is not None:
        entries.append((peer, PEER, "--"))
    _legend(figure, entries)
    figure.supxlabel("false positive rate", fontsize=8)
    figure.supylabel("true positive rate", fontsize=8)
    figure.tight_layout(rect=(0.01, 0.01, 1, 0.97))
    return figure


def roc_comparison(sets: Sequence[Mapping[str, Any]], new: str, old: str) -> Figure:
    """One panel per set and label: the new version's ROC curve over the old one's."""
    figure, panels = _grid(len(sets))
    for axes, entry in zip(panels, sets, strict=True):
        _roc_axes(axes)
        curves = entry["roc_curve"]
        axes.plot(FALSE_RATES, curves["old"], color=OLD, linewidth=1.1, linestyle="--")
        axes.plot(FALSE_RATES, curves["new"], color=OURS, linewidth=1.4)
        auc = entry["roc_auc"]
        axes.set_title(
            f"{_set_name(entry)}\nnew {auc['new']:.3f} · old {auc['old']:.3f}", fontsize=6.5
        )
    _legend(figure, [(new, OURS, "-"), (old, OLD, "--")])
    figure.supxlabel("false positive rate", fontsize=8)
    figure.supylabel("true positive rate", fontsize=8)
    figure.tight_layout(rect=(0.01, 0.01, 1, 0.97))
    return figure


def reliability(
    tables: Mapping[str, Sequence[tuple[str, Sequence[Mapping[str, Any]], str]]],
) -> Figure:
    """One panel per label: observed rate against mean predicted probability in each bin, one
    line per set (``tables``: label -> [(set name, reliability table, line style)])."""
    figure, panels = _grid(len(tables), columns=min(COLUMNS, 4))
    for axes, (label, lines) in zip(panels, tables.items(), strict=True):
        axes.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=0.8, linestyle=":")
        for index, (name, table, style) in enumerate(lines):
            colour = GROUP_COLOURS[index % len(GROUP_COLOURS)]
            predicted = [row["predicted"] for row in table]
            observed = [row["observed"] for row in table]
            axes.plot(
                predicted, observed, marker="o", markersize=2.5, linewidth=1, linestyle=style,
                color=colour, label=name,
            )  # fmt: skip
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.01)
        axes.set_title(label, fontsize=8)
        axes.tick_params(labelsize=6)
        axes.legend(fontsize=5, loc="upper left", frameon=False)
    figure.supxlabel("mean predicted probability", fontsize=8)
    figure.supylabel("observed rate", fontsize=8)
    figure.tight_layout(rect=(0.01, 0.01, 1, 1))
    return figure


def subgroup_aucs(entry: Mapping[str, Any], ours: str, peer: str | None) -> Figure:
    """Identity-term bias: ROC-AUC within the rows naming each term (with its 90% interval),
    ours and the peer's, against our overall ROC-AUC."""
    subgroups: Mapping[str, Mapping[str, Any]] = entry["subgroups"]
    peers: Mapping[str, float] = entry.get("peer_subgroups", {})
    terms = sorted(subgroups, key=lambda term: subgroups[term]["roc_auc"])
    positions = np.arange(len(terms))
    figure = Figure(figsize=(7.0, 1.2 + 0.28 * len(terms)), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    ours_auc = [subgroups[term]["roc_auc"] for term in terms]
    low = [subgroups[term]["roc_auc"] - subgroups[term]["interval"][0] for term in terms]
    high = [subgroups[term]["interval"][1] - subgroups[term]["roc_auc"] for term in terms]
    axes.barh(positions + 0.2, ours_auc, height=0.38, color=OURS, label=ours, xerr=[low, high],
              error_kw={"elinewidth": 0.7, "ecolor": "#333333"})  # fmt: skip
    if peers and peer is not None:
        axes.barh(
            positions - 0.2,
            [peers.get(term, 0.0) for term in terms],
            height=0.38,
            color=PEER,
            label=peer,
        )
    axes.axvline(entry["roc_auc"], color="#333333", linewidth=0.8, linestyle=":")
    axes.set_yticks(positions, [f"{term} ({subgroups[term]['rows']})" for term in terms])
    axes.tick_params(labelsize=7)
    axes.set_xlim(min(0.5, *ours_auc) - 0.02, 1.0)
    axes.set_xlabel(f"ROC-AUC within the term's rows (dotted: {ours} on the whole set)", fontsize=8)
    axes.set_title(f"{entry['source']}: {entry['label']} by identity term", fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def score_histograms(
    groups: Mapping[str, Sequence[Mapping[str, float]]],
    thresholds: Mapping[str, Mapping[str, float]],
    labels: Sequence[str],
) -> Figure:
    """One panel per label: how each group of texts scores, with the hold and reject thresholds."""
    figure, panels = _grid(len(labels))
    bins = [step / 20 for step in range(21)]
    for axes, label in zip(panels, labels, strict=True):
        for index, (name, scores) in enumerate(groups.items()):
            values = [score[label] for score in scores]
            axes.hist(
                values, bins=bins, histtype="step", linewidth=1.3,
                color=GROUP_COLOURS[index % len(GROUP_COLOURS)], label=f"{name} ({len(values)})",
            )  # fmt: skip
        levels = thresholds.get(label, {})
        for kind, style in (("hold", "--"), ("reject", "-")):
            if kind in levels:
                axes.axvline(levels[kind], color="#333333", linewidth=0.8, linestyle=style)
        axes.set_xlim(0, 1)
        axes.set_title(f"{label} (dashed: hold, solid: reject)", fontsize=7)
        axes.tick_params(labelsize=6)
        axes.legend(fontsize=5, frameon=False)
    figure.supxlabel("score", fontsize=8)
    figure.supylabel("comments", fontsize=8)
    figure.tight_layout(rect=(0.01, 0.01, 1, 1))
    return figure


def _legend(figure: Figure, entries: Sequence[tuple[str, str, LineStyle]]) -> None:
    handles = [Line2D([], [], color=colour, linestyle=style) for _, colour, style in entries]
    figure.legend(
        handles, [name for name, _, _ in entries], loc="upper right", fontsize=8, frameon=False
    )
