"""Counterfactual identity-term swaps: each training row that names an identity also appears with
the identity swapped for another of its kind, with the same label.

Abusive comments name some identities far more often than civil ones do ("queer", "gay" and
"muslim" are mostly met in insults in the training sets), so a lexical model learns the term
itself as a sign of abuse, and a civil sentence that names the identity scores above real abuse
elsewhere (a low BPSN AUC on ``identity-madlibs``). Swapping the term in every such row, label
unchanged, gives each identity of a group the same share of toxic and civil contexts, so the
term stops predicting the label while the words around it keep their weight (Garg et al.,
"Counterfactual Fairness in Text Classification through Robustness", AIES 2019). Nothing is
taught that an identity is toxic or civil: no label is added or changed.

A row and its copy share the row's weight half and half, so a source counts as much as before.
Swaps stay within a group (orientation for orientation, religion for religion) so the copy
stays a sentence someone could write. The replacement is drawn in proportion to how often each
identity is named in the training rows: drawn evenly, a rarely named identity ("bisexual", named
a dozen times) received as many copies as the commonest ("gay", a thousand, mostly in insults)
and learned their contexts in place of its own. The draw is fixed by a hash of the text, so a
training run is repeatable.
"""

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from classifier.datasets import stable_fraction
from classifier.training_data import LabeledRows

# Identity terms by kind (the vocabulary of Dixon et al. 2018 and its bias templates).
SWAP_GROUPS: tuple[tuple[str, ...], ...] = (
    ("lesbian", "gay", "bisexual", "transgender", "trans", "queer", "lgbt", "lgbtq", "homosexual",
     "straight", "heterosexual", "nonbinary"),
    ("male", "female"),
    ("african", "african american", "black", "white", "european", "hispanic", "latino", "latina",
     "latinx", "mexican", "canadian", "american", "asian", "indian", "middle eastern", "chinese",
     "japanese"),
    ("christian", "muslim", "jewish", "buddhist", "catholic", "protestant", "sikh", "taoist"),
    ("old", "older", "young", "younger", "teenage", "millenial", "middle aged", "elderly"),
    ("blind", "deaf", "paralyzed"),
)  # fmt: skip

# Spam is about what a comment sells, not whom it names: spam-only rows are not swapped.
SPAM_LABEL = "spam"

_GROUP_OF: Mapping[str, tuple[str, ...]] = {term: group for group in SWAP_GROUPS for term in group}
# Longest first, so "african american" is one term rather than "african" and "american"; a
# plural "s" is kept as it was.
_TERMS = re.compile(
    r"(?<!\w)("
    + "|".join(re.escape(term) for term in sorted(_GROUP_OF, key=lambda t: (-len(t), t)))
    + r")(s?)(?!\w)",
    re.IGNORECASE,
)


def _same_case(replacement: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def term_counts(texts: Iterable[str]) -> Counter[str]:
    """How many times each identity term is named in ``texts``."""
    return Counter(match.group(1).lower() for text in texts for match in _TERMS.finditer(text))


def terms_named(text: str) -> set[str]:
    """The identity terms ``text`` names (lower case, singular)."""
    return {match.group(1).lower() for match in _TERMS.finditer(text)}


def _pick(others: Sequence[str], counts: Mapping[str, int], fraction: float) -> str:
    """One of ``others``, each as likely as it is frequent (plus one): a rare identity then
    receives few copies, instead of as many as the commonest (whose contexts would swamp its own).
    """
    shares = np.cumsum([counts.get(other, 0) + 1.0 for other in others])
    return others[
        min(int(np.searchsorted(shares, fraction * shares[-1], side="right")), len(others) - 1)
    ]


def swap_identities(text: str, counts: Mapping[str, int] | None = None) -> str | None:
    """``text`` with every identity term swapped for another of its group (chosen by how often
    each is named, ``counts``; evenly without them); None if it names none."""
    swapped = False

    def replace(match: re.Match[str]) -> str:
        nonlocal swapped
        term, plural = match.group(1), match.group(2)
        others = [other for other in _GROUP_OF[term.lower()] if other != term.lower()]
        choice = _pick(others, counts or {}, stable_fraction(f"{text}\x00{match.start()}"))
        swapped = True
        return _same_case(choice, term) + plural

    result = _TERMS.sub(replace, text)
    return result if swapped else None


def with_identity_swaps(rows: LabeledRows, labels: Sequence[str]) -> tuple[LabeledRows, int]:
    """``rows`` (columns ``labels``) plus a swapped copy of each row that names an identity and
    says something about a label other than spam; how many copies were added."""
    abuse = [index for index, label in enumerate(labels) if label != SPAM_LABEL]
    counts = term_counts(rows.texts)
    augmented = LabeledRows()
    copies = 0
    for text, target, weight, source, group in zip(
        rows.texts, rows.targets, rows.weights, rows.sources, rows.groups, strict=True
    ):
        about_abuse = any(not math.isnan(target[index]) for index in abuse)
        swapped = swap_identities(text, counts) if about_abuse else None
        shares = [(text, 1.0)] if swapped is None else [(text, 0.5), (swapped, 0.5)]
        for shown, share in shares:
            augmented.texts.append(shown)
            augmented.targets.append(list(target))
            augmented.weights.append([value * share for value in weight])
            augmented.sources.append(source)
            augmented.groups.append(group)
        copies += len(shares) - 1
    return augmented, copies
