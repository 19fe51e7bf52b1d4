"""Character n-grams inside words, counted with numpy instead of one Python string per n-gram.

The n-grams are those of scikit-learn's ``char_wb`` analyzer: every word padded with a space on
each side, n-grams that do not cross into the next word. Each n-gram is identified by a 64-bit
polynomial hash of its code points, computed for a whole batch at once with array arithmetic, and
looked up in the sorted hashes of the fitted vocabulary. Values are TF-IDF as ``TfidfVectorizer``
computes them (smooth idf, optional sublinear tf, rows scaled to unit length).
"""

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

UIntArray = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]

_BASE = np.uint64(1_000_003)
_SENTINEL = 0  # separates texts; normalised text never contains NUL
_SPACE = 32
_FIT_CHUNK = 4096
_BUCKET_BITS = 20
_BUCKET_SHIFT = np.uint64(64 - _BUCKET_BITS)


def _mix(values: UIntArray) -> UIntArray:
    """Spread short n-grams' small hashes over all 64 bits (the MurmurHash3 finaliser)."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    mixed: UIntArray = values ^ (values >> np.uint64(33))
    return mixed


class Windows:
    """All n-gram windows of a batch: hash, text index, start and length inside that text."""

    def __init__(self, texts: Sequence[str], ngram_range: tuple[int, int]) -> None:
        padded = [f" {text} " for text in texts]
        joined = "\0".join(padded) + "\0"
        # "surrogatepass": JSON can carry half a surrogate pair on its own; it scores as a symbol.
        encoded = joined.encode("utf-32-le", "surrogatepass")
        codes = np.frombuffer(encoded, dtype=np.uint32).astype(np.uint64)
        lengths = np.array([len(text) + 1 for text in padded], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        owner = np.repeat(np.arange(len(padded), dtype=np.int64), lengths)
        sentinels = np.concatenate([[0], np.cumsum(codes == _SENTINEL)])
        spaces = np.concatenate([[0], np.cumsum(codes == _SPACE)])
        hashes, texts_of, offsets, sizes = [], [], [], []
        for n in range(ngram_range[0], ngram_range[1] + 1):
            count = codes.size - n + 1
            if count <= 0:
                continue
            positions = np.arange(count)
            valid = sentinels[positions + n] == sentinels[positions]
            if n > 2:  # a window may hold a space only at its ends: it stays inside one word
                valid &= spaces[positions + n - 1] == spaces[positions + 1]
            valid &= ~((n == 2) & (codes[:count] == _SPACE) & (codes[1 : count + 1] == _SPACE))
            hashed = np.full(count, np.uint64(n))
            with np.errstate(over="ignore"):
                for shift in range(n):
                    hashed = hashed * _BASE + codes[shift : shift + count]
                hashed = _mix(hashed)
            chosen = positions[valid]
            text_index = owner[chosen]
            hashes.append(hashed[valid])
            texts_of.append(text_index)
            offsets.append(chosen - starts[text_index] - 1)  # -1: the leading pad space
            sizes.append(np.full(chosen.size, n, dtype=np.int64))
        self.hashes: UIntArray = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        self.texts: IntArray = np.concatenate(texts_of) if texts_of else np.zeros(0, np.int64)
        self.starts: IntArray = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
        self.sizes: IntArray = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)


class HashedCharNgrams(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """TF-IDF of in-word character n-grams, computed with array operations."""

    def __init__(
        self,
        ngram_range: tuple[int, int] = (2, 5),
        min_df: int = 3,
        max_features: int | None = None,
        sublinear_tf: bool = True,
    ) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf

    def fit(self, texts: Sequence[str], y: Any = None) -> Self:
        texts = list(texts)
        keys: list[UIntArray] = []
        counts: list[IntArray] = []
        for first in range(0, len(texts), _FIT_CHUNK):
            windows = Windows(texts[first : first + _FIT_CHUNK], self.ngram_range)
            order = np.lexsort((windows.hashes, windows.texts))
            hashes, owners = windows.hashes[order], windows.texts[order]
            first_in_text = np.ones(hashes.size, dtype=bool)
            first_in_text[1:] = (hashes[1:] != hashes[:-1]) | (owners[1:] != owners[:-1])
            unique, frequency = np.unique(hashes[first_in_text], return_counts=True)
            keys.append(unique)
            counts.append(frequency)
        all_keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        all_counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        unique, inverse = np.unique(all_keys, return_inverse=True)
        document_frequency = np.bincount(inverse, weights=all_counts).astype(np.int64)
        kept = np.flatnonzero(document_frequency >= self.min_df)
        if self.max_features is not None and kept.size > self.max_features:
            # Most frequent first; ties by hash so the choice does not depend on row order.
            ranking = np.lexsort((unique[kept], -document_frequency[kept]))
            kept = np.sort(kept[ranking[: self.max_features]])
        self.hashes_: UIntArray = unique[kept]
        frequency = document_frequency[kept]
        self.idf_ = (np.log((1 + len(texts)) / (1 + frequency)) + 1).astype(np.float64)
        self._index_buckets()
        return self

    def _index_buckets(self) -> None:
        buckets = np.bincount(
            (self.hashes_ >> _BUCKET_SHIFT).astype(np.int64), minlength=1 << _BUCKET_BITS
        )
        self.bucket_starts_ = np.concatenate([[0], np.cumsum(buckets)]).astype(np.int64)
        self.bucket_depth_ = int(buckets.max(initial=0))

    def __getstate__(self) -> dict[str, Any]:
        # The bucket index is rebuilt in milliseconds; pickled it would add 8 MB to the artifact.
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("bucket_starts_", None)
        state.pop("bucket_depth_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if hasattr(self, "hashes_") and not hasattr(self, "bucket_starts_"):
            self._index_buckets()

    def feature_indices(self, hashes: UIntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Vocabulary index of each hash, and whether it is in the vocabulary at all.

        The top bits of a hash pick a bucket of the sorted vocabulary; buckets hold a handful of
        hashes, so a few vectorised probes replace a binary search per n-gram.
        """
        index = np.zeros(hashes.size, dtype=np.int64)
        found = np.zeros(hashes.size, dtype=bool)
        if self.hashes_.size == 0:
            return index, found
        bucket = (hashes >> _BUCKET_SHIFT).astype(np.int64)
        first, last = self.bucket_starts_[bucket], self.bucket_starts_[bucket + 1]
        for probe in range(self.bucket_depth_):
            candidate = first + probe
            inside = (candidate < last) & ~found
            hit = np.zeros(hashes.size, dtype=bool)
            hit[inside] = self.hashes_[candidate[inside]] == hashes[inside]
            index[hit] = candidate[hit]
            found |= hit
        return index, found

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        texts = list(texts)
        windows = Windows(texts, self.ngram_range)
        index, known = self.feature_indices(windows.hashes)
        counts = sparse.csr_matrix(
            (np.ones(int(known.sum())), (windows.texts[known], index[known])),
            shape=(len(texts), self.hashes_.size),
        )
        counts.sum_duplicates()
        values = counts.data
        if self.sublinear_tf:
            values = 1.0 + np.log(values)
        values *= self.idf_[counts.indices]
        # Unit length per row, done on the data array: a diagonal matrix product costs more.
        row_sizes = np.diff(counts.indptr)
        squares = np.zeros(len(texts))
        filled = row_sizes > 0
        squares[filled] = np.add.reduceat(values * values, counts.indptr[:-1][filled])
        norms = np.sqrt(squares)
        norms[norms == 0] = 1.0
        counts.data = values / np.repeat(norms, row_sizes)
        return counts

    def get_feature_names_out(self, input_features: Any = None) -> npt.NDArray[np.object_]:
        return np.array([f"char_{value:016x}" for value in self.hashes_], dtype=object)
