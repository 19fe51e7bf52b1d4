"""A refit's work apart from Redis: the row a labelled comment becomes, and the site model fitted
on a site's rows.

A row keeps what a refit needs so that it encodes nothing again: the comment's labels, author and
text, the global model's scores of it and its features by kind (lexical; with a semantic stage,
the sentence embedding and the blended scores the second look compares). The ``scores`` kind,
every label's global logit, is not kept: a refit computes it again from the lexical features, a
product of the rows with the global model's heads. Each label gets two fits on the same heads
(``classifier.site_model.SiteLabels``): the verdict's, choosing among the lexical features and
scores intake has, and, with a semantic stage, the second look's on the blended score, which may
read the embeddings too.
"""

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from classifier.model import Model
from classifier.site_model import (
    ADAPTED_LABELS,
    EMBEDDING,
    LEXICAL,
    SCORES,
    Features,
    FitSettings,
    LabelOutcome,
    SiteLabels,
    score_features,
    too_few,
)
from classifier.site_model_codec import encode
from service.site_models import GLOBAL_ARTIFACT, SECOND_LOOK, VERDICT, Fitted, fitted_on

KEPT = (LEXICAL, EMBEDDING)
"""The kinds a row keeps; the others are computed from them."""
VERDICT_KINDS = (LEXICAL, SCORES)
"""The kinds intake's verdict has without waiting for the encoder."""
SECOND_LOOK_KINDS = (LEXICAL, SCORES, EMBEDDING)


def encode_rows(model: Model, texts: Sequence[str]) -> list[dict[str, Any]]:
    """The model's part of each text's row: its version, scores and features."""
    matrix, features = model.predict_with_features(texts, embeddings=True)
    columns = {label: model.labels.index(label) for label in ADAPTED_LABELS}
    blended = model.blend_features(matrix, features) if EMBEDDING in features else None
    return [
        {
            "model": model.version,
            "artifact": model.checksum,
            "global": {label: float(matrix[row, column]) for label, column in columns.items()},
            **(
                {"blended": {label: float(blended[row, c]) for label, c in columns.items()}}
                if blended is not None
                else {}
            ),
            "features": {
                kind: pack_features(values, row)
                for kind, values in features.items()
                if kind in KEPT
            },
        }
        for row in range(len(texts))
    ]


def stale(model: Model, row: Mapping[str, Any]) -> bool:
    """Whether a row's features are not the model's: another global model's columns, or no
    embedding where the model has a stage."""
    if not fitted_on(
        {"global_model": row.get("model"), GLOBAL_ARTIFACT: row.get("artifact")},
        model.version,
        model.checksum,
    ):
        return True
    return model.semantic is not None and EMBEDDING not in row["features"]


def fit_rows(
    model: Model,
    rows: Mapping[str, Mapping[str, Any]],
    settings: FitSettings,
    in_use: Mapping[str, set[str]],
) -> Fitted:
    """The site model of ``rows`` (none stale); ``in_use``: the labels each place used before."""
    started = time.perf_counter()
    widths = _widths(model)
    look = EMBEDDING in widths
    verdicts: dict[str, LabelOutcome] = {}
    looks: dict[str, LabelOutcome] = {}
    for label in ADAPTED_LABELS:
        labelled = [row for row in rows.values() if label in row["labels"]]
        targets = np.array([row["labels"][label] for row in labelled], dtype=np.int8)
        refused = too_few(label, targets, settings)
        if refused is not None:
            verdicts[label] = refused  # and the second look's, which reads the same labels
            continue
        features = {
            kind: _stack([row["features"][kind] for row in labelled], width)
            for kind, width in widths.items()
        }
        features[SCORES] = score_features(model.predict_lexical_features(features[LEXICAL]))
        site = SiteLabels(label, targets, features, settings)
        lexical = np.array([row["global"][label] for row in labelled])
        verdicts[label] = site.fit(
            lexical, VERDICT_KINDS, in_use=label in in_use.get(VERDICT, set())
        )
        if look:
            blended = np.array([row["blended"][label] for row in labelled])
            looks[label] = site.fit(
                blended, SECOND_LOOK_KINDS, in_use=label in in_use.get(SECOND_LOOK, set())
            )
    why = [f"{label}: {outcome.why}" for label, outcome in verdicts.items()]
    why += [f"second look {label}: {outcome.why}" for label, outcome in looks.items()]
    card = {
        "global_model": model.version,
        GLOBAL_ARTIFACT: model.checksum,
        "rows": len(rows),
        "why": "; ".join(why),
        "labels": {
            label: {
                **outcome.card(),
                **({SECOND_LOOK: looks[label].card()} if label in looks else {}),
            }
            for label, outcome in verdicts.items()
        },
        "fit_seconds": round(time.perf_counter() - started, 3),
    }
    return Fitted(card=card, weights=_used(verdicts), second_look=_used(looks))


def in_use(card: Mapping[str, Any]) -> dict[str, set[str]]:
    """The labels each place used in a stored card."""
    labels: Mapping[str, Mapping[str, Any]] = card.get("labels", {})
    return {
        VERDICT: {label for label, fit in labels.items() if fit.get("used")},
        SECOND_LOOK: {
            label for label, fit in labels.items() if fit.get(SECOND_LOOK, {}).get("used")
        },
    }


def _used(outcomes: Mapping[str, LabelOutcome]) -> str | None:
    used = {label: o.model for label, o in outcomes.items() if o.model is not None}
    return encode(used) if used else None


def _widths(model: Model) -> dict[str, int]:
    _, features = model.predict_with_features(["width"], embeddings=True)
    return {kind: int(values.shape[1]) for kind, values in features.items() if kind in KEPT}


def pack_features(values: Features, row: int) -> dict[str, str]:
    """One row of a kind's features as a row keeps it (half precision, base64)."""
    if not isinstance(values, np.ndarray):
        start, end = values.indptr[row], values.indptr[row + 1]
        return {
            "i": _b64(np.asarray(values.indices[start:end], dtype="<i4")),
            "v": _b64(np.asarray(values.data[start:end], dtype="<f2")),
        }
    return {"d": _b64(np.asarray(values[row], dtype="<f2"))}


def _stack(packed: Sequence[dict[str, str]], width: int) -> Features:
    if packed and "d" in packed[0]:
        dense: npt.NDArray[np.float64] = np.vstack(
            [np.frombuffer(base64.b64decode(p["d"]), dtype="<f2") for p in packed]
        ).astype(np.float64)
        return dense
    indices = [np.frombuffer(base64.b64decode(p["i"]), dtype="<i4") for p in packed]
    values = [np.frombuffer(base64.b64decode(p["v"]), dtype="<f2") for p in packed]
    indptr = np.zeros(len(packed) + 1, dtype=np.int64)
    np.cumsum([part.size for part in indices], out=indptr[1:])
    return sparse.csr_matrix(
        (
            np.concatenate(values).astype(np.float64) if values else np.zeros(0),
            np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, dtype=np.int32),
            indptr,
        ),
        shape=(len(packed), width),
    )


def _b64(array: npt.NDArray[Any]) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")
