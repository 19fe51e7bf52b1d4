"""Cheap signals of a comment: links, shorteners, e-mails, phones, shouting, repetition, length.

``extract_signals`` finds them in one comment; ``SignalFeatures`` turns a batch of raw comments
into a sparse matrix of scaled signals that sits beside the n-gram features in the pipeline.
Entities are looked for after look-alike folding, so ``ｂｉｔ．ｌｙ`` counts as a link too.
"""

import math
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from classifier.normalize import fold_characters, replace_entities

__all__ = ["LINK_SHORTENERS", "SIGNAL_NAMES", "SignalFeatures", "Signals", "extract_signals"]

LINK_SHORTENERS = frozenset(
    {
        "adf.ly", "bc.vc", "bit.do", "bit.ly", "bitly.com", "bl.ink", "buff.ly", "cli.gs",
        "cutt.ly", "db.tt", "fb.me", "goo.gl", "is.gd", "j.mp", "lnkd.in", "ow.ly", "qr.net",
        "rb.gy", "rebrand.ly", "s.id", "shorte.st", "shorturl.at", "t.co", "t.ly", "tiny.cc",
        "tinyurl.com", "tr.im", "v.gd", "wp.me", "x.co", "youtu.be",
    }
)  # fmt: skip

_SCHEME = re.compile(r"^(?:https?://)?(?:www\.)?", re.ASCII)
_HOST_END = re.compile(r"[/?#:]", re.ASCII)
_REPEATED_RUN = re.compile(r"(.)\1\1+", re.DOTALL)
# ASCII text (most comments) is counted by deleting bytes, a table lookup per byte in C;
# str.translate with a dict took 6 µs of a real comment for the three counts.
_LETTERS = string.ascii_letters.encode("ascii")
_CAPITALS = string.ascii_uppercase.encode("ascii")
_DIGITS = string.digits.encode("ascii")

# Counts are squashed with log1p and divided by log1p of a count that is already extreme for a
# comment, then capped at 1, so every feature lies in [0, 1] like the TF-IDF columns beside it.
_LINKS_SATURATE = math.log1p(10)
_RUNS_SATURATE = math.log1p(10)
_LENGTH_SATURATE = math.log1p(5000)
_EXCLAMATION_SATURATE = 0.2  # one "!" in five characters is already all exclamation

SIGNAL_NAMES = (
    "links",
    "link_shorteners",
    "emails",
    "phones",
    "capitals_ratio",
    "repeated_runs",
    "longest_run",
    "length",
    "exclamation_density",
    "digits_ratio",
)


@dataclass(frozen=True, slots=True)
class Signals:
    """What one comment carries beyond its words. Entities are in their folded, lower-case form."""

    urls: tuple[str, ...]
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    shortener_count: int
    length: int
    capitals_ratio: float
    repeated_runs: int
    longest_run: int
    exclamation_density: float
    digits_ratio: float

    def as_features(self) -> tuple[float, ...]:
        """The scaled values, in the order of ``SIGNAL_NAMES``, each within [0, 1]."""
        return (
            _saturate(len(self.urls), _LINKS_SATURATE),
            _saturate(self.shortener_count, _LINKS_SATURATE),
            _saturate(len(self.emails), _LINKS_SATURATE),
            _saturate(len(self.phones), _LINKS_SATURATE),
            self.capitals_ratio,
            _saturate(self.repeated_runs, _RUNS_SATURATE),
            _saturate(self.longest_run, _RUNS_SATURATE),
            _saturate(self.length, _LENGTH_SATURATE),
            min(self.exclamation_density / _EXCLAMATION_SATURATE, 1.0),
            self.digits_ratio,
        )


def _saturate(count: int, saturation: float) -> float:
    return min(math.log1p(count) / saturation, 1.0)


def extract_signals(text: str) -> Signals:
    """Find the links, e-mails, phones and typographic signals of one raw comment."""
    _, entities = replace_entities(fold_characters(text))
    urls = tuple(entities["url"])
    runs = [len(match.group()) for match in _REPEATED_RUN.finditer(text)]
    letters, capitals, digits = _count_letters_capitals_digits(text)
    length = len(text)
    return Signals(
        urls=urls,
        emails=tuple(entities["email"]),
        phones=tuple(entities["phone"]),
        shortener_count=sum(is_link_shortener(url) for url in urls),
        length=length,
        capitals_ratio=capitals / letters if letters else 0.0,
        repeated_runs=len(runs),
        longest_run=max(runs, default=0),
        exclamation_density=text.count("!") / length if length else 0.0,
        digits_ratio=digits / length if length else 0.0,
    )


def is_link_shortener(url: str) -> bool:
    """Whether a (folded) URL points at a known link-shortening service."""
    host = _HOST_END.split(_SCHEME.sub("", url, count=1), maxsplit=1)[0]
    return host in LINK_SHORTENERS


def _count_letters_capitals_digits(text: str) -> tuple[int, int, int]:
    if text.isascii():
        data = text.encode("ascii")
        length = len(data)
        return (
            length - len(data.translate(None, _LETTERS)),
            length - len(data.translate(None, _CAPITALS)),
            length - len(data.translate(None, _DIGITS)),
        )
    return (
        sum(map(str.isalpha, text)),
        sum(map(str.isupper, text)),
        sum(map(str.isdigit, text)),
    )


class SignalFeatures(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[misc, call-arg]
    """Scikit-learn transformer: raw comment texts to a sparse matrix of scaled signals.

    Stateless (the scaling is fixed), so ``fit`` learns nothing and the transformer pickles small.
    Output wrapping (``set_output``) is off: it only ever returns a sparse matrix, and the
    wrapper's checks cost more than the signals of a short comment.
    """

    def fit(self, texts: Iterable[str], y: Any = None) -> Self:
        return self

    def values(self, texts: Iterable[str]) -> npt.NDArray[np.float64]:
        """The scaled signals as a dense (texts x ``SIGNAL_NAMES``) array."""
        rows = [extract_signals(text).as_features() for text in texts]
        values: npt.NDArray[np.float64] = np.array(rows, dtype=np.float64)
        return values.reshape(-1, len(SIGNAL_NAMES))

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        values = self.values(texts)
        height, width = values.shape
        # Every row is stored in full; building the CSR arrays directly skips the scan for
        # zeros that converting a dense array costs.
        columns = np.tile(np.arange(width, dtype=np.int32), height)
        row_starts = np.arange(0, values.size + 1, width, dtype=np.int32)
        return sp.csr_matrix((values.reshape(-1), columns, row_starts), shape=(height, width))

    def get_feature_names_out(
        self, input_features: Sequence[str] | None = None
    ) -> npt.NDArray[np.object_]:
        return np.array([f"signal_{name}" for name in SIGNAL_NAMES], dtype=object)
