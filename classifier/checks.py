"""Focused checks beside the per-set table: identity-term bias, implicit hate, threat recall.

- Identity-term bias on ``identity-madlibs`` (Dixon et al. 2018): for each identity term, the
  subgroup, BPSN and BNSP AUCs of Borkan et al. 2019 (``classifier.metrics.bias_aucs``) on the
  toxicity label, ours and the peer's. No public model is known to have been fitted on these
  templates, so unlike the Wikipedia identity set they compare the two fairly.
- Implicit hate on ``toxigen-implicit``: ROC-AUC of the score the policy acts on, overall and per
  identity group; with a semantic stage also of the blend the second look acts on and of the stage
  alone (the far end of the blend weights: what the encoder itself sees).
- Threat recall: the share of threat-labelled rows of every held-out set with a threat label
  that reach the threat label's suggested hold threshold, i.e. that a moderator would see.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from classifier import metrics
from classifier.datasets import Record, SourceData, overlap_key
from classifier.labels import MADLIBS_SOURCE, SOURCES, TOXIGEN_SOURCE
from classifier.model import Model

FloatArray = npt.NDArray[np.float64]
Peer = Callable[[list[str]], FloatArray]

BIAS_LABEL = "toxicity"
THREAT_LABEL = "threat"
SPAM_LABEL = "spam"
BIAS_MEASURES = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def policy_score(model: Model, texts: Sequence[str]) -> FloatArray:
    """The score the moderation policy acts on at intake: the highest of every label but spam.

    The policy holds a comment when any label other than spam reaches its hold threshold, so for
    ranking the comments it would hold first this maximum is the score; profanity counts as the
    policy counts it.
    """
    return _highest_but_spam(model.labels, model.predict_matrix(texts))


def _highest_but_spam(labels: Sequence[str], matrix: FloatArray) -> FloatArray:
    columns = [index for index, label in enumerate(labels) if label != SPAM_LABEL]
    result: FloatArray = matrix[:, columns].max(axis=1)
    return result


def semantic_policy_scores(
    model: Model, texts: Sequence[str], lexical: FloatArray
) -> dict[str, FloatArray]:
    """The policy's score with the semantic stage blended into ``lexical`` (the texts'
    ``predict_matrix``) as ``blended``, and from the stage's heads alone as ``alone``, the texts
    embedded once; empty without a stage. A label whose head was never fitted (too few rows of
    a class) scores every text alike and is left out of ``alone``, where its constant would
    flatten the maximum."""
    stage = model.semantic
    if stage is None:
        return {}
    vectors = stage.embed(texts)
    fitted = [label for label, coef in zip(stage.labels, stage.coef, strict=True) if coef.any()]
    alone = stage.semantic_proba(vectors)[:, [stage.labels.index(label) for label in fitted]]
    return {
        "blended": _highest_but_spam(model.labels, stage.blend_vectors(vectors, lexical)),
        "alone": _highest_but_spam(fitted, alone),
    }


def _every_nth(items: Sequence[int], limit: int) -> list[int]:
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(index * step)] for index in range(limit)]


def _unseen(data: SourceData, exclude: set[str]) -> list[Record]:
    return [r for r in data.splits["all"] if overlap_key(r.text) not in exclude]


def sample_by_term(texts: Sequence[str], terms: Sequence[str], limit: int | None) -> list[int]:
    """Row indices to measure: all of them, or at most ``limit`` rows naming each term and
    ``limit`` naming none, spread over the file (it is sorted by template)."""
    if limit is None:
        return list(range(len(texts)))
    chosen: set[int] = set()
    named = np.zeros(len(texts), dtype=bool)
    for term in terms:
        members = metrics.term_members(texts, term)
        named |= members
        chosen.update(_every_nth(np.flatnonzero(members).tolist(), limit))
    chosen.update(_every_nth(np.flatnonzero(~named).tolist(), limit))
    return sorted(chosen)


def _lowest(terms: Mapping[str, Mapping[str, Any]], scorer: str, measures: Sequence[str]) -> Any:
    found = [
        (entry[scorer][measure], term, measure)
        for term, entry in terms.items()
        for measure in measures
        if entry[scorer][measure] is not None
    ]
    if not found:
        return None
    value, term, measure = min(found)
    return {"term": term, "measure": measure, "value": value}


def _mean_bpsn(terms: Mapping[str, Mapping[str, Any]], scorer: str) -> float | None:
    values = [e[scorer]["bpsn_auc"] for e in terms.values() if e[scorer]["bpsn_auc"] is not None]
    return round(float(np.mean(values)), 4) if values else None


def identity_term_bias(
    model: Model,
    data: SourceData,
    terms: Sequence[str],
    exclude: set[str],
    peer: Peer | None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Per identity term, the three bias AUCs of ours and the peer's; mean BPSN; the lowest."""
    records = _unseen(data, exclude)
    all_texts = [record.text for record in records]
    chosen = sample_by_term(all_texts, terms, limit)
    texts = [all_texts[index] for index in chosen]
    rule = SOURCES[MADLIBS_SOURCE].rules[BIAS_LABEL]
    target = np.array([rule.target(records[index].values) for index in chosen])
    scores = {"ours": model.predict_matrix(texts)[:, model.labels.index(BIAS_LABEL)]}
    if peer is not None:
        scores["peer"] = peer(texts)
    measured: dict[str, dict[str, Any]] = {}
    for term in terms:
        members = metrics.term_members(texts, term)
        if not members.any():
            continue
        measured[term] = {
            "rows": int(members.sum()),
            "positives": int(target[members].sum()),
            **{name: metrics.bias_aucs(target, score, members) for name, score in scores.items()},
        }
    return {
        "source": MADLIBS_SOURCE,
        "label": BIAS_LABEL,
        "rows": len(texts),
        "positives": int(target.sum()),
        "terms": measured,
        "terms_absent": [term for term in terms if term not in measured],
        "mean_bpsn": {name: _mean_bpsn(measured, name) for name in scores},
        "lowest_bpsn": {name: _lowest(measured, name, ("bpsn_auc",)) for name in scores},
        "lowest": {name: _lowest(measured, name, BIAS_MEASURES) for name in scores},
    }


def _auc_entry(
    target: FloatArray, scores: Mapping[str, FloatArray], members: npt.NDArray[np.bool_]
) -> dict[str, Any]:
    """Rows, positives and each score's ROC-AUC (named by its key) over the ``members`` rows."""
    entry: dict[str, Any] = {
        "rows": int(members.sum()),
        "positives": int(target[members].sum()),
    }
    for name, score in scores.items():
        entry[name] = round(float(roc_auc_score(target[members], score[members])), 4)
    return entry


def implicit_hate(
    model: Model,
    data: SourceData,
    exclude: set[str],
    peer: Peer | None,
    limit: int | None = None,
) -> dict[str, Any]:
    """ROC-AUC of the policy's score on implicit hate, overall and per group with both classes."""
    records = _unseen(data, exclude)
    records = [records[index] for index in _every_nth(range(len(records)), limit or len(records))]
    texts = [record.text for record in records]
    rule = SOURCES[TOXIGEN_SOURCE].rules[BIAS_LABEL]
    target = np.array([rule.target(record.values) for record in records])
    # With a semantic stage, also the blend and the stage alone: implicit hate is what the
    # lexical stage cannot see.
    lexical = model.predict_matrix(texts)
    scores = {"roc_auc": _highest_but_spam(model.labels, lexical)}
    for name, score in semantic_policy_scores(model, texts, lexical).items():
        scores[f"{name}_roc_auc"] = score
    if peer is not None:
        scores["peer_roc_auc"] = peer(texts)
    groups = np.array([record.group for record in records])
    per_group = {}
    for group in sorted(set(groups.tolist())):
        members = groups == group
        if len(np.unique(target[members])) == 2:
            per_group[group] = _auc_entry(target, scores, members)
    return {
        "source": TOXIGEN_SOURCE,
        "score": "policy (highest label but spam)",
        "overall": _auc_entry(target, scores, np.ones(target.size, dtype=bool)),
        "groups": per_group,
    }


def threat_rows(
    sources: Mapping[str, SourceData], exclude: set[str]
) -> list[tuple[str, str, list[str]]]:
    """(source, split, texts) of the threat-labelled rows of every held-out split.

    Every such row, whatever ``--limit-per-set`` says: they are few (a few dozen), and a sample
    of a set rarely holds any.
    """
    found = []
    for name, data in sources.items():
        use = SOURCES[name]
        rule = use.rules.get(THREAT_LABEL)
        if rule is None or not rule.columns:
            continue
        for split in use.eval_splits:
            if split in use.train_splits:
                continue
            texts = [
                record.text
                for record in data.splits[split]
                if rule.target(record.values) == 1.0 and overlap_key(record.text) not in exclude
            ]
            if texts:
                found.append((name, split, texts))
    return found


def _recall_entry(positives: int, found: int, with_second_look: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "positives": positives,
        "found": found,
        "recall": round(found / max(positives, 1), 4),
    }
    if with_second_look is not None:
        entry["found_with_second_look"] = with_second_look
        entry["recall_with_second_look"] = round(with_second_look / max(positives, 1), 4)
    return entry


def threat_recall(
    model: Model, threat_sets: Sequence[tuple[str, str, list[str]]]
) -> dict[str, Any]:
    """Recall of threat-labelled rows at the threat label's hold threshold, per set and pooled.

    With a semantic stage, also the rows held by intake or by the second look (the blend at the
    same threshold, on what intake let through): what a moderator gets to see.
    """
    threshold = float(model.thresholds[THREAT_LABEL]["hold"])
    column = model.labels.index(THREAT_LABEL)
    per_set: list[dict[str, Any]] = []
    for source, split, texts in threat_sets:
        held = model.predict_matrix(texts)[:, column] >= threshold
        looked = None
        if model.semantic is not None:
            looked = int((held | (model.predict_blended(texts)[:, column] >= threshold)).sum())
        per_set.append(
            {"source": source, "split": split, **_recall_entry(len(texts), int(held.sum()), looked)}
        )
    looked_total = (
        sum(entry["found_with_second_look"] for entry in per_set)
        if model.semantic is not None
        else None
    )
    return {
        "threshold": threshold,
        "sets": per_set,
        "pooled": _recall_entry(
            sum(entry["positives"] for entry in per_set),
            sum(entry["found"] for entry in per_set),
            looked_total,
        ),
    }


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _lowest_text(lowest: Mapping[str, Any] | None) -> str:
    if lowest is None:
        return "-"
    return f"{lowest['value']:.3f} ({lowest['term']}, {lowest['measure'].removesuffix('_auc')})"


def _with_second_look(entry: Mapping[str, Any]) -> str:
    if "found_with_second_look" not in entry:
        return ""
    return (
        f", with the second look {entry['found_with_second_look']} "
        f"({entry['recall_with_second_look']:.3f})"
    )


def format_checks(report: Mapping[str, Any]) -> list[str]:
    """The focused checks as plain-text lines (empty when the report has none)."""
    lines: list[str] = []
    if bias := report.get("identity_bias"):
        scorers = list(bias["mean_bpsn"])
        lines += [
            "",
            f"identity-term bias ({bias['source']}, {bias['label']}, {bias['rows']} rows): "
            "subgroup / BPSN / BNSP AUC per term, " + " | ".join(scorers),
        ]
        for scorer in scorers:
            lines.append(
                f"  {scorer}: mean BPSN {_figure(bias['mean_bpsn'][scorer])}, "
                f"lowest BPSN {_lowest_text(bias['lowest_bpsn'][scorer])}, "
                f"lowest of the three {_lowest_text(bias['lowest'][scorer])}"
            )
        ordered = sorted(bias["terms"].items(), key=lambda item: item[1]["ours"]["bpsn_auc"] or 0.0)
        for term, entry in ordered:
            figures = " | ".join(
                " ".join(_figure(entry[scorer][measure]) for measure in BIAS_MEASURES)
                for scorer in scorers
            )
            lines.append(f"  {term:18} rows {entry['rows']:>5}  {figures}")
    if implicit := report.get("implicit_hate"):
        overall = implicit["overall"]
        lines += [
            "",
            f"implicit hate ({implicit['source']}, ROC-AUC of the {implicit['score']}; "
            f"peer in brackets):",
        ]
        for name, entry in [("overall", overall), *implicit["groups"].items()]:
            peer = entry.get("peer_roc_auc")
            blended = entry.get("blended_roc_auc")
            alone = entry.get("alone_roc_auc")
            lines.append(
                f"  {name:18} rows {entry['rows']:>4} pos {entry['positives']:>4}  "
                f"ROC {entry['roc_auc']:.3f}"
                + ("" if blended is None else f", blended {blended:.3f}")
                + ("" if alone is None else f", stage alone {alone:.3f}")
                + ("" if peer is None else f" ({peer:.3f})")
            )
    if threats := report.get("threat_recall"):
        pooled = threats["pooled"]
        lines += [
            "",
            f"threat recall at the threat hold threshold {threats['threshold']}: "
            f"{pooled['found']} of {pooled['positives']} ({pooled['recall']:.3f})"
            + _with_second_look(pooled),
        ]
        for entry in threats["sets"]:
            lines.append(
                f"  {entry['source']:36} {entry['split']:6} {entry['found']:>4} of "
                f"{entry['positives']:>4}  recall {entry['recall']:.3f}" + _with_second_look(entry)
            )
    return lines
