"""Text normalisation before features: one canonical, case-folded spelling of every comment.

``normalize`` is the fast path the features use. ``normalize_with_offsets`` returns the very same
string plus, for each of its characters, the index of the original character it came from, so
evidence found on normalised text maps back to spans of what the commenter wrote.

The steps, in order (each one is written once below and run by both paths):

1. Control and invisible characters (zero-width, bidi marks, soft hyphen, tag characters, Hangul
   fillers) are removed; line breaks and tabs become spaces.
2. Characters are folded until stable: Unicode NFKC (fullwidth, mathematical alphanumerics,
   ligatures, circled letters), case folding, then look-alikes to ASCII (Cyrillic and Greek
   letters that look Latin, small capitals such as ``ɪ``, accents, curly quotes and dashes).
   Cyrillic and Greek words are folded letter by letter too: the model is trained on English
   comments, and folding whole scripts catches words spelt entirely in look-alikes.
3. Runs of whitespace become one space; the ends are trimmed.
4. URLs, e-mail addresses and phone numbers become the placeholder tokens ``xxurl``, ``xxemail``
   and ``xxphone``, so the model learns "has a link" rather than each address (and the steps
   below never mangle an address: ``john.d0e@x.com`` is not leetspeak). Phone numbers need 7 to
   15 digits and either a ``+``/``(`` prefix, a ``555-1234`` shape or at least 10 digits, so
   years, amounts and dates stay text.
5. Three or more single characters separated by one repeated separator (``.``, ``-``, ``_``,
   space, ``*``) are joined: ``i.d.i.o.t`` and ``f u c k`` become words. Two units are left alone,
   so ``u.s.``, ``e.g.`` and ``a.m.`` survive; units that are all digits are left alone, so
   ``3.5`` and ``1.2.3`` survive. The accepted cost: ``u.s.a.`` becomes ``usa.`` and a list such
   as ``a, b c d`` loses the spaces in ``b c d``; a one-letter word before spaced letters is
   joined too (``a f u c k`` becomes ``afuck``), which the character n-grams still match.
6. Leetspeak is folded inside words only: a token is folded when a leet character (``0 1 3 4 5 7
   8 9 @ $ !``) sits between two letters (``1d10t``, ``sh!t``, ``h3ll0``) or when it starts with
   ``$`` before a letter (``$hit``). Tokens with digits only at an edge (``covid19``, ``10pm``,
   ``2nd``, ``mp3``) and pure numbers are kept; ``!`` and ``@`` at a token's edges are kept as
   punctuation and mentions.
7. A run of three or more equal characters (digits excepted, so numbers survive) is shortened to
   two: ``soooooo`` becomes ``soo``.
8. If steps 5 to 7 changed anything, step 4 runs again, for links they revealed (``g00gle.c0m``).

``normalize`` is idempotent: normalising normalised text changes nothing.
"""

import re
import unicodedata
from collections.abc import Callable, Iterable

__all__ = [
    "EMAIL_PLACEHOLDER",
    "PHONE_PLACEHOLDER",
    "URL_PLACEHOLDER",
    "Entities",
    "fold_characters",
    "fold_characters_with_offsets",
    "is_blank",
    "normalize",
    "normalize_with_offsets",
    "replace_entities",
]

URL_PLACEHOLDER = "xxurl"
EMAIL_PLACEHOLDER = "xxemail"
PHONE_PLACEHOLDER = "xxphone"

# A character that is kept gets its own original index; a replacement gets the indexes of the
# characters it replaces. ``Tracked`` is a text with one original index per character.
Tracked = tuple[str, list[int]]


# --- 1. control and invisible characters ------------------------------------------------------

# Every format (Cf) code point of Unicode 15, plus invisible letters that render as nothing.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0x3164, 0x3164),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_SPACE_CONTROLS = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85"


def _removal_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for first, last in _INVISIBLE_RANGES:
        table.update(dict.fromkeys(range(first, last + 1)))
    table.update(dict.fromkeys(range(0x00, 0x20)))
    table.update(dict.fromkeys(range(0x7F, 0xA0)))
    table.update({ord(char): " " for char in _SPACE_CONTROLS})
    return table


_REMOVAL = _removal_table()
# ``str.translate`` with a large table is slow on non-ASCII text, so only the runs that can change
# are translated (ASCII text keeps C's fast path).
_REMOVABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]|[^\x00-\x7f]+")


# Characters that show nothing either, but that step 1 keeps so that the model reads what it was
# trained on: the rest of Unicode's default-ignorable code points (the combining grapheme joiner,
# Khmer inherent vowels, Mongolian and other variation selectors, the unassigned ranges kept
# for more of them) and the Braille pattern blank, a well-known way to post a blank name.
_BLANK_TOO_RANGES = (
    (0x034F, 0x034F),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0xFE00, 0xFE0F),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)

# A character that is neither whitespace, one that the removal table takes out nor one of those.
_VISIBLE = re.compile(
    "[^\\s"
    + "".join(
        f"\\U{first:08x}-\\U{last:08x}"
        for first, last in ((0x00, 0x1F), (0x7F, 0x9F), *_INVISIBLE_RANGES, *_BLANK_TOO_RANGES)
    )
    + "]"
)


# Combining marks that take no room of their own, nonspacing (Mn) and enclosing (Me): they are
# drawn on the character before them, and with no letter to sit on (marks alone, or stacked on
# spaces as a "Zalgo" text of marks is) there is nothing to read. Spacing marks (Mc) take their
# own room on the line and show as written.
_ON_A_BASE = frozenset({"Mn", "Me"})


def is_blank(text: str) -> bool:
    """True when ``text`` holds nothing to read: only whitespace (Unicode spaces and line breaks
    included), control and invisible characters (zero-width, bidi marks, soft hyphen, Hangul
    fillers), the characters step 1 removes, the other characters that show nothing
    (variation selectors, the combining grapheme joiner, the Braille pattern blank), which it
    keeps, and nonspacing or enclosing combining marks, which show only on a letter."""
    return all(
        unicodedata.category(match.group()) in _ON_A_BASE for match in _VISIBLE.finditer(text)
    )


# --- 2. look-alike folding --------------------------------------------------------------------

_COMBINING_MARK_RANGES = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE00, 0xFE0F),
    (0xFE20, 0xFE2F),
    (0xE0100, 0xE01EF),
)
# Letters that look Latin once lower-cased (Cyrillic, Greek, IPA and small capitals, stroked
# Latin letters that have no decomposition). Keys are what ``str.casefold`` leaves.
_LOOK_ALIKES = {
    "а": "a", "в": "b", "г": "r", "е": "e", "ё": "e", "и": "u", "й": "u", "к": "k", "м": "m",
    "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ь": "b",
    "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "ү": "y", "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u",
    "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c",
    "ϳ": "j", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h",
    "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q",
    "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ɑ": "a",
    "ɡ": "g", "ɩ": "i", "ı": "i", "ȷ": "j", "ʋ": "v", "ɯ": "w", "ɵ": "o", "ł": "l", "ø": "o",
    "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "i", "ʉ": "u", "æ": "ae", "œ": "oe", "þ": "th",
    "ð": "d", "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"',
    "‟": '"', "″": '"', "«": '"', "»": '"', "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-",
    "―": "-", "−": "-", "•": "*", "·": ".", "\u2028": " ", "\u2029": " ",
}  # fmt: skip


def _fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for first, last in _COMBINING_MARK_RANGES:
        table.update(dict.fromkeys(range(first, last + 1)))
    # Accented Latin letters lose their accents (``ï`` -> ``i``), found by decomposition.
    for code in (*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)):
        base = unicodedata.normalize("NFKD", chr(code).casefold())[:1]
        if base.isascii() and base.isalpha():
            table[code] = base
    # Negative circled, negative squared and regional-indicator letters have no decomposition.
    for first in (0x1F150, 0x1F170, 0x1F1E6):
        table.update({first + index: chr(ord("a") + index) for index in range(26)})
    table.update({ord(char): folded for char, folded in _LOOK_ALIKES.items()})
    return table


_FOLD = _fold_table()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_MAX_FOLD_ROUNDS = 4
_MAX_ENTITY_ROUNDS = 4


# --- 4.-7. rewrites on the folded text --------------------------------------------------------

_LINK_TLDS = (
    "com|net|org|info|biz|edu|gov|io|co|ly|me|tv|ru|uk|de|fr|cn|ca|au|gl|gd|cc|ws|tk|ml|ga|cf|"
    "gq|be|nl|es|pl|br|jp|eu|xyz|top|site|online|club|link|click|live|shop|store|app|dev|ai|gg|"
    "mx|nz|ch|se|tw|kr|vn|ph|pk|ng|za|ir|ua|pro|win|bid|loan|work"
)
_URL_TAIL = r"[^\s<>\"']*[^\s<>\"'.,;:!?)\]}]"
# An entity never touches a leet character on either side, so its placeholder cannot become part
# of a leetspeak word when normalised text is normalised again.
_ENTITY_END = r"(?![\w@$]|[!@$]+\w)"
EMAIL_PATTERN = re.compile(
    r"(?<![\w.+@$!-])[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}" + _ENTITY_END,
    re.ASCII,
)
# Spammers space out the dot ("kidsmedia . com", "you tube .com") to slip past link filters. A
# space before the dot tells it from the end of a sentence; only the commonest top-level domains
# are taken that way, and never a placeholder or a name followed by more dots.
_SPACED_DOT_TLDS = "com|net|org"
# A host name has at most 253 characters. The bound also keeps a long dotted run ("a.a.a...")
# from being rescanned from each of its dots, which takes time growing with the square of its
# length.
_MAX_HOST = 253
URL_PATTERN = re.compile(
    rf"(?<![@$!])(?:(?:\bhttps?://|\bwww\.){_URL_TAIL}"
    rf"|\b[a-z0-9][a-z0-9.-]{{0,{_MAX_HOST}}}\.(?:{_LINK_TLDS})\b(?:[/?#]{_URL_TAIL})?{_ENTITY_END}"
    rf"|(?<![\w.])(?!xx(?:url|email|phone)\b)[a-z0-9][a-z0-9.-]{{0,{_MAX_HOST}}}\s+\.\s*"
    rf"(?:{_SPACED_DOT_TLDS})\b(?!\s*\.\s*[a-z0-9])(?:/{_URL_TAIL})?{_ENTITY_END})",
    re.ASCII,
)
# The look-behind sits after the first character so the regex engine can scan for [+(\d] fast.
PHONE_PATTERN = re.compile(
    r"[+(\d](?<![\w+.@$!-].)[\d ().-]{5,18}\d(?!\w|[.-]\d)" + _ENTITY_END, re.ASCII
)
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15
_UNPUNCTUATED_PHONE_DIGITS = 10
_LOCAL_PHONE = re.compile(r"\d{3}[-.]\d{4}", re.ASCII)
_ISO_DATE = re.compile(r"(?:19|20)\d\d-\d\d-\d\d", re.ASCII)
# Cheap tests without which a pattern cannot match: most comments skip the costly URL pattern.
# The URL hint's dotted forms share their leading dot, so the engine scans for dots alone (a spaced
# dot is taken with or without a space before it); a scheme and "www." are substring searches. As
# one alternation of all four, the hint cost 3.9 µs of a real comment, now about 1 µs.
_URL_DOT_HINT = re.compile(rf"\.(?:(?:{_LINK_TLDS})\b|\s*(?:{_SPACED_DOT_TLDS})\b)", re.ASCII)


def _email_hint(text: str) -> bool:
    return "@" in text


def _url_hint(text: str) -> bool:
    return "://" in text or "www." in text or _URL_DOT_HINT.search(text) is not None


def _anything(text: str) -> bool:
    return True


# (kind, pattern, hint); e-mails go first so their domains are not taken for links.
EntityPasses = tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...]
_ENTITY_PASSES: EntityPasses = (
    ("email", EMAIL_PATTERN, _email_hint),
    ("url", URL_PATTERN, _url_hint),
    ("phone", PHONE_PATTERN, _anything),
)
_PLACEHOLDERS = {"email": EMAIL_PLACEHOLDER, "url": URL_PLACEHOLDER, "phone": PHONE_PLACEHOLDER}
Entities = dict[str, list[str]]

# A whitespace run other than a single space: only these change when runs become one space.
_ODD_WHITESPACE = re.compile(r"\s{2,}|[^\S ]")

_UNIT = r"[a-z0-9@$]"
_SPACED_LETTERS = re.compile(
    rf"(?<![a-z0-9])({_UNIT})([.\-_ *])(?:{_UNIT}\2)+{_UNIT}(?![a-z0-9])", re.ASCII
)
_HAS_LETTER = re.compile(r"[a-z]", re.ASCII)

_LEET_CHARS = "01345789@$!"
_LEET = str.maketrans(_LEET_CHARS, "oieastbgasi")
_TOKEN_CHAR = r"[a-z0-9@$!]"
_LEET_TOKEN = re.compile(
    rf"(?<!{_TOKEN_CHAR}){_TOKEN_CHAR}*?"
    rf"(?:[a-z][{re.escape(_LEET_CHARS)}]+[a-z]|(?<!{_TOKEN_CHAR})\$[a-z])"
    rf"{_TOKEN_CHAR}*",
    re.ASCII,
)
# Finds a leet character between letters, or a ``$`` opening a word, without the cost of the
# token pattern; the look-behinds follow the first character so the engine scans for it fast.
_LEET_HINT = re.compile(
    r"[01345789@$!](?:(?<=[a-z].)[01345789@$!]*[a-z]|(?<![a-z0-9@$!].)(?<=\$)[a-z])", re.ASCII
)
_LEET_EDGE_LEADING = "!@"
_LEET_EDGE_TRAILING = "!@$"

# Whitespace is collapsed before this runs, so only non-digits need excluding.
_LONG_RUN = re.compile(r"(\D)\1\1+")


# --- the fast path ------------------------------------------------------------------------------


def fold_characters(text: str) -> str:
    """Steps 1 and 2: invisible characters removed, NFKC, case and look-alikes folded."""
    if text.isascii():
        return text.translate(_REMOVAL).lower()
    text = _REMOVABLE.sub(_translate_removal, text)
    if text.isascii():
        return text.lower()
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = _NON_ASCII.sub(_translate_fold, unicodedata.normalize("NFKC", text).casefold())
        if folded == text or folded.isascii():
            return folded
        text = folded
    return text


def fold_characters_with_offsets(text: str) -> Tracked:
    """``fold_characters`` with, for each character of its result, the index of the original
    character it came from."""
    return _fold_characters_tracked(text)


def _translate_removal(match: re.Match[str]) -> str:
    return match.group().translate(_REMOVAL)


def _translate_fold(match: re.Match[str]) -> str:
    return match.group().translate(_FOLD)


def normalize(text: str) -> str:
    """Return the canonical case-folded spelling of ``text`` that the features are built from."""
    text = " ".join(fold_characters(text).split())
    # Entities go before the word-level folding, which would read an e-mail's "@" as an "a";
    # when that folding changed anything they go again, for links it revealed (``g00gle.c0m``).
    entities_replaced = _replace_entity_passes(text, _ENTITY_PASSES, None)
    text = _SPACED_LETTERS.sub(_joined_text, entities_replaced)
    if _LEET_HINT.search(text):
        text = _LEET_TOKEN.sub(_leet_text, text)
    text = _LONG_RUN.sub(r"\1\1", text)
    if text == entities_replaced:
        return text
    return _replace_entity_passes(text, _ENTITY_PASSES, None)


def replace_entities(text: str) -> tuple[str, Entities]:
    """Replace e-mails, URLs and phone numbers of folded text by placeholders; return them too."""
    found: Entities = {kind: [] for kind in _PLACEHOLDERS}
    return _replace_entity_passes(text, _ENTITY_PASSES, found), found


def _replace_entity_passes(text: str, passes: EntityPasses, found: Entities | None) -> str:
    # Until nothing changes: a placeholder and what follows it can form a new entity ("xxemail" and
    # "-@x.com"), which a later normalisation would otherwise replace.
    for _ in range(_MAX_ENTITY_ROUNDS):
        before = text
        for kind, pattern, hint in passes:
            if hint(text):
                collected = [] if found is None else found[kind]
                text = pattern.sub(_EntityReplacer(kind, collected), text)
        if text == before:
            break
    return text


class _EntityReplacer:
    """``re.sub`` callback: the placeholder for a real entity, collected; other text unchanged."""

    def __init__(self, kind: str, collected: list[str]) -> None:
        self.kind = kind
        self.collected = collected

    def __call__(self, match: re.Match[str]) -> str:
        text = match.group()
        if self.kind == "phone" and not _is_phone_number(text):
            return text
        self.collected.append(text)
        return _PLACEHOLDERS[self.kind]


def _is_phone_number(text: str) -> bool:
    digits = sum(char.isdigit() for char in text)
    if not _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
        return False
    if text[0] in "+(" or _LOCAL_PHONE.fullmatch(text):
        return True
    # Long digit runs without a country code are phones unless they read as a date.
    return digits >= _UNPUNCTUATED_PHONE_DIGITS and not _ISO_DATE.search(text)


def _joined_text(match: re.Match[str]) -> str:
    text = match.group()
    if not _HAS_LETTER.search(text):
        return text
    return text.replace(match.group(2), "")


def _leet_bounds(token: str) -> tuple[int, int]:
    """The part of a leet token that is folded: edge punctuation and mentions stay."""
    start = len(token) - len(token.lstrip(_LEET_EDGE_LEADING))
    end = len(token.rstrip(_LEET_EDGE_TRAILING))
    return start, max(start, end)


def _leet_text(match: re.Match[str]) -> str:
    token = match.group()
    start, end = _leet_bounds(token)
    return token[:start] + token[start:end].translate(_LEET) + token[end:]


# --- the offset-tracking path -------------------------------------------------------------------


def normalize_with_offsets(text: str) -> Tracked:
    """``normalize(text)`` plus, per output character, its index in the original ``text``."""
    tracked = _fold_characters_tracked(text)
    tracked = _sub_tracked(_ODD_WHITESPACE, _whitespace_tracked, tracked)
    tracked = _strip_tracked(tracked)
    entities_replaced = tracked = _entity_passes_tracked(tracked, _ENTITY_PASSES)
    tracked = _sub_tracked(_SPACED_LETTERS, _joined_tracked, tracked)
    tracked = _sub_tracked(_LEET_TOKEN, _leet_tracked, tracked)
    tracked = _sub_tracked(_LONG_RUN, _long_run_tracked, tracked)
    if tracked[0] == entities_replaced[0]:
        return tracked
    return _entity_passes_tracked(tracked, _ENTITY_PASSES)


def _entity_passes_tracked(tracked: Tracked, passes: EntityPasses) -> Tracked:
    for _ in range(_MAX_ENTITY_ROUNDS):
        before = tracked[0]
        for kind, pattern, hint in passes:
            if hint(tracked[0]):
                tracked = _sub_tracked(pattern, _EntityTracker(kind), tracked)
        if tracked[0] == before:
            break
    return tracked


def _fold_characters_tracked(text: str) -> Tracked:
    tracked = _translate_tracked(
        (text, list(range(len(text)))), _REMOVAL, _REMOVABLE, _REMOVAL_RESIZING
    )
    if tracked[0].isascii():
        # ASCII lowercases one character to one: the offsets stay.
        return tracked[0].lower(), tracked[1]
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = _nfkc_tracked(tracked)
        folded = _casefold_tracked(folded)
        folded = _translate_tracked(folded, _FOLD, _NON_ASCII, _FOLD_RESIZING)
        if folded[0] == tracked[0] or folded[0].isascii():
            return folded
        tracked = folded
    return tracked


def _resizing(table: dict[int, str | None]) -> re.Pattern[str]:
    """A pattern of the characters ``table`` removes or replaces by more than one."""
    chars = sorted(chr(code) for code, value in table.items() if value is None or len(value) != 1)
    return re.compile(f"[{''.join(map(re.escape, chars))}]" if chars else "(?!)")


_REMOVAL_RESIZING = _resizing(_REMOVAL)
_FOLD_RESIZING = _resizing(_FOLD)


def _translate_tracked(
    tracked: Tracked,
    table: dict[int, str | None],
    changeable: re.Pattern[str],
    resizing: re.Pattern[str],
) -> Tracked:
    """``str.translate`` with offsets, applied to the runs ``changeable`` finds (the fast path's:
    a large table is slow on the rest of a non-ASCII text), each run whole unless it holds a
    character that changes length."""

    def translated(match: re.Match[str]) -> tuple[str, list[int]]:
        run = match.group()
        if resizing.search(run) is None:
            return run.translate(table), list(range(len(run)))
        chars = [char.translate(table) for char in run]
        return "".join(chars), [index for index, char in enumerate(chars) for _ in char]

    return _sub_tracked(changeable, translated, tracked)


def _casefold_tracked(tracked: Tracked) -> Tracked:
    text, offsets = tracked
    folded = text.casefold()
    if len(folded) == len(text):
        # Case folding works character by character and never folds one to nothing, so equal
        # lengths mean every character folded to one: the offsets stay.
        return folded, offsets
    return _map_chars_tracked(tracked, str.casefold)


def _map_chars_tracked(tracked: Tracked, mapping: Callable[[str], str]) -> Tracked:
    """Apply a context-free per-character mapping (translate, casefold, lower)."""
    text, offsets = tracked
    chars: list[str] = []
    new_offsets: list[int] = []
    for char, offset in zip(text, offsets, strict=True):
        replacement = mapping(char)
        chars.append(replacement)
        new_offsets.extend([offset] * len(replacement))
    return "".join(chars), new_offsets


def _nfkc_tracked(tracked: Tracked) -> Tracked:
    """NFKC one composition segment at a time, so each output character knows its source."""
    text, offsets = tracked
    whole = unicodedata.normalize("NFKC", text)
    if whole == text:
        return tracked
    chars: list[str] = []
    new_offsets: list[int] = []
    for start, end in _composition_segments(text):
        segment = text[start:end]
        normalised = unicodedata.normalize("NFKC", segment)
        chars.append(normalised)
        new_offsets.extend(_spread(offsets[start:end], len(normalised)))
    if "".join(chars) != whole:
        # A composition crossed a boundary this module does not know of: treat the text as one
        # segment, which stays correct but places characters less precisely.
        return whole, _spread(offsets, len(whole))
    return whole, new_offsets


def _composition_segments(text: str) -> Iterable[tuple[int, int]]:
    """Split where NFKC cannot combine a character with anything before it."""
    start = 0
    for index in range(1, len(text)):
        if _starts_segment(text[index]):
            yield start, index
            start = index
    if text:
        yield start, len(text)


def _starts_segment(char: str) -> bool:
    code = ord(char)
    if code < 0x0300:
        return True
    if 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F or 0xFFA0 <= code <= 0xFFDC:
        return False  # Hangul jamo compose with the jamo before them
    if unicodedata.combining(char) or unicodedata.category(char).startswith("M"):
        return False
    decomposed = unicodedata.normalize("NFKD", char)
    return not decomposed or unicodedata.combining(decomposed[0]) == 0


def _spread(offsets: list[int], length: int) -> list[int]:
    """Offsets for ``length`` characters that replace the characters at ``offsets``."""
    if length == 0 or not offsets:
        return []
    if length == 1:
        return [offsets[0]]
    last = len(offsets) - 1
    return [offsets[(index * last + (length - 1) // 2) // (length - 1)] for index in range(length)]


MatchRewrite = Callable[[re.Match[str]], tuple[str, list[int]]]


def _sub_tracked(pattern: re.Pattern[str], rewrite: MatchRewrite, tracked: Tracked) -> Tracked:
    """Like ``pattern.sub``; ``rewrite`` names, per output character, its index in the match."""
    text, offsets = tracked
    pieces: list[str] = []
    new_offsets: list[int] = []
    position = 0
    for match in pattern.finditer(text):
        start = match.start()
        pieces.append(text[position:start])
        new_offsets.extend(offsets[position:start])
        replacement, positions = rewrite(match)
        pieces.append(replacement)
        new_offsets.extend(offsets[start + index] for index in positions)
        position = match.end()
    if position == 0:
        return tracked
    pieces.append(text[position:])
    new_offsets.extend(offsets[position:])
    return "".join(pieces), new_offsets


def _strip_tracked(tracked: Tracked) -> Tracked:
    text, offsets = tracked
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return text[start:end], offsets[start:end]


def _whitespace_tracked(match: re.Match[str]) -> tuple[str, list[int]]:
    return " ", [0]


class _EntityTracker:
    """Tracked counterpart of ``_EntityReplacer``: a placeholder spreads over the entity."""

    def __init__(self, kind: str) -> None:
        self.replacer = _EntityReplacer(kind, [])

    def __call__(self, match: re.Match[str]) -> tuple[str, list[int]]:
        replacement = self.replacer(match)
        return replacement, _spread(list(range(len(match.group()))), len(replacement))


def _joined_tracked(match: re.Match[str]) -> tuple[str, list[int]]:
    text = match.group()
    replacement = _joined_text(match)
    separator = match.group(2)
    kept = [index for index, char in enumerate(text) if char != separator or replacement == text]
    return replacement, kept


def _leet_tracked(match: re.Match[str]) -> tuple[str, list[int]]:
    return _leet_text(match), list(range(len(match.group())))


def _long_run_tracked(match: re.Match[str]) -> tuple[str, list[int]]:
    # The second kept character stands for the rest of the run, so a span ending on it covers it.
    return match.group(1) * 2, [0, len(match.group()) - 1]
