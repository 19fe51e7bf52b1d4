"""A site's label models as JSON text, for a store that keeps text (Redis), and back."""

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from classifier.site_model import Head, LabelModel


def encode(models: Mapping[str, LabelModel]) -> str:
    """The label models as one JSON text (arrays in base64), for a store that keeps text."""
    return json.dumps(
        {
            label: {
                "global_weight": model.global_weight,
                "heads": [
                    {
                        "kind": head.kind,
                        "columns": _pack(head.columns),
                        "weights": _pack(head.weights),
                        "intercept": head.intercept,
                        "width": head.width,
                        "scale": head.scale,
                        "offset": head.offset,
                        "weight": weight,
                    }
                    for head, weight in model.heads
                ],
            }
            for label, model in models.items()
        },
        sort_keys=True,
    )


def decode(text: str) -> dict[str, LabelModel]:
    """The label models ``encode`` wrote; raises ``ValueError`` for anything else."""
    try:
        stored = json.loads(text)
        return {
            label: LabelModel(
                label=label,
                global_weight=float(entry["global_weight"]),
                heads=tuple(
                    (
                        Head(
                            kind=str(head["kind"]),
                            columns=_unpack(head["columns"], np.int32),
                            weights=_unpack(head["weights"], np.float32),
                            intercept=float(head["intercept"]),
                            width=int(head["width"]),
                            scale=float(head["scale"]),
                            offset=float(head["offset"]),
                        ),
                        float(head["weight"]),
                    )
                    for head in entry["heads"]
                ),
            )
            for label, entry in stored.items()
        }
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"not a site model: {error}") from None


def _pack(array: npt.NDArray[Any]) -> str:
    return base64.b64encode(
        np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    ).decode("ascii")


def _unpack(text: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    return np.frombuffer(
        base64.b64decode(text, validate=True), dtype=np.dtype(dtype).newbyteorder("<")
    ).astype(dtype)
