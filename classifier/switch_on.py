"""Whether a site's own model goes into use, and the reason the API shows for it.

The rule alone, apart from the fit that measures its figures: a site's moderators can move scores
with their labels, so what lets a head into use is kept small enough to be checked on its own.
A label is fitted only with enough labels and enough of each class; a fitted head goes into use
only when out of fold it ranks the site's labels better than the global model by more than the
minimum gain and the lower bound of the gain's paired bootstrap is above zero. A head already in
use stays while its gain is above the (smaller) keep gain, whatever its bootstrap says: the
hysteresis that keeps a refit on labels a moderator keeps undoing from switching the site back
and forth.
"""

from dataclasses import dataclass
from typing import Protocol


class Thresholds(Protocol):
    """The settings the rule reads (``FitSettings`` has them)."""

    @property
    def min_labels(self) -> int: ...

    @property
    def min_positives(self) -> int: ...

    @property
    def switch_on_gain(self) -> float: ...

    @property
    def keep_gain(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """On or off, and why, in the words a site's model card shows."""

    used: bool
    why: str


def short_of_labels(count: int, positives: int, thresholds: Thresholds) -> str | None:
    """Why ``count`` labels of which ``positives`` are positive are too few to fit a head on;
    ``None`` when they are enough."""
    if count < thresholds.min_labels:
        return f"{count} labels, needs {thresholds.min_labels}"
    negatives = count - positives
    if positives < thresholds.min_positives or negatives < thresholds.min_positives:
        return (
            f"{positives} positive and {negatives} negative labels, "
            f"needs {thresholds.min_positives} of each"
        )
    return None


def decide(
    *,
    count: int,
    positives: int,
    auc_global: float,
    auc_adapted: float,
    lower_bound: float,
    features: str,
    thresholds: Thresholds,
    in_use: bool,
) -> Decision:
    """Whether the blend of ``features`` whose out-of-fold ROC-AUC is ``auc_adapted`` goes into
    use against the global model's ``auc_global``; ``lower_bound`` is the bootstrap lower bound
    of its gain and ``in_use`` says whether the label's previous fit was in use."""
    short = short_of_labels(count, positives, thresholds)
    if short is not None:
        return Decision(False, short)
    gain = auc_adapted - auc_global
    figures = f"out of fold the site model ({features}) adds {gain:+.4f} ROC-AUC"
    needed = thresholds.keep_gain if in_use else thresholds.switch_on_gain
    # Written as "not above" so that a figure that is not a number (NaN compares false with
    # everything) keeps the site model off rather than on.
    if not gain > needed:
        return Decision(False, f"{figures}, needs more than {needed:+.4f}")
    if not in_use and not lower_bound > 0:
        return Decision(
            False, f"{figures}, within its noise (bootstrap lower bound {lower_bound:+.4f})"
        )
    return Decision(True, f"{figures} (bootstrap lower bound {lower_bound:+.4f})")
