"""The fitted word and character TF-IDF features, computed without the vectorizers' per-call cost.

``TfidfVectorizer.transform`` validates its input on every call, which for one comment costs more
than the counting, and character n-grams are cut and looked up anew for every word although, in
``HashedCharNgrams``, they depend on the word alone. ``compile_tfidf`` turns
a fitted vectorizer into a function that returns the same matrix: same columns, and values
computed by the same float operations in the same order, so they are equal to the last bit.
Word n-grams are looked up by their tokens' ids, each token once, rather than as joined strings.
Character n-gram columns are worked out once per distinct word and kept in a bounded cache that
belongs to the process.
"""

import re
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from classifier.char_ngrams import HashedCharNgrams, Windows
from classifier.pipeline import FittedParts, FloatArray, normalize_all

IntArray = npt.NDArray[np.int64]
ColumnArray = npt.NDArray[np.int32]
Transform = Callable[[Sequence[str]], sparse.csr_matrix]
Block = tuple[npt.NDArray[np.floating[Any]], IntArray, IntArray]
"""A CSR matrix's values, column indices and row pointers."""
Located = tuple[IntArray, IntArray, IntArray, IntArray]
"""N-gram occurrences: row, column, and start and end (exclusive) in the row's text."""

# Distinct words whose character n-gram columns are kept. A comment section's vocabulary repeats
# (Zipf): this many cover tens of thousands of comments in about 30 MB.
WORD_CACHE_SIZE = 100_000
# Longer words are worked out each time, never kept. A word's entry grows with its length (one of
# 4,000 characters takes 30 KB), and anyone may post distinct long ones: kept, they would grow
# each scoring process by gigabytes; at this length the cache stays under about 100 MB.
MAX_CACHED_WORD_CHARS = 64

_UNKNOWN = -1
# Token patterns whose tokens never hold a space: scikit-learn's default and the pipeline's own.
_SPACELESS_TOKEN_PATTERNS = frozenset({r"(?u)\b\w\w+\b", r"(?u)\b\w+\b"})


class _WordNgrams:
    """Columns of a text's word n-grams as ``analyzer="word"`` cuts them.

    Each token is looked up once, as the id of a word that the vocabulary's terms are made of; an
    n-gram's column is then found from its tokens' ids with array operations. Joining every pair
    of tokens into a string and hashing it cost more than the rest of a comment's features.
    """

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self._tokenize: Callable[[str], list[str]] = vectorizer.build_tokenizer()
        self._pattern = re.compile(vectorizer.token_pattern)
        # An n-gram's key: its tokens' ids as the digits of a number in this base, which exceeds
        # every id (a term has at most ``ngram_range[1]`` tokens), so keys are made in one pass.
        self._base = len(vectorizer.vocabulary_) * vectorizer.ngram_range[1] + 1
        self._token_ids: dict[str, int] = {}
        keys_of: dict[int, list[int]] = {}
        columns_of: dict[int, list[int]] = {}
        for term, column in vectorizer.vocabulary_.items():
            # Tokens never hold a space (``_is_covered``): a term's tokens are its parts.
            parts = term.split(" ")
            key = 0
            for part in parts:
                key = key * self._base + self._token_ids.setdefault(part, len(self._token_ids))
            keys_of.setdefault(len(parts), []).append(key)
            columns_of.setdefault(len(parts), []).append(column)
        # Per n-gram size, its terms' keys sorted, and their columns in the same order.
        self._terms: list[tuple[int, IntArray, IntArray]] = []
        for size in range(vectorizer.ngram_range[0], vectorizer.ngram_range[1] + 1):
            keys = np.array(keys_of.get(size, []), dtype=np.int64)
            order = np.argsort(keys)
            columns = np.array(columns_of.get(size, []), dtype=np.int64)
            self._terms.append((size, keys[order], columns[order]))
        # A single token's key is its id: its column is read from a table, not searched for.
        self._unigrams = np.full(len(self._token_ids), _UNKNOWN, dtype=np.int64)
        self._unigrams[np.array(keys_of.get(1, []), dtype=np.int64)] = columns_of.get(1, [])

    def columns(self, texts: Sequence[str]) -> tuple[IntArray, IntArray]:
        """The row and column of every known n-gram occurrence (with repeats)."""
        token_id = self._token_ids.get
        found: list[int] = []
        lengths: list[int] = []
        for text in texts:
            tokens = self._tokenize(text)
            found.extend(map(token_id, tokens, repeat(_UNKNOWN)))
            lengths.append(len(tokens))
        ids = np.array(found, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        hits = list(self._known_ngrams(ids, rows))
        if not hits:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return (
            np.concatenate([rows[first] for _, first, _ in hits]),
            np.concatenate([columns for _, _, columns in hits]),
        )

    def occurrences(self, texts: Sequence[str]) -> Located:
        """Every known n-gram occurrence as its row, column, and start and end (exclusive) in
        its text, grouped by n-gram size."""
        token_id = self._token_ids.get
        found: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        lengths: list[int] = []
        for text in texts:
            matches = list(self._pattern.finditer(text))
            found.extend(token_id(match.group(), _UNKNOWN) for match in matches)
            starts.extend(match.start() for match in matches)
            ends.extend(match.end() for match in matches)
            lengths.append(len(matches))
        ids = np.array(found, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        token_starts = np.array(starts, dtype=np.int64)
        token_ends = np.array(ends, dtype=np.int64)
        parts = [
            (rows[first], columns, token_starts[first], token_ends[first + size - 1])
            for size, first, columns in self._known_ngrams(ids, rows)
        ]
        if not parts:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, empty
        row, column, start, end = (np.concatenate(part) for part in zip(*parts, strict=True))
        return row, column, start, end

    def _known_ngrams(
        self, ids: IntArray, rows: IntArray
    ) -> Iterator[tuple[int, IntArray, IntArray]]:
        """Per n-gram size, the position of each known n-gram's first token and its column."""
        known = ids != _UNKNOWN
        for size, keys, columns in self._terms:
            count = ids.size - size + 1
            if count <= 0 or keys.size == 0:
                continue
            if size == 1:
                first = np.flatnonzero(known)
                unigrams = self._unigrams[ids[first]]
                hit = unigrams != _UNKNOWN
                yield size, first[hit], unigrams[hit]
                continue
            # A window counts when it lies inside one text and every token of it is known.
            valid = rows[:count] == rows[size - 1 :]
            window = ids[:count].copy()
            valid &= known[:count]
            for shift in range(1, size):
                valid &= known[shift : shift + count]
                window = window * self._base + ids[shift : shift + count]
            candidates = window[valid]
            at = np.minimum(np.searchsorted(keys, candidates), keys.size - 1)
            hit = keys[at] == candidates
            yield size, np.flatnonzero(valid)[hit], columns[at[hit]]


class _HashedNgrams:
    """Column ids of a text's ``HashedCharNgrams`` n-grams, worked out once per distinct word.

    Its windows hold a space only at their ends, so each lies inside one space-padded word: a
    text's windows are those of its words, which are hashed and looked up a batch at a time.
    """

    def __init__(self, ngrams: HashedCharNgrams, cache_size: int) -> None:
        self._ngrams = ngrams
        self.cache: dict[str, ColumnArray] = {}
        self._cache_size = cache_size

    def _table(self, words: set[str]) -> dict[str, ColumnArray]:
        """The columns of every word of ``words``: the cache, unless they are not all kept in it
        (too many of them, or too long)."""
        missing = list(words.difference(self.cache))
        if not missing:
            return self.cache
        windows = Windows(missing, self._ngrams.ngram_range)
        index, known = self._ngrams.feature_indices(windows.hashes)
        owners = windows.texts[known]
        order = np.argsort(owners, kind="stable")
        ends = np.cumsum(np.bincount(owners, minlength=len(missing)))
        pieces = np.split(index[known][order].astype(np.int32), ends[:-1])
        table = dict(zip(missing, pieces, strict=True))
        new = {word: table[word] for word in missing if len(word) <= MAX_CACHED_WORD_CHARS}
        # Cached only if the batch's words it would hold (those it holds, new short ones) all fit.
        if len(words) - len(missing) + len(new) <= self._cache_size:
            self._keep(words, new)
            if len(new) == len(missing):
                return self.cache
        table.update((word, self.cache[word]) for word in words if word not in table)
        return table

    def _keep(self, words: set[str], new: dict[str, ColumnArray]) -> None:
        """Cache ``new``, first dropping every cached word but those of ``words`` if it is full."""
        if len(self.cache) + len(new) > self._cache_size:
            kept = {word: self.cache[word] for word in words if word in self.cache}
            self.cache.clear()
            self.cache.update(kept)
        self.cache.update(new)

    def columns(self, texts: Sequence[str]) -> tuple[IntArray, IntArray]:
        """The row and column of every known n-gram occurrence (with repeats)."""
        words_of = [text.split(" ") for text in texts]
        words = list(chain.from_iterable(words_of))
        pieces = list(map(self._table(set(words)).__getitem__, words))
        sizes = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        owners = np.repeat(np.arange(len(texts), dtype=np.int64), list(map(len, words_of)))
        columns = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        return np.repeat(owners, sizes), columns.astype(np.int64)


class CompiledTfidf:
    """``transform`` of a fitted word or hashed character vectorizer, made fast."""

    def __init__(
        self, vectorizer: TfidfVectorizer | HashedCharNgrams, cache_size: int = WORD_CACHE_SIZE
    ) -> None:
        self._idf: npt.NDArray[np.floating[Any]] = np.asarray(vectorizer.idf_)
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._ngrams: _WordNgrams | _HashedNgrams
        if isinstance(vectorizer, HashedCharNgrams):
            self._width = vectorizer.hashes_.size
            self._dtype = np.dtype(np.float64)
            self._ngrams = _HashedNgrams(vectorizer, cache_size)
        else:
            self._width = len(vectorizer.vocabulary_)
            self._dtype = np.dtype(vectorizer.dtype)
            self._ngrams = _WordNgrams(vectorizer)

    @property
    def cached_words(self) -> int:
        """How many distinct words' character n-grams are cached now (0 for word n-grams)."""
        return 0 if isinstance(self._ngrams, _WordNgrams) else len(self._ngrams.cache)

    @property
    def width(self) -> int:
        return self._width

    def __call__(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The TF-IDF matrix of ``texts``; an empty batch gives an empty matrix."""
        values, indices, indptr = self.arrays(texts)
        index_type = np.int32 if indices.size < 2**31 else np.int64
        return sparse.csr_matrix(
            (values, indices.astype(index_type), indptr.astype(index_type)),
            shape=(len(texts), self._width),
        )

    def arrays(self, texts: Sequence[str]) -> Block:
        """The values, column indices and row pointers of ``__call__``'s matrix."""
        rows, columns = self._ngrams.columns(texts)
        # One sort of (row, column) keys gives each row's columns in order; runs of equal keys
        # are the counts.
        keys = np.sort(rows * self._width + columns)
        boundary = np.ones(keys.size + 1, dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=boundary[1:-1])
        bounds = np.flatnonzero(boundary)
        starts = bounds[:-1]
        return self.counted(keys[starts], bounds[1:] - starts, len(texts))

    def word_occurrences(self, texts: Sequence[str]) -> Located:
        """Every known word n-gram occurrence: its row, column, and start and end in its text."""
        if not isinstance(self._ngrams, _WordNgrams):
            raise TypeError("character n-grams are located by classifier.char_ngrams.Windows")
        return self._ngrams.occurrences(texts)

    def counted(self, keys: IntArray, counts: IntArray, height: int) -> Block:
        """The matrix of ``height`` rows whose entries, at the distinct ``row * width + column``
        ``keys`` in increasing order, count ``counts`` n-gram occurrences each."""
        unique_rows, indices = np.divmod(keys, self._width)
        indptr = np.zeros(height + 1, dtype=np.int64)
        np.cumsum(np.bincount(unique_rows, minlength=height), out=indptr[1:])
        weighted = (
            self._hashed_weighted if isinstance(self._ngrams, _HashedNgrams) else self._weighted
        )
        return weighted(counts, indices, unique_rows, height, indptr), indices, indptr

    def _weighted(
        self, counts: IntArray, columns: IntArray, rows: IntArray, height: int, _: IntArray
    ) -> npt.NDArray[np.floating[Any]]:
        """TF-IDF values of unit rows, by ``TfidfTransformer``'s float operations in its order."""
        values = counts.astype(self._dtype)
        if self._sublinear:
            np.log(values, out=values)
            values += 1.0
        values *= self._idf[columns]
        # The squares in the values' own precision, summed in double left to right; each value is
        # then divided in double and rounded back, as scikit-learn's row normalisation does.
        squares = values * values
        norms = np.sqrt(np.bincount(rows, weights=squares, minlength=height))
        norms[norms == 0.0] = 1.0
        scaled: npt.NDArray[np.floating[Any]] = (values.astype(np.float64) / norms[rows]).astype(
            self._dtype
        )
        return scaled

    def _hashed_weighted(
        self, counts: IntArray, columns: IntArray, rows: IntArray, height: int, indptr: IntArray
    ) -> npt.NDArray[np.floating[Any]]:
        """TF-IDF values of unit rows, by ``HashedCharNgrams.transform``'s operations."""
        values = counts.astype(np.float64)
        if self._sublinear:
            values = 1.0 + np.log(values)
        values *= self._idf[columns]
        row_sizes = np.diff(indptr)
        squares = np.zeros(height)
        filled = row_sizes > 0
        squares[filled] = np.add.reduceat(values * values, indptr[:-1][filled])
        norms = np.sqrt(squares)
        norms[norms == 0] = 1.0
        scaled: npt.NDArray[np.floating[Any]] = values / np.repeat(norms, row_sizes)
        return scaled


def _is_covered(vectorizer: TfidfVectorizer | HashedCharNgrams) -> bool:
    """Whether ``CompiledTfidf`` reproduces this fitted vectorizer's every setting."""
    if isinstance(vectorizer, HashedCharNgrams):
        return hasattr(vectorizer, "hashes_")
    return (
        isinstance(vectorizer, TfidfVectorizer)
        and hasattr(vectorizer, "vocabulary_")
        and vectorizer.analyzer == "word"
        and vectorizer.input == "content"
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.token_pattern in _SPACELESS_TOKEN_PATTERNS
        # An n-gram's key (``_WordNgrams``) fits in 63 bits.
        and (len(vectorizer.vocabulary_) * vectorizer.ngram_range[1] + 1)
        ** vectorizer.ngram_range[1]
        < 2**63
        and vectorizer.stop_words is None
        and vectorizer.strip_accents is None
        and not vectorizer.lowercase
        and not vectorizer.binary
        and vectorizer.use_idf
        and vectorizer.norm == "l2"
    )


def compile_tfidf(
    vectorizer: TfidfVectorizer | HashedCharNgrams, cache_size: int = WORD_CACHE_SIZE
) -> Transform:
    """A fast equivalent of ``vectorizer.transform``, or that method for settings not covered."""
    if _is_covered(vectorizer):
        return CompiledTfidf(vectorizer, cache_size)
    transform: Transform = vectorizer.transform
    return transform


class CompiledParts(FittedParts):
    """``FittedParts`` whose word and character features come from ``compile_tfidf``.

    The word, character and signal blocks are laid side by side in one pass over their arrays,
    the matrix that ``sparse.hstack`` makes; for predictions, straight in the coefficients'
    precision, which the heads would otherwise convert it to. For a batch of a few comments,
    building and checking the intermediate matrices cost as much as a comment's features.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.word_features = compile_tfidf(self.words)
        self.char_features = compile_tfidf(self.chars)

    def features(self, texts: list[str]) -> sparse.csr_matrix:
        return self._stacked(texts, np.dtype(np.float64))

    def predict_proba(self, texts: list[str]) -> FloatArray:
        return self.heads.predict_proba(self._stacked(texts, np.dtype(self.heads.coef_.dtype)))

    def _stacked(self, texts: list[str], dtype: np.dtype[Any]) -> sparse.csr_matrix:
        words, chars = self.word_features, self.char_features
        if not isinstance(words, CompiledTfidf) or not isinstance(chars, CompiledTfidf):
            return super().features(texts).astype(dtype)
        normalised = normalize_all(texts)
        signals = self.signals.values(texts)
        height, signal_width = signals.shape
        blocks = [
            words.arrays(normalised),
            chars.arrays(normalised),
            _dense_block(signals),
        ]
        widths = [words.width, chars.width, signal_width]
        return _side_by_side(blocks, widths, height, dtype)


def _dense_block(values: FloatArray) -> Block:
    """A dense (rows x columns) array as CSR arrays, zeros stored like ``SignalFeatures``."""
    height, width = values.shape
    columns = np.tile(np.arange(width, dtype=np.int64), height)
    return values.reshape(-1), columns, np.arange(0, values.size + 1, max(width, 1))


def _side_by_side(
    blocks: list[Block], widths: list[int], height: int, dtype: np.dtype[Any]
) -> sparse.csr_matrix:
    """The CSR matrix of ``blocks`` (of ``height`` rows each) laid left to right."""
    sizes = [np.diff(indptr) for _, _, indptr in blocks]
    indptr = np.zeros(height + 1, dtype=np.int64)
    np.cumsum(np.sum(sizes, axis=0), out=indptr[1:])
    total = int(indptr[-1])
    index_type = np.int32 if max(total, sum(widths)) < 2**31 else np.int64
    data = np.empty(total, dtype=dtype)
    indices = np.empty(total, dtype=index_type)
    # Where each row's next entry goes: after the entries of the blocks to its left.
    free = indptr[:-1].copy()
    offset = 0
    for (values, columns, starts), size, width in zip(blocks, sizes, widths, strict=True):
        target = np.arange(values.size) + np.repeat(free - starts[:-1], size)
        data[target] = values
        indices[target] = columns + offset
        free += size
        offset += width
    return sparse.csr_matrix(
        (data, indices, indptr.astype(index_type)), shape=(height, offset), copy=False
    )
